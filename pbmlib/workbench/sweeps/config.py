"""Sweep configs: YAML read with limits, checked before anything runs (one-line errors naming the key).

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
"""

from __future__ import annotations

import copy
import difflib
import keyword
import math
import os
import re
from pathlib import Path

import yaml

from ..._validation import check_positive_int
from ..cluster import check_cluster
from .layout import RESERVED_NAMES

__all__ = ["load_sweep", "check_sweep", "check_workers", "MAX_YAML_NODES", "DEFAULT_MAX_RUNS"]

#: The most YAML nodes a config may expand to, aliases counted (a sweep config has a few hundred).
MAX_YAML_NODES = 100_000
#: Runs a config may plan unless the caller allows more (``pbm sweep --max-runs``).
DEFAULT_MAX_RUNS = 10_000
_CONFIG_KEYS = ("name", "output_root", "workers", "stages", "analysis", "cluster")
_STAGE_KEYS = ("name", "notebook", "parameters", "grid", "resources")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
_NAME_RULE = "letters, digits, '_', '-' and '.', starting with a letter or digit, at most 100 characters"


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
                    if key in seen:
                        raise yaml.constructor.ConstructorError(
                            None, None, f"key {key!r} is given twice (first on line {seen[key] + 1})",
                            key_node.start_mark)
                    seen[key] = key_node.start_mark.line
                except TypeError:  # an unhashable key: the base class says so
                    continue
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


