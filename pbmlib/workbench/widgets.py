"""Interactive explorers for JupyterLab and the Voila app (ipywidgets): mixing, and quick in-process sweeps.

The widgets hold no mathematics: every button and slider calls a plain function of
this module (:func:`explore_mixing`, :func:`quick_sweep`) that the tests call headless.
Figures are shown as PNG images inside the widget tree, so what a test asserts on
is what the browser shows. Every control and every number has a short explanation
beside it, written for a class that has not read the paper; every message shown is
HTML-escaped.
"""

from __future__ import annotations

import html
import io
import time

import numpy as np
import pandas as pd

from .._validation import divisors
from ..data.datasets import ImageSet, load_dataset
from ..data.split import stratified_subsample
from ..pbm.mixing import mix_blocks
from ..pbm.settings import Mixing
from ..privacy.similarity import ssim_floor_scores, ssim_scores
from ..pbm.restoration import restoration_log10_probability

__all__ = ["explore_mixing", "quick_sweep", "plot_quick_sweep", "MixingExplorer", "QuickSweepPanel", "SWEEPABLE",
           "EXPLANATIONS"]

SWEEPABLE = ("block", "n_donors", "rounds", "p")

#: What each control and number means, in a sentence a class can read (shown beside it).
EXPLANATIONS = {
    "dataset": "the images to mix (they ship with the dependencies)",
    "block": "L_b × W_b pixels: the pieces an image is cut into (only sizes that divide the image)",
    "n_donors": "N_s: how many other images of the same label may give a block to an image",
    "rounds": "N_t: how many times the mixing is repeated",
    "p": "the chance that a block is replaced in each round",
    "seed": "the same seed gives the same mixed images",
    "auto": "untick for large sets, then press Run",
    "n_blocks": "blocks per image",
    "kept": "of the blocks still hold their own pixels",
    "ssim": "how alike a mixed image and its original look (1 = identical)",
    "floor": "the SSIM of an original to a random image of the same label: only what lies above it was kept",
    "log10_p": ("the paper's chance, as a power of ten, of rebuilding every image by trying block arrangements "
                "blindly; it depends only on N_b and the class sizes, and says nothing about an attacker "
                "who matches blocks"),
    "parameter": "the setting to vary; the others stay at the explorer's values",
    "values": "comma-separated; blocks as HxW, e.g. 5x5",
    "train": "also train a small CNN on each mixed set and test it on clean images (slower)",
    "epochs": "training passes over the mixed images",
}


def _png(fig) -> bytes:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()


def _show_png(image, png: bytes) -> None:
    """Put ``png`` into the Image widget at its own size (never stretched), shrinking on narrow pages."""
    image.value = png
    image.layout.width = f"{int.from_bytes(png[16:20], 'big')}px"  # the PNG header's width


def explore_mixing(data: ImageSet, *, mixing: Mixing | None = None, seed: int = 0, n_show: int = 6,
                   max_images: int = 1000, **settings) -> dict:
    """Mix (a stratified sample of) ``data`` and measure it: what the mixing explorer shows.

    ``mixing`` (:class:`pbmlib.Mixing`) or its fields (``block``, ``n_donors``, ``rounds``,
    ``p``, ``allow_self``) say how.

    Returns
    -------
    dict
        ``mixed`` (the mixed sample), ``n_images`` (its size), ``ssim_mean``,
        ``ssim_floor_mean``, ``kept_fraction`` (the share of blocks that hold their own
        pixels after mixing), ``n_blocks``, ``log10_restoration_probability`` (for the
        whole set's class sizes), ``seconds`` and ``png`` (originals above mixed images,
        block grid drawn).
    """
    from .plotting import show_pairs

    mixing = Mixing.coerce(mixing, where="explore_mixing", **settings)
    block = mixing.block
    t0 = time.perf_counter()
    sample = data
    if len(data) > max_images:
        sample = data.subset(stratified_subsample(data.labels, max_images, seed=seed))
    mixed, sources = mix_blocks(sample.images, sample.labels, mixing=mixing, seed=seed, return_sources=True)
    nb = mixing.n_blocks(sample.images.shape[1:])
    sizes = {str(c): int((data.labels == c).sum()) for c in data.classes}
    order = np.argsort(sample.labels, kind="stable")
    shown = order[np.linspace(0, len(sample) - 1, min(n_show, len(sample))).astype(int)]
    fig = show_pairs(sample.images[shown], mixed[shown], block=block, labels=sample.labels[shown], n=len(shown))
    return {
        "mixed": mixed,
        "n_images": len(sample),
        "ssim_mean": float(ssim_scores(sample.images, mixed).mean()),
        "ssim_floor_mean": float(ssim_floor_scores(sample.images, sample.labels, seed=seed).mean()),
        "kept_fraction": float((sources == np.arange(len(sample))[:, None, None]).mean()),
        "n_blocks": nb,
        "log10_restoration_probability": restoration_log10_probability(sizes, nb),
        "seconds": time.perf_counter() - t0,
        "png": _png(fig),
    }


