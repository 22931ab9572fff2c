"""Figures for the notebooks and the report: image grids with the block grid drawn, curves and sweep views.

Every function draws with matplotlib, labels its axes, titles the figure with what it
shows and on which data, and returns the Figure. Conventions, so that a figure can be
pasted into slides as it is:

- error bars and bands say what they are in the figure (``± 1 sd over 3 repeats``, or an
  interval given by ``<field>_low`` / ``<field>_high`` columns), never a confidence
  interval computed from two values;
- every reference line belongs to the quantity on its axis (re-identification chance
  1/N, membership-AUC chance 0.5, accuracy of guessing 1/k, the SSIM floor, the accuracy
  trained on the originals) and is drawn with its spread where it has one;
- layouts are constrained (no text is cut at the figure's edge) and legends use 9 pt.
"""

from __future__ import annotations

import numpy as np
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
    "plot_search_front",
    "show_schemes",
    "chance_level",
    "data_name",
    "LABELS",
]

#: Font size of legends and of the notes inside figures (points).
LEGEND_SIZE = 9

#: Words for the columns that figures and tables show.
LABELS = {
    "model_name": "model", "test_accuracy_mean": "clean test accuracy", "test_loss_mean": "clean test loss",
    "test_accuracy": "clean test accuracy", "n_blocks": "number of blocks N_b", "ssim_mean": "mean SSIM",
    "worst_reid_top1": "strongest attack on the release (a lower bound): re-identification",
    "worst_membership_auc": "strongest attack on the release (a lower bound): membership AUC",
    "model_membership_auc": "attack on the trained model: membership AUC",
    "mix_seconds": "mixing time (s)", "n_images": "images mixed N_IS",
}


def _pyplot():
    import matplotlib.pyplot as plt

    return plt


def _subplots(*args, **kwargs):
    """``plt.subplots`` with a constrained layout: titles, labels and outside legends stay in the figure."""
    return _pyplot().subplots(*args, layout="constrained", **kwargs)


def _repeats_note(n, splits=None) -> str:
    """'± 1 sd over 3 repeats', '± 1 sd over 10 trainings (5 splits x 2 repeats)', or 'one run' when there
    is no spread to show."""
    n = int(n) if n is not None and pd.notna(n) else 0
    k = int(splits) if splits is not None and pd.notna(splits) else 1
    if n * k < 2:
        return "one run, no spread"
    return f"± 1 sd over {n} repeats" if k == 1 else f"± 1 sd over {n * k} trainings ({k} splits x {n} repeats)"


#: How the bundled data sets are named in titles.
_DATA_TITLES = {"fashion_mnist": "Fashion-MNIST", "fashion_mnist_test": "Fashion-MNIST (test)", "mnist": "MNIST"}


def data_name(value) -> str:
    """A data set's name for a title: a bundled set by its usual name, a folder path by its last
    part, never in full.

    Examples
    --------
    >>> data_name("fashion_mnist"), data_name("/data/photos/"), data_name("faces")
    ('Fashion-MNIST', 'photos', 'faces')
    """
    from pathlib import PurePath

    text = str(value)
    if text in _DATA_TITLES:
        return _DATA_TITLES[text]
    return PurePath(text).name or text if ("/" in text or "\\" in text) else text


def _errors(frame: pd.DataFrame, column: str):
    """Error bars for ``column``: ``(lower, upper)`` distances from ``<column>_low``/``_high`` columns
    (an interval), else ``± <column>_std`` (``_mean`` replaced by ``_std``); returns ``(yerr, kind)``
    with kind "interval", "sd" or None."""
    low, high = f"{column}_low", f"{column}_high"
    values = frame[column].astype(float).to_numpy()
    if low in frame and high in frame and frame[[low, high]].notna().any().any():
        lower = np.where(frame[low].notna(), values - frame[low].astype(float), 0.0)
        upper = np.where(frame[high].notna(), frame[high].astype(float) - values, 0.0)
        return np.vstack([np.clip(lower, 0, None), np.clip(upper, 0, None)]), "interval"
    std = column.replace("_mean", "_std") if column.endswith("_mean") else f"{column}_std"
    if std in frame and frame[std].notna().any():
        return frame[std].astype(float).fillna(0.0).to_numpy(), "sd"
    return None, None


