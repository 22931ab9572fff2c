"""Every figure function passes a look, on small synthetic results: no text outside the figure,
no furniture text overlapping another, legends of 9 pt or more listing only artists that are
drawn, a title, no large empty area, and each reference line where its quantity puts it."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import Collection  # noqa: E402
from matplotlib.container import BarContainer, ErrorbarContainer  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.text import Text  # noqa: E402

from pbmlib.workbench import plotting  # noqa: E402

TOLERANCE = 1.0  # pixels


def _inside(box, outer, tolerance=TOLERANCE) -> bool:
    return (box.x0 >= outer.x0 - tolerance and box.y0 >= outer.y0 - tolerance and box.x1 <= outer.x1 + tolerance
            and box.y1 <= outer.y1 + tolerance)


def _hidden_tick_labels(fig) -> set:
    """Tick labels that matplotlib does not draw: those of ticks outside the axis' view."""
    hidden = set()
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            low, high = sorted(axis.get_view_interval())
            span = high - low
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                if not low - 1e-9 * span <= tick.get_loc() <= high + 1e-9 * span:
                    hidden |= {id(tick.label1), id(tick.label2)}
    return hidden


def _shown_texts(fig, renderer):
    hidden = _hidden_tick_labels(fig)
    for text in fig.findobj(Text):
        if text.get_visible() and text.get_text().strip() and text.figure is fig and id(text) not in hidden:
            box = text.get_window_extent(renderer)
            if box.width > 0 and box.height > 0:
                yield text, box


def _points_in_view(artist, ax) -> int:
    """How many of a line's or collection's points lie inside its axes (in display space)."""
    box = ax.get_window_extent()
    if isinstance(artist, Line2D):
        xy = artist.get_xydata()
        if len(xy) == 0:
            return 0
        points = artist.get_transform().transform(np.asarray(xy, dtype=float))
    elif isinstance(artist, Collection):
        offsets = artist.get_offsets()
        if len(offsets) and np.ma.count(offsets) and not np.allclose(offsets, 0):
            points = artist.get_offset_transform().transform(np.asarray(offsets, dtype=float))
        else:  # polygons (fill_between, error bar segments): their vertices
            paths = artist.get_paths()
            if not paths:
                return 0
            points = np.vstack([artist.get_transform().transform(p.vertices) for p in paths if len(p.vertices)])
    else:
        return 0
    points = points[np.isfinite(points).all(axis=1)]
    inside = ((points[:, 0] >= box.x0 - TOLERANCE) & (points[:, 0] <= box.x1 + TOLERANCE)
              & (points[:, 1] >= box.y0 - TOLERANCE) & (points[:, 1] <= box.y1 + TOLERANCE))
    return int(inside.sum())


def _draws_something(artist, ax) -> bool:
    if isinstance(artist, ErrorbarContainer):
        data_line, _, bars = artist.lines
        return ((data_line is not None and _draws_something(data_line, ax))
                or any(_draws_something(b, ax) for b in bars))
    if isinstance(artist, BarContainer):
        return any(abs(p.get_height()) > 0 and p.get_visible() for p in artist.patches)
    if not artist.get_visible():
        return False
    if isinstance(artist, Line2D):
        n = _points_in_view(artist, ax)
        has_line = artist.get_linestyle() not in ("None", "none", "", " ")
        has_marker = artist.get_marker() not in (None, "None", "none", "", " ")
        distinct = len({tuple(p) for p in np.asarray(artist.get_xydata(), dtype=float).round(9)})
        return (has_line and n >= 2 and distinct >= 2) or (has_marker and n >= 1)
    if isinstance(artist, Collection):
        return _points_in_view(artist, ax) >= 1
    if isinstance(artist, Patch):
        box = artist.get_window_extent()
        return box.width > 0 and box.height > 0 and box.overlaps(ax.get_window_extent())
    return False


