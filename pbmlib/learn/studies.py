"""Studies that combine mixing, privacy measures and training: what the CLI and notebooks run."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..data.augmentation import Augmentation
from ..data.datasets import ImageSet
from ..pbm.mixing import mix_blocks, n_blocks
from ..privacy.similarity import ssim_floor_scores, ssim_scores
from ..pbm.restoration import restoration_log10_probability
from .training import train_and_evaluate, train_test_split

__all__ = ["split_dataset", "utility_study", "scheme_study"]


def split_dataset(data: ImageSet, *, test_fraction: float = 0.3, seed=0) -> tuple[tuple, tuple]:
    """Stratified split of ``data`` into ``(train_images, train_labels)`` and ``(test_images, test_labels)``.

    Only the training part is ever protected; the test part stays clean (see
    :func:`pbmlib.training.train_test_split`).
    """
    train_idx, test_idx = train_test_split(data.labels, test_fraction=test_fraction, seed=seed)
    return (data.images[train_idx], data.labels[train_idx]), (data.images[test_idx], data.labels[test_idx])


def utility_study(
    data: ImageSet,
    *,
    blocks: list[tuple[int, int]],
    model_name: str = "small_cnn",
    n_donors: int = 10,
    rounds: int = 1,
    p: float = 0.5,
    augment: Augmentation | None = None,
    test_fraction: float = 0.3,
    epochs: int = 10,
    batch_size: int = 32,
    optimizer: str = "adam",
    learning_rate: float | None = None,
    repeats: int = 3,
    seed: int = 0,
    verbose: int = 0,
) -> tuple[pd.DataFrame, dict]:
    """Clean-test accuracy of a model trained on original vs mixed data, per block size.

    The set is split once (stratified, ``seed``); only the training part is mixed,
    once per block size (with ``seed``). Every condition trains the same model with
    the same settings and seeds; repeats vary the training seed, not the mixing.

    Parameters
    ----------
    data : ImageSet
    blocks : list of (int, int)
        Block sizes (height, width) to mix with; each gives a "mixed" row (and a
        "mixed+augment" row when ``augment`` is given).
    model_name, epochs, batch_size, optimizer, learning_rate, repeats, seed, verbose
        As in :func:`pbmlib.training.train_and_evaluate`.
    n_donors, rounds, p
        As in :func:`pbmlib.mix_blocks`.

    Returns
    -------
    table : DataFrame
        One row per condition: ``condition``, ``block``, ``n_blocks``,
        ``test_accuracy_mean``, ``test_accuracy_std``, ``test_loss_mean``,
        ``accuracy_drop`` (points below training on the originals), ``ssim_mean``
        (mixed vs original training images), ``ssim_floor_mean`` and
        ``log10_restoration_probability``.
    records : dict
        The full training record of every condition, keyed by its row label.
    """
    (x_train, y_train), test = split_dataset(data, test_fraction=test_fraction, seed=seed)
    fit = dict(epochs=epochs, batch_size=batch_size, optimizer=optimizer, learning_rate=learning_rate,
               repeats=repeats, seed=seed, verbose=verbose)
    floor = float(ssim_floor_scores(x_train, y_train, seed=seed).mean())
    class_sizes = dict(zip(*np.unique(y_train, return_counts=True)))

    rows, records = [], {}

    def add(label, block, images, aug, ssim):
        rec = train_and_evaluate(model_name, (images, y_train), test, augment=aug, **fit)
        records[label] = rec
        nb = n_blocks(x_train.shape[1:], block) if block else None
        rows.append({
            "condition": label.split(" ")[0], "block": f"{block[0]}x{block[1]}" if block else "",
            "n_blocks": nb, "test_accuracy_mean": rec["test_accuracy_mean"],
            "test_accuracy_std": rec["test_accuracy_std"], "test_loss_mean": rec["test_loss_mean"],
            "ssim_mean": ssim, "ssim_floor_mean": floor,
            "log10_restoration_probability": restoration_log10_probability(class_sizes, nb) if nb else 0.0,
        })

    add("original", None, x_train, None, 1.0)
    for block in blocks:
        mixed = mix_blocks(x_train, y_train, block=block, n_donors=n_donors, rounds=rounds, p=p, seed=seed)
        ssim = float(ssim_scores(x_train, mixed).mean())
        add(f"mixed {block[0]}x{block[1]}", block, mixed, None, ssim)
        if augment is not None:
            add(f"mixed+augment {block[0]}x{block[1]}", block, mixed, augment, ssim)
    table = pd.DataFrame(rows).astype({"n_blocks": "Int64"})
    table["accuracy_drop"] = 100 * (table["test_accuracy_mean"].iloc[0] - table["test_accuracy_mean"])
    return table, records


def scheme_study(
    data: ImageSet,
    schemes: list,
    *,
    attack_block: tuple[int, int] = (5, 5),
    matchers=("pixel", "hog", "invariant", "mosaic", "blocks", "face"),
    train: bool = True,
    model_name: str = "small_cnn",
    epochs: int = 10,
    batch_size: int = 32,
    repeats: int = 2,
    test_fraction: float = 0.3,
    inversion: bool = False,
    seed: int = 0,
) -> tuple[pd.DataFrame, dict]:
    """Privacy scorecard and clean-test utility of several protections on one split.

    Parameters
    ----------
    data : ImageSet
    schemes : list of :class:`pbmlib.schemes.Scheme`
        Put ``get_scheme("none")`` first for the unprotected reference row.
    attack_block : (int, int)
        Block size of the block-level attacks for schemes without a block of their own.
    matchers : tuple of str
        Re-identification matchers; ``"face"`` is skipped when not installed.
    train : bool
        Also train ``model_name`` on every protected set (test set transformed only
        where the scheme requires it) and report its accuracy.
    inversion : bool
        Also run the learned-inversion attack, with the held-out images as the
        attacker's public data: protected with the scheme's own key where it has one
        (a chosen-plaintext attacker), otherwise with the attacker's own randomness.

    Returns
    -------
    table : DataFrame
        One row per scheme: ``scheme``, ``setting`` (its label), every scorecard
        number, ``log10_restoration_probability`` (PBM rows), and with ``train``
        ``test_accuracy`` and ``test_accuracy_std``.
    records : dict of setting -> training record
    """
    from ..privacy.scorecard import privacy_scorecard

    (x, y), (x_test, y_test) = split_dataset(data, test_fraction=test_fraction, seed=seed)
    class_sizes = dict(zip(*np.unique(y, return_counts=True)))
    rows, records = [], {}
    for scheme in schemes:
        protected = scheme.protect(x, y, seed=seed)
        own_block = getattr(scheme, "block", None)
        block = own_block if isinstance(own_block, tuple) else tuple(attack_block)
        row = {"scheme": scheme.name, "setting": scheme.label}
        inverted = None
        if inversion:
            from .inversion import learned_inversion

            public_protected = (scheme.protect_test(x_test, seed=seed) if scheme.transforms_test
                                else scheme.protect(x_test, y_test, seed=seed + 1))
            inverted = learned_inversion(public_protected, x_test, protected, seed=seed)
        row.update(privacy_scorecard(x, protected, y, block=block, non_members=x_test, matchers=matchers,
                                     inverted=inverted, seed=seed))
        if scheme.name == "pbm":
            row["log10_restoration_probability"] = restoration_log10_probability(
                class_sizes, n_blocks(x.shape[1:], scheme.block))
        if train:
            test = (scheme.protect_test(x_test, seed=seed), y_test)
            rec = train_and_evaluate(model_name, (protected, y), test, epochs=epochs, batch_size=batch_size,
                                     repeats=repeats, seed=seed, adaptation=scheme.adaptation)
            records[scheme.label] = rec
            row["test_accuracy"], row["test_accuracy_std"] = rec["test_accuracy_mean"], rec["test_accuracy_std"]
        rows.append(row)
    return pd.DataFrame(rows), records
