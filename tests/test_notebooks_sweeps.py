"""The notebooks run under papermill, and a sweep of them feeds the analysis (sweep mechanics: test_sweeps.py)."""

import json
from pathlib import Path

import jupytext
import nbformat
import papermill as pm
import pytest
import yaml

from pbmlib.workbench.sweeps import collect_results, load_sweep, plan_runs, run_sweep

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_every_notebook_has_a_paired_script_that_agrees():
    assert [nb.stem for nb in NOTEBOOKS] == ["00_explore", "01_mixing", "02_training", "03_augmentation", "04_analysis",
                                             "05_privacy", "06_schemes"]
    for path in NOTEBOOKS:
        script = jupytext.read(path.with_suffix(".py"))
        notebook = nbformat.read(path, as_version=4)
        pairs = list(zip(script.cells, notebook.cells))
        assert len(script.cells) == len(notebook.cells), path.name
        for a, b in pairs:
            assert (a.cell_type, a.source) == (b.cell_type, b.source), f"{path.name}: run jupytext --sync"
            assert a.metadata.get("tags", []) == b.metadata.get("tags", [])
        assert all(not c.get("outputs") for c in notebook.cells if c.cell_type == "code"), "commit without outputs"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_parameters_cell_is_typed_and_documented(path):
    tagged = [c for c in nbformat.read(path, as_version=4).cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    params = pm.inspect_notebook(str(path))
    if path.stem != "00_explore":  # the interactive explorer writes no results
        assert "output_dir" in params
    for name, info in params.items():
        assert info["inferred_type_name"] != "None", f"{path.name}: {name} has no type"
        assert info["help"], f"{path.name}: {name} has no help comment"


def execute(name, tmp_path, **params):
    out = tmp_path / name
    out.mkdir()
    pm.execute_notebook(str(ROOT / "notebooks" / f"{name}.ipynb"), str(out / f"{name}.ipynb"),
                        parameters={**params, "output_dir": str(out)}, progress_bar=False, cwd=str(tmp_path))
    return out, json.loads((out / "results.json").read_text())


def test_mixing_notebook(tmp_path):
    out, results = execute("01_mixing", tmp_path, block_height=5, block_width=1, n_images=40, rounds=2)
    assert results["parameters"]["block_height"] == 5 and results["n_blocks"] == 125
    assert results["n_images"] == 40
    assert 0 < results["ssim_floor_mean"] < 1 and 0 < results["ssim_mean"] < 1
    assert results["ssim_excess"] == pytest.approx(results["ssim_mean"] - results["ssim_floor_mean"])
    assert results["blocks_kept_fraction"] == pytest.approx(0.25, abs=0.05)
    assert results["log10_restoration_probability"] < -1000
    assert (out / "mixing_examples.png").stat().st_size > 10_000
    assert (out / "ssim_per_class.csv").read_text().startswith("class,ssim_mean")


def test_augmentation_notebook(tmp_path):
    out, results = execute("03_augmentation", tmp_path, epochs=1, repeats=1, block_height=5, block_width=5)
    assert 0 <= results["test_accuracy"] <= 1 and "augmentation_gain" in results
    assert {"learning_curves.png", "accuracy.png", "augmentation_examples.png", "comparison.csv"} <= {
        p.name for p in out.iterdir()}


def test_privacy_notebook(tmp_path):
    out, results = execute("05_privacy", tmp_path, pbm_blocks=[[5, 5]], baselines=[{"scheme": "blur", "sigma": 1.0}],
                           matchers=["pixel", "blocks"], inversion=False, epochs=1, repeats=1)
    assert results["settings"] == ["none", "pbm block=5x5", "blur sigma=1.0"]
    assert results["reid_top1"]["none"] == 1.0
    assert results["reid_top1"]["pbm block=5x5"] > 0.9  # identical blocks give the faces away
    assert results["membership_auc"]["pbm block=5x5"] > 0.95
    assert 0 < results["blocks_verbatim_fraction"]["pbm block=5x5"] < 1
    assert results["log10_restoration_probability"]["pbm block=5x5"] < -1000
    assert set(results["test_accuracy"]) == set(results["settings"])
    assert {"privacy_utility.png", "schemes_examples.png", "scorecard.csv"} <= {p.name for p in out.iterdir()}


def test_schemes_notebook(tmp_path):
    schemes = [{"scheme": "none"}, {"scheme": "pbm", "block": [6, 6]}, {"scheme": "visualmixer"},
               {"scheme": "pixel_encryption"}, {"scheme": "block_encryption"}]
    out, results = execute("06_schemes", tmp_path, schemes=schemes, matchers=["pixel", "invariant", "mosaic"],
                           inversion=False, epochs=1, repeats=1)
    assert {"none", "pbm", "visualmixer", "pixel_encryption", "block_encryption"} <= set(results)
    assert results["none"]["accuracy_drop"] == 0
    assert results["pixel_encryption"]["reid_top1_attack"] == "invariant"
    assert results["pixel_encryption"]["reid_top1"] == 1.0  # the invariant gives every face away
    assert results["visualmixer"]["reid_top1"] > 0.5  # the window means: 0.70 measured, chance 0.007
    assert {"privacy_utility.png", "schemes_examples.png", "schemes.csv"} <= {p.name for p in out.iterdir()}


def write_config(tmp_path, stages, name="mini", analysis=True):
    config = {"name": name, "output_root": str(tmp_path / "runs"), "workers": 1, "stages": stages}
    if analysis:
        config["analysis"] = str(ROOT / "notebooks" / "04_analysis.ipynb")
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_sweep_runs_training_and_analysis_then_skips_finished_runs(tmp_path):
    stages = [
        {"name": "mixing", "notebook": str(ROOT / "notebooks" / "01_mixing.ipynb"),
         "parameters": {"dataset": "faces", "n_images": 40},
         "grid": {"block_height,block_width": [[5, 5], [1, 1]]}},
        {"name": "training", "notebook": str(ROOT / "notebooks" / "02_training.ipynb"),
         "parameters": {"dataset": "faces", "epochs": 1, "repeats": 1}, "grid": {"block_width": [5]}},
    ]
    config = write_config(tmp_path, stages)
    first = run_sweep(config, progress=False)
    sweep_dir = Path(first["sweep_dir"])
    assert sorted(first["finished"]) == ["mixing__block_height-1__block_width-1",
                                         "mixing__block_height-5__block_width-5", "training__block_width-5"]
    assert first["failed"] == {} and first["skipped"] == []
    training = json.loads((sweep_dir / "training__block_width-5" / "results.json").read_text())
    assert 0 <= training["test_accuracy"] <= 1 and 0 <= training["test_accuracy_original"] <= 1
    assert (sweep_dir / "training__block_width-5" / "02_training.ipynb").exists()  # the executed notebook
    analysis = json.loads((sweep_dir / "analysis" / "results.json").read_text())
    assert analysis["n_runs"] == 3 and analysis["n_training_runs"] == 1 and analysis["n_privacy_settings"] == 0
    assert {"accuracy_vs_blocks.png", "ssim_vs_blocks.png"} <= set(analysis["figures"])
    frame = collect_results(sweep_dir)
    assert set(frame["stage"]) == {"mixing", "training"} and len(frame) == 3

    stamp = (sweep_dir / "training__block_width-5" / "results.json").stat().st_mtime_ns
    second = run_sweep(config, progress=False, analysis=False)
    assert second["finished"] == [] and len(second["skipped"]) == 3
    assert (sweep_dir / "training__block_width-5" / "results.json").stat().st_mtime_ns == stamp

