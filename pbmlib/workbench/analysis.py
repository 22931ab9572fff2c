"""Tables of a sweep's collected results, in the shape of the paper's tables.

Inputs are the per-kind tables of :func:`pbmlib.workbench.results.collect_results`;
nothing here guesses what a run measured from which columns happen to be present.
Rows are compared only within one run (a study's reference row is the baseline of that
study's other rows), and means are taken only over runs of the same data.

The ``*_table`` functions format those tables for a reader (words for headers, mean ± sd
with its n, no snake_case), the ``reading_*`` functions write the one sentence that goes
under a figure, and :class:`Figures` numbers, saves, shows and captions the figures of
the analysis notebook (``notebooks/04_analysis``) and so of ``pbm report``.
"""

from __future__ import annotations

import pandas as pd

__all__ = ["mixed_vs_reference", "augmentation_gain", "accuracy_overview", "ssim_by_blocks", "frontier",
           "describe_data", "mean_sd", "overview_table", "ssim_table", "augmentation_table", "privacy_table", "strongest",
           "target_table", "with_interval", "markdown_table",
           "reading_vs_blocks", "reading_heatmap", "reading_ssim", "reading_mixing_time", "reading_frontier",
           "Figures", "say", "show_table"]


def mixed_vs_reference(study: pd.DataFrame) -> pd.DataFrame:
    """Trained block-mixing rows beside the accuracy their study reached on the originals.

    Parameters
    ----------
    study : DataFrame of study rows (``collect_results(...)["study"]``)

    Returns
    -------
    DataFrame
        The unaugmented, trained rows with ``n_blocks`` (one per run and setting), with
        ``test_accuracy_original``: the mean accuracy of the reference row of the same run,
        and beside it ``test_accuracy_original_std``, ``test_loss_original`` and
        ``test_loss_original_std``. Runs without a reference row are left out.
    """
    trained = study[study["test_accuracy_mean"].notna()]
    reference = trained[trained["reference"].astype(bool)].set_index("run_id")
    mixed = trained[trained["n_blocks"].notna() & trained["augment"].isna()].copy()
    mixed = mixed[mixed["run_id"].isin(reference.index)]
    for column, source in (("test_accuracy_original", "test_accuracy_mean"),
                           ("test_accuracy_original_std", "test_accuracy_std"),
                           ("test_loss_original", "test_loss_mean"), ("test_loss_original_std", "test_loss_std")):
        mixed[column] = mixed["run_id"].map(reference[source]) if len(mixed) else []
    return mixed


def augmentation_gain(study: pd.DataFrame) -> pd.DataFrame:
    """Augmented rows beside the same setting unaugmented in the same run.

    Returns
    -------
    DataFrame with ``stage``, ``model_name``, ``setting`` (the unaugmented one),
    ``n_blocks``, ``augment``, ``test_accuracy_no_augment``, ``test_accuracy_augmented``,
    ``augmentation_gain`` (points) and ``repeats``.
    """
    columns = ["stage", "model_name", "setting", "n_blocks", "augment", "test_accuracy_no_augment",
               "test_accuracy_augmented", "augmentation_gain", "repeats"]
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
    """Study rows that were audited and trained: one point each on the privacy/utility frontier."""
    if study.empty or "worst_reid_top1" not in study:
        return study.iloc[0:0]
    return study[study["worst_reid_top1"].notna() & study["test_accuracy_mean"].notna()]


# ------------------------------------------------------------------ for a reader: tables and readings


def _text(value) -> str:
    from pathlib import PurePath

    text = str(value)
    return PurePath(text).name or text if ("/" in text or "\\" in text) else text


def describe_data(frame: pd.DataFrame) -> str:
    """Which data and model the rows are about, for a title: 'small_cnn on faces' (a folder
    given as the data set shows as its last part, never its full path)."""
    parts = []
    for column, fmt in (("model_name", "{}"), ("dataset", "on {}")):
        if column in frame and frame[column].notna().any():
            values = sorted({_text(v) for v in frame[column].dropna()})
            parts.append(fmt.format(", ".join(values)))
    return " ".join(parts)


