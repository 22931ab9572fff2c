"""Input checks shared by every public function: one place for the error messages."""

from __future__ import annotations

import numbers
import os

import numpy as np


def check_rng(seed: None | int | np.random.Generator) -> np.random.Generator:
    """Turn ``seed`` into a :class:`numpy.random.Generator`.

    Parameters
    ----------
    seed : None, int or numpy.random.Generator
        None draws fresh entropy; an int gives reproducible output; a Generator
        is returned as is (so callers can pass one down without re-seeding).
        Bools are refused: ``seed=True`` is almost always a mistake for ``seed=1``.
    """
    if isinstance(seed, (bool, np.bool_)):
        raise ValueError(f"seed must be None, a non-negative int or a numpy.random.Generator, got the bool "
                         f"{seed!r}; pass an int such as seed=0")
    if seed is None or isinstance(seed, numbers.Integral):
        if seed is not None and seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {seed!r}")
        return np.random.default_rng(seed)
    if isinstance(seed, np.random.Generator):
        return seed
    raise ValueError(
        f"seed must be None, a non-negative int or a numpy.random.Generator, got {seed!r}"
    )


def check_images(images, *, name: str = "images") -> np.ndarray:
    """Check a stack of images: uint8, shape (N, H, W) or (N, H, W, C), N >= 1.

    Returns the input as an ndarray (no copy when it already is one).
    """
    arr = np.asarray(images)
    if arr.dtype != np.uint8:
        raise ValueError(
            f"{name} must be uint8 in [0, 255], got dtype {arr.dtype}; convert with "
            f"skimage.util.img_as_ubyte (floats in [0, 1]) or .astype(np.uint8)"
        )
    if arr.ndim not in (3, 4):
        raise ValueError(
            f"{name} must have shape (N, H, W) or (N, H, W, C), got shape {arr.shape}; "
            f"a single image needs a leading axis: images[np.newaxis]"
        )
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape}): pass at least one image")
    return arr


def _whole_number(value):
    """``value`` as an int if it is an integer (or an integer-valued float), else None; bools are None."""
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real) and float(value).is_integer():
        return int(value)
    return None


def check_block(image_hw: tuple[int, int], block) -> tuple[int, int]:
    """Check that ``block=(bh, bw)`` tiles an image of height/width ``image_hw`` evenly.

    Both sizes must be whole numbers of pixels: ``(5.9, 5.9)`` or ``(2.5, 5)`` are refused
    rather than truncated (``(5.0, 5.0)`` is read as ``(5, 5)``); bools are refused.
    """
    try:
        parts = tuple(block)
    except TypeError:
        parts = ()
    if len(parts) != 2:
        raise ValueError(f"block must be a pair (height, width) in pixels, got {block!r}")
    bh, bw = (_whole_number(b) for b in parts)
    if bh is None or bw is None:
        raise ValueError(f"block must be a pair of whole numbers of pixels (height, width), got {block!r}; "
                         f"blocks are not rounded, pass e.g. block=(6, 6)")
    h, w = image_hw
    if bh < 1 or bw < 1:
        raise ValueError(f"block sizes must be >= 1 pixel, got block={block!r}")
    if h % bh or w % bw:
        raise ValueError(
            f"block={block!r} does not divide the image of height x width {h} x {w}; "
            f"choose a block height among {divisors(h)} and a width among {divisors(w)}, "
            f"or resize the images first"
        )
    return bh, bw


def check_probability(p, *, name: str = "p") -> float:
    """Check that ``p`` is a real number in [0, 1] (bools are refused: ``p=True`` is not ``p=1.0``)."""
    if isinstance(p, (bool, np.bool_)) or not isinstance(p, numbers.Real) or not 0.0 <= float(p) <= 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1], got {p!r}")
    return float(p)


def check_positive_int(value, *, name: str) -> int:
    """Check that ``value`` is an int >= 1 (bools are refused)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    return int(value)


def check_int_range(value, *, name: str, low: int, high: int, advice: str = "") -> int:
    """Check that ``value`` is an int (not a bool) with ``low <= value <= high``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or not low <= value <= high:
        raise ValueError(f"{name} must be an int from {low} to {high}, got {value!r}{advice}")
    return int(value)


def check_choice(value, choices, *, name: str):
    """Check that ``value`` is one of ``choices`` (compared with ==, types included for bools)."""
    if isinstance(value, (bool, np.bool_)) or value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(repr(c) for c in choices)}, got {value!r}")
    return value


