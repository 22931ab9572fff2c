"""Stratified splits and subsamples (pbmlib.data.split)."""

import numpy as np
import pytest

from pbmlib.data.split import stratified_split, stratified_subsample


def test_split_is_stratified_and_disjoint():
    labels = np.array(["a"] * 10 + ["b"] * 20)
    train, test = stratified_split(labels, test_fraction=0.3, seed=1)
    assert np.intersect1d(train, test).size == 0 and train.size + test.size == 30
    assert (labels[test] == "a").sum() == 3 and (labels[test] == "b").sum() == 6
    with pytest.raises(ValueError, match="at least 2"):
        stratified_split(["a", "b", "b"], seed=0)


def test_subsample_keeps_every_class_share():
    labels = np.array(["a"] * 100 + ["b"] * 300)
    keep = stratified_subsample(labels, 40, seed=0)
    assert (labels[keep] == "a").sum() == 10 and (labels[keep] == "b").sum() == 30
    assert np.array_equal(keep, np.sort(keep)) and stratified_subsample(labels, 1000).size == 400
