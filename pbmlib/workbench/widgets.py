"""Interactive explorers for JupyterLab (ipywidgets): mixing, and quick in-process sweeps.

The widgets hold no mathematics: every button and slider calls a plain function of
this module (:func:`explore_mixing`, :func:`quick_sweep`) that the tests call headless.
Figures are shown as PNG images inside the widget tree, so what a test asserts on
is what the browser shows.
"""

from __future__ import annotations

import io
import time

import numpy as np
import pandas as pd

from .._validation import divisors
from ..data.datasets import ImageSet, load_dataset
from ..data.split import stratified_subsample
from ..pbm.mixing import mix_blocks, n_blocks
from ..privacy.similarity import ssim_floor_scores, ssim_scores
from ..pbm.restoration import restoration_log10_probability

__all__ = ["explore_mixing", "quick_sweep", "MixingExplorer", "QuickSweepPanel", "SWEEPABLE"]

SWEEPABLE = ("block", "n_donors", "rounds", "p")


def _png(fig) -> bytes:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()


def explore_mixing(data: ImageSet, *, block: tuple[int, int], n_donors: int = 10, rounds: int = 1, p: float = 0.5,
                   seed: int = 0, n_show: int = 6, max_images: int = 1000) -> dict:
    """Mix (a stratified sample of) ``data`` and measure it: what the mixing explorer shows.

    Returns
    -------
    dict
        ``mixed`` (the mixed sample), ``ssim_mean``, ``ssim_floor_mean``, ``n_blocks``,
        ``log10_restoration_probability`` (for the whole set's class sizes), ``seconds``
        and ``png`` (originals above mixed images, block grid drawn).
    """
    from .plotting import show_pairs

    t0 = time.perf_counter()
    sample = data
    if len(data) > max_images:
        sample = data.subset(stratified_subsample(data.labels, max_images, seed=seed))
    mixed = mix_blocks(sample.images, sample.labels, block=block, n_donors=n_donors, rounds=rounds, p=p, seed=seed)
    nb = n_blocks(sample.images.shape[1:], block)
    sizes = {str(c): int((data.labels == c).sum()) for c in data.classes}
    order = np.argsort(sample.labels, kind="stable")
    shown = order[np.linspace(0, len(sample) - 1, min(n_show, len(sample))).astype(int)]
    fig = show_pairs(sample.images[shown], mixed[shown], block=block, labels=sample.labels[shown], n=len(shown))
    return {
        "mixed": mixed,
        "ssim_mean": float(ssim_scores(sample.images, mixed).mean()),
        "ssim_floor_mean": float(ssim_floor_scores(sample.images, sample.labels, seed=seed).mean()),
        "n_blocks": nb,
        "log10_restoration_probability": restoration_log10_probability(sizes, nb),
        "seconds": time.perf_counter() - t0,
        "png": _png(fig),
    }


def quick_sweep(data: ImageSet, parameter: str, values: list, *, base: dict | None = None, train: bool = False,
                epochs: int = 5, seed=0, progress=None) -> pd.DataFrame:
    """SSIM (and optionally small-CNN accuracy) against one mixing parameter, in-process.

    A :func:`pbmlib.learn.studies.run_study` over PBM settings that differ in one
    parameter, with the unprotected reference row first when training.

    Parameters
    ----------
    data : ImageSet
    parameter : {"block", "n_donors", "rounds", "p"}
    values : list
        Values of ``parameter``; for ``"block"`` pairs (height, width).
    base : dict, optional
        The other mixing parameters (``block``, ``n_donors``, ``rounds``, ``p``).
    train : bool
        Also train the small CNN on the mixed training part and test on clean images.
    progress : callable, optional
        Called as ``progress(done, total)`` after each condition.

    Returns
    -------
    DataFrame of study rows (:data:`pbmlib.workbench.results.STUDY_ROW_FIELDS`) with
    ``parameter`` and ``value`` (the swept value) added.
    """
    from ..learn.studies import run_study
    from ..schemes import get_scheme

    if parameter not in SWEEPABLE:
        raise ValueError(f"parameter must be one of {SWEEPABLE}, got {parameter!r}")
    settings = {"block": (5, 5), "n_donors": 10, "rounds": 1, "p": 0.5, **(base or {})}
    schemes = [get_scheme("pbm", **{**settings, parameter: value}) for value in values]
    conditions = ([get_scheme("none")] if train else []) + schemes
    table, _ = run_study(data, conditions, train=train, epochs=epochs, seed=seed, progress=progress)
    table["parameter"] = parameter
    shown = ["x".join(map(str, v)) if parameter == "block" else v for v in values]
    table["value"] = (["originals"] if train else []) + shown
    return table


