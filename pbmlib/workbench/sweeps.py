"""Batch runs of the parameterized notebooks with papermill: grids, resumable sweeps.

A sweep config (YAML) names stages; each stage runs one notebook over the cartesian
product of its ``grid`` (plus fixed ``parameters``)::

    name: default
    output_root: papermill_runs
    workers: 2
    stages:
      - name: mixing
        notebook: notebooks/01_mixing.ipynb
        parameters: {dataset: faces, seed: 0}
        grid: {block_height: [1, 5, 25], block_width: [1, 5, 25]}
      - name: training
        notebook: notebooks/02_training.ipynb
        grid: {"block_height,block_width": [[25, 5], [5, 5]]}   # zipped: 2 runs, not 4
    analysis: notebooks/04_analysis.ipynb   # optional: runs last, over the whole sweep

A grid key naming several parameters separated by commas takes a list of tuples that
vary together; other keys combine as a cartesian product. Every parameter name, in
``grid`` and ``parameters``, must be declared in the notebook's ``parameters`` cell
(read with :func:`papermill.inspect_notebook`): a typo fails the sweep before any run.
The sweep ``name`` and the stage names are plain folder names.

The sweep folder ``<output_root>/<name>/`` holds:

``<run>/``
    A finished run: the executed notebook, its files and ``run.json`` (parameters, the
    run's *fingerprint*, the final folder, the git commit of the code, versions).
``.work/<run>/<attempt>/``
    A run in progress. Every attempt executes in its own folder and is moved to ``<run>/``
    only when it succeeded, so a run that died half way never looks finished.
    ``.work/<run>/backup/`` keeps its trainings' backups across attempts (notebooks that
    declare ``backup_dir``): a restarted run resumes from its last finished epoch.
``failed/<run>/``
    A run that raised: ``error.json`` and the executed notebook with its traceback.
``stale/<run>/``
    The previous results of a run whose parameters or notebook changed since it finished.
``baselines/``
    Training records of the unprotected baselines, shared by every run of the sweep that
    trains the same baseline (notebooks declaring ``baseline_cache`` get this folder).
``sweeps/<UTC time>.json``
    One record per invocation (never overwritten): the config, what ran, what failed.
``.lock``
    Held while a sweep runs; a second sweep on the same folder is refused
    (:class:`SweepLockedError`). The lock dies with its process.

A run counts as finished only for the exact parameters and notebook code it ran with:
its fingerprint is a SHA-256 of both (code cells and kernel of the notebook, every
parameter). A re-run of the sweep skips exactly the finished runs with an unchanged
fingerprint; a changed run is re-run and reported in the summary's ``changed``.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import itertools
import json
import keyword
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import traceback
import uuid
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .._fs import pid_alive, write_bytes_atomic
from .._io import to_json, versions
from .cluster import check_cluster, check_workers_see, open_client

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: a lock file holding the owner's pid
    fcntl = None

__all__ = ["Run", "SweepLockedError", "load_sweep", "check_sweep", "plan_runs", "run_sweep", "is_finished"]

RUN_RECORD_NAME = "run.json"
LOCK_NAME = ".lock"
WORK_DIR = ".work"
FAILED_DIR = "failed"
STALE_DIR = "stale"
RECORDS_DIR = "sweeps"
ANALYSIS_DIR = "analysis"
BASELINES_DIR = "baselines"
BACKUP_DIR = "backup"  # inside .work/<run>/: training backups, kept until the run finishes
#: Folder names of the sweep itself; no stage may take one.
RESERVED_NAMES = frozenset({FAILED_DIR, STALE_DIR, RECORDS_DIR, ANALYSIS_DIR, BASELINES_DIR})

# The kernel's own log (e.g. "running over TCP without encryption": it listens on 127.0.0.1 only; the
# "KeyboardInterrupt caught" of a kernel being shut down) is not for users: an error of the notebook's code
# still fails the run with its traceback, and its warnings still reach the notebook's outputs.
_QUIET_KERNEL = ["--IPKernelApp.log_level=CRITICAL"]
_RESULTS_FILE = "results.json"  # written by the notebooks (pbmlib.workbench.results)
_CONFIG_KEYS = ("name", "output_root", "workers", "stages", "analysis", "cluster")
_STAGE_KEYS = ("name", "notebook", "parameters", "grid", "resources")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
_NAME_RULE = "letters, digits, '_', '-' and '.', starting with a letter or digit, at most 100 characters"
_MAX_RUN_ID = 150
_CODE_ROOT = Path(__file__).resolve().parents[2]  # the checkout holding pbmlib, for the git commit


class SweepLockedError(RuntimeError):
    """Another sweep is running on the same sweep folder."""


@dataclass(frozen=True)
class Run:
    """One notebook execution of a sweep.

    ``fingerprint`` is the SHA-256 of the notebook's code and the parameters
    (:func:`plan_runs` fills it in); a finished run whose recorded fingerprint differs
    is stale.
    """

    stage: str
    notebook: Path
    parameters: dict = field(hash=False)
    run_id: str = ""
    fingerprint: str = ""
    #: Dask worker resources one run of the stage holds, e.g. ``{"GPU": 1}`` (ignored without a cluster)
    resources: dict = field(default_factory=dict, hash=False, compare=False)


# ----------------------------------------------------------------------------- the config

class _StrictLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping (YAML keeps the last)."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.setdefault(key, key_node.start_mark.line)
                except TypeError:  # an unhashable key: the base class says so
                    continue
                if first != key_node.start_mark.line:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"key {key!r} is given twice (first on line {first + 1})",
                        key_node.start_mark)
        return super().construct_mapping(node, deep=deep)


def _one_line(text) -> str:
    return " ".join(str(text).split())


def _short(value, limit: int = 80) -> str:
    text = "null" if value is None else _one_line(repr(value))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _yaml_error(path: Path, exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    where = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    detail = _one_line(problem) + (f" ({_one_line(context)})" if context else "")
    return f"{path}{where}: invalid YAML: {detail}; fix the config there"


def load_sweep(path: str | os.PathLike) -> dict:
    """Read and check a sweep config (YAML); see :func:`check_sweep`.

    Raises
    ------
    ValueError
        One line naming the file (and the line, for YAML errors) and what to change.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValueError(f"{path}: no such sweep config; pass the path of a YAML file such as "
                         f"sweeps/default.yaml") from None
    except IsADirectoryError:
        raise ValueError(f"{path}: is a folder; pass the path of a YAML sweep config") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text (byte {exc.start}); save the config as UTF-8") from None
    except OSError as exc:
        raise ValueError(f"{path}: cannot read the sweep config ({exc.strerror})") from None
    try:
        config = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader
    except yaml.YAMLError as exc:
        raise ValueError(_yaml_error(path, exc)) from None
    return check_sweep(config, base=path.resolve().parent, source=str(path))


