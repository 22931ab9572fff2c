"""Attacks that undo a public augmentation applied before release, then read the mixing.

A scheme that augments its release (``pbm_augment``: flip with probability 0.5, rotation by
U(-r, r) degrees about the centre with bilinear interpolation and a mirrored border,
brightness gain U(1 - b, 1 + b), rounding) moves the released pixels off PBM's block grid,
which blinds the same-position attacks. The transform is public, only its draw is secret,
and one draw moves a whole image. So, per released image:

1. search the transform: every flip and angle on a 1-degree grid, refined to 0.1 degree,
   comparing, for each source block of PBM's grid, only the released pixels whose four
   interpolation neighbours lie inside that block (those are one source's pixels,
   transformed), with the gain fitted; the transform under which the released blocks sit
   closest to some candidate's transformed blocks wins;
2. score every candidate's transformed blocks against the released ones (a robust Gaussian
   per pixel), giving per-unit log-likelihoods; these go through the same mixture and
   assignment read-outs as :mod:`pbmlib.privacy.likelihood` (own unit kept with the
   mechanism's probability, else a donor's).

Pool transforms are computed once per label and angle; nothing loops over pixels.
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from .._validation import check_images, check_labels
from .likelihood import LikelihoodScores, _assigned_on_top, _leave_one_out_gain, _mixture

__all__ = ["transform_search_scores"]

_REFINE = np.round(np.arange(-0.9, 0.91, 0.1), 6)
_CHUNK = 64  # released images searched together: (chunk, units, pool) residuals in memory


def _source_coords(h: int, w: int, degrees: float):
    """The published rotation about the centre: source coordinates of every output pixel."""
    theta = np.deg2rad(degrees)
    yy, xx = np.meshgrid(np.arange(h) - (h - 1) / 2, np.arange(w) - (w - 1) / 2, indexing="ij")
    sy = np.cos(theta) * yy - np.sin(theta) * xx + (h - 1) / 2
    sx = np.sin(theta) * yy + np.cos(theta) * xx + (w - 1) / 2
    return sy, sx


def _transform(images: np.ndarray, flip: bool, degrees: float) -> np.ndarray:
    """Flip then rotate float images (N, H, W, C) as :func:`pbmlib.data.augmentation.apply_augmentation`
    does (no gain, no rounding): bilinear with a mirrored border, the four neighbours and their weights
    computed once for the whole stack."""
    x = images[:, :, ::-1] if flip else images
    if degrees == 0:
        return np.ascontiguousarray(x, dtype=np.float32)
    h, w = x.shape[1:3]
    sy, sx = _source_coords(h, w, degrees)
    y0, x0 = np.floor(sy), np.floor(sx)
    fy, fx = (sy - y0)[..., None], (sx - x0)[..., None]
    ya, yb = _mirror(y0.astype(int), h), _mirror(y0.astype(int) + 1, h)
    xa, xb = _mirror(x0.astype(int), w), _mirror(x0.astype(int) + 1, w)
    x = x.astype(np.float64)
    out = ((1 - fy) * ((1 - fx) * x[:, ya, xa] + fx * x[:, ya, xb])
           + fy * ((1 - fx) * x[:, yb, xa] + fx * x[:, yb, xb]))
    return out.astype(np.float32)


def _mirror(i: np.ndarray, n: int) -> np.ndarray:
    period = 2 * n - 2
    i = np.mod(i, period)
    return np.where(i >= n, period - i, i)


def _owners(h: int, w: int, block: tuple[int, int], flip: bool, degrees: float) -> np.ndarray:
    """Per output pixel: the source block (of the unflipped grid) its four interpolation neighbours all
    lie in, else -1."""
    bh, bw = block
    if degrees == 0:
        sy, sx = np.meshgrid(np.arange(h, dtype=float), np.arange(w, dtype=float), indexing="ij")
    else:
        sy, sx = _source_coords(h, w, degrees)
    y0, x0 = np.floor(sy + 1e-9).astype(int), np.floor(sx + 1e-9).astype(int)
    ys = [_mirror(y0, h), _mirror(np.where(np.isclose(sy, y0), y0, y0 + 1), h)]
    xs = [_mirror(x0, w), _mirror(np.where(np.isclose(sx, x0), x0, x0 + 1), w)]
    if flip:
        xs = [w - 1 - x for x in xs]
    ids = [(yy // bh) * (w // bw) + (xx // bw) for yy in ys for xx in xs]
    return np.where(np.all([i == ids[0] for i in ids], axis=0), ids[0], -1)


class _Units:
    """The pixels of every unit (source block) under one transform: column indices into flattened
    ``(H * W * C)`` images, grouped by unit, and whether a unit has enough pixels (>= 3) to fit."""

    def __init__(self, owner: np.ndarray, n_units: int, channels: int):
        flat = np.repeat(owner.ravel(), channels)
        self.columns = [np.flatnonzero(flat == u) for u in range(n_units)]
        self.fits = np.array([c.size >= 3 * channels for c in self.columns])
        inside = np.flatnonzero(flat >= 0)
        self.order = inside[np.argsort(flat[inside], kind="stable")]  # columns sorted by unit
        present = np.unique(flat[inside])
        self.present = present
        self.starts = np.searchsorted(flat[self.order], present)

    def sums(self, values: np.ndarray) -> np.ndarray:
        """Per-unit sums of ``values`` (..., H * W * C): (..., n_units), 0 for a unit without pixels."""
        out = np.zeros(values.shape[:-1] + (len(self.columns),))
        if self.present.size:
            out[..., self.present] = np.add.reduceat(values[..., self.order], self.starts, axis=-1)
        return out


def _fit(released: np.ndarray, pool: np.ndarray, units: _Units):
    """Per released image, unit and pool image: the gain-fitted residual per value of the released unit
    against the pool image's, and the fitted gain, each (n, n_units, pool); ``inf`` residuals where a unit
    has too few pixels. ``released`` (n, D) and ``pool`` (M, D) are flattened float32 images."""
    n, m, k = released.shape[0], pool.shape[0], len(units.columns)
    rss = np.full((n, k, m), np.inf)
    gains = np.ones((n, k, m))
    for u in np.flatnonzero(units.fits):  # a few dozen units, each one matrix product over images x pool
        cols = units.columns[u]
        r, t = released[:, cols], pool[:, cols]
        rt = r @ t.T
        gains[:, u] = rt / ((t * t).sum(axis=1) + 1e-9)
        rss[:, u] = ((r * r).sum(axis=1)[:, None] - rt * gains[:, u]) / cols.size
    return rss, gains


def _scores(rss: np.ndarray) -> np.ndarray:
    """Per released image: the mean over fitted units of the residual of the closest pool image (inf where
    no unit fits)."""
    best = rss.min(axis=2)
    finite = np.isfinite(best)
    total = np.where(finite, best, 0.0).sum(axis=1)
    count = finite.sum(axis=1)
    return np.where(count > 0, total / np.maximum(count, 1), np.inf)


class _Search:
    """Transformed pools and unit maps of one label's pool, computed once per (flip, angle) and kept."""

    def __init__(self, pool: np.ndarray, block: tuple[int, int], n_units: int):
        self.pool, self.block, self.n_units = pool, block, n_units
        self._pools: dict = {}
        self._units: dict = {}

    def units(self, key) -> _Units:
        if key not in self._units:
            h, w, c = self.pool.shape[1:]
            self._units[key] = _Units(_owners(h, w, self.block, *key), self.n_units, c)
        return self._units[key]

    def transformed(self, key) -> np.ndarray:
        """The pool under ``key``, flattened (M, H * W * C) float32; at most 64 kept (memory)."""
        if key not in self._pools:
            if len(self._pools) >= 64:
                self._pools.pop(next(iter(self._pools)))
            self._pools[key] = _transform(self.pool, *key).reshape(self.pool.shape[0], -1)
        return self._pools[key]

    def fit(self, released: np.ndarray, key):
        return _fit(released, self.transformed(key), self.units(key))


