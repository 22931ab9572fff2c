"""Defended mixing: PBM variants that attack its weakness, blocks copied verbatim to the same position.

PBM [1]_ releases every block unchanged at its own position, so a block of a candidate
image can be looked up in the released set (membership) and the images can be reassembled
from identical copies and seams. Each variant here changes exactly that, and leaves the
rest of PBM alone: the mixing is PBM's (the same donors and masks as ``pbm`` for the same
seed, from the first fitted stream), and the defence draws from a second stream.

=================  ==========================================================================
``pbm_noise``      PBM, then Gaussian (or Laplace) noise of standard deviation ``sigma`` on
                   every pixel: no block is released verbatim.
``pbm_shuffle``    PBM, then a ``fraction`` of the blocks moved to random positions (and
                   images) within their class (``scope="class"``) or within their image
                   (``scope="image"``): blocks are verbatim but not at their position.
``pbm_average``    every block the mean of ``k`` blocks at the same position, each drawn by
                   PBM's rule (k independent mixings averaged): no block is copied.
``pbm_augment``    PBM, then the paper's augmentation (flip, rotation, brightness) applied
                   *before release*: positions and values move off the block grid.
=================  ==========================================================================

Only the training set is protected; test images stay clean. The attacker knows the
scheme and its parameters (Kerckhoffs): :meth:`attack_block` returns ``block`` for every
variant, and :mod:`pbmlib.privacy.adaptive` holds the attacks designed against these
defences (denoising, position-free block search, mixture models, augmentation search).

References
----------
.. [1] Xiang, Li, Ren, Zhu, Choo. "A Lightweight Privacy-Preserving Scheme Using
       Pixel Block Mixing for Facial Image Classification in Deep Learning."
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from .._validation import check_bool, check_choice, check_labels, check_positive_int, check_real
from ..data.augmentation import Augmentation, augment_images
from ..pbm.mixing import gather_blocks, mixing_sources
from .base import block_view, shares_from_sources
from .pbm import PBM

__all__ = ["PBMNoise", "PBMShuffle", "PBMAverage", "PBMAugment"]


class _DefendedPBM(PBM):
    """PBM's mixing from fitted stream 0 (the bytes of ``pbm`` for the same seed), the
    defence from stream 1. The mixing parameters (``block``, ``n_donors``, ``rounds``,
    ``p``, ``allow_self``) are PBM's, passed through ``**mixing``."""

    _n_streams = 2

    def restoration_log10_probability(self, labels, image_shape):
        """None: Eq. (9) of [1]_ counts PBM's block arrangements, not what a defence adds (noise,
        moves, averages, transforms), and the count is no evidence of privacy anyway."""
        return None


class PBMNoise(_DefendedPBM):
    """PBM, then independent noise on every pixel (and channel) before release.

    Parameters
    ----------
    sigma : float, default=32.0
        Standard deviation of the noise in grey levels, > 0.
    noise : {"gaussian", "laplace"}, default="gaussian"
        Noise distribution (Laplace with scale ``sigma / sqrt(2)``: the same standard
        deviation).
    block, n_donors, rounds, p, allow_self
        As in :class:`~pbmlib.schemes.pbm.PBM`.

    Fitted attributes
    -----------------
    seeds_ : tuple of two numpy.random.SeedSequence
        Stream 0 mixes (as ``pbm`` with the same seed), stream 1 draws the noise.

    Notes
    -----
    Values are clipped to [0, 255] and rounded. No block is released verbatim, but a block
    is still at its position, only noisier: averaging 25 pixels of a 5 x 5 block divides
    the noise by 5, so denoised and block-mean attacks (:mod:`pbmlib.privacy.adaptive`)
    are the ones to run against it. No formal guarantee: the noise is not calibrated to a
    sensitivity (see :class:`~pbmlib.schemes.dppix.DPPix` for one that is).

    Examples
    --------
    >>> x = np.random.default_rng(0).integers(0, 256, (6, 8, 8), dtype=np.uint8)
    >>> y = [0, 0, 0, 1, 1, 1]
    >>> scheme = PBMNoise(sigma=16, block=4, n_donors=2)
    >>> scheme.fit_protect(x, y, seed=0).shape, scheme.label
    ((6, 8, 8), 'pbm_noise sigma=16.0 block=4x4 n_donors=2')
    """

    name = "pbm_noise"

    def __init__(self, *, sigma: float = 32.0, noise: str = "gaussian", **mixing):
        self.sigma = check_real(sigma, name=f"{self.name}: sigma", low=0.0, low_open=True, unit="grey levels")
        self.noise = check_choice(noise, ("gaussian", "laplace"), name=f"{self.name}: noise")
        super().__init__(**mixing)

    def _mechanism(self):
        from ..privacy.mechanism import Noise

        scale = self.sigma if self.noise == "gaussian" else self.sigma / math.sqrt(2.0)
        return dataclasses.replace(super()._mechanism(), noise=Noise(self.noise, scale))

    def _protect(self, images, labels):
        mixed, shares = super()._protect(images, labels)
        rng = self._rng(1)
        if self.noise == "gaussian":
            noise = rng.normal(0.0, self.sigma, size=mixed.shape)
        else:
            noise = rng.laplace(0.0, self.sigma / math.sqrt(2.0), size=mixed.shape)
        return np.clip(np.rint(mixed + noise), 0, 255).astype(np.uint8), shares


