"""Model-level membership statistics (pbmlib.privacy.lira): confidences, the inclusion design, LiRA, the
loss baseline and low-FPR reporting with bootstrap intervals. Synthetic scores only (numpy)."""

import numpy as np
import pytest

from pbmlib.privacy.lira import (draw_inclusion, lira_offline, lira_online, logit_confidence, loss_threshold_scores,
                                 membership_report)
from pbmlib.privacy.statistics import LOW_FPRS, roc_auc, roc_curve, tpr_at_fpr


def simulate(*, n=4000, n_shadows=16, shift=1.0, noise=0.5, seed=0, learned=True):
    """Confidences where membership adds ``shift`` to a candidate's own difficulty (sd 2 across
    candidates): what a loss threshold cannot separate and a per-candidate test can. With
    ``learned=False`` the target's shift falls on another random half than its members."""
    rng = np.random.default_rng(seed)
    difficulty = rng.normal(0.0, 2.0, n)
    inclusion = draw_inclusion(n_shadows, n, seed=seed)
    shadow = difficulty + shift * inclusion + rng.normal(0.0, noise, (n_shadows, n))
    members = np.zeros(n, bool)
    members[rng.permutation(n)[: n // 2]] = True
    shifted = members if learned else rng.permutation(members)
    target = difficulty + shift * shifted + rng.normal(0.0, noise, n)
    return target, shadow, inclusion, members


# --- logit-scaled confidence ---------------------------------------------------------------------------

def test_logit_confidence_is_log_odds_of_the_true_label():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 2, (3, 50, 10))
    labels = rng.integers(0, 10, 50)
    p = np.exp(logits) / np.exp(logits).sum(axis=-1, keepdims=True)
    own = p[:, np.arange(50), labels]
    phi = logit_confidence(logits, labels)
    assert phi.shape == (3, 50) and phi.dtype == np.float64
    np.testing.assert_allclose(phi, np.log(own / (1 - own)), rtol=1e-10, atol=1e-10)
    log_probabilities = logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))
    np.testing.assert_allclose(logit_confidence(log_probabilities, labels), phi, atol=1e-10)


def test_confident_predictions_stay_apart_where_float32_losses_tie_at_zero():
    margins = np.array([18.0, 24.0, 30.0, 60.0])
    logits = np.stack([margins, np.zeros(4), np.zeros(4)], axis=1).astype(np.float32)
    labels = np.zeros(4, dtype=np.int64)
    z = logits.astype(np.float32)
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p = p / p.sum(axis=1, keepdims=True)
    float32_loss = -np.log(p[:, 0])
    assert np.unique(float32_loss).size == 1 and float32_loss[0] == 0  # what a loss threshold would see
    phi = logit_confidence(logits, labels)
    np.testing.assert_allclose(phi, margins - np.log(2), rtol=1e-12)
    assert np.unique(loss_threshold_scores(phi)).size == 4


@pytest.mark.parametrize("logits, labels, match", [
    (np.zeros((4, 1)), np.zeros(4, int), "C >= 2"),
    (np.zeros((4, 3)), np.zeros(5, int), r"labels must have shape \(4,\)"),
    (np.zeros((4, 3)), np.array([0, 1, 2, 3]), r"class numbers in \[0, 3\)"),
    (np.zeros((4, 3)), np.array([0.0, 1, 2, 0]), "class numbers"),
    (np.array([[0.0, np.inf], [0, 0]]), np.array([0, 1]), "NaN or infinite"),
])
def test_logit_confidence_refuses_bad_input(logits, labels, match):
    with pytest.raises(ValueError, match=match):
        logit_confidence(logits, labels)


# --- inclusion design ----------------------------------------------------------------------------------

