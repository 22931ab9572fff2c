"""Tables of a sweep's collected results, in the shape of the paper's tables.

Inputs are the per-kind tables of :func:`pbmlib.workbench.results.collect_results`;
nothing here guesses what a run measured from which columns happen to be present.
Rows are compared only within one run (a study's reference row is the baseline of that
study's other rows), and means are taken only over runs of the same data.
"""

from __future__ import annotations

import pandas as pd

__all__ = ["mixed_vs_reference", "augmentation_gain", "accuracy_overview", "ssim_by_blocks", "frontier"]


def mixed_vs_reference(study: pd.DataFrame) -> pd.DataFrame:
    """Trained block-mixing rows beside the accuracy their study reached on the originals.

    Parameters
    ----------
    study : DataFrame of study rows (``collect_results(...)["study"]``)

    Returns
    -------
    DataFrame
        The unaugmented, trained rows with ``n_blocks`` (one per run and setting), with
        ``test_accuracy_original``: the mean accuracy of the reference row of the same run.
        Runs without a reference row are left out.
    """
    trained = study[study["test_accuracy_mean"].notna()]
    reference = trained[trained["reference"].astype(bool)].set_index("run_id")["test_accuracy_mean"]
    mixed = trained[trained["n_blocks"].notna() & trained["augment"].isna()].copy()
    mixed = mixed[mixed["run_id"].isin(reference.index)]
    mixed["test_accuracy_original"] = mixed["run_id"].map(reference) if len(mixed) else []
    return mixed


def augmentation_gain(study: pd.DataFrame) -> pd.DataFrame:
    """Augmented rows beside the same setting unaugmented in the same run.

    Returns
    -------
    DataFrame with ``stage``, ``model_name``, ``setting`` (the unaugmented one),
    ``n_blocks``, ``augment``, ``test_accuracy_no_augment``, ``test_accuracy_augmented``
    and ``augmentation_gain`` (points).
    """
    columns = ["stage", "model_name", "setting", "n_blocks", "augment", "test_accuracy_no_augment",
               "test_accuracy_augmented", "augmentation_gain"]
    if study.empty or study["augment"].isna().all():
        return pd.DataFrame(columns=columns)
    augmented = study[study["augment"].notna()].copy()
    augmented["setting"] = augmented["setting"].str.replace(" +augment", "", regex=False)
    plain = study[study["augment"].isna()].set_index(["run_id", "setting"])["test_accuracy_mean"]
    augmented["test_accuracy_no_augment"] = [plain.get((r, s)) for r, s in
                                             zip(augmented["run_id"], augmented["setting"])]
    augmented["test_accuracy_augmented"] = augmented["test_accuracy_mean"]
    augmented["augmentation_gain"] = 100 * (augmented["test_accuracy_augmented"]
                                            - augmented["test_accuracy_no_augment"])
    return augmented[columns]


def accuracy_overview(training: pd.DataFrame) -> pd.DataFrame:
    """Per stage and model: accuracy trained on the originals, and the highest, lowest and
    mean accuracy over all mixed configurations (the paper's Tables II/III).

    Parameters
    ----------
    training : DataFrame from :func:`mixed_vs_reference`
    """
    grouped = training.groupby(["stage", "model_name"])
    table = pd.DataFrame({
        "original": grouped["test_accuracy_original"].mean(),
        "highest": grouped["test_accuracy_mean"].max(),
        "lowest": grouped["test_accuracy_mean"].min(),
        "mean": grouped["test_accuracy_mean"].mean(),
        "configurations": grouped["test_accuracy_mean"].size(),
    })
    table["highest_minus_lowest"] = table["highest"] - table["lowest"]
    table["original_minus_mean"] = table["original"] - table["mean"]
    return table


def ssim_by_blocks(mixing: pd.DataFrame) -> pd.DataFrame:
    """Mean SSIM (and its chance floor) per data set, set size and number of blocks N_b (the
    paper's Table IV). Runs on different data (another data set or subset size) are never
    averaged together."""
    columns = ["ssim_mean", "ssim_floor_mean", "ssim_excess", "log10_restoration_probability"]
    return mixing.groupby(["dataset", "n_images", "n_blocks"])[columns].mean().sort_index()


def frontier(study: pd.DataFrame) -> pd.DataFrame:
    """Study rows that ran the privacy scorecard and were trained: one point each on the
    privacy/utility frontier."""
    if study.empty or "reid_top1" not in study:
        return study.iloc[0:0]
    return study[study["reid_top1"].notna() & study["test_accuracy_mean"].notna()]
