"""Every notebook is paired with its script, declares typed parameters, and runs under papermill,
writing a results.json that matches its kind's schema."""

import json
import shutil
import subprocess
from pathlib import Path

import jupytext
import nbformat
import pandas as pd
import papermill as pm
import pytest

from pbmlib.workbench.results import read_results

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = [p.with_suffix(".ipynb") for p in sorted((ROOT / "notebooks").glob("*.py"))]


def test_the_scripts_are_the_tracked_sources_and_the_notebooks_agree_with_them():
    """git tracks notebooks/*.py and ignores notebooks/*.ipynb, the working copies that
    ensure_notebook writes from them (pytest's session start did it for every script)."""
    assert [nb.stem for nb in NOTEBOOKS] == ["00_explore", "01_mixing", "02_training", "03_augmentation", "04_analysis",
                                             "05_privacy", "06_schemes", "07_frontier"]
    if (ROOT / ".git").exists():
        tracked = subprocess.run(["git", "ls-files", "notebooks"], cwd=ROOT, capture_output=True, text=True,
                                 check=True).stdout.split()
        assert not [t for t in tracked if t.endswith(".ipynb")], "notebooks/*.ipynb are working copies: git rm --cached"
        assert {f"notebooks/{nb.stem}.py" for nb in NOTEBOOKS} <= set(tracked)
        ignored = subprocess.run(["git", "check-ignore", *map(str, NOTEBOOKS)], cwd=ROOT, capture_output=True,
                                 text=True).stdout.split()
        assert len(ignored) == len(NOTEBOOKS)
    for path in NOTEBOOKS:
        script = jupytext.read(path.with_suffix(".py"), fmt="py:percent")
        notebook = nbformat.read(path, as_version=4)
        assert [(c.cell_type, c.source, c.metadata.get("tags", [])) for c in script.cells] == \
            [(c.cell_type, c.source, c.metadata.get("tags", [])) for c in notebook.cells], path.name
        assert notebook.metadata["kernelspec"]["name"] and script.metadata.get("title"), path.name
        assert set(script.metadata) <= {"title", "jupytext"}, f"{path.name}: the script carries Lab's metadata"


def test_ensure_notebook_writes_from_the_script_keeps_outputs_and_leaves_an_agreeing_copy_alone(tmp_path):
    from pbmlib.workbench.notebooks import ensure_notebook

    shutil.copy(ROOT / "jupytext.toml", tmp_path)
    script = tmp_path / "nb.py"
    script.write_text("# ---\n# jupyter:\n#   title: A test\n# ---\n\n# %% tags=[\"parameters\"]\nx: int = 1  # x\n\n"
                      "# %%\nprint(x)\n")
    path = ensure_notebook(tmp_path / "nb.ipynb")
    notebook = nbformat.read(path, as_version=4)
    assert notebook.metadata["kernelspec"]["name"] == "python3" and notebook.metadata["title"] == "A test"
    assert notebook.cells[0].metadata["tags"] == ["parameters"]
    notebook.cells[1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="1\n")]
    notebook.metadata["kernelspec"] = {"name": "mine", "display_name": "Mine", "language": "python"}
    nbformat.write(notebook, path)
    stamp = path.stat().st_mtime_ns
    assert ensure_notebook(path) == path and path.stat().st_mtime_ns == stamp  # agrees: not touched
    script.write_text(script.read_text() + "\n# %%\nprint(2 * x)\n")  # the script changed (e.g. git pull)
    rewritten = nbformat.read(ensure_notebook(path), as_version=4)
    assert [c.source for c in rewritten.cells] == ["x: int = 1  # x", "print(x)", "print(2 * x)"]
    assert rewritten.cells[1].outputs[0]["text"] == "1\n"  # outputs of unchanged cells kept
    assert rewritten.metadata["kernelspec"]["name"] == "mine"  # and the kernel Lab picked
    own = tmp_path / "own.ipynb"  # a notebook without a script is not ours to write
    assert ensure_notebook(own) == own and not own.exists()


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
    return out, read_results(out / "results.json")


def rows_by_setting(results):
    return {row["setting"]: row for row in results["rows"]}


