"""Safe file output: atomic writes, image formats, folder locks, stale-temporary cleanup, run records.

Rules every writer in pbmlib follows (and the helpers here implement):

- a file is written to a temporary name beside its target and renamed, so a reader never
  sees half a file under the final name; the temporary names (``.<name>.<random>.tmp``) are
  recognisable and :func:`remove_stale_tmp` removes those a killed run left behind;
- written files get the user's normal permissions (``0o666`` minus the umask), not the
  ``0o600`` of :func:`tempfile.mkstemp`;
- a folder being written is locked (:func:`lock_folder`), so a second process writing the
  same folder refuses with a clear message instead of silently mixing two outputs.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import mmap
import os
import platform
import re
import sys
import tempfile
from importlib import metadata
from pathlib import Path

import numpy as np
from PIL import Image

try:  # POSIX advisory locks; elsewhere an O_EXCL lock file
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

_JPEG_SUFFIXES = {".jpg", ".jpeg"}

#: Output image formats: name -> (file suffix, Pillow format, lossless).
IMAGE_FORMATS = {"png": (".png", "PNG", True), "jpeg": (".jpg", "JPEG", False), "webp": (".webp", "WEBP", True)}
#: JPEG quality accepted: Pillow advises against values above 95 (100 disables parts of the compression).
JPEG_QUALITY_RANGE = (1, 95)

# What tempfile.mkstemp(prefix=".<name>.", suffix=".tmp") creates: 8 random characters.
_TMP_PATTERN = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp$")


def default_file_mode() -> int:
    """The mode a new file gets from ``open()``: ``0o666`` minus the process umask."""
    try:  # Linux >= 4.7 reports the umask without changing it (thread-safe)
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def _atomic_target(path: Path):
    """A temporary file beside ``path`` (same file system, so ``os.replace`` is atomic).

    It gets the user's normal file mode (umask respected), so the renamed file is not left 0600.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, default_file_mode())
    finally:
        os.close(fd)
    return Path(tmp)


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename."""
    path = Path(path)
    tmp = _atomic_target(path)
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def to_json(obj) -> str:
    """``obj`` as indented JSON text (numpy scalars and arrays, paths converted); raises before any write."""
    return json.dumps(obj, indent=2, default=_json_default) + "\n"


def write_json_atomic(path: str | os.PathLike, obj) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    write_bytes_atomic(path, to_json(obj).encode())


def check_image_format(format: str, jpeg_quality=None) -> tuple[str, int | None]:
    """Validate an output format and its quality; return ``(format, quality actually used)``.

    ``format`` is ``"png"`` (lossless, the default everywhere), ``"jpeg"`` (lossy; ``"jpg"``
    is accepted) or ``"webp"`` (written lossless). ``jpeg_quality`` is an int from 1 to 95
    (None means 95) and only applies to JPEG.
    """
    from ._validation import check_choice, check_int_range

    if format == "jpg":
        format = "jpeg"
    check_choice(format, tuple(IMAGE_FORMATS), name="format")
    if format != "jpeg":
        if jpeg_quality is not None:
            raise ValueError(f"jpeg_quality={jpeg_quality!r} only applies to format='jpeg', got format={format!r}; "
                             f"drop jpeg_quality or pass format='jpeg'")
        return format, None
    if jpeg_quality is None:
        return format, 95
    low, high = JPEG_QUALITY_RANGE
    return format, check_int_range(jpeg_quality, name="jpeg_quality", low=low, high=high,
                                   advice=" (Pillow advises at most 95; 100 disables parts of JPEG compression)")


def encode_image(image: np.ndarray, format: str, quality: int | None = None) -> bytes:
    """Encode a uint8 (H, W) or (H, W, C) image as PNG, JPEG (``quality``) or lossless WebP."""
    import io

    _, pil_format, _ = IMAGE_FORMATS[format]
    options = {}
    if format == "jpeg":
        options["quality"] = quality if quality is not None else 95
    elif format == "webp":
        options["lossless"] = True
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format=pil_format, **options)
    return buffer.getvalue()


def write_new_file(path: str | os.PathLike, data: bytes) -> None:
    """Create ``path`` (which must not exist: never follows a link or replaces a file) and write ``data``."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags, 0o666)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def write_image_atomic(path: str | os.PathLike, image: np.ndarray, *, jpeg_quality: int = 95) -> None:
    """Save a uint8 (H, W) or (H, W, C) image; the format follows the file suffix.

    ``.png`` and ``.webp`` are lossless; ``.jpg``/``.jpeg`` use ``jpeg_quality`` (1 to 95).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    formats = {".png": "png", ".webp": "webp", ".jpg": "jpeg", ".jpeg": "jpeg"}
    if suffix not in formats:
        raise ValueError(f"cannot write {path.name}: unknown image suffix {suffix!r}; use .png, .jpg or .webp")
    fmt, quality = check_image_format(formats[suffix], jpeg_quality if formats[suffix] == "jpeg" else None)
    write_bytes_atomic(path, encode_image(image, fmt, quality))


def remove_stale_tmp(folder: str | os.PathLike) -> list[Path]:
    """Remove the temporary files (``.<name>.<8 chars>.tmp``) a killed atomic write left in ``folder``.

    Only files matching that pattern directly in ``folder`` are removed (no links, no
    sub-folders). Call it while holding the folder's lock, so no live write is removed.
    """
    removed = []
    folder = Path(folder)
    if not folder.is_dir() or folder.is_symlink():
        return removed
    for entry in folder.iterdir():
        if _TMP_PATTERN.match(entry.name) and entry.is_file() and not entry.is_symlink():
            entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed


def lock_path(folder: str | os.PathLike) -> Path:
    """The lock file of ``folder``: ``.<name>.lock`` beside it (it survives the folder being replaced)."""
    folder = Path(folder)
    return folder.parent / f".{folder.name}.lock"


@contextlib.contextmanager
def lock_folder(folder: str | os.PathLike, *, what: str = "folder"):
    """Hold an exclusive lock on ``folder`` for the ``with`` block; refuse at once if another holds it.

    The lock is ``.<name>.lock`` beside the folder, created if needed, locked with
    ``fcntl.flock`` (released by the kernel if the process dies, so a killed run never
    leaves a stale lock) and removed on exit. The parent folder is created if missing.

    Raises
    ------
    ValueError
        When another process (its pid is in the message) holds the lock.
    """
    folder = Path(folder)
    path = lock_path(folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fcntl is None:  # pragma: no cover - Windows: O_EXCL file holding our pid
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            raise ValueError(_busy_message(folder, what, path)) from None
        try:
            os.write(fd, f"{os.getpid()}\n".encode())
            yield path
        finally:
            os.close(fd)
            path.unlink(missing_ok=True)
        return
    for _ in range(100):
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise ValueError(_busy_message(folder, what, path)) from None
            raise
        try:  # the previous holder may have removed the file between our open and flock
            same = os.fstat(fd).st_ino == os.stat(path, follow_symlinks=False).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    else:  # pragma: no cover - a lock file replaced 100 times in a row
        raise ValueError(_busy_message(folder, what, path))
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield path
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
        os.close(fd)  # closing releases the flock


def _busy_message(folder: Path, what: str, path: Path) -> str:
    try:
        pid = path.read_text().strip() or "unknown"
    except OSError:
        pid = "unknown"
    return (f"{what} {folder} is being written by another process (pid {pid}, lock {path}); wait for it to "
            f"finish or choose another {what}")


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


def versions() -> dict[str, str]:
    """Versions of Python, the platform and the packages results depend on."""
    found = {"python": sys.version.split()[0], "platform": platform.platform()}
    for dist in ("pbm-workbench", "numpy", "pillow", "scikit-image", "scipy", "pandas", "keras",
                 "tensorflow", "tensorflow-cpu", "jax", "papermill"):
        try:
            found[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    keras_backend = os.environ.get("KERAS_BACKEND")
    if keras_backend:
        found["keras_backend"] = keras_backend
    return found


_LIBC = None


def _madvise(start: int, length: int) -> None:
    global _LIBC
    if not hasattr(mmap, "MADV_DONTNEED"):  # not Linux/BSD: keep the pages
        return
    if _LIBC is None:
        _LIBC = ctypes.CDLL(None, use_errno=True)
        _LIBC.madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
    _LIBC.madvise(start, length, mmap.MADV_DONTNEED)  # failure only keeps the pages resident


def release_pages(images: np.ndarray) -> None:
    """Drop every page of ``images`` from this process' resident set (they stay in the page cache).

    For memory maps read through once (training epochs, folder mixing): the process'
    resident memory then does not grow with the file. On systems without ``madvise``
    nothing happens; on an array that is not a file mapping, use it never.

    The whole span, not just the rows read: a page fault maps the neighbouring cached
    pages too ("fault-around"). Unpopulated page tables are skipped, so this is cheap.
    """
    try:
        from numpy.lib.array_utils import byte_bounds
    except ImportError:  # numpy < 2
        byte_bounds = np.byte_bounds
    low, high = byte_bounds(images)
    page = mmap.PAGESIZE
    start = low // page * page  # rounded outwards to whole pages, all inside the mapping
    _madvise(start, -(-high // page) * page - start)


def shared_file_mapping(images) -> bool:
    """True when ``images`` lies in a shared file mapping (np.memmap of mode "r" or "r+").

    Only those pages may be dropped and read again from the file; a private ("c") map
    or ordinary memory would lose its contents.
    """
    if not sys.platform.startswith("linux") or not isinstance(images, np.ndarray):
        return False
    obj = images
    while isinstance(obj, np.ndarray):
        if isinstance(obj, np.memmap):
            return getattr(obj, "mode", None) in ("r", "r+", "readonly", "readwrite")
        obj = obj.base
    return False


def pid_alive(pid) -> bool:
    """Whether process ``pid`` of this host exists (a lock naming a dead one is stale).

    Not a whole number > 0: False. A process that exists but belongs to another user: True.
    """
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