def figure_problems(fig) -> list[str]:
    """What is wrong with ``fig`` at a look: a list of sentences (empty when nothing is)."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    problems = []
    texts = list(_shown_texts(fig, renderer))
    for text, box in texts:
        if not _inside(box, fig.bbox):
            problems.append(f"text {text.get_text()!r} is cut at the figure's edge")
    # furniture (titles, axis labels, legend texts) overlaps neither itself nor tick labels
    axes = [ax for ax in fig.axes if ax.get_visible()]
    furniture = [fig._suptitle] if fig._suptitle is not None else []
    ticks = []
    for ax in axes:
        furniture += [ax.title, ax._left_title, ax._right_title, ax.xaxis.label, ax.yaxis.label]
        ticks += [t for t in ax.get_xticklabels() + ax.get_yticklabels()]
    legends = [ax.get_legend() for ax in axes if ax.get_legend() is not None] + list(fig.legends)
    for legend in legends:
        furniture += list(legend.get_texts()) + [legend.get_title()]
    boxes = {id(t): b for t, b in texts}
    shown = [t for t in furniture if id(t) in boxes]
    for i, a in enumerate(shown):
        for b in shown[i + 1:] + [t for t in ticks if id(t) in boxes]:
            if a is not b and boxes[id(a)].overlaps(boxes[id(b)]):
                problems.append(f"{a.get_text()!r} overlaps {b.get_text()!r}")
    # legends: readable, and every entry is an artist that is drawn
    drawn = {}
    for ax in axes:
        for artist in list(ax.get_children()) + list(ax.containers):
            label = artist.get_label()
            if isinstance(label, str) and label and not label.startswith("_"):
                drawn[label] = drawn.get(label, False) or _draws_something(artist, ax)
    for legend in legends:
        for text in legend.get_texts():
            if text.get_fontsize() < 9:
                problems.append(f"legend entry {text.get_text()!r} is {text.get_fontsize():.0f} pt (< 9)")
            if not drawn.get(text.get_text()):
                problems.append(f"legend entry {text.get_text()!r} names nothing that is drawn")
    # a title says what the figure shows
    if not (fig._suptitle is not None and fig._suptitle.get_text()) and not any(ax.get_title() for ax in axes):
        problems.append("no title")
    # no large empty area: the axes cover much of the figure, the data much of each plot's width
    area = sum(ax.get_window_extent().width * ax.get_window_extent().height for ax in axes)
    if area < 0.35 * fig.bbox.width * fig.bbox.height:
        problems.append(f"the axes cover only {area / (fig.bbox.width * fig.bbox.height):.0%} of the figure")
    for ax in axes:
        if ax.images or not ax.lines and not ax.collections:
            continue
        xs = []
        for artist in ax.lines + ax.collections:
            if isinstance(artist, Line2D) and artist.get_visible() and len(artist.get_xydata()):
                if artist.get_transform().contains_branch_seperately(ax.transData)[0]:  # x in data units
                    xs += list(artist.get_transform().transform(np.asarray(artist.get_xydata(), float))[:, 0])
        box = ax.get_window_extent()
        xs = [x for x in xs if np.isfinite(x) and box.x0 - 1 <= x <= box.x1 + 1]
        if xs and (max(xs) - min(xs)) < 0.55 * box.width and len(set(np.round(xs))) > 1:
            problems.append(f"the data fill only {(max(xs) - min(xs)) / box.width:.0%} of the width of "
                            f"{ax.get_title()!r}")
    return problems


# ---------------------------------------------------------------- synthetic results


def _records(conditions=("none", "pbm block=5x5"), repeats=3, epochs=6, seed=0):
    rng = np.random.default_rng(seed)
    records = {}
    for name in conditions:
        runs = [{"test_accuracy": float(rng.uniform(0.6, 0.95)), "test_loss": float(rng.uniform(0.2, 0.6)),
                 "history": [{"epoch": e, "loss": float(1 / e + rng.uniform(0, 0.05)),
                              "accuracy": float(1 - 1 / (e + 1))} for e in range(1, epochs + 1)]}
                for _ in range(repeats)]
        records[name] = {"model": "small_cnn", "runs": runs,
                         "parameters": {"epochs": epochs, "n_test": 60, "classes": ["face", "non-face"]}}
    return records


def _study(n=6, seed=0):
    rng = np.random.default_rng(seed)
    blocks = [(25, 25), (25, 5), (5, 25), (5, 5), (5, 1), (1, 1)][:n]
    return pd.DataFrame({
        "model_name": "small_cnn", "block_height": [b[0] for b in blocks], "block_width": [b[1] for b in blocks],
        "n_blocks": [625 // (h * w) for h, w in blocks], "repeats": 3,
        "test_accuracy_mean": rng.uniform(0.7, 0.95, n), "test_accuracy_std": rng.uniform(0.01, 0.05, n),
        "test_loss_mean": rng.uniform(0.2, 0.6, n), "test_loss_std": rng.uniform(0.01, 0.05, n)})


def _mixing():
    rows = []
    for name, size, shapes in (("faces", 200, [(25, 25), (25, 5), (5, 25), (5, 5), (1, 1)]),
                               ("mnist", 1000, [(14, 14), (7, 7), (2, 2)])):
        side = 25 if name == "faces" else 28
        for h, w in shapes:
            nb = (side // h) * (side // w)
            rows.append({"dataset": name, "n_images": size, "n_blocks": nb, "block_height": h, "block_width": w,
                         "ssim_mean": 0.3 + 0.6 / np.log2(nb + 2), "ssim_std": 0.05, "ssim_floor_mean": 0.35,
                         "mix_seconds": 0.001 * size * np.log2(nb + 2)})
    return pd.DataFrame(rows)


def _frontier(interval=False):
    settings = ["none", "pbm block=5x5", "dppix epsilon=0.1 cell=5", "dppix epsilon=16.0 cell=5",
                "pbm_noise block=5x5 sigma=32.0"]
    frame = pd.DataFrame({
        "setting": settings, "scheme": ["none", "pbm", "dppix", "dppix", "pbm_noise"],
        "reference": [True, False, False, False, False], "repeats": 3,
        "reid_top1": [1.0, 0.97, 0.05, 0.9, 0.95], "worst_reid_top1": [1.0, 1.0, 0.06, 0.93, 0.99],
        "membership_auc": [1.0, 0.99, 0.55, 0.9, 0.97], "worst_membership_auc": [1.0, 1.0, 0.58, 0.93, 0.99],
        "model_membership_auc": [0.62, 0.6, 0.51, 0.58, 0.6], "reid_chance_top1": 1 / 140,
        "test_accuracy_mean": [0.93, 0.85, 0.55, 0.9, 0.8], "test_accuracy_std": [0.01, 0.03, 0.05, 0.02, 0.04],
        "target": ["not met", "not met", "undecided", "not met", "not met"]})
    if interval:
        for column in ("worst_membership_auc", "test_accuracy_mean"):
            frame[f"{column}_low"] = frame[column] - 0.04
            frame[f"{column}_high"] = (frame[column] + 0.03).clip(upper=1.0)
    return frame


def _search_trials(n=12, seed=0, interval=True):
    """One scheme's search: cost rising and leaks falling with sigma, with noise; its front marked."""
    from pbmlib.workbench.sweeps.search import pareto_front

    rng = np.random.default_rng(seed)
    sigma = np.sort(rng.uniform(4, 256, n))
    strength = np.log2(sigma / 4) / 6
    frame = pd.DataFrame({"setting": [f"pbm_noise sigma={s:.4g}" for s in sigma],
                          "accuracy_drop": 2 + 20 * strength + rng.normal(0, 1.5, n),
                          "membership_auc": 1.0 - 0.4 * strength + rng.normal(0, 0.02, n),
                          "worst_reid_top1": 1.0 - 0.8 * strength + rng.normal(0, 0.03, n),
                          "reid_chance_top1": 1 / 140, "meets_target": ["not met"] * (n - 2) + ["undecided", "met"]})
    if interval:
        for column, half in (("accuracy_drop", 4.0), ("membership_auc", 0.04), ("worst_reid_top1", 0.05)):
            frame[f"{column}_low"] = frame[column] - half
            frame[f"{column}_high"] = frame[column] + half
    frame["pareto"] = pareto_front(frame[["accuracy_drop", "membership_auc", "worst_reid_top1"]].to_numpy())
    return frame


