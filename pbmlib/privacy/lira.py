"""Membership inference on a trained *model*: LiRA with shadow models, the loss-threshold baseline,
and low-FPR reporting with bootstrap intervals (numpy tier: never imports Keras).

The question is whether a candidate image was in the target model's training set. Every
attack here reads one number per (model, candidate, query): the **logit-scaled confidence**
of the true label, ``phi = log(p_y / (1 - p_y))`` (:func:`logit_confidence`), computed from
logits or log-probabilities so that confident predictions stay apart (a float32 loss is 0.0
for every p_y above 1 - 6e-8, so the most memorised members would all tie).

- :func:`draw_inclusion`: which candidates each shadow model trains on (random halves; every
  candidate in half of the shadows).
- :func:`lira_online`, :func:`lira_offline`: the likelihood-ratio attack of [1]_ from the
  shadow models' confidences and the inclusion mask; :func:`loss_threshold_scores`: the
  global-threshold attack of [2]_ (the weak baseline).
- :func:`membership_report`: AUC and TPR at low FPR (0.1 % and 1 %), reported at an FPR only
  where the non-member count resolves it, with seeded bootstrap intervals (the figures and
  intervals of :mod:`pbmlib.privacy.statistics`, whose ``roc_curve`` gives the log-log ROC).

A candidate's membership *score* is "higher means more likely a member" throughout.

References
----------
.. [1] Carlini, Chien, Nasr, Song, Terzis, Tramèr (2022). Membership Inference Attacks From
       First Principles. IEEE S&P, 1897-1914. arXiv:2112.03570
.. [2] Yeom, Giacomelli, Fredrikson, Jha (2018). Privacy Risk in Machine Learning: Analyzing
       the Connection to Overfitting. IEEE CSF, 268-282. arXiv:1709.01604
"""

from __future__ import annotations

import numbers

import numpy as np

from .._validation import check_rng, spawn_seeds
from .statistics import LEVEL, LOW_FPRS, N_BOOTSTRAP, bootstrap_interval, low_fpr_rates, roc_auc, tpr_at_fpr

__all__ = [
    "logit_confidence",
    "draw_inclusion",
    "lira_online",
    "lira_offline",
    "loss_threshold_scores",
    "membership_report",
]

# Floor of a fitted standard deviation (the reference code adds 1e-30): keeps a candidate whose
# shadow confidences are all equal from dividing by zero.
_MIN_STD = 1e-30


def logit_confidence(logits, labels) -> np.ndarray:
    """Logit-scaled confidence of the true label, ``phi = log(p_y) - log(1 - p_y)``, computed stably.

    ``phi = z_y - logsumexp_{j != y} z_j`` for logits ``z``; the same formula holds for
    log-probabilities (``log p_j = z_j - logsumexp z``, the normaliser cancels), so either
    can be passed. Never computed from probabilities: ``1 - p_y`` rounds to 0 in float32
    once ``p_y > 1 - 6e-8``.

    Parameters
    ----------
    logits : array of shape (..., N, C), float
        Pre-softmax outputs (or log-probabilities) of one or several models (leading axes)
        on N candidates; C >= 2 classes. Computed in float64.
    labels : array of int of shape (N,)
        True class of every candidate, in [0, C).

    Returns
    -------
    ndarray of shape (..., N), float64
        Large and positive for confidently right predictions, negative for wrong ones.

    Examples
    --------
    >>> phi = logit_confidence(np.array([[2.0, 0.0], [0.0, 30.0]]), np.array([0, 1]))
    >>> phi.shape, np.round(phi, 6)
    ((2,), array([ 2., 30.]))
    """
    z = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels)
    if z.ndim < 2 or z.shape[-1] < 2:
        raise ValueError(f"logits must have shape (..., N, C) with C >= 2 classes, got shape {z.shape}")
    if labels.shape != z.shape[-2:-1]:
        raise ValueError(f"labels must have shape ({z.shape[-2]},), one per candidate, got {labels.shape}")
    if labels.size and (not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0
                        or labels.max() >= z.shape[-1]):
        raise ValueError(f"labels must be class numbers in [0, {z.shape[-1]}), got {labels!r:.80}")
    if not np.isfinite(z).all():
        raise ValueError("logits hold NaN or infinite values; pass the model's finite pre-softmax outputs "
                         "(or log-probabilities clipped away from -inf)")
    index = np.broadcast_to(labels[:, None], z.shape[:-1] + (1,))
    own = np.take_along_axis(z, index, axis=-1)[..., 0]
    others = z.copy()
    np.put_along_axis(others, index, -np.inf, axis=-1)
    top = others.max(axis=-1, keepdims=True)
    rest = top[..., 0] + np.log(np.exp(others - top).sum(axis=-1))
    return own - rest


