"""The ``results.json`` schema: one documented shape per kind of stage, strict JSON, read back checked.

Every notebook stage and every ``pbm`` command that measures something writes
``results.json`` through :func:`write_results`, naming its *kind*:

``mixing`` (``01_mixing``)
    One mixed set: SSIM with its floor, the restoration count, timing.
``study`` (``02_training``, ``03_augmentation``, ``05_privacy``, ``06_schemes``, ``07_frontier``,
``pbm compare``, ``pbm schemes``)
    One row per condition (a scheme, optionally with augmentation) of
    :func:`pbmlib.study.run_study`, every row with the fields of
    :data:`STUDY_ROW_FIELDS` and, where they ran, the audit's, the model attack's and the
    target's: :data:`ROW_FIELDS`, declared beside the code that fills them
    (:mod:`pbmlib.study.core`, :mod:`pbmlib.privacy.audit`).
``analysis`` (``04_analysis``)
    The sweep-wide summary.

A field that is not documented for its kind, or a required one that is missing, raises
``ValueError`` on writing *and* on reading: renaming a field in a notebook fails loudly
instead of silently dropping its runs from the analysis. NaN and infinities are written
as ``null`` (strict JSON; every parser reads it).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd

from .._fs import write_bytes_atomic
from .._io import versions
from ..study.core import ROW_FIELDS, STUDY_ROW_FIELDS
from .sweeps.layout import RESULTS_NAME, RUN_RECORD_NAME

__all__ = ["RESULTS_NAME", "KINDS", "STUDY_ROW_FIELDS", "ROW_FIELDS", "write_results", "write_study", "read_results",
           "project_path", "collect_results", "to_json_value"]

TRAINING_NAME = "training.json"

#: kind -> (required fields, optional fields); ``study`` also has ``rows``.
KINDS = {
    "mixing": ({"n_blocks", "n_images", "image_shape", "ssim_mean", "ssim_std", "ssim_floor_mean", "ssim_excess",
                "blocks_kept_fraction", "mix_seconds", "log10_restoration_probability", "class_sizes"},
               {"log10_restoration_probability_per_class"}),
    "study": ({"rows"}, {"figures"}),
    "analysis": ({"n_runs", "n_study_rows", "figures"},
                 {"accuracy_overview", "ssim_by_blocks", "lowest_test_accuracy", "highest_test_accuracy"}),
}


def to_json_value(value):
    """Plain JSON values: numpy scalars and arrays unpacked, tuples as lists, NaN/inf as None."""
    if isinstance(value, dict):
        return {str(k): to_json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json_value(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_json_value(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if value is pd.NA:
        return None
    raise ValueError(f"{type(value).__name__} value {value!r} cannot be written to results.json")


def _check(kind: str, fields: dict, source: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"{source}: unknown results kind {kind!r}; choose one of {sorted(KINDS)}")
    required, optional = KINDS[kind]
    missing = sorted(required - set(fields))
    unknown = sorted(set(fields) - required - optional)
    if missing:
        raise ValueError(f"{source}: results of kind {kind!r} miss field(s) {missing}")
    if unknown:
        raise ValueError(f"{source}: results of kind {kind!r} have undocumented field(s) {unknown}; "
                         f"documented: {sorted(required | optional)}")
    if kind == "study":
        allowed = set(ROW_FIELDS)
        for i, row in enumerate(fields["rows"]):
            missing = sorted(set(STUDY_ROW_FIELDS) - set(row))
            unknown = sorted(set(row) - allowed)
            if missing or unknown:
                raise ValueError(f"{source}: study row {i} "
                                 + (f"misses field(s) {missing}" if missing else "")
                                 + ("; " if missing and unknown else "")
                                 + (f"has undocumented field(s) {unknown}" if unknown else ""))


def write_results(output_dir: str | os.PathLike, kind: str, parameters: dict, **fields) -> Path:
    """Write ``output_dir/results.json`` atomically after checking it against its kind's schema.

    Parameters
    ----------
    output_dir : path
        Created if missing.
    kind : {"mixing", "study", "analysis"}
    parameters : dict
        What the stage ran with (the notebook's parameters or the command's options).
    **fields
        The kind's documented fields (see :data:`KINDS`); for ``study``, ``rows`` is a
        list of dicts or a DataFrame with :data:`STUDY_ROW_FIELDS` (and scorecard) columns.

    Returns
    -------
    Path of the written file.
    """
    if "rows" in fields and hasattr(fields["rows"], "to_dict"):
        fields["rows"] = fields["rows"].to_dict(orient="records")
    fields = to_json_value(fields)
    path = Path(output_dir) / RESULTS_NAME
    _check(kind, fields, str(path))
    document = {"kind": kind, "parameters": to_json_value(parameters), **fields, "versions": versions()}
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(path, (json.dumps(document, indent=2, allow_nan=False) + "\n").encode())
    return path


def read_results(path: str | os.PathLike) -> dict:
    """Read a ``results.json`` and check it against its kind's schema (``ValueError`` naming the file)."""
    path = Path(path)
    try:
        document = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    fields = {k: v for k, v in document.items() if k not in ("kind", "parameters", "versions")}
    _check(document.get("kind"), fields, str(path))
    return document