@pytest.mark.parametrize("n_models, n", [(16, 5000), (17, 101), (1, 10)])
def test_draw_inclusion_gives_halves_and_balanced_candidates(n_models, n):
    inclusion = draw_inclusion(n_models, n, seed=4)
    assert inclusion.shape == (n_models, n) and inclusion.dtype == bool
    assert (inclusion.sum(axis=1) == n // 2).all()  # every model trains on exactly half
    paired = inclusion[: n_models // 2 * 2].sum(axis=0)
    assert paired.max() == n_models // 2  # in as many models of the pairs as out of them ...
    assert (n_models // 2 - paired).sum() == n % 2 * (n_models // 2)  # ... but the odd one out of each pair


def test_draw_inclusion_is_seeded_and_its_first_models_do_not_depend_on_the_count():
    a = draw_inclusion(8, 300, seed=7)
    np.testing.assert_array_equal(a, draw_inclusion(8, 300, seed=7))
    np.testing.assert_array_equal(a[:4], draw_inclusion(5, 300, seed=7)[:4])
    assert not np.array_equal(a, draw_inclusion(8, 300, seed=8))
    assert (a[0] != a[2]).any()  # pairs draw independent permutations


@pytest.mark.parametrize("kwargs, match", [
    (dict(n_models=0, n_candidates=10), "n_models must be an int >= 1"),
    (dict(n_models=True, n_candidates=10), "n_models"),
    (dict(n_models=4, n_candidates=1), "n_candidates must be an int >= 2"),
])
def test_draw_inclusion_refuses_bad_counts(kwargs, match):
    with pytest.raises(ValueError, match=match):
        draw_inclusion(**kwargs, seed=0)


# --- LiRA and the loss baseline -------------------------------------------------------------------------

def test_lira_recovers_membership_that_a_loss_threshold_cannot_see():
    target, shadow, inclusion, members = simulate(shift=1.5)
    online = membership_report(*split(lira_online(target, shadow, inclusion), members), seed=0)
    offline = membership_report(*split(lira_offline(target, shadow, inclusion), members), seed=0)
    loss = membership_report(*split(loss_threshold_scores(target), members), seed=0)
    assert online["auc_low"] > 0.95 and offline["auc_low"] > 0.95
    assert loss["auc_high"] < 0.75  # the candidates' own difficulty hides the shift from a global threshold
    for report in (online, offline):
        low = report["low_fpr"][0]
        assert low["resolved"] and low["fpr"] == 0.001
        assert low["tpr_low"] > loss["low_fpr"][0]["tpr_high"]  # clearly above the baseline at 0.1 % FPR


def test_lira_per_candidate_variance_and_queries():
    target, shadow, inclusion, members = simulate(n=2000, n_shadows=32)
    fixed = lira_online(target, shadow, inclusion)
    free = lira_online(target, shadow, inclusion, fixed_variance=False)
    assert roc_auc(*split(free, members)) > 0.85 and roc_auc(*split(fixed, members)) > 0.9
    # two identical queries score as one; a (N, Q) target with (S, N, Q) shadows is accepted
    twice = lira_online(np.stack([target, target], 1), np.stack([shadow, shadow], 2), inclusion)
    np.testing.assert_allclose(twice, fixed, rtol=1e-12)
    np.testing.assert_allclose(lira_offline(target[:, None], shadow[:, :, None], inclusion),
                               lira_offline(target, shadow, inclusion), rtol=1e-12)


def test_lira_is_at_chance_when_members_and_non_members_are_swapped_at_random():
    target, shadow, inclusion, members = simulate()
    swapped = np.random.default_rng(1).permutation(members)
    for scores in (lira_online(target, shadow, inclusion), lira_offline(target, shadow, inclusion)):
        report = membership_report(*split(scores, swapped), seed=2)
        assert abs(report["auc"] - 0.5) < 0.03
        assert report["auc_low"] < 0.5 < report["auc_high"]
        assert report["low_fpr"][1]["tpr_low"] <= 0.01 <= report["low_fpr"][1]["tpr_high"]


def test_lira_is_at_chance_on_a_target_that_learned_nothing_of_its_members():
    target, shadow, inclusion, members = simulate(learned=False)
    for scores in (lira_online(target, shadow, inclusion), lira_offline(target, shadow, inclusion)):
        report = membership_report(*split(scores, members), seed=3)
        assert report["auc_low"] < 0.5 < report["auc_high"]


@pytest.mark.parametrize("args, kwargs, match", [
    ((np.zeros(5), np.zeros((4, 6)), np.zeros((4, 6), bool)), {}, r"shadow scores must have shape \(S, 5\)"),
    ((np.zeros(5), np.zeros((4, 5)), np.zeros((3, 5), bool)), {}, r"inclusion must have shape \(4, 5\)"),
    ((np.zeros(5), np.zeros((4, 5)), np.full((4, 5), 2)), {}, "bool"),
    ((np.array([0, 0, 0, 0, np.nan]), np.zeros((4, 5)), np.zeros((4, 5), bool)), {}, "finite"),
    ((np.zeros(5), np.zeros((4, 5)), np.zeros((4, 5), bool)), {}, "candidate 0 has 0 'in' shadow"),
    ((np.zeros(4), np.zeros((2, 4)), draw_inclusion(2, 4, seed=0)), {"fixed_variance": False}, "at least 2"),
    ((np.zeros(4), np.zeros((2, 4)), draw_inclusion(2, 4, seed=0)), {"fixed_variance": 1}, "True or False"),
])
def test_lira_refuses_inconsistent_input(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        lira_online(*args, **kwargs)


def test_lira_offline_needs_only_out_shadows():
    inclusion = np.zeros((4, 6), bool)
    inclusion[:2, 0] = True
    scores = lira_offline(np.arange(6.0), np.random.default_rng(0).normal(size=(4, 6)), inclusion)
    assert scores.shape == (6,) and np.isfinite(scores).all()


def test_loss_threshold_scores_are_minus_the_cross_entropy():
    phi = np.array([-3.0, 0.0, 2.5, 40.0])
    np.testing.assert_allclose(loss_threshold_scores(phi), -np.log1p(np.exp(-phi)), rtol=1e-12)
    assert loss_threshold_scores(phi)[-1] < 0  # log(p) itself would round to 0 at phi = 40
    np.testing.assert_array_equal(loss_threshold_scores(np.stack([phi, -phi], 1)), loss_threshold_scores(phi))


# --- ROC, low FPR and intervals -------------------------------------------------------------------------

def split(scores, members):
    return scores[members], scores[~members]


def test_roc_and_report_agree_with_the_direct_definitions_on_tied_scores():
    rng = np.random.default_rng(3)
    for _ in range(50):
        a = rng.integers(0, 6, rng.integers(1, 30)).astype(float)
        b = rng.integers(0, 6, rng.integers(1, 30)).astype(float)
        report = membership_report(a, b, fprs=(0.05, 0.3), n_bootstrap=0)
        assert report["auc"] == pytest.approx(roc_auc(a, b), abs=1e-12)
        for row in report["low_fpr"]:
            assert row["tpr"] == pytest.approx(tpr_at_fpr(a, b, row["fpr"]), abs=1e-12)
            assert np.isnan(row["tpr_low"]) and np.isnan(row["tpr_high"])  # no resamples, no interval
        fpr, tpr = roc_curve(a, b)  # the arrays of a log-log ROC plot agree with the report's AUC
        assert np.trapezoid(tpr, fpr) == pytest.approx(report["auc"], abs=1e-12)


def test_tpr_at_an_fpr_the_non_members_cannot_resolve_is_reported_at_the_smallest_one():
    rng = np.random.default_rng(0)
    members, non_members = rng.normal(1, 1, 300), rng.normal(0, 1, 200)
    report = membership_report(members, non_members, seed=0)
    assert report["n_members"] == 300 and report["n_non_members"] == 200
    low, one = report["low_fpr"]
    assert (low["fpr_target"], low["resolved"], low["fpr"]) == (0.001, False, 1 / 200)  # 0.2 false positives
    assert (one["fpr_target"], one["resolved"], one["fpr"]) == (0.01, True, 0.01)  # 2 false positives
    # "at 1 / 200": flag the members above the second-highest non-member, allowing exactly one false positive
    top_two = np.sort(non_members)[-2:]
    assert low["tpr"] == pytest.approx((members > top_two[0]).mean())
    assert low["tpr_low"] <= low["tpr"] <= low["tpr_high"]


def test_bootstrap_is_seeded_and_covers_the_estimate():
    rng = np.random.default_rng(0)
    members, non_members = rng.normal(0.8, 1, 1000), rng.normal(0, 1, 1000)
    a = membership_report(members, non_members, n_bootstrap=300, seed=11)
    assert a == membership_report(members, non_members, n_bootstrap=300, seed=11)  # same seed, same figures
    b = membership_report(members, non_members, n_bootstrap=300, seed=12)
    assert (a["auc_low"], a["auc_high"]) != (b["auc_low"], b["auc_high"])
    assert a["auc_low"] < a["auc"] < a["auc_high"] and a["auc_high"] - a["auc_low"] < 0.06
    assert a["n_bootstrap"] == 300 and a["level"] == 0.95
    assert [row["fpr_target"] for row in a["low_fpr"]] == list(LOW_FPRS)
    narrow = membership_report(members, non_members, n_bootstrap=300, seed=11, level=0.5)
    assert a["auc_low"] < narrow["auc_low"] < narrow["auc_high"] < a["auc_high"]


@pytest.mark.parametrize("kwargs, match", [
    (dict(fprs=(0.0,)), r"false-positive rates in \(0, 1\)"),
    (dict(fprs="x"), "false-positive rates"),
    (dict(n_bootstrap=-1), "n_bootstrap must be an int >= 0"),
    (dict(level=1.0), r"level must be a coverage in \(0, 1\)"),
    (dict(seed=-1), "seed"),
])
def test_membership_report_refuses_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        membership_report([1.0, 2.0], [0.0, 1.0], **kwargs)


@pytest.mark.parametrize("a, b, match", [
    ([], [0.0], "member_scores is empty"),
    ([1.0], [[0.0]], "non_member_scores must be a 1-d array"),
    ([np.nan], [0.0], "member_scores holds NaN"),
])
def test_scores_are_checked(a, b, match):
    with pytest.raises(ValueError, match=match):
        membership_report(a, b)
