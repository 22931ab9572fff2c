"""Statistics of attack figures: ROC, low-FPR rates, intervals, paired tests, target decisions."""

import itertools

import numpy as np
import pytest

from pbmlib.privacy.statistics import (auc_interval, bootstrap_interval, decide, low_fpr_rates, mcnemar_p,
                                       paired_difference_interval, roc_auc, roc_curve, tpr_at_fpr, wilson_interval)


def brute_auc(a, b):
    return np.mean([1.0 if x > y else 0.5 if x == y else 0.0 for x, y in itertools.product(a, b)])


def brute_tpr(a, b, fpr):
    best = 0.0
    for t in np.unique(np.concatenate([a, b, [np.inf]])):
        if (b >= t).mean() <= fpr:
            best = max(best, (a >= t).mean())
    return best


@pytest.mark.parametrize("seed", range(5))
def test_auc_and_tpr_match_their_definitions(seed):
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, 6, 40).astype(float), rng.integers(0, 5, 55).astype(float)  # many ties
    assert roc_auc(a, b) == pytest.approx(brute_auc(a, b))
    for fpr in (0.0, 0.01, 0.05, 0.2, 1.0):
        assert tpr_at_fpr(a, b, fpr) == pytest.approx(brute_tpr(a, b, fpr))
    fprs, tprs = roc_curve(a, b)
    assert fprs[0] == tprs[0] == 0 and fprs[-1] == tprs[-1] == 1 and np.all(np.diff(fprs) >= 0)
    assert np.trapezoid(tprs, fprs) == pytest.approx(roc_auc(a, b))


def test_low_fprs_are_reported_only_where_the_non_members_resolve_them():
    rng = np.random.default_rng(0)
    few = low_fpr_rates(rng.normal(1, 1, 200), rng.normal(0, 1, 60))
    assert few["n_non_members"] == 60 and few["min_resolvable_fpr"] == pytest.approx(1 / 60)
    assert few["0.1%"]["resolved"] is False and few["0.1%"]["fpr"] == pytest.approx(1 / 60)
    assert few["1%"]["resolved"] is False  # 1 % of 60 is less than one non-member
    many = low_fpr_rates(rng.normal(1, 1, 2000), rng.normal(0, 1, 2000))
    assert many["0.1%"]["resolved"] and many["0.1%"]["fpr"] == 0.001 and many["1%"]["fpr"] == 0.01


def test_intervals_cover_the_truth_and_shrink_with_data():
    rng = np.random.default_rng(1)
    small = [(rng.normal(0.5, 1, 30), rng.normal(0, 1, 30))]
    large = [(rng.normal(0.5, 1, 3000), rng.normal(0, 1, 3000))]
    truth = 0.6382  # P(N(0.5, 2) > 0) for a shift of 0.5 with unit variances: Phi(0.5 / sqrt 2)
    low, high = auc_interval(large, n_boot=300, seed=0)
    assert low < truth < high and high - low < 0.04
    low_s, high_s = auc_interval(small, n_boot=300, seed=0)
    assert high_s - low_s > 3 * (high - low)
    assert auc_interval(small, n_boot=200, seed=4) == auc_interval(small, n_boot=200, seed=4)  # seeded
    grouped = bootstrap_interval(lambda a, b: a.mean() - b.mean(), small * 3, n_boot=200, seed=0)
    assert grouped[0] < 0.5 < grouped[1] + 0.5


def test_wilson_interval():
    assert wilson_interval(0, 60)[0] == 0.0 and wilson_interval(60, 60)[1] == 1.0
    low, high = wilson_interval(30, 100)
    assert low == pytest.approx(0.2189, abs=1e-3) and high == pytest.approx(0.3958, abs=1e-3)
    with pytest.raises(ValueError, match="n >= 1"):
        wilson_interval(0, 0)


def test_paired_difference_and_mcnemar():
    rng = np.random.default_rng(2)
    base = rng.random(400) < 0.9
    worse = base & (rng.random(400) < 0.9)  # loses about 9 points, never gains
    drop, (low, high) = paired_difference_interval([base], [worse], n_boot=400, seed=0)
    assert 0.05 < drop < 0.13 and low > 0.0 and low < drop < high
    assert mcnemar_p(base, worse) < 1e-6 and mcnemar_p(base, base) == 1.0
    same, (low, high) = paired_difference_interval([base], [base], n_boot=100, seed=0)
    assert same == low == high == 0.0
    with pytest.raises(ValueError, match="one length"):
        paired_difference_interval([base], [base[:10]])


def test_decide():
    assert decide((0.50, 0.59), 0.6) == "met" and decide((0.55, 0.65), 0.6) == "undecided"
    assert decide((0.60, 0.70), 0.6) == "not met"  # strictly below is the target
    assert decide((1.0, 5.0), 5.0, strict=False) == "met" and decide((5.5, 9.0), 5.0, strict=False) == "not met"
    assert decide((0.7, 0.9), 0.6, below=False) == "met"