def quick_sweep(data: ImageSet, parameter: str, values: list, *, base: dict | None = None, train: bool = False,
                epochs: int = 5, seed=0, progress=None) -> pd.DataFrame:
    """SSIM (and optionally small-CNN accuracy) against one mixing parameter, in-process.

    A :func:`pbmlib.study.run_study` over PBM settings that differ in one
    parameter, with the unprotected reference row first when training.

    Parameters
    ----------
    data : ImageSet
    parameter : {"block", "n_donors", "rounds", "p"}
    values : list
        Values of ``parameter``; for ``"block"`` pairs (height, width).
    base : Mixing or dict, optional
        The other mixing settings (:class:`pbmlib.Mixing`; default ``block=(5, 5)`` and
        its defaults).
    train : bool
        Also train the small CNN on the mixed training part and test on clean images.
    progress : callable, optional
        Called as ``progress(done, total)`` after each step (an epoch of one training, or
        one setting without training).

    Returns
    -------
    DataFrame of study rows (:data:`pbmlib.workbench.results.STUDY_ROW_FIELDS`) with
    ``parameter`` and ``value`` (the swept value) added.
    """
    from ..schemes import get_scheme
    from ..study import run_study

    if parameter not in SWEEPABLE:
        raise ValueError(f"parameter must be one of {SWEEPABLE}, got {parameter!r}")
    settings = Mixing.coerce(base if base is not None else {"block": (5, 5)}, where="quick_sweep").to_dict()
    schemes = [get_scheme("pbm", **{**settings, parameter: value}) for value in values]
    conditions = ([get_scheme("none")] if train else []) + schemes
    learner = None
    if train:
        from ..learn.learner import KerasLearner

        learner = KerasLearner()
    table, _ = run_study(data, conditions, train=train, epochs=epochs, seed=seed, progress=progress, learner=learner)
    table["parameter"] = parameter
    shown = ["x".join(map(str, v)) if parameter == "block" else v for v in values]
    table["value"] = (["originals"] if train else []) + shown
    return table


_PARAMETER_WORDS = {"block": "block size (L_b x W_b)", "n_donors": "N_s, donors", "rounds": "N_t, rounds",
                    "p": "p, replacement probability"}


