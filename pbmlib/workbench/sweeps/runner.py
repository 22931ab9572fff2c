"""Running a sweep: every unfinished run in its own attempt folder, under the sweep's lock.

Runs execute here in a thread pool (each run's work is in its own notebook kernel, a
separate process) or as Dask tasks (:mod:`pbmlib.workbench.cluster`). What the runner
guarantees, on one machine and on a cluster alike:

- every attempt executes in its own folder ``.work/<run>/<host>-<pid>-<random>/`` and is
  moved to ``<run>/`` only when it finished; a run another attempt finished first is
  discarded and counted once;
- nothing the sweep did not make is removed or replaced: a folder at a run's path
  without the sweep's ``run.json`` stops the sweep before any run starts (one line naming
  it); earlier results of a changed run go to ``stale/<run>/<UTC time>/``, every
  generation kept;
- the first Ctrl-C (SIGINT or SIGTERM) cancels every queued run and lets the running
  ones finish within a grace period; a second one (or the end of the grace period)
  stops their kernels at once. The record then says exactly which runs finished
  (read back from the folder), and :class:`SweepInterrupted` is raised (``pbm sweep``
  exits 130).
"""

from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
import uuid
from concurrent.futures import CancelledError, ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from pathlib import Path

from ..._fs import FolderLockedError, inside, lock, remove, write_json_atomic
from ..._io import versions
from ..cluster import check_workers_see, open_client
from .config import DEFAULT_MAX_RUNS, check_sweep, check_workers, load_sweep
from .layout import (ANALYSIS_DIR, BACKUP_DIR, BASELINES_DIR, ERROR_RECORD_NAME, FAILED_DIR, LOCK_NAME, OWN_DIRS,
                     RECORDS_DIR, RESERVED_NAMES, RESULTS_NAME, RUN_RECORD_NAME, STALE_DIR, WORK_DIR)
from .runs import Run, _fingerprint, notebook_digest, plan_runs, read_record, run_fingerprint, run_state

__all__ = ["run_sweep", "execute_run", "SweepLockedError", "SweepInterrupted", "GRACE_SECONDS"]

#: After the first Ctrl-C, running runs have this long to finish before their kernels are stopped.
GRACE_SECONDS = 30.0
# The kernel's own log (e.g. "running over TCP without encryption": it listens on 127.0.0.1 only; the
# "KeyboardInterrupt caught" of a kernel being shut down) is not for users: an error of the notebook's code
# still fails the run with its traceback, and its warnings still reach the notebook's outputs.
_QUIET_KERNEL = ["--IPKernelApp.log_level=CRITICAL"]
_CODE_ROOT = Path(__file__).resolve().parents[3]  # the checkout holding pbmlib, for the git commit


class SweepLockedError(FolderLockedError):
    """Another sweep is running on the same sweep folder."""


class SweepInterrupted(KeyboardInterrupt):
    """The sweep was interrupted (Ctrl-C, SIGTERM); ``summary`` says what finished, ``record`` where it is."""

    def __init__(self, summary: dict):
        super().__init__(f"sweep interrupted; record of what finished: {summary['record']}")
        self.summary = summary


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def _utc_stamp() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())


def git_state(root: Path | None = None) -> tuple[str | None, bool | None]:
    """(commit, has uncommitted changes) of the checkout holding pbmlib; (None, None) if not a git checkout."""
    root = _CODE_ROOT if root is None else Path(root)
    if not (root / ".git").exists():
        return None, None
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}  # never take the index lock of a busy checkout
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=20, check=True, env=env).stdout.strip()
        status = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=60, check=True, env=env).stdout
    except (OSError, subprocess.SubprocessError):
        return None, None
    return commit or None, bool(status.strip())


# ----------------------------------------------------------------------------- what the sweep owns

def _not_ours(path: Path, record: str) -> ValueError:
    return ValueError(f"{path} exists but was not made by this sweep (it has no {record}); the sweep never removes "
                      f"or replaces a folder it did not create: move or rename it, or change the sweep's name or "
                      f"output_root")


def _is_ours(path: Path, record: str) -> bool:
    return read_record(path / record) is not None


def _check_own_folder(path: Path) -> None:
    """A folder of the sweep (``.work``, ``failed``, ...) must be a real folder, not a link out."""
    if path.is_symlink():
        raise ValueError(f"{path} is a symbolic link; the sweep writes only into real folders: remove the link")
    if path.exists() and not path.is_dir():
        raise ValueError(f"{path} is not a folder; remove or rename it")