def mean_sd(mean, sd=None, *, digits: int = 3) -> str:
    """'0.912 ± 0.021', '0.912' without a spread, '' for a missing value."""
    if mean is None or pd.isna(mean):
        return ""
    if sd is None or pd.isna(sd):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {sd:.{digits}f}"


def with_interval(value, low=None, high=None, *, digits: int = 2) -> str:
    """'0.91 [0.88, 0.94]', '0.91' without an interval, '' for a missing value."""
    if value is None or pd.isna(value):
        return ""
    if low is None or high is None or pd.isna(low) or pd.isna(high):
        return f"{value:.{digits}f}"
    return f"{value:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def _repeats(frame: pd.DataFrame) -> str:
    if "repeats" not in frame or frame["repeats"].dropna().empty:
        return ""
    values = sorted({int(v) for v in frame["repeats"].dropna()})
    return f"{'-'.join(map(str, values if len(values) < 3 else (values[0], values[-1])))} repeats"


def overview_table(training: pd.DataFrame) -> pd.DataFrame:
    """:func:`accuracy_overview` for a reader: one row per stage and model, accuracies with
    their n and spread, differences in points."""
    if training.empty:
        return pd.DataFrame()
    rows = []
    for (stage, model), group in training.groupby(["stage", "model_name"]):
        originals = group.drop_duplicates("run_id")
        best, worst = group.loc[group["test_accuracy_mean"].idxmax()], group.loc[group["test_accuracy_mean"].idxmin()]
        mean = group["test_accuracy_mean"].mean()
        original = originals["test_accuracy_original"].mean()
        rows.append({
            "data": describe_data(group), "sweep stage": stage,
            "trained on the originals (mean ± sd)": mean_sd(original, originals["test_accuracy_original_std"].mean()),
            "highest, mixed": f"{best['test_accuracy_mean']:.3f} ({best['setting']})",
            "lowest, mixed": f"{worst['test_accuracy_mean']:.3f} ({worst['setting']})",
            "mean over mixed settings": f"{mean:.3f}",
            "originals − mean (points)": f"{100 * (original - mean):.1f}",
            "settings": len(group), "repeats each": _repeats(group).replace(" repeats", ""),
        })
    return pd.DataFrame(rows)


def ssim_table(mixing: pd.DataFrame) -> pd.DataFrame:
    """:func:`ssim_by_blocks` for a reader: SSIM ± sd over the images beside its floor, per data set,
    set size and N_b, with the block shapes that give that N_b."""
    if mixing.empty:
        return pd.DataFrame()
    rows = []
    for (name, size, nb), group in mixing.groupby(["dataset", "n_images", "n_blocks"]):
        shapes = sorted({f"{int(h)}x{int(w)}" for h, w in zip(group["block_height"], group["block_width"])}) \
            if "block_height" in group else []
        rows.append({
            "data": _text(name), "images": int(size), "N_b": int(nb), "blocks": ", ".join(shapes),
            "SSIM to the original (mean ± sd over images)": mean_sd(group["ssim_mean"].mean(),
                                                                      group["ssim_std"].mean()),
            "floor": f"{group['ssim_floor_mean'].mean():.3f}",
            "above the floor": f"{group['ssim_excess'].mean():+.3f}",
            "log10 P(restore)": f"{group['log10_restoration_probability'].mean():.1f}",
        })
    return pd.DataFrame(rows)


def augmentation_table(gains: pd.DataFrame) -> pd.DataFrame:
    """:func:`augmentation_gain` for a reader: accuracy without and with augmentation, gain in points."""
    if gains.empty:
        return pd.DataFrame()
    return pd.DataFrame({
        "sweep stage": gains["stage"].to_numpy(), "model": gains["model_name"].to_numpy(),
        "setting": gains["setting"].to_numpy(), "augmentation": gains["augment"].to_numpy(),
        "accuracy without": [f"{v:.3f}" if pd.notna(v) else "not run" for v in gains["test_accuracy_no_augment"]],
        "accuracy with": [f"{v:.3f}" for v in gains["test_accuracy_augmented"]],
        "gain (points)": [f"{v:+.1f}" if pd.notna(v) else "" for v in gains["augmentation_gain"]],
        "repeats each": [int(v) if pd.notna(v) else "" for v in gains["repeats"]] if "repeats" in gains else "",
    })


