"""VisualMixer: spatial pixel shuffling inside windows, guided by Visual Feature Entropy.

References
----------
.. [1] Li, Zhang, Ren, Li, Zhang (2024). You Can Use But Cannot Recognize: Preserving
       Visual Privacy in Deep Neural Networks. NDSS. arXiv:2404.04098.

Notes
-----
We follow the paper, not its public code: each image is shuffled once (the code's batch
loop re-shuffles image j of a batch j + 1 times), and the sub-block size of each window
really depends on its visual features (the code's thresholds almost always pick the
finest setting). The per-window rule used here: windows are ranked by their share of the
image's gradient energy (their VFE); the densest third gets the finest sub-blocks
(``levels[0]``), the middle third ``levels[1]``, the sparsest ``levels[2]``.

VFE has two definitions (``vfe=``). ``"paper"``: squared forward differences inside each
window, the last row and column having no neighbour there. ``"reference"``: as the
public code's ``partial_derivative`` computes it, which pads each window with a row and a
column of zeros, so the last column adds x^2 (its difference to the zero padding) and
the last row too. On grey levels this edge term is large and ranks windows by the
brightness of their borders rather than by their texture: on the bundled faces at 24 x 24
with 8-pixel windows the two rankings of an image's windows correlate weakly (Spearman
0.29 on average) and give a window the same sub-block size 47 % of the time (chance 33 %).
The reference applies it to
ImageNet-normalised, attention-weighted tensors; here it runs on the grey levels 0-255.
Neither reproduces the paper's saliency network, VFE target or ST-Adam optimizer.
"""

from __future__ import annotations

import numpy as np

from .._validation import check_block, check_images, check_positive_int, check_rng
from .base import Scheme, block_view

__all__ = ["VFE_DEFINITIONS", "window_energy", "visual_feature_entropy", "visualmixer_shuffle", "VisualMixer"]

#: The two definitions of Visual Feature Entropy (see the module Notes).
VFE_DEFINITIONS = {
    "paper": "sum of squared forward differences inside each window (the paper)",
    "reference": "the same with each window zero-padded on the right and bottom, so its last column and row "
                 "add their squared values (the public code)",
}


def _check_vfe(vfe, prefix: str = "") -> str:
    if not isinstance(vfe, str) or vfe not in VFE_DEFINITIONS:
        raise ValueError(f"{prefix}vfe must be one of {list(VFE_DEFINITIONS)}, got {vfe!r}")
    return vfe


def window_energy(images, window: int, *, vfe: str = "paper") -> np.ndarray:
    """Sum of squared forward differences (dx^2 + dy^2) per window and channel.

    Parameters
    ----------
    images : ndarray (N, H, W) or (N, H, W, C), uint8
    window : int
        Window side in pixels; must divide H and W.
    vfe : {"paper", "reference"}, default="paper"
        ``paper``: differences are taken inside each window (the last row/column of a
        window has no forward neighbour there and contributes 0). ``reference``: as the
        public code, each window padded with zeros on the right and bottom, so the last
        column adds its squared values (dx = 0 - x) and so does the last row (the corner
        twice).

    Returns
    -------
    ndarray of shape (N, H // window, W // window, C), float64
    """
    vfe = _check_vfe(vfe)
    x = check_images(images)
    x = (x if x.ndim == 4 else x[..., None]).astype(np.float64)
    cells = block_view(x, (window, window))  # (N, gh, gw, window, window, C)
    dy = np.diff(cells, axis=3)
    dx = np.diff(cells, axis=4)
    energy = (dy**2).sum(axis=(3, 4)) + (dx**2).sum(axis=(3, 4))
    if vfe == "reference":  # zero padding: the last column and the last row differ from 0
        energy += (cells[:, :, :, :, -1] ** 2).sum(axis=3) + (cells[:, :, :, -1, :] ** 2).sum(axis=3)
    return energy


def visual_feature_entropy(images, *, window: int = 16, vfe: str = "paper") -> np.ndarray:
    """VFE per image: window gradient energy averaged over windows and channels [1]_.

    Parameters
    ----------
    images : ndarray (N, H, W) or (N, H, W, C), uint8
    window : int, default=16
    vfe : {"paper", "reference"}, default="paper"
        See :func:`window_energy`.

    Returns
    -------
    ndarray of shape (N,), float64 (grey levels squared per window)
    """
    return window_energy(images, window, vfe=vfe).mean(axis=(1, 2, 3))


def _shuffle_subblocks(x: np.ndarray, window: int, sub: int, rng: np.random.Generator) -> np.ndarray:
    """Permute the sub x sub sub-blocks inside every window, independently per channel."""
    n, h, w, c = x.shape
    gh, gw, k = h // window, w // window, window // sub
    blocks = x.reshape(n, gh, k, sub, gw, k, sub, c).transpose(0, 1, 4, 7, 2, 5, 3, 6)
    blocks = blocks.reshape(n, gh, gw, c, k * k, sub, sub)
    order = np.argsort(rng.random((n, gh, gw, c, k * k)), axis=-1)
    shuffled = np.take_along_axis(blocks, order[..., None, None], axis=4)
    shuffled = shuffled.reshape(n, gh, gw, c, k, k, sub, sub).transpose(0, 1, 4, 6, 2, 5, 7, 3)
    return shuffled.reshape(n, h, w, c)


