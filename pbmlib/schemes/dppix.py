"""DP-Pix: differentially private pixelization (Fan, DBSec 2018) as a scheme.

References
----------
.. [1] Fan, L. (2018). Image Pixelization with Differential Privacy. Data and Applications
       Security and Privacy XXXII (DBSec), LNCS 10980, 148-162. DOI 10.1007/978-3-319-95729-6_10
.. [2] Abadi, M. et al. (2016). Deep Learning with Differential Privacy. ACM CCS, 308-318.
       arXiv:1607.00133
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from .._validation import check_block, check_positive_int, check_real
from .base import Scheme, block_view

__all__ = ["DPPix", "dppix_scale"]


def dppix_scale(*, epsilon: float, cell: int, m: int = 1, channels: int = 1) -> float:
    """Laplace scale of DP-Pix, ``255 * m * channels / (cell**2 * epsilon)`` [1]_ (0 for ``epsilon=inf``).

    The L1 sensitivity of the cell means of one image to ``m`` changed pixels is
    ``255 * m / cell**2`` per channel (a pixel moves its cell's mean by at most
    ``255 / cell**2``); with ``channels`` values per pixel it is ``channels`` times that.

    Examples
    --------
    >>> dppix_scale(epsilon=1, cell=5)
    10.2
    >>> dppix_scale(epsilon=float("inf"), cell=5)
    0.0
    """
    return 0.0 if math.isinf(epsilon) else 255.0 * m * channels / (cell**2 * epsilon)


class DPPix(Scheme):
    """DP-Pix [1]_: pixelise with ``cell x cell`` means, add Laplace noise to every cell mean.

    Each image is cut into ``cell x cell`` cells; every cell (and channel) is replaced by
    its mean plus Laplace noise of scale ``b = 255 * m / (cell**2 * epsilon)`` (times the
    number of channels for colour images, see Notes), then clipped to [0, 255] and
    rounded to uint8. ``epsilon=float("inf")`` is plain pixelation (no noise), the same
    bytes as the ``pixelate`` scheme. Only the training set is protected; test images
    stay clean.

    Parameters
    ----------
    epsilon : float
        Privacy budget per image, > 0; ``float("inf")`` for no noise. Stored as a float.
    cell : int, default=5
        Side ``b`` of the square cells in pixels; must divide the image height and width
        (checked by :meth:`fit`).
    m : int, default=1
        The privacy unit: the number of pixels (of any values) whose change the guarantee
        covers, >= 1. Larger ``m`` means proportionally more noise.

    Fitted attributes
    -----------------
    seeds_ : tuple of one numpy.random.SeedSequence
        The stream of the Laplace noise; :meth:`protect` replays it (calling it twice
        gives the same bytes, so repeated calls do not spend more privacy budget).
    scale_ : float
        The Laplace scale used per cell mean, in grey levels (0 for ``epsilon=inf``).

    Notes
    -----
    **Guarantee (Theorem of [1]_).** For every image on its own, the released pixelised
    image is ``epsilon``-differentially private with respect to any change of at most
    ``m`` pixels, to any values: for two images ``x, x'`` that differ in at most ``m``
    pixels and any set ``S`` of outputs, ``P[M(x) in S] <= exp(epsilon) P[M(x') in S]``.
    The cell means have L1 sensitivity ``255 m / b**2`` (``b = cell``), so Laplace noise
    of scale ``255 m / (b**2 epsilon)`` suffices (the Laplace mechanism); clipping and
    rounding are post-processing and keep the guarantee. A pixel of a colour image is
    ``C`` values, so for ``C`` channels the scale is multiplied by ``C`` (the paper treats
    grey images, ``C = 1``); the guarantee then still covers ``m`` whole pixels.

    **What it does not cover.** The unit is ``m`` pixels of one image, not the image: an
    attacker telling two *different* images apart (other person, other pose: most pixels
    change) faces a budget of about ``epsilon * k / m`` for ``k`` changed pixels,
    which is no protection for whole faces at useful ``epsilon``, so re-identification
    and membership of a whole image are not bounded by ``epsilon``. Nothing bounds what the
    label, the image count or the other images of the same person reveal; each image is
    noised independently, so ``r`` releases of the same person compose to ``r *
    epsilon`` (and independently protected copies of one image, e.g. with fresh seeds,
    compose too). ``epsilon=inf`` gives no guarantee at all: pixelation alone is
    recognisable (McPherson et al. 2016).

    **Not DP-SGD.** DP-SGD [2]_ makes the *trained model* differentially private with
    respect to its training examples; the trainer still sees the raw images. DP-Pix
    protects the *images themselves* against whoever receives them (an untrusted trainer,
    a released data set), which is PBM's threat model. The two answer different
    questions and can be combined.

    Examples
    --------
    >>> x = np.full((2, 10, 10), 100, np.uint8)
    >>> scheme = DPPix(epsilon=1, cell=5)
    >>> out = scheme.fit_protect(x, seed=0)
    >>> out.shape, out.dtype.name, scheme.scale_
    ((2, 10, 10), 'uint8', 10.2)
    >>> bool((DPPix(epsilon=float("inf")).fit_protect(x, seed=0) == 100).all())
    True
    >>> scheme.attack_block(x.shape[1:])
    (5, 5)
    """

    name = "dppix"

    def __init__(self, *, epsilon, cell: int = 5, m: int = 1):
        if isinstance(epsilon, numbers.Real) and not isinstance(epsilon, bool) and float(epsilon) == math.inf:
            self.epsilon = math.inf
        else:
            self.epsilon = check_real(epsilon, name=f"{self.name}: epsilon", low=0.0, low_open=True,
                                      unit='(or float("inf") for plain pixelation)')
        self.cell = check_positive_int(cell, name=f"{self.name}: cell")
        self.m = check_positive_int(m, name=f"{self.name}: m")

    def _check_data(self, images, labels):
        check_block(images.shape[1:3], (self.cell, self.cell))

    def _draw(self, images):
        channels = images.shape[3] if images.ndim == 4 else 1
        self.scale_ = dppix_scale(epsilon=self.epsilon, cell=self.cell, m=self.m, channels=channels)

    def _protect(self, images, labels):
        self._check_same_shape(images)
        block = (self.cell, self.cell)
        means = block_view(images, block).mean(axis=(3, 4), keepdims=True)  # (N, gh, gw, 1, 1[, C]), float64
        if self.scale_ > 0:  # Laplace mechanism on every cell mean and channel
            means = means + self._rng(0).laplace(0.0, self.scale_, size=means.shape)
        out = np.empty_like(images)
        block_view(out, block)[...] = np.clip(np.rint(means), 0, 255).astype(np.uint8)  # post-processing
        return out

    def _mechanism(self):
        from ..privacy.mechanism import Mechanism, Noise

        noise = Noise("laplace", self.scale_) if self.scale_ > 0 else None
        return Mechanism(unit=(self.cell, self.cell), feature="mean", noise=noise)

    def attack_block(self, image_shape):
        return check_block(tuple(image_shape)[:2], (self.cell, self.cell))
