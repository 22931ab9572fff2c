"""Statistics of attack figures: ROC, low-FPR rates, intervals, paired tests, target decisions.

Every privacy figure of the audit is a rate measured on a finite set of images, and so
comes with an interval: bootstrap intervals for AUC and TPR (resampling members and
non-members within each split), Wilson intervals for top-1 rates, a paired bootstrap
for an accuracy cost measured on the same test images as its baseline (with the exact
McNemar test beside it). A target is decided only where the interval decides it
(:func:`decide`): "met" when the interval's far end meets it, "not met" when its near
end fails it, "undecided" otherwise.

Low false-positive rates are reported the way membership-inference tools report them
(Carlini et al. 2022): TPR at 0.1 % and 1 % FPR, but only where the number of
non-members resolves that rate (at least ``1 / fpr`` of them); otherwise the smallest
rate they resolve, ``1 / n``, with the count (:func:`low_fpr_rates`).

References
----------
.. [1] Carlini, N. et al. (2022). Membership Inference Attacks From First Principles. IEEE S&P.
.. [2] Wilson, E. B. (1927). Probable inference, the law of succession, and statistical
       inference. JASA 22, 209-212.
.. [3] McNemar, Q. (1947). Note on the sampling error of the difference between correlated
       proportions or percentages. Psychometrika 12, 153-157.
"""

from __future__ import annotations

import math

import numpy as np

from .._validation import check_rng

__all__ = ["roc_auc", "roc_curve", "tpr_at_fpr", "low_fpr_rates", "bootstrap_interval", "auc_interval",
           "tpr_interval", "wilson_interval", "paired_difference_interval", "mcnemar_p", "decide", "LEVEL",
           "N_BOOTSTRAP", "LOW_FPRS"]

#: Two-sided confidence level of every interval.
LEVEL = 0.95
#: Bootstrap replicates of every bootstrap interval.
N_BOOTSTRAP = 1000
#: The false-positive rates membership figures are reported at, where the non-members resolve them.
LOW_FPRS = (0.001, 0.01)


def _scores(values, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64).ravel()
    if arr.size == 0:
        raise ValueError(f"{name} is empty: an attack figure needs at least one member and one non-member")
    if np.isnan(arr).any():
        raise ValueError(f"{name} holds NaN scores; an attack must score every candidate")
    return arr


def roc_auc(member_scores, non_member_scores) -> float:
    """Area under the ROC curve: the chance that a random member outscores a random non-member
    (Mann-Whitney U, ties counted half). Below 0.5 means the scores point the wrong way.

    Examples
    --------
    >>> roc_auc([3, 4], [1, 2]), roc_auc([1, 2], [1, 2]), roc_auc([0], [1])
    (1.0, 0.5, 0.0)
    """
    from scipy.stats import rankdata

    a, b = _scores(member_scores, "member_scores"), _scores(non_member_scores, "non_member_scores")
    ranks = rankdata(np.concatenate([a, b]))
    return float((ranks[: a.size].sum() - a.size * (a.size + 1) / 2) / (a.size * b.size))


def roc_curve(member_scores, non_member_scores) -> tuple[np.ndarray, np.ndarray]:
    """The ROC curve ``(fpr, tpr)``, flagging ``score >= t`` for every distinct ``t`` (from the
    highest), starting at (0, 0) and ending at (1, 1): for log-log plots of low-FPR behaviour."""
    a, b = _scores(member_scores, "member_scores"), _scores(non_member_scores, "non_member_scores")
    thresholds = np.unique(np.concatenate([a, b]))[::-1]
    tpr = 1.0 - np.searchsorted(np.sort(a), thresholds, side="left") / a.size  # share with score >= t
    fpr = 1.0 - np.searchsorted(np.sort(b), thresholds, side="left") / b.size
    return np.r_[0.0, fpr], np.r_[0.0, tpr]