def plot_quick_sweep(table: pd.DataFrame, *, dataset: str = ""):
    """SSIM (beside its floor) and, when present, clean-test accuracy (± 1 sd over repeats,
    beside the accuracy trained on the originals with its spread) against the swept value;
    ``dataset`` names the data in the title."""
    from .plotting import LEGEND_SIZE, _subplots

    mixed = table[~table["reference"].astype(bool)]
    parameter = table["parameter"].iloc[0]
    metrics = ["ssim_mean"] + (["test_accuracy_mean"] if mixed["test_accuracy_mean"].notna().any() else [])
    fig, axes = _subplots(1, len(metrics), figsize=(4.6 * len(metrics), 3.9), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        positions = list(range(len(mixed)))
        error = mixed[metric.replace("_mean", "_std")] if metric == "test_accuracy_mean" else None
        if error is not None and error.isna().all():
            error = None  # one training each: no spread to draw
        ax.errorbar(positions, mixed[metric], yerr=None if error is None else error.fillna(0).to_numpy(),
                    marker="o", capsize=3, label="mixed" if error is None else "mixed (± 1 sd)")
        ax.set_xticks(positions, [str(v) for v in mixed["value"]])
        if metric == "ssim_mean":
            ax.axhline(table["ssim_floor_mean"].iloc[0], ls=":", color="grey", lw=1.5, label="floor")
            ax.set_ylabel("mean SSIM to the original")
        else:
            reference = table.loc[table["reference"].astype(bool)].iloc[0]
            sd = reference["test_accuracy_std"]
            ax.axhline(reference[metric], ls="--", color="grey", lw=1.2,
                       label="originals" + (" (± 1 sd)" if pd.notna(sd) else ""))
            if pd.notna(sd):
                ax.axhspan(reference[metric] - sd, reference[metric] + sd, color="grey", alpha=0.15, lw=0)
            ax.set_ylabel("clean test accuracy")
        ax.legend(fontsize=LEGEND_SIZE)
        ax.set_xlabel(_PARAMETER_WORDS.get(parameter, parameter))
    repeats = mixed["repeats"].dropna()
    n = int(repeats.iloc[0]) if len(repeats) else 0
    note = ("" if len(metrics) == 1 else "; accuracy: one training each, no spread" if n < 2
            else f"; accuracy: ± 1 sd over {n} repeats")
    fig.suptitle(f"{dataset + ': ' if dataset else ''}{len(mixed)} values of "
                 f"{_PARAMETER_WORDS.get(parameter, parameter)}{note}", fontsize=10)
    return fig


def _hint(text: str):
    import ipywidgets as w

    return w.HTML(f"<span style='color:#555;font-size:0.9em;line-height:1.3'>{html.escape(text)}</span>",
                  layout=w.Layout(width="auto", flex="1 1 160px", margin="0 0 0 8px"))


def _row(control, explanation: str):
    """A control with its explanation to the right; the row wraps when the page is narrow."""
    import ipywidgets as w

    return w.HBox([control, _hint(explanation)],
                  layout=w.Layout(align_items="center", flex_flow="row wrap", width="100%"))


def _control_layout():
    import ipywidgets as w

    return w.Layout(width="340px", flex="0 0 auto")


def _error(exc: BaseException) -> str:
    """An exception as one escaped line of red HTML."""
    words = " ".join(str(exc).split()) or type(exc).__name__
    prefix = "" if isinstance(exc, ValueError) else f"{type(exc).__name__}: "
    return f"<span style='color:#b00'>{html.escape(prefix + words)}</span>"


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
        style = {"description_width": "100px"}
        layout = _control_layout
        self.dataset = w.Dropdown(options=list(datasets), description="data set", style=style, layout=layout())
        self.block_height = w.Dropdown(description="block height", style=style, layout=layout())
        self.block_width = w.Dropdown(description="block width", style=style, layout=layout())
        self.n_donors = w.IntSlider(10, min=1, max=30, description="N_s donors", continuous_update=False,
                                    style=style, layout=layout())
        self.rounds = w.IntSlider(1, min=1, max=5, description="N_t rounds", continuous_update=False, style=style,
                                  layout=layout())
        self.p = w.FloatSlider(0.5, min=0.0, max=1.0, step=0.05, description="p", continuous_update=False,
                               style=style, layout=layout())
        self.seed = w.IntText(0, description="seed", style=style, layout=layout())
        self.auto = w.Checkbox(auto, description="update on change", indent=False,
                               layout=w.Layout(width="auto", flex="0 0 auto"))
        self.run_button = w.Button(description="Run", button_style="primary", icon="play",
                                   tooltip="mix with these settings",
                                   layout=w.Layout(width="auto", min_width="90px", flex="0 0 auto"))
        self.status = w.HTML(layout=w.Layout(flex="1 1 320px", min_width="280px", margin="0 0 0 12px"))
        self.status.add_class("pbm-status")
        self.image = w.Image(format="png", layout=w.Layout(max_width="100%", height="auto"))
        self.caption = w.HTML(
            "<span style='color:#555;font-size:0.9em'>Top row: original images (column title: their label); "
            "bottom row: the same images after mixing, the block grid in red.</span>")
        self.result: dict = {}
        self._set_block_options()
        self.dataset.observe(self._on_dataset, names="value")
        for control in (self.block_height, self.block_width, self.n_donors, self.rounds, self.p, self.seed):
            control.observe(self._on_change, names="value")
        self.run_button.on_click(lambda _: self.run())
        controls = w.VBox([
            _row(self.dataset, EXPLANATIONS["dataset"]),
            _row(self.block_height, "L_b, in pixels"), _row(self.block_width, f"W_b; {EXPLANATIONS['block']}"),
            _row(self.n_donors, EXPLANATIONS["n_donors"]), _row(self.rounds, EXPLANATIONS["rounds"]),
            _row(self.p, EXPLANATIONS["p"]), _row(self.seed, EXPLANATIONS["seed"]),
            w.HBox([self.run_button, self.auto, _hint(EXPLANATIONS["auto"])],
                   layout=w.Layout(align_items="center", flex_flow="row wrap"))],
            layout=w.Layout(flex="1 1 560px", min_width="340px"))
        self.widget = w.VBox([w.HBox([controls, self.status], layout=w.Layout(flex_flow="row wrap", width="100%")),
                              self.image, self.caption], layout=w.Layout(width="100%"))
        self.run()

    def data(self) -> ImageSet:
        name = self.dataset.value
        if name not in self._cache:
            self._cache[name] = load_dataset(name)
        return self._cache[name]

    def settings(self) -> dict:
        """The mixing settings the controls show: ``block``, ``n_donors``, ``rounds``, ``p``."""
        return {"block": (self.block_height.value, self.block_width.value), "n_donors": self.n_donors.value,
                "rounds": self.rounds.value, "p": self.p.value}

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
        try:
            self.result = explore_mixing(self.data(), seed=self.seed.value, **self.settings())
        except Exception as exc:  # noqa: BLE001 - shown in the panel, the app goes on
            self.status.value = _error(exc)
            return self.result
        self.status.value = self._numbers(self.result)
        _show_png(self.image, self.result["png"])
        return self.result

    def _numbers(self, r: dict) -> str:
        h, w = self.block_height.value, self.block_width.value
        rows = [
            ("N_b", f"{r['n_blocks']}", f"{EXPLANATIONS['n_blocks']} ({h}x{w}-pixel blocks)"),
            ("kept", f"{r['kept_fraction']:.0%}", EXPLANATIONS["kept"]),
            ("mean SSIM", f"{r['ssim_mean']:.3f}", EXPLANATIONS["ssim"]),
            ("floor", f"{r['ssim_floor_mean']:.3f}", EXPLANATIONS["floor"]),
            ("log10 P(restore)", f"{r['log10_restoration_probability']:.1f}", EXPLANATIONS["log10_p"]),
        ]
        table = "".join(f"<tr><td style='padding:2px 8px 2px 0;white-space:nowrap;vertical-align:top'><b>"
                        f"{html.escape(name)}</b> = {html.escape(value)}</td><td style='color:#555;font-size:0.9em;"
                        f"padding:2px 0'>{html.escape(text)}</td></tr>" for name, value, text in rows)
        hint = ""
        if r["ssim_mean"] < r["ssim_floor_mean"]:
            rounds = self.rounds.value
            hint = (f"SSIM is below its floor: only {r['kept_fraction']:.0%} of the blocks kept their own pixels "
                    f"(each of the N_t = {rounds} round{'s' if rounds != 1 else ''} replaces a block with "
                    f"probability p = {self.p.value:g}), so a mixed image resembles its own original less than a "
                    f"random image of the same label does.")
            hint = f"<p style='margin:6px 0'><i>{html.escape(hint)}</i></p>"
        timing = f"mixed {r['n_images']} images of {self.dataset.value} in {r['seconds']:.2f} s"
        return (f"<table style='border-collapse:collapse'>{table}</table>{hint}"
                f"<small style='color:#555'>{html.escape(timing)}</small>")

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)


