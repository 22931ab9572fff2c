"""Tables of a sweep's collected results, in the shape of the paper's tables."""

from __future__ import annotations

import pandas as pd

__all__ = ["split_by_kind", "accuracy_overview", "ssim_by_blocks", "by_setting"]


def by_setting(table: pd.DataFrame, column: str) -> dict:
    """``{setting: value}`` of one column of a scheme table, leaving out missing values.

    Parameters
    ----------
    table : DataFrame with a ``setting`` column (see :func:`pbmlib.experiments.scheme_study`)
    column : str
        An absent column gives an empty dict.
    """
    if column not in table:
        return {}
    rows = table[["setting", column]].dropna()
    return {setting: (value.item() if hasattr(value, "item") else value)
            for setting, value in rows.itertuples(index=False)}


def split_by_kind(results: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Split :func:`pbmlib.sweeps.collect_results` rows by what they measured.

    Returns
    -------
    dict with keys ``"mixing"`` (rows with ``ssim_mean``), ``"training"`` (rows with
    ``test_accuracy_original``), ``"augmentation"`` (rows with ``augmentation_gain``);
    each a DataFrame, possibly empty.
    """
    def having(column):
        if column not in results:
            return results.iloc[0:0]
        return results[results[column].notna()].copy()

    return {"mixing": having("ssim_mean"), "training": having("test_accuracy_original"),
            "augmentation": having("augmentation_gain")}


def accuracy_overview(training: pd.DataFrame) -> pd.DataFrame:
    """Per model: accuracy trained on the originals, and the highest, lowest and mean
    accuracy over all mixed configurations (the paper's Tables II/III).

    Parameters
    ----------
    training : DataFrame with ``model_name``, ``test_accuracy``, ``test_accuracy_original``
    """
    grouped = training.groupby("model_name")
    table = pd.DataFrame({
        "original": grouped["test_accuracy_original"].mean(),
        "highest": grouped["test_accuracy"].max(),
        "lowest": grouped["test_accuracy"].min(),
        "mean": grouped["test_accuracy"].mean(),
        "configurations": grouped["test_accuracy"].size(),
    })
    table["highest_minus_lowest"] = table["highest"] - table["lowest"]
    table["original_minus_mean"] = table["original"] - table["mean"]
    return table


def ssim_by_blocks(mixing: pd.DataFrame) -> pd.DataFrame:
    """Mean SSIM (and its chance floor) per dataset and number of blocks N_b (the paper's Table IV)."""
    columns = [c for c in ("ssim_mean", "ssim_floor_mean", "ssim_excess", "log10_restoration_probability")
               if c in mixing]
    keys = [k for k in ("dataset", "n_blocks") if k in mixing]
    return mixing.groupby(keys)[columns].mean().sort_index()
