"""Sweeps on a real Dask cluster: a scheduler and two worker processes on 127.0.0.1.

A worker is killed while it runs a notebook: its run is redone on the other worker, once;
nothing is left half-written; the figures equal those of a local run with the same seeds.
The processes stop by themselves (the scheduler's idle timeout, the workers' death timeout)
and are killed by the fixture in any case. The README's TLS recipe is run as written (on
loopback, certificates from its openssl commands); a mistake in a cluster section is one line.
"""

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import jupytext
import nbformat
import pytest
import yaml
from readme_blocks import make_certificates, readme_block

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


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
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


# ----------------------------------------------------------------------------- a mistake in the section: one line

BAD_SECTIONS = {
    "local bogus option": ({"local": {"bogus_option": 1}}, "cluster.local.bogus_option is not an option"),
    "local negative": ({"local": {"n_workers": -3}}, "cluster.local.n_workers must be a whole number of workers"),
    "slurm misspelled": ({"slurm": {"cores": 1, "memory": "1GB", "quue": "gpu"}},
                         "cluster.slurm.quue is not an option of dask_jobqueue.SLURMCluster (did you mean 'queue'?)"),
    "slurm walltime": ({"slurm": {"cores": 1, "memory": "1GB", "walltime": "8h"}},
                       "cluster.slurm.walltime must be a SLURM time limit"),
    "slurm security": ({"slurm": {"cores": 1, "memory": "1GB", "security": True}},
                       "cluster.slurm.security is not set here: give certificate files as cluster.tls"),
    "slurm no memory": ({"slurm": {"cores": 1}}, "cluster.slurm.memory is missing"),
    "scheduler option": ({"slurm": {"cores": 1, "memory": "1GB", "scheduler_options": {"dashbord_address": ":0"}}},
                         "cluster.slurm.scheduler_options.dashbord_address is not an option of the Dask Scheduler"),
    "jobs on local": ({"local": {}, "jobs": 2}, "cluster.jobs is the number of batch jobs"),
    "too few jobs": ({"slurm": {"cores": 1, "memory": "1GB"}, "jobs": 2, "min_workers": 3},
                     "cluster.min_workers is 3 but this cluster has at most 2 worker(s)"),
    "wait": ({"local": {}, "wait_timeout": "soon"}, "cluster.wait_timeout must be seconds"),
    "tls address": ({"scheduler": "tls://127.0.0.1:8786"}, "cluster.scheduler is a tls:// address"),
    "tls keys": ({"scheduler": "tls://127.0.0.1:8786", "tls": {"ca_file": "ca.pem"}},
                 "cluster.tls must be a mapping of ca_file, cert, key"),
    "unknown key": ({"local": {}, "job": 2}, "cluster.job is not a key of the cluster section (did you mean 'jobs'?)"),
}


