"""The scheme contract: every protection is a :class:`Scheme`, fitted once and applied many times.

A scheme follows the scikit-learn estimator habits:

- parameters are keyword-only, stored on the instance and validated in ``__init__``
  (a bad value raises :class:`ValueError` naming the parameter);
- :meth:`Scheme.fit` draws *all* random state (keys, shuffling streams) once, from
  child seed sequences of ``seed`` (:func:`numpy.random.SeedSequence.spawn`), and stores
  it in fitted attributes ending in ``_`` (``seeds_``, ``image_shape_``, ``key_``);
- :meth:`Scheme.protect` and :meth:`Scheme.protect_test` only replay that state, so calling
  them twice gives the same bytes.

A scheme also says, through methods rather than its name, what a study needs to know:
whether the test set is transformed (``transforms_test``), which adaptation network a
classifier needs (``adaptation``), the block geometry an attacker knows
(:meth:`Scheme.attack_block`) and its brute-force restoration count where it has one
(:meth:`Scheme.restoration_log10_probability`).

Adding a scheme is one module with a :class:`Scheme` subclass plus one entry in
:data:`pbmlib.schemes.registry.SCHEMES`. A subclass declares its parameters as the
keyword-only arguments of ``__init__``, stores each under the same name, and implements
``_protect`` (and ``_fit``/``_protect_test`` where needed).

Examples
--------
>>> import numpy as np
>>> from pbmlib.schemes import get_scheme
>>> x = np.random.default_rng(0).integers(0, 256, (6, 10, 10), dtype=np.uint8)
>>> scheme = get_scheme("pbm", block=5)
>>> scheme.label, scheme.get_params()
('pbm block=5x5', {'block': (5, 5), 'n_donors': 10, 'rounds': 1, 'p': 0.5, 'allow_self': False})
>>> mixed = scheme.fit_protect(x, [0, 0, 0, 1, 1, 1], seed=0)
>>> mixed.shape, mixed.dtype.name
((6, 10, 10), 'uint8')
"""

from __future__ import annotations

import inspect
import math
import numbers
from typing import ClassVar

import numpy as np
from skimage.util import view_as_blocks

from .._validation import check_block, check_images, check_labels, spawn_seeds

__all__ = ["Scheme"]