def _check_keys(mapping: dict, allowed, where: str) -> None:
    for key in mapping:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"{where}: unknown key {_short(key)}{hint}; allowed: {', '.join(allowed)}")


def _check_name(value, where: str, *, stage: bool) -> str:
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise ValueError(f"{where} must be a plain folder name ({_NAME_RULE}), got {_short(value)}")
    if stage and value.lower() in RESERVED_NAMES:
        raise ValueError(f"{where} {value!r} is the name of one of the sweep's own folders "
                         f"({', '.join(sorted(RESERVED_NAMES))}); rename the stage")
    return value


def _check_value(value, where: str) -> None:
    """Parameters are what YAML and papermill carry: None, bool, int, float, str, list, dict."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return
    if isinstance(value, list):
        for item in value:
            _check_value(item, where)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"{where}: mapping keys must be strings, got {_short(key)}")
            _check_value(item, where)
        return
    hint = "; use a list" if isinstance(value, tuple) else ""
    raise ValueError(f"{where}: {_short(value)} is a {type(value).__name__}; parameters must be None, bool, "
                     f"int, float, str, list or dict{hint}")


def _check_parameter_name(name, where: str) -> str:
    if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
        raise ValueError(f"{where}: {_short(name)} is not a parameter name; use the Python identifier the "
                         f"notebook's parameters cell declares, such as block_height")
    if name == "output_dir":
        raise ValueError(f"{where}: output_dir is set by the sweep to each run's folder; remove it")
    return name


def _find_notebook(value, base: Path, where: str) -> Path:
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{where} must be the path of an .ipynb notebook, got {_short(value)}")
    if not value.endswith(".ipynb"):
        raise ValueError(f"{where} must be an .ipynb notebook (papermill runs those), got {value!r}")
    for candidate in (Path(value), base / value, base.parent / value):
        if candidate.is_file():
            return candidate.resolve()
    raise ValueError(f"{where}: {value!r} not found (looked in the working directory, {base} and "
                     f"{base.parent}); fix the path")


def _declared_parameters(notebook: Path, shown: str, where: str, cache: dict) -> list[str]:
    if notebook not in cache:
        import papermill as pm

        try:
            cache[notebook] = list(pm.inspect_notebook(str(notebook)))
        except Exception as exc:  # not JSON, not a notebook, ...
            raise ValueError(f"{where}: cannot read the parameters of {shown} ({type(exc).__name__}: "
                             f"{_short(str(exc), 120)}); pass a valid .ipynb notebook") from None
    return cache[notebook]


def _check_declared(names, notebook: Path, shown: str, where: str, cache: dict, *, required=("output_dir",)):
    declared = _declared_parameters(notebook, shown, where, cache)
    for name in required:
        if name not in declared:
            raise ValueError(f"{where}: {shown} declares no {name!r} in its parameters cell (a cell tagged "
                             f"'parameters'); the sweep passes {name} to every run: add it there")
    for kind, name in names:
        if name not in declared:
            close = difflib.get_close_matches(name, declared, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"{where}: {kind} {name!r} is not a parameter of {shown}{hint}; it declares "
                             f"{', '.join(declared)}")


def check_sweep(config: dict, *, base: str | os.PathLike | None = None, source: str = "sweep config") -> dict:
    """Check a sweep config and fill in defaults (a new dict; ``config`` is not modified).

    Relative notebook paths are looked up in the working directory, then beside ``base``
    (the config's folder) and its parent; they come back absolute. Every parameter name
    must be declared in its notebook's parameters cell (and the notebook must declare
    ``output_dir``; the analysis notebook also ``sweep_dir``).

    Raises
    ------
    ValueError
        One line naming ``source``, the stage and the key, and what to change.
    """
    if config is None:
        raise ValueError(f"{source}: the config is empty; it needs a 'name' and a list of 'stages'")
    if not isinstance(config, dict):
        raise ValueError(f"{source}: expected a mapping with 'name' and 'stages', got {_short(config)}")
    _check_keys(config, _CONFIG_KEYS, source)
    for key in ("name", "stages"):
        if key not in config:
            raise ValueError(f"{source}: missing {key!r}; a sweep config needs a 'name' and a list of 'stages'")
    config = copy.deepcopy(config)
    base = Path(base) if base is not None else Path.cwd()
    _check_name(config["name"], f"{source}: name", stage=False)
    stages = config["stages"]
    if not isinstance(stages, list) or not stages:
        raise ValueError(f"{source}: stages must be a non-empty list of stages, each with a name and a notebook, "
                         f"got {_short(stages)}")
    declared_cache: dict = {}
    names_seen: set[str] = set()
    for index, stage in enumerate(stages, 1):
        where = f"{source}: stage {index}"
        if not isinstance(stage, dict):
            raise ValueError(f"{where}: expected a mapping with a name and a notebook, got {_short(stage)}")
        _check_keys(stage, _STAGE_KEYS, where)
        for key in ("name", "notebook"):
            if key not in stage:
                raise ValueError(f"{where}: missing {key!r}; every stage needs a name and a notebook")
        _check_name(stage["name"], f"{where}: name", stage=True)
        where = f"{source}: stage {stage['name']!r}"
        if stage["name"].lower() in names_seen:
            raise ValueError(f"{where}: two stages have this name; give each stage its own name")
        names_seen.add(stage["name"].lower())
        for key in ("grid", "parameters"):
            value = stage.get(key)
            stage[key] = {} if value is None else value
            if not isinstance(stage[key], dict):
                raise ValueError(f"{where}: {key} must be a mapping of parameter names to values, "
                                 f"got {_short(value)}")
        names = []  # (kind, name), in config order
        for name, value in stage["parameters"].items():
            _check_parameter_name(name, f"{where}: parameters")
            _check_value(value, f"{where}: parameters: {name}")
            names.append(("parameter", name))
        for key, values in stage["grid"].items():
            if not isinstance(key, str):
                _check_parameter_name(key, f"{where}: grid")
            parts = [part.strip() for part in key.split(",")]
            for part in parts:
                _check_parameter_name(part, f"{where}: grid key {key!r}")
            if not isinstance(values, list) or not values:
                raise ValueError(f"{where}: grid entry {key!r} must be a non-empty list of values, "
                                 f"got {_short(values)}")
            if len(parts) > 1 and not all(isinstance(v, list) and len(v) == len(parts) for v in values):
                raise ValueError(f"{where}: grid entry {key!r} needs lists of {len(parts)} values, "
                                 f"got {_short(values)}")
            _check_value(values, f"{where}: grid: {key}")
            names += [("grid key", part) for part in parts]
        counts: dict[str, int] = {}
        for _, name in names:
            counts[name] = counts.get(name, 0) + 1
            if counts[name] == 2:
                raise ValueError(f"{where}: parameter {name!r} is given twice (in parameters and grid, or in "
                                 f"two grid keys); give it once")
        resources = stage.get("resources")
        stage["resources"] = {} if resources is None else resources
        if not isinstance(stage["resources"], dict) or not all(
                isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0
                for k, v in stage["resources"].items()):
            raise ValueError(f"{where}: resources must map resource names to positive amounts, e.g. {{GPU: 1}}, "
                             f"got {_short(resources)}")
        shown = str(stage["notebook"])
        notebook = _find_notebook(stage["notebook"], base, f"{where}: notebook")
        _check_declared(names, notebook, shown, where, declared_cache)
        stage["notebook"] = str(notebook)
    if config.get("analysis") is not None:
        shown = str(config["analysis"])
        notebook = _find_notebook(config["analysis"], base, f"{source}: analysis")
        _check_declared([], notebook, shown, f"{source}: analysis", declared_cache,
                        required=("sweep_dir", "output_dir"))
        config["analysis"] = str(notebook)
    config.setdefault("output_root", "papermill_runs")
    root = config["output_root"]
    if isinstance(root, os.PathLike):
        config["output_root"] = root = os.fspath(root)
    if not isinstance(root, str) or not root.strip() or "\0" in root:
        raise ValueError(f"{source}: output_root must be the path of a folder, got {_short(root)}")
    config.setdefault("workers", 1)
    _check_workers(config["workers"], f"{source}: workers")
    config["cluster"] = check_cluster(config.get("cluster"), source)
    return config


def _check_workers(workers, where: str) -> int:
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"{where} must be a whole number of runs at once, 1 or more, got {_short(workers)}")
    return workers


# ----------------------------------------------------------------------------- planning

def _slug(value) -> str:
    text = "x".join(str(v) for v in value) if isinstance(value, (list, tuple)) else str(value)
    return re.sub(r"[^A-Za-z0-9.+-]+", "_", text).strip("_") or "none"


def _sha256(obj) -> str:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _notebook_digest(path: Path) -> str:
    """SHA-256 of what a notebook runs: its code cells and its kernel (not outputs or metadata)."""
    import nbformat

    notebook = nbformat.read(str(path), as_version=4)
    code = [cell.source for cell in notebook.cells if cell.cell_type == "code"]
    kernel = notebook.metadata.get("kernelspec", {}).get("name")
    return _sha256({"code": code, "kernel": kernel})


def _fingerprint(notebook_digest: str, parameters: dict) -> str:
    return _sha256({"notebook": notebook_digest, "parameters": parameters})


def _run_fingerprint(run: Run) -> str:
    return run.fingerprint or _fingerprint(_notebook_digest(run.notebook), run.parameters)


def plan_runs(config: dict) -> list[Run]:
    """All runs of a checked sweep config, in a stable order, each with a readable unique id.

    A run's id is ``<stage>__<key>-<value>__...`` over its grid values (the stage name
    alone without a grid); each run carries its fingerprint (:class:`Run`).
    """
    runs = []
    digests: dict[str, str] = {}
    for stage in config["stages"]:
        grid = stage["grid"]
        keys = list(grid)
        notebook = Path(stage["notebook"])
        if stage["notebook"] not in digests:
            digests[stage["notebook"]] = _notebook_digest(notebook)
        for combo in itertools.product(*(grid[k] for k in keys)):
            varied = {}
            for key, value in zip(keys, combo):
                names = [k.strip() for k in key.split(",")]
                varied.update(zip(names, value) if len(names) > 1 else [(names[0], value)])
            params = {**stage["parameters"], **varied}
            run_id = "__".join([stage["name"]] + [f"{k}-{_slug(v)}" for k, v in varied.items()])
            if len(run_id) > _MAX_RUN_ID:  # long values (lists of dicts): keep folder names short
                run_id = f"{run_id[:_MAX_RUN_ID - 17]}-{_sha256(varied)[:16]}"
            runs.append(Run(stage["name"], notebook, params, run_id,
                            _fingerprint(digests[stage["notebook"]], params), dict(stage.get("resources") or {})))
    seen: dict[str, Run] = {}
    for run in runs:
        if run.run_id in seen:
            raise ValueError(f"stage {run.stage!r}: two runs get the folder name {run.run_id!r} (values that "
                             f"differ only in characters a folder name cannot hold); change one of them")
        seen[run.run_id] = run
    return runs


def _read_record(path: Path):
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _run_state(sweep_dir: Path, run: Run) -> str:
    """``"finished"`` (same fingerprint), ``"changed"`` (finished with other parameters or code) or ``"missing"``."""
    record_path = sweep_dir / run.run_id / RUN_RECORD_NAME
    if not record_path.is_file():
        return "missing"
    record = _read_record(record_path)
    if record and record.get("status") == "finished" and record.get("fingerprint") == _run_fingerprint(run):
        return "finished"
    return "changed"


def is_finished(sweep_dir: str | os.PathLike, run: Run) -> bool:
    """Whether ``run`` finished in ``sweep_dir`` with exactly its parameters and notebook code."""
    return _run_state(Path(sweep_dir), run) == "finished"


# ----------------------------------------------------------------------------- files

def _inside(sweep_dir: Path, *parts: str) -> Path:
    """``sweep_dir/parts...``, refused unless it stays inside ``sweep_dir`` once links are resolved.

    The last part itself may be a link: it is removed or replaced as a link, never followed.
    """
    for part in parts:
        if part in ("", ".", "..") or "/" in part or os.sep in part or "\0" in part:
            raise ValueError(f"{part!r} is not a plain folder name; the sweep writes only inside {sweep_dir}")
    path = sweep_dir.joinpath(*parts)
    parent = path.parent.resolve()
    if not parent.is_relative_to(sweep_dir):
        raise ValueError(f"{path.parent} leads outside the sweep folder {sweep_dir} (a symbolic link); remove it")
    return path


def _check_own_folder(path: Path) -> None:
    """A folder of the sweep (``.work``, ``failed``, ...) must be a real folder, not a link out."""
    if path.is_symlink():
        raise ValueError(f"{path} is a symbolic link; the sweep writes only into real folders: remove the link")
    if path.exists() and not path.is_dir():
        raise ValueError(f"{path} is not a folder; remove or rename it")


def _remove(path: Path) -> None:
    """Remove a file, a link (not what it points to) or a folder tree, if there."""
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    elif path.is_dir():
        shutil.rmtree(path)


def _write_json(path: Path, obj, *, exclusive: bool = False) -> None:
    """Write JSON atomically (:func:`pbmlib._io.write_bytes_atomic`: temporary file + rename, the user's umask).

    ``exclusive=True`` never replaces an existing file (``FileExistsError``).
    """
    data = to_json(obj).encode()  # an object that cannot be written fails before anything is touched
    if exclusive:  # claim the name first: the rename then only replaces our own empty file
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    write_bytes_atomic(path, data)


def _git_state(root: Path | None = None) -> tuple[str | None, bool | None]:
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


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


# ----------------------------------------------------------------------------- the lock

class _SweepLock:
    """An exclusive lock on a sweep folder: ``flock`` on ``<sweep_dir>/.lock`` (released by the
    kernel when its process dies, so a lock left by a killed sweep is simply taken over). The file
    names the holder for the message; where ``fcntl`` is missing, the file itself is the lock and one
    naming a dead process on this host is taken over.
    """

    def __init__(self, sweep_dir: Path):
        self.sweep_dir = sweep_dir
        self.path = sweep_dir / LOCK_NAME
        self.fd = None

    def _holder(self) -> dict:
        try:
            holder = json.loads(self.path.read_text() or "{}")
        except (OSError, ValueError):
            return {}
        return holder if isinstance(holder, dict) else {}

    def _refuse(self, holder: dict):
        who = f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}, started {holder.get('started', '?')}"
        raise SweepLockedError(f"{self.sweep_dir} is in use by another sweep ({who}); wait for it to finish, "
                               f"or give this sweep another name or output_root")

    def acquire(self) -> None:
        me = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": _now()}).encode()
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
        if fcntl is not None:
            fd = os.open(self.path, flags, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                self._refuse(self._holder())
            os.ftruncate(fd, 0)
            os.pwrite(fd, me, 0)
            self.fd = fd
            return
        for _ in range(2):  # pragma: no cover - platforms without fcntl
            try:
                fd = os.open(self.path, flags | os.O_EXCL, 0o666)
            except FileExistsError:
                holder = self._holder()
                if holder.get("host") == socket.gethostname() and not pid_alive(holder.get("pid")):
                    self.path.unlink(missing_ok=True)  # left by a sweep that died
                    continue
                self._refuse(holder)
            os.write(fd, me)
            self.fd = fd
            return
        self._refuse(self._holder())  # pragma: no cover

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            if fcntl is not None:
                os.ftruncate(self.fd, 0)  # the file stays: removing a flock'ed file races with the next sweep
            else:  # pragma: no cover
                self.path.unlink(missing_ok=True)
        finally:
            os.close(self.fd)
            self.fd = None


# ----------------------------------------------------------------------------- running

def _record_final_folder(results_path: Path, work: Path, final: Path) -> None:
    """Point ``results.json``'s ``parameters.output_dir`` at the run's final folder, not ``.work/``."""
    if results_path.is_symlink() or not results_path.is_file():
        return
    document = _read_record(results_path)
    parameters = document.get("parameters") if document else None
    if isinstance(parameters, dict) and parameters.get("output_dir") == str(work):
        parameters["output_dir"] = str(final)
        _write_json(results_path, document)


def _execute(run: Run, sweep_dir: Path, kernel_name: str | None, git: tuple) -> dict:
    """Run one notebook in its own attempt folder and move it into place only when it finished.

    Runs here, in a thread of the sweep, or in a Dask worker. Every attempt gets its own
    folder ``.work/<run>/<host>-<pid>-<random>/``: a worker that died part-way (its
    kernel may outlive it and keep writing) never shares a folder with the attempt that
    replaces it, and only a finished attempt is moved to ``<run>/``; if another attempt
    got there first, this one is discarded, so a run is never counted twice.
    """
    import papermill as pm

    if not (sweep_dir / LOCK_NAME).is_file():
        raise RuntimeError(f"{socket.gethostname()} (pid {os.getpid()}) cannot see the sweep folder {sweep_dir}: "
                           f"put output_root on storage every worker mounts at the same path")
    attempts = _inside(sweep_dir, WORK_DIR, run.run_id)
    attempts.parent.mkdir(exist_ok=True)
    attempts.mkdir(exist_ok=True)
    work = _inside(attempts, f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    work.mkdir()
    final = _inside(sweep_dir, run.run_id)
    failed = _inside(sweep_dir, FAILED_DIR, run.run_id)
    record = {"run_id": run.run_id, "stage": run.stage, "status": "running", "notebook": str(run.notebook),
              "parameters": {**run.parameters, "output_dir": str(final)}, "output_dir": str(final),
              "fingerprint": _run_fingerprint(run), "git_commit": git[0], "git_dirty": git[1],
              "kernel_name": kernel_name, "attempt": work.name, "versions": versions(), "started": _now()}
    t0 = time.perf_counter()
    try:
        # No cwd=: papermill would chdir the whole process, and runs share it across threads.
        pm.execute_notebook(str(run.notebook), str(work / run.notebook.name),
                            parameters={**_injected(run, sweep_dir), **run.parameters, "output_dir": str(work)},
                            kernel_name=kernel_name, progress_bar=False, extra_arguments=_QUIET_KERNEL)
    except Exception as exc:  # papermill raises PapermillExecutionError with the cell's traceback
        if hasattr(exc, "ename"):  # the error raised inside the notebook
            error = f"{exc.ename}: {exc.evalue} (cell {getattr(exc, 'exec_count', '?')})"
        else:
            error = f"{type(exc).__name__}: {exc}"
        record.update(status="failed", output_dir=str(failed), parameters={**run.parameters, "output_dir":
                      str(failed)}, seconds=time.perf_counter() - t0, ended=_now(), error=error,
                      traceback=traceback.format_exc())
        _remove(failed)
        failed.parent.mkdir(exist_ok=True)
        os.replace(work, failed)
        _write_json(failed / "error.json", record)
        _remove_if_empty(attempts)
        return record
    record.update(status="finished", seconds=time.perf_counter() - t0, ended=_now())
    _record_final_folder(work / _RESULTS_FILE, work, final)
    _write_json(work / RUN_RECORD_NAME, record)
    if _run_state(sweep_dir, run) == "finished":  # another attempt finished first: count the run once
        _remove(work)
        _remove_if_empty(attempts)
        return _read_record(final / RUN_RECORD_NAME) or record
    _remove(final)  # an unfinished copy; finished ones were kept or moved to stale/ before
    os.replace(work, final)  # atomic: the run appears finished all at once
    _remove(failed)
    shutil.rmtree(attempts, ignore_errors=True)  # attempts of dead workers (whose kernels may still write)
    return record


def _injected(run: Run, sweep_dir: Path) -> dict:
    """Parameters the sweep gives a notebook that declares them and is not given them by the config.

    ``baseline_cache``: the sweep's shared folder of trained baselines (see
    :class:`pbmlib.learn.baselines.BaselineCache`). ``backup_dir``: ``.work/<run>/backup``,
    kept across attempts and invocations until the run finishes, so a training killed
    part-way (with its worker or its sweep) resumes from its last finished epoch (Keras'
    ``BackupAndRestore``). Neither is part of the fingerprint: both give the same results.
    """
    import papermill as pm

    declared = pm.inspect_notebook(str(run.notebook))
    given = {}
    if "baseline_cache" in declared:
        given["baseline_cache"] = str(_inside(sweep_dir, BASELINES_DIR))
    if "backup_dir" in declared:
        given["backup_dir"] = str(_inside(sweep_dir, WORK_DIR, run.run_id, BACKUP_DIR))
    return given


def _remove_if_empty(path: Path) -> None:
    try:
        path.rmdir()
    except OSError:
        pass


def _claim_record(sweep_dir: Path, document: dict) -> Path:
    """Write the invocation's record to ``sweeps/<UTC time>.json``, never over an earlier one."""
    folder = _inside(sweep_dir, RECORDS_DIR)
    folder.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    for n in itertools.count():
        path = _inside(sweep_dir, RECORDS_DIR, f"{stamp}{f'-{n}' if n else ''}.json")
        try:
            _write_json(path, document, exclusive=True)
        except FileExistsError:
            continue
        return path


