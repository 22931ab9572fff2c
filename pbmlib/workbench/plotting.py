"""Figures for the notebooks: image grids with the block grid drawn, curves and sweep views.

Every function draws with matplotlib/seaborn, labels its axes, and returns the Figure.
"""

from __future__ import annotations


import pandas as pd

__all__ = [
    "show_pairs",
    "plot_learning_curves",
    "plot_accuracy_comparison",
    "save_training_figures",
    "plot_metric_vs_blocks",
    "plot_ssim_vs_blocks",
    "plot_block_heatmap",
    "plot_mixing_time",
    "plot_privacy_utility",
    "show_schemes",
]


def _pyplot():
    import matplotlib.pyplot as plt

    return plt


def show_pairs(originals, mixed, *, block=None, labels=None, n: int = 6, title: str | None = None,
               rows: tuple[str, str] = ("original", "mixed")):
    """Originals (top row) above their mixed versions (bottom row), block grid drawn in red.

    Parameters
    ----------
    originals, mixed : ndarray of shape (N, H, W) or (N, H, W, C), uint8
    block : (int, int), optional
        Draw the block grid of this (height, width).
    labels : sequence, optional
        Shown as column titles.
    n : int
        Number of columns (first n images).
    rows : (str, str)
        Labels of the top and bottom rows.
    """
    plt = _pyplot()
    n = min(n, len(originals))
    fig, axes = plt.subplots(2, n, figsize=(1.6 * n, 3.4), squeeze=False)
    for j in range(n):
        for row, stack in enumerate((originals, mixed)):
            ax = axes[row, j]
            image = stack[j]
            ax.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=255, interpolation="nearest")
            if block is not None and row == 1:
                h, w = image.shape[:2]
                for y in range(block[0], h, block[0]):
                    ax.axhline(y - 0.5, color="red", lw=0.6, alpha=0.7)
                for x in range(block[1], w, block[1]):
                    ax.axvline(x - 0.5, color="red", lw=0.6, alpha=0.7)
            ax.set_xticks([])
            ax.set_yticks([])
        if labels is not None:
            axes[0, j].set_title(str(labels[j]), fontsize=8)
    axes[0, 0].set_ylabel(rows[0])
    axes[1, 0].set_ylabel(rows[1])
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_learning_curves(records: dict, *, metric: str = "loss"):
    """Training ``metric`` per epoch, mean over repeats, one line per condition.

    Parameters
    ----------
    records : dict of name -> record of :func:`pbmlib.learn.training.train_and_evaluate`
    metric : "loss" or "accuracy"
    """
    import seaborn as sns

    plt = _pyplot()
    rows = [{"condition": name, "epoch": h["epoch"], metric: h[metric], "repeat": r}
            for name, rec in records.items() for r, run in enumerate(rec["runs"]) for h in run["history"]]
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    sns.lineplot(pd.DataFrame(rows), x="epoch", y=metric, hue="condition", marker="o", ax=ax)
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"training {metric}")
    ax.set_title(f"training {metric} (mean over repeats, 95% CI)")
    fig.tight_layout()
    return fig


def plot_accuracy_comparison(records: dict):
    """Clean-test accuracy per condition: mean bar, one dot per repeat."""
    import seaborn as sns

    plt = _pyplot()
    rows = [{"condition": name, "test accuracy": run["test_accuracy"]}
            for name, rec in records.items() for run in rec["runs"]]
    frame = pd.DataFrame(rows)
    fig, ax = plt.subplots(figsize=(1.4 * len(records) + 2, 3.5))
    sns.barplot(frame, x="condition", y="test accuracy", errorbar=None, alpha=0.6, ax=ax)
    sns.stripplot(frame, x="condition", y="test accuracy", color="black", size=4, ax=ax)
    ax.set_ylim(0, 1)
    ax.set_xlabel("training set")
    ax.set_ylabel("clean test accuracy")
    fig.tight_layout()
    return fig