def check_bool(value, *, name: str) -> bool:
    """Check that ``value`` is a bool (True/False), not a truthy stand-in such as 1 or "no"."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def divisors(n: int) -> list[int]:
    """All positive divisors of ``n`` in increasing order."""
    return [d for d in range(1, n + 1) if n % d == 0]


def check_labels(labels, n_images: int) -> tuple[np.ndarray, list]:
    """Encode labels as class codes.

    How labels are compared: two labels are one class when they are equal *and of the same
    kind*. numpy scalars count as the Python scalar they hold (``np.int64(3)`` and ``3`` are
    one class, as are ``np.str_("a")`` and ``"a"``). Labels that Python calls equal but that
    are of different kinds, such as ``1``, ``1.0`` and ``True``, are refused rather than
    silently merged into one class; so is NaN (``nan != nan``, so it would make one class
    per image).

    Parameters
    ----------
    labels : sequence of hashables, length ``n_images``
    n_images : int

    Returns
    -------
    codes : ndarray of shape (n_images,), int64
        ``codes[i]`` is the position of ``labels[i]`` in ``classes``.
    classes : list
        The distinct labels in order of first appearance.
    """
    try:
        n_labels = len(labels)
    except TypeError:
        raise ValueError(f"labels must be a sequence with one label per image, got {labels!r}") from None
    if n_labels != n_images:
        raise ValueError(
            f"labels has length {n_labels} but there are {n_images} images; "
            f"pass exactly one label per image"
        )
    arr = labels if isinstance(labels, np.ndarray) else None
    if arr is not None and arr.dtype.kind in "fc" and np.isnan(arr).any():
        first = int(np.flatnonzero(np.isnan(arr))[0])
        raise ValueError(f"labels[{first}] is NaN; NaN is not a class (it is unequal to itself): "
                         f"drop those images or give them a label")
    index: dict = {}
    kinds: list = []
    codes = np.empty(n_images, dtype=np.int64)
    check_kinds = arr is None or arr.dtype == object  # a numeric or str array has one kind
    for i, lab in enumerate(labels):
        key = _as_key(lab)
        try:
            code = index.get(key)
        except TypeError as exc:
            raise ValueError(f"labels must be hashable (str, int, ...): {exc}") from None
        if code is None:
            if key != key:
                raise ValueError(f"labels[{i}] is NaN; NaN is not a class (it is unequal to itself): "
                                 f"drop those images or give them a label")
            code = index[key] = len(index)
            kinds.append((_kind(key), key))
        elif check_kinds and _kind(key) != kinds[code][0]:
            raise ValueError(
                f"labels[{i}] = {lab!r} ({_kind(key)}) equals the earlier label {kinds[code][1]!r} "
                f"({kinds[code][0]}) and would merge with it into one class; give all labels one type, "
                f"e.g. [str(label) for label in labels]"
            )
        codes[i] = code
    return codes, list(index)


def _as_key(label):
    """numpy scalars become Python scalars, so np.int64(3) and 3 are one class."""
    return label.item() if isinstance(label, np.generic) else label


def _kind(key) -> str:
    """The kind of a label for the equal-but-different check: bool, int, float, complex, or the type name."""
    for kind in (bool, numbers.Integral, numbers.Real, numbers.Complex):  # bool first: it is an Integral
        if isinstance(key, kind):
            return {bool: "bool", numbers.Integral: "int", numbers.Real: "float", numbers.Complex: "complex"}[kind]
    return type(key).__name__


def spawn_seeds(seed, n: int) -> list[np.random.SeedSequence]:
    """``n`` independent child seed sequences of ``seed`` (``SeedSequence.spawn``).

    Parameters
    ----------
    seed : None, int, numpy.random.SeedSequence or numpy.random.Generator
        None draws fresh entropy; an int (not a bool) >= 0 gives the same children
        every time; a Generator gives children drawn from its stream (so the same
        Generator state gives the same children); a SeedSequence spawns directly.
    n : int

    Returns
    -------
    list of numpy.random.SeedSequence, each usable as ``np.random.default_rng(child)``.
    """
    if isinstance(seed, np.random.SeedSequence):
        root = seed
    elif isinstance(seed, np.random.Generator):
        root = np.random.SeedSequence(seed.integers(0, 2**63, size=4).tolist())
    elif seed is None:
        root = np.random.SeedSequence()
    elif isinstance(seed, numbers.Integral) and not isinstance(seed, bool) and seed >= 0:
        root = np.random.SeedSequence(int(seed))
    else:
        raise ValueError(f"seed must be None, a non-negative int, a numpy.random.SeedSequence or a "
                         f"numpy.random.Generator, got {seed!r}")
    return root.spawn(n)


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the system has one): the default
    number of workers for decoding, encoding and gathering."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