def chance_level(table: pd.DataFrame, column: str) -> tuple[float, str] | None:
    """The chance level of the quantity ``column`` and its words, or None when it has none.

    Re-identification rates (``*reid_top1*``, ``*reid_top5*``) have the chance of naming the
    right original (``reid_chance_top1`` / ``reid_chance_top5`` of the table: 1/N, 5/N);
    membership AUCs (``*membership_auc*``) have 0.5; accuracies have 1/k for k classes
    (``n_classes`` column) where the table says k.
    """
    if "membership_auc" in column:
        return 0.5, "chance (AUC 0.5)"
    for rank in ("top1", "top5"):
        if f"reid_{rank}" in column and f"reid_chance_{rank}" in table and table[f"reid_chance_{rank}"].notna().any():
            value = float(table[f"reid_chance_{rank}"].dropna().mean())
            return value, f"chance ({value:.3f})"
    if "accuracy" in column and "n_classes" in table and table["n_classes"].notna().any():
        k = int(table["n_classes"].dropna().iloc[0])
        return 1.0 / k, f"chance (1/{k})"
    return None


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
    title : str, optional
        Above the grid: say which data and settings.
    rows : (str, str)
        Labels of the top and bottom rows.
    """
    n = min(n, len(originals))
    fig, axes = _subplots(2, n, figsize=(max(1.5 * n, 4.5), 3.7 if title else 3.4), squeeze=False)
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
            axes[0, j].set_title(str(labels[j]), fontsize=9)
    axes[0, 0].set_ylabel(rows[0], fontsize=10)
    axes[1, 0].set_ylabel(rows[1], fontsize=10)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def _condition(name) -> str:
    """A training set's name for a reader: the unprotected reference ('none') is 'originals'."""
    return "originals" if str(name) == "none" else str(name)


def _history_frame(records: dict, metric: str) -> pd.DataFrame:
    return pd.DataFrame([{"condition": name, "epoch": int(h["epoch"]), "value": float(h[metric]), "repeat": r}
                         for name, rec in records.items() for r, run in enumerate(rec["runs"])
                         for h in run["history"]])


def _about(records: dict, *, dataset=None, model=None) -> str:
    """'small_cnn on faces' from the records and what the caller knows."""
    first = next(iter(records.values()), {})
    model = model or first.get("model")
    parts = [str(model) if model else "", f"on {data_name(dataset)}" if dataset else ""]
    return " ".join(p for p in parts if p)


def plot_learning_curves(records: dict, *, metric: str = "loss", dataset: str | None = None,
                         model: str | None = None, title: str | None = None):
    """Training ``metric`` per epoch, one line per condition: the mean over repeats with a band
    of ± 1 standard deviation (no band for one run).

    Parameters
    ----------
    records : dict of name -> record of :func:`pbmlib.learn.training.train_and_evaluate`
    metric : "loss" or "accuracy"
    dataset, model : str, optional
        Named in the title (the model defaults to the records' ``model``).
    title : str, optional
        Replaces the default title.
    """
    from matplotlib.ticker import MaxNLocator

    frame = _history_frame(records, metric)
    repeats = frame.groupby("condition")["repeat"].nunique()
    fig, ax = _subplots(figsize=(6.4, 3.9))
    for i, (name, group) in enumerate(frame.groupby("condition", sort=False)):
        stats = group.groupby("epoch")["value"].agg(["mean", "std", "count"])
        ax.plot(stats.index, stats["mean"], marker="o", ms=3.5, color=f"C{i}", label=_condition(name))
        if repeats[name] >= 2:
            ax.fill_between(stats.index, stats["mean"] - stats["std"], stats["mean"] + stats["std"],
                            color=f"C{i}", alpha=0.18, lw=0)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"training {metric}")
    about = _about(records, dataset=dataset, model=model)
    n = int(repeats.min()) if len(repeats) else 0
    ax.set_title(title or f"Training {metric} per epoch{', ' + about if about else ''}\n"
                          f"line: mean, band: {_repeats_note(n)}", fontsize=10)
    ax.legend(fontsize=LEGEND_SIZE, title="training set", title_fontsize=LEGEND_SIZE)
    return fig


