"""Encoding what pbmlib writes: image formats, JSON, the versions a run records, memory-map pages.

How files reach the disk (atomic writes, locks, staged folders) is :mod:`pbmlib._fs`.
"""

from __future__ import annotations

import ctypes
import json
import mmap
import os
import sys
from importlib import metadata
from pathlib import Path

import numpy as np
from PIL import Image

from ._fs import write_bytes_atomic

_JPEG_SUFFIXES = {".jpg", ".jpeg"}

#: Output image formats: name -> (file suffix, Pillow format, lossless).
IMAGE_FORMATS = {"png": (".png", "PNG", True), "jpeg": (".jpg", "JPEG", False), "webp": (".webp", "WEBP", True)}
#: JPEG quality accepted: Pillow advises against values above 95 (100 disables parts of the compression).
JPEG_QUALITY_RANGE = (1, 95)


def to_json(obj) -> str:
    """``obj`` as indented JSON text (numpy scalars and arrays, paths converted); raises before any write."""
    return json.dumps(obj, indent=2, default=_json_default) + "\n"


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


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


def versions(*, platform: bool = False) -> dict[str, str]:
    """Versions of Python and of the packages results depend on.

    ``platform=True`` adds the host's platform string (kernel build): for run records kept
    by their owner, never for what is shared (``release.json``).
    """
    found = {"python": sys.version.split()[0]}
    if platform:
        import platform as host

        found["platform"] = host.platform()
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