def _expanded_size(node, memo: dict, path: Path) -> int:
    """How many nodes the constructor would walk for ``node``, aliases expanded (memoised: one
    visit per distinct node, so a billion-leaf alias bomb is counted in microseconds)."""
    key = id(node)
    if key in memo:
        if memo[key] is None:
            raise ValueError(f"{path}, line {node.start_mark.line + 1}: a YAML alias refers to the node that "
                             f"contains it (a recursive structure); write the values out")
        return memo[key]
    memo[key] = None  # in progress
    if isinstance(node, yaml.SequenceNode):
        size = 1 + sum(_expanded_size(child, memo, path) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        size = 1 + sum(_expanded_size(k, memo, path) + _expanded_size(v, memo, path) for k, v in node.value)
    else:
        size = 1
    memo[key] = size
    return size


def _load_yaml(text: str, path: Path):
    """Parse ``text`` with :class:`_StrictLoader`, refusing documents that expand past
    :data:`MAX_YAML_NODES` nodes (alias bombs) before anything is constructed."""
    loader = _StrictLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        size = _expanded_size(node, {}, path)
        if size > MAX_YAML_NODES:
            raise ValueError(f"{path}: the config expands to {size:,} YAML nodes (aliases counted), more than "
                             f"{MAX_YAML_NODES:,}; a sweep config is a few hundred: remove the repeated aliases")
        return loader.construct_document(node)
    finally:
        loader.dispose()


def read_config(path: Path, what: str, *, example: str):
    """The YAML document of a config file (limits, duplicate keys and errors as in :func:`load_sweep`).

    Raises
    ------
    ValueError
        One line naming the file (and the line, for YAML errors) and what to change.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValueError(f"{path}: no such {what}; pass the path of a YAML file such as {example}") from None
    except IsADirectoryError:
        raise ValueError(f"{path}: is a folder; pass the path of a YAML {what}") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text (byte {exc.start}); save the config as UTF-8") from None
    except OSError as exc:
        raise ValueError(f"{path}: cannot read the {what} ({exc.strerror})") from None
    try:
        return _load_yaml(text, path)
    except yaml.YAMLError as exc:
        raise ValueError(_yaml_error(path, exc)) from None


def load_sweep(path: str | os.PathLike, *, max_runs: int = DEFAULT_MAX_RUNS) -> dict:
    """Read and check a sweep config (YAML); see :func:`check_sweep`.

    YAML alias bombs are refused before any value is built (at most :data:`MAX_YAML_NODES`
    nodes once aliases are expanded), and a config planning more than ``max_runs`` runs is
    refused before any run is planned.

    Raises
    ------
    ValueError
        One line naming the file (and the line, for YAML errors) and what to change.
    """
    path = Path(path)
    config = read_config(path, "sweep config", example="sweeps/default.yaml")
    return check_sweep(config, base=path.resolve().parent, source=str(path), max_runs=max_runs)


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
    from ..notebooks import ensure_notebook

    for candidate in (Path(value), base / value, base.parent / value):
        ensure_notebook(candidate)  # a shipped notebook: its working copy, written from the tracked script
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


def _check_stage(stage, index: int, source: str, names_seen: set) -> tuple[str, list]:
    """Check one stage in place (its name, keys, parameters, grid and resources; defaults filled in).

    Returns
    -------
    where : str
        How errors name the stage.
    names : list of (kind, name)
        Every parameter it sets, in config order.
    """
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
            raise ValueError(f"{where}: {key} must be a mapping of parameter names to values, got {_short(value)}")
    names = []
    for name, value in stage["parameters"].items():
        _check_parameter_name(name, f"{where}: parameters")
        _check_value(value, f"{where}: parameters: {name}")
        names.append(("parameter", name))
    for key, values in stage["grid"].items():
        names += [("grid key", part) for part in _check_grid_entry(key, values, where)]
    counts: dict[str, int] = {}
    for _, name in names:
        counts[name] = counts.get(name, 0) + 1
        if counts[name] == 2:
            raise ValueError(f"{where}: parameter {name!r} is given twice (in parameters and grid, or in two grid "
                             f"keys); give it once")
    resources = stage.get("resources")
    stage["resources"] = {} if resources is None else resources
    if not isinstance(stage["resources"], dict) or not all(
            isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0
            for k, v in stage["resources"].items()):
        raise ValueError(f"{where}: resources must map resource names to positive amounts, e.g. {{GPU: 1}}, "
                         f"got {_short(resources)}")
    return where, names


def _check_grid_entry(key, values, where: str) -> list[str]:
    """Check one grid entry (``name: [values]`` or ``"a,b": [[a, b], ...]``); the names it sets."""
    if not isinstance(key, str):
        _check_parameter_name(key, f"{where}: grid")
    parts = [part.strip() for part in key.split(",")]
    for part in parts:
        _check_parameter_name(part, f"{where}: grid key {key!r}")
    if not isinstance(values, list) or not values:
        raise ValueError(f"{where}: grid entry {key!r} must be a non-empty list of values, got {_short(values)}")
    if len(parts) > 1 and not all(isinstance(v, list) and len(v) == len(parts) for v in values):
        raise ValueError(f"{where}: grid entry {key!r} needs lists of {len(parts)} values, got {_short(values)}")
    _check_value(values, f"{where}: grid: {key}")
    return parts


def check_sweep(config: dict, *, base: str | os.PathLike | None = None, source: str = "sweep config",
                max_runs: int = DEFAULT_MAX_RUNS) -> dict:
    """Check a sweep config and fill in defaults (a new dict; ``config`` is not modified).

    Relative notebook paths are looked up in the working directory, then beside ``base``
    (the config's folder) and its parent; they come back absolute. Every parameter name
    must be declared in its notebook's parameters cell (and the notebook must declare
    ``output_dir``; the analysis notebook also ``sweep_dir``). A config whose grids hold
    more than ``max_runs`` runs in all is refused (counted from the grids' lengths, no run
    is built).

    Raises
    ------
    ValueError
        One line naming ``source``, the stage and the key, and what to change.
    """
    if config is None:
        raise ValueError(f"{source}: the config is empty; it needs a 'name' and a list of 'stages'")
    if not isinstance(config, dict):
        raise ValueError(f"{source}: expected a mapping with 'name' and 'stages', got {_short(config)}")
    if "search" in config and "stages" not in config:
        raise ValueError(f"{source}: this is a search config (a 'search' section, no 'stages'): run it with "
                         f"pbm search, not pbm sweep")
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
    max_runs = check_positive_int(max_runs, name="max_runs")
    declared_cache: dict = {}
    names_seen: set[str] = set()
    total_runs = 0
    for index, stage in enumerate(stages, 1):
        where, names = _check_stage(stage, index, source, names_seen)
        runs = math.prod(len(values) for values in stage["grid"].values())
        total_runs += runs
        if total_runs > max_runs:
            raise ValueError(f"{where}: the config plans {total_runs:,} runs or more (this stage's grid: {runs:,}), "
                             f"more than max_runs {max_runs:,}; shrink the grid, split the sweep, or raise the "
                             f"limit (pbm sweep --max-runs N)")
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
    return check_run_options(config, source)


def check_run_options(config: dict, source: str) -> dict:
    """Check and fill in place the keys every sweep and search config shares: ``output_root`` (default
    ``papermill_runs``), ``workers`` (default 1) and ``cluster``; returns ``config``."""
    config.setdefault("output_root", "papermill_runs")
    root = config["output_root"]
    if isinstance(root, os.PathLike):
        config["output_root"] = root = os.fspath(root)
    if not isinstance(root, str) or not root.strip() or "\0" in root:
        raise ValueError(f"{source}: output_root must be the path of a folder, got {_short(root)}")
    config.setdefault("workers", 1)
    check_workers(config["workers"], f"{source}: workers")
    config["cluster"] = check_cluster(config.get("cluster"), source)
    return config


def check_workers(workers, where: str) -> int:
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"{where} must be a whole number of runs at once, 1 or more, got {_short(workers)}")
    return workers
