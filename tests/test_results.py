"""results.json: one schema per kind, strict JSON, checked on write and on read."""

import json

import numpy as np
import pandas as pd
import pytest

from pbmlib.workbench.results import STUDY_ROW_FIELDS, collect_results, read_results, write_results


def study_row(**overrides):
    row = dict.fromkeys(STUDY_ROW_FIELDS)
    row.update(setting="none", scheme="none", reference=True, n_train=10, n_test=5, ssim_mean=1.0)
    row.update(overrides)
    return row


MIXING = dict(n_blocks=25, n_images=40, image_shape=[25, 25], ssim_mean=0.4, ssim_std=0.1, ssim_floor_mean=0.2,
              ssim_excess=0.2, blocks_kept_fraction=0.5, mix_seconds=0.01, log10_restoration_probability=-10.0,
              class_sizes={"a": 20, "b": 20})


def test_nan_and_numpy_values_become_strict_json(tmp_path):
    path = write_results(tmp_path, "study", {"seed": np.int64(0)},
                         rows=pd.DataFrame([study_row(test_accuracy_std=float("nan"), n_blocks=np.int64(25))]))
    text = path.read_text()
    assert "NaN" not in text
    document = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict JSON token {c}"))
    assert document["kind"] == "study" and document["parameters"] == {"seed": 0}
    assert document["rows"][0]["test_accuracy_std"] is None and document["rows"][0]["n_blocks"] == 25
    assert read_results(path)["rows"] == document["rows"]


def test_unknown_or_missing_fields_fail_loudly(tmp_path):
    with pytest.raises(ValueError, match="undocumented field.*ssim_meen"):
        write_results(tmp_path, "mixing", {}, **{**MIXING, "ssim_meen": 0.4})
    with pytest.raises(ValueError, match="miss field.*ssim_mean"):
        write_results(tmp_path, "mixing", {}, **{k: v for k, v in MIXING.items() if k != "ssim_mean"})
    with pytest.raises(ValueError, match="row 0 misses field.*test_accuracy_mean"):
        write_results(tmp_path, "study", {}, rows=[{k: v for k, v in study_row().items()
                                                    if k != "test_accuracy_mean"}])
    with pytest.raises(ValueError, match="unknown results kind"):
        write_results(tmp_path, "trainnig", {})
    assert not (tmp_path / "results.json").exists()


def test_reading_a_renamed_field_names_the_file(tmp_path):
    path = write_results(tmp_path, "mixing", {}, **MIXING)
    document = json.loads(path.read_text())
    document["ssim_avg"] = document.pop("ssim_mean")
    path.write_text(json.dumps(document))
    with pytest.raises(ValueError, match=f"{tmp_path}.*miss field.*ssim_mean"):
        read_results(path)


def fake_run(sweep_dir, run_id, stage, kind, parameters, **fields):
    run = sweep_dir / run_id
    write_results(run, kind, parameters, **fields)
    (run / "run.json").write_text(json.dumps({"run_id": run_id, "stage": stage}))


def test_collect_results_reads_every_kind_by_stage(tmp_path):
    fake_run(tmp_path, "mixing__a", "mixing", "mixing", {"dataset": "faces", "output_dir": "x"}, **MIXING)
    for run_id, stage in (("privacy", "privacy"), ("schemes", "schemes")):  # 05 and 06 alike
        fake_run(tmp_path, run_id, stage, "study", {"seed": 0},
                 rows=[study_row(), study_row(setting="pbm block=5x5", scheme="pbm", reference=False, n_blocks=25,
                                              worst_reid_top1=0.9, worst_reid_attack="blocks")])
    write_results(tmp_path / ".work" / "half", "mixing", {}, **MIXING)  # unfinished: no run.json
    tables = collect_results(tmp_path)
    assert len(tables["mixing"]) == 1 and "output_dir" not in tables["mixing"]
    assert tables["mixing"]["dataset"].tolist() == ["faces"]
    study = tables["study"]
    assert len(study) == 4 and set(study["stage"]) == {"privacy", "schemes"}
    assert study.loc[study["scheme"] == "pbm", "worst_reid_top1"].tolist() == [0.9, 0.9]