_TARGETS = {"accuracy_drop": 5.0, "membership_auc": 0.6, "worst_reid_top1": 0.2}


def _images(n=6, side=20, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(n, side, side), dtype=np.uint8)


def _rocs(n_settings: int = 13):
    """Log-spaced ROCs as a study records them: one stronger than chance per setting, one at zero TPR."""
    grid = np.unique(np.geomspace(1 / 5000, 1, 60))
    out = {}
    for k in range(n_settings):
        name = "none" if k == 0 else f"pbm_noise sigma={8 * k}.0"
        tpr = np.minimum(1, grid ** (1 / (1 + 2 / (k + 1)))) if k else grid ** 0.3
        out[name] = {"LiRA online": [grid.tolist(), np.where(grid < 1e-3 * (k % 3), 0, tpr).tolist()]}
    return out


def _audit_records():
    """Study records with audits: per split, the chosen attack's ROC on 30 non-members (perfect, or partial)."""
    out = {}
    for k, name in enumerate(["none", "pbm block=5x5", "dppix epsilon=0.1"]):
        audits = []
        for split in range(3):
            fpr = np.r_[0.0, np.arange(1, 31) / 30]
            tpr = np.ones_like(fpr) if k < 2 else np.minimum(1, np.r_[0.05 * split, np.arange(1, 31) / 30 + 0.1])
            audits.append({"roc": {"exact": [fpr.tolist(), tpr.tolist()]}, "fields": {"n_non_members": 60}})
        out[name] = {"audits": audits}
    return out


