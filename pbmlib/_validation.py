"""Input checks shared by every public function: one place for the error messages.

Also :class:`Settings`, the base of the frozen settings objects (:class:`pbmlib.Mixing`,
:class:`pbmlib.data.datasets.Decoding`, ...) that carry a validated bundle of options
through every layer.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import numbers
import os
from collections.abc import Mapping

import numpy as np


def check_rng(seed) -> np.random.Generator:
    """Turn ``seed`` into a :class:`numpy.random.Generator`.

    Parameters
    ----------
    seed : None, int, numpy.random.SeedSequence or numpy.random.Generator
        None draws fresh entropy from the operating system; an int (>= 0) gives
        reproducible output; a SeedSequence (e.g. a child of ``SeedSequence.spawn``)
        seeds a new Generator; a Generator is returned as is (so callers can pass one
        down without re-seeding). Bools are refused: ``seed=True`` is almost always a
        mistake for ``seed=1``.
    """
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(check_seed(seed))


def check_seed(seed):
    """Validate a seed without drawing from it; return it unchanged.

    The one seed contract of pbmlib: None, an int >= 0 (not a bool), a
    :class:`numpy.random.SeedSequence` or a :class:`numpy.random.Generator`.
    """
    if isinstance(seed, (bool, np.bool_)):
        raise ValueError(f"seed must be None, a non-negative int, a numpy.random.SeedSequence or a "
                         f"numpy.random.Generator, got the bool {seed!r}; pass an int such as seed=0")
    if seed is None or isinstance(seed, (np.random.Generator, np.random.SeedSequence)):
        return seed
    if isinstance(seed, numbers.Integral):
        if seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {seed!r}")
        return int(seed)
    raise ValueError(f"seed must be None, a non-negative int, a numpy.random.SeedSequence or a "
                     f"numpy.random.Generator, got {seed!r}")


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
    if 0 in arr.shape[1:]:
        raise ValueError(f"{name} have a zero height, width or channel count (shape {arr.shape}); pass images of "
                         f"at least 1 x 1 pixels")
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


def check_pair(value, *, name: str, allow_int: bool = True) -> tuple[int, int]:
    """The one parser of a (height, width) pair in whole pixels: block sizes, image sizes, the CLI.

    Accepts a pair ``(h, w)`` (tuple, list or array) of whole numbers >= 1 (``5.0`` is read
    as 5; ``2.5`` and bools are refused, never truncated), a string ``"HxW"`` or ``"N"``
    (as on the command line), and with ``allow_int`` an int ``n`` meaning the square
    ``(n, n)``.

    Examples
    --------
    >>> check_pair(5, name="block"), check_pair("24x12", name="size"), check_pair((5.0, 3), name="block")
    ((5, 5), (24, 12), (5, 3))
    """
    parts = None
    if isinstance(value, str):
        pieces = value.strip().lower().split("x")
        if all(piece.strip().isdigit() for piece in pieces) and len(pieces) in ((1, 2) if allow_int else (2,)):
            parts = [int(piece) for piece in pieces] * (3 - len(pieces))
    elif _whole_number(value) is not None:
        if allow_int:
            parts = [value, value]
    elif not isinstance(value, (bytes, dict, set)):
        try:
            parts = list(value)
        except TypeError:
            parts = None
    whole = [_whole_number(v) for v in parts] if parts is not None and len(parts) == 2 else [None]
    if None in whole or min(whole) < 1:
        square = "an int (a square), " if allow_int else ""
        raise ValueError(f"{name} must be {square}a pair (height, width) or 'HEIGHTxWIDTH' of whole pixels >= 1, "
                         f"got {value!r}; e.g. {name}=(24, 24)")
    return whole[0], whole[1]


def check_block(image_hw: tuple[int, int], block, *, name: str = "block") -> tuple[int, int]:
    """Check that ``block`` (see :func:`check_pair`) tiles an image of height/width ``image_hw`` evenly.

    Both sizes must be whole numbers of pixels: ``(5.9, 5.9)`` or ``(2.5, 5)`` are refused
    rather than truncated (``(5.0, 5.0)`` is read as ``(5, 5)``; an int is a square).
    """
    bh, bw = check_pair(block, name=name)
    h, w = int(image_hw[0]), int(image_hw[1])
    if h % bh or w % bw:
        raise ValueError(
            f"{name}={bh}x{bw} does not divide the image of height x width {h} x {w}; "
            f"choose a block height among {divisors(h)} and a width among {divisors(w)}, "
            f"or resize the images first"
        )
    return bh, bw


def check_probability(p, *, name: str = "p") -> float:
    """Check that ``p`` is a real number in [0, 1] (bools are refused: ``p=True`` is not ``p=1.0``)."""
    if isinstance(p, (bool, np.bool_)) or not isinstance(p, numbers.Real) or not 0.0 <= float(p) <= 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1], got {p!r}")
    return float(p)


def check_real(value, *, name: str, low: float = -math.inf, high: float = math.inf, low_open: bool = False,
               high_open: bool = False, unit: str = "") -> float:
    """A finite real number (not a bool) in the interval from ``low`` to ``high`` (open or closed ends)."""
    interval = (f"{'(' if low_open or low == -math.inf else '['}{low}, {high}"
                f"{')' if high_open or high == math.inf else ']'}")
    ok = isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)) and math.isfinite(float(value))
    if ok:
        v = float(value)
        ok = (v > low if low_open else v >= low) and (v < high if high_open else v <= high)
    if not ok:
        raise ValueError(f"{name} must be a number in {interval}{' ' + unit if unit else ''}, got {value!r}")
    return float(value)


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
    """The first ``n`` child seed sequences of ``seed``, the same on every call.

    ``SeedSequence.spawn`` counts the children it has handed out, so a second call on the
    same sequence gives other children, and what a step draws would depend on which steps
    ran before it (a cached baseline skipped, a resumed run). Here child ``i`` is always
    the sequence with spawn key ``seed.spawn_key + (i,)``: what ``seed.spawn(n)`` returns
    on a sequence that never spawned, whatever ``seed`` spawned before.

    Parameters
    ----------
    seed : None, int, numpy.random.SeedSequence or numpy.random.Generator
        See :func:`check_seed`. None draws fresh entropy; an int or a SeedSequence gives
        the same children every time; a Generator gives children drawn from its stream
        (so the same Generator state gives the same children).
    n : int

    Returns
    -------
    list of numpy.random.SeedSequence, each usable as ``np.random.default_rng(child)``.

    Examples
    --------
    >>> root = np.random.SeedSequence(0)
    >>> first = spawn_seeds(root, 2)
    >>> [c.spawn_key for c in spawn_seeds(root, 2)] == [c.spawn_key for c in first] == [(0,), (1,)]
    True
    """
    root = as_seed_sequence(seed)
    return [np.random.SeedSequence(root.entropy, spawn_key=(*root.spawn_key, i), pool_size=root.pool_size)
            for i in range(n)]


def as_seed_sequence(seed) -> np.random.SeedSequence:
    """``seed`` (see :func:`check_seed`) as a :class:`numpy.random.SeedSequence`: itself; from an
    int or fresh entropy (None); from four draws of a Generator (which advances it)."""
    seed = check_seed(seed)
    if isinstance(seed, np.random.SeedSequence):
        return seed
    if isinstance(seed, np.random.Generator):
        return np.random.SeedSequence(seed.integers(0, 2**63, size=4).tolist())
    return np.random.SeedSequence(seed)


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the system has one): the default
    number of workers for decoding, encoding and gathering."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


class Settings:
    """Base of pbmlib's frozen settings dataclasses: validated once, then passed around whole.

    A subclass is a ``@dataclasses.dataclass(frozen=True)`` that validates its fields in
    ``__post_init__``. Entry points take ``settings=`` (an instance or a mapping of its
    fields) or the fields as keywords, and call :meth:`coerce` once.
    """

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def coerce(cls, settings=None, *, where: str = "", **fields):
        """One instance from ``settings`` (an instance or a mapping of its fields) or from ``fields``.

        Raises
        ------
        ValueError
            Both ``settings`` and fields are given, or a field name is unknown (with a close
            match), naming ``where``.
        """
        names = cls.field_names()
        prefix = f"{where}: " if where else ""
        unknown = [key for key in fields if key not in names]
        if unknown:
            close = difflib.get_close_matches(unknown[0], names, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"{prefix}unknown option {unknown[0]!r}{hint}; the {cls.__name__} options are "
                             f"{', '.join(names)}")
        if settings is not None and fields:
            raise ValueError(f"{prefix}pass either a {cls.__name__} or its options ({', '.join(fields)}), not both")
        if isinstance(settings, cls):
            return settings
        if isinstance(settings, Mapping):
            return cls.coerce(None, where=where, **dict(settings))
        if settings is not None:
            raise ValueError(f"{prefix}expected a {cls.__name__} or a mapping of its options, got {settings!r}")
        return cls(**fields)

    def replace(self, **changes):
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


def split_options(options: dict, kinds: dict, *, where: str) -> dict:
    """Route an entry point's ``**options`` to its settings objects.

    Parameters
    ----------
    options : dict
        The keyword arguments: for each kind either ``<name>=<Settings instance or mapping>``
        or the kind's fields as keywords.
    kinds : dict
        ``name -> Settings subclass``, e.g. ``{"mixing": Mixing, "decoding": Decoding}``.
    where : str
        The entry point, for messages.

    Returns
    -------
    dict
        ``name -> instance`` for every kind (defaults where nothing was given).

    Raises
    ------
    ValueError
        An option belongs to no kind (with a close match), or a kind is given both whole
        and by its fields.
    """
    fields_of = {name: cls.field_names() for name, cls in kinds.items()}
    known = list(kinds) + [field for fields in fields_of.values() for field in fields]
    unknown = [key for key in options if key not in known]
    if unknown:
        close = difflib.get_close_matches(unknown[0], known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"{where}: unknown option {unknown[0]!r}{hint}; the options are {', '.join(known)}")
    return {name: cls.coerce(options.get(name), where=where,
                             **{key: value for key, value in options.items() if key in fields_of[name]})
            for name, cls in kinds.items()}