def save_training_figures(records: dict, output_dir) -> list[str]:
    """Write ``learning_curves.png`` (training loss per epoch) and ``accuracy.png`` (clean-test
    accuracy per condition) for the records of :func:`pbmlib.learn.studies.run_study`."""
    from pathlib import Path

    out = Path(output_dir)
    plot_learning_curves(records, metric="loss").savefig(out / "learning_curves.png", dpi=120)
    plot_accuracy_comparison(records).savefig(out / "accuracy.png", dpi=120)
    return ["learning_curves.png", "accuracy.png"]


#: Words for the columns that figures and tables show.
LABELS = {
    "model_name": "model", "test_accuracy_mean": "clean test accuracy", "test_loss_mean": "clean test loss",
    "test_accuracy": "clean test accuracy", "n_blocks": "number of blocks N_b", "ssim_mean": "mean SSIM",
    "reid_top1": "worst attack: re-identification top-1 rate", "membership_auc": "membership inference AUC",
    "mix_seconds": "mixing time (s)", "n_images": "images mixed N_IS",
}


def _block_ticks(ax, values) -> None:
    """Log-scale x axis with ticks at the N_b values that occur, written as integers."""
    values = sorted({int(v) for v in values})
    ax.set_xscale("log")
    ax.set_xticks(values)
    ax.set_xticklabels([str(v) for v in values])
    ax.minorticks_off()


def plot_metric_vs_blocks(frame: pd.DataFrame, y: str, *, hue: str | None = None, ylabel: str | None = None,
                          baseline: pd.Series | None = None):
    """``y`` against N_b, one line per ``hue`` (e.g. model), as the paper's Figs. 3/4.

    Error bars are the standard deviation over repeats (the ``<metric>_std`` column of
    study rows, e.g. ``test_accuracy_std`` beside ``test_accuracy_mean``) where it is
    there; ticks sit at the N_b values that were run. ``baseline`` draws one dashed
    line per hue value: the accuracy trained on the originals.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.8, 3.6))
    std = y.replace("_mean", "_std") if y.endswith("_mean") else None
    groups = frame.groupby(hue) if hue else [(None, frame)]
    for i, (name, group) in enumerate(groups):
        group = group.groupby("n_blocks", as_index=False).agg(
            value=(y, "mean"), error=(std, "mean") if std and std in group else (y, "std"))
        color = f"C{i}"
        ax.errorbar(group["n_blocks"], group["value"], yerr=group["error"].fillna(0), marker="o", capsize=3,
                    color=color, label=f"{name} (mixed)" if name is not None else "mixed")
        if baseline is not None and name in baseline:
            ax.axhline(baseline[name], ls="--", lw=1, color=color, label=f"{name} trained on originals")
    _block_ticks(ax, frame["n_blocks"])
    ax.set_xlabel(LABELS["n_blocks"])
    ax.set_ylabel(ylabel or LABELS.get(y, y))
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig


def plot_ssim_vs_blocks(mixing: pd.DataFrame):
    """SSIM of mixed vs original images against N_b, beside the chance floor (Table IV).

    One pair of lines per data set and set size (runs on different data are never averaged
    together); block shapes with the same N_b on the same data are averaged, no band drawn.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.8, 3.8))
    fig.subplots_adjust(right=0.62, bottom=0.14)
    for i, ((name, size), group) in enumerate(mixing.groupby(["dataset", "n_images"])):
        per = group.groupby("n_blocks")[["ssim_mean", "ssim_floor_mean"]].mean()
        label = f"{name}, {int(size)} images"
        ax.plot(per.index, per["ssim_mean"], marker="o", color=f"C{i}", label=f"{label}: mixed vs original")
        ax.plot(per.index, per["ssim_floor_mean"], ls=":", color=f"C{i}", label=f"{label}: floor (random same-label)")
    _block_ticks(ax, mixing["n_blocks"])
    ax.set_xlabel(LABELS["n_blocks"])
    ax.set_ylabel("mean SSIM")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    return fig


