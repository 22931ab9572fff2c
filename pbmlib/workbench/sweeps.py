"""Batch runs of the parameterized notebooks with papermill: grids, resumable sweeps, results.

A sweep config (YAML) names stages; each stage runs one notebook over the cartesian
product of its ``grid`` (plus fixed ``parameters``)::

    name: default
    output_root: papermill_runs
    workers: 2
    stages:
      - name: mixing
        notebook: notebooks/01_mixing.ipynb
        parameters: {dataset: faces, seed: 0}
        grid: {block_height: [1, 5, 25], block_width: [1, 5, 25]}
      - name: training
        notebook: notebooks/02_training.ipynb
        grid: {"block_height,block_width": [[25, 5], [5, 5]]}   # zipped: 2 runs, not 4
    analysis: notebooks/04_analysis.ipynb   # optional: runs last, over the whole sweep

A grid key naming several parameters separated by commas takes a list of tuples that
vary together; other keys combine as a cartesian product.

Every run executes into ``<output_root>/<name>/.work/<run>/`` and is moved to
``<output_root>/<name>/<run>/`` only when it succeeded, so a run that died half way
never looks finished, and a re-run of the sweep skips exactly the finished runs.
A failing run is recorded in ``<output_root>/<name>/failed/<run>/`` (``error.json`` and
the executed notebook with its traceback) and the others carry on.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import time
import traceback
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from .._io import versions, write_json_atomic

__all__ = ["Run", "load_sweep", "check_sweep", "plan_runs", "run_sweep"]

RUN_RECORD_NAME = "run.json"



@dataclass(frozen=True)
class Run:
    """One notebook execution of a sweep."""

    stage: str
    notebook: Path
    parameters: dict = field(hash=False)
    run_id: str = ""


def _slug(value) -> str:
    text = "x".join(str(v) for v in value) if isinstance(value, (list, tuple)) else str(value)
    return re.sub(r"[^A-Za-z0-9.+-]+", "_", text).strip("_") or "none"


def load_sweep(path: str | os.PathLike) -> dict:
    """Read and check a sweep config (YAML); see :func:`check_sweep`."""
    import yaml

    path = Path(path)
    return check_sweep(yaml.safe_load(path.read_text()), base=path.resolve().parent, source=str(path))


def check_sweep(config: dict, *, base: str | os.PathLike | None = None, source: str = "sweep config") -> dict:
    """Check a sweep config and fill in defaults (a new dict; ``config`` is not modified).

    Relative notebook paths are looked up in the working directory, then beside ``base``
    (the config's folder) and its parent.
    """
    import copy

    if not isinstance(config, dict) or "stages" not in config or "name" not in config:
        raise ValueError(f"{source}: a sweep config needs 'name' and a list of 'stages'")
    config = copy.deepcopy(config)
    base = Path(base) if base is not None else Path.cwd()
    for stage in config["stages"]:
        if "name" not in stage or "notebook" not in stage:
            raise ValueError(f"{source}: every stage needs 'name' and 'notebook', got {stage}")
        for key in ("grid", "parameters"):
            stage[key] = stage.get(key) or {}
            if not isinstance(stage[key], dict):
                raise ValueError(f"{source}: stage {stage['name']!r}: {key} must be a mapping")
        for key, values in stage["grid"].items():
            if not isinstance(values, list) or not values:
                raise ValueError(f"{source}: stage {stage['name']!r}: grid entry {key!r} must be a non-empty list")
            width = len(key.split(","))
            if width > 1 and not all(isinstance(v, list) and len(v) == width for v in values):
                raise ValueError(f"{source}: stage {stage['name']!r}: grid entry {key!r} needs lists of {width} "
                                 f"values, got {values}")
        stage["notebook"] = str(_resolve(stage["notebook"], base))
    if config.get("analysis"):
        config["analysis"] = str(_resolve(config["analysis"], base))
    config.setdefault("output_root", "papermill_runs")
    config.setdefault("workers", 1)
    return config


def _resolve(notebook: str, base: Path) -> Path:
    for candidate in (Path(notebook), base / notebook, base.parent / notebook):
        if candidate.exists():
            return candidate.resolve()
    raise ValueError(f"notebook {notebook!r} not found (looked in the working directory and near the config)")


def plan_runs(config: dict) -> list[Run]:
    """All runs of a sweep, in a stable order, each with a readable unique id."""
    runs = []
    for stage in config["stages"]:
        grid = stage["grid"]
        keys = list(grid)
        for combo in itertools.product(*(grid[k] for k in keys)):
            varied = {}
            for key, value in zip(keys, combo):
                names = [k.strip() for k in key.split(",")]
                varied.update(zip(names, value) if len(names) > 1 else [(key, value)])
            params = {**stage["parameters"], **varied}
            run_id = "__".join([stage["name"]] + [f"{k}-{_slug(v)}" for k, v in varied.items()])
            runs.append(Run(stage["name"], Path(stage["notebook"]), params, run_id))
    ids = [r.run_id for r in runs]
    if len(set(ids)) != len(ids):
        raise ValueError("two runs of the sweep have the same id: give stages distinct names")
    return runs


def is_finished(sweep_dir: Path, run: Run) -> bool:
    return (sweep_dir / run.run_id / RUN_RECORD_NAME).exists()


def _execute(run: Run, sweep_dir: Path, kernel_name: str | None) -> dict:
    import papermill as pm

    work = sweep_dir / ".work" / run.run_id
    shutil.rmtree(work, ignore_errors=True)  # left over from an interrupted attempt
    work.mkdir(parents=True)
    params = {**run.parameters, "output_dir": str(work)}
    record = {"run_id": run.run_id, "stage": run.stage, "notebook": str(run.notebook), "parameters": params,
              "versions": versions(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    t0 = time.perf_counter()
    try:
        # No cwd=: papermill would chdir the whole process, and runs share it across threads.
        pm.execute_notebook(str(run.notebook), str(work / run.notebook.name), parameters=params,
                            kernel_name=kernel_name, progress_bar=False)
    except Exception as exc:  # papermill raises PapermillExecutionError with the cell's traceback
        if hasattr(exc, "ename"):  # the error raised inside the notebook
            error = f"{exc.ename}: {exc.evalue} (cell {getattr(exc, 'exec_count', '?')})"
        else:
            error = f"{type(exc).__name__}: {exc}"
        record.update(status="failed", seconds=time.perf_counter() - t0, error=error,
                      traceback=traceback.format_exc())
        failed = sweep_dir / "failed" / run.run_id
        shutil.rmtree(failed, ignore_errors=True)
        failed.parent.mkdir(parents=True, exist_ok=True)
        os.replace(work, failed)
        write_json_atomic(failed / "error.json", record)
        return record
    record.update(status="finished", seconds=time.perf_counter() - t0)
    write_json_atomic(work / RUN_RECORD_NAME, record)
    final = sweep_dir / run.run_id
    shutil.rmtree(final, ignore_errors=True)  # a stale unfinished copy; never a finished one
    os.replace(work, final)  # atomic: the run appears finished all at once
    shutil.rmtree(sweep_dir / "failed" / run.run_id, ignore_errors=True)
    return record


def run_sweep(config: dict | str | os.PathLike, *, workers: int | None = None, kernel_name: str | None = None,
              progress: bool = True, analysis: bool = True) -> dict:
    """Execute every unfinished run of a sweep (several at once with ``workers`` > 1).

    Returns
    -------
    dict
        ``sweep_dir``, ``finished`` (ids run now), ``skipped`` (already finished),
        ``failed`` (id -> error), ``analysis`` (path of the executed analysis notebook
        or None). Also written to ``<sweep_dir>/sweep.json``.
    """
    from tqdm.auto import tqdm

    config = check_sweep(config) if isinstance(config, dict) else load_sweep(config)
    sweep_dir = (Path(config["output_root"]) / config["name"]).resolve()  # absolute: runs share the process
    sweep_dir.mkdir(parents=True, exist_ok=True)
    runs = plan_runs(config)
    todo = [r for r in runs if not is_finished(sweep_dir, r)]
    skipped = [r.run_id for r in runs if r not in todo]
    summary = {"sweep_dir": str(sweep_dir), "finished": [], "skipped": skipped, "failed": {}, "analysis": None}
    workers = workers or int(config.get("workers", 1))
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool, \
            tqdm(total=len(runs), initial=len(skipped), desc=config["name"], disable=not progress) as bar:
        futures = {pool.submit(_execute, r, sweep_dir, kernel_name): r for r in todo}
        for future in as_completed(futures):
            record = future.result()
            if record["status"] == "finished":
                summary["finished"].append(record["run_id"])
            else:
                summary["failed"][record["run_id"]] = record["error"]
                bar.write(f"run {record['run_id']} failed: {record['error'].splitlines()[0][:200]}")
            bar.update(1)
    if analysis and config.get("analysis"):
        notebook = Path(config["analysis"])
        analysis_run = Run("analysis", notebook, {"sweep_dir": str(sweep_dir)}, "analysis")
        record = _execute(analysis_run, sweep_dir, kernel_name)
        if record["status"] == "finished":
            summary["analysis"] = str(sweep_dir / "analysis" / notebook.name)
        else:
            summary["failed"]["analysis"] = record["error"]
    write_json_atomic(sweep_dir / "sweep.json", {**summary, "config": config})
    return summary
