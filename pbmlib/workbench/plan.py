"""``pbm sweep CONFIG --plan``: what a sweep will train, and about how long it takes, before it starts.

Per stage: the runs, the trainings they hold (after the baseline reuse of
:class:`pbmlib.learn.baseline_cache.BaselineCache`: one unprotected reference per distinct data,
split, settings and seed), LiRA's shadow models (shared the same way), the images each training
sees per epoch, and an estimate of the time at a given throughput (``--images-per-second``, e.g. a GPU's) or at this machine's,
measured only when asked (``--measure``: a few batches per model and image size, cached).

What a run trains is read from its parameters by :func:`pbmlib.study.study_from_parameters`,
the function its notebook calls to build the study: the plan is computed by the code that
trains, not by a table of notebooks. A notebook whose parameters describe no study (the
mixing and analysis notebooks) trains nothing.
"""

from __future__ import annotations

import ast
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["plan_sweep", "measure_throughput", "THROUGHPUT_CACHE"]

#: Where measured throughputs are kept (per model, image shape, batch size, backend and versions).
THROUGHPUT_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "pbm-workbench" / "throughput.json"


def _notebook_defaults(notebook: Path) -> dict:
    import papermill as pm

    found = {}
    for name, info in pm.inspect_notebook(str(notebook)).items():
        try:
            found[name] = ast.literal_eval(info["default"])  # the parameters cell's literal defaults
        except (ValueError, SyntaxError):  # literals with float("inf") and the like
            try:
                found[name] = eval(info["default"], {"__builtins__": {}}, {"float": float})  # noqa: S307
            except Exception:  # anything else: leave it out
                continue
    return found


def _dataset_shape(name: str, image_size: int | None, rgb: bool, cache: dict) -> tuple[int, tuple]:
    """(number of images, image shape) of a data set as the notebooks load it; a folder is counted and
    one image read, never decoded whole."""
    key = (name, image_size, rgb)
    if key not in cache:
        from ..data.datasets import list_image_folder, load_dataset, read_image

        if Path(name).is_dir():
            files, _ = list_image_folder(name)
            shape = read_image(files[0], size=image_size).shape
            n = len(files)
        else:
            data = load_dataset(name, size=image_size)
            n, shape = len(data), data.images.shape[1:]
        if rgb and len(shape) == 2:
            shape = (*shape, 3)
        cache[key] = (n, tuple(shape))
    return cache[key]


def _throughput_key(model_name: str, shape: tuple, batch_size: int) -> str:
    from .._io import versions

    found = versions()
    return json.dumps([model_name, list(shape), batch_size, os.environ.get("KERAS_BACKEND", "tensorflow"),
                       found.get("keras"), found.get("tensorflow", found.get("tensorflow-cpu", found.get("jax")))])


def measure_throughput(model_name: str, image_shape: tuple, *, batch_size: int = 32, batches: int = 8,
                       cache: Path | None = THROUGHPUT_CACHE) -> float:
    """Training images per second of ``model_name`` at ``image_shape`` on this machine.

    Times ``batches`` batches of random uint8 images after one batch of warm-up (compilation
    excluded), and keeps the figure in ``cache`` per model, image shape, batch size, backend and
    versions, so a second plan measures nothing.
    """
    from ..learn.training import train_and_evaluate

    key = _throughput_key(model_name, image_shape, batch_size)
    known = {}
    if cache is not None and cache.is_file():
        try:
            known = json.loads(cache.read_text())
        except ValueError:
            known = {}
    if key in known:
        return float(known[key])
    rng = np.random.default_rng(0)
    n = batch_size * (batches + 1)
    x = rng.integers(0, 256, size=(n, *image_shape), dtype=np.uint8)
    y = np.arange(n) % 2
    one = train_and_evaluate((x[:batch_size], y[:batch_size]), (x[:2], y[:2]), model_name=model_name, epochs=1,
                             batch_size=batch_size, seed=0)["runs"][0]["fit_seconds"]
    many = train_and_evaluate((x, y), (x[:2], y[:2]), model_name=model_name, epochs=1, batch_size=batch_size,
                              seed=0)["runs"][0]["fit_seconds"]
    rate = batch_size * batches / max(many - one, 1e-6)  # the extra batches, compilation cancelled out
    if cache is not None:
        from .._fs import write_json_atomic

        write_json_atomic(cache, {**known, key: rate})
    return rate