FIGURES = {
    "show_pairs": lambda: plotting.show_pairs(_images(), _images(seed=1), block=(5, 5), labels=list("aabbcc"),
                                              title="faces: blocks 5x5, N_s=10, N_t=1, p=0.5"),
    "learning_curves": lambda: plotting.plot_learning_curves(_records(), dataset="faces"),
    "learning_curves_one_run": lambda: plotting.plot_learning_curves(_records(repeats=1), dataset="faces"),
    "accuracy_comparison": lambda: plotting.plot_accuracy_comparison(
        _records(("none", "pbm block=5x1", "pbm block=5x1 +augment")), dataset="/data/my photos"),
    "metric_vs_blocks": lambda: plotting.plot_metric_vs_blocks(
        _study(), "test_accuracy_mean", hue="model_name", title="Clean test accuracy, faces",
        baseline=pd.DataFrame({"mean": [0.93], "sd": [0.02]}, index=["small_cnn"])),
    "loss_vs_blocks": lambda: plotting.plot_metric_vs_blocks(
        _study(), "test_loss_mean", hue="model_name", ylabel="clean test loss",
        baseline=pd.DataFrame({"mean": [0.3], "sd": [0.05]}, index=["small_cnn"])),
    "ssim_vs_blocks": lambda: plotting.plot_ssim_vs_blocks(_mixing()),
    "block_heatmap": lambda: plotting.plot_block_heatmap(_study(), "test_accuracy_mean",
                                                         title="Clean test accuracy of small_cnn on faces"),
    "mixing_time": lambda: plotting.plot_mixing_time(
        pd.concat([_mixing().query("dataset == 'mnist'").assign(n_images=s) for s in (1000, 2500, 5000)]),
        title="Mixing time on mnist"),
    "frontier_reid": lambda: plotting.plot_privacy_utility(_frontier(), x="worst_reid_top1", verdict="target"),
    "frontier_membership": lambda: plotting.plot_privacy_utility(_frontier(interval=True), x="worst_membership_auc",
                                                                 verdict="target"),
    "frontier_model": lambda: plotting.plot_privacy_utility(_frontier(), x="model_membership_auc"),
    "membership_roc": lambda: plotting.plot_membership_roc(_rocs()),
    "release_roc": lambda: plotting.plot_membership_roc(plotting.release_rocs(_audit_records()), attack="release",
                                                        legend="released under", title="membership on the release"),
    "frontier_below_chance": lambda: plotting.plot_privacy_utility(  # every AUC under its chance of 0.5
        _frontier().assign(model_membership_auc=[0.478, 0.487, 0.47, 0.468, 0.49]), x="model_membership_auc"),
    "search_front": lambda: plotting.plot_search_front(_search_trials(), targets=_TARGETS,
                                                       title="Search over pbm_noise on faces"),
    "search_front_two_trials": lambda: plotting.plot_search_front(_search_trials(2, interval=False)),
    "show_schemes": lambda: plotting.show_schemes({s: _images(4) for s in ("none", "pbm block=5x5", "blur sigma=2.0")},
                                                  title="faces under each protection"),
}


