"""Sweep mechanics: config checks, resuming, stale runs, paths kept inside the sweep folder, the lock, records.

The runs use a tiny notebook written into ``tmp_path`` (a kernel start each, no training);
the shipped notebooks are only inspected, never run, here.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import jupytext
import nbformat
import pytest
import yaml

from pbmlib.workbench import sweeps
from pbmlib.workbench.cli import main
from pbmlib.workbench.sweeps import Run, SweepLockedError, is_finished, load_sweep, plan_runs, run_sweep

ROOT = Path(__file__).resolve().parents[1]
MIXING = ROOT / "notebooks" / "01_mixing.ipynb"

TINY_NOTEBOOK = '''
# %% tags=["parameters"]
delay: float = 0.0  # seconds to sleep
value: int = 0  # a number to record
output_dir: str = "."  # where results go

# %%
import json
import pathlib
import time

if delay < 0:
    raise ValueError("negative delay")
time.sleep(delay)
results = {"parameters": {"delay": delay, "value": value, "output_dir": output_dir}, "slept": delay}
pathlib.Path(output_dir, "results.json").write_text(json.dumps(results))
'''


def tiny_notebook(folder, source=TINY_NOTEBOOK, name="tiny.ipynb"):
    path = Path(folder) / name
    notebook = jupytext.reads(source, fmt="py:percent")
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, path)
    return path


def write_config(tmp_path, stages, name="mini", **extra):
    config = {"name": name, "output_root": str(tmp_path / "runs"), "workers": 1, "stages": stages, **extra}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def tiny_stage(tmp_path, **stage):
    return {"name": "s", "notebook": str(tiny_notebook(tmp_path)), **stage}


def read(path):
    return json.loads(Path(path).read_text())


# ----------------------------------------------------------------------------- config errors: one line, exit 2

BAD_CONFIGS = {
    "yaml syntax": ("name: x\nstages: [\n  {name: a\n", ["line 4", "invalid YAML"]),
    "yaml tab": ("name: x\nstages:\n\t- name: a\n", ["line 3", "invalid YAML"]),
    "duplicate key": ("name: x\nworkers: 1\nworkers: 2\nstages: []\n", ["line 3", "given twice", "line 2"]),
    "empty file": ("", ["empty"]),
    "not a mapping": ("- a\n- b\n", ["expected a mapping"]),
    "null stages": ("name: x\nstages:\n", ["stages must be a non-empty list"]),
    "stage not a mapping": ("name: x\nstages: [5]\n", ["stage 1", "expected a mapping"]),
    "notebook 5": ("name: x\nstages:\n  - {name: a, notebook: 5}\n", ["stage 'a'", "notebook must be the path"]),
    "notebook missing": ("name: x\nstages:\n  - {name: a, notebook: nowhere.ipynb}\n",
                         ["stage 'a'", "'nowhere.ipynb' not found"]),
    "notebook not ipynb": ("name: x\nstages:\n  - {name: a, notebook: a.py}\n", ["must be an .ipynb"]),
    "workers abc": ("name: x\nworkers: abc\nstages:\n  - {name: a, notebook: NB}\n",
                    ["workers must be a whole number", "'abc'"]),
    "workers 0": ("name: x\nworkers: 0\nstages:\n  - {name: a, notebook: NB}\n", ["workers must be"]),
    "unknown key": ("name: x\nworker: 2\nstages:\n  - {name: a, notebook: NB}\n",
                    ["unknown key 'worker'", "did you mean 'workers'"]),
    "grid not a mapping": ("name: x\nstages:\n  - {name: a, notebook: NB, grid: [1, 2]}\n",
                           ["grid must be a mapping"]),
    "grid values not a list": ("name: x\nstages:\n  - {name: a, notebook: NB, grid: {delay: 1}}\n",
                               ["grid entry 'delay' must be a non-empty list"]),
    "zipped widths": ("name: x\nstages:\n  - {name: a, notebook: NB, grid: {'delay,value': [[1]]}}\n",
                      ["lists of 2 values"]),
    "missing stages": ("name: x\n", ["missing 'stages'"]),
    "output_root null": ("name: x\noutput_root: null\nstages:\n  - {name: a, notebook: NB}\n",
                         ["output_root must be the path"]),
}


@pytest.mark.parametrize("case", list(BAD_CONFIGS))
def test_config_errors_are_one_line_naming_the_file_with_exit_2(tmp_path, capsys, monkeypatch, case):
    monkeypatch.chdir(tmp_path)
    notebook = tiny_notebook(tmp_path)
    text, expected = BAD_CONFIGS[case]
    config = tmp_path / "bad.yaml"
    config.write_text(text.replace("NB", str(notebook)))
    assert main(["sweep", str(config), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith("pbm sweep: error: ") and "bad.yaml" in err, err
    for fragment in expected:
        assert fragment in err, (fragment, err)
    assert not (tmp_path / "papermill_runs").exists()


def test_missing_config_file_and_no_config_argument(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a sweeps/default.yaml here would have been run before
    (tmp_path / "sweeps").mkdir()
    (tmp_path / "sweeps" / "default.yaml").write_text("name: x\nstages:\n  - {name: a, notebook: NB}\n".replace(
        "NB", str(tiny_notebook(tmp_path))))
    with pytest.raises(SystemExit) as exit_info:
        main(["sweep"])
    assert exit_info.value.code == 2 and "config" in capsys.readouterr().err
    assert not (tmp_path / "papermill_runs").exists()
    assert main(["sweep", "nowhere.yaml"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("pbm sweep: error: nowhere.yaml: no such sweep config; pass the path of a YAML file such as "
                   "sweeps/default.yaml")
    assert main(["sweep", str(tmp_path / "sweeps" / "default.yaml"), "--workers", "0"]) == 2
    assert "--workers must be 1 or more" in capsys.readouterr().err


def test_check_sweep_errors_name_the_stage_and_key(tmp_path):
    notebook = str(tiny_notebook(tmp_path))
    good = {"name": "x", "stages": [{"name": "a", "notebook": notebook, "grid": {"delay": [0.0]}}]}
    assert sweeps.check_sweep(good)["workers"] == 1
    with pytest.raises(ValueError, match=r"stage 'a': parameter 'delay' is given twice"):
        sweeps.check_sweep({**good, "stages": [{**good["stages"][0], "parameters": {"delay": 1.0}}]})
    with pytest.raises(ValueError, match=r"parameters: delay: \(1, 2\) is a tuple.*use a list"):
        sweeps.check_sweep({**good, "stages": [{"name": "a", "notebook": notebook, "parameters": {"delay": (1, 2)}}]})
    with pytest.raises(ValueError, match=r"stage 'a': two stages have this name"):
        sweeps.check_sweep({**good, "stages": good["stages"] * 2})
    with pytest.raises(ValueError, match=r"^workers must be a whole number"):
        run_sweep(good, workers=0, progress=False)
    with pytest.raises(ValueError, match=r"analysis: .* declares no 'sweep_dir'"):
        sweeps.check_sweep({**good, "analysis": notebook})


# ----------------------------------------------------------------------------- parameter names

def test_unknown_parameter_name_fails_before_the_sweep_starts(tmp_path):
    config = {"name": "x", "output_root": str(tmp_path / "runs"),
              "stages": [{"name": "mixing", "notebook": str(MIXING), "grid": {"block_heigth": [1, 5]}}]}
    with pytest.raises(ValueError) as info:
        run_sweep(config, progress=False)
    message = str(info.value)
    assert "stage 'mixing': grid key 'block_heigth' is not a parameter of" in message
    assert "(did you mean 'block_height'?)" in message
    assert "it declares dataset, image_size, block_height, block_width" in message and "\n" not in message
    config["stages"][0] = {"name": "mixing", "notebook": str(MIXING), "parameters": {"n_donor": 3}}
    with pytest.raises(ValueError, match=r"parameter 'n_donor' is not a parameter of .*did you mean 'n_donors'"):
        run_sweep(config, progress=False)
    assert not (tmp_path / "runs").exists()


def test_unknown_parameter_of_a_runnable_notebook_is_not_run_with_the_default(tmp_path):
    config = write_config(tmp_path, [tiny_stage(tmp_path, grid={"valeu": [1, 2]})])
    with pytest.raises(ValueError, match=r"grid key 'valeu' is not a parameter of .*did you mean 'value'"):
        run_sweep(config, progress=False)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("key", ["x = 1\nimport pathlib; pathlib.Path('PWNED').touch()\ny", "delay; import os",
                                 "delay, x=1", "__import__('os')", "class", "output_dir"])
def test_parameter_names_are_identifiers_never_code(tmp_path, monkeypatch, key):
    monkeypatch.chdir(tmp_path)
    config = {"name": "x", "output_root": str(tmp_path / "runs"),
              "stages": [tiny_stage(tmp_path, grid={key: [1]})]}
    with pytest.raises(ValueError, match=r"stage 's': grid key") as info:
        run_sweep(config, progress=False)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "PWNED").exists() and not (tmp_path / "runs").exists()


# ----------------------------------------------------------------------------- paths stay inside the sweep folder

@pytest.mark.parametrize("name", ["../vp", "..", "ABSOLUTE", "a/b", "", ".hidden", "x" * 101, 5, None])
def test_sweep_name_must_be_a_plain_folder_name(tmp_path, name):
    name = str(tmp_path / "abs") if name == "ABSOLUTE" else name
    victim = tmp_path / "vp" / "data"
    victim.mkdir(parents=True)
    (victim / "important.txt").write_text("keep me")
    config = {"name": name, "output_root": str(tmp_path / "runs" / "deeper"), "stages": [tiny_stage(tmp_path)]}
    with pytest.raises(ValueError, match=r"sweep config: name must be a plain folder name"):
        run_sweep(config, progress=False)
    assert (victim / "important.txt").read_text() == "keep me"
    assert not (tmp_path / "runs").exists() and not (tmp_path / "abs").exists()


@pytest.mark.parametrize("stage", ["../../../victim", "../x", "a/b", "failed", "Stale", "analysis", "sweeps"])
def test_stage_name_must_be_a_plain_folder_name_not_a_reserved_one(tmp_path, stage):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "important.txt").write_text("keep me")
    config = {"name": "x", "output_root": str(tmp_path / "runs"),
              "stages": [{"name": stage, "notebook": str(tiny_notebook(tmp_path))}]}
    with pytest.raises(ValueError, match=r"stage 1: name"):
        run_sweep(config, progress=False)
    assert (victim / "important.txt").read_text() == "keep me"
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("link", [".work", "failed", "stale", "sweeps", "analysis", ""])
def test_links_out_of_the_sweep_folder_are_refused_before_anything_is_removed(tmp_path, link):
    outside = tmp_path / "outside"
    (outside / "s__delay-0.0").mkdir(parents=True)
    (outside / "s__delay-0.0" / "important.txt").write_text("keep me")
    (outside / "mini").mkdir()
    config = write_config(tmp_path, [tiny_stage(tmp_path, grid={"delay": [0.0]})])
    sweep_dir = tmp_path / "runs" / "mini"
    if link:
        sweep_dir.mkdir(parents=True)
        (sweep_dir / link).symlink_to(outside, target_is_directory=True)
    else:  # the sweep folder itself
        sweep_dir.parent.mkdir(parents=True)
        sweep_dir.symlink_to(outside / "mini", target_is_directory=True)
    with pytest.raises(ValueError, match="symbolic link"):
        run_sweep(config, progress=False)
    assert (outside / "s__delay-0.0" / "important.txt").read_text() == "keep me"
    assert sorted(p.name for p in outside.iterdir()) == ["mini", "s__delay-0.0"]
    assert not list((outside / "mini").iterdir())


def test_inside_refuses_paths_out_of_the_sweep_folder(tmp_path):
    sweep_dir = tmp_path / "sweep"
    (sweep_dir / "real").mkdir(parents=True)
    (sweep_dir / "out").symlink_to(tmp_path, target_is_directory=True)
    assert sweeps.runner.inside(sweep_dir, "real", "run") == sweep_dir / "real" / "run"
    assert sweeps.runner.inside(sweep_dir, "out") == sweep_dir / "out"  # the link itself: removed, never followed
    for parts in (("..",), ("real", ".."), ("a/../..",), ("out", "run")):
        with pytest.raises(ValueError):
            sweeps.runner.inside(sweep_dir, *parts)


# ----------------------------------------------------------------------------- stale results

def test_changed_parameters_or_notebook_are_rerun_never_silently_kept(tmp_path, capsys):
    notebook = tiny_notebook(tmp_path)
    stage = {"name": "s", "notebook": str(notebook), "parameters": {"value": 1}, "grid": {"delay": [0.0]}}
    config = write_config(tmp_path, [stage])
    sweep_dir = tmp_path / "runs" / "mini"
    run_dir = sweep_dir / "s__delay-0.0"

    first = run_sweep(config, progress=False)
    assert first["finished"] == ["s__delay-0.0"] and first["failed"] == {}
    assert read(run_dir / "results.json")["parameters"]["value"] == 1
    assert run_sweep(config, progress=False)["skipped"] == ["s__delay-0.0"]  # same parameters, same code

    config = write_config(tmp_path, [{**stage, "parameters": {"value": 2}}])  # a fixed parameter changed
    assert main(["sweep", str(config), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert read(run_dir / "results.json")["parameters"]["value"] == 2
    assert "1 run(s) done now, 0 already finished" in out and "re-ran 1 run(s) whose parameters or notebook" in out
    (generation,) = (sweep_dir / "stale" / "s__delay-0.0").iterdir()  # stale/<run>/<UTC time>/
    assert read(generation / "results.json")["parameters"]["value"] == 1

    tiny_notebook(tmp_path, TINY_NOTEBOOK + "slept_twice = 2 * delay\n")  # the notebook's code changed
    third = run_sweep(config, progress=False)
    assert third["changed"] == ["s__delay-0.0"] and third["finished"] == ["s__delay-0.0"]
    assert third["skipped"] == []
    assert read(run_dir / "run.json")["fingerprint"] == plan_runs(load_sweep(config))[0].fingerprint
    generations = sorted((sweep_dir / "stale" / "s__delay-0.0").iterdir())  # issue 20 case 4: none replaced
    assert [read(g / "results.json")["parameters"]["value"] for g in generations] == [1, 2]


def test_a_record_without_the_same_fingerprint_is_not_finished(tmp_path):
    notebook = tiny_notebook(tmp_path)
    config = sweeps.check_sweep({"name": "x", "stages": [{"name": "s", "notebook": str(notebook),
                                                          "parameters": {"value": 1}}]})
    (run,) = plan_runs(config)
    run_dir = tmp_path / run.run_id
    run_dir.mkdir()
    (run_dir / "run.json").write_text(json.dumps({"status": "finished", "run_id": run.run_id}))  # older sweeps
    assert not is_finished(tmp_path, run) and sweeps.run_state(tmp_path, run) == "changed"
    (run_dir / "run.json").write_text(json.dumps({"status": "finished", "fingerprint": run.fingerprint}))
    assert is_finished(tmp_path, run)
    assert is_finished(tmp_path, Run(run.stage, run.notebook, run.parameters, run.run_id))  # computed when missing
    assert not is_finished(tmp_path, Run(run.stage, run.notebook, {"value": 2}, run.run_id))
    (run_dir / "run.json").write_text("{not json")
    assert sweeps.run_state(tmp_path, run) == "changed"
    # Only the code and kernel count: saving the notebook with outputs or new metadata changes nothing.
    saved = nbformat.read(notebook, as_version=4)
    saved.metadata["jupytext"] = {"formats": "ipynb,py:percent"}
    saved.cells[1].outputs = [nbformat.v4.new_output("stream", text="hello")]
    nbformat.write(saved, notebook)
    assert plan_runs(config)[0].fingerprint == run.fingerprint


# ----------------------------------------------------------------------------- one sweep at a time

def test_one_sweep_at_a_time_and_a_dead_sweeps_lock_is_taken_over(tmp_path, capsys):
    config = write_config(tmp_path, [tiny_stage(tmp_path, grid={"delay": [3.0]})])
    sweep_dir = tmp_path / "runs" / "mini"
    outcome = {}
    first = threading.Thread(target=lambda: outcome.setdefault("summary", run_sweep(config, progress=False)))
    first.start()
    try:
        deadline = time.time() + 120
        while not list((sweep_dir / ".work" / "s__delay-3.0").glob("*/tiny.ipynb")):
            assert time.time() < deadline and first.is_alive(), "the first sweep did not start its run"
            time.sleep(0.1)
        assert main(["sweep", str(config), "--quiet"]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1
        assert f"{sweep_dir} is in use by another sweep (pid {os.getpid()} on " in err
        with pytest.raises(SweepLockedError):
            run_sweep(config, progress=False)
    finally:
        first.join(120)
    assert outcome["summary"]["finished"] == ["s__delay-3.0"] and outcome["summary"]["failed"] == {}
    assert len(list((sweep_dir / "sweeps").glob("*.json"))) == 1  # the refused ones wrote nothing

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (sweep_dir / ".lock").write_text(json.dumps({"pid": dead.pid, "host": "here", "started": "earlier"}))
    again = run_sweep(config, progress=False)
    assert again["skipped"] == ["s__delay-3.0"]
    assert len(list((sweep_dir / "sweeps").glob("*.json"))) == 2


# ----------------------------------------------------------------------------- records

def test_each_invocation_keeps_its_record_and_runs_record_their_final_folder(tmp_path):
    config = write_config(tmp_path, [tiny_stage(tmp_path, grid={"delay": [0.0]})])
    sweep_dir = tmp_path / "runs" / "mini"
    first = run_sweep(config, progress=False)
    first_record = Path(first["record"])
    assert first_record.parent == sweep_dir / "sweeps" and first_record.suffix == ".json"
    content = first_record.read_bytes()
    second = run_sweep(config, progress=False)
    assert second["record"] != first["record"] and first_record.read_bytes() == content
    assert sorted(p.name for p in (sweep_dir / "sweeps").iterdir()) == sorted(
        [first_record.name, Path(second["record"]).name])
    assert not (sweep_dir / "sweep.json").exists()
    record = read(first_record)
    assert record["status"] == "done" and record["finished"] == ["s__delay-0.0"] and record["ended"]
    assert record["config"]["name"] == "mini" and read(second["record"])["skipped"] == ["s__delay-0.0"]

    final = sweep_dir / "s__delay-0.0"
    run = read(final / "run.json")
    assert run["output_dir"] == str(final) and run["parameters"]["output_dir"] == str(final)
    assert ".work" not in json.dumps(run)
    assert read(final / "results.json")["parameters"]["output_dir"] == str(final)
    assert run["git_commit"] == record["git_commit"]
    if (ROOT / ".git").exists():  # HEAD then, or an ancestor of HEAD now (others may commit meanwhile)
        assert len(run["git_commit"]) == 40 and isinstance(run["git_dirty"], bool)
        assert subprocess.run(["git", "-C", str(ROOT), "merge-base", "--is-ancestor", run["git_commit"],
                               "HEAD"]).returncode == 0
    else:
        assert run["git_commit"] is None
    assert sweeps.git_state(tmp_path) == (None, None)  # not a git checkout
    mode = (final / "run.json").stat().st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask and (first_record.stat().st_mode & 0o777) == 0o666 & ~umask


# ----------------------------------------------------------------------------- resuming, parallel runs, failures

def test_interrupted_sweep_redoes_only_the_interrupted_run(tmp_path):
    config = write_config(tmp_path, [tiny_stage(tmp_path, grid={"delay": [0.0, 6.0, 0.5]})])
    sweep_dir = tmp_path / "runs" / "mini"
    cli = [sys.executable, "-m", "pbmlib.workbench.cli", "sweep", str(config), "--quiet"]
    proc = subprocess.Popen(cli, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while not list((sweep_dir / ".work" / "s__delay-6.0").glob("*/tiny.ipynb")):
            assert time.time() < deadline and proc.poll() is None, "the sweep did not reach the slow run"
            time.sleep(0.2)
        time.sleep(2)  # part-way through the slow run
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert (sweep_dir / "s__delay-0.0" / "run.json").exists()
    assert not (sweep_dir / "s__delay-6.0").exists()  # half-done: nothing that looks finished
    stamp = (sweep_dir / "s__delay-0.0" / "results.json").stat().st_mtime_ns
    killed_record = read(next((sweep_dir / "sweeps").glob("*.json")))
    assert killed_record["status"] == "running" and "ended" not in killed_record  # readable as incomplete

    summary = run_sweep(config, progress=False)  # the killed sweep's lock is taken over
    assert summary["skipped"] == ["s__delay-0.0"]
    assert sorted(summary["finished"]) == ["s__delay-0.5", "s__delay-6.0"]
    assert (sweep_dir / "s__delay-0.0" / "results.json").stat().st_mtime_ns == stamp
    assert not (sweep_dir / ".work").exists() or not list((sweep_dir / ".work").iterdir())


def test_parallel_runs_with_a_relative_output_root(tmp_path, monkeypatch):
    """Two workers and a relative output folder: no run may move another run's working directory."""
    notebook = tiny_notebook(tmp_path)
    monkeypatch.chdir(tmp_path)
    config = {"name": "par", "output_root": "runs", "workers": 2,
              "stages": [{"name": "s", "notebook": str(notebook), "grid": {"delay": [0.0, 0.3, 0.6, 0.9]}}]}
    summary = run_sweep(config, progress=False)
    assert summary["failed"] == {} and len(summary["finished"]) == 4
    assert Path(summary["sweep_dir"]).is_absolute()
    assert len(list((tmp_path / "runs" / "par").glob("s__delay-*/results.json"))) == 4