@pytest.mark.slow
def test_mixing_notebook(tmp_path):
    out, results = execute("01_mixing", tmp_path, block_height=5, block_width=1, n_images=40, rounds=2)
    assert results["kind"] == "mixing"
    assert results["parameters"]["block_height"] == 5 and results["n_blocks"] == 125
    assert results["n_images"] == 40
    assert 0 < results["ssim_floor_mean"] < 1 and 0 < results["ssim_mean"] < 1
    assert results["ssim_excess"] == pytest.approx(results["ssim_mean"] - results["ssim_floor_mean"])
    assert results["blocks_kept_fraction"] == pytest.approx(0.25, abs=0.05)
    assert results["log10_restoration_probability"] < -1000
    assert (out / "mixing_examples.png").stat().st_size > 10_000
    assert (out / "ssim_per_class.csv").read_text().startswith("class,ssim_mean")


@pytest.mark.slow
def test_training_notebook(tmp_path):
    out, results = execute("02_training", tmp_path, epochs=1, repeats=1, block_height=5, block_width=5)
    rows = rows_by_setting(results)
    assert set(rows) == {"none", "pbm block=5x5"} and rows["none"]["reference"]
    assert rows["none"]["accuracy_drop"] == 0
    mixed = rows["pbm block=5x5"]
    assert mixed["n_blocks"] == 25 and 0 <= mixed["test_accuracy_mean"] <= 1
    assert mixed["accuracy_drop"] == pytest.approx(100 * (rows["none"]["test_accuracy_mean"]
                                                          - mixed["test_accuracy_mean"]))
    assert {"learning_curves.png", "accuracy.png", "study.csv"} <= {p.name for p in out.iterdir()}


@pytest.mark.slow
def test_augmentation_notebook(tmp_path):
    out, results = execute("03_augmentation", tmp_path, epochs=1, repeats=1, block_height=5, block_width=5)
    rows = rows_by_setting(results)
    assert set(rows) == {"pbm block=5x5", "pbm block=5x5 +augment"}
    assert rows["pbm block=5x5 +augment"]["augment"] == "offline" and rows["pbm block=5x5"]["augment"] is None
    # the same mixed set under both conditions
    assert rows["pbm block=5x5"]["ssim_mean"] == rows["pbm block=5x5 +augment"]["ssim_mean"]
    assert {"learning_curves.png", "accuracy.png", "augmentation_examples.png", "study.csv"} <= {
        p.name for p in out.iterdir()}


@pytest.mark.slow
def test_privacy_notebook(tmp_path):
    out, results = execute("05_privacy", tmp_path, pbm_blocks=[[5, 5]], baselines=[{"scheme": "blur", "sigma": 1.0}],
                           matchers=["pixel", "blocks"], inversion=False, epochs=1, repeats=1, copies=["exact"], n_splits=2,
                           shadow_releases=2)
    rows = rows_by_setting(results)
    assert list(rows) == ["none", "pbm block=5x5", "blur sigma=1.0"]
    assert rows["none"]["worst_reid_top1"] == 1.0
    assert rows["pbm block=5x5"]["worst_reid_top1"] > 0.9  # identical blocks give the faces away
    assert rows["pbm block=5x5"]["worst_membership_auc"] > 0.95
    for row in rows.values():  # every figure with its interval
        assert row["worst_reid_top1_low"] <= row["worst_reid_top1"] <= row["worst_reid_top1_high"]
    assert 0 < rows["pbm block=5x5"]["blocks_verbatim_fraction"] < 1
    assert rows["pbm block=5x5"]["log10_restoration_probability"] < -1000
    assert rows["blur sigma=1.0"]["log10_restoration_probability"] is None
    assert all(row["test_accuracy_mean"] is not None for row in rows.values())
    assert {"privacy_utility.png", "schemes_examples.png", "study.csv", "membership_roc.png"} <= {
        p.name for p in out.iterdir()}


@pytest.mark.slow
def test_schemes_notebook(tmp_path):
    schemes = [{"scheme": "none"}, {"scheme": "pbm", "block": [6, 6]}, {"scheme": "visualmixer"},
               {"scheme": "pixel_encryption"}, {"scheme": "block_encryption"}]
    out, results = execute("06_schemes", tmp_path, schemes=schemes, matchers=["pixel", "invariant", "mosaic"],
                           inversion=False, epochs=1, repeats=1, copies=["exact"])
    rows = {row["scheme"]: row for row in results["rows"]}
    assert set(rows) == {"none", "pbm", "visualmixer", "pixel_encryption", "block_encryption"}
    assert rows["none"]["accuracy_drop"] == 0
    assert rows["pixel_encryption"]["worst_reid_top1"] == 1.0  # the invariants give every face away
    assert rows["visualmixer"]["worst_reid_top1"] > 0.9
    attacks = pd.read_csv(out / "attacks.csv")
    assert {"invariant", "mosaic"} <= set(attacks["attack"])  # the named matchers ran
    assert {"privacy_utility.png", "schemes_examples.png", "study.csv"} <= {p.name for p in out.iterdir()}