def visualmixer_shuffle(images, *, window: int = 8, levels=(1, 2, 4), vfe: str = "paper", seed=None) -> np.ndarray:
    """Shuffle sub-blocks inside windows, finer where the visual features are denser [1]_.

    Parameters
    ----------
    images : ndarray (N, H, W) or (N, H, W, C), uint8
    window : int, default=8
        Window (cell) side in pixels; must divide H and W (the paper uses 16 at 224).
    levels : tuple of int, default=(1, 2, 4)
        Sub-block sides from finest to coarsest; each must divide ``window``.
    vfe : {"paper", "reference"}, default="paper"
        Which VFE ranks the windows (:func:`window_energy`).
    seed : None, int or numpy.random.Generator

    Returns
    -------
    ndarray of the same shape, uint8. Every window keeps its pixel values (and so its
    mean: the mosaic survives).
    """
    images = check_images(images)
    vfe = _check_vfe(vfe)
    rng = check_rng(seed)
    x = images if images.ndim == 4 else images[..., None]
    n, h, w, c = x.shape
    check_block((h, w), (window, window))
    for s in levels:
        if window % s:
            raise ValueError(f"sub-block size {s} does not divide the window {window}; use divisors of {window}")
    energy = window_energy(images, window, vfe=vfe).sum(axis=3)  # (N, gh, gw)
    flat = energy.reshape(n, -1)
    rank = np.argsort(np.argsort(-flat, axis=1, kind="stable"), axis=1)  # 0 = densest window
    level = np.minimum(rank * len(levels) // flat.shape[1], len(levels) - 1).reshape(energy.shape)
    out = np.empty_like(x)
    for i, sub in enumerate(levels):
        shuffled = _shuffle_subblocks(x, window, sub, rng)
        mask = np.repeat(np.repeat(level == i, window, axis=1), window, axis=2)[..., None]
        np.copyto(out, shuffled, where=np.broadcast_to(mask, out.shape))
    return out if images.ndim == 4 else out[..., 0]


class VisualMixer(Scheme):
    """VisualMixer [1]_: sub-blocks shuffled inside every window, finer where the visual
    features are denser; training and test images are both shuffled (``transforms_test``).

    Parameters
    ----------
    window : int, default=8
        Window side in pixels; must divide the image height and width (the paper uses 16
        at 224 x 224).
    levels : sequence of int, default=(1, 2, 4)
        Sub-block sides from finest to coarsest; each must divide ``window``. Stored as a
        tuple.
    vfe : {"paper", "reference"}, default="paper"
        Which Visual Feature Entropy ranks the windows: the paper's definition, or the
        public code's, with its zero-padding edge term (:data:`VFE_DEFINITIONS`,
        :func:`window_energy`).

    Fitted attributes
    -----------------
    seeds_ : tuple of two numpy.random.SeedSequence
        The training stream (used by :meth:`protect`) and the test stream (used by
        :meth:`protect_test`): VisualMixer is a procedure, not a key, so test images get
        fresh randomness independent of the training images'.

    Notes
    -----
    The attacker knows the window grid (:meth:`attack_block` returns ``(window, window)``):
    every window keeps its pixel values, so its mean survives (the mosaic matcher).

    Examples
    --------
    >>> x = np.random.default_rng(0).integers(0, 256, (2, 16, 16, 3), dtype=np.uint8)
    >>> scheme = VisualMixer(window=8).fit(x, seed=0)
    >>> scheme.protect(x).shape, scheme.attack_block(x.shape[1:])
    ((2, 16, 16, 3), (8, 8))
    """

    name = "visualmixer"
    transforms_test = True
    _n_streams = 2

    def __init__(self, *, window: int = 8, levels=(1, 2, 4), vfe: str = "paper"):
        self.window = check_positive_int(window, name=f"{self.name}: window")
        self.vfe = _check_vfe(vfe, prefix=f"{self.name}: ")
        try:
            levels = tuple(levels)
        except TypeError:
            raise ValueError(f"{self.name}: levels must be a sequence of sub-block sides, got {levels!r}") from None
        if not levels:
            raise ValueError(f"{self.name}: levels must hold at least one sub-block side, got {levels!r}")
        self.levels = tuple(check_positive_int(v, name=f"{self.name}: levels") for v in levels)
        bad = [v for v in self.levels if self.window % v]
        if bad:
            raise ValueError(f"{self.name}: levels {bad} do not divide the window {self.window}; "
                             f"use divisors of {self.window}")

    def _check_data(self, images, labels):
        check_block(images.shape[1:3], (self.window, self.window))

    def _protect(self, images, labels):
        return visualmixer_shuffle(images, window=self.window, levels=self.levels, vfe=self.vfe,
                                   seed=self._rng(0))

    def _protect_test(self, images):
        return visualmixer_shuffle(images, window=self.window, levels=self.levels, vfe=self.vfe,
                                   seed=self._rng(1))

    def _mechanism(self):
        from ..privacy.mechanism import Mechanism

        return Mechanism(unit=(self.window, self.window), feature="sorted")  # pixels only move inside windows

    def attack_block(self, image_shape):
        return check_block(tuple(image_shape)[:2], (self.window, self.window))