def _setting(name) -> str:
    return "originals (no protection)" if str(name) == "none" else str(name)


def strongest(points: pd.DataFrame, kind: str) -> str:
    """The column of the audit's calibrated worst case of ``kind`` ("reid" or "membership"):
    ``worst_reid_top1`` / ``worst_membership_auc`` (lower bounds on what an attacker achieves)."""
    return {"reid": "worst_reid_top1", "membership": "worst_membership_auc"}[kind]


def privacy_table(points: pd.DataFrame) -> pd.DataFrame:
    """:func:`frontier` rows for a reader: what the strongest attacks achieved beside their chance,
    and the utility with its spread and n."""
    if points.empty:
        return pd.DataFrame()
    table = pd.DataFrame({"sweep stage": points["stage"].to_numpy(),
                          "setting": [_setting(v) for v in points["setting"]]})
    table["SSIM (floor)"] = [f"{a:.3f} ({b:.3f})" for a, b in zip(points["ssim_mean"], points["ssim_floor_mean"])]
    reid, membership = strongest(points, "reid"), strongest(points, "membership")
    chance = points["reid_chance_top1"] if "reid_chance_top1" in points else pd.Series([None] * len(points))
    table["re-identification [95 % interval] (chance)"] = [
        f"{_interval(points, reid, i, 3)} ({c:.3f})" if pd.notna(c) else _interval(points, reid, i, 3)
        for i, c in enumerate(chance)]
    if "worst_reid_attack" in points:
        table["re-identified by"] = points["worst_reid_attack"].fillna("").to_numpy()
    if membership in points:
        table["membership AUC [95 % interval] (chance 0.5)"] = [_interval(points, membership, i, 3)
                                                               for i in range(len(points))]
        if "worst_membership_attack" in points:
            table["membership found by"] = points["worst_membership_attack"].fillna("").to_numpy()
    for kind, words in (("jpeg75", "JPEG-75 copy"), ("jpeg95", "JPEG-95 copy")):
        if f"{reid}_{kind}" in points and points[f"{reid}_{kind}"].notna().any():
            table[f"{words}: re-identification / membership AUC"] = [
                f"{_interval(points, f'{reid}_{kind}', i)} / {_interval(points, f'{membership}_{kind}', i)}"
                for i in range(len(points))]
    if "blocks_verbatim_fraction" in points:
        floor = points["blocks_verbatim_floor"] if "blocks_verbatim_floor" in points else [None] * len(points)
        table["blocks copied verbatim (floor)"] = [
            "" if pd.isna(v) else f"{v:.1%}" + ("" if f is None or pd.isna(f) else f" ({f:.1%})")
            for v, f in zip(points["blocks_verbatim_fraction"], floor)]
    table["log10 P(restore)"] = [f"{v:.1f}" if pd.notna(v) else "no count" for v in
                                 points["log10_restoration_probability"]]
    table[f"clean test accuracy (mean ± sd, {_repeats(points) or 'repeats'})"] = [
        mean_sd(m, s) for m, s in zip(points["test_accuracy_mean"], points["test_accuracy_std"])]
    if "accuracy_drop" in points:
        table["cost, points [95 %]"] = [_interval(points, "accuracy_drop", i, 1) for i in range(len(points))]
    return table


def _interval(points: pd.DataFrame, column: str, i: int, digits: int = 2) -> str:
    row = points.iloc[i]
    return with_interval(row.get(column), row.get(f"{column}_low"), row.get(f"{column}_high"), digits=digits)


def _chance(row) -> str:
    chance = row.get("reid_chance_top1")
    return "" if chance is None or pd.isna(chance) else f"{chance:.3f}; "