def plot_accuracy_comparison(records: dict, *, dataset: str | None = None, model: str | None = None,
                             title: str | None = None):
    """Clean-test accuracy per condition: a bar at the mean, ± 1 sd, one dot per repeat, and
    the accuracy of guessing (1/k for k classes) as the reference.

    Parameters
    ----------
    records : dict of name -> record of :func:`pbmlib.learn.training.train_and_evaluate`
    dataset, model : str, optional
        Named in the title with the epoch count of the records.
    """
    names = [_condition(name) for name in records]
    accuracies = [[float(run["test_accuracy"]) for run in record["runs"]] for record in records.values()]
    parameters = next(iter(records.values()), {}).get("parameters", {})
    fig, ax = _subplots(figsize=(max(1.5 * len(names) + 2.6, 5.0), 3.9))
    positions = np.arange(len(names))
    means = [np.mean(a) for a in accuracies]
    sds = [np.std(a, ddof=1) if len(a) >= 2 else 0.0 for a in accuracies]
    ax.bar(positions, means, color="lightsteelblue", edgecolor="steelblue", width=0.6, label="mean over repeats")
    ax.errorbar(positions, means, yerr=sds, fmt="none", ecolor="black", capsize=4, lw=1,
                label="± 1 sd" if max(len(a) for a in accuracies) >= 2 else None)
    for i, values in enumerate(accuracies):
        offsets = np.linspace(-0.12, 0.12, len(values)) if len(values) > 1 else [0.0]
        ax.scatter(i + np.asarray(offsets), values, color="black", s=14, zorder=3,
                   label="one repeat" if i == 0 else None)
    classes = parameters.get("classes") or []
    if len(classes) >= 2:
        ax.axhline(1 / len(classes), ls=":", color="grey", lw=1.2, label=f"chance (1/{len(classes)})")
    ax.set_xticks(positions, names, rotation=15 if max(len(n) for n in names) > 12 else 0,
                  ha="right" if max(len(n) for n in names) > 12 else "center")
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("training set")
    ax.set_ylabel("clean test accuracy")
    about = _about(records, dataset=dataset, model=model)
    epochs = parameters.get("epochs")
    n = min(len(a) for a in accuracies) if accuracies else 0
    n_test = parameters.get("n_test")
    ax.set_title(title or f"Clean-test accuracy{', ' + about if about else ''}"
                          f"{f', {epochs} epochs' if epochs else ''}\n"
                          f"{n} repeat{'s' if n != 1 else ''} per training set"
                          f"{f', {n_test} test images' if n_test else ''}", fontsize=10)
    fig.legend(loc="outside lower center", ncols=4, fontsize=LEGEND_SIZE, frameon=False)
    return fig


def save_training_figures(records: dict, output_dir, *, dataset: str | None = None,
                          model: str | None = None) -> list[str]:
    """Write ``learning_curves.png`` (training loss per epoch) and ``accuracy.png`` (clean-test
    accuracy per condition) for the records of :func:`pbmlib.study.run_study`;
    ``dataset`` and ``model`` are named in their titles."""
    from pathlib import Path

    plt = _pyplot()
    out = Path(output_dir)
    for name, fig in (("learning_curves.png", plot_learning_curves(records, metric="loss", dataset=dataset,
                                                                   model=model)),
                      ("accuracy.png", plot_accuracy_comparison(records, dataset=dataset, model=model))):
        fig.savefig(out / name, dpi=120)
        plt.close(fig)
    return ["learning_curves.png", "accuracy.png"]


def _block_ticks(ax, values) -> None:
    """Log-scale x axis with ticks at the N_b values that occur, written as integers."""
    values = sorted({int(v) for v in values})
    ax.set_xscale("log")
    ax.set_xticks(values)
    ax.set_xticklabels([str(v) for v in values])
    ax.minorticks_off()
    if len(values) == 1:
        ax.set_xlim(values[0] / 2, values[0] * 2)


def _shape_offsets(group: pd.DataFrame) -> np.ndarray:
    """Multiplicative x offsets that set apart block shapes with the same N_b (log axis)."""
    offsets = np.ones(len(group))
    for _, index in group.groupby("n_blocks").indices.items():
        if len(index) > 1:
            offsets[index] = 1.0 + np.linspace(-0.07, 0.07, len(index))
    return offsets


def plot_metric_vs_blocks(frame: pd.DataFrame, y: str, *, hue: str | None = None, ylabel: str | None = None,
                          baseline: pd.Series | pd.DataFrame | None = None, title: str | None = None):
    """``y`` against N_b, one line per ``hue`` (e.g. model), as the paper's Figs. 3/4.

    Every row (one block shape) is a point with its error bar: the interval of the
    ``<y>_low``/``<y>_high`` columns where given, else ± the ``<metric>_std`` column (the
    standard deviation over ``repeats``); shapes with the same N_b sit side by side and
    the line joins their mean. Ticks sit at the N_b values that were run.

    Parameters
    ----------
    baseline : Series or DataFrame indexed by ``hue`` value, optional
        The same metric trained on the originals: a Series of means, or a DataFrame with
        ``mean`` and ``sd`` columns (drawn as a band of ± 1 sd around the dashed line).
    title : str, optional
        Say which data and model (the default names only the metric).
    """
    fig, ax = _subplots(figsize=(6.6, 4.0))
    groups = list(frame.groupby(hue, sort=True)) if hue else [(None, frame)]
    kinds = set()
    for i, (name, group) in enumerate(groups):
        group = group.sort_values("n_blocks").reset_index(drop=True)
        color = f"C{i}"
        x = group["n_blocks"].astype(float).to_numpy() * _shape_offsets(group)
        yerr, kind = _errors(group, y)
        kinds.add(kind)
        ax.errorbar(x, group[y].astype(float), yerr=yerr, fmt="o", capsize=3, color=color, ms=5, lw=1)
        means = group.groupby("n_blocks")[y].mean()
        ax.plot(means.index.astype(float), means.to_numpy(), color=color, lw=1.5,
                label=f"{name}: trained on mixed" if name is not None else "trained on mixed")
        if baseline is not None and name in baseline.index:
            row = baseline.loc[name]
            mean = float(row["mean"]) if isinstance(baseline, pd.DataFrame) else float(row)
            sd = float(row["sd"]) if isinstance(baseline, pd.DataFrame) and pd.notna(row.get("sd")) else 0.0
            ax.axhline(mean, ls="--", lw=1.2, color=color,
                       label=f"{name}: trained on originals" + (" (± 1 sd)" if sd > 0 else ""))
            if sd > 0:
                ax.axhspan(mean - sd, mean + sd, color=color, alpha=0.12, lw=0)
    _block_ticks(ax, frame["n_blocks"])
    ax.set_xlabel(LABELS["n_blocks"])
    ax.set_ylabel(ylabel or LABELS.get(y, y))
    repeats = frame["repeats"].dropna().min() if "repeats" in frame and frame["repeats"].notna().any() else None
    bars = ("error bars: the given interval" if "interval" in kinds else
            f"error bars: {_repeats_note(repeats)}" if "sd" in kinds else "no error bars: one run")
    ax.set_title(f"{title or (ylabel or LABELS.get(y, y)).capitalize() + ' against N_b'}\n{bars}", fontsize=10)
    ax.legend(fontsize=LEGEND_SIZE, loc="best")
    return fig