class PBMShuffle(_DefendedPBM):
    """PBM, then blocks moved to random positions within their class (or their image).

    Parameters
    ----------
    fraction : float, default=1.0
        Share of the blocks that take part in the shuffle, in (0, 1]; each block is chosen
        independently with this probability, and the chosen blocks of a group are permuted
        uniformly at random among their own slots (a chosen block can land back where it
        was, with the chance of a random permutation).
    scope : {"class", "image"}, default="class"
        ``"class"``: the chosen blocks of all images of a class are permuted together
        (they change image and position); ``"image"``: within each image (they change
        position only).
    block, n_donors, rounds, p, allow_self
        As in :class:`~pbmlib.schemes.pbm.PBM`.

    Fitted attributes
    -----------------
    seeds_ : tuple of two numpy.random.SeedSequence
        Stream 0 mixes (as ``pbm`` with the same seed), stream 1 draws the shuffle.

    Notes
    -----
    Each class keeps exactly the multiset of blocks PBM produced (a permutation). The
    blocks are still verbatim, only elsewhere: a position-free block search
    (:func:`pbmlib.privacy.adaptive.nearest_block_distances` with ``positions="any"``)
    finds them. The images lose their spatial layout, which is what a classifier learns
    from; expect the accuracy cost to grow with ``fraction``.

    Examples
    --------
    >>> x = np.random.default_rng(0).integers(0, 256, (6, 8, 8, 3), dtype=np.uint8)
    >>> PBMShuffle(block=4, n_donors=2).fit_protect(x, [0, 0, 0, 1, 1, 1], seed=0).shape
    (6, 8, 8, 3)
    """

    name = "pbm_shuffle"

    def __init__(self, *, fraction: float = 1.0, scope: str = "class", **mixing):
        self.fraction = check_real(fraction, name=f"{self.name}: fraction", low=0.0, low_open=True, high=1.0)
        self.scope = check_choice(scope, ("class", "image"), name=f"{self.name}: scope")
        super().__init__(**mixing)

    def _mechanism(self):
        return dataclasses.replace(super()._mechanism(), positions="any")

    def _protect(self, images, labels):
        mixed, sources = self._mixed(images, labels, return_sources=True)
        n = mixed.shape[0]
        view = block_view(mixed, self.block)  # (N, gh, gw, bh, bw[, C])
        gh, gw = view.shape[1:3]
        blocks = view.reshape((n * gh * gw,) + view.shape[3:])  # a copy: (N * nb, bh, bw[, C])
        rng = self._rng(1)
        chosen = np.flatnonzero(rng.random(n * gh * gw) < self.fraction)  # flat (image, position) slots
        if self.scope == "class":
            codes, _ = check_labels(labels, n)
            group = np.repeat(codes, gh * gw)[chosen]
        else:
            group = chosen // (gh * gw)
        keys = rng.random(chosen.size)
        slots = chosen[np.argsort(group, kind="stable")]  # every group's slots, in order
        movers = chosen[np.lexsort((keys, group))]  # the same groups, blocks in random order
        source = np.arange(n * gh * gw)
        source[slots] = movers  # slot s receives the block of slot source[s]
        out = np.empty_like(mixed)
        block_view(out, self.block)[...] = blocks[source].reshape(view.shape)
        return out, shares_from_sources(sources.reshape(-1)[source].reshape(sources.shape), n)