def draw_inclusion(n_models: int, n_candidates: int, *, seed=None) -> np.ndarray:
    """Which candidates each shadow model trains on: random halves, every candidate in half the models.

    Models ``2j`` and ``2j + 1`` split one random permutation of the candidates into two
    halves of ``n_candidates // 2`` (an odd candidate out is in neither); an unpaired last
    model takes a random half of its own. So every model trains on exactly
    ``n_candidates // 2`` candidates and, with an even ``n_models``, every candidate is in
    exactly ``n_models / 2`` models and out of as many: online LiRA gets the same number of
    "in" and "out" shadows for every candidate.

    Parameters
    ----------
    n_models : int >= 1
    n_candidates : int >= 2
    seed : None, int, numpy.random.SeedSequence or numpy.random.Generator
        Pair ``j`` draws from child ``j`` of ``SeedSequence.spawn``. Pass an int for
        reproducible output; the first rows do not depend on ``n_models``.

    Returns
    -------
    ndarray of shape (n_models, n_candidates), bool
        ``inclusion[k, i]``: candidate i is in model k's training set.

    Examples
    --------
    >>> inclusion = draw_inclusion(4, 10, seed=0)
    >>> inclusion.shape, inclusion.sum(axis=1).tolist(), inclusion.sum(axis=0).tolist()
    ((4, 10), [5, 5, 5, 5], [2, 2, 2, 2, 2, 2, 2, 2, 2, 2])
    """
    n_models = _check_count(n_models, name="n_models", low=1)
    n_candidates = _check_count(n_candidates, name="n_candidates", low=2)
    half = n_candidates // 2
    n_pairs = -(-n_models // 2)
    inclusion = np.zeros((n_pairs * 2, n_candidates), dtype=bool)
    for j, child in enumerate(spawn_seeds(seed, n_pairs)):  # one permutation per pair of models
        order = np.random.default_rng(child).permutation(n_candidates)
        inclusion[2 * j, order[:half]] = True
        inclusion[2 * j + 1, order[half:2 * half]] = True
    return inclusion[:n_models]


def _check_count(value, *, name: str, low: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    return int(value)


def _check_scores(target, shadow, inclusion):
    """(N, Q) target, (S, N, Q) shadow float64 arrays and an (S, N) bool mask, checked against each other."""
    t = np.asarray(target, dtype=np.float64)
    s = np.asarray(shadow, dtype=np.float64)
    if t.ndim == 1:
        t = t[:, None]
    if s.ndim == 2:
        s = s[:, :, None]
    if t.ndim != 2 or t.shape[0] == 0:
        raise ValueError(f"target scores must have shape (N,) or (N, Q) (candidates, queries), got {np.shape(target)}")
    if s.ndim != 3 or s.shape[1:] != t.shape:
        raise ValueError(f"shadow scores must have shape (S, {t.shape[0]}) or (S, {t.shape[0]}, {t.shape[1]}) "
                         f"(shadow models, candidates, queries) to match the target's {np.shape(target)}, "
                         f"got {np.shape(shadow)}")
    if not (np.isfinite(t).all() and np.isfinite(s).all()):
        raise ValueError("target and shadow scores must be finite; compute them with logit_confidence from "
                         "logits, not from probabilities that round to 0 or 1")
    inc = np.asarray(inclusion)
    if inc.shape != s.shape[:2]:
        raise ValueError(f"inclusion must have shape {s.shape[:2]} (shadow models, candidates), got {inc.shape}")
    if inc.dtype != bool:
        if not np.isin(inc, (0, 1)).all():
            raise ValueError("inclusion must be a bool (or 0/1) mask: inclusion[k, i] is True when candidate i "
                             "is in shadow model k's training set")
        inc = inc.astype(bool)
    return t, s, inc


def _fit_gaussians(s: np.ndarray, mask: np.ndarray, *, fixed_variance: bool, side: str):
    """Median and standard deviation of the shadow scores selected by ``mask``, per candidate and query.

    ``s`` (S, N, Q), ``mask`` (S, N). Returns ``mu`` (N, Q) and ``sd`` (N, Q) or, with
    ``fixed_variance``, (Q,): the pooled within-candidate standard deviation (every candidate's
    scores about their own mean), one per query.
    """
    counts = mask.sum(axis=0)
    need = 1 if fixed_variance else 2
    if counts.min() < need:
        worst = int(np.argmin(counts))
        raise ValueError(f"candidate {worst} has {int(counts[worst])} '{side}' shadow model(s); this fit needs at "
                         f"least {need} per candidate (use draw_inclusion, more shadow models, or "
                         f"fixed_variance=True)")
    x = np.where(mask[:, :, None], s, np.nan)
    mu = np.nanmedian(x, axis=0)
    mean = np.nanmean(x, axis=0)
    if fixed_variance:
        dof = int(counts.sum()) - counts.size
        if dof < 1:
            raise ValueError(f"the pooled '{side}' variance needs some candidate with two '{side}' shadow models; "
                             f"train more shadow models")
        sd = np.sqrt(np.nansum((x - mean) ** 2, axis=(0, 1)) / dof)
    else:
        sd = np.sqrt(np.nansum((x - mean) ** 2, axis=0) / (counts[:, None] - 1))
    return mu, np.maximum(sd, _MIN_STD)


def lira_online(target, shadow, inclusion, *, fixed_variance: bool = True) -> np.ndarray:
    """Online LiRA: the likelihood ratio of the target's confidence under the "in" and "out" shadows.

    For every candidate and query, the shadow models that trained on the candidate ("in")
    and those that did not ("out") give two Gaussians of the logit-scaled confidence; the
    score is the log-likelihood ratio ``log N(phi; mu_in, sd_in) - log N(phi; mu_out, sd_out)``,
    averaged over the queries (Algorithm 1 of [1]_, as its reference code does it).

    Parameters
    ----------
    target : array of shape (N,) or (N, Q), float
        The target model's logit-scaled confidences (:func:`logit_confidence`) on N
        candidates, optionally for Q queries (e.g. the image and its mirror).
    shadow : array of shape (S, N) or (S, N, Q), float
        The same for S shadow models.
    inclusion : array of shape (S, N), bool
        ``inclusion[k, i]``: candidate i was in shadow k's training set (:func:`draw_inclusion`).
    fixed_variance : bool, default=True
        One standard deviation per query and side, pooled over all candidates (each about
        its own mean), instead of one per candidate. [1]_ recommends it below 64 shadow
        models, where a per-candidate variance from a handful of models is noise. (The
        reference code pools the raw scores, between-candidate spread included; this
        pools the within-candidate spread, which is the variance the test needs.)

    Returns
    -------
    ndarray of shape (N,), float64
        Membership scores, higher means more likely a member.

    Notes
    -----
    Location is the median of each side, as in the reference code. A candidate needs at
    least one "in" and one "out" shadow (two each without ``fixed_variance``).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> inclusion = draw_inclusion(8, 100, seed=0)
    >>> shadow = rng.normal(size=(8, 100)) + 3 * inclusion
    >>> target = rng.normal(size=100) + 3 * (np.arange(100) < 50)
    >>> scores = lira_online(target, shadow, inclusion)
    >>> scores.shape, bool(scores[:50].mean() > scores[50:].mean())
    ((100,), True)
    """
    t, s, inc = _check_scores(target, shadow, inclusion)
    fixed_variance = _check_flag(fixed_variance)
    mu_in, sd_in = _fit_gaussians(s, inc, fixed_variance=fixed_variance, side="in")
    mu_out, sd_out = _fit_gaussians(s, ~inc, fixed_variance=fixed_variance, side="out")
    log_in = -0.5 * ((t - mu_in) / sd_in) ** 2 - np.log(sd_in)  # the 2*pi terms cancel in the ratio
    log_out = -0.5 * ((t - mu_out) / sd_out) ** 2 - np.log(sd_out)
    return (log_in - log_out).mean(axis=1)


def lira_offline(target, shadow, inclusion, *, fixed_variance: bool = True) -> np.ndarray:
    """Offline LiRA: how far above the "out" shadows the target's confidence lies.

    Only the shadow models that did *not* train on a candidate are used (they can be
    trained before the candidates are known). The one-sided test of [1]_: the score is
    ``(phi - mu_out) / sd_out``, averaged over the queries (Stouffer's combination), a
    monotone function of ``Pr[Z < phi]`` for ``Z ~ N(mu_out, sd_out**2)`` with one query.

    Parameters
    ----------
    target, shadow, inclusion, fixed_variance
        As in :func:`lira_online`; ``inclusion`` selects the "out" shadows.

    Returns
    -------
    ndarray of shape (N,), float64
        Membership scores, higher means more likely a member.

    Notes
    -----
    The reference code scores ``-log N(phi; mu_out, sd_out)``, which also flags candidates
    the target is unusually *unsure* of; the paper's test (coded here) flags only
    confidences above the "out" distribution.
    """
    t, s, inc = _check_scores(target, shadow, inclusion)
    fixed_variance = _check_flag(fixed_variance)
    mu_out, sd_out = _fit_gaussians(s, ~inc, fixed_variance=fixed_variance, side="out")
    return ((t - mu_out) / sd_out).mean(axis=1)


def _check_flag(value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"fixed_variance must be True or False, got {value!r}")
    return bool(value)


def loss_threshold_scores(target) -> np.ndarray:
    """The loss-threshold attack of [2]_: a lower loss on the candidate means "member".

    Parameters
    ----------
    target : array of shape (N,) or (N, Q), float
        The target model's logit-scaled confidences; only the first query (the image
        itself) is used.

    Returns
    -------
    ndarray of shape (N,), float64
        Minus the cross-entropy, ``log p_y = -log(1 + exp(-phi))``, computed without
        rounding (so it ranks exactly as ``phi`` does, ties only where the logits tie).
    """
    t = np.asarray(target, dtype=np.float64)
    if t.ndim not in (1, 2) or t.shape[0] == 0:
        raise ValueError(f"target scores must have shape (N,) or (N, Q), got {t.shape}")
    if not np.isfinite(t).all():
        raise ValueError("target scores must be finite; compute them with logit_confidence")
    phi = t if t.ndim == 1 else t[:, 0]
    return -np.logaddexp(0.0, -phi)


def membership_report(member_scores, non_member_scores, *, fprs=LOW_FPRS, n_bootstrap: int = N_BOOTSTRAP,
                      level: float = LEVEL, seed=None) -> dict:
    """AUC and TPR at low FPR of a membership score with bootstrap intervals, in one flat record.

    A composition of :mod:`pbmlib.privacy.statistics`: :func:`~pbmlib.privacy.statistics.roc_auc`,
    :func:`~pbmlib.privacy.statistics.low_fpr_rates` (a TPR "at FPR f" is reported at f only when
    the non-members resolve it, ``f * n_non_members >= 1``; otherwise at ``1 / n_non_members``
    with ``resolved: False``) and the percentile bootstrap of
    :func:`~pbmlib.privacy.statistics.bootstrap_interval` (members and non-members resampled
    apart). The ROC arrays for a log-log plot: :func:`pbmlib.privacy.statistics.roc_curve`.

    Parameters
    ----------
    member_scores : array of shape (M,), float
        Scores of candidates that were in the training set (higher means "member").
    non_member_scores : array of shape (N,), float
    fprs : sequence of float in (0, 1), default=(0.001, 0.01)
    n_bootstrap : int, default=1000
        Resamples per interval; 0 gives no intervals (NaN ends).
    level : float, default=0.95
    seed : None, int or numpy.random.Generator
        Seeds the resampling (one child stream per figure). Pass an int for reproducible
        intervals.

    Returns
    -------
    dict
        ``n_members``, ``n_non_members``, ``auc``, ``auc_low``, ``auc_high``, ``level``,
        ``n_bootstrap`` and ``low_fpr``: one dict per requested FPR with ``fpr_target``,
        ``fpr`` (the FPR the TPR is reported at), ``resolved``, ``tpr``, ``tpr_low``,
        ``tpr_high``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> report = membership_report(rng.normal(1, 1, 500), rng.normal(0, 1, 500), n_bootstrap=200, seed=0)
    >>> [(row["fpr_target"], row["fpr"], row["resolved"]) for row in report["low_fpr"]]
    [(0.001, 0.002, False), (0.01, 0.01, True)]
    >>> bool(report["auc_low"] < report["auc"] < report["auc_high"])
    True
    """
    a = np.asarray(member_scores, dtype=np.float64)
    b = np.asarray(non_member_scores, dtype=np.float64)
    for name, x in (("member_scores", a), ("non_member_scores", b)):
        if x.ndim != 1:
            raise ValueError(f"{name} must be a 1-d array of scores, got shape {x.shape}")
    try:
        fprs = [float(f) for f in fprs]
    except (TypeError, ValueError):
        raise ValueError(f"fprs must be a sequence of false-positive rates in (0, 1), got {fprs!r}") from None
    if not fprs or not all(0.0 < f < 1.0 for f in fprs):
        raise ValueError(f"fprs must be a non-empty sequence of false-positive rates in (0, 1), got {fprs!r}")
    n_bootstrap = _check_count(n_bootstrap, name="n_bootstrap", low=0)
    if isinstance(level, (bool, np.bool_)) or not isinstance(level, numbers.Real) or not 0.0 < level < 1.0:
        raise ValueError(f"level must be a coverage in (0, 1) such as 0.95, got {level!r}")
    children = [np.random.default_rng(c) for c in spawn_seeds(check_rng(seed), 1 + len(fprs))]
    rates = low_fpr_rates(a, b, fprs)
    nan = (float("nan"), float("nan"))

    def interval(statistic, rng):
        if n_bootstrap == 0:
            return nan
        return bootstrap_interval(statistic, [(a, b)], n_boot=n_bootstrap, level=level, seed=rng)

    auc_low, auc_high = interval(roc_auc, children[0])
    rows = []
    for f, rng in zip(fprs, children[1:]):
        rate = rates[f"{100 * f:g}%"]
        low, high = interval(lambda m, n, used=rate["fpr"]: tpr_at_fpr(m, n, used), rng)
        rows.append({"fpr_target": f, "fpr": rate["fpr"], "resolved": rate["resolved"], "tpr": rate["tpr"],
                     "tpr_low": low, "tpr_high": high})
    return {"n_members": rates["n_members"], "n_non_members": rates["n_non_members"], "auc": roc_auc(a, b),
            "auc_low": auc_low, "auc_high": auc_high, "level": float(level), "n_bootstrap": n_bootstrap,
            "low_fpr": rows}
