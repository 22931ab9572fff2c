"""Deterministic baselines: no protection, Gaussian blur, pixelation and a black box mask.

None of them uses randomness (``randomized = False``: ``seed`` is checked and ignored) or
transforms the test set.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

from .._validation import check_block, check_positive_int, check_real
from .base import Scheme, block_view

__all__ = ["Identity", "GaussianBlur", "Pixelation", "BlackBoxMask"]


class Identity(Scheme):
    """No protection: a copy of the originals (the reference row of every comparison).

    Examples
    --------
    >>> x = np.zeros((2, 4, 4), np.uint8)
    >>> Identity().fit_protect(x).shape, Identity().label
    ((2, 4, 4), 'none')
    """

    name = "none"
    is_reference = True
    randomized = False

    def _protect(self, images, labels):
        return images.copy()

    def _mechanism(self):
        from ..privacy.mechanism import Mechanism

        return Mechanism()


class GaussianBlur(Scheme):
    """Gaussian blur of every image, each channel on its own (baseline).

    Parameters
    ----------
    sigma : float, default=2.0
        Standard deviation of the Gaussian in pixels, > 0. Stored as a float.

    Notes
    -----
    Borders are reflected; values are rounded back to uint8.

    Examples
    --------
    >>> flat = np.full((1, 8, 8, 3), 77, np.uint8)
    >>> bool((GaussianBlur(sigma=1.5).fit_protect(flat) == 77).all())
    True
    """

    name = "blur"
    randomized = False

    def __init__(self, *, sigma: float = 2.0):
        self.sigma = check_real(sigma, name=f"{self.name}: sigma", low=0.0, low_open=True, unit="pixels")

    def _mechanism(self):
        from ..privacy.mechanism import Mechanism

        return Mechanism(transform=self.protect)  # deterministic: the attacker blurs candidates the same way

    def _protect(self, images, labels):
        sigma = (0, self.sigma, self.sigma) + ((0,) if images.ndim == 4 else ())
        out = gaussian_filter(images.astype(np.float32), sigma=sigma, mode="reflect")
        return np.clip(np.rint(out), 0, 255).astype(np.uint8)


class Pixelation(Scheme):
    """Replace every ``cell x cell`` square by its mean, per channel (baseline).

    Parameters
    ----------
    cell : int, default=5
        Side of the square cells in pixels; must divide the image height and width
        (checked by :meth:`fit`).

    Notes
    -----
    The attacker knows the cell grid: :meth:`attack_block` returns ``(cell, cell)``.

    Examples
    --------
    >>> x = np.arange(16, dtype=np.uint8).reshape(1, 4, 4)
    >>> Pixelation(cell=2).fit_protect(x)[0]
    array([[ 2,  2,  4,  4],
           [ 2,  2,  4,  4],
           [10, 10, 12, 12],
           [10, 10, 12, 12]], dtype=uint8)
    """

    name = "pixelate"
    randomized = False

    def __init__(self, *, cell: int = 5):
        self.cell = check_positive_int(cell, name=f"{self.name}: cell")

    def _check_data(self, images, labels):
        check_block(images.shape[1:3], (self.cell, self.cell))

    def _protect(self, images, labels):
        block = (self.cell, self.cell)
        means = np.rint(block_view(images, block).mean(axis=(3, 4), keepdims=True)).astype(np.uint8)
        out = np.empty_like(images)
        block_view(out, block)[...] = means  # broadcast over each cell
        return out

    def attack_block(self, image_shape):
        return check_block(tuple(image_shape)[:2], (self.cell, self.cell))

    def _mechanism(self):
        from ..privacy.mechanism import Mechanism

        return Mechanism(unit=(self.cell, self.cell), feature="mean")


class BlackBoxMask(Scheme):
    """Black out a centred box covering ``fraction`` of the height and of the width (baseline,
    e.g. over the eyes or the face).

    Parameters
    ----------
    fraction : float, default=0.5
        Box height and width as a fraction of the image's, in (0, 1]; at least 1 pixel.

    Examples
    --------
    >>> masked = BlackBoxMask(fraction=0.4).fit_protect(np.full((1, 10, 10), 9, np.uint8))
    >>> int(masked.sum()) == 9 * (100 - 16)
    True
    """

    name = "mask"
    randomized = False

    def __init__(self, *, fraction: float = 0.5):
        self.fraction = check_real(fraction, name=f"{self.name}: fraction", low=0.0, low_open=True, high=1.0)

    def _mechanism(self):
        from ..privacy.mechanism import Mechanism

        return Mechanism(transform=self.protect)  # deterministic: the attacker masks candidates the same way

    def _protect(self, images, labels):
        out = images.copy()
        h, w = images.shape[1:3]
        bh, bw = max(1, round(h * self.fraction)), max(1, round(w * self.fraction))
        top, left = (h - bh) // 2, (w - bw) // 2
        out[:, top:top + bh, left:left + bw] = 0
        return out