class PBMAverage(_DefendedPBM):
    """Every block the mean of ``k`` same-position blocks, each drawn by PBM's rule.

    Parameters
    ----------
    k : int, default=3
        Number of independent PBM mixings averaged, >= 1 (1 is PBM).
    block, n_donors, rounds, p, allow_self
        As in :class:`~pbmlib.schemes.pbm.PBM`. With ``p=1`` no block keeps the image's
        own pixels in any mixing (its own block then enters only as a donor of others).

    Fitted attributes
    -----------------
    seeds_ : tuple of two numpy.random.SeedSequence
        Stream 0 draws the first mixing (as ``pbm`` with the same seed), stream 1 the
        other ``k - 1``.

    Notes
    -----
    Block ``(a, b)`` of output ``i`` is ``mean_j original[s_j(i, a, b)]`` at ``(a, b)``,
    with ``s_1..s_k`` the sources of ``k`` independent PBM draws; the image's own block
    has expected weight ``(1 - p) ** rounds`` (with repeats: the same source can be drawn
    twice). Rounded to uint8. A block is no longer a copy, but a linear mixture at the
    same position: the mixture attack of :mod:`pbmlib.privacy.adaptive` models exactly
    that.

    Examples
    --------
    >>> x = np.random.default_rng(0).integers(0, 256, (6, 8, 8), dtype=np.uint8)
    >>> PBMAverage(k=2, block=4, n_donors=2).fit_protect(x, [0, 0, 0, 1, 1, 1], seed=0).shape
    (6, 8, 8)
    """

    name = "pbm_average"

    def __init__(self, *, k: int = 3, **mixing):
        self.k = check_positive_int(k, name=f"{self.name}: k")
        super().__init__(**mixing)

    def _mechanism(self):
        return dataclasses.replace(super()._mechanism(), average=self.k)

    def _protect(self, images, labels):
        mixed, sources = self._mixed(images, labels, return_sources=True)
        total = mixed.astype(np.float64)
        rng = self._rng(1)
        drawn = [sources]
        for _ in range(self.k - 1):  # one gather per mixing, never per block
            drawn.append(mixing_sources(labels, images.shape[1:], mixing=self.mixing, seed=rng))
            total += gather_blocks(images, drawn[-1])
        return np.clip(np.rint(total / self.k), 0, 255).astype(np.uint8), shares_from_sources(drawn, len(images))


class PBMAugment(_DefendedPBM):
    """PBM, then the paper's augmentation on every released image (flip, rotation, brightness).

    Parameters
    ----------
    rotation : float, default=15.0
        Maximum rotation in degrees, in [0, 180]; each image turns by U(-rotation, rotation).
    brightness : float, default=0.2
        Maximum relative brightness change, in [0, 1): pixels scaled by U(1 - b, 1 + b).
    flip : bool, default=True
        Mirror left-right with probability 0.5.
    block, n_donors, rounds, p, allow_self
        As in :class:`~pbmlib.schemes.pbm.PBM`.

    Fitted attributes
    -----------------
    seeds_ : tuple of two numpy.random.SeedSequence
        Stream 0 mixes (as ``pbm`` with the same seed), stream 1 draws the augmentation.

    Notes
    -----
    Unlike augmentation during training (``run_study`` conditions with an
    :class:`~pbmlib.data.augmentation.Augmentation`), the attacker here only ever sees the
    augmented images: one augmented copy per image is released, made by
    :func:`pbmlib.data.augmentation.augment_images` (bilinear rotation, mirrored border).
    The transforms are few and public, so an attacker can search them
    (:mod:`pbmlib.privacy.adaptive`, ``augment_search``).

    Examples
    --------
    >>> x = np.random.default_rng(0).integers(0, 256, (6, 8, 8), dtype=np.uint8)
    >>> PBMAugment(block=4, n_donors=2).fit_protect(x, [0, 0, 0, 1, 1, 1], seed=0).shape
    (6, 8, 8)
    """

    name = "pbm_augment"

    def __init__(self, *, rotation: float = 15.0, brightness: float = 0.2, flip: bool = True, **mixing):
        self.rotation = check_real(rotation, name=f"{self.name}: rotation", low=0.0, high=180.0, low_open=False,
                                         unit="degrees")
        self.brightness = check_real(brightness, name=f"{self.name}: brightness", low=0.0, high=1.0, low_open=False,
                                           high_open=True)
        self.flip = check_bool(flip, name=f"{self.name}: flip")
        super().__init__(**mixing)

    @property
    def augmentation(self) -> Augmentation:
        """The :class:`~pbmlib.data.augmentation.Augmentation` applied before release."""
        return Augmentation(flip=self.flip, rotation=self.rotation, brightness=self.brightness)

    def _mechanism(self):
        return dataclasses.replace(super()._mechanism(), augmentation=self.augmentation)

    def _protect(self, images, labels):
        mixed, shares = super()._protect(images, labels)
        return augment_images(mixed, augmentation=self.augmentation, seed=self._rng(1)), shares
