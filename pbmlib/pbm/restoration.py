"""The paper's restoration probability (Eqs. 8-9), in log10 because it underflows any float.

The paper argues that an attacker who knows every original block is still present
restores a class of N_C images with probability 1 / (N_b!)^N_C (Eq. 8) and the whole
set with the product over classes (Eq. 9). This is a brute-force count: it assumes
the attacker guesses block arrangements blindly. Real attacks (block matching,
reassembly, learned inversion) do far better; see :mod:`pbmlib.privacy`.

Two readings
------------
The printed Eq. (8) and the paper's own text disagree. Section VI-A says: "We divide
the images in one category into N_b groups, each group includes all pixel blocks in the
same position in each image." Restoring the class means giving every image back its own
block in each group, so each of the N_b groups of N_C blocks has N_C! arrangements:
1 / (N_C!)^N_b. The printed Eq. (8) instead reads 1 / (N_b!)^N_C, N_b! arrangements of
the N_b blocks of each image (blocks moving between positions, which PBM never does).
Both are computed here (``reading="printed"``, the default and what the paper's
numbers follow, or ``reading="text"``); for one class of 100 faces cut into N_b = 25
blocks they give 10^-2,519 and 10^-3,949. Neither bounds what an attacker can do.

References
----------
.. [1] Xiang, Li, Ren, Zhu, Choo. "A Lightweight Privacy-Preserving Scheme Using
       Pixel Block Mixing for Facial Image Classification in Deep Learning."
       Section VI-A, Eqs. (8)-(9).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from .._validation import check_positive_int

__all__ = ["READINGS", "restoration_log10_probability", "class_log10_probability"]

_LN10 = math.log(10.0)

#: The two readings of Eq. (8): name -> the count it divides by.
READINGS = {
    "printed": "(N_b!)^N_C, Eq. (8) as printed: each image's N_b blocks arranged among its positions",
    "text": "(N_C!)^N_b, Section VI-A's text: each of the N_b same-position groups of N_C blocks arranged "
            "among the class's images",
}


def _check_reading(reading) -> str:
    if not isinstance(reading, str) or reading not in READINGS:
        raise ValueError(f"reading must be one of {list(READINGS)}, got {reading!r}")
    return reading


def class_log10_probability(class_size: int, n_blocks: int, *, reading: str = "printed") -> float:
    """log10 of the probability of restoring one class of ``class_size`` images, Eq. (8).

    Parameters
    ----------
    class_size : int
        N_C, images in the class (0 or more).
    n_blocks : int
        N_b, blocks per image.
    reading : {"printed", "text"}, default="printed"
        ``printed``: -N_C * log10(N_b!), Eq. (8) as printed. ``text``:
        -N_b * log10(N_C!), the count Section VI-A describes (N_b groups of N_C
        same-position blocks). See :data:`READINGS` and the module docstring.

    Returns
    -------
    float
        0.0 means probability 1.

    Examples
    --------
    >>> round(class_log10_probability(2, 3), 6)  # 1 / (3!)^2 = 1/36
    -1.556303
    >>> round(class_log10_probability(2, 3, reading="text"), 6)  # 1 / (2!)^3 = 1/8
    -0.90309
    """
    n_blocks = check_positive_int(n_blocks, name="n_blocks")
    reading = _check_reading(reading)
    if isinstance(class_size, bool) or int(class_size) != class_size or class_size < 0:
        raise ValueError(f"class sizes must be non-negative ints, got {class_size!r}")
    class_size = int(class_size)
    if reading == "printed":
        return -class_size * math.lgamma(n_blocks + 1) / _LN10
    return -n_blocks * math.lgamma(class_size + 1) / _LN10


def restoration_log10_probability(class_sizes, n_blocks: int, *, per_class: bool = False,
                                  reading: str = "printed"):
    """log10 of the probability that an attacker restores every class, Eq. (9).

    Parameters
    ----------
    class_sizes : mapping of label to int, or sequence of int
        Number of images N_C in each class.
    n_blocks : int
        N_b, blocks per image (see :func:`pbmlib.n_blocks`).
    per_class : bool, default=False
        Also return each class's log10 probability (Eq. 8).
    reading : {"printed", "text"}, default="printed"
        Which reading of Eq. (8) each class follows (:func:`class_log10_probability`).

    Returns
    -------
    total : float
        The sum over classes: -sum N_C * log10(N_b!) (printed) or -sum N_b * log10(N_C!)
        (text). 0.0 means probability 1.
    per_class : dict or ndarray
        Only with ``per_class=True``: keyed like ``class_sizes`` (a dict for a
        mapping, an array for a sequence).

    Examples
    --------
    >>> round(restoration_log10_probability({"a": 100, "b": 100}, 16), 1)
    -2664.1
    >>> round(restoration_log10_probability({"a": 100, "b": 100}, 16, reading="text"), 1)
    -5055.0
    """
    reading = _check_reading(reading)
    if isinstance(class_sizes, Mapping):
        values = {label: class_log10_probability(size, n_blocks, reading=reading)
                  for label, size in class_sizes.items()}
        total = math.fsum(values.values())
        return (total, values) if per_class else total
    sizes = np.atleast_1d(np.asarray(class_sizes))
    if sizes.ndim != 1:
        raise ValueError(f"class_sizes must be a 1-D sequence of counts, got shape {sizes.shape}")
    values = np.array([class_log10_probability(s, n_blocks, reading=reading) for s in sizes.tolist()], dtype=float)
    total = math.fsum(values.tolist())
    return (total, values) if per_class else total