def tpr_at_fpr(member_scores, non_member_scores, fpr: float = 0.01) -> float:
    """Share of members flagged by the lowest threshold that flags at most ``fpr`` of non-members.

    With ``n`` non-members, at most ``floor(fpr * n)`` may be flagged: with fewer than
    ``1 / fpr`` of them that is none, so the rate is the TPR at FPR 0 (see
    :func:`low_fpr_rates` for reporting it honestly).

    Examples
    --------
    >>> tpr_at_fpr([5, 6, 1], [1, 2, 3, 4], fpr=0.25)
    0.6666666666666666
    """
    a, b = _scores(member_scores, "member_scores"), _scores(non_member_scores, "non_member_scores")
    if not 0 <= fpr <= 1:
        raise ValueError(f"fpr must be in [0, 1], got {fpr!r}")
    allowed = int(math.floor(fpr * b.size + 1e-9))
    if allowed >= b.size:
        return 1.0
    bar = np.sort(b)[::-1][allowed]  # the threshold must lie above the (allowed+1)-th highest non-member
    return float((a > bar).mean())


def low_fpr_rates(member_scores, non_member_scores, fprs=LOW_FPRS) -> dict:
    """TPR at each of ``fprs`` where the non-members resolve it, else at the smallest rate they do.

    Returns
    -------
    dict
        ``n_members``, ``n_non_members``, ``min_resolvable_fpr`` (1 / non-members) and, per
        requested rate ``f`` (as ``"0.1%"``): ``{"fpr": the rate used, "tpr": ..., "resolved":
        whether f itself was resolvable}``.
    """
    a, b = _scores(member_scores, "member_scores"), _scores(non_member_scores, "non_member_scores")
    smallest = 1.0 / b.size
    out = {"n_members": int(a.size), "n_non_members": int(b.size), "min_resolvable_fpr": smallest}
    for f in fprs:
        resolved = f >= smallest - 1e-12
        used = f if resolved else smallest
        out[f"{100 * f:g}%"] = {"fpr": used, "tpr": tpr_at_fpr(a, b, used), "resolved": bool(resolved)}
    return out


def _percentile_interval(replicates: np.ndarray, level: float) -> tuple[float, float]:
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(replicates, [tail, 100 - tail])
    return float(low), float(high)


def bootstrap_interval(statistic, groups, *, n_boot: int = N_BOOTSTRAP, level: float = LEVEL, seed=None):
    """Percentile bootstrap interval of the mean over groups of ``statistic(members, non_members)``.

    Parameters
    ----------
    statistic : callable (member_scores, non_member_scores) -> float
    groups : sequence of (member_scores, non_member_scores)
        One pair per independent split; each replicate resamples members and non-members
        with replacement *within* every group and averages the statistic over groups.
    n_boot, level, seed
        Replicates, confidence level, and the resampling seed.

    Returns
    -------
    (float, float)
    """
    rng = check_rng(seed)
    groups = [(_scores(a, "member_scores"), _scores(b, "non_member_scores")) for a, b in groups]
    replicates = np.empty(n_boot)
    for r in range(n_boot):  # a resample per replicate: O(n log n) each, n_boot of them
        replicates[r] = np.mean([statistic(a[rng.integers(0, a.size, a.size)], b[rng.integers(0, b.size, b.size)])
                                 for a, b in groups])
    return _percentile_interval(replicates, level)


def auc_interval(groups, *, n_boot: int = N_BOOTSTRAP, level: float = LEVEL, seed=None) -> tuple[float, float]:
    """Bootstrap interval of the mean ROC AUC over ``groups`` (see :func:`bootstrap_interval`)."""
    return bootstrap_interval(roc_auc, groups, n_boot=n_boot, level=level, seed=seed)


def tpr_interval(groups, fpr: float, *, n_boot: int = N_BOOTSTRAP, level: float = LEVEL,
                 seed=None) -> tuple[float, float]:
    """Bootstrap interval of the mean TPR at ``fpr`` over ``groups`` (see :func:`bootstrap_interval`)."""
    return bootstrap_interval(lambda a, b: tpr_at_fpr(a, b, fpr), groups, n_boot=n_boot, level=level, seed=seed)