def _check_sweep_dir(sweep_dir: Path) -> None:
    for parent in reversed(sweep_dir.parents):
        if parent.exists() and not parent.is_dir():
            raise ValueError(f"output_root: {parent} is a file, not a folder; choose another output_root")
    if sweep_dir.is_symlink() or (sweep_dir.exists() and not sweep_dir.is_dir()):
        raise ValueError(f"{sweep_dir} is a symbolic link or not a folder; a sweep writes only into a real "
                         f"folder: remove it or change the sweep's name or output_root")
    for own in OWN_DIRS:
        _check_own_folder(sweep_dir / own)
    if (sweep_dir / LOCK_NAME).is_symlink() or (sweep_dir / LOCK_NAME).is_dir():
        raise ValueError(f"{sweep_dir / LOCK_NAME} is a symbolic link or a folder; remove it")


def _check_nothing_foreign(sweep_dir: Path, run_ids) -> None:
    """Before any run starts: every folder a run may replace was made by the sweep."""
    for run_id in run_ids:
        final = inside(sweep_dir, run_id)
        if os.path.lexists(final) and not _is_ours(final, RUN_RECORD_NAME):
            raise _not_ours(final, RUN_RECORD_NAME)
        failed = inside(sweep_dir, FAILED_DIR, run_id)
        if os.path.lexists(failed) and not _is_ours(failed, ERROR_RECORD_NAME):
            raise _not_ours(failed, ERROR_RECORD_NAME)


def _move_to_stale(sweep_dir: Path, run_id: str) -> Path:
    """Move a finished run's folder to ``stale/<run>/<UTC time>/`` (every generation kept)."""
    generations = inside(sweep_dir, STALE_DIR, run_id)
    generations.mkdir(parents=True, exist_ok=True)
    stamp = _utc_stamp()
    for n in itertools.count():
        target = inside(generations, f"{stamp}-{n}" if n else stamp)
        if not os.path.lexists(target):
            os.replace(inside(sweep_dir, run_id), target)
            return target


# ----------------------------------------------------------------------------- one run

def _record_final_folder(results_path: Path, work: Path, final: Path) -> None:
    """Point ``results.json``'s ``parameters.output_dir`` at the run's final folder, not ``.work/``."""
    if results_path.is_symlink() or not results_path.is_file():
        return
    document = read_record(results_path)
    parameters = document.get("parameters") if document else None
    if isinstance(parameters, dict) and parameters.get("output_dir") == str(work):
        parameters["output_dir"] = str(final)
        write_json_atomic(results_path, document)


def _injected(run: Run, sweep_dir: Path) -> dict:
    """Parameters the sweep gives a notebook that declares them and is not given them by the config.

    ``baseline_cache``: the sweep's shared folder of trained baselines (see
    :class:`pbmlib.learn.baseline_cache.BaselineCache`). ``backup_dir``: ``.work/<run>/backup``,
    kept across attempts and invocations until the run finishes, so a training killed
    part-way (with its worker or its sweep) resumes from its last finished epoch (Keras'
    ``BackupAndRestore``). Neither is part of the fingerprint: both give the same results.
    """
    import papermill as pm

    declared = pm.inspect_notebook(str(run.notebook))
    given = {}
    if "baseline_cache" in declared:
        given["baseline_cache"] = str(inside(sweep_dir, BASELINES_DIR))
    if "backup_dir" in declared:
        given["backup_dir"] = str(inside(sweep_dir, WORK_DIR, run.run_id, BACKUP_DIR))
    return given


def _remove_if_empty(path: Path) -> None:
    try:
        path.rmdir()
    except OSError:
        pass


