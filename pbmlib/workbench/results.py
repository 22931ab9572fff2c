"""The ``results.json`` schema: one documented shape per kind of stage, strict JSON, read back checked.

Every notebook stage and every ``pbm`` command that measures something writes
``results.json`` through :func:`write_results`, naming its *kind*:

``mixing`` (``01_mixing``)
    One mixed set: SSIM with its floor, the restoration count, timing.
``study`` (``02_training``, ``03_augmentation``, ``05_privacy``, ``06_schemes``, ``pbm compare``,
``pbm schemes``)
    One row per condition (a scheme, optionally with augmentation) of
    :func:`pbmlib.learn.studies.run_study`, every row with the fields of
    :data:`STUDY_ROW_FIELDS` and, where the privacy scorecard ran, those of
    :data:`SCORECARD_FIELDS`.
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
from ..privacy.attacks import MEMBERSHIP_METHODS
from ..privacy.copies import COPY_KINDS
from ..privacy.adaptive import MEMBERSHIP_ATTACKS, REID_ATTACKS
from ..privacy.matchers import MATCHERS
from ..privacy.scorecard import copy_suffix, membership_suffix
from .sweeps.layout import RESULTS_NAME, RUN_RECORD_NAME

__all__ = ["RESULTS_NAME", "KINDS", "STUDY_ROW_FIELDS", "SCORECARD_FIELDS", "write_results", "write_study", "read_results", "project_path",
           "collect_results", "to_json_value"]

TRAINING_NAME = "training.json"

#: Every row of a study table: name -> meaning. All present in every row (null where not measured).
STUDY_ROW_FIELDS = {
    "setting": "the condition's label: the scheme and its parameters, '+augment' when augmented",
    "scheme": "the scheme's registry name",
    "reference": "true for the unprotected reference condition (scheme 'none', no augmentation)",
    "augment": "augmentation mode ('offline' or 'online') or null",
    "block_height": "PBM block height L_b in pixels, or null",
    "block_width": "PBM block width W_b in pixels, or null",
    "n_blocks": "N_b, blocks per image (Eq. 6), or null for schemes without blocks",
    "model_name": "the classifier trained, or null without training",
    "n_train": "training images (before offline augmentation)",
    "n_test": "clean test images",
    "repeats": "trainings per condition, or null without training",
    "test_accuracy_mean": "clean-test accuracy, mean over repeats",
    "test_accuracy_std": "sample standard deviation over repeats (null for one repeat)",
    "test_loss_mean": "clean-test loss, mean over repeats",
    "test_loss_std": "sample standard deviation over repeats",
    "accuracy_drop": "points below the reference condition's mean accuracy (null without one)",
    "ssim_mean": "mean SSIM of the protected training images to their originals",
    "ssim_floor_mean": "mean SSIM of each original to a random same-label original (the chance floor)",
    "ssim_excess": "ssim_mean - ssim_floor_mean",
    "log10_restoration_probability": "the paper's brute-force count (Eq. 9, log10) where the scheme has one",
    "attack_block_height": "block height the block-level attacks used (the scheme's own geometry, else the "
                           "study's guess), or null",
    "attack_block_width": "block width the block-level attacks used, or null",
    "baseline_reused": "for a reference row trained through a baseline cache: whether an earlier or parallel run "
                       "had trained it (true) or this run did (false); null without a cache",
}

#: Scorecard fields measured on every kind of copy the attacker may hold (suffix ``_<kind>``
#: for :data:`pbmlib.privacy.copies.COPY_KINDS` other than ``exact``), by name -> meaning.
_PER_COPY_FIELDS = {
    "blocks_verbatim_fraction": "share of original blocks found unchanged at their position in the held set "
                                "(counts coincidences too: see blocks_verbatim_floor)",
    "blocks_verbatim_floor": "the same share for held-out non-members: coincidental equality, the floor of "
                             "blocks_verbatim_fraction",
    "blocks_copied_estimate": "share of original blocks really copied, corrected for coincidence: "
                              "(fraction - floor) / (1 - floor), clipped to [0, 1]",
    "reassembled_ssim_mean": "SSIM to the originals of the seam-matching reassembly of the held set",
    "reid_top1_reassembled": "pixel re-identification of the reassembled images (gallery: the exact originals)",
    **{f"membership_auc{membership_suffix(m)}": f"membership inference AUC, {d} (0.5 = chance; candidates: the "
       f"exact originals and held-out non-members)" for m, d in MEMBERSHIP_METHODS.items()},
    **{f"membership_tpr_at_1pct_fpr{membership_suffix(m)}": f"members detected at 1% false positives, {d}"
       for m, d in MEMBERSHIP_METHODS.items()},
    "reid_top1": "the worst case: the best attack's top-1 re-identification rate (gallery: the exact originals)",
    "reid_top1_attack": "which attack that was",
    **{f"reid_top{k}_{m}": f"top-{k} re-identification with the {m!r} matcher (gallery: the exact originals)"
       for m in MATCHERS for k in (1, 5)},
}

#: Fields of :func:`pbmlib.privacy.scorecard.privacy_scorecard` a study row may carry. Each says what
#: the attacker holds: unsuffixed fields the released images byte for byte; ``_<kind>`` fields a copy of
#: that kind (:data:`pbmlib.privacy.copies.COPY_KINDS`).
SCORECARD_FIELDS = {
    "n_images": "protected training images scored",
    "psnr_mean": "mean PSNR (dB) to the originals", "psnr_floor_mean": "PSNR chance floor (dB)",
    "psnr_excess": "psnr_mean - psnr_floor_mean",
    "reid_chance_top1": "chance rate of naming the right original first (1/N)",
    "reid_chance_top5": "chance rate of the right original in the top 5",
    "inverted_ssim_mean": "SSIM of the learned inversion's reconstructions (of the exact released images)",
    "reid_top1_inverted": "pixel re-identification of the learned inversion's reconstructions",
    **{f"{name}{copy_suffix(kind)}": f"{meaning}; the attacker holds {COPY_KINDS[kind]}"
       for kind in COPY_KINDS for name, meaning in _PER_COPY_FIELDS.items()},
    # attacks designed against a defence (pbmlib.privacy.adaptive), on the exact released images
    **{f"adaptive_membership_auc_{a}": f"membership AUC of the adaptive attack {a!r}" for a in MEMBERSHIP_ATTACKS},
    **{f"adaptive_reid_top1_{a}": f"top-1 re-identification of the adaptive attack {a!r}" for a in REID_ATTACKS},
    "adaptive_membership_auc": "the strongest adaptive membership attack's AUC",
    "adaptive_membership_attack": "which adaptive membership attack that was",
    "adaptive_membership_tpr_at_1pct_fpr": "its members detected at 1% false positives",
    "adaptive_reid_top1": "the strongest adaptive re-identification attack's top-1 rate",
    "adaptive_reid_attack": "which adaptive re-identification attack that was",
    "worst_reid_top1": "the headline: the best top-1 re-identification over every attack that ran (fixed, "
                       "learned inversion, adaptive), the attacker holding the exact released images",
    "worst_reid_attack": "which attack that was",
    "worst_membership_auc": "the headline: the best membership AUC over every attack that ran (exact, robust, "
                            "adaptive), the attacker holding the exact released images",
    "worst_membership_attack": "which attack that was",
    "model_membership_auc": "loss-threshold membership inference on the trained model (originals in training vs "
                            "held out; 0.5 = chance), mean over repeats: what the released model leaks",
    "model_membership_tpr_at_1pct_fpr": "its members detected at 1% false positives, mean over repeats",
}

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
        allowed = set(STUDY_ROW_FIELDS) | set(SCORECARD_FIELDS)
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
    """Write a study's outputs: ``study.csv`` (the table), ``results.json`` (kind ``study``) and,
    with training records, ``training.json`` (every training's record: per-epoch history,
    per-run accuracy, whether it resumed from a backup), ``learning_curves.png`` and ``accuracy.png``.

    Parameters
    ----------
    output_dir : path
    parameters : dict
        The notebook's parameters or the command's options.
    table : DataFrame
        From :func:`pbmlib.learn.studies.run_study`.
    records : dict, optional
        Its training records.

    Returns
    -------
    Path of ``results.json``.
    """
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(out / "study.csv", table.to_csv(index=False).encode())
    figures = []
    if records:
        write_bytes_atomic(out / TRAINING_NAME, (json.dumps(to_json_value(records), indent=1) + "\n").encode())
        from .plotting import save_training_figures

        figures = save_training_figures(records, out, dataset=parameters.get("dataset"),
                                        model=parameters.get("model_name"))
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
