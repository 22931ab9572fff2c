"""Mix an image folder into a new folder: ``src/<label>/*`` to ``dst/<label>/*``."""

from __future__ import annotations

import io
import os
from collections import Counter
import time
from pathlib import Path

import numpy as np

from .._io import versions, write_bytes_atomic, write_image_atomic, write_json_atomic
from ..data.datasets import list_image_folder, read_image, _stack
from .mixing import mix_blocks, n_blocks
from .restoration import restoration_log10_probability

__all__ = ["mix_folder", "MANIFEST_NAME", "PROVENANCE_NAME"]

MANIFEST_NAME = "manifest.json"
PROVENANCE_NAME = "provenance.npz"


def _check_destination(src: Path, dst: Path, overwrite: bool) -> None:
    src_r, dst_r = src.resolve(), dst.resolve()
    if dst_r == src_r or src_r in dst_r.parents:
        raise ValueError(f"dst {dst} is inside src {src}; choose a destination outside the source folder")
    if dst_r in src_r.parents:
        raise ValueError(f"src {src} is inside dst {dst}; choose a destination that does not contain the source")
    if dst.exists() and not dst.is_dir():
        raise ValueError(f"dst {dst} exists and is not a folder")
    if dst.exists() and any(dst.iterdir()) and not overwrite:
        raise ValueError(f"dst {dst} is not empty; choose an empty or new folder, or pass overwrite=True")


def mix_folder(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    *,
    size=None,
    mode: str | None = None,
    overwrite: bool = False,
    jpeg_quality: int = 95,
    progress: bool = False,
    **mix_kwargs,
) -> dict:
    """Mix every image of ``src/<label>/`` with same-label blocks and write ``dst/<label>/``.

    Parameters
    ----------
    src : path
        A folder with one sub-folder per label holding .png/.jpg/... files. Never written to.
    dst : path
        Output folder; created if missing. Must be empty unless ``overwrite=True``
        (then same-named files are replaced; nothing else is deleted).
    size : None, int or (height, width)
        Resize every image first (the paper resizes to one size; its code uses 192 x 192).
    mode : None, "L" or "RGB"
        Channel layout; None keeps what the files have and requires them to agree.
    overwrite : bool, default=False
    jpeg_quality : int, default=95
        Quality of .jpg/.jpeg outputs (the reference code uses 75). Other formats are lossless.
    progress : bool, default=False
        Show a tqdm progress bar while reading and writing.
    **mix_kwargs
        Passed to :func:`pbmlib.mix_blocks`: ``block`` (required), ``n_donors``,
        ``rounds``, ``p``, ``seed``, ``allow_self``, ``strict``.

    Returns
    -------
    dict
        The manifest that was written to ``dst/manifest.json``: parameters, versions,
        file list, class sizes, N_b, log10 restoration probability, timings. Block
        provenance (the source file index of every output block) is in
        ``dst/provenance.npz`` (``sources``, ``files``).

    Notes
    -----
    Files keep their names and sub-folders. Every file, the manifest included, is
    written to a temporary name and renamed, so an interrupted run never leaves a
    half-written image under its final name.
    """
    from tqdm.auto import tqdm

    src, dst = Path(src), Path(dst)
    if "block" not in mix_kwargs:
        raise ValueError("mix_folder needs block=(height, width) in pixels, e.g. block=(24, 24)")
    _check_destination(src, dst, overwrite)
    started = time.perf_counter()
    files, labels = list_image_folder(src)
    rel = [f.relative_to(src).as_posix() for f in files]
    arrays = [read_image(f, size=size, mode=mode) for f in tqdm(files, desc="read", disable=not progress)]
    images = _stack(arrays, rel)
    read_s = time.perf_counter() - started

    t0 = time.perf_counter()
    mixed, sources = mix_blocks(images, labels, return_sources=True, **mix_kwargs)
    mix_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    dst.mkdir(parents=True, exist_ok=True)
    for name, image in tqdm(list(zip(rel, mixed)), desc="write", disable=not progress):
        write_image_atomic(dst / name, image, jpeg_quality=jpeg_quality)
    write_s = time.perf_counter() - t0

    class_sizes = dict(Counter(labels))  # insertion order: first appearance
    nb = n_blocks(images.shape[1:], mix_kwargs["block"])
    parameters = {k: v for k, v in mix_kwargs.items() if k != "seed" or not isinstance(v, np.random.Generator)}
    parameters["block"] = list(mix_kwargs["block"])
    manifest = {
        "source": str(src.resolve()),
        "parameters": {**parameters, "size": size, "mode": mode, "jpeg_quality": jpeg_quality},
        "seed": mix_kwargs.get("seed"),
        "image_shape": list(images.shape[1:]),
        "n_images": len(rel),
        "class_sizes": class_sizes,
        "n_blocks": nb,
        "log10_restoration_probability": restoration_log10_probability(class_sizes, nb),
        "files": rel,
        "labels": labels,
        "provenance": PROVENANCE_NAME,
        "seconds": {"read": read_s, "mix": mix_s, "write": write_s},
        "versions": versions(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    buffer = io.BytesIO()
    np.savez_compressed(buffer, sources=sources, files=np.array(rel))
    write_bytes_atomic(dst / PROVENANCE_NAME, buffer.getvalue())
    write_json_atomic(dst / MANIFEST_NAME, manifest)
    return manifest