class Scheme:
    """Base class of every protection (see the module docstring for the contract).

    Class attributes
    ----------------
    name : str
        Registry name, e.g. ``"pbm"``.
    transforms_test : bool, default=False
        Test images must go through :meth:`protect_test` before a classifier sees them.
    adaptation : {None, "pixel", "block"}, default=None
        Adaptation network a classifier needs in front (``build_model(adaptation=...)``).
    is_reference : bool, default=False
        True only for the unprotected reference (``"none"``).
    randomized : bool, default=True
        False for deterministic schemes, which ignore ``seed``.

    Fitted attributes
    -----------------
    seeds_ : tuple of numpy.random.SeedSequence
        Child seed streams drawn by :meth:`fit` (empty for deterministic schemes).
    image_shape_ : tuple of int
        Shape of one image seen by :meth:`fit`, ``(H, W)`` or ``(H, W, C)``.
    """

    name: ClassVar[str] = ""
    transforms_test: ClassVar[bool] = False
    adaptation: ClassVar[str | None] = None
    is_reference: ClassVar[bool] = False
    randomized: ClassVar[bool] = True
    #: number of child seed streams :meth:`fit` draws (ignored when not ``randomized``)
    _n_streams: ClassVar[int] = 1

    # -- parameters ---------------------------------------------------------------------------

    @classmethod
    def _param_signature(cls) -> list[inspect.Parameter]:
        """The keyword-only parameters of ``__init__``, in order; an ``__init__`` that passes
        ``**options`` on to its parent's adds the parent's parameters after its own."""
        params: list[inspect.Parameter] = []
        for klass in cls.__mro__:
            if "__init__" not in vars(klass) or klass.__init__ is object.__init__:
                continue
            signature = inspect.signature(klass.__init__).parameters.values()
            params += [p for p in signature if p.kind is p.KEYWORD_ONLY and p.name not in {q.name for q in params}]
            if not any(p.kind is p.VAR_KEYWORD for p in signature):
                break
        return params

    @classmethod
    def param_names(cls) -> list[str]:
        """Names of the constructor parameters, in order."""
        return [p.name for p in cls._param_signature()]

    def get_params(self) -> dict:
        """The constructor parameters as stored (validated, e.g. ``block`` as a tuple)."""
        return {name: getattr(self, name) for name in self.param_names()}

    def clone(self) -> "Scheme":
        """A new, unfitted scheme with the same parameters."""
        return type(self)(**self.get_params())

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    @property
    def label(self) -> str:
        """Short description: the name, the first parameter, and any other parameter not at
        its default, e.g. ``"pbm block=5x5"``, ``"pbm block=5x5 rounds=3"``, ``"blur sigma=2.0"``."""
        parts = [self.name]
        for i, param in enumerate(self._param_signature()):
            value = getattr(self, param.name)
            if i > 0 and _same(value, param.default):
                continue
            if isinstance(value, tuple):
                value = "x".join(str(v) for v in value)
            parts.append(f"{param.name}={value}")
        return " ".join(parts)

    def to_dict(self) -> dict:
        """``{"scheme": name, **params}``, JSON-able (tuples become lists);
        ``get_scheme(**d)`` rebuilds the scheme from it."""
        return {"scheme": self.name,
                **{k: list(v) if isinstance(v, tuple) else v for k, v in self.get_params().items()}}

    # -- fitting and applying -----------------------------------------------------------------

    def fit(self, images, labels=None, *, seed=None) -> "Scheme":
        """Draw the scheme's random state (keys, shuffling streams) once.

        Parameters
        ----------
        images : ndarray of shape (N, H, W) or (N, H, W, C), uint8 in [0, 255]
            The training images; their geometry (and channels, for the keyed schemes) is
            checked and remembered. Not modified.
        labels : sequence of hashables, length N, optional
            Class of each image (PBM needs them).
        seed : None, int, numpy.random.SeedSequence or numpy.random.Generator
            Pass an int for reproducible output. None draws fresh entropy; a Generator is
            drawn from (the same state gives the same scheme). Child streams come from
            ``SeedSequence.spawn``. Deterministic schemes check the type and ignore it.

        Returns
        -------
        self
        """
        images = check_images(images)
        if labels is not None:
            check_labels(labels, images.shape[0])
        self.__dict__.pop("image_shape_", None)  # unfitted until this fit succeeds
        self._check_data(images, labels)
        if self.randomized:
            self.seeds_ = tuple(spawn_seeds(seed, self._n_streams))
        else:
            _check_seed(seed)
            self.seeds_ = ()
        self._draw(images)
        self.image_shape_ = tuple(int(s) for s in images.shape[1:])
        return self

    def protect(self, images, labels=None, *, return_shares: bool = False):
        """The protected training set.

        Parameters
        ----------
        images : ndarray of shape (N, H, W) or (N, H, W, C), uint8 in [0, 255]
            Not modified.
        labels : sequence of hashables, length N, optional
            Class of each image (PBM needs them).
        return_shares : bool, default=False
            Also return where every released image's content came from (what an evaluator
            knows and an attacker does not): for the re-identification that credits every
            true source (:func:`pbmlib.privacy.audit.audit`).

        Returns
        -------
        protected : ndarray of the shape of ``images``, uint8
            A new array; the same bytes on every call: the randomness was drawn by :meth:`fit`.
        shares : scipy.sparse.csr_matrix of shape (N, N), float64
            Only with ``return_shares``: ``shares[j, i]`` is the share of released image j's
            pixels (or blocks) that came from original i; each row sums to 1. The identity
            for schemes that keep every image's content in its own released image.
        """
        self._check_fitted()
        images = check_images(images)
        if labels is not None:
            check_labels(labels, images.shape[0])
        out = self._protect(images, labels)
        protected, shares = out if isinstance(out, tuple) else (out, None)
        if not return_shares:
            return protected
        if shares is None:
            from scipy.sparse import identity

            shares = identity(images.shape[0], format="csr", dtype=np.float64)
        return protected, shares

    def fit_protect(self, images, labels=None, *, seed=None) -> np.ndarray:
        """``fit(images, labels, seed=seed).protect(images, labels)``."""
        return self.fit(images, labels, seed=seed).protect(images, labels)

    def protect_test(self, images) -> np.ndarray:
        """Test images as a classifier trained on the protected set must see them.

        Parameters
        ----------
        images : ndarray of shape (N, H, W) or (N, H, W, C), uint8 in [0, 255]

        Returns
        -------
        ndarray of the shape of ``images``, uint8: a copy unless ``transforms_test``
        (keyed schemes encrypt with the fitted key; VisualMixer shuffles with its own
        fitted test stream).
        """
        self._check_fitted()
        images = check_images(images)
        if not self.transforms_test:
            return images.copy()
        return self._protect_test(images)

    def protect_public(self, images, labels=None, *, seed=None) -> np.ndarray:
        """What an attacker gets by running the scheme on public images.

        With ``transforms_test`` the attacker can submit images to the deployed scheme and
        obtains :meth:`protect_test` ``(images)`` (the same key: a chosen-plaintext
        setting; needs :meth:`fit` first). Otherwise the attacker runs the published
        procedure with their own randomness: ``self.clone().fit_protect(images, labels,
        seed=seed)``, which leaves this scheme's fitted state alone.

        Parameters
        ----------
        images : ndarray of shape (M, H, W) or (M, H, W, C), uint8 in [0, 255]
        labels : sequence of hashables, length M, optional
        seed : None, int, numpy.random.SeedSequence or numpy.random.Generator
            The attacker's randomness (unused with ``transforms_test``).

        Returns
        -------
        ndarray of the shape of ``images``, uint8
        """
        if self.transforms_test:
            return self.protect_test(images)
        return self.clone().fit_protect(images, labels, seed=seed)

    # -- what an attacker knows ---------------------------------------------------------------

    def attack_block(self, image_shape) -> tuple[int, int] | None:
        """Block geometry ``(height, width)`` in pixels that the attacker knows and block-level
        attacks should use, or None when the scheme has none.

        Parameters
        ----------
        image_shape : tuple of int
            ``(H, W)`` or ``(H, W, C)`` of one image; the block must divide H and W.
        """
        return None

    def mechanism(self):
        """The public mechanism of the fitted scheme (:class:`pbmlib.privacy.mechanism.Mechanism`):
        what an attacker who knows the algorithm and its parameters, but not the random draws or
        the key, can build a likelihood from."""
        self._check_fitted()
        return self._mechanism()

    def _mechanism(self):
        raise NotImplementedError(f"{type(self).__name__} declares no public mechanism; implement _mechanism()")

    def restoration_log10_probability(self, labels, image_shape) -> float | None:
        """log10 of the brute-force restoration probability (Eq. 9 of the PBM paper) where
        the scheme has one, else None.

        Parameters
        ----------
        labels : sequence of hashables
            Labels of the protected training set (class sizes are counted from them).
        image_shape : tuple of int
            ``(H, W)`` or ``(H, W, C)`` of one image.
        """
        return None

    # -- hooks for subclasses -----------------------------------------------------------------

    def _check_data(self, images: np.ndarray, labels) -> None:
        """Check that the training data suits the parameters (geometry, channels, labels);
        called by :meth:`fit` before any randomness is drawn."""

    def _draw(self, images: np.ndarray) -> None:
        """Draw keys from ``self.seeds_`` into fitted attributes (e.g. ``key_``); called by
        :meth:`fit` once ``seeds_`` is set."""

    def _protect(self, images: np.ndarray, labels) -> np.ndarray:
        raise NotImplementedError

    def _protect_test(self, images: np.ndarray) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} sets transforms_test but has no _protect_test")

    def _rng(self, stream: int = 0) -> np.random.Generator:
        """A fresh Generator on fitted stream ``stream``: the same numbers on every call."""
        return np.random.default_rng(self.seeds_[stream])

    def _check_fitted(self) -> None:
        if not hasattr(self, "image_shape_"):
            raise ValueError(f"this {type(self).__name__} scheme is not fitted yet: call fit(...) first, "
                             f"e.g. scheme.fit(images, labels, seed=0), or use fit_protect(images, labels, seed=0)")

    def _check_same_shape(self, images: np.ndarray) -> None:
        if images.shape[1:] != self.image_shape_:
            raise ValueError(f"{self.name} was fitted on images of shape {self.image_shape_} (one image), got "
                             f"{images.shape[1:]}; fit it on images of that shape")