@pytest.mark.slow
def test_frontier_notebook(tmp_path):
    schemes = [{"scheme": "none"}, {"scheme": "pbm", "block": [5, 5]}, {"scheme": "dppix", "epsilon": 0.1, "cell": 5},
               {"scheme": "pbm_noise", "block": [5, 5], "sigma": 32.0}]
    out, results = execute("07_frontier", tmp_path, schemes=schemes, matchers=["pixel", "blocks", "blocks_robust"],
                           epochs=1, repeats=2, n_splits=2, inversion=False, copies=["exact"], shadow_releases=2,
                           shadow_models=4)
    rows = rows_by_setting(results)
    assert list(rows) == ["none", "pbm block=5x5", "dppix epsilon=0.1", "pbm_noise sigma=32.0"]
    for row in rows.values():  # both privacy axes and the utility, with the attack named
        assert row["worst_reid_attack"] and row["worst_membership_attack"]
        assert 0 <= row["model_membership_auc"] <= 1 and row["test_accuracy_std"] is not None
        assert row["model_membership_attack"] == "LiRA online" and row["model_membership_shadows"] == 4
    # the attacks that know the published noise beat the fixed matchers on the noise defence
    attacks = pd.read_csv(out / "attacks.csv")
    noise = attacks[(attacks["setting"] == "pbm_noise sigma=32.0") & (attacks["task"] == "reid")]
    fixed = noise[noise["attack"].isin(["pixel", "blocks", "blocks_robust"])]["evaluation"].max()
    assert rows["pbm_noise sigma=32.0"]["worst_reid_top1"] > fixed
    assert rows["dppix epsilon=0.1"]["worst_reid_top1"] < 0.5  # strong noise: the faces are not named
    assert {"frontier_reid.png", "frontier_membership.png", "frontier_model_membership.png",
            "model_membership_roc.png"} <= {
        p.name for p in out.iterdir()}


@pytest.mark.slow
def test_sweep_runs_training_and_analysis_then_skips_finished_runs(tmp_path):
    import yaml

    from pbmlib.workbench.results import collect_results
    from pbmlib.workbench.sweeps import run_sweep

    stages = [
        {"name": "mixing", "notebook": str(ROOT / "notebooks" / "01_mixing.ipynb"),
         "parameters": {"dataset": "faces", "n_images": 40},
         "grid": {"block_height,block_width": [[5, 5], [1, 1]]}},
        {"name": "training", "notebook": str(ROOT / "notebooks" / "02_training.ipynb"),
         "parameters": {"dataset": "faces", "epochs": 1, "repeats": 1}, "grid": {"block_width": [5, 1]}},
    ]
    config = tmp_path / "mini.yaml"
    config.write_text(yaml.safe_dump({"name": "mini", "output_root": str(tmp_path / "runs"), "workers": 1,
                                      "stages": stages,
                                      "analysis": str(ROOT / "notebooks" / "04_analysis.ipynb")}))
    first = run_sweep(config, progress=False)
    sweep_dir = Path(first["sweep_dir"])
    assert len(first["finished"]) == 4 and first["failed"] == {} and first["skipped"] == []
    training = read_results(sweep_dir / "training__block_width-5" / "results.json")
    assert [row["setting"] for row in training["rows"]] == ["none", "pbm block=5x5"]
    assert (sweep_dir / "training__block_width-5" / "02_training.ipynb").exists()  # the executed notebook
    analysis = read_results(sweep_dir / "analysis" / "results.json")
    assert analysis["n_runs"] == 4 and analysis["n_study_rows"] == 4
    assert {"accuracy_vs_blocks_training.png", "ssim_vs_blocks.png"} <= set(analysis["figures"])
    reused = [read_results(sweep_dir / f"training__block_width-{w}" / "results.json")["rows"][0]["baseline_reused"]
              for w in (5, 1)]
    assert sorted(reused) == [False, True]  # the original trained once, by the first run
    assert len(list((sweep_dir / "baselines").glob("*.json"))) == 1
    tables = collect_results(sweep_dir)
    assert set(tables["mixing"]["stage"]) == {"mixing"} and len(tables["mixing"]) == 2
    assert set(tables["study"]["stage"]) == {"training"} and len(tables["study"]) == 4

    stamp = (sweep_dir / "training__block_width-5" / "results.json").stat().st_mtime_ns
    second = run_sweep(config, progress=False, analysis=False)
    assert second["finished"] == [] and len(second["skipped"]) == 4
    assert (sweep_dir / "training__block_width-5" / "results.json").stat().st_mtime_ns == stamp


