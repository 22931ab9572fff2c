"""A folder of images decoded once into an on-disk uint8 store, read back as a memory map.

``load_store(root, store, size=..., mode=...)`` decodes ``root/<label>/*`` into ``store``
the first time, in parallel across processes, and reuses it while the folder and the
options are unchanged; it rebuilds it when they changed. The images come back as a
read-only memory map, which every pbmlib function takes like an ordinary array:
:class:`pbmlib.learn.streaming.ImageBatches` reads it a batch at a time.

A store is a folder::

    store/
      images.npy   uint8 of shape (N, H, W) or (N, H, W, C), row i = file i
      labels.npy   str of shape (N,), the sub-folder names
      files.json   the N file names, relative to the source folder
      store.json   how it was made: source folder, a fingerprint of its files (names,
                   sizes, modification and change times, inodes; optionally their
                   content), size, mode, resampling filter, shape

Format: ``.npy`` memory maps rather than Zarr. The images are one dense, fixed-shape
uint8 array that is read by rows. A ``.npy`` memmap gives cheap random access to any
row through the page cache, with no decompression and no copy; numpy code takes it as
an ndarray (a slice is a view), and it needs nothing beyond numpy. Zarr shines for
chunked, compressed, cloud-hosted or concurrently appended arrays; here its compression
gains little on decoded photographs, reading one image means decompressing its whole
chunk, every read returns a copy, and it adds a dependency whose API changed between
versions. Workers write disjoint rows of the one preallocated ``.npy`` file, so
parallel decoding needs no chunk-aligned layout either.

Faults: a store is written into a staging folder beside ``store`` and renamed into
place only when complete (:func:`pbmlib._fs.staged_dir`), so a conversion that is killed
leaves no store (the next call rebuilds, and removes the dead staging folder); builders
of one store take turns through its lock (``.<store>.lock``). ``store.json`` is written last
and checked, with the size of ``images.npy``, before a store is used. The file is
preallocated up front, so a full disk fails at once, with an ``OSError`` naming the
path, and not with a crash half way through the memory map.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import sys
import time
import uuid
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path

import numpy as np

from .._fs import clean_stale, lock, lock_path, staged_dir, write_json_atomic
from .._io import versions
from .._validation import check_bool, check_positive_int, usable_cores
from .datasets import Decoding, ImageSet, list_image_folder, read_image

__all__ = ["load_store", "build_store", "open_store", "stale_reason", "store_manifest"]

FORMAT = "pbmlib-image-store"
VERSION = 2  # 2: the fingerprint holds change times and inodes
_MANIFEST = "store.json"
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def _fingerprint(root: Path, files: list[Path], *, content: bool = False) -> str:
    """SHA-256 over every file's relative name, size, modification and change times (ns) and inode;
    with ``content``, over its bytes too.

    The change time (ctime) and the inode cannot be set back by a user: a file replaced by
    another of the same size whose modification time was restored (``touch -r``, ``cp -p``)
    still changes the fingerprint.
    """
    digest = hashlib.sha256()
    for f in files:
        st = f.stat()
        digest.update(f"{f.relative_to(root).as_posix()}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ctime_ns}\0"
                      f"{st.st_ino}\n".encode())
        if content:
            with open(f, "rb") as fh:
                digest.update(hashlib.file_digest(fh, "sha256").digest())
    return digest.hexdigest()


def store_manifest(store: str | os.PathLike) -> dict:
    """The ``store.json`` of a store: how and from what it was made.

    Raises ``ValueError`` when ``store`` is not a complete store.
    """
    path = Path(store) / _MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"{store} is not a complete image store: {path.name} is missing") from None
    except (OSError, ValueError) as exc:
        raise ValueError(f"{store} is not a complete image store: cannot read {path.name} ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ValueError(f"{store} is not an image store: {path.name} does not describe a {FORMAT}")
    if manifest.get("version") != VERSION:
        raise ValueError(f"{store} is a store of version {manifest.get('version')!r}; this pbmlib reads "
                         f"version {VERSION}: rebuild it with load_store")
    return manifest


def _check_images_file(store: Path, manifest: dict) -> None:
    path = store / "images.npy"
    try:
        with open(path, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            shape, fortran, dtype = read_header(fh)
            offset = fh.tell()
        actual = path.stat().st_size
    except (OSError, ValueError) as exc:
        raise ValueError(f"{store} is not a complete image store: cannot read images.npy ({exc})") from None
    expected_shape = (manifest["n_images"], *manifest["image_shape"])
    if shape != expected_shape or dtype != np.uint8 or fortran:
        raise ValueError(f"{store} is damaged: images.npy holds {dtype} {shape}, store.json says uint8 "
                         f"{expected_shape}")
    if actual < offset + int(np.prod(shape)):
        raise ValueError(f"{store} is damaged: images.npy has {actual} bytes, {offset + int(np.prod(shape))} needed")


def open_store(store: str | os.PathLike) -> ImageSet:
    """Open a complete store: images as a read-only memory map, labels and file names.

    Parameters
    ----------
    store : path
        A folder written by :func:`build_store` or :func:`load_store`.

    Returns
    -------
    ImageSet
        ``images``: ndarray of shape (N, H, W) or (N, H, W, C), uint8, a view of the
        read-only memory map of ``images.npy`` (nothing is read until used);
        ``labels``: ndarray of str of shape (N,); ``files``: names relative to the source.
    """
    store = Path(store)
    manifest = store_manifest(store)
    _check_images_file(store, manifest)
    images = np.load(store / "images.npy", mmap_mode="r")
    labels = np.load(store / "labels.npy", allow_pickle=False)
    files = json.loads((store / "files.json").read_text())
    if labels.shape != (manifest["n_images"],) or len(files) != manifest["n_images"]:
        raise ValueError(f"{store} is damaged: labels.npy or files.json do not hold {manifest['n_images']} entries")
    size = "as stored" if manifest["size"] is None else "x".join(map(str, manifest["size"]))
    return ImageSet(images, labels, files, description=f"store {store} of folder {manifest['source']} "
                                                       f"({manifest['n_images']} images, size {size}, "
                                                       f"mode {manifest['mode']})")


def stale_reason(root: str | os.PathLike, store: str | os.PathLike, *, decoding: Decoding | None = None,
                 content_hash: bool = False, **options) -> str | None:
    """Why ``store`` cannot be reused for ``root`` with these options, or None when it can.

    Parameters
    ----------
    root : path
        The source folder ``root/<label>/<file>``.
    store : path
    decoding, content_hash, **options
        As for :func:`load_store`.

    Returns
    -------
    str or None
        One line, e.g. ``"the source folder changed (files added, removed or modified)"``.
    """
    root, store = Path(root), Path(store)
    decoding = Decoding.coerce(decoding, where="stale_reason", **options)
    if not store.exists():
        return f"{store} does not exist"
    try:
        manifest = store_manifest(store)
        _check_images_file(store, manifest)
    except ValueError as exc:
        return str(exc)
    if manifest["source"] != str(root.resolve()):
        return f"it was made from {manifest['source']}, not {root.resolve()}"
    for name, value in decoding.to_dict().items():
        if manifest.get(name) != value:
            return f"it was made with {name}={manifest.get(name)!r}, not {value!r}"
    if content_hash and not manifest.get("content_hash"):
        return "it was fingerprinted without the files' content (content_hash=True asks for it)"
    files, _ = list_image_folder(root)
    if manifest["fingerprint"] != _fingerprint(root, files, content=bool(manifest.get("content_hash"))):
        return "the source folder changed (files added, removed, modified or replaced)"
    return None


def load_store(root: str | os.PathLike, store: str | os.PathLike, *, decoding: Decoding | None = None,
               workers: int | None = None, chunk_size: int = 256, client=None, content_hash: bool = False,
               **options) -> ImageSet:
    """The images of ``root`` from the store ``store``, decoding them first if needed.

    Reuses ``store`` when it was made from ``root`` with the same options and the
    folder's files are unchanged (names, sizes, modification and change times, inodes: a
    file replaced by another of the same size is noticed even when its modification time
    was restored; with ``content_hash`` their bytes too); otherwise (re)builds it with
    :func:`build_store`. Parallel callers wait for one builder (a lock file beside the
    store) and then reuse its work.

    Parameters
    ----------
    root : path
        ``root/<label>/<file>``: the sub-folder names are the labels.
    store : path
        Folder of the store (created; an existing store is replaced when stale).
    decoding : Decoding, optional
        How files are decoded (:class:`pbmlib.data.datasets.Decoding`); or pass ``size``,
        ``mode``, ``resample`` as keywords. Without ``size`` the sizes must agree.
    workers : int, optional
        Processes that decode; default: the cores this process may use.
    chunk_size : int, default=256
        Images per task: the memory of a worker is about one chunk's pages.
    client : distributed.Client, optional
        Decode the chunks as tasks on this Dask cluster instead of local processes; the
        folder and the store must be on storage every worker sees at the same paths.
    content_hash : bool, default=False
        Also fingerprint every file's bytes (SHA-256): slower (every file is read), but
        a store is then reused only for byte-identical files.

    Returns
    -------
    ImageSet
        See :func:`open_store`: ``images`` is a read-only memory map.

    Examples
    --------
    >>> import tempfile
    >>> from pbmlib._io import write_image_atomic
    >>> tmp = Path(tempfile.mkdtemp())
    >>> for label in ("a", "b"):
    ...     write_image_atomic(tmp / "src" / label / "0.png", np.zeros((4, 6), np.uint8))
    >>> data = load_store(tmp / "src", tmp / "store", size=(8, 8), workers=1)
    >>> data.images.shape, data.labels.tolist()
    ((2, 8, 8), ['a', 'b'])
    """
    decoding = Decoding.coerce(decoding, where="load_store", **options)
    if stale_reason(root, store, decoding=decoding, content_hash=content_hash) is not None:
        store = Path(store)
        with lock(lock_path(store), what="image store", target=store, wait=True):
            if stale_reason(root, store, decoding=decoding, content_hash=content_hash) is not None:  # not built meanwhile
                _build(Path(root), store, decoding, workers=workers, chunk_size=chunk_size, client=client,
                       content_hash=content_hash)
    return open_store(store)


def build_store(root: str | os.PathLike, store: str | os.PathLike, *, decoding: Decoding | None = None,
                workers: int | None = None, chunk_size: int = 256, client=None, content_hash: bool = False,
                **options) -> dict:
    """Decode every image of ``root`` into a new store at ``store`` (always; see :func:`load_store`).

    The store is written into a temporary folder beside ``store`` and renamed into place
    when complete; an existing store there is replaced. A folder at ``store`` that is
    not a store (no ``store.json``, not empty) is refused rather than replaced.

    Parameters
    ----------
    root, store, decoding, workers, chunk_size, client, content_hash, **options
        As for :func:`load_store`.

    Returns
    -------
    dict
        The manifest written to ``store.json``.

    Raises
    ------
    OSError
        The disk is full (one line naming the path); nothing is left under ``store``.
    ValueError
        An image cannot be read or differs in shape from the first one.
    """
    decoding = Decoding.coerce(decoding, where="build_store", **options)
    store = Path(store)
    with lock(lock_path(store), what="image store", target=store, wait=True):
        return _build(Path(root), store, decoding, workers=workers, chunk_size=chunk_size, client=client,
                      content_hash=content_hash)


def _build(root: Path, store: Path, decoding: Decoding, *, workers, chunk_size, client, content_hash) -> dict:
    """:func:`build_store`'s work; the caller holds the store's lock."""
    content_hash = check_bool(content_hash, name="content_hash")
    chunk_size = check_positive_int(chunk_size, name="chunk_size")
    if workers is None:
        workers = usable_cores()
    workers = check_positive_int(workers, name="workers")
    if store.exists() and not (store / _MANIFEST).exists() and (not store.is_dir() or any(store.iterdir())):
        raise ValueError(f"store {store} exists and is not an image store (no {_MANIFEST}); pass a new or "
                         f"empty folder")
    started = time.perf_counter()
    files, labels = list_image_folder(root)
    fingerprint = _fingerprint(root, files, content=content_hash)
    first = read_image(files[0], decoding=decoding)
    shape = (len(files), *first.shape)
    store.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(store)
    try:
        with staged_dir(store) as tmp:
            images_path = tmp / "images.npy"
            _preallocate(images_path, shape, store)
            chunks = [(lo, [str(f) for f in files[lo:lo + chunk_size]]) for lo in range(0, len(files), chunk_size)]
            task = dict(images_path=str(images_path), decoding=decoding, shape=first.shape)
            if client is not None:  # every chunk a Dask task; each writes its own rows of the shared file
                client.gather([client.submit(_decode_chunk, lo, names, pure=False, **task) for lo, names in chunks])
            elif workers == 1 or len(chunks) == 1:
                for lo, names in chunks:
                    _decode_chunk(lo, names, **task)
            else:
                _decode_in_processes(chunks, task, workers)
            with open(images_path, "rb+") as fh:
                os.fsync(fh.fileno())
            np.save(tmp / "labels.npy", np.array(labels))
            (tmp / "files.json").write_text(json.dumps([f.relative_to(root).as_posix() for f in files]))
            manifest = {
                "format": FORMAT, "version": VERSION, "source": str(root.resolve()), "fingerprint": fingerprint,
                "content_hash": content_hash, "n_images": len(files), "image_shape": list(first.shape),
                "dtype": "uint8", **decoding.to_dict(), "classes": sorted(set(labels)), "build_id": uuid.uuid4().hex,
                "build_seconds": round(time.perf_counter() - started, 3), "workers": workers,
                "chunk_size": chunk_size, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "versions": versions(),
            }
            write_json_atomic(tmp / _MANIFEST, manifest)  # last: its presence marks a complete store
    except OSError as exc:
        if exc.errno in _DISK_FULL:
            raise OSError(exc.errno, f"no space left on the device for the image store {store}: {shape[0]} images "
                                     f"of {shape[1:]} need {_human_bytes(int(np.prod(shape)))} "
                                     f"({os.strerror(exc.errno)}); free space or choose another folder") from None
        raise
    return manifest


def _human_bytes(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:,.0f} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n:,.1f} TiB"


def _preallocate(path: Path, shape: tuple, store: Path) -> None:
    """Create ``images.npy`` with its blocks reserved, so that a full disk fails here."""
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=shape)
    del out
    if hasattr(os, "posix_fallocate"):
        with open(path, "rb+") as fh:
            try:
                os.posix_fallocate(fh.fileno(), 0, os.fstat(fh.fileno()).st_size)
            except OSError as exc:
                if exc.errno in _DISK_FULL:
                    raise
                # file systems without fallocate: blocks are reserved as the rows are written


def _decode_chunk(lo: int, names: list[str], *, images_path: str, decoding: Decoding, shape) -> int:
    """Decode ``names`` into rows ``lo:lo+len(names)`` of the store's ``images.npy``."""
    out = np.load(images_path, mmap_mode="r+")
    try:
        for i, name in enumerate(names):
            image = read_image(name, decoding=decoding)
            if image.shape != tuple(shape):
                raise ValueError(f"{name}: image of shape {image.shape} differs from the first image's "
                                 f"{tuple(shape)}; pass size=(height, width) and mode='RGB' or mode='L' to give "
                                 f"every image one shape")
            out[lo + i] = image
        out.flush()
    finally:
        del out
    return len(names)


def _decode_in_processes(chunks: list, task: dict, workers: int) -> None:
    import multiprocessing

    method = "forkserver" if sys.platform.startswith("linux") else "spawn"  # never fork a process running threads
    context = multiprocessing.get_context(method)
    with ProcessPoolExecutor(max_workers=min(workers, len(chunks)), mp_context=context) as pool:
        pending, queue = set(), list(chunks)
        try:
            while queue or pending:
                while queue and len(pending) < 2 * workers:  # a bounded window of chunks in flight
                    lo, names = queue.pop(0)
                    pending.add(pool.submit(_decode_chunk, lo, names, **task))
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    future.result()
        except BaseException:
            for future in pending:
                future.cancel()
            raise
