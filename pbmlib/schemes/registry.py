"""Schemes by name: :data:`SCHEMES` and :func:`get_scheme`.

Adding a scheme is one module holding a :class:`~pbmlib.schemes.base.Scheme` subclass
plus one entry here.

>>> scheme = get_scheme("pbm", block=(5, 5))
>>> scheme.name, scheme.transforms_test, scheme.label
('pbm', False, 'pbm block=5x5')
"""

from __future__ import annotations

from .base import Scheme
from .baselines import BlackBoxMask, GaussianBlur, Identity, Pixelation
from .defended import PBMAugment, PBMAverage, PBMNoise, PBMShuffle
from .dppix import DPPix
from .encryption import BlockEncryption, PixelEncryption
from .pbm import PBM
from .visualmixer import VisualMixer

__all__ = ["SCHEMES", "get_scheme"]

#: registry name -> scheme class
SCHEMES: dict[str, type[Scheme]] = {
    cls.name: cls
    for cls in (Identity, PBM, GaussianBlur, Pixelation, BlackBoxMask, VisualMixer, PixelEncryption, BlockEncryption,
                DPPix, PBMNoise, PBMShuffle, PBMAverage, PBMAugment)
}


def get_scheme(name: str, **params) -> Scheme:
    """Build a scheme by name with its parameters, e.g. ``get_scheme("blur", sigma=3)``.

    Parameters
    ----------
    name : str
        A key of :data:`SCHEMES`.
    **params
        The scheme's keyword parameters (see its class); values are validated here.

    Returns
    -------
    Scheme
        Unfitted: call ``fit`` or ``fit_protect`` next.

    Raises
    ------
    ValueError
        For an unknown name or parameter (listing the choices) or a bad value (naming it).
    """
    if name not in SCHEMES:
        raise ValueError(f"unknown scheme {name!r}; choose one of {sorted(SCHEMES)}")
    cls = SCHEMES[name]
    unknown = sorted(set(params) - set(cls.param_names()))
    if unknown:
        raise ValueError(f"bad parameters for scheme {name!r}: unknown {', '.join(map(repr, unknown))}; "
                         f"its parameters are {cls.param_names()}")
    return cls(**params)