@pytest.mark.parametrize("name", BAD_SECTIONS)
def test_a_bad_cluster_section_is_one_line_naming_the_key(tmp_path, capsys, name):
    from pbmlib.workbench.cli import main

    section, message = BAD_SECTIONS[name]
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"name": "bad", "output_root": str(tmp_path / "runs"), "cluster": section,
                                    "stages": [{"name": "a", "notebook": str(ROOT / "notebooks" / "01_mixing.ipynb")}]}))
    assert main(["sweep", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"pbm sweep: error: {path}: {message}") and err.count("\n") == 1, err
    assert not (tmp_path / "runs").exists()  # checked while loading, before anything is written


def test_walltimes_and_worker_lifetimes():
    from pbmlib.workbench import cluster

    seconds = {("slurm", "30"): 1800, ("slurm", "30:15"): 1815, ("slurm", "08:00:00"): 28800,
               ("slurm", "1-12"): 129600, ("slurm", "2-00:30"): 174600, ("slurm", "1-00:00:10"): 86410,
               ("pbs", "01:00:00"): 3600, ("sge", "90"): 90, ("lsf", "02:30"): 9000, ("lsf", "45"): 2700}
    for (kind, text), expected in seconds.items():
        assert cluster._walltime_seconds(kind, text, "w") == expected, (kind, text)
    for kind, text in (("slurm", "8h"), ("pbs", "10:00"), ("lsf", "01:00:00"), ("slurm", "0"), ("slurm", "1-2-3")):
        with pytest.raises(ValueError, match="time limit"):
            cluster._walltime_seconds(kind, text, "w")
    options = cluster._with_lifetime("slurm", {"walltime": "01:00:00", "worker_extra_args": ["--resources", "GPU=1"]})
    assert options["worker_extra_args"] == ["--resources", "GPU=1", "--lifetime", "3060s", "--lifetime-stagger", "180s"]
    own = {"walltime": "01:00:00", "worker_extra_args": ["--lifetime", "50m"]}
    assert cluster._with_lifetime("slurm", own) == own  # the user's own lifetime is kept


def test_no_workers_advice_depends_on_who_starts_them(tmp_path):
    from distributed import Client, LocalCluster

    from pbmlib.workbench.cluster import check_workers_see, open_client

    with LocalCluster(n_workers=0, processes=False, protocol="tcp://", host="127.0.0.1", dashboard_address=":0") as local:
        with pytest.raises(ValueError, match=r"has 0 worker\(s\), 1 wanted; start some with 'dask worker tcp://"):
            with open_client(scheduler=local.scheduler_address):
                pass
        with Client(local) as client:  # a cluster the sweep started: its workers are not the user's to start
            with pytest.raises(ValueError, match="every worker of the LocalCluster .* left") as error:
                check_workers_see(client, tmp_path)
            assert "dask worker" not in str(error.value)
        with Client(local.scheduler_address) as client:
            with pytest.raises(ValueError, match="start some with 'dask worker"):
                check_workers_see(client, tmp_path)


# ----------------------------------------------------------------------------- TLS, as the README shows it

@pytest.mark.slow
def test_readme_tls_recipe_runs_a_sweep_and_refuses_clients_without_a_certificate(tmp_path):
    from distributed import Client

    certificates = make_certificates(tmp_path / "tls")
    port = free_port()
    commands = readme_block("### Past one machine", "dask scheduler --protocol tls").splitlines()
    slow = write_notebook(tmp_path)
    stages = [{"name": "slow", "notebook": str(slow), "parameters": {"seed": 3}, "grid": {"delay": [0.0]}}]
    sweep_config = config(tmp_path, tmp_path / "unused", slow, stages)  # --output-root replaces its root

    def as_written(line: str) -> list[str]:
        line = (line.replace("$T", str(tmp_path / "tls")).replace("HOST", "127.0.0.1")
                .replace("8786", str(port)).replace("sweeps/default.yaml", str(sweep_config))
                .replace("/shared/pbm_runs", str(tmp_path / "runs")))
        program, *args = shlex.split(line)
        return [str(Path(sys.executable).with_name(program)), *args]

    scheduler_cmd, worker_cmd, sweep_cmd = (as_written(line) for line in commands)
    processes = [subprocess.Popen(scheduler_cmd + ["--no-dashboard", "--idle-timeout", "300"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        address = f"tls://127.0.0.1:{port}"
        processes.append(subprocess.Popen(worker_cmd + ["--no-dashboard", "--death-timeout", "60"],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        from pbmlib.workbench.cluster import tls_security

        with Client(address, security=tls_security(certificates), timeout="60s") as client:
            client.wait_for_workers(1, timeout=60)
        other = tls_security(make_certificates(tmp_path / "other"))  # a certificate another authority signed
        for intruder, security in ((address, other), (f"tcp://127.0.0.1:{port}", None)):
            with pytest.raises((OSError, TimeoutError)):  # no connection, so no code run on the workers
                Client(intruder, security=security, timeout="3s")
        done = subprocess.run(sweep_cmd + ["--quiet"], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        sweep_dir = tmp_path / "runs" / "mini"
        record = json.loads(next((sweep_dir / "sweeps").glob("*.json")).read_text())
        assert record["scheduler"] == address and record["finished"] == ["slow__delay-0.0"]
        wrong = subprocess.run(sweep_cmd[:sweep_cmd.index("--tls-ca-file")] + ["--quiet"], capture_output=True,
                               text=True, timeout=60)
        assert wrong.returncode == 2 and "is a tls:// address: give the certificates too" in wrong.stderr
    finally:
        for process in processes:
            process.kill()
            process.wait(timeout=30)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_ctrl_c_cancels_the_queued_runs_on_a_cluster_and_records_what_finished(tmp_path, cluster):
    """Issue 20 case 5 on Dask: the futures of queued runs are cancelled; the record says exactly which
    runs are finished (read back from the folder: a run already executing on a worker may still land)."""
    address, _ = cluster
    slow = write_notebook(tmp_path)
    stages = [{"name": "slow", "notebook": str(slow), "parameters": {"seed": 3},
               "grid": {"delay": [6.0, 6.5, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6]}}]
    path = config(tmp_path, tmp_path / "runs", slow, stages)
    sweep_dir = tmp_path / "runs" / "mini"
    proc = subprocess.Popen([sys.executable, "-m", "pbmlib.workbench.cli", "sweep", str(path), "--quiet",
                             "--scheduler", address], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while len(list((sweep_dir / ".work").glob("slow__delay-6*/*/slow.ipynb"))) < 1:
            assert time.time() < deadline and proc.poll() is None, ("the sweep did not start on the cluster", proc.poll() is None or proc.communicate())
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130 and "interrupted:" in err
    on_disk = sorted(p.parent.name for p in sweep_dir.glob("*/run.json"))
    record = json.loads(next((sweep_dir / "sweeps").glob("*.json")).read_text())
    assert record["status"] == "interrupted" and sorted(record["finished"]) == on_disk
    assert len(on_disk) < 8  # the queued runs were cancelled, not run