@pytest.mark.parametrize("name", FIGURES)
def test_figure_passes_a_look(name):
    fig = FIGURES[name]()
    try:
        assert figure_problems(fig) == []
    finally:
        plt.close(fig)


def test_the_checker_finds_the_defects_it_looks_for():
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([1, 2], [1, 2], label="drawn")
    ax.plot([1], [1.5], ls=":", label="a one-point dotted line")  # draws nothing
    ax.legend(fontsize=7)
    ax.set_title("a title much too long to fit into a figure three inches wide, so it is cut")
    ax.set_xlim(0, 10)  # the data fill a tenth of the width
    problems = " | ".join(figure_problems(fig))
    plt.close(fig)
    assert "cut at the figure's edge" in problems and "7 pt" in problems
    assert "'a one-point dotted line' names nothing that is drawn" in problems
    assert "data fill only" in problems


def _vertical_lines(ax):
    return [line.get_xdata()[0] for line in ax.lines if len(set(line.get_xdata())) == 1
            and line.get_linestyle() == ":"]


@pytest.mark.parametrize("x, chance", [("worst_reid_top1", 1 / 140), ("reid_top1", 1 / 140),
                                       ("worst_membership_auc", 0.5), ("model_membership_auc", 0.5)])
def test_the_frontier_draws_the_chance_of_the_quantity_on_its_x_axis(x, chance):
    fig = plotting.plot_privacy_utility(_frontier(), x=x)
    ax = fig.axes[0]
    assert _vertical_lines(ax) == [pytest.approx(chance)]
    low, high = ax.get_xlim()
    assert low < chance < high and high - low < 1.2
    plt.close(fig)


def test_the_frontier_draws_given_intervals_and_says_which_settings_meet_the_target():
    table = _frontier(interval=True)
    fig = plotting.plot_privacy_utility(table, x="worst_membership_auc", verdict="target")
    container = fig.axes[0].containers[2]  # dppix epsilon=0.1
    segments = container.lines[2][0].get_segments()[0]  # its horizontal bar
    assert [s[0] for s in segments] == pytest.approx([table.loc[2, "worst_membership_auc_low"],
                                                      table.loc[2, "worst_membership_auc_high"]])
    labels = [t.get_text() for t in fig.axes[1].get_legend().get_texts()]
    assert "3: dppix epsilon=0.1 cell=5 (undecided)" in labels and "chance (AUC 0.5)" in labels
    assert "the given interval" in fig.get_suptitle()
    plt.close(fig)


