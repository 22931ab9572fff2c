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
from scipy.ndimage import map_coordinates
from scipy.special import logsumexp

from .._validation import check_images, check_labels
from .likelihood import LikelihoodScores, _assigned_on_top, _leave_one_out_gain, _mixture

__all__ = ["transform_search_scores"]

_REFINE = np.round(np.arange(-0.9, 0.91, 0.1), 6)


def _source_coords(h: int, w: int, degrees: float):
    """The published rotation about the centre: source coordinates of every output pixel."""
    theta = np.deg2rad(degrees)
    yy, xx = np.meshgrid(np.arange(h) - (h - 1) / 2, np.arange(w) - (w - 1) / 2, indexing="ij")
    sy = np.cos(theta) * yy - np.sin(theta) * xx + (h - 1) / 2
    sx = np.sin(theta) * yy + np.cos(theta) * xx + (w - 1) / 2
    return sy, sx


def _transform(images: np.ndarray, flip: bool, degrees: float) -> np.ndarray:
    """Flip then rotate float images (N, H, W, C) as :func:`pbmlib.data.augmentation.apply_augmentation`
    does (no gain, no rounding)."""
    x = images[:, :, ::-1] if flip else images
    if degrees == 0:
        return np.ascontiguousarray(x, dtype=np.float32)
    n, h, w, c = x.shape
    sy, sx = _source_coords(h, w, degrees)
    coords = np.stack([np.broadcast_to(np.arange(n, dtype=float)[:, None, None, None], (n, h, w, c)),
                       np.broadcast_to(sy[None, :, :, None], (n, h, w, c)),
                       np.broadcast_to(sx[None, :, :, None], (n, h, w, c)),
                       np.broadcast_to(np.arange(c, dtype=float), (n, h, w, c))])
    return map_coordinates(x.astype(np.float32), coords, order=1, mode="mirror")


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


def _fit(released: np.ndarray, pool: np.ndarray, owner: np.ndarray, n_units: int):
    """Per unit: the gain-fitted residual per value of the released image's unit against every pool image's,
    and the fitted gains, each (n_units, pool)."""
    rss = np.full((n_units, pool.shape[0]), np.inf)
    gains = np.ones((n_units, pool.shape[0]))
    for p in range(n_units):  # a few dozen units, each vectorised over the pool
        mask = owner == p
        if mask.sum() < 3:
            continue
        r, t = released[mask].ravel(), pool[:, mask].reshape(pool.shape[0], -1)
        tt = (t * t).sum(axis=1) + 1e-9
        rt = t @ r
        gains[p] = rt / tt
        rss[p] = ((r * r).sum() - rt * gains[p]) / r.size
    return rss, gains


def _score(rss: np.ndarray) -> float:
    best = np.where(np.isfinite(rss), rss, np.nan).min(axis=1)
    return float(np.nanmean(best)) if np.isfinite(best).any() else np.inf


def _estimate(released, pool_by_transform, grid, owners, n_units, pool_float, shape, block, gain_range):
    """(flip, degrees, gain) that puts the released image's units closest to some pool image's."""
    h, w = shape
    best = (np.inf, grid[0])
    for key, transformed in zip(grid, pool_by_transform):
        score = _score(_fit(released, transformed, owners[key], n_units)[0])
        if score < best[0]:
            best = (score, key)
    flip, coarse = best[1]
    for degrees in coarse + _REFINE:
        key = (flip, float(degrees))
        score = _score(_fit(released, _transform(pool_float, flip, degrees), _owners(h, w, block, flip, degrees),
                            n_units)[0])
        if score < best[0]:
            best = (score, key)
    flip, degrees = best[1]
    owner = _owners(h, w, block, flip, degrees)
    rss, gains = _fit(released, _transform(pool_float, flip, degrees), owner, n_units)
    ok = np.isfinite(rss).all(axis=1)
    if not ok.any():
        return flip, degrees, 1.0, owner
    nearest = rss[ok].argmin(axis=1)
    fitted, residual = gains[ok][np.arange(ok.sum()), nearest], rss[ok][np.arange(ok.sum()), nearest]
    good = residual <= np.median(residual)  # the units best matched: likely the copies
    return flip, degrees, float(np.clip(np.median(fitted[good]), *gain_range)), owner


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
    owners = {key: _owners(h, w, block, *key) for key in grid}
    gain_range = (1 - augmentation.brightness, 1 + augmentation.brightness)
    out = LikelihoodScores(np.zeros(len(cand)), np.full((len(rel), len(cand)), -np.inf), np.zeros(len(cand)),
                           np.full((len(rel), len(cand)), -np.inf))
    keep = float(np.clip(mechanism.keep, 1e-9, 1.0))
    for code in np.unique(c_codes):
        rows, cols = np.flatnonzero(r_codes == code), np.flatnonzero(c_codes == code)
        if rows.size == 0:
            continue
        pool = cand[cols]
        pool_by_transform = [_transform(pool, *key) for key in grid]
        units = np.zeros((rows.size, cols.size, n_units))
        for i, j in enumerate(rows):  # one search per released image, vectorised over the pool
            flip, degrees, gain, owner = _estimate(rel[j], pool_by_transform, grid, owners, n_units, pool, (h, w),
                                                   block, gain_range)
            predicted = np.clip(np.rint(_transform(pool, flip, degrees) * np.float32(gain)), 0, 255)
            log_likelihood = _robust_log_likelihood(rel[j][None] - predicted)
            for p in range(n_units):
                mask = owner == p
                units[i, :, p] = log_likelihood[:, mask].sum(axis=(1, 2)) if mask.any() else 0.0
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