def test_relative_output_paths_resolve_against_the_checkout(tmp_path, monkeypatch):
    from pbmlib.workbench.results import project_path

    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "notebooks")  # JupyterLab's working directory for a notebook
    assert project_path("papermill_runs/manual/x") == tmp_path / "papermill_runs" / "manual" / "x"
    assert project_path(tmp_path / "abs") == tmp_path / "abs"
    monkeypatch.chdir(tmp_path.parent)  # outside any checkout: the working directory
    assert project_path("out") == tmp_path.parent / "out"


def test_a_sweep_without_studies_gives_empty_tables_with_their_columns(tmp_path):
    from pbmlib.workbench import analysis

    fake_run(tmp_path, "mixing__a", "mixing", "mixing", {"dataset": "faces"}, **MIXING)
    study = collect_results(tmp_path)["study"]
    assert study.empty and {"stage", "model_name", "test_accuracy_mean"} <= set(study.columns)
    assert analysis.mixed_vs_reference(study).groupby("stage").ngroups == 0
    assert analysis.frontier(study).empty and analysis.augmentation_gain(study).empty


def test_the_tables_for_a_reader_carry_every_interval_and_decision():
    from pbmlib.workbench.analysis import markdown_table, privacy_table, target_table

    row = {"stage": "s", "setting": "pbm block=5x5", "ssim_mean": 0.4, "ssim_floor_mean": 0.2,
           "test_accuracy_mean": 0.85, "test_accuracy_std": 0.03, "repeats": 2,
           "accuracy_drop": 12.8, "accuracy_drop_low": 9.3, "accuracy_drop_high": 16.7,
           "worst_reid_top1": 0.78, "worst_reid_top1_low": 0.75, "worst_reid_top1_high": 0.81,
           "worst_reid_attack": "likelihood assignment", "reid_chance_top1": 0.015,
           "worst_membership_auc": 0.87, "worst_membership_auc_low": 0.85, "worst_membership_auc_high": 0.89,
           "worst_membership_attack": "likelihood", "worst_reid_top1_jpeg75": 0.5, "worst_reid_top1_jpeg75_low": 0.4,
           "worst_reid_top1_jpeg75_high": 0.6, "worst_membership_auc_jpeg75": 0.7,
           "worst_membership_auc_jpeg75_low": 0.65, "worst_membership_auc_jpeg75_high": 0.75,
           "blocks_verbatim_fraction": 0.7, "blocks_verbatim_floor": 0.01, "log10_restoration_probability": -3527.0,
           "model_membership_auc": 0.61, "model_membership_auc_low": 0.6, "model_membership_auc_high": 0.63,
           "model_membership_attack": "LiRA online", "model_membership_low_fpr": 0.001,
           "model_membership_tpr_at_low_fpr": 0.02, "model_membership_tpr_at_low_fpr_low": 0.01,
           "model_membership_tpr_at_low_fpr_high": 0.03, "membership_target": "not met", "reid_target": "not met",
           "cost_target": "not met", "meets_target": "not met"}
    target = markdown_table(target_table(pd.DataFrame([row])))
    for text in ("12.8 [9.3, 16.7]", "0.78 [0.75, 0.81] (0.015; likelihood assignment)", "0.87 [0.85, 0.89]",
                 "0.61 [0.60, 0.63]", "0.020 [0.010, 0.030] at 0.1 %", "not met / not met / not met"):
        assert text in target
    privacy = markdown_table(privacy_table(pd.DataFrame([row])))
    for text in ("0.780 [0.750, 0.810] (0.015)", "0.870 [0.850, 0.890]", "0.50 [0.40, 0.60] / 0.70 [0.65, 0.75]",
                 "70.0% (1.0%)", "-3527.0", "0.850 ± 0.030"):
        assert text in privacy