def test_error_bars_say_what_they_are_and_epochs_are_whole_numbers():
    fig = plotting.plot_learning_curves(_records(repeats=2, epochs=3))
    ax = fig.axes[0]
    assert "± 1 sd over 2 repeats" in ax.get_title() and "95" not in ax.get_title()
    assert all(float(t).is_integer() for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1])
    plt.close(fig)
    fig = plotting.plot_learning_curves(_records(repeats=1, epochs=3))
    assert "one run" in fig.axes[0].get_title() and not fig.axes[0].collections  # no band from one run
    plt.close(fig)


def test_the_baseline_is_drawn_with_its_spread_and_the_ssim_floor_across_the_axis():
    fig = plotting.plot_metric_vs_blocks(_study(), "test_accuracy_mean", hue="model_name",
                                         baseline=pd.DataFrame({"mean": [0.9], "sd": [0.03]}, index=["small_cnn"]))
    spans = [p for p in fig.axes[0].patches if p.get_height() > 0]
    assert [pytest.approx((p.get_y(), p.get_y() + p.get_height())) for p in spans] == [(0.87, 0.93)]
    plt.close(fig)
    fig = plotting.plot_ssim_vs_blocks(_mixing())
    floors = [line for line in fig.axes[0].lines if line.get_linestyle() == ":"]
    assert len(floors) == 2 and all(list(line.get_xdata()) == [0, 1] for line in floors)  # the whole width
    plt.close(fig)


def test_accuracy_figure_names_data_model_and_epochs_never_a_full_path():
    fig = plotting.plot_accuracy_comparison(_records(epochs=12), dataset="/home/someone/photos")
    title = fig.axes[0].get_title()
    assert "small_cnn on photos" in title and "12 epochs" in title and "/home" not in title
    assert _vertical_lines(fig.axes[0]) == [] and [line.get_ydata()[0] for line in fig.axes[0].lines
                                               if line.get_label().startswith("chance")] == [0.5]
    plt.close(fig)


def test_the_search_front_marks_the_front_with_its_intervals_and_every_trial_faintly():
    trials = _search_trials()
    fig = plotting.plot_search_front(trials, targets=_TARGETS)
    membership, reid, key = fig.axes
    front = trials[trials["pareto"]].sort_values("accuracy_drop").reset_index(drop=True)
    bars = membership.containers
    assert len(bars) == len(front) == len(reid.containers)
    vertical = bars[0].lines[2][1].get_segments()[0]  # the cost interval of the cheapest trial of the front
    assert [s[1] for s in vertical] == pytest.approx([front.loc[0, "accuracy_drop_low"],
                                                      front.loc[0, "accuracy_drop_high"]])
    faint = [line for line in membership.lines if line.get_label().startswith("every trial")]
    assert len(faint) == 1 and len(faint[0].get_xdata()) == len(trials) and faint[0].get_alpha() < 0.5
    assert _vertical_lines(membership) == [pytest.approx(0.5)] and _vertical_lines(reid) == [pytest.approx(1 / 140)]
    labels = [t.get_text() for t in key.get_legend().get_texts()]
    assert f"1: {front.loc[0, 'setting']} (not met)" in labels and "target: AUC < 0.6" in labels
    assert f"{len(front)} of {len(trials)} trials on the Pareto front" in fig.get_suptitle()
    plt.close(fig)


def test_the_release_roc_averages_the_splits_staircases_from_one_over_the_non_members():
    rocs = plotting.release_rocs(_audit_records())
    fpr, tpr = rocs["dppix epsilon=0.1"]["release"]
    assert fpr[0] == pytest.approx(1 / 60) and fpr[-1] == 1.0
    assert tpr[0] == pytest.approx(np.mean([0.0, 0.05, 0.10]))  # below 1/30: each split's TPR at FPR 0
    assert rocs["none"]["release"][1] == [1.0] * len(fpr)