def target_table(points: pd.DataFrame) -> pd.DataFrame:
    """Study rows against the target, for a reader: the cost and both privacy axes with their 95 %
    intervals and the attacks that reached them, and the decision per target (met / not met /
    undecided, decided only by the intervals)."""
    if points.empty:
        return pd.DataFrame()
    rows = []
    for i, (_, row) in enumerate(points.iterrows()):
        out = {"setting": _setting(row["setting"]),
               "accuracy (mean ± sd)": mean_sd(row.get("test_accuracy_mean"), row.get("test_accuracy_std")),
               "cost, points [95 %]": _interval(points, "accuracy_drop", i, 1),
               "re-identification [95 %] (chance; attack)": f"{_interval(points, 'worst_reid_top1', i)} "
                                                            f"({_chance(row)}{row.get('worst_reid_attack') or '-'})",
               "membership AUC, release [95 %] (attack)": f"{_interval(points, 'worst_membership_auc', i)} "
                                                          f"({row.get('worst_membership_attack') or '-'})"}
        if pd.notna(row.get("model_membership_auc")):
            low_fpr = row.get("model_membership_low_fpr")
            out[f"membership AUC, model [95 %] ({row.get('model_membership_attack')})"] = \
                _interval(points, "model_membership_auc", i)
            out["its TPR at low FPR"] = (f"{_interval(points, 'model_membership_tpr_at_low_fpr', i, 3)} at "
                                         f"{100 * low_fpr:.2g} %") if pd.notna(low_fpr) else ""
        out["target: membership / re-id / cost"] = " / ".join(
            str(row.get(k) or "-") for k in ("membership_target", "reid_target", "cost_target"))
        out["meets the target"] = row.get("meets_target") or "-"
        rows.append(out)
    return pd.DataFrame(rows)


def markdown_table(table: pd.DataFrame) -> str:
    """A table as GitHub markdown (for the README), cells as they are."""
    lines = ["| " + " | ".join(map(str, table.columns)) + " |", "| " + " | ".join("---" for _ in table.columns) + " |"]
    lines += ["| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |" for row in table.to_numpy()]
    return "\n".join(lines)


def reading_vs_blocks(frame: pd.DataFrame, metric: str = "test_accuracy_mean") -> str:
    """One sentence on accuracy (or loss) against N_b: where it is lowest, against the originals."""
    higher_is_better = "accuracy" in metric
    original = "test_accuracy_original" if higher_is_better else "test_loss_original"
    worst = frame.loc[frame[metric].idxmin() if higher_is_better else frame[metric].idxmax()]
    best = frame.loc[frame[metric].idxmax() if higher_is_better else frame[metric].idxmin()]
    what = "accuracy" if higher_is_better else "loss"
    sentence = (f"The {'lowest' if higher_is_better else 'highest'} {what} trained on mixed images is "
                f"{worst[metric]:.3f} ({worst['setting']}, N_b = {int(worst['n_blocks'])}), the "
                f"{'highest' if higher_is_better else 'lowest'} {best[metric]:.3f} ({best['setting']})")
    if original in frame and frame[original].notna().any():
        sentence += f", against {frame[original].mean():.3f} trained on the originals"
    return sentence + "."


def reading_heatmap(frame: pd.DataFrame, value: str = "test_accuracy_mean") -> str:
    """One sentence on a block-size heatmap: the best and the worst block shape."""
    best, worst = frame.loc[frame[value].idxmax()], frame.loc[frame[value].idxmin()]
    return (f"Best {int(best['block_height'])}x{int(best['block_width'])} blocks ({best[value]:.3f}), worst "
            f"{int(worst['block_height'])}x{int(worst['block_width'])} ({worst[value]:.3f}); empty cells were "
            f"not run.")


