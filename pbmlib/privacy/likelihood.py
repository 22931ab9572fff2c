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
  ``donor(j, c) = sum_p log(1 - d + d * LR_p(j, c))``.

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

__all__ = ["LikelihoodScores", "likelihood_scores", "DEFAULT_COPY_SCALE"]

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
    """

    membership: np.ndarray
    reid: np.ndarray


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
    membership = np.zeros(len(candidates))
    reid = np.full((len(released), len(candidates)), -np.inf)
    for code in np.unique(c_codes):
        rows, cols = np.flatnonzero(r_codes == code), np.flatnonzero(c_codes == code)
        if rows.size == 0:
            continue
        if mechanism.positions == "any":
            m, r = _any_position(fr[rows], fc[cols])
        else:
            m, r = _same_position(mechanism, fr[rows], fc[cols], copy_scale)
        membership[cols] = m
        reid[np.ix_(rows, cols)] = r
    return LikelihoodScores(membership, reid)


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


def _same_position(mechanism: Mechanism, fr, fc, copy_scale):
    """Units at their position. H1 for a member c: one released image (uniformly, unknown) is c's
    own, each of its units c's with probability ``keep``; c's units also appear as donors
    elsewhere with probability ``(1 - keep) / (n - 1)`` per released unit (means of
    ``average`` draws: ``average`` times that, and no own image). Against the pool's background."""
    n = fr.shape[0]
    if not mechanism.mixes:  # one source per image: the image is the unit
        total = sum(l for _, l in _unit_log_likelihoods(mechanism, fr, fc, copy_scale))
        llr = total - _log_mean_exp(total)
        return logsumexp(llr, axis=0) - np.log(n), llr
    keep = 0.0 if mechanism.average > 1 else mechanism.keep
    donor = float(np.clip(mechanism.average * (1 - keep) / max(1, n - 1), 1e-9, 1.0))
    own_weight = float(np.clip(keep, 1e-9, 1.0))
    as_donor = np.zeros((n, fc.shape[0]))
    as_own = np.zeros((n, fc.shape[0]))
    for _, l in _unit_log_likelihoods(mechanism, fr, fc, copy_scale):
        llr = l if mechanism.average > 1 else l - _log_mean_exp(l)
        as_donor += _mixture(llr, donor)
        as_own += _mixture(llr, own_weight)
    reid = as_own if keep > 0 else as_donor
    membership = as_donor.sum(axis=0) + (logsumexp(as_own - as_donor, axis=0) - np.log(n) if keep > 0 else 0.0)
    return membership, reid


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
