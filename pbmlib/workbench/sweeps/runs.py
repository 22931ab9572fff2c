"""The runs of a sweep: one :class:`Run` per notebook execution, its id, fingerprint and state.

A run counts as finished only for the exact parameters and notebook code it ran with: its
fingerprint is a SHA-256 of both (code cells and kernel of the notebook, every
parameter). A re-run of the sweep skips exactly the finished runs with an unchanged
fingerprint; a changed run is re-run (its earlier results go to ``stale/``).
"""

from __future__ import annotations

import hashlib
import os
import itertools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from .layout import RUN_RECORD_NAME

__all__ = ["Run", "iter_runs", "plan_runs", "run_state", "is_finished", "run_fingerprint", "notebook_digest",
           "read_record"]

_MAX_RUN_ID = 150


@dataclass(frozen=True)
class Run:
    """One notebook execution of a sweep.

    ``fingerprint`` is the SHA-256 of the notebook's code and the parameters
    (:func:`plan_runs` fills it in); a finished run whose recorded fingerprint differs
    is stale.
    """

    stage: str
    notebook: Path
    parameters: dict = field(hash=False)
    run_id: str = ""
    fingerprint: str = ""
    #: Dask worker resources one run of the stage holds, e.g. ``{"GPU": 1}`` (ignored without a cluster)
    resources: dict = field(default_factory=dict, hash=False, compare=False)


def _slug(value) -> str:
    text = "x".join(str(v) for v in value) if isinstance(value, (list, tuple)) else str(value)
    return re.sub(r"[^A-Za-z0-9.+-]+", "_", text).strip("_") or "none"


def _sha256(obj) -> str:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


def notebook_digest(path: Path) -> str:
    """SHA-256 of what a notebook runs: its code cells and its kernel (not outputs or metadata)."""
    import nbformat

    notebook = nbformat.read(str(path), as_version=4)
    code = [cell.source for cell in notebook.cells if cell.cell_type == "code"]
    kernel = notebook.metadata.get("kernelspec", {}).get("name")
    return _sha256({"code": code, "kernel": kernel})


def _fingerprint(digest: str, parameters: dict) -> str:
    return _sha256({"notebook": digest, "parameters": parameters})


def run_fingerprint(run: Run) -> str:
    """The run's fingerprint, computed from its notebook and parameters when it carries none."""
    return run.fingerprint or _fingerprint(notebook_digest(run.notebook), run.parameters)


def iter_runs(config: dict):
    """The runs of a checked sweep config one at a time, in a stable order (nothing materialised:
    the estimate of a large grid walks it without holding it)."""
    digests: dict[str, str] = {}
    for stage in config["stages"]:
        grid = stage["grid"]
        keys = list(grid)
        notebook = Path(stage["notebook"])
        if stage["notebook"] not in digests:
            digests[stage["notebook"]] = notebook_digest(notebook)
        for combo in itertools.product(*(grid[k] for k in keys)):
            varied = {}
            for key, value in zip(keys, combo):
                names = [k.strip() for k in key.split(",")]
                varied.update(zip(names, value) if len(names) > 1 else [(names[0], value)])
            params = {**stage["parameters"], **varied}
            run_id = "__".join([stage["name"]] + [f"{k}-{_slug(v)}" for k, v in varied.items()])
            if len(run_id) > _MAX_RUN_ID:  # long values (lists of dicts): keep folder names short
                run_id = f"{run_id[:_MAX_RUN_ID - 17]}-{_sha256(varied)[:16]}"
            yield Run(stage["name"], notebook, params, run_id, _fingerprint(digests[stage["notebook"]], params),
                      dict(stage.get("resources") or {}))


def plan_runs(config: dict) -> list[Run]:
    """All runs of a checked sweep config, in a stable order, each with a readable unique id.

    A run's id is ``<stage>__<key>-<value>__...`` over its grid values (the stage name
    alone without a grid); each run carries its fingerprint (:class:`Run`).
    """
    runs = list(iter_runs(config))
    seen: dict[str, Run] = {}
    for run in runs:
        if run.run_id in seen:
            raise ValueError(f"stage {run.stage!r}: two runs get the folder name {run.run_id!r} (values that "
                             f"differ only in characters a folder name cannot hold); change one of them")
        seen[run.run_id] = run
    return runs


def read_record(path: Path):
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def run_state(sweep_dir: Path, run: Run) -> str:
    """``"finished"`` (same fingerprint), ``"changed"`` (finished with other parameters or code) or ``"missing"``."""
    record_path = sweep_dir / run.run_id / RUN_RECORD_NAME
    if not record_path.is_file():
        return "missing"
    record = read_record(record_path)
    if record and record.get("status") == "finished" and record.get("fingerprint") == run_fingerprint(run):
        return "finished"
    return "changed"


def is_finished(sweep_dir: str | os.PathLike, run: Run) -> bool:
    """Whether ``run`` finished in ``sweep_dir`` with exactly its parameters and notebook code."""
    return run_state(Path(sweep_dir), run) == "finished"