def wilson_interval(successes: int, n: int, *, level: float = LEVEL) -> tuple[float, float]:
    """Wilson score interval of a proportion ``successes / n`` [2]_ (sensible at 0 and n too).

    Examples
    --------
    >>> [round(v, 4) for v in wilson_interval(0, 60)]
    [0.0, 0.0602]
    """
    from scipy.stats import norm

    if n <= 0:
        raise ValueError(f"a proportion needs n >= 1 trials, got n={n}")
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be in [0, n={n}], got {successes}")
    z = float(norm.ppf(1 - (1 - level) / 2))
    phat = successes / n
    centre = (phat + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(phat * (1 - phat) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    low, high = max(0.0, centre - half), min(1.0, centre + half)
    return (0.0 if successes == 0 else low), (1.0 if successes == n else high)  # exact at the ends


def paired_difference_interval(baseline, other, *, n_boot: int = N_BOOTSTRAP, level: float = LEVEL,
                               seed=None) -> tuple[float, tuple[float, float]]:
    """Mean of ``baseline - other`` over paired items, with a paired bootstrap interval.

    Parameters
    ----------
    baseline, other : sequence of arrays, one pair per group (split)
        Per test image, the baseline's and the other condition's correctness (0/1, or its
        mean over training repeats), on the same images in the same order. Each replicate
        resamples the images of every group (the same indices for both) and averages the
        groups' mean differences.

    Returns
    -------
    (difference, (low, high))
        The cost is positive when the other condition is less accurate.
    """
    rng = check_rng(seed)
    pairs = [(np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()) for a, b in zip(baseline, other)]
    for a, b in pairs:
        if a.shape != b.shape or a.size == 0:
            raise ValueError(f"paired correctness arrays must be non-empty and of one length, got {a.size} and "
                             f"{b.size}")
    diffs = [a - b for a, b in pairs]
    point = float(np.mean([d.mean() for d in diffs]))
    replicates = np.empty(n_boot)
    for r in range(n_boot):
        replicates[r] = np.mean([d[rng.integers(0, d.size, d.size)].mean() for d in diffs])
    return point, _percentile_interval(replicates, level)


def mcnemar_p(baseline_correct, other_correct) -> float:
    """Exact two-sided McNemar test [3]_ of two classifiers on the same items (0/1 correctness):
    the binomial test of the discordant pairs. 1.0 when there are none."""
    from scipy.stats import binomtest

    a = np.asarray(baseline_correct).astype(bool).ravel()
    b = np.asarray(other_correct).astype(bool).ravel()
    if a.shape != b.shape:
        raise ValueError(f"paired correctness arrays differ in length: {a.size} and {b.size}")
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    if only_a + only_b == 0:
        return 1.0
    return float(binomtest(only_a, only_a + only_b, 0.5).pvalue)


def decide(interval, target: float, *, below: bool = True, strict: bool = True) -> str:
    """Whether a figure with this interval meets ``target``: ``"met"``, ``"not met"`` or ``"undecided"``.

    Parameters
    ----------
    interval : (low, high)
    target : float
    below : bool, default=True
        The target asks for a figure below it (an attack rate, a cost); False: above it.
    strict : bool, default=True
        ``<`` (``>``) rather than ``<=`` (``>=``).

    Examples
    --------
    >>> decide((0.52, 0.58), 0.6), decide((0.55, 0.65), 0.6), decide((0.61, 0.7), 0.6)
    ('met', 'undecided', 'not met')
    >>> decide((2.0, 5.0), 5.0, strict=False), decide((4.0, 6.0), 5.0, strict=False)
    ('met', 'undecided')
    """
    low, high = float(interval[0]), float(interval[1])
    if not below:
        low, high, target = -high, -low, -target
    meets = (lambda v: v < target) if strict else (lambda v: v <= target)
    if meets(high):
        return "met"
    if not meets(low):
        return "not met"
    return "undecided"
