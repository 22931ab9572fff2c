"""Baselines trained once: a cache of training records on unprotected data.

In a sweep, every ``02_training`` run compares a mixed set with the same original set:
the same data, split, model, settings, seed and repeats. :class:`BaselineCache` trains
that reference once and hands its record to every run that asks for it. Entries are keyed
by a hash of everything the training depends on (the training and test images' bytes and
labels included), written atomically, and guarded by a lock file so that parallel runs
(threads, processes or Dask workers on a shared file system) never train the same
baseline twice: the second waits for the first and reads its record.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np

from .._io import pid_alive, write_bytes_atomic

__all__ = ["BaselineCache", "baseline_key"]


def _digest(array: np.ndarray, hasher) -> None:
    """Feed dtype, shape and bytes to ``hasher`` in 16 MiB pieces (a memmap is never read whole)."""
    hasher.update(f"{array.dtype.str}{array.shape}".encode())
    flat = array.reshape(-1)
    step = max(1, (1 << 24) // max(1, array.itemsize))
    for lo in range(0, flat.size, step):
        hasher.update(np.ascontiguousarray(flat[lo:lo + step]).tobytes())


def baseline_key(train: tuple, test: tuple, settings: dict) -> str:
    """Hex key of a training: images and labels of ``train`` and ``test`` and the settings
    (model, epochs, batch size, optimizer, learning rate, seed, repeats, ...)."""
    hasher = hashlib.sha256()
    for images, labels in (train, test):
        _digest(np.asarray(images), hasher)
        hasher.update(json.dumps(np.asarray(labels).tolist(), default=str).encode())
    hasher.update(json.dumps(settings, sort_keys=True, default=str).encode())
    return hasher.hexdigest()[:32]


class BaselineCache:
    """Training records of baselines under ``directory/<key>.json``.

    Parameters
    ----------
    directory : path
        Created if missing; every run of a sweep should get the same one.
    wait_seconds : float, default=86400
        How long a run waits for another process that is training the same baseline.
    """

    def __init__(self, directory: str | os.PathLike, *, wait_seconds: float = 86400.0):
        self.directory = Path(directory)
        self.wait_seconds = float(wait_seconds)

    def get_or_train(self, key: str, train_fn) -> tuple[dict, bool]:
        """The record under ``key``, training it with ``train_fn()`` if no run has yet.

        Returns
        -------
        record : dict
        reused : bool
            True when the record came from the cache (trained by an earlier or parallel run).
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        path, lock = self.directory / f"{key}.json", self.directory / f"{key}.lock"
        deadline = time.monotonic() + self.wait_seconds
        while True:
            if path.exists():
                return json.loads(path.read_text()), True
            try:
                fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                if self._stale(lock):
                    lock.unlink(missing_ok=True)
                    continue
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{lock}: another run has been training this baseline for too long; "
                                       f"remove the lock file if no run is alive") from None
                time.sleep(0.5)
                continue
            with os.fdopen(fd, "w") as handle:
                handle.write(f"{os.getpid()} {os.uname().nodename}\n")
            try:
                if path.exists():  # finished between our check and the lock
                    return json.loads(path.read_text()), True
                record = train_fn()
                write_bytes_atomic(path, json.dumps(record, default=_plain).encode())
                return record, False
            finally:
                lock.unlink(missing_ok=True)

    @staticmethod
    def _stale(lock: Path) -> bool:
        """A lock left by a process of this host that no longer exists."""
        try:
            pid, host = lock.read_text().split()
        except (OSError, ValueError):
            return False
        return host == os.uname().nodename and pid.isdigit() and not pid_alive(int(pid))


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)
