"""Sweeps on a real Dask cluster: a scheduler and two worker processes on 127.0.0.1.

A worker is killed while it runs a notebook: its run is redone on the other worker, once;
nothing is left half-written; the figures equal those of a local run with the same seeds.
The processes stop by themselves (the scheduler's idle timeout, the workers' death timeout)
and are killed by the fixture in any case.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jupytext
import nbformat
import pytest
import yaml

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]

SLOW_NOTEBOOK = '''
# %% tags=["parameters"]
delay: float = 0.0  # seconds to sleep; negative raises
seed: int = 0  # seed of the value written
output_dir: str = "."  # where value.json goes

# %%
import json
import pathlib
import time

import numpy as np

if delay < 0:
    raise ValueError("negative delay")
time.sleep(delay)
pathlib.Path(output_dir, "value.json").write_text(json.dumps({"value": float(np.random.default_rng(seed).random())}))
'''


def write_notebook(folder: Path) -> Path:
    notebook = jupytext.reads(SLOW_NOTEBOOK, fmt="py:percent")
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = folder / "slow.ipynb"
    nbformat.write(notebook, path)
    return path


@pytest.fixture
def cluster(tmp_path):
    """A scheduler and two single-threaded workers (no nanny: a killed worker stays dead)."""
    scheduler_file = tmp_path / "scheduler.json"
    env = {**os.environ, "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
    processes = [subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
         "--no-dashboard", "--scheduler-file", str(scheduler_file), "--idle-timeout", "300"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)]
    deadline = time.time() + 60
    while not scheduler_file.exists():
        assert time.time() < deadline, "the scheduler did not start"
        time.sleep(0.2)
    address = json.loads(scheduler_file.read_text())["address"]
    workers = [subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1", "--no-nanny",
         "--host", "127.0.0.1", "--no-dashboard", "--death-timeout", "30", "--name", f"w{i}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env) for i in range(2)]
    processes += workers
    from distributed import Client

    with Client(address, timeout="30s") as client:
        client.wait_for_workers(2, timeout=60)
    try:
        yield address, workers
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=30)


def config(tmp_path, root: Path, slow: Path, stages=None) -> Path:
    stages = stages or [
        {"name": "mixing", "notebook": str(ROOT / "notebooks" / "01_mixing.ipynb"),
         "parameters": {"dataset": "faces", "n_images": 40, "seed": 1},
         "grid": {"block_height,block_width": [[5, 5], [1, 5]]}},
        {"name": "slow", "notebook": str(slow), "parameters": {"seed": 3}, "grid": {"delay": [12.0, 0.5]}},
    ]
    path = tmp_path / f"{root.name}.yaml"
    path.write_text(yaml.safe_dump({"name": "mini", "output_root": str(root), "workers": 2, "stages": stages}))
    return path


def figures(sweep_dir: Path) -> dict:
    """What the runs measured: mixing results without timings and versions, and the slow values."""
    found = {}
    for run in sorted(p for p in sweep_dir.iterdir() if (p / "run.json").exists()):
        if (run / "value.json").exists():
            found[run.name] = json.loads((run / "value.json").read_text())
        else:
            results = json.loads((run / "results.json").read_text())
            found[run.name] = {k: v for k, v in results.items() if k not in ("mix_seconds", "versions", "parameters")}
    return found


def test_killed_worker_run_is_redone_once_and_matches_a_local_run(tmp_path, cluster):
    address, workers = cluster
    slow = write_notebook(tmp_path)
    cluster_cfg = config(tmp_path, tmp_path / "on_cluster", slow)
    sweep = subprocess.Popen([sys.executable, "-c", "from pbmlib.workbench.cli import main; raise SystemExit(main())",
                              "sweep", str(cluster_cfg), "--scheduler", address, "--quiet"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    sweep_dir = tmp_path / "on_cluster" / "mini"
    attempts = sweep_dir / ".work" / "slow__delay-12.0"
    deadline = time.time() + 120
    while not (attempts.is_dir() and any((a / "slow.ipynb").exists() for a in attempts.iterdir())):
        assert time.time() < deadline and sweep.poll() is None, "the slow run never started"
        time.sleep(0.2)
    time.sleep(2)  # part-way through the notebook
    first_attempt = next(attempts.iterdir()).name
    victim_pid = int(first_attempt.rsplit("-", 2)[1])
    victim = next(w for w in workers if w.pid == victim_pid)  # the worker running it, by the folder's pid
    victim.send_signal(signal.SIGKILL)
    out, _ = sweep.communicate(timeout=300)
    assert sweep.returncode == 0, out

    finished = sorted(p.name for p in sweep_dir.iterdir() if (p / "run.json").exists())
    assert finished == ["mixing__block_height-1__block_width-5", "mixing__block_height-5__block_width-5",
                        "slow__delay-0.5", "slow__delay-12.0"]
    redone = json.loads((sweep_dir / "slow__delay-12.0" / "run.json").read_text())
    assert f"-{victim_pid}-" not in redone["attempt"] and redone["status"] == "finished"
    assert not (sweep_dir / ".work").exists() or not any((sweep_dir / ".work").iterdir())
    assert not (sweep_dir / "failed").exists() or not any((sweep_dir / "failed").iterdir())
    record = json.loads(next((sweep_dir / "sweeps").glob("*.json")).read_text())
    assert record["scheduler"] == address and sorted(record["finished"]) == finished  # each run counted once

    from pbmlib.workbench.sweeps import run_sweep

    local = run_sweep(config(tmp_path, tmp_path / "local", slow), progress=False, analysis=False)
    assert figures(sweep_dir) == figures(Path(local["sweep_dir"]))


def test_failing_run_lands_in_failed_on_the_cluster(tmp_path, cluster):
    from pbmlib.workbench.sweeps import run_sweep

    address, _ = cluster
    slow = write_notebook(tmp_path)
    stages = [{"name": "slow", "notebook": str(slow), "grid": {"delay": [0.0, -1.0]}}]
    summary = run_sweep(config(tmp_path, tmp_path / "runs", slow, stages), scheduler=address, progress=False)
    sweep_dir = Path(summary["sweep_dir"])
    assert summary["finished"] == ["slow__delay-0.0"] and list(summary["failed"]) == ["slow__delay--1.0"]
    assert "negative delay" in summary["failed"]["slow__delay--1.0"]
    assert (sweep_dir / "failed" / "slow__delay--1.0" / "error.json").exists()


def test_a_worker_that_cannot_see_the_folder_is_refused(tmp_path, monkeypatch):
    from distributed import Client, LocalCluster

    from pbmlib.workbench import cluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as local, \
            Client(local) as client:
        cluster.check_workers_see(client, tmp_path)  # same machine: sees it
        monkeypatch.setattr(cluster, "_probe", lambda path: ("elsewhere", False))  # a worker on other storage
        with pytest.raises(ValueError, match="cannot see the sweep folder"):
            cluster.check_workers_see(client, tmp_path)
    assert not list(tmp_path.glob(".probe-*"))
