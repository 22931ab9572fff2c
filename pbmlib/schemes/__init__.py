"""Protections behind one contract: PBM, VisualMixer, pixel and block encryption, simple baselines
(numpy tier). See :mod:`pbmlib.schemes.base` for the contract, :mod:`pbmlib.schemes.registry` for
the names."""

from .base import Scheme
from .registry import SCHEMES, get_scheme

__all__ = ["SCHEMES", "Scheme", "get_scheme"]
