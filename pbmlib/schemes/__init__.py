"""Protections behind one contract: PBM, VisualMixer, pixel and block encryption, simple baselines
(numpy tier). See :mod:`pbmlib.schemes.base`."""

from .registry import SCHEMES, get_scheme

__all__ = ["SCHEMES", "get_scheme"]
