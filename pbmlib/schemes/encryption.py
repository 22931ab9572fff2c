"""Learnable image encryptions: pixel-based (Sirichotedumrong et al.) and block-wise (Tanaka).

Both are exact, keyed, invertible transforms; a classifier learns on encrypted
images through an *adaptation network* in front of it, and test images must be
encrypted with the same key.

References
----------
.. [1] Sirichotedumrong, Maekawa, Kinoshita, Kiya (2019). Pixel-based image encryption
       without key management for privacy-preserving deep neural networks. ICIP.
.. [2] Tanaka (2018). Learnable image encryption. ICCE-TW.
"""

from __future__ import annotations

from itertools import permutations

import numpy as np

from .._validation import check_block, check_images, check_rng

__all__ = [
    "PixelKey", "pixel_key", "pixel_encrypt", "pixel_decrypt",
    "BlockKey", "block_key", "block_encrypt", "block_decrypt",
]

# The 6 permutations of 3 colour channels; row k maps output channel c to input channel PERMS[k, c].
PERMS = np.array(list(permutations(range(3))), dtype=np.int64)


class PixelKey:
    """Key of the pixel-based encryption [1]_.

    Attributes
    ----------
    flip : ndarray of bool, shape (H, W, C) or (N, H, W, C)
        K1: where True, the value p becomes 255 - p (negative-positive transform).
    perm : ndarray of int, shape (H, W) or (N, H, W)
        K2: index into the 6 channel permutations, per pixel (colour images only).
    """

    def __init__(self, flip: np.ndarray, perm: np.ndarray):
        self.flip, self.perm = flip, perm


def pixel_key(shape: tuple[int, ...], *, n_images: int | None = None, seed=None) -> PixelKey:
    """Draw a key for images of ``shape`` (H, W) or (H, W, C).

    ``n_images`` draws one key per image (the follow-up work's per-image keys); None
    draws one key shared by every image (the paper's setting).
    """
    rng = check_rng(seed)
    h, w = shape[:2]
    c = shape[2] if len(shape) == 3 else 1
    lead = () if n_images is None else (n_images,)
    return PixelKey(rng.random(lead + (h, w, c)) < 0.5, rng.integers(0, 6, size=lead + (h, w)))


def _with_channels(images):
    images = check_images(images)
    return images if images.ndim == 4 else images[..., None], images.ndim == 3


def pixel_encrypt(images, key: PixelKey) -> np.ndarray:
    """Encrypt: negative-positive transform where K1 is set, then a per-pixel channel shuffle (K2).

    Parameters
    ----------
    images : ndarray (N, H, W) or (N, H, W, C), uint8
    key : PixelKey

    Returns
    -------
    ndarray of the same shape, uint8 (a new array)
    """
    x, gray = _with_channels(images)
    y = np.where(key.flip, 255 - x, x)
    if y.shape[-1] == 3:
        index = PERMS[key.perm]  # (..., H, W, 3), a copying gather
        y = np.take_along_axis(y, np.broadcast_to(index, y.shape), axis=-1)
    elif y.shape[-1] != 1:
        raise ValueError(f"pixel encryption handles 1 or 3 channels, got {y.shape[-1]}")
    return y[..., 0] if gray else y


def pixel_decrypt(images, key: PixelKey) -> np.ndarray:
    """Invert :func:`pixel_encrypt` exactly."""
    y, gray = _with_channels(images)
    if y.shape[-1] == 3:
        inverse = np.argsort(PERMS, axis=1)[key.perm]
        y = np.take_along_axis(y, np.broadcast_to(inverse, y.shape), axis=-1)
    x = np.where(key.flip, 255 - y, y)
    return x[..., 0] if gray else x


class BlockKey:
    """Key of block-wise learnable encryption [2]_: a permutation of the 2 * M * M * C
    4-bit values of an M x M block, and which positions are inverted (15 - v)."""

    def __init__(self, block: int, permutation: np.ndarray, invert: np.ndarray):
        self.block, self.permutation, self.invert = block, permutation, invert


def block_key(channels: int = 3, *, block: int = 4, seed=None) -> BlockKey:
    """Draw a key for ``block x block`` blocks of ``channels`` channels (shared by all blocks and images)."""
    rng = check_rng(seed)
    n_values = 2 * block * block * channels
    return BlockKey(block, rng.permutation(n_values), rng.random(n_values) < 0.5)


def _to_nibbles(images, block):
    x, gray = _with_channels(images)
    n, h, w, c = x.shape
    check_block((h, w), (block, block))
    b = x.reshape(n, h // block, block, w // block, block, c).transpose(0, 1, 3, 2, 4, 5)
    b = b.reshape(n, h // block, w // block, block * block * c)
    return np.concatenate([b >> 4, b & 15], axis=-1), (n, h, w, c, gray)


def _from_nibbles(nibbles, block, meta):
    n, h, w, c, gray = meta
    half = nibbles.shape[-1] // 2
    b = ((nibbles[..., :half] << 4) | nibbles[..., half:]).astype(np.uint8)
    x = b.reshape(n, h // block, w // block, block, block, c).transpose(0, 1, 3, 2, 4, 5).reshape(n, h, w, c)
    return x[..., 0] if gray else x


def block_encrypt(images, key: BlockKey) -> np.ndarray:
    """Encrypt: split each 8-bit value of every block into two 4-bit halves, permute the
    halves with the key, invert the keyed positions (15 - v), merge back. H and W must be
    multiples of the block size."""
    nibbles, meta = _to_nibbles(images, key.block)
    if nibbles.shape[-1] != key.permutation.size:
        raise ValueError(f"key is for {key.permutation.size // (2 * key.block ** 2)} channels, "
                         f"images have {meta[3]}")
    shuffled = nibbles[..., key.permutation]
    shuffled = np.where(key.invert, 15 - shuffled, shuffled)
    return _from_nibbles(shuffled, key.block, meta)


def block_decrypt(images, key: BlockKey) -> np.ndarray:
    """Invert :func:`block_encrypt` exactly."""
    nibbles, meta = _to_nibbles(images, key.block)
    nibbles = np.where(key.invert, 15 - nibbles, nibbles)
    restored = np.empty_like(nibbles)
    restored[..., key.permutation] = nibbles
    return _from_nibbles(restored, key.block, meta)