def plot_ssim_vs_blocks(mixing: pd.DataFrame, *, title: str | None = None):
    """SSIM of mixed vs original images against N_b, beside the chance floor (Table IV).

    One line per data set and set size (runs on different data are never averaged
    together); error bars are the 95 % interval of the mean over the n images of a run
    (mean ± 1.96 ``ssim_std`` / √n); block shapes with the same N_b sit side by side. The
    floor (SSIM of an original to a random same-label image) does not depend on N_b: a
    dotted horizontal line per data set, with a band of the same 95 % interval where the
    runs recorded ``ssim_floor_std``.
    """
    fig, ax = _subplots(figsize=(6.6, 4.6))
    groups = list(mixing.groupby(["dataset", "n_images"]))
    for i, ((name, size), group) in enumerate(groups):
        group = group.sort_values("n_blocks").reset_index(drop=True)
        color = f"C{i}"
        x = group["n_blocks"].astype(float).to_numpy() * _shape_offsets(group)
        half = 1.96 / np.sqrt(float(size))
        yerr = half * group["ssim_std"].astype(float).fillna(0).to_numpy() if "ssim_std" in group else None
        ax.errorbar(x, group["ssim_mean"].astype(float), yerr=yerr, fmt="o", ms=4, capsize=2, color=color, lw=1)
        means = group.groupby("n_blocks")["ssim_mean"].mean()
        ax.plot(means.index.astype(float), means.to_numpy(), color=color, lw=1.5,
                label=f"{data_name(name)}, {int(size)} images")
        floor = float(group["ssim_floor_mean"].mean())
        ax.axhline(floor, ls=":", lw=1.5, color=color,
                   label="dotted, same colour: its floor" if i == len(groups) - 1 else "_floor")
        if "ssim_floor_std" in group and group["ssim_floor_std"].notna().any():
            sd = half * float(group["ssim_floor_std"].mean())
            ax.axhspan(floor - sd, floor + sd, color=color, alpha=0.1, lw=0)
    _block_ticks(ax, mixing["n_blocks"])
    ax.set_xlabel(LABELS["n_blocks"])
    ax.set_ylabel("mean SSIM to the original")
    ax.set_title(f"{title or 'SSIM of mixed images to their originals against N_b'}\n"
                 "error bars: 95 % interval of the mean over the images\n"
                 "dotted: the floor, SSIM to a random same-label image", fontsize=10)
    fig.legend(loc="outside lower center", ncols=min(3, len(groups) + 1), fontsize=LEGEND_SIZE, frameon=False)
    return fig


def plot_block_heatmap(frame: pd.DataFrame, value: str, *, title: str | None = None):
    """Mean ``value`` per block height (rows) and width (columns), as the paper's Figs. 5-7."""
    table = frame.pivot_table(index="block_height", columns="block_width", values=value, aggfunc="mean")
    table.index, table.columns = table.index.astype(int), table.columns.astype(int)  # pixels, not 5.0
    fig, ax = _subplots(figsize=(1.1 * table.shape[1] + 3.4, 0.8 * table.shape[0] + 2.0))
    image = ax.imshow(table.to_numpy(dtype=float), cmap="viridis", aspect="auto")
    low, high = np.nanmin(table.to_numpy(dtype=float)), np.nanmax(table.to_numpy(dtype=float))
    for (r, c), v in np.ndenumerate(table.to_numpy(dtype=float)):
        if np.isfinite(v):
            dark = high > low and (v - low) / (high - low) > 0.6
            ax.text(c, r, f"{v:.3f}", ha="center", va="center", fontsize=9, color="black" if dark else "white")
    ax.set_xticks(range(table.shape[1]), [str(c) for c in table.columns])
    ax.set_yticks(range(table.shape[0]), [str(r) for r in table.index])
    ax.set_xlabel("block width W_b (pixels)")
    ax.set_ylabel("block height L_b (pixels)")
    fig.colorbar(image, ax=ax, label=LABELS.get(value, value))
    ax.set_title(title or f"{LABELS.get(value, value).capitalize()} by block size", fontsize=10)
    return fig