def execute_run(run: Run, sweep_dir: Path, kernel_name: str | None, git: tuple, stop=None) -> dict:
    """Run one notebook in its own attempt folder and move it into place only when it finished.

    Runs here, in a thread of the sweep, or in a Dask worker. Every attempt gets its own
    folder ``.work/<run>/<host>-<pid>-<random>/``: a worker that died part-way (its
    kernel may outlive it and keep writing) never shares a folder with the attempt that
    replaces it, and only a finished attempt is moved to ``<run>/``; if another attempt
    got there first, this one is discarded, so a run is never counted twice.

    ``stop`` (a :class:`threading.Event`, local runs only): when set, an error of the
    notebook (its kernel was stopped) makes the run ``"interrupted"``, not failed; the
    attempt folder is left for the next sweep to clean.
    """
    import papermill as pm

    if not (sweep_dir / LOCK_NAME).is_file():
        raise RuntimeError(f"{socket.gethostname()} (pid {os.getpid()}) cannot see the sweep folder {sweep_dir}: "
                           f"put output_root on storage every worker mounts at the same path")
    if run_state(sweep_dir, run) == "finished":  # Dask recomputing a result its lost worker held: done already
        return read_record(inside(sweep_dir, run.run_id) / RUN_RECORD_NAME)
    attempts = inside(sweep_dir, WORK_DIR, run.run_id)
    attempts.parent.mkdir(exist_ok=True)
    attempts.mkdir(exist_ok=True)
    work = inside(attempts, f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    work.mkdir()
    final = inside(sweep_dir, run.run_id)
    failed = inside(sweep_dir, FAILED_DIR, run.run_id)
    record = {"run_id": run.run_id, "stage": run.stage, "status": "running", "notebook": str(run.notebook),
              "parameters": {**run.parameters, "output_dir": str(final)}, "output_dir": str(final),
              "fingerprint": run_fingerprint(run), "git_commit": git[0], "git_dirty": git[1],
              "kernel_name": kernel_name, "attempt": work.name, "versions": versions(platform=True),
              "started": _now()}
    t0 = time.perf_counter()
    try:
        # No cwd=: papermill would chdir the whole process, and runs share it across threads.
        pm.execute_notebook(str(run.notebook), str(work / run.notebook.name),
                            parameters={**_injected(run, sweep_dir), **run.parameters, "output_dir": str(work)},
                            kernel_name=kernel_name, progress_bar=False, extra_arguments=_QUIET_KERNEL)
    except Exception as exc:  # papermill raises PapermillExecutionError with the cell's traceback
        if stop is not None and stop.is_set():  # its kernel was stopped by an interrupt: not the notebook's fault
            return {**record, "status": "interrupted", "error": "interrupted", "ended": _now()}
        if hasattr(exc, "ename"):  # the error raised inside the notebook
            error = f"{exc.ename}: {exc.evalue} (cell {getattr(exc, 'exec_count', '?')})"
        else:
            error = f"{type(exc).__name__}: {exc}"
        record.update(status="failed", output_dir=str(failed), parameters={**run.parameters, "output_dir":
                      str(failed)}, seconds=time.perf_counter() - t0, ended=_now(), error=error,
                      traceback=traceback.format_exc())
        if os.path.lexists(failed) and not _is_ours(failed, ERROR_RECORD_NAME):
            raise _not_ours(failed, ERROR_RECORD_NAME) from None
        remove(failed)  # an earlier failure of this run (ours: it has error.json)
        failed.parent.mkdir(exist_ok=True)
        os.replace(work, failed)
        write_json_atomic(failed / ERROR_RECORD_NAME, record)
        _remove_if_empty(attempts)
        return record
    record.update(status="finished", seconds=time.perf_counter() - t0, ended=_now())
    _record_final_folder(work / RESULTS_NAME, work, final)
    write_json_atomic(work / RUN_RECORD_NAME, record)
    if run_state(sweep_dir, run) == "finished":  # another attempt finished first: count the run once
        remove(work)
        _remove_if_empty(attempts)
        return read_record(final / RUN_RECORD_NAME) or record
    if os.path.lexists(final):  # a finished run of other parameters (moved to stale/ before; here if raced)
        if not _is_ours(final, RUN_RECORD_NAME):
            raise _not_ours(final, RUN_RECORD_NAME)
        _move_to_stale(sweep_dir, run.run_id)
    os.replace(work, final)  # atomic: the run appears finished all at once
    if _is_ours(failed, ERROR_RECORD_NAME):
        remove(failed)
    remove(attempts)  # attempts of dead workers (whose kernels may still write)
    return record


# ----------------------------------------------------------------------------- interrupts

def _kill_kernels() -> int:
    """Stop every notebook kernel this process started (each leads its own session: its whole group goes)."""
    import psutil

    killed = 0
    for child in psutil.Process().children(recursive=False):
        try:
            if any("ipykernel" in part for part in child.cmdline()):
                os.killpg(child.pid, signal.SIGKILL)
                killed += 1
        except (psutil.Error, ProcessLookupError, PermissionError):
            continue
    return killed


class _Interrupts:
    """First SIGINT/SIGTERM: ``on_first`` (cancel queued runs) and a grace timer; second, or the timer:
    ``on_second`` (stop the kernels). Handlers are installed only in the main thread."""

    def __init__(self, on_first, on_second, grace: float, write):
        self.on_first, self.on_second, self.grace, self.write = on_first, on_second, grace, write
        self.count = 0
        self.stop = threading.Event()
        self._previous = {}
        self._timer = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        if self._timer is not None:
            self._timer.cancel()
        return False

    def _handle(self, signum, frame):
        self.count += 1
        if self.count == 1:
            self.stop.set()
            self.write(f"interrupted: queued runs cancelled; running runs get {self.grace:g} s to finish "
                       f"(interrupt again to stop them now)")
            self.on_first()
            self._timer = threading.Timer(self.grace, self._second)
            self._timer.daemon = True
            self._timer.start()
        else:
            self._second()

    def _second(self):
        if self.on_second():
            self.write("stopping the running notebooks' kernels")


# ----------------------------------------------------------------------------- the sweep

def _claim_record(sweep_dir: Path, document: dict) -> Path:
    """Write the invocation's record to ``sweeps/<UTC time>.json``, never over an earlier one."""
    folder = inside(sweep_dir, RECORDS_DIR)
    folder.mkdir(exist_ok=True)
    stamp = _utc_stamp()
    for n in itertools.count():
        path = inside(sweep_dir, RECORDS_DIR, f"{stamp}{f'-{n}' if n else ''}.json")
        try:
            write_json_atomic(path, document, exclusive=True)
        except FileExistsError:
            continue
        return path


def run_sweep(config: dict | str | os.PathLike, *, workers: int | None = None, kernel_name: str | None = None,
              progress: bool = True, analysis: bool = True, scheduler: str | None = None, client=None,
              max_runs: int = DEFAULT_MAX_RUNS, grace: float = GRACE_SECONDS) -> dict:
    """Execute every unfinished run of a sweep (several at once with ``workers`` > 1).

    Everything is checked before anything is written: the config
    (:func:`pbmlib.workbench.sweeps.config.check_sweep`), the arguments, that every folder
    the sweep touches stays inside the sweep folder, and that every folder it may replace
    was made by the sweep. The sweep folder is locked for the whole invocation.

    Parameters
    ----------
    config : dict or path
        A sweep config, or the path of its YAML file.
    workers : int, default=None
        Runs at once; None takes the config's ``workers``.
    kernel_name : str, default=None
        Jupyter kernel; None takes each notebook's own.
    progress : bool, default=True
        Show a progress bar.
    analysis : bool, default=True
        Run the config's analysis notebook last.
    scheduler : str, optional
        Address of a Dask scheduler (``tcp://host:8786``): every run becomes a task on
        its cluster (see :mod:`pbmlib.workbench.cluster`). Overrides the config's
        ``cluster:`` section.
    client : distributed.Client, optional
        Run on this client's cluster instead (left open).
    max_runs : int, default=10000
        Refuse a config planning more runs than this (before anything is planned).
    grace : float, default=30
        Seconds running runs get to finish after the first Ctrl-C.

    Returns
    -------
    dict
        ``sweep_dir``; ``finished`` (ids run now); ``skipped`` (finished before with the
        same fingerprint); ``changed`` (ids finished before with other parameters or
        notebook code: re-run now, the previous results moved to ``stale/<run>/<time>/``);
        ``failed`` (id -> error); ``analysis`` (path of the executed analysis notebook or
        None); ``not_in_config`` (finished runs in the folder that this config does not
        plan: kept, and read by the analysis); ``record`` (this invocation's
        ``sweeps/<time>.json``).

    Raises
    ------
    ValueError
        A bad config or argument, a path leading out of the sweep folder, or a folder at a
        run's path that the sweep did not make.
    SweepLockedError
        Another sweep is running on the same folder.
    SweepInterrupted
        Ctrl-C or SIGTERM; its ``summary`` is the dict above, written to the record first.
    """
    if workers is not None:
        check_workers(workers, "workers")
    if kernel_name is not None and (not isinstance(kernel_name, str) or not kernel_name):
        raise ValueError(f"kernel_name must be the name of a Jupyter kernel or None, got {kernel_name!r}")
    config = (check_sweep(config, max_runs=max_runs) if isinstance(config, dict)
              else load_sweep(config, max_runs=max_runs))
    runs = plan_runs(config)
    workers = workers or config["workers"]
    sweep_dir = Path(config["output_root"]).resolve() / config["name"]  # absolute: runs share the process
    _check_sweep_dir(sweep_dir)
    _check_nothing_foreign(sweep_dir, [run.run_id for run in runs] + [ANALYSIS_DIR] * bool(config.get("analysis")))
    sweep_dir.mkdir(parents=True, exist_ok=True)
    try:
        with lock(sweep_dir / LOCK_NAME, what="sweep folder", target=sweep_dir):
            return _run_on(config, runs, sweep_dir, dict(workers=workers, kernel_name=kernel_name,
                                                         progress=progress, analysis=analysis, grace=grace),
                           scheduler=scheduler, client=client)
    except SweepLockedError:
        raise
    except FolderLockedError as exc:
        if str(exc).startswith("sweep folder "):
            raise SweepLockedError(f"{sweep_dir} is in use by another sweep "
                                   f"{str(exc).split(' is in use by another process ', 1)[1]}") from None
        raise


def _run_on(config, runs, sweep_dir, options, *, scheduler, client) -> dict:
    if client is None and scheduler is None and config.get("cluster") is None:
        return _run_locked(config, runs, sweep_dir, options, None)
    if client is not None:
        check_workers_see(client, sweep_dir)
        return _run_locked(config, runs, sweep_dir, options, client)
    with open_client(scheduler=scheduler, cluster=config.get("cluster"), progress=options["progress"]) as own:
        check_workers_see(own, sweep_dir)
        return _run_locked(config, runs, sweep_dir, options, own)


def _clean_work(sweep_dir: Path) -> Path:
    """Remove attempts interrupted earlier (no other sweep can be using them); training backups stay."""
    work_root = inside(sweep_dir, WORK_DIR)
    if work_root.is_dir():
        for run_work in work_root.iterdir():
            for leftover in (run_work.iterdir() if run_work.is_dir() and not run_work.is_symlink() else [run_work]):
                if leftover.name != BACKUP_DIR or leftover.parent == work_root:
                    remove(leftover)
    return work_root


def _run_locked(config, runs, sweep_dir, options, client) -> dict:
    from tqdm.auto import tqdm

    for own in OWN_DIRS:  # again, now that we hold the lock
        _check_own_folder(sweep_dir / own)
    _check_nothing_foreign(sweep_dir, [run.run_id for run in runs])
    work_root = _clean_work(sweep_dir)
    states = {run.run_id: run_state(sweep_dir, run) for run in runs}
    todo = [run for run in runs if states[run.run_id] != "finished"]
    skipped = [run.run_id for run in runs if states[run.run_id] == "finished"]
    changed = [run.run_id for run in runs if states[run.run_id] == "changed"]
    planned = {run.run_id for run in runs}
    not_in_config = sorted(p.name for p in sweep_dir.iterdir()
                           if p.name not in planned and p.name not in RESERVED_NAMES and not p.name.startswith(".")
                           and p.is_dir() and not p.is_symlink() and (p / RUN_RECORD_NAME).is_file())
    git = git_state()
    summary = {"sweep_dir": str(sweep_dir), "finished": [], "skipped": skipped, "changed": changed, "failed": {},
               "analysis": None, "not_in_config": not_in_config, "record": None}
    document = {"status": "running", "started": _now(), "pid": os.getpid(), "host": socket.gethostname(),
                "argv": list(sys.argv), "git_commit": git[0], "git_dirty": git[1],
                "versions": versions(platform=True), "workers": options["workers"],
                "kernel_name": options["kernel_name"], "runs": [run.run_id for run in runs],
                "scheduler": client.scheduler.address if client is not None else None, "config": config}
    record_path = _claim_record(sweep_dir, {**document, **summary})
    summary["record"] = str(record_path)
    interrupted = False
    try:
        for run_id in changed:  # out of the results before anything runs: no stale result is read as current
            _move_to_stale(sweep_dir, run_id)
        with tqdm(total=len(runs), initial=len(skipped), desc=config["name"], disable=not options["progress"]) as bar:
            if changed:
                bar.write(f"{len(changed)} finished run(s) changed (parameters or notebook) since they ran: "
                          f"re-running them; previous results in {sweep_dir / STALE_DIR}")
            interrupted = _run_all(todo, sweep_dir, options, client, git, summary, bar)
        if options["analysis"] and config.get("analysis") and not interrupted:
            _run_analysis(config, sweep_dir, options, git, summary)
        _remove_if_empty(work_root)
        document["status"] = "interrupted" if interrupted else "done"
    except BaseException:
        document["status"] = "interrupted"
        raise
    finally:
        if document["status"] == "interrupted":  # what is on disk is what finished
            summary["finished"] = [run.run_id for run in todo if run_state(sweep_dir, run) == "finished"]
            summary["interrupted"] = True
        document["ended"] = _now()
        write_json_atomic(record_path, {**document, **summary})
    if interrupted:
        raise SweepInterrupted(summary)
    return summary


@contextmanager
def _quiet_kernel_clients():
    """Tornado's log of callbacks failing inside the kernel clients (a kernel shut down while a message
    was in flight) is not for users: a notebook's own errors fail its run with their traceback."""
    import logging

    logger = logging.getLogger("tornado.general")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def _run_all(todo, sweep_dir, options, client, git, summary, bar) -> bool:
    """Submit every run, collect the results; True when interrupted."""
    futures: dict = {}
    with _executors(client, options["workers"]) as (submit, cancel_queued):
        interrupts = _Interrupts(on_first=lambda: cancel_queued(futures), on_second=_kill_kernels,
                                 grace=options["grace"], write=bar.write)
        with interrupts, _quiet_kernel_clients():
            for run in todo:
                if interrupts.count:  # interrupted while submitting: nothing more is queued
                    break
                futures[submit(run.resources, execute_run, run, sweep_dir, options["kernel_name"], git,
                               interrupts.stop if client is None else None)] = run
            for future in as_completed(futures):
                run = futures[future]
                try:
                    record = future.result()
                except CancelledError:
                    continue
                except Exception as exc:  # the runner itself failed (disk full, ...): record it, carry on
                    record = {"run_id": run.run_id, "status": "failed",
                              "error": f"sweep runner: {type(exc).__name__}: {exc}"}
                if record["status"] == "finished":
                    summary["finished"].append(record["run_id"])
                elif record["status"] == "failed":
                    summary["failed"][record["run_id"]] = record["error"]
                    bar.write(f"run {record['run_id']} failed: {record['error'].splitlines()[0][:200]}")
                bar.update(1)
        return interrupts.count > 0


def _run_analysis(config, sweep_dir, options, git, summary) -> None:
    notebook = Path(config["analysis"])
    parameters = {"sweep_dir": str(sweep_dir)}
    analysis_run = Run("analysis", notebook, parameters, ANALYSIS_DIR,
                       _fingerprint(notebook_digest(notebook), parameters))
    if run_state(sweep_dir, analysis_run) == "changed":
        _move_to_stale(sweep_dir, ANALYSIS_DIR)
    try:  # on this machine: it reads the whole sweep folder
        record = execute_run(analysis_run, sweep_dir, options["kernel_name"], git)
    except Exception as exc:
        record = {"status": "failed", "error": f"sweep runner: {type(exc).__name__}: {exc}"}
    if record["status"] == "finished":
        summary["analysis"] = str(sweep_dir / ANALYSIS_DIR / notebook.name)
    else:
        summary["failed"]["analysis"] = record["error"]


@contextmanager
def _executors(client, workers: int):
    """``(submit(resources, fn, *args), cancel_queued(futures))``: a thread pool of ``workers`` here,
    or Dask tasks (one executor per resource set) on ``client``."""
    if client is None:
        pool = ThreadPoolExecutor(max_workers=workers)
        try:
            # Future.cancel() succeeds only for runs that have not started: running ones carry on
            yield (lambda resources, fn, *args: pool.submit(fn, *args),
                   lambda futures: [future.cancel() for future in list(futures)])
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        return
    executors = {}

    def submit(resources, fn, *args):
        key = tuple(sorted(resources.items()))
        if key not in executors:
            executors[key] = client.get_executor(pure=False, resources=dict(resources) or None)
        return executors[key].submit(fn, *args)

    try:  # on a cluster every task is cancelled; a run already executing may still land (counted from disk)
        yield submit, lambda futures: [future.cancel() for future in list(futures)]
    finally:
        for executor in executors.values():
            executor.shutdown(wait=False)
