"""Label-based Pixel Block Mixing as a scheme (the protection this library is about).

References
----------
.. [1] Xiang, Li, Ren, Zhu, Choo. "A Lightweight Privacy-Preserving Scheme Using
       Pixel Block Mixing for Facial Image Classification in Deep Learning."
"""

from __future__ import annotations

import numpy as np

from .._validation import check_labels
from ..pbm.mixing import mix_blocks
from ..pbm.restoration import restoration_log10_probability
from ..pbm.settings import Mixing
from .base import Scheme, shares_from_sources

__all__ = ["PBM"]


class PBM(Scheme):
    """Label-based Pixel Block Mixing [1]_: blocks swapped between images of the same class.

    Only the training set is protected; test images stay clean. See
    :func:`pbmlib.mix_blocks` for the algorithm.

    Parameters
    ----------
    block : int or (int, int), default=(5, 5)
        Block height and width in pixels ``(L_b, W_b)``; an int means a square. Must
        divide the image height and width (checked by :meth:`fit`). Stored as a tuple.
    n_donors : int, default=10
        N_s, donors drawn per image and round.
    rounds : int, default=1
        N_t, mixing rounds.
    p : float, default=0.5
        Probability that a block is replaced in one round (0.5 in the paper).
    allow_self : bool, default=False
        Let an image be its own donor (the reference code does).

    Attributes
    ----------
    mixing : Mixing
        The validated settings (:class:`pbmlib.pbm.settings.Mixing`), built from the
        parameters above.

    Fitted attributes
    -----------------
    seeds_ : tuple of one numpy.random.SeedSequence
        The stream that draws donors and masks in :meth:`protect`.
    class_sizes_ : ndarray of int
        Images per class of the fitted set.

    Notes
    -----
    The attacker knows the block geometry (:meth:`attack_block` returns ``block``). The
    brute-force restoration count is Eq. (9) of [1]_ (:meth:`restoration_log10_probability`).
    Labels are required by :meth:`fit` and :meth:`protect`.

    Examples
    --------
    >>> x = np.random.default_rng(0).integers(0, 256, (6, 8, 8, 3), dtype=np.uint8)
    >>> scheme = PBM(block=4, n_donors=2)
    >>> scheme.fit_protect(x, [0, 0, 0, 1, 1, 1], seed=0).shape
    (6, 8, 8, 3)
    >>> scheme.attack_block(x.shape[1:])
    (4, 4)
    """

    name = "pbm"

    def __init__(self, *, block=(5, 5), n_donors: int = Mixing.n_donors, rounds: int = Mixing.rounds,
                 p: float = Mixing.p, allow_self: bool = Mixing.allow_self):
        try:
            self.mixing = Mixing(block=block, n_donors=n_donors, rounds=rounds, p=p, allow_self=allow_self)
        except ValueError as exc:
            raise ValueError(f"{self.name}: {exc}") from None
        self.block, self.n_donors, self.rounds = self.mixing.block, self.mixing.n_donors, self.mixing.rounds
        self.p, self.allow_self = self.mixing.p, self.mixing.allow_self

    def _check_data(self, images, labels):
        if labels is None:
            raise ValueError(f"{self.name} mixes blocks within classes: pass labels, one per image")
        self.mixing.grid(images.shape[1:3])

    def _mixed(self, images, labels, *, return_sources=False):
        """PBM's mixing of ``images`` from fitted stream 0 (the same bytes for every PBM variant)."""
        if labels is None:
            raise ValueError(f"{self.name} mixes blocks within classes: pass labels, one per image")
        self._check_same_shape(images)
        return mix_blocks(images, labels, mixing=self.mixing, seed=self._rng(0), return_sources=return_sources)

    def _protect(self, images, labels):
        mixed, sources = self._mixed(images, labels, return_sources=True)
        return mixed, shares_from_sources(sources, len(images))

    def fit(self, images, labels=None, *, seed=None):
        super().fit(images, labels, seed=seed)
        self.class_sizes_ = np.bincount(check_labels(labels, len(labels))[0])
        return self

    def keep_probability(self) -> float:
        """Chance that a released block holds its own image's block: (1 - p)^N_t, plus the chance
        of drawing itself with ``allow_self`` (in a class of the mean fitted size)."""
        keep = (1 - self.p) ** self.rounds
        if self.allow_self:
            keep += (1 - keep) / self.class_sizes_.mean()
        return float(keep)

    def _mechanism(self):
        from ..privacy.mechanism import Mechanism

        return Mechanism(unit=self.block, keep=self.keep_probability())

    def attack_block(self, image_shape):
        self.mixing.grid(image_shape)
        return self.block

    def restoration_log10_probability(self, labels, image_shape):
        """log10 of the probability of restoring every class by brute force, Eq. (9) of [1]_:
        ``-sum_C N_C * log10(N_b!)`` with N_C counted from ``labels`` and N_b the number of
        ``block`` blocks in an image of ``image_shape`` (``(H, W)`` or ``(H, W, C)``)."""
        codes, _ = check_labels(labels, len(labels))
        return restoration_log10_probability(np.bincount(codes), self.mixing.n_blocks(image_shape))