def plot_mixing_time(frame: pd.DataFrame, *, title: str | None = None):
    """Mixing time against dataset size, one line per N_b (the paper's Figs. 14/15).

    ``frame`` holds ``n_images``, ``mix_seconds`` (each the median of repeated timings)
    and ``n_blocks`` (one dataset)."""
    fig, ax = _subplots(figsize=(6.0, 3.9))
    for i, (nb, group) in enumerate(frame.sort_values("n_images").groupby("n_blocks")):
        ax.plot(group["n_images"], group["mix_seconds"], marker="o", color=f"C{i}", label=f"N_b = {int(nb)}")
    ax.set_xticks(sorted({int(v) for v in frame["n_images"]}))
    ax.set_xlabel(LABELS["n_images"])
    ax.set_ylabel(LABELS["mix_seconds"])
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=LEGEND_SIZE, title="blocks per image", title_fontsize=LEGEND_SIZE)
    ax.set_title(f"{title or 'Mixing time against the number of images'}\n"
                 "each point: the median of repeated timings", fontsize=10)
    return fig


_VERDICT_WORDS = {True: "met", False: "not met"}


def _verdict(value) -> str | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "undecided"
    if isinstance(value, (bool, np.bool_)):
        return _VERDICT_WORDS[bool(value)]
    return str(value)


def plot_privacy_utility(table: pd.DataFrame, *, x: str = "worst_reid_top1", y: str = "test_accuracy_mean",
                         title: str | None = None, xlabel: str | None = None, verdict: str | None = None):
    """The privacy/utility frontier: utility against an attack's success, one point per setting.

    ``table`` holds study rows (:func:`pbmlib.study.run_study`): ``scheme``,
    ``setting``, ``reference``, ``x`` and ``y``; better protections sit further left.
    Each point is numbered, coloured by setting and shaped by scheme; the legend beside
    the axes says which setting each number is.

    Parameters
    ----------
    x, y : str
        Columns. Error bars are the interval of ``<col>_low``/``<col>_high`` columns where
        given, else ± ``<col>_std`` (``y`` only: the sd over repeats).
    title, xlabel : str, optional
        Say which data (the default title names the quantities only).
    verdict : str, optional
        A column saying whether each setting meets a target: "met", "not met" or
        "undecided" (booleans read as met / not met, missing as undecided). Met points
        are filled, others hollow, and the legend says it.

    Notes
    -----
    The dotted reference line is the chance level of the quantity on the x axis
    (:func:`chance_level`): 1/N for re-identification, 0.5 for a membership AUC.
    """
    table = table.reset_index(drop=True)
    schemes = list(dict.fromkeys(table["scheme"]))
    markers = "osD^vP*Xh"
    xerr, xkind = _errors(table, x)
    yerr, ykind = _errors(table, y)
    keys = [("originals" if row["reference"] else str(row["setting"]))
            + (f" ({_verdict(row[verdict])})" if verdict else "") for _, row in table.iterrows()]
    key_width = 0.6 + min(max(len(k) for k in keys) + 4, 52) * 0.075  # inches for the legend of settings
    fig, (ax, key) = _subplots(1, 2, figsize=(5.4 + key_width, 4.6), width_ratios=[5.4, key_width])
    key.axis("off")
    handles, placed = [], []
    colors = [_pyplot().get_cmap("tab10" if len(table) <= 10 else "tab20")(j) for j in
              range(10 if len(table) <= 10 else 20)]  # a colour per setting, a marker per scheme
    y_span = max(float(table[y].max() - table[y].min()), 0.05)
    x_values = table[x].astype(float)
    x_span = max(float(x_values.max() - x_values.min()), 0.05)
    for i, row in table.iterrows():
        k = schemes.index(row["scheme"])
        color = colors[i % len(colors)]
        state = _verdict(row[verdict]) if verdict else "met"
        face = color if state == "met" else ("white" if state == "not met" else "lightgrey")
        handles.append(ax.errorbar(
            row[x], row[y], xerr=None if xerr is None else np.asarray(xerr)[..., i].reshape(-1, 1),
            yerr=None if yerr is None else np.asarray(yerr)[..., i].reshape(-1, 1), capsize=3,
            marker=markers[k % len(markers)], color=color, mfc=face, ms=7, ls="none", lw=1,
            label=f"{i + 1}: {keys[i]}"))
        crowd = sum(abs(px - row[x]) < 0.03 * x_span and abs(py - row[y]) < 0.06 * y_span for px, py in placed)
        ax.annotate(str(i + 1), (row[x], row[y]), fontsize=9, xytext=(-8 - 10 * crowd, 4),
                    textcoords="offset points", ha="right")
        placed.append((row[x], row[y]))
    chance = chance_level(table, x)
    lows = [float(x_values.min())] + ([chance[0]] if chance else [])
    if xerr is not None:
        lows.append(float((x_values - np.asarray(xerr).reshape(-1, len(table))[0]).min()))
    highs = [float(x_values.max())] + ([chance[0]] if chance else []) + (
        [] if xerr is None else [float((x_values + np.asarray(xerr).reshape(-1, len(table))[-1]).max())])
    margin = 0.08 * max(max(highs) - min(lows), 0.05)
    ax.set_xlim(min(lows) - 1.6 * margin, max(highs) + margin)
    if chance:
        handles.append(ax.axvline(chance[0], ls=":", color="grey", lw=1.5, label=chance[1]))
    ax.set_xlabel(xlabel or LABELS.get(x, x))
    ax.set_ylabel(LABELS.get(y, y))
    bars = []
    if yerr is not None:
        repeats = table["repeats"].dropna().min() if "repeats" in table and table["repeats"].notna().any() else None
        splits = table["n_splits"].dropna().min() if "n_splits" in table and table["n_splits"].notna().any() \
            else None
        bars.append("vertical bars: " + ("the given interval" if ykind == "interval"
                                         else _repeats_note(repeats, splits)))
    if xerr is not None:
        bars.append("horizontal bars: " + ("the given interval" if xkind == "interval" else "± 1 sd"))
    fig.suptitle(f"{title or 'Utility against privacy: one point per protection setting'}"
                 + (f"\n{'; '.join(bars)}" if bars else ""), fontsize=10)
    key.legend(handles=handles, loc="upper left", bbox_to_anchor=(0, 1), borderaxespad=0, fontsize=LEGEND_SIZE,
               frameon=False, title="number: setting" + (" (target)" if verdict else ""),
               title_fontsize=LEGEND_SIZE, alignment="left")
    return fig