def plot_quick_sweep(table: pd.DataFrame, *, dataset: str = ""):
    """SSIM (beside its floor) and, when present, test accuracy (with the standard deviation
    over repeats as error bars) against the swept value; ``dataset`` names the data in the title."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    mixed = table[~table["reference"]]
    metrics = ["ssim_mean"] + (["test_accuracy_mean"] if mixed["test_accuracy_mean"].notna().any() else [])
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.2), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        positions = range(len(mixed))
        error = mixed[metric.replace("_mean", "_std")] if metric == "test_accuracy_mean" else None
        ax.errorbar(positions, mixed[metric], yerr=None if error is None else error.fillna(0).to_numpy(),
                    marker="o", capsize=3, label="mixed")
        ax.set_xticks(list(positions), [str(v) for v in mixed["value"]])
        if metric == "ssim_mean":
            ax.axhline(table["ssim_floor_mean"].iloc[0], ls=":", color="grey", label="floor: random same-label")
        else:
            ax.axhline(table.loc[table["reference"], metric].iloc[0], ls="--", color="grey",
                       label="trained on originals")
        ax.legend(fontsize=7)
        ax.set_xlabel(table["parameter"].iloc[0])
        ax.set_ylabel({"ssim_mean": "mean SSIM", "test_accuracy_mean": "clean test accuracy"}[metric])
    if dataset:
        fig.suptitle(f"{dataset}: {len(mixed)} settings of {table['parameter'].iloc[0]}", fontsize=9)
    fig.tight_layout()
    return fig


class MixingExplorer:
    """Sliders for the mixing parameters; shows originals beside mixed images, SSIM and log10 P.

    Parameters
    ----------
    datasets : tuple of str
        Names for :func:`pbmlib.load_dataset` offered in the dropdown.
    auto : bool, default=True
        Update when a control changes (sliders report on release). Uncheck it in the
        panel for large data and press Run instead.

    Attributes
    ----------
    widget : ipywidgets.VBox
        Display it (it is also the notebook's last expression via ``_repr_mimebundle_``).
    result : dict
        The last :func:`explore_mixing` result.
    """

    def __init__(self, datasets=("faces", "mnist"), *, auto: bool = True):
        import ipywidgets as w

        self._cache: dict[str, ImageSet] = {}
        style = {"description_width": "110px"}
        self.dataset = w.Dropdown(options=list(datasets), description="dataset", style=style)
        self.block_height = w.Dropdown(description="block height", style=style)
        self.block_width = w.Dropdown(description="block width", style=style)
        self.n_donors = w.IntSlider(10, min=1, max=30, description="N_s donors", continuous_update=False, style=style)
        self.rounds = w.IntSlider(1, min=1, max=5, description="N_t rounds", continuous_update=False, style=style)
        self.p = w.FloatSlider(0.5, min=0.0, max=1.0, step=0.05, description="p", continuous_update=False, style=style)
        self.seed = w.IntText(0, description="seed", style=style)
        self.auto = w.Checkbox(auto, description="update on change")
        self.run_button = w.Button(description="Run", button_style="primary", icon="play")
        self.status = w.HTML()
        self.image = w.Image(format="png")
        self.result: dict = {}
        self._set_block_options()
        self.dataset.observe(self._on_dataset, names="value")
        for control in (self.block_height, self.block_width, self.n_donors, self.rounds, self.p, self.seed):
            control.observe(self._on_change, names="value")
        self.run_button.on_click(lambda _: self.run())
        controls = w.VBox([self.dataset, self.block_height, self.block_width, self.n_donors, self.rounds, self.p,
                           self.seed, w.HBox([self.run_button, self.auto])])
        self.widget = w.VBox([w.HBox([controls, self.status]), self.image])
        self.run()

    def data(self) -> ImageSet:
        name = self.dataset.value
        if name not in self._cache:
            self._cache[name] = load_dataset(name)
        return self._cache[name]

    def _set_block_options(self):
        h, w = self.data().images.shape[1:3]
        self._updating = True
        self.block_height.options, self.block_width.options = divisors(h), divisors(w)
        self.block_height.value = self.block_height.options[len(divisors(h)) // 2]
        self.block_width.value = self.block_width.options[len(divisors(w)) // 2]
        self._updating = False

    def _on_dataset(self, _):
        self._set_block_options()
        self.run()

    def _on_change(self, _):
        if self.auto.value and not getattr(self, "_updating", False):
            self.run()

    def run(self) -> dict:
        """Mix with the current control values and refresh the image and the numbers."""
        self.status.value = "<i>mixing...</i>"
        self.result = explore_mixing(self.data(), block=(self.block_height.value, self.block_width.value),
                                     n_donors=self.n_donors.value, rounds=self.rounds.value, p=self.p.value,
                                     seed=self.seed.value)
        r = self.result
        self.image.value = r["png"]
        self.status.value = (
            f"<b>N_b</b> = {r['n_blocks']}<br><b>mean SSIM</b> = {r['ssim_mean']:.3f} "
            f"(floor, random same-label image: {r['ssim_floor_mean']:.3f})<br>"
            f"<b>log10 P(restore)</b> = {r['log10_restoration_probability']:.1f} (Eq. 9, brute force: it "
            f"depends only on N_b and the class sizes, not on p, N_s or N_t)<br>"
            + ("<i>SSIM is below its floor: at high p almost every block comes from another image, so a "
               "mixed image resembles its own original less than a random same-label image does.</i><br>"
               if r["ssim_mean"] < r["ssim_floor_mean"] else "")
            + f"<small>{r['seconds']:.2f} s</small>")
        return r

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)


class QuickSweepPanel:
    """Pick a mixing parameter and values, press Run: progress bar, then SSIM (and accuracy) plots.

    The interactive sibling of the papermill sweep: in-process, on small data.
    """

    def __init__(self, dataset: str = "faces"):
        import ipywidgets as w

        self.name, self.data = dataset, load_dataset(dataset)
        style = {"description_width": "110px"}
        self.parameter = w.Dropdown(options=list(SWEEPABLE), value="block", description="parameter", style=style)
        self.values = w.Text("25x5, 5x5, 5x1, 1x1", description="values", style=style)
        self.train = w.Checkbox(False, description="train small CNN (slower)")
        self.epochs = w.IntSlider(5, min=1, max=30, description="epochs", style=style)
        self.run_button = w.Button(description="Run", button_style="primary", icon="play")
        self.progress = w.IntProgress(0, min=0, max=1, description="progress", style=style)
        self.status = w.HTML()
        self.image = w.Image(format="png", layout=w.Layout(display="none", max_width="760px"))  # shown once plotted
        self.table: pd.DataFrame | None = None
        self.parameter.observe(self._default_values, names="value")
        self.run_button.on_click(lambda _: self.run())
        self.widget = w.VBox([w.HBox([w.VBox([self.parameter, self.values, self.train, self.epochs]),
                                      w.VBox([self.run_button, self.progress, self.status])]), self.image])

    def _default_values(self, change):
        self.values.value = {"block": "25x5, 5x5, 5x1, 1x1", "n_donors": "1, 2, 5, 10, 20", "rounds": "1, 2, 3, 5",
                             "p": "0.1, 0.3, 0.5, 0.7, 0.9"}[change["new"]]

    def parsed_values(self) -> list:
        """The values typed in the text box, as numbers (pairs for blocks)."""
        items = [v.strip() for v in self.values.value.split(",") if v.strip()]
        try:
            if self.parameter.value == "block":
                return [tuple(int(x) for x in v.lower().split("x")) for v in items]
            cast = float if self.parameter.value == "p" else int
            return [cast(v) for v in items]
        except ValueError:
            raise ValueError(f"cannot read {self.values.value!r} as values of {self.parameter.value}") from None

    def run(self) -> pd.DataFrame | None:
        """Run the sweep with the current controls; errors are shown in the panel."""
        try:
            values = self.parsed_values()
            self.progress.max, self.progress.value = len(values), 0
            self.status.value = "<i>running...</i>"

            def advance(done, total):
                self.progress.max, self.progress.value = total, done

            self.table = quick_sweep(self.data, self.parameter.value, values, train=self.train.value,
                                     epochs=self.epochs.value, progress=advance)
        except ValueError as exc:
            self.status.value = f"<span style='color:#b00'>{exc}</span>"
            return None
        self.image.value = _png(plot_quick_sweep(self.table, dataset=f"{self.data.description or self.name} "
                                                                       f"({len(self.data)} images)"))
        self.image.layout.display = None
        self.status.value = f"done: {len(self.table)} values"
        return self.table

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)
