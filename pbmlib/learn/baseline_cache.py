"""Baselines trained once: a cache of training records on unprotected data.

In a sweep, every ``02_training`` run compares a mixed set with the same original set:
the same data, split, model, settings, seed and repeats. :class:`BaselineCache` trains
that reference once and hands its record to every run that asks for it. Entries are keyed
by a hash of everything the training depends on (the training and test images' bytes and
labels included), written atomically, and guarded by a lock (:func:`pbmlib._fs.lock`) so
that parallel runs (threads, processes or Dask workers on a shared file system) never
train the same baseline twice: the second waits for the first and reads its record. A
run that dies releases the lock with its process.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from .._fs import lock, write_bytes_atomic

__all__ = ["BaselineCache", "baseline_key"]


def _digest(array: np.ndarray, hasher) -> None:
    """Feed dtype, shape and bytes to ``hasher`` in 16 MiB pieces (a memmap is never read whole)."""
    hasher.update(f"{array.dtype.str}{array.shape}".encode())
    flat = array.reshape(-1)
    step = max(1, (1 << 24) // max(1, array.itemsize))
    for lo in range(0, flat.size, step):
        hasher.update(np.ascontiguousarray(flat[lo:lo + step]).tobytes())


def baseline_key(*pairs: tuple, settings: dict) -> str:
    """Hex key of a training: images and labels of every ``(images, labels)`` pair (the training and
    test sets, the probes) and the settings (model, epochs, batch size, optimizer, learning rate,
    seed, repeats, ...)."""
    hasher = hashlib.sha256()
    for images, labels in pairs:
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

        Raises
        ------
        FolderLockedError
            Another run held the entry's lock for longer than ``wait_seconds``.
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{key}.json"
        if path.exists():
            return json.loads(path.read_text()), True
        with lock(self.directory / f"{key}.lock", what="baseline", target=path, wait=True,
                  timeout=self.wait_seconds):
            if path.exists():  # trained by the run that held the lock
                return json.loads(path.read_text()), True
            record = train_fn()
            write_bytes_atomic(path, json.dumps(record, default=_plain).encode())
            return record, False


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)
