"""``pbm sweep CONFIG --plan``: what a sweep will train, and about how long it takes, before it starts.

Per stage: the runs, the trainings they hold (after the baseline reuse of
:class:`pbmlib.learn.baselines.BaselineCache`: one unprotected baseline per distinct data,
split, model, settings, seed and repeats), the images each training sees per epoch,
and an estimate of the time from a throughput measured on this machine with a short
training of the same model at the same image size (or from a given images/s, e.g. a
GPU's).

What each study notebook trains is read from its parameters by :data:`TRAININGS`, one
entry per notebook; a notebook without an entry counts as training nothing (the plan says
so).
"""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["TRAININGS", "plan_sweep", "measure_throughput"]


def _trainings_02(p: dict) -> list[tuple[str, int]]:
    return [("baseline", 1), ("mixed", 1)]


def _trainings_03(p: dict) -> list[tuple[str, int]]:
    copies = 1 + int(p.get("copies", 1)) if p.get("augment_mode", "offline") == "offline" else 1
    return [("mixed", 1), ("mixed+augment", copies)]


def _trainings_05(p: dict) -> list[tuple[str, int]]:
    if not p.get("train", True):
        return []
    return [("baseline", 1)] + [("protected", 1)] * (len(p.get("pbm_blocks", [[25, 5], [5, 5], [5, 1], [1, 1]]))
                                                     + len(p.get("baselines", [{}] * 3)))


def _trainings_06(p: dict) -> list[tuple[str, int]]:
    schemes = p.get("schemes", [{}] * 8)
    return [("protected", 1)] * len(schemes)


#: notebook file stem -> f(parameters) -> [(condition kind, images per training image)]; the
#: kind "baseline" is shared across runs with the same baseline settings.
TRAININGS = {
    "02_training": _trainings_02,
    "03_augmentation": _trainings_03,
    "05_privacy": _trainings_05,
    "06_schemes": _trainings_06,
}

_DEFAULTS = {"dataset": "faces", "image_size": 0, "model_name": "small_cnn", "test_fraction": 0.3, "epochs": 10,
             "repeats": 2, "batch_size": 32, "seed": 0}


def _notebook_defaults(notebook: Path) -> dict:
    import papermill as pm

    found = {}
    for name, info in pm.inspect_notebook(str(notebook)).items():
        try:
            found[name] = ast.literal_eval(info["default"])  # the parameters cell's literal defaults
        except (ValueError, SyntaxError):  # not a literal: leave it out
            continue
    return found


def _dataset_shape(name: str, image_size: int, cache: dict) -> tuple[int, tuple]:
    """(number of images, image shape) of a data set as the notebooks load it."""
    key = (name, image_size)
    if key not in cache:
        from ..data.datasets import load_dataset

        data = load_dataset(name, size=image_size or None)
        cache[key] = (len(data), data.images.shape[1:])
    return cache[key]


def measure_throughput(model_name: str, image_shape: tuple, *, n_images: int = 1024, batch_size: int = 32) -> float:
    """Training images per second of ``model_name`` at ``image_shape`` on this machine, from two
    epochs on random uint8 images (compilation included: a slight underestimate for long runs)."""
    from ..learn.training import train_and_evaluate

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(n_images, *image_shape), dtype=np.uint8)
    y = np.arange(n_images) % 2
    record = train_and_evaluate(model_name, (x, y), (x[:32], y[:32]), epochs=2, batch_size=batch_size, seed=0)
    return float(record["runs"][0]["train_images_per_second"])


def plan_sweep(config: dict, *, images_per_second: float | None = None, measure: bool = True) -> pd.DataFrame:
    """One row per stage: runs, trainings (and after baseline reuse), images per epoch, epochs x
    repeats, and the estimated hours at the measured (and at the given) throughput.

    Parameters
    ----------
    config : dict
        A checked sweep config (:func:`pbmlib.workbench.sweeps.load_sweep`).
    images_per_second : float, optional
        Also estimate at this throughput (e.g. ResNet50 on a GPU).
    measure : bool, default=True
        Measure this machine's throughput per model and image size (a few seconds each).
    """
    from .sweeps import iter_runs

    runs = list(iter_runs(config))
    shapes: dict = {}
    throughput: dict = {}
    defaults_by_notebook: dict = {}
    baselines_seen: set = set()
    rows = []
    for stage in config["stages"]:
        notebook = Path(stage["notebook"])
        counter = TRAININGS.get(notebook.stem)
        if notebook not in defaults_by_notebook:
            defaults_by_notebook[notebook] = _notebook_defaults(notebook)
        row = {"stage": stage["name"], "notebook": notebook.name, "runs": 0, "trainings": 0,
               "trainings_after_reuse": 0, "images_per_epoch": 0, "epochs_x_repeats": 0, "image_epochs": 0}
        for run in (r for r in runs if r.stage == stage["name"]):
            p = {**_DEFAULTS, **defaults_by_notebook[notebook], **run.parameters}
            row["runs"] += 1
            if counter is None:
                continue
            n, shape = _dataset_shape(p["dataset"], int(p.get("image_size") or 0), shapes)
            n_train = n if p.get("test_dataset") else n - round(float(p["test_fraction"]) * n)
            per_run = p["epochs"] * p["repeats"]
            model_key = (p["model_name"], tuple(shape), int(p["batch_size"]))
            row["model_key"] = model_key
            for kind, factor in counter(p):
                row["trainings"] += 1
                if kind == "baseline":
                    key = tuple((k, str(p.get(k))) for k in ("dataset", "test_dataset", "image_size", "model_name",
                                                              "test_fraction",
                                                              "epochs", "batch_size", "optimizer", "learning_rate",
                                                              "repeats", "seed"))
                    if key in baselines_seen:
                        continue
                    baselines_seen.add(key)
                row["trainings_after_reuse"] += 1
                row["images_per_epoch"] = max(row["images_per_epoch"], n_train * factor)
                row["epochs_x_repeats"] = per_run
                row["image_epochs"] += n_train * factor * per_run
        if measure and row.get("model_key") and row["model_key"] not in throughput:
            model, shape, batch = row["model_key"]
            throughput[row["model_key"]] = measure_throughput(model, shape, batch_size=batch)
        rate = throughput.get(row.pop("model_key", None))
        row["measured_images_per_second"] = rate
        row["hours_measured"] = row["image_epochs"] / rate / 3600 if rate else None
        if images_per_second:
            row[f"hours_at_{images_per_second:g}_images_per_second"] = row["image_epochs"] / images_per_second / 3600
        rows.append(row)
    return pd.DataFrame(rows)
