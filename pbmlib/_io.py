"""Atomic file writes and the run record written next to every result."""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
from importlib import metadata
from pathlib import Path

import numpy as np
from PIL import Image

_JPEG_SUFFIXES = {".jpg", ".jpeg"}


def _atomic_target(path: Path):
    """A temporary file beside ``path`` (same file system, so ``os.replace`` is atomic)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
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


def write_json_atomic(path: str | os.PathLike, obj) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    write_bytes_atomic(path, (json.dumps(obj, indent=2, default=_json_default) + "\n").encode())


def write_image_atomic(path: str | os.PathLike, image: np.ndarray, *, jpeg_quality: int = 95) -> None:
    """Save a uint8 (H, W) or (H, W, C) image; the format follows the file suffix."""
    path = Path(path)
    tmp = _atomic_target(path)
    try:
        options = {"quality": jpeg_quality} if path.suffix.lower() in _JPEG_SUFFIXES else {}
        fmt = Image.registered_extensions().get(path.suffix.lower())
        if fmt is None:
            raise ValueError(f"cannot write {path.name}: unknown image suffix {path.suffix!r}")
        Image.fromarray(image).save(tmp, format=fmt, **options)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
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