def run_sweep(config: dict | str | os.PathLike, *, workers: int | None = None, kernel_name: str | None = None,
              progress: bool = True, analysis: bool = True, scheduler: str | None = None, client=None) -> dict:
    """Execute every unfinished run of a sweep (several at once with ``workers`` > 1).

    Everything is checked before anything is written: the config (:func:`check_sweep`),
    the arguments, and that every folder the sweep touches stays inside the sweep folder.
    The sweep folder is locked for the whole invocation.

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

    Returns
    -------
    dict
        ``sweep_dir``; ``finished`` (ids run now); ``skipped`` (finished before with the
        same fingerprint); ``changed`` (ids finished before with other parameters or
        notebook code: re-run now, the previous results moved to ``stale/<run>/``);
        ``failed`` (id -> error); ``analysis`` (path of the executed analysis notebook or
        None); ``not_in_config`` (finished runs in the folder that this config does not
        plan: kept, and read by the analysis); ``record`` (this invocation's
        ``sweeps/<time>.json``).

    Raises
    ------
    ValueError
        A bad config or argument, or a path leading out of the sweep folder.
    SweepLockedError
        Another sweep is running on the same folder.
    """
    from tqdm.auto import tqdm

    if workers is not None:
        _check_workers(workers, "workers")
    if kernel_name is not None and (not isinstance(kernel_name, str) or not kernel_name):
        raise ValueError(f"kernel_name must be the name of a Jupyter kernel or None, got {_short(kernel_name)}")
    config = check_sweep(config) if isinstance(config, dict) else load_sweep(config)
    runs = plan_runs(config)
    workers = workers or config["workers"]
    root = Path(config["output_root"]).resolve()  # absolute: runs share the process
    sweep_dir = root / config["name"]
    if sweep_dir.is_symlink() or (sweep_dir.exists() and not sweep_dir.is_dir()):
        raise ValueError(f"{sweep_dir} is a symbolic link or not a folder; a sweep writes only into a real "
                         f"folder: remove it or change the sweep's name or output_root")
    for own in (WORK_DIR, FAILED_DIR, STALE_DIR, RECORDS_DIR, ANALYSIS_DIR, BASELINES_DIR):
        _check_own_folder(sweep_dir / own)
    if (sweep_dir / LOCK_NAME).is_symlink() or (sweep_dir / LOCK_NAME).is_dir():
        raise ValueError(f"{sweep_dir / LOCK_NAME} is a symbolic link or a folder; remove it")

    sweep_dir.mkdir(parents=True, exist_ok=True)
    lock = _SweepLock(sweep_dir)
    lock.acquire()
    try:
        if client is None and scheduler is None and config.get("cluster") is None:
            return _run_locked(config, runs, sweep_dir, workers, kernel_name, progress, analysis, tqdm, None)
        if client is not None:
            check_workers_see(client, sweep_dir)
            return _run_locked(config, runs, sweep_dir, workers, kernel_name, progress, analysis, tqdm, client)
        with open_client(scheduler=scheduler, cluster=config.get("cluster")) as own:
            check_workers_see(own, sweep_dir)
            return _run_locked(config, runs, sweep_dir, workers, kernel_name, progress, analysis, tqdm, own)
    finally:
        lock.release()


