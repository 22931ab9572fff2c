"""Sweeps on a real SLURM: munged, slurmctld and slurmd on 127.0.0.1 (``tests/slurm_fixture.py``).

``pbm sweep CONFIG`` runs with the README's ``cluster: slurm`` section (only the site's values
changed) and TLS certificates made with the README's openssl commands. One job is cancelled
with ``scancel`` while its worker runs a notebook: a replacement job is submitted, the run is
done again elsewhere and recorded once, the figures equal a local run's, and no job is left in
the queue. A job SLURM refuses, jobs that stay queued and jobs that fail end the sweep with one line.
"""

import copy
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from readme_blocks import make_certificates, readme_block
from slurm_fixture import local_slurm, missing_binaries

ROOT = Path(__file__).resolve().parents[1]
MIXING = ROOT / "notebooks" / "01_mixing.ipynb"
MISSING = missing_binaries()
SKIP_REASON = f"no SLURM here: {', '.join(MISSING)} missing (apt-get install slurm-wlm munge)"
needs_slurm = pytest.mark.skipif(bool(MISSING), reason=SKIP_REASON)


def readme_cluster() -> dict:
    return yaml.safe_load(readme_block("#### SLURM", "cluster:"))["cluster"]


def site_cluster(slurm, tmp_path: Path, certificates: dict, **changes) -> dict:
    """The README's section with this test site's values: partition, account, loopback, one core and
    1 GB per job, no GPU directive (the node has none), two jobs, the test's certificates."""
    cluster = copy.deepcopy(readme_cluster())
    cluster["slurm"].update(queue=slurm.partition, account="pbmtest", cores=1, memory="1GB", interface="lo",
                            log_directory=str(tmp_path / "slurm_logs"), job_extra_directives=[],
                            scheduler_options={"dashboard_address": "localhost:0"})
    cluster.update(jobs=2, tls=certificates)
    for key, value in changes.items():
        (cluster if key in ("jobs", "min_workers", "wait_timeout", "tls") else cluster["slurm"])[key] = value
    return cluster


def write_config(tmp_path: Path, name: str, cluster: dict | None) -> Path:
    config = {"name": "tiny", "output_root": str(tmp_path / name), "workers": 2, "stages": [
        {"name": "mixing", "notebook": str(MIXING), "parameters": {"dataset": "faces", "n_images": 40, "seed": 1,
                                                                  "n_timings": 1},
         "grid": {"block_height,block_width": [[5, 5], [1, 5], [5, 1]]}}]}
    if cluster is not None:
        config["cluster"] = cluster
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def pbm(*args: str) -> list[str]:
    script = Path(sys.executable).with_name("pbm")
    return [str(script), *args] if script.exists() else [sys.executable, "-m", "pbmlib.workbench.cli", *args]


def figures(sweep_dir: Path) -> dict:
    found = {}
    for run in sorted(p for p in sweep_dir.iterdir() if (p / "run.json").exists()):
        results = json.loads((run / "results.json").read_text())
        found[run.name] = {k: v for k, v in results.items() if k not in ("mix_seconds", "versions", "parameters")}
    return found


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    return make_certificates(tmp_path_factory.mktemp("certs") / "tls")  # as the README makes them


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    with local_slurm(tmp_path_factory.mktemp("slurm")) as cluster:
        yield cluster


def test_readme_section_is_the_shipped_config():
    shipped = yaml.safe_load((ROOT / "sweeps" / "slurm.yaml").read_text())["cluster"]
    assert readme_cluster() == shipped
    assert {"queue", "account", "interface", "log_directory", "scheduler_options"} <= set(shipped["slurm"])