def _estimate(released: np.ndarray, search: _Search, grid, gain_range) -> tuple[list, np.ndarray]:
    """Per released image (flattened float32, (n, D)): the (flip, degrees) and gain that put its units
    closest to some pool image's. Coarse: every key of ``grid``; then 0.1 degree around the best."""
    n = released.shape[0]
    best_score, best_key = np.full(n, np.inf), np.zeros(n, dtype=np.int64)
    for k, key in enumerate(grid):  # first best wins ties, as the grid is ordered
        score = _scores(search.fit(released, key)[0])
        better = score < best_score
        best_score[better], best_key[better] = score[better], k
    chosen = [grid[k] for k in best_key]
    for k in np.unique(best_key):
        rows = np.flatnonzero(best_key == k)
        flip, coarse = grid[k]
        for degrees in coarse + _REFINE:
            key = (flip, float(degrees))
            score = _scores(search.fit(released[rows], key)[0])
            better = score < best_score[rows]
            best_score[rows[better]] = score[better]
            for row in rows[better]:
                chosen[row] = key
    gains = np.ones(n)
    for key in set(chosen):
        rows = np.array([i for i, c in enumerate(chosen) if c == key])
        rss, fitted = search.fit(released[rows], key)
        for j, row in enumerate(rows):
            ok = np.isfinite(rss[j]).all(axis=1)
            if not ok.any():
                continue
            nearest = rss[j][ok].argmin(axis=1)
            gain, residual = fitted[j][ok][np.arange(ok.sum()), nearest], rss[j][ok][np.arange(ok.sum()), nearest]
            good = residual <= np.median(residual)  # the units best matched: likely the copies
            gains[row] = float(np.clip(np.median(gain[good]), *gain_range))
    return chosen, gains


