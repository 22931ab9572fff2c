"""Where a sweep's runs execute: this machine's thread pool, or a Dask cluster.

Without a cluster, runs execute in a thread pool in the sweep's own process. Each run's
work happens in its notebook kernel (a separate process), so threads only wait; a Dask
``LocalCluster`` would add worker processes and their start-up for nothing, and there is
nothing to start by hand.

With a cluster (``pbm sweep CONFIG --scheduler ADDRESS``, a ``cluster:`` section in the
config, or a :class:`distributed.Client` passed to :func:`pbmlib.workbench.sweeps.run_sweep`),
every run is a Dask task. Dask does what it is made for: placing tasks on workers (with
the stage's ``resources``, e.g. ``{GPU: 1}``), and running a task again on another worker
when the worker that ran it died (the scheduler's ``allowed-failures``). The sweep keeps
its own guarantees on top: every attempt writes into its own work folder and only a
finished attempt is moved into place.

The ``cluster:`` section of a sweep config takes one of::

    cluster: {scheduler: tcp://10.0.0.5:8786}          # a running scheduler
    cluster: {local: {n_workers: 2, threads_per_worker: 1}}   # a LocalCluster on this machine
    cluster: {slurm: {cores: 8, memory: 32GB, walltime: "04:00:00"}, jobs: 4}   # dask-jobqueue
"""

from __future__ import annotations

import os
import socket
import uuid
from contextlib import contextmanager
from pathlib import Path

__all__ = ["CLUSTER_KINDS", "check_cluster", "open_client", "check_workers_see"]

CLUSTER_KINDS = ("scheduler", "local", "slurm")


def check_cluster(cluster, where: str) -> dict | None:
    """Check a config's ``cluster:`` section (None: run on this machine)."""
    if cluster is None:
        return None
    if not isinstance(cluster, dict):
        raise ValueError(f"{where}: cluster must be a mapping such as {{scheduler: tcp://host:8786}}, got {cluster!r}")
    kinds = [k for k in CLUSTER_KINDS if k in cluster]
    unknown = sorted(set(cluster) - set(CLUSTER_KINDS) - {"jobs"})
    if unknown or len(kinds) != 1:
        raise ValueError(f"{where}: cluster needs exactly one of {list(CLUSTER_KINDS)} (slurm also takes 'jobs'), "
                         f"got keys {sorted(cluster)}")
    kind = kinds[0]
    if kind == "scheduler" and not (isinstance(cluster["scheduler"], str) and cluster["scheduler"].strip()):
        raise ValueError(f"{where}: cluster.scheduler must be an address such as tcp://host:8786")
    if kind in ("local", "slurm") and not isinstance(cluster[kind] or {}, dict):
        raise ValueError(f"{where}: cluster.{kind} must be a mapping of the cluster's options")
    if "jobs" in cluster and (kind != "slurm" or isinstance(cluster["jobs"], bool)
                              or not isinstance(cluster["jobs"], int) or cluster["jobs"] < 1):
        raise ValueError(f"{where}: cluster.jobs is the number of SLURM jobs (an int >= 1), with cluster.slurm only")
    return cluster


@contextmanager
def open_client(*, scheduler: str | None = None, cluster: dict | None = None):
    """A :class:`distributed.Client` for ``scheduler`` (an address) or the config's ``cluster``
    section, closed (and a cluster it started shut down) on exit."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise ValueError("running a sweep on a cluster needs Dask: pip install 'dask[distributed]'") from None
    started = None
    if scheduler is None and cluster is not None and "scheduler" in cluster:
        scheduler = cluster["scheduler"]
    if scheduler is not None:
        try:
            client = Client(scheduler, timeout="20s")
        except (OSError, TimeoutError) as exc:
            raise ValueError(f"cannot reach the Dask scheduler at {scheduler} ({exc}); start it with "
                             f"'dask scheduler' or check the address") from None
    elif "local" in cluster:
        started = LocalCluster(**{"processes": True, "threads_per_worker": 1, "dashboard_address": None,
                                  **(cluster["local"] or {})})
        client = Client(started)
    else:
        try:
            from dask_jobqueue import SLURMCluster
        except ImportError:
            raise ValueError("cluster.slurm needs dask-jobqueue: pip install dask-jobqueue") from None
        started = SLURMCluster(**(cluster["slurm"] or {}))
        started.scale(jobs=cluster.get("jobs", 1))
        client = Client(started)
    try:
        yield client
    finally:
        client.close()
        if started is not None:
            started.close()


def _probe(path: str) -> tuple[str, bool]:
    return f"{socket.gethostname()} pid {os.getpid()}", Path(path).is_file()


def check_workers_see(client, sweep_dir: Path) -> None:
    """Refuse to start unless every worker sees the sweep folder (shared storage).

    Writes a probe file into the folder and asks every worker whether it is there.
    """
    probe = sweep_dir / f".probe-{uuid.uuid4().hex}"
    probe.write_text("pbm sweep: shared storage check\n")
    try:
        answers = client.run(_probe, str(probe))
    finally:
        probe.unlink(missing_ok=True)
    if not answers:
        raise ValueError(f"the Dask cluster at {client.scheduler.address} has no workers; start some with "
                         f"'dask worker {client.scheduler.address}'")
    blind = [f"{address} ({who})" for address, (who, seen) in answers.items() if not seen]
    if blind:
        raise ValueError(f"worker(s) {', '.join(blind)} cannot see the sweep folder {sweep_dir}: put output_root on "
                         f"storage every worker mounts at the same path (a shared file system)")
