"""Stratified train/test splits: only the training part is ever protected, the test part stays clean."""

from __future__ import annotations

import numpy as np

from .._validation import check_labels, check_probability, check_rng
from .datasets import ImageSet

__all__ = ["stratified_split", "split_dataset", "stratified_subsample"]


def stratified_split(labels, *, test_fraction: float = 0.3, seed=None) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a stratified split.

    Every class contributes ``round(test_fraction * size)`` images to the test set (at
    least one, and at least one stays for training).

    Parameters
    ----------
    labels : sequence of length N
    test_fraction : float in [0, 1]
    seed : None, int or numpy.random.Generator

    Returns
    -------
    train_index, test_index : ndarray of int64, sorted
    """
    check_probability(test_fraction, name="test_fraction")
    rng = check_rng(seed)
    codes, classes = check_labels(labels, len(labels))
    test = []
    for code in range(len(classes)):  # one permutation per class
        members = rng.permutation(np.flatnonzero(codes == code))
        if members.size < 2:
            raise ValueError(f"class {classes[code]!r} has {members.size} image(s); a split needs at least 2")
        k = min(max(1, round(test_fraction * members.size)), members.size - 1)
        test.append(members[:k])
    test = np.sort(np.concatenate(test))
    train = np.setdiff1d(np.arange(codes.size), test)
    return train, test


def split_dataset(data: ImageSet, *, test_fraction: float = 0.3, seed=None) -> tuple[ImageSet, ImageSet]:
    """Stratified split of ``data`` into a training and a clean test :class:`ImageSet` (see
    :func:`stratified_split`)."""
    train, test = stratified_split(data.labels, test_fraction=test_fraction, seed=seed)
    return data.subset(train), data.subset(test)


def stratified_subsample(labels, n: int, *, seed=None) -> np.ndarray:
    """Sorted indices of about ``n`` images keeping every class's share (at least one per class).

    Parameters
    ----------
    labels : sequence of length N
    n : int
        Images wanted; ``n >= N`` returns every index.
    seed : None, int or numpy.random.Generator

    Returns
    -------
    ndarray of int64, sorted
    """
    rng = check_rng(seed)
    codes, classes = check_labels(labels, len(labels))
    if n >= codes.size:
        return np.arange(codes.size)
    keep = []
    for code in range(len(classes)):  # one permutation per class
        members = np.flatnonzero(codes == code)
        keep.append(rng.permutation(members)[:max(1, round(n * members.size / codes.size))])
    return np.sort(np.concatenate(keep))
