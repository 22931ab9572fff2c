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


def test_both_readings_against_hand_computed_values():
    # printed Eq. 8: 1 / (N_b!)^N_C; Section VI-A's text: 1 / (N_C!)^N_b
    assert class_log10_probability(2, 3, reading="printed") == pytest.approx(-math.log10(36))  # (3!)^2
    assert class_log10_probability(2, 3, reading="text") == pytest.approx(-math.log10(8))  # (2!)^3
    assert class_log10_probability(3, 2, reading="text") == pytest.approx(-math.log10(36))  # (3!)^2
    assert class_log10_probability(1, 16, reading="text") == 0.0  # one image: nothing to arrange
    assert class_log10_probability(0, 16, reading="text") == 0.0
    # the example: one class of 100 faces, N_b = 25
    printed = -100 * math.fsum(math.log10(k) for k in range(1, 26))
    text = -25 * math.fsum(math.log10(k) for k in range(1, 101))
    assert class_log10_probability(100, 25) == pytest.approx(printed) == pytest.approx(-2519.06, abs=0.01)
    assert class_log10_probability(100, 25, reading="text") == pytest.approx(text)
    assert text == pytest.approx(-3949.25, abs=0.01)
    # the readings swap the roles of N_C and N_b
    assert class_log10_probability(7, 40, reading="text") == pytest.approx(class_log10_probability(40, 7))


def test_text_reading_sums_over_classes():
    total, per = restoration_log10_probability({"face": 100, "non-face": 100}, 25, per_class=True, reading="text")
    assert per["face"] == per["non-face"] == pytest.approx(-3949.25, abs=0.01)
    assert total == pytest.approx(-7898.50, abs=0.01)
    assert restoration_log10_probability([100, 100], 25) == pytest.approx(-5038.13, abs=0.01)  # printed
    with pytest.raises(ValueError, match="reading must be one of"):
        restoration_log10_probability([3], 4, reading="eq8")
    with pytest.raises(ValueError, match="reading must be one of"):
        class_log10_probability(3, 4, reading=None)
