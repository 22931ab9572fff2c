"""The mixing settings: one frozen, validated object that every mixing entry point takes.

:class:`Mixing` holds the paper's parameters of Algorithm 1 (``block`` = (L_b, W_b),
``n_donors`` = N_s, ``rounds`` = N_t, ``p``) and ``allow_self``. It is validated once, at
construction, and then carried through :func:`pbmlib.mix_blocks`,
:func:`pbmlib.pbm.mixing.mixing_sources`, :func:`pbmlib.mix_folder`, the PBM schemes,
the widgets and the ``pbm`` command. Entry points take either ``mixing=Mixing(...)`` or
its fields as keywords (``block=(5, 5), rounds=3``); :meth:`Mixing.coerce` turns either
into one object, so the defaults and checks live here only.

Examples
--------
>>> m = Mixing(block=5, rounds=3)
>>> m
Mixing(block=(5, 5), n_donors=10, rounds=3, p=0.5, allow_self=False)
>>> m.n_blocks((25, 25)), m.to_dict()["block"]
(25, [5, 5])
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np

from .._validation import Settings, check_block, check_bool, check_int_range, check_pair, check_probability

__all__ = ["Mixing", "MAX_DONORS", "MAX_ROUNDS"]

#: The largest N_s accepted: far above any class the draws could use, small enough to be validated
#: before any work (the draws are capped by the class sizes anyway).
MAX_DONORS = 1_000_000
#: The largest N_t accepted: after 1,000 rounds at p = 0.01 a block keeps its own pixels with
#: probability 4e-5; more rounds only cost time (each is a draw over every block).
MAX_ROUNDS = 1_000


@dataclasses.dataclass(frozen=True)
class Mixing(Settings):
    """PBM's mixing settings (Algorithm 1 of the paper), validated at construction.

    Parameters
    ----------
    block : int or (int, int)
        Block height and width in pixels ``(L_b, W_b)``; an int means a square. Whole
        numbers >= 1 (``(5.0, 5.0)`` is read as ``(5, 5)``, ``2.5`` is refused). Stored as
        a tuple; it must divide the images' height and width (checked against an image
        shape by :meth:`grid`).
    n_donors : int, default=10
        N_s, same-label donors drawn per image and round, 1 to :data:`MAX_DONORS`. A
        class with fewer other images uses all of them (:meth:`donors_used`).
    rounds : int, default=1
        N_t, mixing rounds, 1 to :data:`MAX_ROUNDS`.
    p : float, default=0.5
        Probability that a block is replaced in one round, in [0, 1] (a bool is refused).
    allow_self : bool, default=False
        Let an image be drawn as its own donor (the reference code does).
    """

    block: tuple[int, int]
    n_donors: int = 10
    rounds: int = 1
    p: float = 0.5
    allow_self: bool = False

    def __post_init__(self):
        set_field = object.__setattr__  # frozen: store the validated values once
        set_field(self, "block", check_pair(self.block, name="block"))
        set_field(self, "n_donors", check_int_range(self.n_donors, name="n_donors", low=1, high=MAX_DONORS,
                                                    advice=" (N_s; classes cap it at their size anyway)"))
        set_field(self, "rounds", check_int_range(self.rounds, name="rounds", low=1, high=MAX_ROUNDS,
                                                  advice=" (N_t)"))
        set_field(self, "p", check_probability(self.p))
        set_field(self, "allow_self", check_bool(self.allow_self, name="allow_self"))

    @classmethod
    def coerce(cls, mixing=None, *, where: str = "mixing", **fields) -> "Mixing":
        """One :class:`Mixing` from ``mixing`` (a Mixing or a mapping of its fields) or from ``fields``.

        Entry points call this with their ``mixing=`` argument and their remaining keyword
        arguments, so that ``mix_blocks(x, y, block=(5, 5))`` and
        ``mix_blocks(x, y, mixing=Mixing(block=(5, 5)))`` are the same call.

        Raises
        ------
        ValueError
            Both ``mixing`` and fields are given, a field name is unknown (with a close
            match), or ``block`` is missing.
        """
        if mixing is None and fields.get("block") is None and set(fields) <= set(cls.field_names()):
            raise ValueError(f"{where} needs block=(height, width) in pixels, e.g. block=(24, 24)")
        return super().coerce(mixing, where=where, **fields)

    def grid(self, image_shape) -> tuple[int, int]:
        """Blocks per column and per row, ``(H // L_b, W // W_b)``, for images of ``image_shape``
        (``(H, W)`` or ``(H, W, C)``); raises when the block does not divide the image."""
        h, w = int(image_shape[0]), int(image_shape[1])
        bh, bw = check_block((h, w), self.block)
        return h // bh, w // bw

    def n_blocks(self, image_shape) -> int:
        """N_b = (H * W) / (L_b * W_b), Eq. (6) of the paper."""
        gh, gw = self.grid(image_shape)
        return gh * gw

    def donors_used(self, class_sizes) -> int:
        """The N_s the draws can actually use: ``n_donors`` capped at the largest donor population
        (a class's size, less the image itself unless ``allow_self``)."""
        largest = max((int(n) for n in _sizes(class_sizes)), default=0)
        population = largest if self.allow_self else largest - 1
        return max(0, min(self.n_donors, population))

    def unprotected_reason(self, image_shape, class_sizes) -> str | None:
        """Why these settings release every image unchanged, or None when they mix.

        ``p = 0`` replaces no block; one block per image (N_b = 1) makes every output a
        whole original image; classes of one image have no donor (with ``allow_self`` an
        image can only draw itself). A release with such settings is the originals under
        new names, whatever the restoration count says.
        """
        if self.p == 0:
            return "p = 0 replaces no block: every image is released unchanged"
        if self.n_blocks(image_shape) == 1:
            return (f"block {self.block[0]}x{self.block[1]} is the whole image (N_b = 1): every output is one "
                    f"original image, unchanged")
        sizes = [int(n) for n in _sizes(class_sizes)]
        if sizes and max(sizes) < 2:
            return "every class holds a single image, so no image has a donor: every image is released unchanged"
        return None

    def to_dict(self) -> dict:
        """JSON-able fields (``block`` as a list); ``Mixing(**d)`` rebuilds the object."""
        return {"block": list(self.block), "n_donors": self.n_donors, "rounds": self.rounds, "p": self.p,
                "allow_self": self.allow_self}


def _sizes(class_sizes):
    if isinstance(class_sizes, Mapping):
        return list(class_sizes.values())
    return list(np.asarray(class_sizes).ravel())