# -- parameter checks shared by the schemes (ValueError naming the parameter) ---------------------

def _same(a, b) -> bool:
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return False


def _check_seed(seed) -> None:
    """Accept what :func:`spawn_seeds` accepts without drawing from a Generator."""
    if seed is None or isinstance(seed, (np.random.Generator, np.random.SeedSequence)):
        return
    spawn_seeds(seed, 0)


def block_view(images: np.ndarray, block) -> np.ndarray:
    """View ``images`` as a grid of blocks (no copy; writes go through to ``images``).

    Parameters
    ----------
    images : ndarray of shape (N, H, W) or (N, H, W, C)
    block : (int, int)
        Block height and width in pixels; must divide H and W.

    Returns
    -------
    ndarray of shape (N, H // bh, W // bw, bh, bw) or (N, H // bh, W // bw, bh, bw, C),
    a strided view (:func:`skimage.util.view_as_blocks`).

    Examples
    --------
    >>> block_view(np.zeros((2, 8, 6, 3), np.uint8), (4, 3)).shape
    (2, 2, 2, 4, 3, 3)
    """
    bh, bw = check_block(images.shape[1:3], block)
    view = view_as_blocks(images, (1, bh, bw) + images.shape[3:])
    return view[(slice(None),) * 3 + (0,) * (images.ndim - 2)]


def shares_from_sources(sources, n_originals: int):
    """Content shares of released images from block provenance (see :meth:`Scheme.protect`).

    Parameters
    ----------
    sources : ndarray of shape (N, gh, gw) or sequence of them
        The original every released block comes from; several arrays (released blocks that
        are the mean of several draws) share each block equally.
    n_originals : int

    Returns
    -------
    scipy.sparse.csr_matrix of shape (N, n_originals), float64, rows summing to 1.
    """
    from scipy.sparse import csr_matrix

    stack = [np.asarray(s) for s in (sources if isinstance(sources, (list, tuple)) else [sources])]
    n = stack[0].shape[0]
    per_image = stack[0][0].size * len(stack)
    rows = np.concatenate([np.repeat(np.arange(n), s[0].size) for s in stack])
    cols = np.concatenate([s.reshape(n, -1).ravel() for s in stack])
    return csr_matrix((np.full(rows.size, 1.0 / per_image), (rows, cols)), shape=(n, n_originals))
