"""What the attacker holds: the released images themselves, or a lossy copy of them.

A released set rarely stays byte-identical: it is re-encoded as JPEG (the paper's
reference code writes quality 75), resized for a preview, brightened by an editor. An
attack that needs the exact bytes (identical blocks) is then blind, while one that
tolerates small changes is not. :func:`attacker_copy` makes each kind of copy of
:data:`COPY_KINDS`; :func:`pbmlib.privacy.audit.audit` (``copies=``) runs every attack
against each and reports fields with the kind as suffix (``worst_membership_auc_jpeg75``,
``worst_reid_top1_jpeg75``; no suffix = ``exact``).

Numpy and Pillow only (numpy tier).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

from .._validation import check_images

__all__ = ["COPY_KINDS", "CopyKind", "attacker_copy", "check_copies"]

_BRIGHTNESS_SHIFT = 4


def _to_pil_stack(images: np.ndarray):
    """(images as 2-D or RGB arrays, function restoring the input's channel layout)."""
    if images.ndim == 3:
        return images, lambda out: out
    channels = images.shape[3]
    if channels == 1:
        return images[..., 0], lambda out: out[..., None]
    if channels == 3:
        return images, lambda out: out
    raise ValueError(f"images must have 1 or 3 channels for a lossy copy, got {channels}; "
                     f"copy grey or RGB images")


def _jpeg(images: np.ndarray, quality: int) -> np.ndarray:
    from PIL import Image

    out = np.empty_like(images)
    for i, image in enumerate(images):  # Pillow encodes one image at a time
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
        buffer.seek(0)
        with Image.open(buffer) as decoded:
            out[i] = np.asarray(decoded)
    return out


def _resized(images: np.ndarray) -> np.ndarray:
    from PIL import Image

    h, w = images.shape[1:3]
    small = (max(1, round(w / 2)), max(1, round(h / 2)))
    out = np.empty_like(images)
    for i, image in enumerate(images):  # Pillow resizes one image at a time
        down = Image.fromarray(image).resize(small, Image.Resampling.BILINEAR)
        out[i] = np.asarray(down.resize((w, h), Image.Resampling.BILINEAR))
    return out


def _exact(images: np.ndarray) -> np.ndarray:
    return images.copy()


def _brighter(images: np.ndarray) -> np.ndarray:
    return np.minimum(images.astype(np.int16) + _BRIGHTNESS_SHIFT, 255).astype(np.uint8)


def _lossy(encode):
    def make(images: np.ndarray) -> np.ndarray:
        flat, restore = _to_pil_stack(images)
        return restore(encode(np.ascontiguousarray(flat)))
    return make


@dataclass(frozen=True)
class CopyKind:
    """One kind of copy of a release an attacker may hold.

    Attributes
    ----------
    description : str
        What the attacker holds (the results schema quotes it).
    make : callable (images) -> images
        Makes the copy (uint8 in, uint8 out, deterministic).
    tolerance : float
        Grey levels by which a copied value typically differs from the release: the
        Gaussian tolerance of the likelihood attacks (:mod:`pbmlib.privacy.likelihood`).
    """

    description: str
    make: object
    tolerance: float


#: Kind of copy -> how it is made and what the attacker holds.
COPY_KINDS = {
    "exact": CopyKind("the released images byte for byte (a lossless release)", _exact, 0.5),
    "jpeg95": CopyKind("the released images re-encoded as JPEG quality 95 (Pillow, default 4:2:0 chroma "
                       "subsampling for colour)", _lossy(lambda x: _jpeg(x, 95)), 2.0),
    "jpeg75": CopyKind("the released images re-encoded as JPEG quality 75 (what the paper's reference code writes)",
                       _lossy(lambda x: _jpeg(x, 75)), 5.0),
    "resized": CopyKind("the released images scaled to half their size and back (bilinear both ways)",
                        _lossy(_resized), 10.0),
    "brightness": CopyKind("the released images with every value raised by 4 grey levels (clipped at 255)",
                           _brighter, 4.0),
}


def attacker_copy(images, kind: str) -> np.ndarray:
    """A copy of ``images`` of the given kind, as an attacker might hold it.

    Parameters
    ----------
    images : ndarray of shape (N, H, W) or (N, H, W, C), uint8 in [0, 255]
        C must be 1 or 3 for the lossy kinds.
    kind : {"exact", "jpeg95", "jpeg75", "resized", "brightness"}
        See :data:`COPY_KINDS`: ``exact`` returns a copy of the bytes; ``jpeg95`` and
        ``jpeg75`` encode and decode every image with Pillow at that quality;
        ``resized`` scales to half the height and width (rounded, at least 1 pixel) and
        back, bilinear both ways; ``brightness`` adds 4 grey levels, clipped at 255.

    Returns
    -------
    ndarray of the shape of ``images``, uint8
        A new array; deterministic (no randomness is involved).

    Examples
    --------
    >>> x = np.full((2, 8, 8), 100, dtype=np.uint8)
    >>> attacker_copy(x, "brightness")[0, 0, 0], attacker_copy(x, "jpeg75").shape
    (np.uint8(104), (2, 8, 8))
    """
    images = check_images(images)
    if not isinstance(kind, str) or kind not in COPY_KINDS:
        raise ValueError(f"kind must be one of {list(COPY_KINDS)}, got {kind!r}")
    return COPY_KINDS[kind].make(images)


def check_copies(copies) -> tuple[str, ...]:
    """Validate a sequence of copy kinds; returns them as a tuple without repeats, in order."""
    if isinstance(copies, str) or copies is None:
        raise ValueError(f"copies must be a sequence of copy kinds such as ('exact', 'jpeg75'), got {copies!r}")
    try:
        kinds = tuple(copies)
    except TypeError:
        raise ValueError(f"copies must be a sequence of copy kinds such as ('exact', 'jpeg75'), "
                         f"got {copies!r}") from None
    unknown = [k for k in kinds if not isinstance(k, str) or k not in COPY_KINDS]
    if unknown:
        raise ValueError(f"copies holds unknown kind(s) {unknown}; choose from {list(COPY_KINDS)}")
    return tuple(dict.fromkeys(kinds))