def _run_locked(config, runs, sweep_dir, workers, kernel_name, progress, analysis, tqdm, client) -> dict:
    for own in (WORK_DIR, FAILED_DIR, STALE_DIR, RECORDS_DIR, ANALYSIS_DIR, BASELINES_DIR):  # again, now that we hold the lock
        _check_own_folder(sweep_dir / own)
    work_root = _inside(sweep_dir, WORK_DIR)
    if work_root.is_dir():  # attempts interrupted earlier; no other sweep can be using them
        for run_work in work_root.iterdir():  # their training backups stay: the run resumes from them
            for leftover in (run_work.iterdir() if run_work.is_dir() and not run_work.is_symlink() else [run_work]):
                if leftover.name != BACKUP_DIR or leftover.parent == work_root:
                    _remove(leftover)
    states = {run.run_id: _run_state(sweep_dir, run) for run in runs}
    todo = [run for run in runs if states[run.run_id] != "finished"]
    skipped = [run.run_id for run in runs if states[run.run_id] == "finished"]
    changed = [run.run_id for run in runs if states[run.run_id] == "changed"]
    planned = {run.run_id for run in runs}
    not_in_config = sorted(p.name for p in sweep_dir.iterdir()
                           if p.name not in planned and p.name not in RESERVED_NAMES and not p.name.startswith(".")
                           and p.is_dir() and not p.is_symlink() and (p / RUN_RECORD_NAME).is_file())
    git = _git_state()
    summary = {"sweep_dir": str(sweep_dir), "finished": [], "skipped": skipped, "changed": changed, "failed": {},
               "analysis": None, "not_in_config": not_in_config, "record": None}
    document = {"status": "running", "started": _now(), "pid": os.getpid(), "host": socket.gethostname(),
                "argv": list(sys.argv), "git_commit": git[0], "git_dirty": git[1], "versions": versions(),
                "workers": workers, "kernel_name": kernel_name, "runs": [run.run_id for run in runs],
                "scheduler": client.scheduler.address if client is not None else None,
                "config": config}
    record_path = _claim_record(sweep_dir, {**document, **summary})
    summary["record"] = str(record_path)
    try:
        for run_id in changed:  # out of the results before anything runs: no stale result is read as current
            stale = _inside(sweep_dir, STALE_DIR, run_id)
            _remove(stale)
            stale.parent.mkdir(exist_ok=True)
            os.replace(_inside(sweep_dir, run_id), stale)
        with _executors(client, workers) as submit, \
                tqdm(total=len(runs), initial=len(skipped), desc=config["name"], disable=not progress) as bar:
            if changed:
                bar.write(f"{len(changed)} finished run(s) changed (parameters or notebook) since they ran: "
                          f"re-running them; previous results in {sweep_dir / STALE_DIR}")
            futures = {submit(run.resources, _execute, run, sweep_dir, kernel_name, git): run for run in todo}
            for future in as_completed(futures):
                run = futures[future]
                try:
                    record = future.result()
                except Exception as exc:  # the runner itself failed (disk full, ...): record it, carry on
                    record = {"run_id": run.run_id, "status": "failed",
                              "error": f"sweep runner: {type(exc).__name__}: {exc}"}
                if record["status"] == "finished":
                    summary["finished"].append(record["run_id"])
                else:
                    summary["failed"][record["run_id"]] = record["error"]
                    bar.write(f"run {record['run_id']} failed: {record['error'].splitlines()[0][:200]}")
                bar.update(1)
        if analysis and config.get("analysis"):
            notebook = Path(config["analysis"])
            parameters = {"sweep_dir": str(sweep_dir)}
            analysis_run = Run("analysis", notebook, parameters, ANALYSIS_DIR,
                               _fingerprint(_notebook_digest(notebook), parameters))
            try:  # on this machine: it reads the whole sweep folder
                record = _execute(analysis_run, sweep_dir, kernel_name, git)
            except Exception as exc:
                record = {"status": "failed", "error": f"sweep runner: {type(exc).__name__}: {exc}"}
            if record["status"] == "finished":
                summary["analysis"] = str(sweep_dir / ANALYSIS_DIR / notebook.name)
            else:
                summary["failed"]["analysis"] = record["error"]
        _remove_if_empty(work_root)
        document["status"] = "done"
    except BaseException:
        document["status"] = "interrupted"
        raise
    finally:
        document["ended"] = _now()
        _write_json(record_path, {**document, **summary})
    return summary


@contextmanager
def _executors(client, workers: int):
    """``submit(resources, fn, *args)`` returning :class:`concurrent.futures.Future` objects: a
    thread pool of ``workers`` here, or Dask tasks (one executor per resource set) on ``client``."""
    if client is None:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            yield lambda resources, fn, *args: pool.submit(fn, *args)
        return
    executors = {}

    def submit(resources, fn, *args):
        key = tuple(sorted(resources.items()))
        if key not in executors:
            executors[key] = client.get_executor(pure=False, resources=dict(resources) or None)
        return executors[key].submit(fn, *args)

    yield submit