def test_what_jupyterlab_saves_does_not_reach_the_tracked_script():
    """What JupyterLab adds on save (outputs, counts, cell and notebook metadata, another kernel)
    stays in the ignored .ipynb: jupytext writes the tracked script back byte for byte. The
    real-browser version (Lab in Chromium, run, save, git status) is in test_browser.py."""
    from jupytext.config import find_jupytext_configuration_file, load_jupytext_configuration_file

    for path in NOTEBOOKS:
        saved = nbformat.read(path, as_version=4)
        for i, cell in enumerate(saved.cells):
            cell.metadata.update({"execution": {"iopub.status.busy": "2026-01-01T00:00:00"}, "scrolled": True})
            if cell.cell_type == "code":
                cell.execution_count = i
                cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="trained\n")]
        saved.metadata["kernelspec"] = {"name": "pbm-venv", "display_name": "Python (pbm)", "language": "python"}
        saved.metadata["language_info"] = {"name": "python", "version": "3.11.7"}
        saved.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
        config = load_jupytext_configuration_file(find_jupytext_configuration_file(str(path.parent)))
        assert jupytext.writes(saved, fmt="py:percent", config=config) == path.with_suffix(".py").read_text(), path


@pytest.mark.slow
def test_a_training_killed_with_its_sweep_resumes_from_its_last_epoch(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    import yaml

    from pbmlib.workbench.sweeps import run_sweep

    stage = {"name": "training", "notebook": str(ROOT / "notebooks" / "02_training.ipynb"),
             "parameters": {"dataset": "faces", "epochs": 25, "repeats": 1, "block_height": 5, "block_width": 5}}
    config = tmp_path / "resume.yaml"
    config.write_text(yaml.safe_dump({"name": "resume", "output_root": str(tmp_path / "runs"), "workers": 1,
                                      "stages": [stage]}))
    history = tmp_path / "runs" / "resume" / ".work" / "training" / "backup" / "split_0" / "none" / "run_0" / "history.json"
    sweep = subprocess.Popen([sys.executable, "-m", "pbmlib.workbench.cli", "sweep", str(config), "--quiet",
                              "--no-analysis"], start_new_session=True, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 240
        while not (history.exists() and len(json.loads(history.read_text())["history"]) >= 3):
            assert time.time() < deadline and sweep.poll() is None, "the training never got to epoch 3"
            time.sleep(0.2)
    finally:
        os.killpg(sweep.pid, signal.SIGKILL)
        sweep.wait()
    done = len(json.loads(history.read_text())["history"])
    summary = run_sweep(config, progress=False, analysis=False)
    assert summary["finished"] == ["training"]
    records = json.loads((Path(summary["sweep_dir"]) / "training" / "training.json").read_text())
    resumed = records["none"]["runs"][0]
    assert resumed["resumed_from_epoch"] >= done >= 3  # it went on from the backup, not from scratch
    assert [h["epoch"] for h in resumed["history"]] == list(range(1, 26))
    assert not (Path(summary["sweep_dir"]) / ".work").exists()  # the backup goes once the run finished


@pytest.mark.skipif(not (ROOT / ".git").exists(), reason="needs a git checkout to copy")
def test_a_sweep_on_a_fresh_clone_writes_the_notebooks_it_names(tmp_path, monkeypatch):
    """A fresh clone has no .ipynb: the sweep writes the working copies of the shipped notebooks it
    names from their scripts, and finds them."""
    import sys

    sys.path.insert(0, str(ROOT / "scripts"))
    from browser_check import clean_copy

    from pbmlib.workbench.sweeps import load_sweep

    clone = clean_copy(ROOT, tmp_path / "clone")
    assert not list((clone / "notebooks").glob("*.ipynb"))
    monkeypatch.chdir(clone)
    config = load_sweep("sweeps/default.yaml")
    assert Path(config["analysis"]) == clone / "notebooks" / "04_analysis.ipynb"
    assert all(Path(stage["notebook"]).is_file() for stage in config["stages"])