def plan_sweep(config: dict, *, images_per_second: float | None = None, measure: bool = False,
               progress: bool = False) -> pd.DataFrame:
    """One row per stage: runs, trainings (and after baseline reuse), images per epoch, epochs x
    repeats, and the estimated hours at the given and (with ``measure``) the measured throughput.

    Parameters
    ----------
    config : dict
        A checked sweep config (:func:`pbmlib.workbench.sweeps.load_sweep`).
    images_per_second : float, optional
        Estimate at this training throughput (e.g. ResNet50 on a GPU).
    measure : bool, default=False
        Measure this machine's throughput per model and image size (a few batches each,
        cached in :data:`THROUGHPUT_CACHE`).
    progress : bool, default=False
        A progress line while measuring.
    """
    from ..study import study_from_parameters
    from .sweeps import iter_runs

    shapes: dict = {}
    defaults: dict = {}
    baselines_seen: set = set()
    rows: dict = {}
    for run in iter_runs(config):  # one run at a time: a large grid is never held
        notebook = run.notebook
        if notebook not in defaults:
            defaults[notebook] = _notebook_defaults(notebook)
        row = rows.setdefault(run.stage, {"stage": run.stage, "notebook": notebook.name, "runs": 0, "trainings": 0,
                                          "trainings_after_reuse": 0, "shadow_models": 0, "images_per_epoch": 0,
                                          "image_epochs": 0, "model_keys": set()})
        row["runs"] += 1
        parameters = {**defaults[notebook], **run.parameters}
        try:
            plan = study_from_parameters(parameters)
        except ValueError:  # no study: trains nothing
            continue
        study, training = plan.options["study"], plan.options["training"]
        n, shape = _dataset_shape(plan.dataset, plan.image_size, plan.rgb, shapes)
        n = min(n, plan.n_images or n)
        n_train = n if plan.test_dataset else n - round(study.test_fraction * n)
        reuse = "baseline_cache" in defaults[notebook]
        if study.train and study.model_membership and study.shadow_models:
            key = json.dumps(["shadows", plan.dataset, plan.test_dataset, plan.image_size, plan.rgb, plan.n_images,
                              study.test_fraction, study.n_splits, study.shadow_models, training.to_dict(), plan.seed],
                             sort_keys=True, default=str)
            if not (reuse and key in baselines_seen):
                baselines_seen.add(key)
                n_test = _dataset_shape(plan.test_dataset, plan.image_size, plan.rgb, shapes)[0] \
                    if plan.test_dataset else n - n_train
                half = (n_train + min(n_train, n_test)) // 2  # every shadow trains on half of the candidates
                row["shadow_models"] += study.shadow_models * study.n_splits
                row["image_epochs"] += half * training.epochs * study.shadow_models * study.n_splits
                row["model_keys"].add((training.model_name, shape, training.batch_size))
        for condition in plan.trainings():
            row["trainings"] += study.n_splits
            if reuse and condition.reference:
                key = json.dumps([plan.dataset, plan.test_dataset, plan.image_size, plan.rgb, study.test_fraction,
                                  study.n_splits, training.to_dict(), plan.seed], sort_keys=True, default=str)
                if key in baselines_seen:
                    continue
                baselines_seen.add(key)
            images = n_train * condition.images_per_training_image
            row["trainings_after_reuse"] += study.n_splits
            row["images_per_epoch"] = max(row["images_per_epoch"], images)
            row["image_epochs"] += images * training.epochs * training.repeats * study.n_splits
            row["model_keys"].add((training.model_name, shape, training.batch_size))
    table = []
    for row in rows.values():
        keys = row.pop("model_keys")
        if images_per_second:
            row[f"hours_at_{images_per_second:g}_images_per_second"] = row["image_epochs"] / images_per_second / 3600
        if measure and keys:
            rates = [_measured(key, progress) for key in sorted(keys)]
            row["measured_images_per_second"] = min(rates)
            row["hours_measured"] = row["image_epochs"] / min(rates) / 3600
        table.append(row)
    return pd.DataFrame(table)


def _measured(key: tuple, progress: bool) -> float:
    model_name, shape, batch_size = key
    if progress:
        import sys

        print(f"measuring {model_name} at {'x'.join(map(str, shape))} (a few batches; cached for next time)",
              file=sys.stderr)
    return measure_throughput(model_name, shape, batch_size=batch_size)
