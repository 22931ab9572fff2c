"""Label-based Pixel Block Mixing as a scheme (the protection this library is about).

References
----------
.. [1] Xiang, Li, Ren, Zhu, Choo. "A Lightweight Privacy-Preserving Scheme Using
       Pixel Block Mixing for Facial Image Classification in Deep Learning."
"""

from __future__ import annotations

import numpy as np

from .._validation import check_block, check_labels
from ..pbm.mixing import mix_blocks, n_blocks
from ..pbm.restoration import restoration_log10_probability
from .base import Scheme, check_block_param, check_int_param, check_real_param

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

    Fitted attributes
    -----------------
    seeds_ : tuple of one numpy.random.SeedSequence
        The stream that draws donors and masks in :meth:`protect`.

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

    def __init__(self, *, block=(5, 5), n_donors: int = 10, rounds: int = 1, p: float = 0.5):
        self.block = check_block_param(self.name, "block", block)
        self.n_donors = check_int_param(self.name, "n_donors", n_donors)
        self.rounds = check_int_param(self.name, "rounds", rounds)
        self.p = check_real_param(self.name, "p", p, low=0.0, high=1.0, low_open=False)

    def _check_data(self, images, labels):
        if labels is None:
            raise ValueError("pbm mixes blocks within classes: pass labels, one per image")
        check_block(images.shape[1:3], self.block)

    def _protect(self, images, labels):
        if labels is None:
            raise ValueError("pbm mixes blocks within classes: pass labels, one per image")
        return mix_blocks(images, labels, block=self.block, n_donors=self.n_donors, rounds=self.rounds, p=self.p,
                          seed=self._rng(0))

    def attack_block(self, image_shape):
        check_block(tuple(image_shape)[:2], self.block)
        return self.block

    def restoration_log10_probability(self, labels, image_shape):
        """log10 of the probability of restoring every class by brute force, Eq. (9) of [1]_:
        ``-sum_C N_C * log10(N_b!)`` with N_C counted from ``labels`` and N_b the number of
        ``block`` blocks in an image of ``image_shape`` (``(H, W)`` or ``(H, W, C)``)."""
        codes, _ = check_labels(labels, len(labels))
        return restoration_log10_probability(np.bincount(codes), n_blocks(tuple(image_shape), self.block))
