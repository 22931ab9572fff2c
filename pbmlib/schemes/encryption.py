"""Learnable image encryptions: pixel-based (Sirichotedumrong et al.) and block-wise (Tanaka).

Both are exact, keyed, invertible transforms; a classifier learns on encrypted
images through an *adaptation network* in front of it, and test images must be
encrypted with the same key. The ciphers are plain functions of a key
(``pixel_key``/``pixel_encrypt``, ``block_key``/``block_encrypt``); the schemes
:class:`PixelEncryption` and :class:`BlockEncryption` draw the key in ``fit``.

References
----------
.. [1] Sirichotedumrong, Maekawa, Kinoshita, Kiya (2019). Pixel-based image encryption
       without key management for privacy-preserving deep neural networks. ICIP.
.. [2] Tanaka (2018). Learnable image encryption. ICCE-TW.
"""

from __future__ import annotations

from itertools import permutations

import numpy as np

from .._validation import check_block, check_bool, check_images, check_pair, check_rng
from .base import Scheme, block_view

__all__ = [
    "PixelKey", "pixel_key", "pixel_encrypt", "pixel_decrypt",
    "BlockKey", "block_key", "block_encrypt", "block_decrypt",
    "PixelEncryption", "BlockEncryption",
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
    """Key of block-wise learnable encryption [2]_: a permutation of the 2 * bh * bw * C
    4-bit values of a ``bh x bw`` block, and which positions are inverted (15 - v).

    Attributes
    ----------
    block : (int, int)
        Block height and width in pixels (M x M in [2]_).
    permutation : ndarray of int, shape (2 * bh * bw * C,)
    invert : ndarray of bool, shape (2 * bh * bw * C,)
    """

    def __init__(self, block, permutation: np.ndarray, invert: np.ndarray):
        self.block = check_pair(block, name="block_key: block")
        self.permutation, self.invert = permutation, invert


def block_key(channels: int = 3, *, block=4, seed=None) -> BlockKey:
    """Draw a key for ``block`` blocks of ``channels`` channels (shared by all blocks and images).

    Parameters
    ----------
    channels : int, default=3
    block : int or (int, int), default=4
        Block side (a square, as in [2]_) or ``(height, width)`` in pixels.
    seed : None, int or numpy.random.Generator
        Pass an int for reproducible output.
    """
    rng = check_rng(seed)
    bh, bw = check_pair(block, name="block_key: block")
    n_values = 2 * bh * bw * channels
    return BlockKey((bh, bw), rng.permutation(n_values), rng.random(n_values) < 0.5)


def _to_nibbles(images, block):
    x, gray = _with_channels(images)
    n, h, w, c = x.shape
    bh, bw = check_block((h, w), block)
    b = block_view(x, (bh, bw)).reshape(n, h // bh, w // bw, bh * bw * c)  # (N, gh, gw, bh*bw*C), a copy
    return np.concatenate([b >> 4, b & 15], axis=-1), (n, h, w, c, gray)


def _from_nibbles(nibbles, block, meta):
    n, h, w, c, gray = meta
    bh, bw = block
    half = nibbles.shape[-1] // 2
    b = ((nibbles[..., :half] << 4) | nibbles[..., half:]).astype(np.uint8)
    x = np.empty((n, h, w, c), np.uint8)
    block_view(x, (bh, bw))[...] = b.reshape(n, h // bh, w // bw, bh, bw, c)
    return x[..., 0] if gray else x


def block_encrypt(images, key: BlockKey) -> np.ndarray:
    """Encrypt: split each 8-bit value of every block into two 4-bit halves, permute the
    halves with the key, invert the keyed positions (15 - v), merge back.

    Parameters
    ----------
    images : ndarray (N, H, W) or (N, H, W, C), uint8
        H and W must be multiples of the block height and width.
    key : BlockKey

    Returns
    -------
    ndarray of the same shape, uint8 (a new array)
    """
    nibbles, meta = _to_nibbles(images, key.block)
    if nibbles.shape[-1] != key.permutation.size:
        raise ValueError(f"key is for {key.permutation.size // (2 * key.block[0] * key.block[1])} channels, "
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


# -- the two ciphers as schemes -----------------------------------------------------------------

class PixelEncryption(Scheme):
    """Pixel-based encryption [1]_: negative-positive transform and channel shuffle per pixel.

    The training and the test images are encrypted (``transforms_test``); a classifier
    learns through the ``"pixel"`` adaptation network.

    Parameters
    ----------
    per_image_keys : bool, default=False
        False: one key shared by every image (the paper's setting), drawn by :meth:`fit`
        and used by :meth:`protect` and :meth:`protect_test`. True: one key per image (the
        follow-up work's setting, no key management), drawn in :meth:`protect` from the
        fitted training stream and in :meth:`protect_test` from the fitted test stream.

    Fitted attributes
    -----------------
    seeds_ : tuple of two numpy.random.SeedSequence
        Training and test streams.
    key_ : PixelKey or None
        The shared key for images of shape ``image_shape_`` (None with per-image keys).

    Notes
    -----
    Images must have 1 or 3 channels. With a shared key the attacker can encrypt chosen
    images with it (:meth:`protect_public` returns :meth:`protect_test`).

    Examples
    --------
    >>> x = np.random.default_rng(0).integers(0, 256, (4, 8, 8, 3), dtype=np.uint8)
    >>> scheme = PixelEncryption().fit(x, seed=0)
    >>> np.array_equal(scheme.protect(x), scheme.protect_test(x))
    True
    >>> np.array_equal(pixel_decrypt(scheme.protect(x), scheme.key_), x)
    True
    """

    name = "pixel_encryption"
    transforms_test = True
    adaptation = "pixel"
    _n_streams = 2

    def __init__(self, *, per_image_keys: bool = False):
        self.per_image_keys = check_bool(per_image_keys, name=f"{self.name}: per_image_keys")

    def _check_data(self, images, labels):
        channels = images.shape[3] if images.ndim == 4 else 1
        if channels not in (1, 3):
            raise ValueError(f"pixel encryption handles 1 or 3 channels, got {channels}")

    def _draw(self, images):
        self.key_ = None if self.per_image_keys else pixel_key(images.shape[1:], seed=self._rng(0))

    def _encrypt(self, images, stream):
        if self.per_image_keys:
            return pixel_encrypt(images, pixel_key(images.shape[1:], n_images=len(images), seed=self._rng(stream)))
        self._check_same_shape(images)
        return pixel_encrypt(images, self.key_)

    def _protect(self, images, labels):
        return self._encrypt(images, 0)

    def _protect_test(self, images):
        return self._encrypt(images, 1)

    def _mechanism(self):
        from ..privacy.mechanism import Mechanism

        # flips v -> 255 - v and channel permutations leave the sorted |v - 127.5| of each pixel
        return Mechanism(unit=(1, 1), feature="abs_sorted", keyed=True)


class BlockEncryption(Scheme):
    """Block-wise learnable encryption [2]_: a keyed shuffle and inversion of the 4-bit halves
    of every block's values, the same key for every block and image.

    The training and the test images are encrypted with the key drawn by :meth:`fit`
    (``transforms_test``); a classifier learns through the ``"block"`` adaptation network.

    Parameters
    ----------
    block : int or (int, int), default=4
        Block side (M in [2]_) or ``(height, width)`` in pixels; must divide the image
        height and width. Stored as a tuple. The ``"block"`` adaptation network assumes 4x4.

    Fitted attributes
    -----------------
    seeds_ : tuple of one numpy.random.SeedSequence
    key_ : BlockKey
        For images with the channels seen by :meth:`fit`.

    Notes
    -----
    The attacker knows the block grid (:meth:`attack_block`) and can encrypt chosen images
    with the key (:meth:`protect_public`).

    Examples
    --------
    >>> x = np.random.default_rng(0).integers(0, 256, (2, 8, 8, 3), dtype=np.uint8)
    >>> scheme = BlockEncryption().fit(x, seed=0)
    >>> np.array_equal(block_decrypt(scheme.protect(x), scheme.key_), x)
    True
    """

    name = "block_encryption"
    transforms_test = True
    adaptation = "block"

    def __init__(self, *, block=4):
        self.block = check_pair(block, name=f"{self.name}: block")

    def _check_data(self, images, labels):
        check_block(images.shape[1:3], self.block)

    def _draw(self, images):
        channels = images.shape[3] if images.ndim == 4 else 1
        self.key_ = block_key(channels, block=self.block, seed=self._rng(0))

    def _protect(self, images, labels):
        return block_encrypt(images, self.key_)

    def _protect_test(self, images):
        return block_encrypt(images, self.key_)

    def _mechanism(self):
        from ..privacy.mechanism import Mechanism

        # a keyed permutation and inversion of a block's 4-bit halves leaves their folded multiset
        return Mechanism(unit=self.block, feature="nibbles_folded_sorted", keyed=True)

    def attack_block(self, image_shape):
        return check_block(tuple(image_shape)[:2], self.block)