def test_failing_run_is_recorded_and_others_carry_on(tmp_path, capsys):
    config = write_config(tmp_path, [tiny_stage(tmp_path, grid={"delay": [0.0, -1.0]})])
    assert main(["sweep", str(config), "--quiet"]) == 1
    sweep_dir = tmp_path / "runs" / "mini"
    assert (sweep_dir / "s__delay-0.0" / "results.json").exists()
    error = read(sweep_dir / "failed" / "s__delay--1.0" / "error.json")
    assert "negative delay" in error["error"] and error["status"] == "failed"
    assert error["output_dir"] == str(sweep_dir / "failed" / "s__delay--1.0")
    assert (sweep_dir / "failed" / "s__delay--1.0" / "tiny.ipynb").exists()
    assert not (sweep_dir / "s__delay--1.0").exists()
    assert "failed: s__delay--1.0" in capsys.readouterr().out


# ----------------------------------------------------------------------------- planning

def test_plan_runs_ids_zipped_keys_and_long_values(tmp_path):
    notebook = str(tiny_notebook(tmp_path))
    config = sweeps.check_sweep({"name": "x", "stages": [
        {"name": "a", "notebook": notebook, "grid": {"delay, value": [[1, 2], [3, 4]]}},
        {"name": "b", "notebook": notebook, "grid": {"value": [list(range(200))]}},
        {"name": "c", "notebook": notebook}]})
    runs = plan_runs(config)
    assert [r.run_id for r in runs][:2] == ["a__delay-1__value-2", "a__delay-3__value-4"]
    assert runs[0].parameters == {"delay": 1, "value": 2}
    assert len(runs[2].run_id) <= 150 and runs[2].run_id.startswith("b__value-0x1x2")
    assert runs[3].run_id == "c" and runs[3].parameters == {}
    assert len({r.fingerprint for r in runs}) == 4
    clash = sweeps.check_sweep({"name": "x", "stages": [{"name": "a", "notebook": notebook,
                                                         "grid": {"value": ["a b", "a_b"]}}]})
    with pytest.raises(ValueError, match=r"stage 'a': two runs get the folder name 'a__value-a_b'"):
        plan_runs(clash)