def release_rocs(records: dict, *, copy: str = "exact", points: int = 60) -> dict:
    """The audits' membership ROCs (the chosen attack on an evaluation half, per split) as
    :func:`plot_membership_roc` takes them: per setting, TPR averaged over the splits on a log-spaced
    FPR grid from 1 / non-members to 1 (below what an evaluation half resolves, the TPR at FPR 0).

    Parameters
    ----------
    records : dict of setting -> record
        :func:`pbmlib.study.run_study`'s records (``audits`` with their ``roc``).
    copy : str, default="exact"
        Which copy of the release the attacker holds.
    """
    out = {}
    for setting, record in records.items():
        audits = [a for a in record.get("audits") or [] if (a.get("roc") or {}).get(copy) is not None]
        if not audits:
            continue
        curves = [np.asarray(a["roc"][copy], dtype=float) for a in audits]
        non_members = max(int(a.get("fields", {}).get("n_non_members") or 0) for a in audits)
        smallest = 1.0 / non_members if non_members else min(float(c[0][c[0] > 0].min()) for c in curves)
        grid = np.unique(np.geomspace(smallest, 1.0, points))
        # the ROC is a staircase through its points: TPR at an FPR is the highest reached at or below it
        tpr = np.mean([[c[1][c[0] <= f + 1e-12].max() for f in grid] for c in curves], axis=0)
        out[setting] = {"release": [grid.tolist(), tpr.tolist()]}
    return out


def save_release_roc(records: dict, output_dir, *, dataset: str | None = None) -> list[str]:
    """Save ``membership_roc.png``, the audits' membership ROC per setting (:func:`release_rocs`), in
    ``output_dir``; the names saved (none without audits)."""
    from pathlib import Path

    rocs = release_rocs(records)
    if not rocs:
        return []
    about = f" ({data_name(dataset)})" if dataset else ""
    fig = plot_membership_roc(rocs, attack="release", legend="released under",
                              title=f"Membership on the released images{about}: the audit's chosen attack on an "
                                    f"evaluation half, mean over splits, log-log")
    fig.savefig(Path(output_dir) / "membership_roc.png", dpi=120)
    _pyplot().close(fig)
    return ["membership_roc.png"]