def collect_results(sweep_dir: str | os.PathLike) -> dict:
    """Every finished run's ``results.json`` under ``sweep_dir``, one table per kind.

    Returns
    -------
    dict of kind -> DataFrame
        ``"mixing"``: one row per run; ``"study"``: one row per study row. Each row
        also has ``run_id``, ``stage`` and the run's parameters (``output_dir`` left
        out). Kinds without runs give empty DataFrames with the kind's columns. Runs in ``.work/`` and
        ``failed/`` and the analysis itself are ignored; a results file that does not
        match its schema raises ``ValueError`` naming it.
    """
    rows: dict[str, list] = {"mixing": [], "study": []}
    for record_path in sorted(Path(sweep_dir).glob(f"*/{RUN_RECORD_NAME}")):
        results_path = record_path.parent / RESULTS_NAME
        if not results_path.exists():
            continue
        document = read_results(results_path)
        if document["kind"] not in rows:
            continue
        record = json.loads(record_path.read_text())
        head = {"run_id": record["run_id"], "stage": record["stage"],
                **{k: v for k, v in document["parameters"].items() if k != "output_dir"}}
        if document["kind"] == "study":
            rows["study"] += [{**head, **row} for row in document["rows"]]
        else:
            rows["mixing"].append({**head, **{k: v for k, v in document.items()
                                              if k not in ("kind", "parameters", "versions")}})
    columns = {"mixing": ["run_id", "stage", "dataset", *sorted(KINDS["mixing"][0])],
               "study": ["run_id", "stage", *STUDY_ROW_FIELDS]}
    return {kind: pd.DataFrame(found) if found else pd.DataFrame(columns=columns[kind]) for kind, found in rows.items()}


def write_study(output_dir: str | os.PathLike, parameters: dict, table, records: dict | None = None) -> Path:
    """Write a study's outputs: ``study.csv`` (the table), ``results.json`` (kind ``study``), and from the
    records: ``training.json`` (every training: per-epoch history, per-run accuracy and per-image
    correctness, whether it resumed from a backup), ``learning_curves.png`` and ``accuracy.png``;
    ``attacks.csv`` (every attack of every audit: calibration and evaluation figures),
    ``membership_roc.png`` (the audits' membership ROC per setting, log-log),
    ``per_class.csv`` and ``roc.json`` (the chosen membership attack's ROC per setting and split).

    Parameters
    ----------
    output_dir : path
    parameters : dict
        The notebook's parameters or the command's options.
    table : DataFrame
        From :func:`pbmlib.study.run_study`.
    records : dict, optional
        Its records (setting -> ``training``, ``audits``).

    Returns
    -------
    Path of ``results.json``.
    """
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(out / "study.csv", table.to_csv(index=False).encode())
    figures = []
    records = records or {}
    trainings = {label: r["training"] for label, r in records.items() if r.get("training")}
    if trainings:
        write_bytes_atomic(out / TRAINING_NAME, (json.dumps(to_json_value(trainings), indent=1) + "\n").encode())
        from .plotting import save_training_figures

        figures = save_training_figures(trainings, out, dataset=parameters.get("dataset"),
                                        model=parameters.get("model_name"))
    audits = [(label, split, a) for label, r in records.items() for split, a in enumerate(r.get("audits", []))]
    if audits:
        for name, key in (("attacks.csv", "attacks"), ("per_class.csv", "per_class")):
            frame = pd.DataFrame([{"setting": label, "split": split, **row} for label, split, a in audits
                                  for row in a[key]])
            write_bytes_atomic(out / name, frame.to_csv(index=False).encode())
        roc: dict = {}
        for label, _, a in audits:
            roc.setdefault(label, []).append(a["roc"])
        write_bytes_atomic(out / "roc.json", (json.dumps(to_json_value(roc)) + "\n").encode())
        from .plotting import save_release_roc

        figures += save_release_roc(records, out, dataset=parameters.get("dataset"))
    return write_results(out, "study", parameters, rows=table, figures=figures)


def project_path(path: str | os.PathLike) -> Path:
    """``path`` as a notebook means it: relative paths against the project folder.

    JupyterLab runs a notebook with its own folder (``notebooks/``) as the working
    directory, papermill with the caller's. A relative ``output_dir`` such as
    ``papermill_runs/manual/02_training`` is resolved against the nearest folder at or
    above the working directory that holds both ``pyproject.toml`` and ``notebooks/`` (the
    checkout), so it lands where the README says in both cases; without such a folder,
    against the working directory. Absolute paths are returned unchanged.
    """
    path = Path(path)
    if path.is_absolute():
        return path
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").is_file() and (folder / "notebooks").is_dir():
            return folder / path
    return here / path
