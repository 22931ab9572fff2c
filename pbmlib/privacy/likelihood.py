"""Likelihood-ratio attacks built from a scheme's public mechanism alone.

Given the :class:`~pbmlib.privacy.mechanism.Mechanism` (unit, feature, public transform,
noise law and scale, rounding and clipping, provenance: own unit kept with probability
``keep``, else a same-label donor's; means of ``average`` draws; fixed or free
positions), :func:`likelihood_scores` computes, for every released image ``j`` and
candidate ``c`` of one label and every unit position ``p``, the log-likelihood
``l_p(j, c) = log P(released unit r_jp | it carries c's unit)`` and the background
``b_p(j) = log mean_c' P(r_jp | c')`` over the candidate pool (members and non-members:
what the attacker holds). With ``LR = exp(l - b)``:

- re-identification of ``(j, c)``: ``own(j, c) = sum_p log(1 - keep + keep * LR_p(j, c))``,
  the log-likelihood ratio of "j is c's own released image" (each unit c's with
  probability ``keep``); when units are not mixed (``keep = 1``) the whole image is one
  unit: ``sum_p l_p(j, c) - b(j)``;
- membership of ``c``: the log-likelihood ratio of "c is a member": one released image
  (unknown, uniformly) is c's own, and c's units turn up as donors in the others with
  probability ``d = average * (1 - keep) / (n - 1)`` per unit:
  ``logmeanexp_j(own(j, c) - donor(j, c)) + sum_j donor(j, c)`` with
  ``donor(j, c) = sum_p log(1 - d + d * LR_p(j, c))``;
- the release is one released image per member: its assignment variants read it so (a
  maximum-likelihood one-to-one assignment of released images to candidates, and each
  candidate's leave-one-out gain of it).

Noise with a published law and scale is modelled exactly, rounding to whole grey levels
and clipping at 0 and 255 included (:meth:`~pbmlib.privacy.mechanism.Noise.log_prob`);
without noise the released values are compared with a small Gaussian tolerance
(``copy_scale``: rounding, or a re-encoded copy). Averages of ``k`` draws are modelled
as Gaussian around ``c / k + (k - 1) / k * m`` with the label's unit mean ``m`` and
covariance from the pool. Units moved anywhere (``positions="any"``) are looked up by
exact content, weighted by how rare each unit is in the pool.

Only pairs of one label are compared: the labels are released with the training set.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy.special import logsumexp

from .._validation import check_images, check_labels
from .kernels import chunked_sq_distances
from .mechanism import Mechanism, unit_features

__all__ = ["LikelihoodScores", "likelihood_scores", "sum_query_membership", "DEFAULT_COPY_SCALE"]

#: Tolerance (grey levels) for features released without noise: rounding only.
DEFAULT_COPY_SCALE = 0.5
_TABLE_RESOLUTION = 8


@dataclasses.dataclass
class LikelihoodScores:
    """Scores of one release.

    Attributes
    ----------
    membership : ndarray of shape (n_candidates,), float64
        Higher = more likely a member.
    reid : ndarray of shape (n_released, n_candidates), float64
        Higher = released image more likely carries the candidate; ``-inf`` across labels.
    membership_assignment, reid_assignment : ndarray, optional
        The same with the release read as what it is, one released image per member (a
        one-to-one assignment of released images to candidates per label, Hungarian
        algorithm): re-identification keeps the assigned pairs on top; membership is a
        candidate's leave-one-out gain of the optimal assignment plus its donor term. For
        units at their position.
    """

    membership: np.ndarray
    reid: np.ndarray
    membership_assignment: np.ndarray | None = None
    reid_assignment: np.ndarray | None = None


def sum_query_membership(released, released_labels, candidates, candidate_labels, *,
                         exact_up_to: int = 300) -> np.ndarray:
    """Membership from the label's sum of released images, for releases that average or mix units.

    Every member's unit enters the release about once per draw (each of ``average`` draws
    of every released unit picks one same-label member), so a label's sum of released images
    is about the sum of its members' images: a sum query. Per candidate, the non-negative
    least-squares fit of that sum on the label's candidates (weights summing to the number of
    released images) with the candidate forced in at weight 1, against without it: the
    candidate's score is how much it helps. Beyond ``exact_up_to`` candidates of a label, the
    candidate's weight in the one fit.

    Returns
    -------
    ndarray of shape (n_candidates,), float64: higher = more likely a member.
    """
    from scipy.optimize import nnls

    released, candidates = check_images(released, name="released"), check_images(candidates, name="candidates")
    codes, _ = check_labels(list(released_labels) + list(candidate_labels), len(released) + len(candidates))
    r_codes, c_codes = codes[: len(released)], codes[len(released):]
    x = candidates.reshape(len(candidates), -1).astype(np.float64)
    y = released.reshape(len(released), -1).astype(np.float64)
    scale = 1e3  # weight of the row that asks the weights to sum to the number of released images
    scores = np.zeros(len(candidates))
    for code in np.unique(c_codes):
        rows, cols = np.flatnonzero(r_codes == code), np.flatnonzero(c_codes == code)
        total, n = y[rows].sum(axis=0), len(rows)
        design = np.vstack([x[cols].T, scale * np.ones(len(cols))])
        if len(cols) > exact_up_to:
            scores[cols] = nnls(design, np.r_[total, scale * n])[0]
            continue
        for k, c in enumerate(cols):  # two small fits per candidate
            others = np.arange(len(cols)) != k
            without = nnls(design[:, others], np.r_[total, scale * n])[1]
            forced = nnls(design[:, others], np.r_[total - x[c], scale * (n - 1)])[1]
            scores[c] = without**2 - forced**2
    return scores


def likelihood_scores(mechanism: Mechanism, released, released_labels, candidates, candidate_labels, *,
                      copy_scale: float = DEFAULT_COPY_SCALE) -> LikelihoodScores:
    """Membership and re-identification scores of the mechanism-aware likelihood attack.

    Parameters
    ----------
    mechanism : Mechanism
        What the scheme publishes (:meth:`pbmlib.schemes.base.Scheme.mechanism`).
    released : ndarray of shape (N, H, W[, C]), uint8
        What the attacker holds of the release.
    released_labels : sequence of length N
    candidates : ndarray of shape (M, H, W[, C]), uint8
        Images the attacker asks about (members and non-members pooled).
    candidate_labels : sequence of length M
    copy_scale : float, default=0.5
        Extra Gaussian tolerance in grey levels (0.5: rounding; larger for a lossy copy).

    Returns
    -------
    LikelihoodScores

    Examples
    --------
    >>> from pbmlib.privacy.mechanism import Mechanism
    >>> rng = np.random.default_rng(0)
    >>> x = rng.integers(0, 256, (6, 4, 4), dtype=np.uint8)
    >>> s = likelihood_scores(Mechanism(), x[:3], [0, 0, 0], x, [0] * 6)
    >>> bool(s.membership[:3].min() > s.membership[3:].max()), s.reid.argmax(axis=1).tolist()
    (True, [0, 1, 2])
    """
    released, candidates = check_images(released, name="released"), check_images(candidates, name="candidates")
    if released.shape[1:] != candidates.shape[1:]:
        raise ValueError(f"released {released.shape[1:]} and candidates {candidates.shape[1:]} differ in image shape")
    if mechanism.augmented or mechanism.keyed and mechanism.feature == "pixels":
        raise ValueError("this mechanism leaves no feature to compare (augmentation is searched by "
                         "pbmlib.privacy.adaptive, a key by the learned inversion)")
    codes, _ = check_labels(list(released_labels) + list(candidate_labels), len(released) + len(candidates))
    r_codes, c_codes = codes[: len(released)], codes[len(released):]
    fr = unit_features(released, mechanism)
    fc = unit_features(candidates, mechanism, transform=True)
    out = LikelihoodScores(np.zeros(len(candidates)), np.full((len(released), len(candidates)), -np.inf))
    if mechanism.positions == "same":
        out.membership_assignment = np.zeros(len(candidates))
        out.reid_assignment = np.full((len(released), len(candidates)), -np.inf)
    for code in np.unique(c_codes):
        rows, cols = np.flatnonzero(r_codes == code), np.flatnonzero(c_codes == code)
        if rows.size == 0:
            continue
        if mechanism.positions == "any":
            out.membership[cols], out.reid[np.ix_(rows, cols)] = _any_position(fr[rows], fc[cols])
            continue
        own, donor = _same_position(mechanism, fr[rows], fc[cols], copy_scale)
        donor_sum = donor.sum(axis=0)
        out.membership[cols] = donor_sum + logsumexp(own - donor, axis=0) - np.log(len(rows))
        out.reid[np.ix_(rows, cols)] = own
        out.membership_assignment[cols] = donor_sum + _leave_one_out_gain(own - donor)
        out.reid_assignment[np.ix_(rows, cols)] = _assigned_on_top(own)
    return out


def _unit_log_likelihoods(mechanism: Mechanism, fr: np.ndarray, fc: np.ndarray, copy_scale: float):
    """Yield ``(p, l)`` per unit position: ``l`` (R, C) = log P(released unit | candidate's unit)."""
    if mechanism.average > 1:
        yield from _average_log_likelihoods(mechanism.average, fr, fc, mechanism.noise, copy_scale)
        return
    if mechanism.noise is None:  # Gaussian tolerance: squared distances by matrix products
        variance = copy_scale**2
        d = fr.shape[2]
        for p in range(fr.shape[1]):
            total = np.empty((fr.shape[0], fc.shape[0]))
            for lo, hi, chunk in chunked_sq_distances(fr[None, :, p], fc[None, :, p]):
                total[lo:hi] = chunk[0]
            yield p, -d * total / (2 * variance) - 0.5 * d * np.log(2 * np.pi * variance)
        return
    noise = mechanism.noise
    if copy_scale > DEFAULT_COPY_SCALE:  # a lossy copy on top of the published noise
        noise = type(noise)(noise.law, float(np.hypot(noise.scale, copy_scale)))
    table, resolution = noise.table(_TABLE_RESOLUTION)
    levels = np.clip(np.rint(fr), 0, 255).astype(np.int64)  # released features are whole grey levels
    columns = np.clip(np.rint((fc + 64) * resolution), 0, table.shape[1] - 1).astype(np.int64)
    for p in range(fr.shape[1]):
        total = np.zeros((fr.shape[0], fc.shape[0]))
        for f in range(fr.shape[2]):  # one gather of (R, C) per feature value, never per pixel pair
            total += table[levels[:, p, f][:, None], columns[:, p, f][None, :]]
        yield p, total


def _average_log_likelihoods(k: int, fr: np.ndarray, fc: np.ndarray, noise, copy_scale: float):
    """Averages of k draws: per position, the Gaussian log-likelihood ratio of "c is one of r's
    sources" against the label's background. The pool's units give the mean ``m`` and covariance
    ``S`` (a unit's values are strongly correlated: the model is Gaussian in ``S``'s eigenbasis):
    ``r - m ~ N((c - m) / k, (k - 1) / k**2 S + e I)`` when c is a source, ``N(0, S / k + e I)`` else,
    ``e`` the noise and copy variance."""
    extra = copy_scale**2 + (0.0 if noise is None else noise.scale**2 * (2 if noise.law == "laplace" else 1))
    for p in range(fr.shape[1]):
        mean = fc[:, p].mean(axis=0)
        centred = fc[:, p] - mean
        lam, basis = np.linalg.eigh(centred.T @ centred / max(1, len(centred) - 1) + np.eye(centred.shape[1]))
        released, candidates = (fr[:, p] - mean) @ basis, centred @ basis
        v1 = (k - 1) / k**2 * lam + extra  # r | c among the sources
        v0 = lam / k + extra  # r | background
        a, b = released / np.sqrt(v1), candidates / k / np.sqrt(v1)
        total = np.empty((fr.shape[0], fc.shape[0]))
        for lo, hi, chunk in chunked_sq_distances(a[None], b[None]):
            total[lo:hi] = chunk[0] * a.shape[1]
        l1 = -0.5 * total - 0.5 * np.log(2 * np.pi * v1).sum()
        l0 = -0.5 * (released**2 / v0).sum(axis=1) - 0.5 * np.log(2 * np.pi * v0).sum()
        yield p, l1 - l0[:, None]  # already against the parametric background


def _same_position(mechanism: Mechanism, fr, fc, copy_scale) -> tuple[np.ndarray, np.ndarray]:
    """Units at their position: ``(own, donor)``, each (released, candidates), the log-likelihood ratios of
    "j is c's own released image" (each unit c's with probability ``keep``) and of "c gave units to j as a
    donor" (probability ``average * (1 - keep) / (n - 1)`` per unit), both against the pool's background.
    Without mixing the image is the unit: ``own`` is the image's ratio and ``donor`` is 0."""
    n = fr.shape[0]
    if not mechanism.mixes:  # one source per image: the image is the unit
        total = sum(l for _, l in _unit_log_likelihoods(mechanism, fr, fc, copy_scale))
        return total - _log_mean_exp(total), np.zeros_like(total)
    keep = 0.0 if mechanism.average > 1 else mechanism.keep
    donor_weight = float(np.clip(mechanism.average * (1 - keep) / max(1, n - 1), 1e-9, 1.0))
    own_weight = float(np.clip(keep, 1e-9, 1.0))
    donor = np.zeros((n, fc.shape[0]))
    own = np.zeros((n, fc.shape[0]))
    for _, l in _unit_log_likelihoods(mechanism, fr, fc, copy_scale):
        llr = l if mechanism.average > 1 else l - _log_mean_exp(l)
        donor += _mixture(llr, donor_weight)
        own += _mixture(llr, own_weight)
    return own, donor


def _assigned_on_top(scores: np.ndarray) -> np.ndarray:
    """Scores with the pairs of the optimal one-to-one assignment (rows to columns) lifted above all others."""
    from scipy.optimize import linear_sum_assignment

    finite = np.where(np.isfinite(scores), scores, -1e12)
    rows, cols = linear_sum_assignment(finite, maximize=True)
    lifted = finite - (finite.max() - finite.min() + 1.0)
    lifted[rows, cols] = finite[rows, cols]
    return lifted


def _leave_one_out_gain(scores: np.ndarray, *, exact_up_to: int = 400) -> np.ndarray:
    """Per column, how much the optimal one-to-one assignment of rows loses without it (0 for unused columns).

    Exact (one assignment per used column) up to ``exact_up_to`` rows; beyond, the loss of giving the
    column's row its best unused column instead (a lower bound)."""
    from scipy.optimize import linear_sum_assignment

    finite = np.where(np.isfinite(scores), scores, -1e12)
    rows, cols = linear_sum_assignment(finite, maximize=True)
    gain = np.zeros(finite.shape[1])
    if len(rows) <= exact_up_to:
        best = finite[rows, cols].sum()
        for c in cols:
            keep = np.arange(finite.shape[1]) != c
            r2, c2 = linear_sum_assignment(finite[:, keep], maximize=True)
            gain[c] = best - finite[:, keep][r2, c2].sum()
        return gain
    unused = np.ones(finite.shape[1], bool)
    unused[cols] = False
    fallback = finite[rows][:, unused].max(axis=1) if unused.any() else np.full(len(rows), -1e12)
    gain[cols] = finite[rows, cols] - fallback
    return gain


def _log_mean_exp(l: np.ndarray) -> np.ndarray:
    """Background per released unit: log of the mean likelihood over the candidate pool, (R, 1)."""
    return logsumexp(l, axis=1, keepdims=True) - np.log(l.shape[1])


def _mixture(llr: np.ndarray, weight: float) -> np.ndarray:
    """``log(1 - w + w * exp(llr))``, stable for any llr."""
    if weight >= 1:
        return llr
    return np.logaddexp(np.log1p(-weight), np.log(weight) + llr)


def _any_position(fr: np.ndarray, fc: np.ndarray):
    """Units moved anywhere within the label: exact lookup of each candidate unit among every
    released unit, weighted by its rarity in the pool (-log frequency)."""
    from scipy.sparse import csr_matrix

    keys_r, keys_c = _content_keys(fr), _content_keys(fc)
    _, ids = np.unique(np.concatenate([keys_r.ravel(), keys_c.ravel()]), return_inverse=True)
    ids_r, ids_c = ids[: keys_r.size].reshape(keys_r.shape), ids[keys_r.size:].reshape(keys_c.shape)
    n_ids = int(ids.max()) + 1
    frequency = np.bincount(ids_c.ravel(), minlength=n_ids) / ids_c.size
    weight = -np.log(np.maximum(frequency, 1.0 / ids_c.size))
    present = np.zeros(n_ids, bool)
    present[ids_r.ravel()] = True
    membership = (present[ids_c] * weight[ids_c]).sum(axis=1)

    def one_hot(index, values):
        rows = np.repeat(np.arange(index.shape[0]), index.shape[1])
        return csr_matrix((values, (rows, index.ravel())), shape=(index.shape[0], n_ids))

    shared = one_hot(ids_r, np.ones(ids_r.size)) @ one_hot(ids_c, weight[ids_c].ravel()).T
    return membership, np.asarray(shared.todense(), dtype=np.float64)


def _content_keys(features: np.ndarray) -> np.ndarray:
    """A 64-bit key per unit equal exactly when two units' (rounded) features are equal, at any position."""
    values = np.rint(features).astype(np.int64).astype(np.uint64)
    rng = np.random.default_rng(0x5EED)
    weights = rng.integers(1, 2**63, size=values.shape[2], dtype=np.uint64) | np.uint64(1)
    with np.errstate(over="ignore"):
        return (values * weights).sum(axis=2, dtype=np.uint64)