def plot_membership_roc(rocs: dict, *, attack: str = "LiRA online", title: str | None = None,
                        legend: str = "trained on"):
    """Log-log ROC of a membership attack on the trained models, one curve per setting.

    Parameters
    ----------
    rocs : dict of setting -> dict of attack -> [fpr, tpr]
        The study records' ``model_membership_roc`` (:func:`pbmlib.study.run_study`): TPR on a
        log-spaced FPR grid from 1/non-members (the smallest rate the non-members resolve) to 1.
    attack : str, default="LiRA online"
        Which attack's curves; settings without it are left out (``"release"`` for the
        audits' curves of :func:`release_rocs`).
    legend : str, default="trained on"
        The legend's title: what the settings are of.

    Notes
    -----
    The dotted diagonal is chance (TPR = FPR). Low FPR is where a membership attack matters:
    an attack can have an AUC near 0.5 and still name some members with near certainty.
    """
    curves = {setting: roc[attack] for setting, roc in rocs.items() if roc and roc.get(attack)}
    if not curves:
        raise ValueError(f"no setting has a ROC of {attack!r}; the study ran without model_membership or shadows")
    fig, (ax, key) = _subplots(1, 2, figsize=(9.6, 4.8), width_ratios=[5.4, 4.2])
    key.axis("off")
    smallest = min(min(fpr) for fpr, _ in curves.values())
    colors = [_pyplot().get_cmap("tab10" if len(curves) <= 10 else "tab20")(j) for j in range(20)]
    handles = [ax.plot(fpr, np.maximum(tpr, smallest / 10), lw=1.5, color=colors[i % 20], label=_condition(setting))[0]
               for i, (setting, (fpr, tpr)) in enumerate(curves.items())]
    handles += ax.plot([smallest, 1], [smallest, 1], ls=":", color="grey", lw=1.5, label="chance (TPR = FPR)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(smallest, 1)
    ax.set_ylim(smallest / 10, 1.05)
    ax.set_xlabel("false-positive rate (non-members flagged)")
    ax.set_ylabel("true-positive rate (members found)")
    key.legend(handles=handles, loc="upper left", bbox_to_anchor=(0, 1), borderaxespad=0, fontsize=LEGEND_SIZE,
               frameon=False, title=legend, title_fontsize=LEGEND_SIZE, alignment="left")
    fig.suptitle(f"{title or f'{attack} on the trained models: ROC, log-log'}\n"
                 f"(a TPR of 0 is drawn at the bottom edge; the FPR axis starts at 1 / non-members)", fontsize=10)
    return fig


def show_schemes(images_by_setting: dict, *, n: int = 4, title: str | None = None):
    """The first ``n`` images under each setting: one row per setting, labelled."""
    rows = len(images_by_setting)
    fig, axes = _subplots(rows, n, figsize=(max(1.35 * n, 4.2), 1.55 * rows + (0.4 if title else 0)),
                          squeeze=False)
    for r, (name, stack) in enumerate(images_by_setting.items()):
        for j in range(n):
            ax = axes[r, j]
            image = stack[j]
            ax.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=255, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r, 0].set_title(_condition(name), loc="left", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


#: The privacy figures of a search's front (:mod:`pbmlib.workbench.sweeps.search`): column, axis label, target words.
_FRONT_AXES = (("membership_auc", "worst membership AUC (release or model)", "AUC <"),
               ("worst_reid_top1", "worst re-identification (release)", "re-id <"))
_COST = "accuracy_drop"


def _interval(frame: pd.DataFrame, column: str):
    """``(2, n)`` distances to ``<column>_low``/``_high`` (:func:`_errors`), or None without an interval."""
    errors, kind = _errors(frame, column) if len(frame) else (None, None)
    return errors if kind == "interval" else None


def plot_search_front(trials: pd.DataFrame, *, targets: dict | None = None, title: str | None = None):
    """One scheme's search: accuracy cost against each privacy figure, its Pareto front marked.

    ``trials`` holds the finished trials of one scheme (``trials.csv`` of
    :func:`pbmlib.workbench.sweeps.search.run_search`): ``setting``, ``accuracy_drop``,
    ``membership_auc`` (the worse of the release's and the model's), ``worst_reid_top1``
    (each with ``_low``/``_high``: its 95 % interval), ``pareto`` (bool: on the scheme's front in all three figures at once),
    ``meets_target`` ("met", "not met", "undecided") and ``reid_chance_top1``. Lower is
    better on every axis.

    Two panels share the cost axis: worst membership AUC (left) and worst
    re-identification (right). Every trial is a faint grey dot; the front's trials are
    numbered, drawn with their intervals on both axes, filled when they meet the target,
    hollow when they do not, grey when undecided; the legend beside lists them. A trial
    of the front may look dominated in one panel: it is better on the other figure.

    Parameters
    ----------
    targets : dict, optional
        The target by column (``accuracy_drop``, ``membership_auc``, ``worst_reid_top1``),
        drawn as dashed lines.
    title : str, optional
        Says which scheme and data.

    Notes
    -----
    Dotted lines are each privacy figure's chance level (:func:`chance_level`); the thin
    solid line is no cost (the originals' accuracy).
    """
    table = trials.reset_index(drop=True)
    targets = {k: float(v) for k, v in (targets or {}).items() if v is not None}
    front = table[table["pareto"].astype(bool)].sort_values(_COST).reset_index(drop=True)
    keys = [f"{i + 1}: {row['setting']} ({_verdict(row.get('meets_target'))})" for i, row in front.iterrows()]
    key_width = 0.6 + min(max([len(k) for k in keys] + [30]) + 4, 52) * 0.075
    fig, axes = _subplots(1, 3, figsize=(8.6 + key_width, 4.4), width_ratios=[4.3, 4.3, key_width])
    axes[2].axis("off")
    colors = [_pyplot().get_cmap("tab10" if len(front) <= 10 else "tab20")(j) for j in
              range(10 if len(front) <= 10 else 20)]
    costs = table[_COST].astype(float)
    yerr = _interval(front, _COST)
    handles = {"every": [], "front": [], "lines": []}
    for panel, (ax, (x, xlabel, words)) in enumerate(zip(axes[:2], _FRONT_AXES)):
        named = (lambda text: text) if panel == 0 else (lambda text: f"_{text}")  # the legend lists panel 1's
        x_values = table[x].astype(float)
        handles["every"] += ax.plot(x_values, costs, "o", color="grey", alpha=0.35, ms=5,
                                    label=named(f"every trial ({len(table)})"))
        xerr = _interval(front, x)
        for i, row in front.iterrows():
            state = _verdict(row.get("meets_target"))
            color = colors[i % len(colors)]
            face = color if state == "met" else ("white" if state == "not met" else "lightgrey")
            handles["front"].append(ax.errorbar(
                row[x], row[_COST], xerr=None if xerr is None else np.asarray(xerr)[:, i:i + 1],
                yerr=None if yerr is None else np.asarray(yerr)[:, i:i + 1], marker="o", ms=7, color=color,
                mfc=face, ls="none", lw=1, capsize=3, label=named(keys[i])))
            ax.annotate(str(i + 1), (row[x], row[_COST]), fontsize=9, xytext=(-6, 4), textcoords="offset points",
                        ha="right")
        ends = [float(x_values.min()), float(x_values.max())]
        if xerr is not None:
            ends += [float((front[x].astype(float) - xerr[0]).min()), float((front[x].astype(float) + xerr[1]).max())]
        chance = chance_level(table, x)
        if chance:
            ends.append(chance[0])
            handles["lines"].append(ax.axvline(chance[0], ls=":", color="grey", lw=1.5,
                                               label=f"{'membership' if panel == 0 else 're-identification'} "
                                                     f"{chance[1]}"))
        if x in targets:
            ends.append(targets[x])
            handles["lines"].append(ax.axvline(targets[x], ls="--", color="black", lw=1,
                                               label=f"target: {words} {targets[x]:g}"))
        margin = 0.08 * max(max(ends) - min(ends), 0.05)
        ax.set_xlim(min(ends) - margin, max(ends) + margin)
        no_cost = ax.axhline(0.0, color="black", lw=0.6, label=named("no cost (the originals)"))
        lines = [no_cost]
        if _COST in targets:
            lines.append(ax.axhline(targets[_COST], ls="--", color="tab:red", lw=1,
                                    label=named(f"target: cost ≤ {targets[_COST]:g} points")))
        if panel == 0:
            handles["lines"] = lines + handles["lines"]
        ax.set_xlabel(xlabel)
    axes[0].set_ylabel("accuracy cost (points below the originals)")
    ends = [float(costs.min()), float(costs.max()), 0.0] + ([targets[_COST]] if _COST in targets else [])
    if yerr is not None:
        ends += [float((front[_COST].astype(float) - yerr[0]).min()),
                 float((front[_COST].astype(float) + yerr[1]).max())]
    margin = 0.08 * max(max(ends) - min(ends), 1.0)
    for ax in axes[:2]:
        ax.set_ylim(min(ends) - margin, max(ends) + margin)
    fig.suptitle(f"{title or 'Search over one scheme'}: {len(front)} of {len(table)} trials on the Pareto front\n"
                 f"lower is better on every axis; attacks give lower bounds; bars: 95 % intervals of the front",
                 fontsize=10)
    axes[2].legend(handles=handles["every"][:1] + handles["front"][:len(front)] + handles["lines"],
                   loc="upper left", bbox_to_anchor=(0, 1), borderaxespad=0, fontsize=LEGEND_SIZE, frameon=False,
                   title="number: setting (target)", title_fontsize=LEGEND_SIZE, alignment="left")
    return fig