@pytest.mark.slow
@needs_slurm
def test_readme_command_on_slurm_replaces_a_cancelled_job(tmp_path, slurm, certificates):
    cluster = site_cluster(slurm, tmp_path, certificates)
    assert set(cluster) == set(readme_cluster()) and set(cluster["slurm"]) == set(readme_cluster()["slurm"])
    config = write_config(tmp_path, "on_slurm", cluster)
    # Dask waits lost-worker-timeout (15 s) before it replaces a lost job; 1 s keeps the test short
    env = {**slurm.env, "DASK_DISTRIBUTED__DEPLOY__LOST_WORKER_TIMEOUT": "1s"}
    started = time.monotonic()
    sweep = subprocess.Popen(pbm("sweep", str(config)), cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    sweep_dir = tmp_path / "on_slurm" / "tiny"
    deadline = time.monotonic() + 180
    while True:  # the first attempt whose notebook is being executed
        attempts = [a for a in (sweep_dir / ".work").glob("*/*") if (a / MIXING.name).exists()] \
            if (sweep_dir / ".work").is_dir() else []
        if attempts:
            break
        assert time.monotonic() < deadline and sweep.poll() is None, sweep.communicate()[0]
        time.sleep(0.2)
    first_run_seconds = time.monotonic() - started
    victim_attempt = attempts[0]
    victim_pid = int(victim_attempt.name.rsplit("-", 2)[1])  # <host>-<pid>-<random>: the worker's pid
    environ = dict(item.split("=", 1) for item in Path(f"/proc/{victim_pid}/environ").read_text().split("\0")
                   if "=" in item)
    victim_job = environ["SLURM_JOB_ID"]
    before = slurm.jobs(all_states=True)
    assert before[victim_job] == "RUNNING" and len(slurm.jobs()) == 2  # the section's 2 jobs
    script = slurm.run("scontrol", "write", "batch_script", victim_job, "-")
    assert "#SBATCH -p debug" in script and "#SBATCH -A pbmtest" in script and "tls://127.0.0.1:" in script
    assert "--lifetime 24480s --lifetime-stagger 1440s" in script  # retires at 85% +- 5% of 08:00:00
    time.sleep(1)  # part-way through the notebook
    slurm.run("scancel", victim_job)
    out, _ = sweep.communicate(timeout=240)
    sweep_seconds = time.monotonic() - started
    assert sweep.returncode == 0, out
    assert "Traceback" not in out

    jobs = slurm.jobs(all_states=True)
    replacements = sorted(set(jobs) - set(before))
    assert jobs[victim_job] == "CANCELLED" and replacements, jobs  # a job was submitted after the scancel
    assert slurm.wait_for_empty_queue() == {}  # every job cancelled or ended when the sweep ended

    runs = ["mixing__block_height-1__block_width-5", "mixing__block_height-5__block_width-1",
            "mixing__block_height-5__block_width-5"]
    assert sorted(p.name for p in sweep_dir.iterdir() if (p / "run.json").exists()) == runs
    redone = json.loads((sweep_dir / victim_attempt.parent.name / "run.json").read_text())
    assert redone["status"] == "finished" and f"-{victim_pid}-" not in redone["attempt"]
    record = json.loads(next((sweep_dir / "sweeps").glob("*.json")).read_text())
    assert sorted(record["finished"]) == runs and record["failed"] == {}  # each run once
    assert record["scheduler"].startswith("tls://127.0.0.1:")
    assert not any((sweep_dir / ".work").glob("*/*"))
    logs = sorted(p.name for p in (tmp_path / "slurm_logs").iterdir())
    assert f"dask-worker-{victim_job}.err" in logs

    from pbmlib.workbench.sweeps import run_sweep

    local = run_sweep(write_config(tmp_path, "local", None), progress=False, analysis=False)
    assert figures(sweep_dir) == figures(Path(local["sweep_dir"]))
    print(f"\nSLURM sweep: first notebook started after {first_run_seconds:.1f} s, whole sweep {sweep_seconds:.1f} s; "
          f"jobs {jobs}; replacement(s) {replacements}")


@pytest.mark.slow
@needs_slurm
def test_refused_queued_and_failed_jobs_end_the_sweep_in_one_line(tmp_path, slurm, certificates):
    refused = write_config(tmp_path, "refused", site_cluster(slurm, tmp_path, certificates, queue="nosuch"))
    done = subprocess.run(pbm("sweep", str(refused), "--quiet"), cwd=tmp_path, env=slurm.env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2 and done.stdout == "", done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "cluster.slurm: SLURM refused the worker job" in done.stderr and "invalid partition" in done.stderr

    queued = write_config(tmp_path, "queued", site_cluster(slurm, tmp_path, certificates,
                                                            queue=slurm.closed_partition, wait_timeout=3))
    before = set(slurm.jobs(all_states=True))
    done = subprocess.run(pbm("sweep", str(queued), "--quiet"), cwd=tmp_path, env=slurm.env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    ids = sorted(set(slurm.jobs(all_states=True)) - before)
    assert len(ids) == 2
    assert "0 of the 1 Dask worker(s) wanted joined within 3 s" in done.stderr
    assert all(f"{i} (PENDING, PartitionDown)" in done.stderr for i in ids), done.stderr
    assert "raise cluster.wait_timeout" in done.stderr
    assert slurm.wait_for_empty_queue() == {}  # the queued jobs were cancelled

    broken = write_config(tmp_path, "broken", site_cluster(slurm, tmp_path, certificates, python="/no/such/python"))
    before = set(slurm.jobs(all_states=True))
    done = subprocess.run(pbm("sweep", str(broken), "--quiet"), cwd=tmp_path, env=slurm.env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    ids = sorted(set(slurm.jobs(all_states=True)) - before)
    assert all(f"{i} (FAILED" in done.stderr for i in ids) and "ended before their Dask worker joined" in done.stderr
    assert str(tmp_path / "slurm_logs") in done.stderr  # where to read why
