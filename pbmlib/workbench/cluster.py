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

    cluster: {scheduler: tcp://10.0.0.5:8786}                  # a running scheduler
    cluster: {local: {n_workers: 2, threads_per_worker: 1}}   # a LocalCluster on this machine
    cluster: {slurm: {cores: 8, memory: 32GB, walltime: "04:00:00", queue: gpu}, jobs: 4}

``slurm``, ``pbs``, ``lsf`` and ``sge`` are batch systems, through dask-jobqueue: every key
under them goes to ``dask_jobqueue.SLURMCluster`` (``PBSCluster``, ...) as given, except
what this module sets itself (``security``: use ``tls``; ``n_workers``: use ``jobs``).
Beside the kind the section takes:

- ``jobs``: batch jobs kept while runs remain (batch systems only; default 1). A job that
  ends (cancelled, pre-empted, out of walltime) is resubmitted while runs remain; each
  job's worker retires by itself (``--lifetime``, staggered) before its ``walltime``, so
  its runs move to other workers instead of being killed.
- ``min_workers``: workers that must have joined before the sweep starts (default 1).
- ``wait_timeout``: how long to wait for them, seconds or a duration such as ``"2h"``
  (default 10 minutes for a batch system, where jobs queue; 0 for a scheduler address:
  its workers are started by hand, so if none is there the message says how).
- ``tls``: ``{ca_file, cert, key}``, PEM files: the scheduler, the workers and the sweep
  authenticate each other and encrypt (``tls://`` addresses). Without it, anyone who can
  reach the scheduler's port can run any code as the workers' user.
"""

from __future__ import annotations

import difflib
import inspect
import math
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

__all__ = ["CLUSTER_KINDS", "JOB_QUEUES", "check_cluster", "scheduler_cluster", "tls_security", "open_client",
           "check_workers_see"]

#: batch systems through dask-jobqueue: config key -> (cluster class, the system's name)
JOB_QUEUES = {"slurm": ("SLURMCluster", "SLURM"), "pbs": ("PBSCluster", "PBS"), "lsf": ("LSFCluster", "LSF"),
              "sge": ("SGECluster", "SGE")}
CLUSTER_KINDS = ("scheduler", "local", *JOB_QUEUES)
#: the section's own keys beside the kind
SETTINGS = ("jobs", "min_workers", "wait_timeout", "tls")
TLS_KEYS = ("ca_file", "cert", "key")
#: seconds to wait for workers unless ``wait_timeout`` says otherwise
DEFAULT_WAIT = {"scheduler": 0.0, "local": 60.0, **{kind: 600.0 for kind in JOB_QUEUES}}
#: a worker retires after this share of its job's walltime, give or take the stagger share
LIFETIME_SHARE, STAGGER_SHARE = 0.85, 0.05

#: options that this module sets: what to write instead
_MANAGED = {
    "security": "give certificate files as cluster.tls: {ca_file, cert, key}",
    "protocol": "cluster.tls switches to tls://",
    "asynchronous": "the sweep drives the cluster itself", "loop": "the sweep drives the cluster itself",
}
#: the same for batch systems, and the options dask-jobqueue renamed
_MANAGED_QUEUE = {
    **_MANAGED,
    "n_workers": "the number of batch jobs is cluster.jobs",
    "job_cls": "the kind of cluster is the key (slurm, pbs, lsf, sge)", "scheduler_cls": "not configurable here",
    "dashboard_address": "put it under scheduler_options: {dashboard_address: ...}",
    "host": "put it under scheduler_options: {host: ...}",
    "extra": "dask-jobqueue renamed it worker_extra_args", "env_extra": "dask-jobqueue renamed it job_script_prologue",
    "job_extra": "dask-jobqueue renamed it job_extra_directives",
    "header_skip": "dask-jobqueue renamed it job_directives_skip", "project": "dask-jobqueue renamed it account",
}
_QUEUE_INTS = ("cores", "processes", "job_cpu", "ncpus")
_QUEUE_STRS = ("queue", "account", "interface", "log_directory", "local_directory", "shebang", "python", "job_name",
               "name", "resource_spec", "shared_temp_directory", "worker_command", "config_name", "lsf_units")
_QUEUE_LISTS = ("job_extra_directives", "worker_extra_args", "job_script_prologue", "job_directives_skip")


# ----------------------------------------------------------------------------- checking the config

def check_cluster(cluster, where: str) -> dict | None:
    """Check a config's ``cluster:`` section, before anything is written or started.

    Parameters
    ----------
    cluster : dict or None
        The section (None: run on this machine).
    where : str
        What the errors name first (the config file).

    Returns
    -------
    dict or None
        The section as given, ``wait_timeout`` in seconds and ``tls`` paths absolute.
        Whether the ``tls`` files exist is checked when the cluster opens.

    Raises
    ------
    ValueError
        One line naming the key (``cluster.local.n_workers``) and what to write.
    """
    if cluster is None:
        return None
    if not isinstance(cluster, dict):
        raise ValueError(f"{where}: cluster must be a mapping such as {{scheduler: tcp://host:8786}}, got {cluster!r}")
    kinds = [k for k in CLUSTER_KINDS if k in cluster]
    unknown = sorted(set(cluster) - set(CLUSTER_KINDS) - set(SETTINGS), key=str)
    if unknown:
        hint = _did_you_mean(unknown[0], [*CLUSTER_KINDS, *SETTINGS])
        raise ValueError(f"{where}: cluster.{unknown[0]} is not a key of the cluster section{hint}; it takes one of "
                         f"{', '.join(CLUSTER_KINDS)} and {', '.join(SETTINGS)}")
    if len(kinds) != 1:
        raise ValueError(f"{where}: cluster needs exactly one of {', '.join(CLUSTER_KINDS)}, got "
                         f"{', '.join(kinds) or 'none'}")
    kind = kinds[0]
    checked = dict(cluster)
    if kind == "scheduler":
        _check_address(cluster["scheduler"], "tls" in cluster, f"{where}: cluster.scheduler")
    elif kind == "local":
        checked["local"] = _check_local(cluster["local"], f"{where}: cluster.local")
    else:
        checked[kind] = _check_job_queue(kind, cluster[kind], f"{where}: cluster.{kind}")
    if "jobs" in cluster:
        if kind not in JOB_QUEUES:
            raise ValueError(f"{where}: cluster.jobs is the number of batch jobs, for {', '.join(JOB_QUEUES)} only; "
                             f"remove it")
        _check_count(cluster["jobs"], f"{where}: cluster.jobs", "batch jobs")
    wanted = _check_count(cluster.get("min_workers", 1), f"{where}: cluster.min_workers", "workers to wait for")
    most = _most_workers(kind, checked)
    if most is not None and wanted > most:
        raise ValueError(f"{where}: cluster.min_workers is {wanted} but this cluster has at most {most} worker(s); "
                         f"lower min_workers or ask for more {'jobs' if kind in JOB_QUEUES else 'n_workers'}")
    if "wait_timeout" in cluster:
        checked["wait_timeout"] = _check_duration(cluster["wait_timeout"], f"{where}: cluster.wait_timeout")
    if "tls" in cluster:
        checked["tls"] = _check_tls(cluster["tls"], f"{where}: cluster.tls")
    return checked


def scheduler_cluster(address: str, *, ca_file=None, cert=None, key=None) -> dict:
    """The cluster section for ``--scheduler ADDRESS`` (and ``--tls-ca-file``, ``--tls-cert``,
    ``--tls-key``): checked like a config's, errors naming the options."""
    given = {"ca_file": ca_file, "cert": cert, "key": key}
    section = {"scheduler": address}
    if any(v is not None for v in given.values()):
        missing = [f"--tls-{k.replace('_', '-')}" for k, v in given.items() if v is None]
        if missing:
            raise ValueError(f"TLS needs --tls-ca-file, --tls-cert and --tls-key together; {', '.join(missing)} "
                             f"missing")
        section["tls"] = _check_tls(given, "--tls")
        _check_tls_files(section["tls"], lambda key: f"--tls-{key.replace('_', '-')}")
    _check_address(address, "tls" in section, "--scheduler")
    return section


def _check_address(address, tls: bool, where: str) -> None:
    if not isinstance(address, str) or not address.strip():
        raise ValueError(f"{where} must be a scheduler address such as tcp://host:8786 or tls://host:8786, "
                         f"got {address!r}")
    protocol = address.split("://", 1)[0] if "://" in address else "tcp"
    if protocol in ("tls", "wss") and not tls:
        raise ValueError(f"{where} is a {protocol}:// address: give the certificates too (cluster.tls: {{ca_file, "
                         f"cert, key}}, or --tls-ca-file, --tls-cert and --tls-key)")
    if protocol not in ("tls", "wss") and tls:
        raise ValueError(f"{where} is {address!r} but certificates are given: write the address as "
                         f"tls://{address.split('://', 1)[-1]}")


def _check_tls(tls, where: str) -> dict:
    if not isinstance(tls, dict) or set(tls) != set(TLS_KEYS):
        raise ValueError(f"{where} must be a mapping of {', '.join(TLS_KEYS)} (PEM files: the certificate "
                         f"authority, and a certificate and key it signed), got {tls!r}")
    checked = {}
    for name in TLS_KEYS:
        value = tls[name]
        if not isinstance(value, (str, os.PathLike)) or not str(value).strip():
            raise ValueError(f"{where}.{name} must be the path of a PEM file, got {value!r}")
        checked[name] = str(Path(value).expanduser().absolute())
    return checked


def _check_tls_files(tls: dict, named=lambda key: f"cluster.tls.{key}") -> None:
    for key in TLS_KEYS:
        if not Path(tls[key]).is_file():
            raise ValueError(f"{named(key)}: no file at {tls[key]}; the README (Past one machine) shows how to "
                             f"make the certificates with openssl")


def _check_count(value, where: str, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{where} must be a whole number of {what}, 1 or more, got {value!r}")
    return value


def _check_duration(value, where: str) -> float:
    from dask.utils import parse_timedelta

    try:
        seconds = None if isinstance(value, bool) else parse_timedelta(value, default="seconds")
    except (ValueError, TypeError, KeyError):
        seconds = None
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"{where} must be seconds (600) or a duration such as \"10m\" or \"2h\", got {value!r}")
    return float(seconds)


def _did_you_mean(name: str, choices) -> str:
    close = difflib.get_close_matches(str(name), list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _check_options(options, allowed, where: str, what: str, managed=_MANAGED) -> dict:
    if options is None:
        options = {}
    if not isinstance(options, dict):
        raise ValueError(f"{where} must be a mapping of the {what}'s options, got {options!r}")
    for name in options:
        if name in managed:
            raise ValueError(f"{where}.{name} is not set here: {managed[name]}")
        if name not in allowed:
            raise ValueError(f"{where}.{name} is not an option of {what}{_did_you_mean(name, allowed)}; remove it or "
                             f"fix its spelling")
    return dict(options)


def _parameters(*callables) -> set:
    names = set()
    for fn in callables:
        names.update(p.name for p in inspect.signature(fn).parameters.values()
                     if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL) and p.name != "self")
    return names


def _check_local(options, where: str) -> dict:
    from distributed import LocalCluster, Nanny, Worker

    options = _check_options(options, _parameters(LocalCluster.__init__, Worker.__init__, Nanny.__init__) - {"start"},
                             where, "a Dask LocalCluster (or its workers)")
    for name in ("n_workers", "threads_per_worker"):
        if name in options:
            _check_count(options[name], f"{where}.{name}", "workers" if name == "n_workers" else "threads")
    if "processes" in options and not isinstance(options["processes"], bool):
        raise ValueError(f"{where}.processes must be true or false, got {options['processes']!r}")
    if "memory_limit" in options:
        _check_bytes(options["memory_limit"], f"{where}.memory_limit", allow=("auto",))
    return options


def _check_bytes(value, where: str, allow=()) -> None:
    from dask.utils import parse_bytes

    if value is None or value in allow:
        return
    try:
        ok = not isinstance(value, bool) and parse_bytes(value) > 0
    except (ValueError, TypeError):
        ok = False
    if not ok:
        raise ValueError(f"{where} must be an amount of memory such as \"4GB\", got {value!r}")


@lru_cache(maxsize=None)
def _job_queue_class(kind: str):
    try:
        import dask_jobqueue
    except ImportError:
        raise ValueError(f"cluster.{kind} needs dask-jobqueue: pip install -e \".[cluster]\" (or pip install "
                         f"dask-jobqueue)") from None
    return getattr(dask_jobqueue, JOB_QUEUES[kind][0])


def _check_job_queue(kind: str, options, where: str) -> dict:
    try:
        cls = _job_queue_class(kind)
    except ValueError as exc:
        raise ValueError(f"{where.split(': ')[0]}: {exc}") from None
    import dask
    from dask_jobqueue.core import Job, JobQueueCluster
    from distributed import Scheduler

    job_keys = _parameters(cls.job_cls.__init__, Job.__init__)
    allowed = job_keys | _parameters(JobQueueCluster.__init__)
    options = _check_options(options, allowed, where, f"dask_jobqueue.{cls.__name__}", _MANAGED_QUEUE)
    for name in _QUEUE_INTS:
        if name in options:
            _check_count(options[name], f"{where}.{name}", "cores" if name != "processes" else "processes")
    for name in ("memory", "job_mem"):
        if name in options:
            _check_bytes(options[name], f"{where}.{name}")
    for name in _QUEUE_STRS:
        if name in options and (not isinstance(options[name], str) or not options[name].strip()):
            raise ValueError(f"{where}.{name} must be a non-empty string, got {options[name]!r}")
    for name in _QUEUE_LISTS:
        if name in options and (not isinstance(options[name], list)
                                or not all(isinstance(item, str) for item in options[name])):
            raise ValueError(f"{where}.{name} must be a list of strings, e.g. [\"--gres=gpu:1\"], "
                             f"got {options[name]!r}")
    if "scheduler_options" in options:
        _check_options(options["scheduler_options"], _parameters(Scheduler.__init__),
                       f"{where}.scheduler_options", "the Dask Scheduler")
    for name in ("cores", "memory"):
        if name not in options and dask.config.get(f"jobqueue.{kind}.{name}", None) is None:
            raise ValueError(f"{where}.{name} is missing: a {JOB_QUEUES[kind][1]} job needs cores and memory, "
                             f"e.g. {{cores: 8, memory: 32GB}}")
    if options.get("processes", 1) > options.get("cores", options.get("processes", 1)):
        raise ValueError(f"{where}.processes ({options['processes']}) is more than cores ({options['cores']}): "
                         f"each worker process needs at least one core")
    walltime = options.get("walltime", dask.config.get(f"jobqueue.{kind}.walltime", None))
    if walltime is not None:
        _walltime_seconds(kind, walltime, f"{where}.walltime")
    try:  # what dask-jobqueue itself checks, on the job script it would submit (nothing is written)
        cls.job_cls("tcp://127.0.0.1:8786", name="check", **{k: v for k, v in options.items()
                                                              if k in job_keys - {"log_directory", "name"}})
    except Exception as exc:  # dask-jobqueue raises ValueError/TypeError/KeyError with long messages
        raise ValueError(f"{where}: dask_jobqueue.{cls.__name__} refuses these options: {_first_line(exc)}") from None
    return options


def _walltime_seconds(kind: str, walltime, where: str) -> float:
    """Seconds in a walltime as the batch system writes it: SLURM ``[D-]HH:MM:SS``, ``MM``,
    ``MM:SS``, ``D-HH[:MM]``; PBS and SGE ``HH:MM:SS``; LSF ``[HH:]MM``."""
    text = str(walltime).strip()
    formats = {"slurm": "minutes, MM:SS, HH:MM:SS or D-HH:MM:SS", "lsf": "HH:MM or minutes"}
    fail = ValueError(f"{where} must be a {JOB_QUEUES[kind][1]} time limit ({formats.get(kind, 'HH:MM:SS')}), "
                      f"got {walltime!r}")
    days, _, rest = text.rpartition("-") if kind == "slurm" else ("", "", text)
    parts = rest.split(":")
    if not all(p.isdigit() for p in parts) or (days and not days.isdigit()) or len(parts) > 3:
        raise fail
    values = [int(p) for p in parts]
    if days:  # D-HH, D-HH:MM, D-HH:MM:SS
        values = values + [0] * (3 - len(values))
        seconds = int(days) * 86400 + values[0] * 3600 + values[1] * 60 + values[2]
    elif kind == "slurm":  # MM, MM:SS, HH:MM:SS
        seconds = {1: lambda: values[0] * 60, 2: lambda: values[0] * 60 + values[1],
                   3: lambda: values[0] * 3600 + values[1] * 60 + values[2]}[len(values)]()
    elif kind == "lsf":  # MM, HH:MM
        if len(values) == 3:
            raise fail
        seconds = values[0] * 60 if len(values) == 1 else values[0] * 3600 + values[1] * 60
    else:  # PBS, SGE: seconds, or HH:MM:SS
        if len(values) == 2:
            raise fail
        seconds = values[0] if len(values) == 1 else values[0] * 3600 + values[1] * 60 + values[2]
    if seconds <= 0:
        raise fail
    return float(seconds)


def _most_workers(kind: str, section: dict) -> int | None:
    if kind == "local":
        return (section["local"] or {}).get("n_workers")
    if kind in JOB_QUEUES:
        return section.get("jobs", 1) * (section[kind] or {}).get("processes", 1)
    return None


# ----------------------------------------------------------------------------- TLS

def tls_security(tls: dict):
    """A :class:`distributed.security.Security` for the PEM files of ``tls`` (``ca_file``,
    ``cert``, ``key``): the same certificate for the scheduler, the workers and this client,
    and encryption required.

    Each side checks that the other's certificate is signed by ``ca_file``, so only holders
    of a signed certificate (keep its key readable by you alone) can connect.
    """
    from distributed.security import Security

    return Security(tls_ca_file=tls["ca_file"], tls_client_cert=tls["cert"], tls_client_key=tls["key"],
                    tls_scheduler_cert=tls["cert"], tls_scheduler_key=tls["key"],
                    tls_worker_cert=tls["cert"], tls_worker_key=tls["key"], require_encryption=True)


# ----------------------------------------------------------------------------- opening the cluster

@contextmanager
def open_client(*, scheduler: str | None = None, cluster: dict | None = None, tls: dict | None = None,
                progress: bool | None = None):
    """A :class:`distributed.Client` with at least ``min_workers`` workers, closed on exit.

    Parameters
    ----------
    scheduler : str, optional
        Address of a running scheduler; overrides ``cluster``'s kind (its ``tls``,
        ``min_workers`` and ``wait_timeout`` still apply).
    cluster : dict, optional
        A checked ``cluster:`` section (:func:`check_cluster`). A local or batch-system
        cluster is started here and shut down on exit (batch jobs cancelled).
    tls : dict, optional
        ``{ca_file, cert, key}`` for a ``tls://`` scheduler; default: the section's.
    progress : bool, optional
        Show a progress line while waiting for workers (jobs queued); default: on a terminal.

    Raises
    ------
    ValueError
        One line: the scheduler cannot be reached, the cluster refuses its options, the
        batch system refuses the job, or not enough workers joined within ``wait_timeout``
        (with the jobs' ids and states).
    """
    try:
        from distributed import Client
    except ImportError:
        raise ValueError("running a sweep on a cluster needs Dask: pip install 'dask[distributed]'") from None
    section = dict(cluster or {})
    if scheduler is not None:  # that scheduler; the section's certificates if it speaks TLS
        section = {"scheduler": scheduler, "min_workers": section.get("min_workers", 1),
                   "wait_timeout": section.get("wait_timeout", DEFAULT_WAIT["scheduler"]),
                   **({"tls": section["tls"]} if "tls" in section and scheduler.startswith("tls://") else {})}
    if tls is not None:
        section["tls"] = tls
    kind = next(k for k in CLUSTER_KINDS if k in section)
    section.setdefault("min_workers", 1)
    section.setdefault("wait_timeout", DEFAULT_WAIT[kind])
    if kind in JOB_QUEUES:
        section.setdefault("jobs", 1)
    if section.get("tls"):
        _check_tls_files(section["tls"])
    security = tls_security(section["tls"]) if section.get("tls") else None
    if kind == "scheduler":
        _check_address(section["scheduler"], security is not None, "the scheduler address")
    started, adaptive = None, None
    if kind == "scheduler":
        try:
            client = Client(section["scheduler"], timeout="20s", security=security)
        except (OSError, TimeoutError) as exc:
            raise ValueError(f"cannot reach the Dask scheduler at {section['scheduler']} ({_first_line(exc)}); start "
                             f"it with 'dask scheduler' or check the address"
                             f"{' and the certificates' if security is not None else ''}") from None
    elif kind == "local":
        from distributed import LocalCluster

        options = {"processes": True, "threads_per_worker": 1, "dashboard_address": None, **(section["local"] or {})}
        try:
            started = LocalCluster(**options, **({"security": security} if security is not None else {}))
        except Exception as exc:
            raise ValueError(f"cluster.local: Dask cannot start this LocalCluster: {_first_line(exc)}") from None
    else:
        started, adaptive = _start_job_queue(kind, section, security)
    try:
        if started is not None:
            client = Client(started)
        try:
            _wait_for_workers(client, started, kind, section, adaptive, progress)
            yield client
        finally:
            client.close()
    finally:
        if started is not None:  # its batch jobs cancelled
            started.close()


def _with_lifetime(kind: str, options: dict) -> dict:
    """Add ``--lifetime`` (staggered) below the walltime to the workers' arguments, unless given:
    a worker then retires by itself before the batch system kills its job, and its runs move."""
    import dask

    args = list(options.get("worker_extra_args", dask.config.get(f"jobqueue.{kind}.worker-extra-args", None) or []))
    walltime = options.get("walltime", dask.config.get(f"jobqueue.{kind}.walltime", None))
    if walltime is None or "--lifetime" in args:
        return options
    seconds = _walltime_seconds(kind, walltime, f"cluster.{kind}.walltime")
    args += ["--lifetime", f"{int(seconds * LIFETIME_SHARE)}s",
             "--lifetime-stagger", f"{int(seconds * STAGGER_SHARE)}s"]
    return {**options, "worker_extra_args": args}


def _check_interfaces(kind: str, options: dict) -> None:
    import psutil

    named = {f"cluster.{kind}.interface": options.get("interface"),
             f"cluster.{kind}.scheduler_options.interface": (options.get("scheduler_options") or {}).get("interface")}
    have = sorted(psutil.net_if_addrs())
    for key, name in named.items():
        if name is not None and name not in have:
            raise ValueError(f"{key} is {name!r}, which is not a network interface of this machine (it has "
                             f"{', '.join(have)}); name the interface of the network the compute nodes reach "
                             f"this machine on (e.g. ib0)")


def _start_job_queue(kind: str, section: dict, security):
    """Start the scheduler here, submit ``jobs`` jobs (refusals raise), keep them while runs remain."""
    cls = _job_queue_class(kind)
    system = JOB_QUEUES[kind][1]
    options = _with_lifetime(kind, dict(section[kind] or {}))
    _check_interfaces(kind, options)
    try:
        started = cls(**options, **({"security": security} if security is not None else {}))
    except Exception as exc:
        raise ValueError(f"cluster.{kind}: cannot start the Dask scheduler for {system}: {_first_line(exc)}") from None
    try:
        for _ in range(section["jobs"]):  # as scale(jobs=) does, but submitted in this call (below), so that
            started.worker_spec.update(started.new_worker_spec())  # a refused job raises here
        started.sync(started._correct_state)
        per_job = len(started.new_spec.get("group", [""]))
        adaptive = started.adapt(Adaptive=_runs_left_adaptive(), minimum=section["min_workers"],
                                 maximum=section["jobs"] * per_job)
    except Exception as exc:
        _mark_refused(started)
        started.close()
        raise ValueError(f"cluster.{kind}: {system} refused the worker job ({_submit_error(exc)}); fix "
                         f"cluster.{kind} (queue, account, walltime, cores, memory) for this site") from None
    return started, adaptive


@lru_cache(maxsize=None)
def _runs_left_adaptive():
    """An :class:`distributed.deploy.Adaptive` that keeps a worker per run left (every job until
    the runs are submitted) and reports a job it cannot resubmit in one line, once."""
    from distributed.deploy.adaptive import Adaptive

    class RunsLeft(Adaptive):
        submitted = False
        failure = None

        async def target(self):
            scheduler = self.cluster.scheduler  # in this process
            left = (len(scheduler.queued) + len(scheduler.unrunnable)
                    + sum(len(ws.processing) for ws in scheduler.workers.values()))
            self.submitted = self.submitted or left > 0
            if not self.submitted:
                return self.maximum
            threads = [ws.nthreads for ws in scheduler.workers.values()] or [1]
            return math.ceil(left / max(sum(threads) / len(threads), 1))

        async def adapt(self):
            try:
                await super().adapt()
            except Exception as exc:  # a replacement job refused: the sweep goes on with the workers it has
                _mark_refused(self.cluster)
                message = _submit_error(exc)
                if message != self.failure:
                    self.failure = message
                    print(f"pbm: a replacement batch job was refused ({message}); the sweep goes on with the "
                          f"workers it has", file=sys.stderr)

    return RunsLeft


def _mark_refused(started) -> None:
    """Mark the jobs the batch system refused (no job id) as failed: the cluster then closes
    without waiting for them, and does not submit them again."""
    from distributed.core import Status

    for job in started.workers.values():
        if getattr(job, "job_id", None) is None and job.status == Status.created:
            job.status = Status.failed


def _submit_error(exc) -> str:
    """The batch system's own words from dask-jobqueue's RuntimeError (its stderr), else the first line."""
    text = str(exc)
    if "stderr:" in text:
        lines = [line.strip() for line in text.split("stderr:", 1)[1].splitlines() if line.strip()]
        if lines:
            return "; ".join(lines[:2])
    return _first_line(exc)


def _first_line(exc) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def _job_ids(started) -> dict:
    """Job name -> batch job id, for the jobs submitted whose workers have not joined."""
    joined, suffixes = started.observed, started.new_spec.get("group", [""])
    return {name: job.job_id for name, job in started.workers.items()
            if getattr(job, "job_id", None) and not any(f"{name}{s}" in joined for s in suffixes)}


def _queue_states(kind: str, job_ids) -> dict | None:
    """Job id -> state (and reason) from the batch system, for SLURM (squeue); None elsewhere
    or when the listing fails. A job missing from the answer has left the queue."""
    if kind != "slurm" or not job_ids or shutil.which("squeue") is None:
        return None
    try:
        out = subprocess.run(["squeue", "-h", "-t", "all", "-o", "%i|%T|%r", "-j", ",".join(job_ids)],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return {} if "Invalid job id" in out.stderr else None
    states = {}
    for line in out.stdout.splitlines():
        job, state, reason = (line.split("|") + ["", ""])[:3]
        states[job.strip()] = state.strip() + (f", {reason.strip()}" if reason.strip() not in ("", "None") else "")
    return states


#: SLURM states of a job that may still start its worker
_ALIVE = ("PENDING", "CONFIGURING", "RUNNING", "REQUEUED", "RESIZING", "SUSPENDED")


def _wait_for_workers(client, started, kind: str, section: dict, adaptive, progress) -> None:
    """Return once ``min_workers`` workers joined; raise one line when that cannot happen in time."""
    from tqdm.auto import tqdm

    wanted, timeout = section["min_workers"], section["wait_timeout"]
    system = JOB_QUEUES.get(kind, ("", "batch"))[1]
    deadline, next_listing, states = time.monotonic() + timeout, 0.0, None
    quiet = True if kind == "local" else None if progress is None else not progress  # None: on a terminal
    with tqdm(total=wanted, desc="Dask workers joined", unit="worker", leave=False, disable=quiet) as bar:
        while True:
            joined = len(client.scheduler_info(n_workers=-1)["workers"])
            bar.n = min(joined, wanted)
            if joined >= wanted:
                bar.refresh()
                return
            if kind not in JOB_QUEUES:
                if time.monotonic() >= deadline:
                    raise ValueError(_no_workers(client, kind, joined, wanted, timeout, section))
                time.sleep(0.5)
                continue
            pending = _job_ids(started)
            if time.monotonic() >= next_listing:
                states, next_listing = _queue_states(kind, list(pending.values())), time.monotonic() + 2
            if adaptive is not None and adaptive.failure:
                raise ValueError(f"cluster.{kind}: {system} refused a worker job ({adaptive.failure})")
            if states is not None and pending and not any(states.get(j, "").startswith(_ALIVE)
                                                          for j in pending.values()):
                ended = ", ".join(f"{j} ({states.get(j, 'gone')})" for j in pending.values())
                raise ValueError(f"{system} job(s) {ended} ended before their Dask worker joined "
                                 f"{client.scheduler.address}: read the jobs' logs ({_log_hint(kind, section)}); a "
                                 f"worker that cannot reach the scheduler needs cluster.{kind}.interface set to the "
                                 f"network the compute nodes share with this machine")
            if time.monotonic() >= deadline:
                raise ValueError(_still_queued(kind, section, pending, states, joined, wanted, timeout, client))
            running = sum(1 for j in pending.values() if (states or {}).get(j, "").startswith("RUNNING"))
            bar.set_postfix_str(f"{len(pending) - running} {system} job(s) queued, {running} starting", refresh=False)
            bar.refresh()
            time.sleep(1)


def _log_hint(kind: str, section: dict) -> str:
    folder = (section.get(kind) or {}).get("log_directory")
    return (f"cluster.{kind}.log_directory, {folder}" if folder else
            f"set cluster.{kind}.log_directory to keep them; without it they go where the batch system puts them")


def _still_queued(kind, section, pending, states, joined, wanted, timeout, client) -> str:
    system = JOB_QUEUES[kind][1]
    listed = ", ".join(f"{j} ({states[j]})" if states and j in states else str(j) for j in pending.values())
    running = [j for j in pending.values() if (states or {}).get(j, "").startswith("RUNNING")]
    advice = (f"job(s) {', '.join(running)} run but their worker has not reached the scheduler at "
              f"{client.scheduler.address}: check cluster.{kind}.interface and the jobs' logs "
              f"({_log_hint(kind, section)}); " if running else "")
    return (f"{joined} of the {wanted} Dask worker(s) wanted joined within {_duration(timeout)}: {system} job(s) "
            f"{listed or 'none'} still queued; {advice}raise cluster.wait_timeout (e.g. wait_timeout: 2h) to wait "
            f"longer, or lower cluster.min_workers")


def _no_workers(client, kind, joined, wanted, timeout, section) -> str:
    address = client.scheduler.address
    if kind == "scheduler":
        tls = section.get("tls")
        flags = (f" --tls-ca-file {tls['ca_file']} --tls-cert {tls['cert']} --tls-key {tls['key']}" if tls else "")
        waited = f" within {_duration(timeout)} (cluster.wait_timeout)" if timeout else ""
        return (f"the Dask cluster at {address} has {joined} worker(s), {wanted} wanted{waited}; start "
                f"{'some' if not joined else 'more'} with 'dask worker {address}{flags}'")
    return (f"the LocalCluster has {joined} of {wanted} worker(s) after {_duration(timeout)}; lower "
            f"cluster.min_workers or raise cluster.local.n_workers")


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


# ----------------------------------------------------------------------------- shared storage

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
        address = client.scheduler.address
        if getattr(client, "cluster", None) is None:  # a scheduler someone started: its workers are theirs
            raise ValueError(f"the Dask cluster at {address} has no workers; start some with 'dask worker {address}'")
        raise ValueError(f"every worker of the {type(client.cluster).__name__} at {address} left before the sweep "
                         f"started (jobs cancelled or ended?); run the sweep again")
    blind = [f"{address} ({who})" for address, (who, seen) in answers.items() if not seen]
    if blind:
        raise ValueError(f"worker(s) {', '.join(blind)} cannot see the sweep folder {sweep_dir}: put output_root on "
                         f"storage every worker mounts at the same path (a shared file system)")