def plot_block_heatmap(frame: pd.DataFrame, value: str, *, title: str | None = None):
    """Mean ``value`` per block height (rows) and width (columns), as the paper's Figs. 5-7."""
    import seaborn as sns

    plt = _pyplot()
    table = frame.pivot_table(index="block_height", columns="block_width", values=value, aggfunc="mean")
    table.index, table.columns = table.index.astype(int), table.columns.astype(int)  # pixels, not 5.0
    fig, ax = plt.subplots(figsize=(1.0 * table.shape[1] + 2.5, 0.8 * table.shape[0] + 1.5))
    sns.heatmap(table, annot=True, fmt=".3f", cmap="viridis", ax=ax, cbar_kws={"label": LABELS.get(value, value)})
    ax.set_xlabel("block width W_b (pixels)")
    ax.set_ylabel("block height L_b (pixels)")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_mixing_time(frame: pd.DataFrame, *, title: str | None = None):
    """Mixing time against dataset size, one line per N_b (the paper's Figs. 14/15).

    ``frame`` holds ``n_images``, ``mix_seconds`` (each the median of repeated timings)
    and ``n_blocks`` (one dataset)."""
    import seaborn as sns

    plt = _pyplot()
    frame = frame.assign(N_b=[f"N_b = {int(v)}" for v in frame["n_blocks"]]).sort_values("n_blocks")
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    sns.lineplot(frame, x="n_images", y="mix_seconds", hue="N_b", marker="o", palette="colorblind", ax=ax)
    ax.set_xlabel(LABELS["n_images"])
    ax.set_ylabel(LABELS["mix_seconds"])
    ax.legend(title=None, fontsize=8)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_privacy_utility(table: pd.DataFrame, *, x: str = "reid_top1", y: str = "test_accuracy_mean"):
    """The privacy/utility frontier: utility against the worst attack's success, one point per setting.

    ``table`` holds study rows (:func:`pbmlib.learn.studies.run_study`): ``scheme``,
    ``setting``, ``reference``, ``x`` and ``y``; better protections sit further left. Each
    point is numbered, and the numbers are explained beside the axes (labels next to
    points overlap where many settings share a re-identification rate of 1.0).
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.6, 4.2))
    fig.subplots_adjust(left=0.09, right=0.6, bottom=0.12)
    schemes = list(dict.fromkeys(table["scheme"]))
    markers = "osD^vP*Xh"
    error = y.replace("_mean", "_std") if y.endswith("_mean") and y.replace("_mean", "_std") in table else None
    keys, placed = [], []
    y_span = max(float(table[y].max() - table[y].min()), 1e-9)
    for i, (_, row) in enumerate(table.reset_index(drop=True).iterrows(), start=1):
        k = schemes.index(row["scheme"])
        ax.errorbar(row[x], row[y], yerr=row[error] if error and pd.notna(row[error]) else None, capsize=3,
                    marker=markers[k % len(markers)], color=f"C{k}", ms=7, ls="none")
        # numbers of points that (nearly) coincide are stacked to the left instead of overprinted
        crowd = sum(abs(px - row[x]) < 0.04 and abs(py - row[y]) < 0.04 * y_span for px, py in placed)
        ax.annotate(str(i), (row[x], row[y]), fontsize=7, xytext=(-10 - 9 * crowd, 3), textcoords="offset points",
                    ha="right")
        placed.append((row[x], row[y]))
        keys.append(f"{i}: {'originals' if row['reference'] else row['setting']}")
    if "reid_chance_top1" in table:
        ax.axvline(table["reid_chance_top1"].iloc[0], ls=":", color="grey")
        ax.annotate("chance", (table["reid_chance_top1"].iloc[0], ax.get_ylim()[0]), fontsize=7, color="grey",
                    xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel(LABELS.get(x, x))
    ax.set_ylabel(LABELS.get(y, y))
    ax.set_xlim(-0.02, 1.05)
    fig.text(0.62, 0.95, "\n".join(keys), va="top", fontsize=7, family="monospace")
    return fig


def show_schemes(images_by_setting: dict, *, n: int = 4):
    """The first ``n`` images under each setting: one row per setting, labelled."""
    plt = _pyplot()
    rows = len(images_by_setting)
    fig, axes = plt.subplots(rows, n, figsize=(1.3 * n, 1.45 * rows), squeeze=False)
    for r, (name, stack) in enumerate(images_by_setting.items()):
        for j in range(n):
            ax = axes[r, j]
            image = stack[j]
            ax.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=255, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r, 0].set_title(name, loc="left", fontsize=7)
    fig.tight_layout()
    return fig