def _robust_log_likelihood(residual: np.ndarray, tau: float = 2.0, tail: float = 0.05, wide: float = 20.0):
    return np.logaddexp(np.log1p(-tail) - 0.5 * (residual / tau) ** 2 - np.log(tau),
                        np.log(tail) - 0.5 * (residual / wide) ** 2 - np.log(wide))


def transform_search_scores(mechanism, released, released_labels, candidates, candidate_labels) -> LikelihoodScores:
    """Membership and re-identification of a release augmented before it was released (see the module docstring).

    Parameters
    ----------
    mechanism : Mechanism
        With ``augmentation`` (its flip, rotation and brightness ranges), ``unit`` (PBM's
        block) and ``keep``.
    released, candidates : ndarray of shape (N, H, W[, C]) / (M, H, W[, C]), uint8
    released_labels, candidate_labels : sequences

    Returns
    -------
    LikelihoodScores
        Including the assignment variants.
    """
    released, candidates = check_images(released, name="released"), check_images(candidates, name="candidates")
    augmentation = mechanism.augmentation
    block = mechanism.unit_for(released.shape[1:])
    h, w = released.shape[1:3]
    n_units = (h // block[0]) * (w // block[1])
    as4 = lambda x: (x if x.ndim == 4 else x[..., None]).astype(np.float32)  # noqa: E731
    rel, cand = as4(released), as4(candidates)
    codes, _ = check_labels(list(released_labels) + list(candidate_labels), len(rel) + len(cand))
    r_codes, c_codes = codes[: len(rel)], codes[len(rel):]
    angles = np.arange(-np.floor(augmentation.rotation), np.floor(augmentation.rotation) + 1, 1.0)
    grid = [(flip, float(a)) for flip in ((False, True) if augmentation.flip else (False,)) for a in angles]
    gain_range = (1 - augmentation.brightness, 1 + augmentation.brightness)
    out = LikelihoodScores(np.zeros(len(cand)), np.full((len(rel), len(cand)), -np.inf), np.zeros(len(cand)),
                           np.full((len(rel), len(cand)), -np.inf))
    keep = float(np.clip(mechanism.keep, 1e-9, 1.0))
    for code in np.unique(c_codes):
        rows, cols = np.flatnonzero(r_codes == code), np.flatnonzero(c_codes == code)
        if rows.size == 0:
            continue
        search = _Search(cand[cols], block, n_units)
        units = np.zeros((rows.size, cols.size, n_units))
        for lo in range(0, rows.size, _CHUNK):  # chunks of released images bound the memory
            part = rel[rows[lo:lo + _CHUNK]].reshape(min(_CHUNK, rows.size - lo), -1)
            chosen, gains = _estimate(part, search, grid, gain_range)
            for i, (key, gain) in enumerate(zip(chosen, gains)):
                predicted = np.clip(np.rint(search.transformed(key) * np.float32(gain)), 0, 255)
                units[lo + i] = search.units(key).sums(_robust_log_likelihood(part[i][None] - predicted))
        background = logsumexp(units, axis=1, keepdims=True) - np.log(cols.size)
        ratio = units - background
        donor_weight = float(np.clip((1 - mechanism.keep) / max(1, rows.size - 1), 1e-9, 1.0))
        own = _mixture(ratio, keep).sum(axis=2)
        donor = _mixture(ratio, donor_weight).sum(axis=2)
        donor_sum = donor.sum(axis=0)
        out.membership[cols] = donor_sum + logsumexp(own - donor, axis=0) - np.log(rows.size)
        out.reid[np.ix_(rows, cols)] = own
        out.membership_assignment[cols] = donor_sum + _leave_one_out_gain(own - donor)
        out.reid_assignment[np.ix_(rows, cols)] = _assigned_on_top(own)
    return out
