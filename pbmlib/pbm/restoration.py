"""The paper's restoration probability (Eqs. 8-9), in log10 because it underflows any float.

The paper argues that an attacker who knows every original block is still present
restores a class of N_C images with probability 1 / (N_b!)^N_C (Eq. 8) and the whole
set with the product over classes (Eq. 9). This is a brute-force count: it assumes
the attacker guesses block arrangements blindly. Real attacks (block matching,
reassembly, learned inversion) do far better; see :mod:`pbmlib.privacy`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from .._validation import check_positive_int

__all__ = ["restoration_log10_probability", "class_log10_probability"]

_LN10 = math.log(10.0)


def class_log10_probability(class_size: int, n_blocks: int) -> float:
    """log10 of 1 / (N_b!)^N_C, Eq. (8): one class of ``class_size`` images restored.

    Examples
    --------
    >>> round(class_log10_probability(2, 3), 6)  # 1 / (3!)^2 = 1/36
    -1.556303
    """
    n_blocks = check_positive_int(n_blocks, name="n_blocks")
    if isinstance(class_size, bool) or int(class_size) != class_size or class_size < 0:
        raise ValueError(f"class sizes must be non-negative ints, got {class_size!r}")
    return -int(class_size) * math.lgamma(n_blocks + 1) / _LN10


def restoration_log10_probability(class_sizes, n_blocks: int, *, per_class: bool = False):
    """log10 of the probability that an attacker restores every class, Eq. (9).

    Parameters
    ----------
    class_sizes : mapping of label to int, or sequence of int
        Number of images N_C in each class.
    n_blocks : int
        N_b, blocks per image (see :func:`pbmlib.n_blocks`).
    per_class : bool, default=False
        Also return each class's log10 probability (Eq. 8).

    Returns
    -------
    total : float
        sum over classes of -N_C * log10(N_b!). 0.0 means probability 1.
    per_class : dict or ndarray
        Only with ``per_class=True``: keyed like ``class_sizes`` (a dict for a
        mapping, an array for a sequence).

    Examples
    --------
    >>> round(restoration_log10_probability({"a": 100, "b": 100}, 16), 1)
    -2664.1
    """
    if isinstance(class_sizes, Mapping):
        values = {label: class_log10_probability(size, n_blocks) for label, size in class_sizes.items()}
        total = math.fsum(values.values())
        return (total, values) if per_class else total
    sizes = np.atleast_1d(np.asarray(class_sizes))
    if sizes.ndim != 1:
        raise ValueError(f"class_sizes must be a 1-D sequence of counts, got shape {sizes.shape}")
    values = np.array([class_log10_probability(s, n_blocks) for s in sizes.tolist()], dtype=float)
    total = math.fsum(values.tolist())
    return (total, values) if per_class else total