def test_shipped_sweep_configs_plan():
    default = plan_runs(load_sweep(ROOT / "sweeps" / "default.yaml"))
    paper = plan_runs(load_sweep(ROOT / "sweeps" / "paper.yaml"))
    assert len(default) == 31
    models = {r.parameters.get("model_name") for r in paper}
    assert {"resnet50", "vgg16", "inceptionv3", "densenet121"} <= models
    assert {r.parameters["rounds"] for r in paper if r.stage == "resnet50"} == {1, 3}
    assert all(r.parameters.get("repeats", 5) == 5 for r in paper if r.stage != "mixing")


def test_shipped_cluster_config_checks():
    config = load_sweep(ROOT / "sweeps" / "slurm.yaml")
    assert set(config["cluster"]) == {"slurm", "jobs", "min_workers", "wait_timeout", "tls"}
    runs = plan_runs(config)
    assert {tuple(r.resources.items()) for r in runs if r.stage == "resnet50"} == {(("GPU", 1),)}
    assert all(r.resources == {} for r in runs if r.stage == "mixing")


# ----------------------------------------------------------------------------- issue 20: hostile cases

def test_case_4_a_folder_the_sweep_did_not_make_is_never_replaced(tmp_path, capsys):
    config = write_config(tmp_path, [tiny_stage(tmp_path, grid={"delay": [0.0]})])
    sweep_dir = tmp_path / "runs" / "mini"
    mine = sweep_dir / "s__delay-0.0"
    mine.mkdir(parents=True)
    (mine / "photo.png").write_bytes(b"my picture")
    assert main(["sweep", str(config), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{mine} exists but was not made by this sweep (it has no run.json)" in err
    assert (mine / "photo.png").read_bytes() == b"my picture" and sorted(p.name for p in mine.iterdir()) == [
        "photo.png"]
    assert not (sweep_dir / "sweeps").exists()  # refused before anything was written
    (mine / "photo.png").unlink()
    mine.rmdir()
    failed = sweep_dir / "failed" / "s__delay-0.0"
    failed.mkdir(parents=True)
    (failed / "notes.txt").write_text("mine")
    assert main(["sweep", str(config), "--quiet"]) == 2
    assert "has no error.json" in capsys.readouterr().err and (failed / "notes.txt").read_text() == "mine"


def test_case_6_alias_bombs_and_huge_grids_are_refused_at_once(tmp_path, capsys):
    notebook = tiny_notebook(tmp_path)
    levels = ["a0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1]"] + [
        f"a{i}: &a{i} [*a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}]"
        for i in range(1, 9)]
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("x:\n" + "".join(f"  {line}\n" for line in levels) + (
        f"name: b\nstages:\n  - {{name: s, notebook: {notebook}, grid: {{value: *a8}}}}\n"))
    started = time.perf_counter()
    assert main(["sweep", str(bomb), "--plan"]) == 2  # 387 million leaves: walked in minutes before
    assert time.perf_counter() - started < 5
    assert "expands to" in (err := capsys.readouterr().err) and "YAML nodes" in err and err.count("\n") == 1
    huge = write_config(tmp_path, [tiny_stage(tmp_path, grid={"delay": list(range(1000)),
                                                               "value": list(range(1000))})])
    started = time.perf_counter()
    assert main(["sweep", str(huge), "--plan"]) == 2
    assert time.perf_counter() - started < 10
    err = capsys.readouterr().err
    assert "plans 1,000,000 runs or more" in err and "--max-runs" in err
    small = write_config(tmp_path, [tiny_stage(tmp_path, grid={"delay": [0.0, 0.1, 0.2]})], name="small")
    assert main(["sweep", str(small), "--max-runs", "2", "--quiet"]) == 2
    assert "more than max_runs 2" in capsys.readouterr().err


def test_case_8_an_output_root_that_is_a_file_is_one_line(tmp_path, capsys):
    (tmp_path / "runs").write_text("a file")
    config = write_config(tmp_path, [tiny_stage(tmp_path)])
    assert main(["sweep", str(config), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"output_root: {tmp_path / 'runs'} is a file" in err


def _start_sweep(config):
    cli = [sys.executable, "-m", "pbmlib.workbench.cli", "sweep", str(config), "--quiet"]
    return subprocess.Popen(cli, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_attempt(sweep_dir, run_id, proc):
    deadline = time.time() + 120
    while not list((sweep_dir / ".work" / run_id).glob("*/tiny.ipynb")):
        assert time.time() < deadline and proc.poll() is None, "the sweep did not start the run"
        time.sleep(0.1)


def _kernels_of(pid):
    import psutil

    try:
        return [c for c in psutil.Process(pid).children() if any("ipykernel" in a for a in c.cmdline())]
    except psutil.NoSuchProcess:
        return []


def test_case_5_ctrl_c_cancels_queued_runs_lets_the_running_one_finish_and_records_it(tmp_path):
    config = write_config(tmp_path, [tiny_stage(tmp_path, grid={"delay": [4.0, 0.0, 0.1, 0.2, 0.3, 0.4]})])
    sweep_dir = tmp_path / "runs" / "mini"
    proc = _start_sweep(config)
    try:
        _wait_for_attempt(sweep_dir, "s__delay-4.0", proc)
        interrupted = time.perf_counter()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130 and time.perf_counter() - interrupted < 30
    assert "interrupted: 1 run(s) finished now" in err and "Traceback" not in err
    finished = sorted(p.parent.name for p in sweep_dir.glob("*/run.json"))
    assert finished == ["s__delay-4.0"]  # the running one finished; no queued run started
    (record_path,) = (sweep_dir / "sweeps").glob("*.json")
    record = read(record_path)
    assert record["status"] == "interrupted" and record["finished"] == finished and record["interrupted"] is True
    summary = run_sweep(config, progress=False)  # resumes with exactly the others
    assert summary["skipped"] == ["s__delay-4.0"] and len(summary["finished"]) == 5


def test_case_5_a_second_ctrl_c_stops_the_running_kernels_at_once(tmp_path):
    config = write_config(tmp_path, [tiny_stage(tmp_path, grid={"delay": [120.0]})])
    sweep_dir = tmp_path / "runs" / "mini"
    proc = _start_sweep(config)
    try:
        _wait_for_attempt(sweep_dir, "s__delay-120.0", proc)
        deadline = time.time() + 60
        while not (kernels := _kernels_of(proc.pid)):
            assert time.time() < deadline, "no kernel started"
            time.sleep(0.1)
        time.sleep(2.0)  # the notebook is sleeping in its cell
        proc.send_signal(signal.SIGINT)
        time.sleep(1.0)
        assert proc.poll() is None  # still waiting for the running run
        interrupted = time.perf_counter()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130 and time.perf_counter() - interrupted < 20
    assert "interrupted: 0 run(s) finished now, 0 failed" in err
    assert not (sweep_dir / "s__delay-120.0").exists() and not (sweep_dir / "failed").exists()
    assert read(next((sweep_dir / "sweeps").glob("*.json")))["status"] == "interrupted"
    assert not any(k.is_running() and k.status() != "zombie" for k in kernels)  # the kernel was stopped