def reading_ssim(mixing: pd.DataFrame) -> str:
    """One sentence on SSIM against N_b: from the fewest to the most blocks, beside the floor."""
    parts = []
    for (name, size), group in mixing.groupby(["dataset", "n_images"]):
        per = group.groupby("n_blocks")["ssim_mean"].mean()
        parts.append(f"on {_text(name)} ({int(size)} images) SSIM falls from {per.iloc[0]:.2f} at N_b = "
                     f"{int(per.index[0])} to {per.iloc[-1]:.2f} at N_b = {int(per.index[-1])}, floor "
                     f"{group['ssim_floor_mean'].mean():.2f}" if len(per) > 1 else
                     f"on {_text(name)} ({int(size)} images) SSIM is {per.iloc[0]:.2f} at N_b = {int(per.index[0])}, "
                     f"floor {group['ssim_floor_mean'].mean():.2f}")
    text = "; ".join(parts)
    return text[0].upper() + text[1:] + ". Only the part above the floor is information the mixing kept."


def reading_mixing_time(frame: pd.DataFrame) -> str:
    """One sentence on mixing time: the largest set's time at the extreme N_b."""
    largest = frame[frame["n_images"] == frame["n_images"].max()].sort_values("n_blocks")
    return (f"Mixing {int(largest['n_images'].iloc[0])} images takes {largest['mix_seconds'].iloc[0]:.3f} s at "
            f"N_b = {int(largest['n_blocks'].iloc[0])} and {largest['mix_seconds'].iloc[-1]:.3f} s at N_b = "
            f"{int(largest['n_blocks'].iloc[-1])}; time grows with the number of images.")


def reading_frontier(points: pd.DataFrame, x: str = "worst_reid_top1") -> str:
    """One sentence on the frontier: the most private protected setting (the lowest re-identification
    rate, or the membership AUC closest to its chance of 0.5) and what it costs."""
    protected = points[~points["reference"].astype(bool)].dropna(subset=[x])
    if protected.empty:
        return "Only the originals were scored."
    membership = "membership_auc" in x
    best = protected.loc[(protected[x] - 0.5).abs().idxmin() if membership else protected[x].idxmin()]
    reference = points[points["reference"].astype(bool)]
    cost = (f", against {reference['test_accuracy_mean'].iloc[0]:.3f} trained on the originals"
            if len(reference) else "")
    if membership:
        what = f"membership AUC {best[x]:.3f}, the closest to its chance of 0.5"
    else:
        chance = (f" (chance {points['reid_chance_top1'].iloc[0]:.3f})" if "reid_chance_top1" in points else "")
        what = f"re-identification top-1 rate {best[x]:.3f}{chance}, the lowest"
    return (f"The most private setting here is {_setting(best['setting'])}: {what}; its clean test accuracy is "
            f"{best['test_accuracy_mean']:.3f}{cost}.")


class Figures:
    """Number, save, show and caption the figures of an analysis notebook.

    Parameters
    ----------
    folder : Path
        Where the PNG files go (the analysis' ``output_dir``).

    Attributes
    ----------
    names : list of str
        The files written, in order.
    """

    def __init__(self, folder):
        from pathlib import Path

        self.folder, self.names = Path(folder), []

    def show(self, fig, name: str, caption: str, reading: str) -> None:
        """Write ``fig`` as ``name`` (PNG, 120 dpi), display it, then its caption and one sentence
        of reading under it."""
        import matplotlib.pyplot as plt
        from IPython.display import Markdown, display

        fig.savefig(self.folder / name, dpi=120)
        self.names.append(name)
        display(fig)
        plt.close(fig)
        display(Markdown(f"**Figure {len(self.names)}.** {caption} *{reading}*"))


def say(text: str) -> None:
    """Show a sentence in the notebook (and so in the report), e.g. why a section is empty."""
    from IPython.display import Markdown, display

    display(Markdown(f"*{text}*"))


def show_table(table: pd.DataFrame, caption: str) -> None:
    """Show a formatted table (from one of the ``*_table`` functions) with its caption above it."""
    from IPython.display import HTML, display

    display(HTML(f"<p><b>{_escape(caption)}</b></p>" + table.to_html(index=False, border=0, classes="pbm-table")))


def _escape(text: str) -> str:
    import html

    return html.escape(str(text))
