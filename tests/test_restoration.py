import math

import numpy as np
import pytest

from pbmlib import class_log10_probability, restoration_log10_probability


def test_eq8_against_hand_computed_values():
    # 1 / (3!)^2 = 1/36
    assert class_log10_probability(2, 3) == pytest.approx(math.log10(1 / 36))
    # 1 / (4!)^3 = 1/13824
    assert class_log10_probability(3, 4) == pytest.approx(-math.log10(13824))
    # N_b = 1: one arrangement, probability 1
    assert class_log10_probability(50, 1) == 0.0
    assert class_log10_probability(0, 16) == 0.0


def test_eq9_is_sum_over_classes():
    total, per = restoration_log10_probability({"a": 2, "b": 3}, 4, per_class=True)
    assert per["a"] == pytest.approx(-2 * math.log10(24))
    assert per["b"] == pytest.approx(-3 * math.log10(24))
    assert total == pytest.approx(-5 * math.log10(24))
    total_seq, per_seq = restoration_log10_probability([2, 3], 4, per_class=True)
    assert total_seq == pytest.approx(total)
    np.testing.assert_allclose(per_seq, [per["a"], per["b"]])


def test_far_below_float_range_stays_finite():
    # 16! ** 2500 underflows any float; the log does not
    value = restoration_log10_probability([2500, 2500], 256)
    assert math.isfinite(value)
    assert value == pytest.approx(-5000 * math.lgamma(257) / math.log(10))
    assert 10.0**value == 0.0  # what a direct computation would have produced


def test_bad_inputs():
    with pytest.raises(ValueError, match="n_blocks"):
        restoration_log10_probability([3], 0)
    with pytest.raises(ValueError, match="non-negative ints"):
        restoration_log10_probability([-1], 4)
    with pytest.raises(ValueError, match="non-negative ints"):
        restoration_log10_probability([2.5], 4)