def _default_values(parameter: str, shape) -> str:
    """Four or five sensible values of ``parameter`` for images of ``shape`` (H, W, ...)."""
    if parameter != "block":
        return {"n_donors": "1, 2, 5, 10, 20", "rounds": "1, 2, 3, 5", "p": "0.1, 0.3, 0.5, 0.7, 0.9"}[parameter]
    h, w = shape[:2]
    dh, dw = divisors(h), divisors(w)
    if len(dh) > 3 and len(dw) > 3:  # square blocks from large to small, e.g. 14x14 ... 2x2 on 28x28
        sides = [d for d in sorted(set(dh) & set(dw), reverse=True) if 1 < d < min(h, w)][:4]
        if len(sides) >= 2:
            return ", ".join(f"{d}x{d}" for d in sides)
    pairs = [(dh[-1], dw[len(dw) // 2]), (dh[len(dh) // 2], dw[len(dw) // 2]), (dh[len(dh) // 2], dw[0]),
             (dh[0], dw[0])]
    return ", ".join(f"{a}x{b}" for a, b in dict.fromkeys(pairs))


def _seconds(s: float) -> str:
    return f"{s:.0f} s" if s < 90 else f"{s / 60:.1f} min"


class QuickSweepPanel:
    """Pick a mixing parameter and values, press Run: progress with an estimate of the time left,
    then SSIM (and accuracy) against the values.

    The interactive sibling of the papermill sweep: in-process, on small data.

    Parameters
    ----------
    datasets : str or tuple of str
        The data sets offered (names for :func:`pbmlib.load_dataset`).
    explorer : MixingExplorer, optional
        Follow its data set, and keep its other mixing settings while one is varied.
    """

    def __init__(self, datasets=("faces", "mnist"), *, explorer: MixingExplorer | None = None):
        import ipywidgets as w

        datasets = (datasets,) if isinstance(datasets, str) else tuple(datasets)
        self.explorer = explorer
        self._cache: dict[str, ImageSet] = explorer._cache if explorer is not None else {}
        style = {"description_width": "100px"}
        layout = _control_layout
        self.dataset = w.Dropdown(options=list(datasets), description="data set", style=style, layout=layout())
        self.parameter = w.Dropdown(options=[(_PARAMETER_WORDS[p], p) for p in SWEEPABLE], value="block",
                                    description="vary", style=style, layout=layout())
        self.values = w.Text(description="values", style=style, layout=layout())
        self.train = w.Checkbox(False, description="train small CNN", indent=False,
                                layout=w.Layout(width="auto", flex="0 0 auto"))
        self.epochs = w.IntSlider(5, min=1, max=30, description="epochs", style=style, layout=layout())
        self.run_button = w.Button(description="Run", button_style="primary", icon="play", tooltip="run the sweep",
                                   layout=w.Layout(width="auto", min_width="90px", flex="0 0 auto"))
        self.progress = w.IntProgress(0, min=0, max=1, layout=w.Layout(width="240px", flex="0 0 auto"))
        self.progress_text = w.HTML()
        self.status = w.HTML()
        self.status.add_class("pbm-sweep-status")
        self.image = w.Image(format="png", layout=w.Layout(display="none", max_width="100%", height="auto"))
        self.caption = w.HTML()
        self.table: pd.DataFrame | None = None
        if explorer is not None and explorer.dataset.value in datasets:
            self.dataset.value = explorer.dataset.value
            w.dlink((explorer.dataset, "value"), (self.dataset, "value"))
        self.values.value = _default_values("block", self.data().images.shape[1:])
        self.parameter.observe(self._default_values, names="value")
        self.dataset.observe(self._default_values, names="value")
        self.run_button.on_click(lambda _: self.run())
        controls = w.VBox([
            _row(self.dataset, "the data set of the explorer above" if explorer else EXPLANATIONS["dataset"]),
            _row(self.parameter, EXPLANATIONS["parameter"] if explorer else "the setting to vary"),
            _row(self.values, EXPLANATIONS["values"]),
            w.HBox([self.train, _hint(EXPLANATIONS["train"])], layout=w.Layout(align_items="center")),
            _row(self.epochs, EXPLANATIONS["epochs"]),
            w.HBox([self.run_button, self.progress, self.progress_text],
                   layout=w.Layout(align_items="center", flex_flow="row wrap"))])
        self.widget = w.VBox([controls, self.status, self.image, self.caption], layout=w.Layout(width="100%"))

    def data(self) -> ImageSet:
        name = self.dataset.value
        if name not in self._cache:
            self._cache[name] = load_dataset(name)
        return self._cache[name]

    def _default_values(self, _=None):
        self.values.value = _default_values(self.parameter.value, self.data().images.shape[1:])

    def parsed_values(self) -> list:
        """The values typed in the text box, as numbers (pairs for blocks)."""
        items = [v.strip() for v in self.values.value.split(",") if v.strip()]
        try:
            if self.parameter.value == "block":
                values = [tuple(int(x) for x in v.lower().split("x")) for v in items]
                if any(len(v) != 2 for v in values):
                    raise ValueError
                return values
            cast = float if self.parameter.value == "p" else int
            return [cast(v) for v in items]
        except ValueError:
            raise ValueError(f"cannot read {self.values.value!r} as values of {self.parameter.value} (e.g. "
                             f"{_default_values(self.parameter.value, self.data().images.shape[1:])})") from None

    def _advance(self, started: float, unit: str):
        def advance(done, total):
            self.progress.max, self.progress.value = total, done
            elapsed = time.perf_counter() - started
            left = f", about {_seconds(elapsed / done * (total - done))} left" if 0 < done < total else ""
            self.progress_text.value = html.escape(f"{unit} {done} of {total}: {_seconds(elapsed)}{left}")
        return advance

    def run(self) -> pd.DataFrame | None:
        """Run the sweep with the current controls; errors are shown (escaped) in the panel."""
        started = time.perf_counter()
        data, name = None, self.dataset.value
        try:
            values = self.parsed_values()
            if not values:
                raise ValueError(f"type some values of {self.parameter.value}, e.g. "
                                 f"{_default_values(self.parameter.value, self.data().images.shape[1:])}")
            data = self.data()
            self.progress.max, self.progress.value = 1, 0
            self.progress_text.value = ""
            self.status.value = (f"<i>running {len(values)} value{'s' if len(values) != 1 else ''} on "
                                 f"{html.escape(name)}...</i>")
            base = self.explorer.settings() if self.explorer is not None else None
            if base is not None and self.parameter.value != "block" and \
                    any(s % b for s, b in zip(data.images.shape[1:3], base["block"])):
                base = {k: v for k, v in base.items() if k != "block"}  # explorer not yet on these images
            self.table = quick_sweep(data, self.parameter.value, values, base=base, train=self.train.value,
                                     epochs=self.epochs.value,
                                     progress=self._advance(started, "epoch" if self.train.value else "setting"))
        except Exception as exc:  # noqa: BLE001 - shown in the panel, the app goes on
            self.status.value = _error(exc)
            return None
        described = f"{name} ({len(data)} images)"
        _show_png(self.image, _png(plot_quick_sweep(self.table, dataset=described)))
        self.image.layout.display = None
        n = len(values)
        self.status.value = html.escape(
            f"done: {n} value{'s' if n != 1 else ''} of {_PARAMETER_WORDS[self.parameter.value]} on {described}"
            f"{' (and the originals, for reference)' if self.train.value else ''} in "
            f"{_seconds(time.perf_counter() - started)}")
        self.caption.value = (
            "<span style='color:#555;font-size:0.9em'>Left: mean SSIM of the mixed images to their originals; "
            "dotted, the floor (SSIM to a random image of the same label)."
            + (" Right: accuracy on clean test images of a small CNN trained on each mixed set; dashed, the "
               "same CNN trained on the original images." if self.train.value else "")
            + "</span>")
        return self.table

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)
