"""Searching the privacy/utility frontier: a seeded multi-objective search over each scheme's parameters.

A grid spends most of its runs far from the frontier. :func:`run_search` asks Optuna's
multi-objective sampler (TPE by default, NSGA-II on request) for each scheme's next
parameters and minimises the three figures the target is set on (:data:`OBJECTIVES`): the
accuracy cost (points below the originals on the same test images, paired), the worst
membership AUC (of the attacks on the release and, where the notebook runs it, of LiRA on
the trained model: the larger, as the target judges them) and the worst re-identification
(lower bounds on what an attacker achieves, :func:`pbmlib.privacy.audit.audit`). It returns every trial and each scheme's
Pareto front (:func:`pareto_front`: the trials no other trial of the scheme beats on all
three at once), with their intervals and target decisions.

**Trials are sweep runs.** Trial ``n`` of scheme ``s`` is the run ``<s>__trial-<n>`` of the
study notebook (``notebooks/07_frontier.ipynb``) with
``schemes=[{"scheme": "none"}, {"scheme": s, **params}]``: the reference gives the paired
cost, and its training comes from the sweep's baseline cache (the notebook must declare
``baseline_cache``), so it is trained once for the whole search. Trials execute through
:func:`pbmlib.workbench.sweeps.run_sweep` on a generated config, ``workers`` at once: each
run in its own attempt folder with its fingerprint, under the sweep's lock, on Dask when a
cluster is given; the figures are read back from each run's ``results.json``.

The search folder ``<output_root>/<name>/`` is a sweep folder (see
:mod:`pbmlib.workbench.sweeps.layout`: the trials' run folders, ``baselines/``, ``sweeps/``,
...) with ``search/`` beside them:

``search/search.db``
    The Optuna studies (SQLite, one per scheme): every trial asked, its state and figures.
``search/trials.csv``
    Every trial: scheme, trial number, run id, state, the scheme entry it ran (JSON, as a
    notebook's ``schemes`` takes it) and its label, the three figures with their intervals
    (``membership_source`` says whether ``membership_auc`` is the release's or the model's;
    both are there), the attacks that reached them, the target decisions, whether it is on its scheme's
    front (``pareto``) and on the front of every scheme together (``pareto_all``), the
    error of a failed trial.
``search/pareto.csv``
    The rows of ``trials.csv`` on their scheme's front.
``search/front_<scheme>.png``
    :func:`pbmlib.workbench.plotting.plot_search_front`.

and ``.search.lock``, held while a search runs.

**Resuming.** A search run again continues where it stopped: finished trials are read from
the study, never recomputed; a trial whose process died (still "running" in the study) is
run again with its parameters (its run resumes from its training backups, or is read back
if its run had finished); then new trials are asked until each scheme has ``n_trials``
finished or failed ones (``pbm search --trials N`` extends a search). A search whose
notebook code, fixed parameters, space, sampler or seed changed is refused (one line): its
trials would not be comparable; give it another ``name``.

**Reproducible.** Trial ``n`` of scheme ``s`` is asked by a sampler seeded from
``SeedSequence([seed, crc32(s), n])``, so a search gives the same trials whether it ran in
one go or was interrupted and resumed (with the same ``workers``: trials asked together
are asked knowing of each other). Float parameters are rounded to 4 significant digits
(clipped to their range) before they run, so labels stay readable; integer ranges and
choices run as drawn.

A search config (YAML)::

    name: search_faces
    output_root: papermill_runs
    workers: 1                  # trials at once (default 1)
    cluster: {local: {n_workers: 2}}   # optional, as in a sweep config
    search:
      notebook: notebooks/07_frontier.ipynb
      parameters: {dataset: faces, n_splits: 3, epochs: 12, repeats: 1}   # every trial's
      schemes:
        pbm_noise:
          block: [5, 5]                             # fixed
          sigma: {low: 4, high: 256, log: true}     # a float range (log-scaled)
        dppix:
          epsilon: {low: 0.05, high: 16, log: true}
          cell: {choices: [1, 5]}                   # a choice
        pbm_average:
          k: {low: 2, high: 32, int: true, log: true}   # an integer range
          p: {low: 0.25, high: 1.0, step: 0.25}
      n_trials: 20              # per scheme
      sampler: tpe              # or nsga2 (default tpe)
      startup_trials: 10        # random trials first (NSGA-II: its population size)
      seed: 0                   # the sampler's (the study's own seed is parameters.seed)
      resources: {GPU: 1}       # optional: Dask resources of every trial

Every key is checked before anything runs (one-line errors naming the key): scheme names
and their parameters (each space is tried on the scheme at its ends and choices), the
notebook and the names of its parameters, the cluster section.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import importlib.util
import io
import json
import math
import os
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from ..._fs import inside, lock, write_bytes_atomic
from ..._validation import check_positive_int
from ...schemes import SCHEMES, get_scheme
from ..cluster import open_client
from ..notebooks import ensure_notebook
from .config import (_check_declared, _check_keys, _check_name, _check_parameter_name, _check_value, _find_notebook,
                     _short, check_run_options, check_workers, read_config)
from .layout import RESULTS_NAME, SEARCH_DIR, SEARCH_LOCK_NAME
from .runner import _check_sweep_dir
from .runs import notebook_digest, read_record

__all__ = ["OBJECTIVES", "MEMBERSHIP_SOURCES", "SAMPLERS", "load_search", "check_search", "pareto_front", "run_search"]

#: The figures a search minimises, in order: column -> what it is.
OBJECTIVES = {
    "accuracy_drop": "accuracy cost: points below the originals on the same test images (paired)",
    "membership_auc": "the worst membership AUC the target is judged on (a lower bound on what an attacker "
                      "achieves): the larger of the release's (worst_membership_auc) and, where the notebook "
                      "attacks the trained model, the model's (model_membership_auc); its interval is that one's",
    "worst_reid_top1": "the strongest re-identification attack's credit on the release (a lower bound)",
}
#: Where ``membership_auc`` comes from: the attacks on the release and on the trained model.
MEMBERSHIP_SOURCES = {"worst_membership_auc": "release", "model_membership_auc": "model"}
#: The samplers a search may use: Optuna's multi-objective TPE and NSGA-II.
SAMPLERS = ("tpe", "nsga2")
STUDY_DB = "search.db"
TRIALS_NAME = "trials.csv"
PARETO_NAME = "pareto.csv"
REFERENCE = {"scheme": "none"}
_CONFIG_KEYS = ("name", "output_root", "workers", "cluster", "search")
_SEARCH_KEYS = ("notebook", "parameters", "schemes", "n_trials", "sampler", "startup_trials", "seed", "resources")
_RANGE_KEYS = ("low", "high", "log", "int", "step")
_SIGNIFICANT = 4  # digits a float parameter keeps
#: Columns of trials.csv beside the three figures and their intervals.
_TRIAL_COLUMNS = ("scheme", "trial", "run_id", "state", "setting", "entry")
_ROW_COLUMNS = ("membership_source", "worst_membership_auc", "worst_membership_auc_low", "worst_membership_auc_high",
                "model_membership_auc", "model_membership_auc_low", "model_membership_auc_high",
                "test_accuracy_mean", "accuracy_drop_mcnemar_p", "worst_membership_attack", "model_membership_attack",
                "worst_reid_attack",
                "reid_chance_top1", "membership_target", "reid_target", "cost_target", "meets_target")


# ----------------------------------------------------------------------------- the space

@dataclasses.dataclass(frozen=True)
class _Searched:
    """One searched parameter: a float or integer range (optionally log-scaled or stepped) or choices."""

    low: float | None = None
    high: float | None = None
    log: bool = False
    int: bool = False
    step: float | None = None
    choices: tuple | None = None

    def distribution(self):
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        if self.choices is not None:  # Optuna's choices are plain values: lists (blocks) go as JSON text
            return CategoricalDistribution([json.dumps(c) for c in self.choices])
        if self.int:
            return IntDistribution(int(self.low), int(self.high), log=self.log, step=int(self.step or 1))
        return FloatDistribution(float(self.low), float(self.high), log=self.log, step=self.step)

    def value(self, drawn):
        """What the scheme gets for the sampler's ``drawn`` value (floats rounded, clipped to the range)."""
        if self.choices is not None:
            return json.loads(drawn)
        if self.int:
            return int(drawn)
        if self.step is not None:
            return float(drawn)
        return float(min(max(float(f"{float(drawn):.{_SIGNIFICANT}g}"), self.low), self.high))

    def ends(self) -> list:
        """The values the config check tries on the scheme: the range's ends, or every choice."""
        return list(self.choices) if self.choices is not None else [self.value(self.low), self.value(self.high)]


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_searched(spec: dict, where: str) -> dict:
    """A searched parameter's spec, normalised (every key present), or ``ValueError`` naming it."""
    if "choices" in spec:
        if len(spec) > 1:
            raise ValueError(f"{where}: choices go alone, got also {', '.join(sorted(set(spec) - {'choices'}))}; "
                             f"give choices or a range (low, high), not both")
        choices = spec["choices"]
        if not isinstance(choices, list) or not choices:
            raise ValueError(f"{where}: choices must be a non-empty list of values, got {_short(choices)}")
        _check_value(choices, f"{where}: choices")
        if len({json.dumps(c, sort_keys=True) for c in choices}) != len(choices):
            raise ValueError(f"{where}: choices holds a value twice, got {_short(choices)}; list each once")
        return {"choices": choices}
    _check_keys(spec, _RANGE_KEYS + ("choices",), where)
    for key in ("low", "high"):
        if key not in spec:
            raise ValueError(f"{where}: missing {key!r}; a range needs low and high (or give choices: [...])")
        if not _number(spec[key]):
            raise ValueError(f"{where}: {key} must be a finite number, got {_short(spec[key])}")
    for key in ("log", "int"):
        if not isinstance(spec.get(key, False), bool):
            raise ValueError(f"{where}: {key} must be true or false, got {_short(spec[key])}")
    out = {"low": spec["low"], "high": spec["high"], "log": spec.get("log", False), "int": spec.get("int", False),
           "step": spec.get("step")}
    if not out["low"] < out["high"]:
        raise ValueError(f"{where}: low must be below high, got low={out['low']!r}, high={out['high']!r}; for one "
                         f"value give it without low and high")
    if out["int"] and not all(isinstance(out[k], int) for k in ("low", "high")):
        raise ValueError(f"{where}: an integer range (int: true) needs whole-number low and high, got "
                         f"low={out['low']!r}, high={out['high']!r}")
    if out["log"] and out["low"] <= 0:
        raise ValueError(f"{where}: a log-scaled range needs low > 0, got low={out['low']!r}")
    if out["step"] is not None:
        if not _number(out["step"]) or out["step"] <= 0 or (out["int"] and not isinstance(out["step"], int)):
            raise ValueError(f"{where}: step must be a number > 0 (whole with int: true), got {_short(out['step'])}")
        if out["log"]:
            raise ValueError(f"{where}: step and log do not go together (Optuna samples a stepped range "
                             f"uniformly); drop one")
    return out


def _searched_space(space: dict) -> dict:
    """The searched parameters of a checked scheme space: param -> :class:`_Searched` (mappings are searched,
    plain values fixed)."""
    return {param: _Searched(**{**spec, "choices": tuple(spec["choices"]) if "choices" in spec else None})
            for param, spec in space.items() if isinstance(spec, dict)}


def _check_scheme_space(name, space, where: str) -> dict:
    """One scheme's space, its ranges normalised (every key present), tried on the scheme at its ends."""
    if name not in SCHEMES or name == "none":
        raise ValueError(f"{where}: {_short(name)} is not a scheme to search; choose among "
                         f"{', '.join(sorted(set(SCHEMES) - {'none'}))} (the unprotected reference runs in every "
                         f"trial by itself)")
    if not isinstance(space, dict) or not space:
        raise ValueError(f"{where} must map the scheme's parameters to values or ranges, e.g. "
                         f"{{sigma: {{low: 4, high: 256, log: true}}}}, got {_short(space)}")
    _check_keys(space, SCHEMES[name].param_names(), where)
    checked, fixed = {}, {}
    for param, spec in space.items():
        if isinstance(spec, dict):
            checked[param] = _check_searched(spec, f"{where}.{param}")
        else:
            _check_value(spec, f"{where}.{param}")
            checked[param] = fixed[param] = spec
    spaces = _searched_space(checked)
    if not spaces:
        raise ValueError(f"{where}: no parameter is searched; give one a range {{low: ..., high: ...}} or "
                         f"{{choices: [...]}} (a plain value stays fixed)")
    required = [p.name for p in SCHEMES[name]._param_signature() if p.default is p.empty]
    missing = [param for param in required if param not in checked]
    if missing:
        raise ValueError(f"{where}: the scheme needs {', '.join(missing)}: give each a value or a range")

    def tried(params: dict, at: str, hint: str = "") -> None:
        try:
            get_scheme(name, **params)
        except ValueError as exc:
            raise ValueError(f"{at}: the scheme refuses {_short(params)}: {' '.join(str(exc).split())}{hint}") from None

    first = {param: s.ends()[0] for param, s in spaces.items()}
    tried({**fixed, **{param: first[param] for param in required if param in first}}, where)
    for param, s in spaces.items():  # each range at its ends, each choice; the others at their defaults
        hint = "; for a whole-number parameter add int: true" if not s.int and s.choices is None else ""
        for value in s.ends():
            tried({**fixed, **{q: first[q] for q in required if q in first}, param: value}, f"{where}.{param}", hint)
    tried({**fixed, **first}, where)  # together
    return checked


# ----------------------------------------------------------------------------- the config

def load_search(path: str | os.PathLike) -> dict:
    """Read and check a search config (YAML); see :func:`check_search`.

    Raises
    ------
    ValueError
        One line naming the file (and the line, for YAML errors) and what to change.
    """
    path = Path(path)
    config = read_config(path, "search config", example="sweeps/search.yaml")
    return check_search(config, base=path.resolve().parent, source=str(path))


def check_search(config: dict, *, base: str | os.PathLike | None = None, source: str = "search config") -> dict:
    """Check a search config and fill in defaults (a new dict; ``config`` is not modified).

    The notebook is looked up as a sweep's (the working directory, ``base`` and its parent;
    a shipped notebook's ``.ipynb`` is written from its script) and must declare
    ``schemes``, ``baseline_cache`` and every fixed parameter. Each scheme's space is tried
    on the scheme: every range at both ends, every choice.

    Raises
    ------
    ValueError
        One line naming ``source`` and the key, and what to change.
    """
    if config is None:
        raise ValueError(f"{source}: the config is empty; it needs a 'name' and a 'search' section")
    if not isinstance(config, dict):
        raise ValueError(f"{source}: expected a mapping with 'name' and 'search', got {_short(config)}")
    _check_keys(config, _CONFIG_KEYS, source)
    for key in ("name", "search"):
        if key not in config:
            raise ValueError(f"{source}: missing {key!r}; a search config needs a 'name' and a 'search' section")
    config = copy.deepcopy(config)
    base = Path(base) if base is not None else Path.cwd()
    _check_name(config["name"], f"{source}: name", stage=False)
    search = config["search"]
    where = f"{source}: search"
    if not isinstance(search, dict):
        raise ValueError(f"{where} must be a mapping with notebook, parameters, schemes and n_trials, "
                         f"got {_short(search)}")
    _check_keys(search, _SEARCH_KEYS, where)
    for key in ("notebook", "schemes", "n_trials"):
        if key not in search:
            raise ValueError(f"{where}: missing {key!r}; a search needs a notebook, schemes and n_trials")
    parameters = search.get("parameters")
    search["parameters"] = parameters = {} if parameters is None else parameters
    if not isinstance(parameters, dict):
        raise ValueError(f"{where}.parameters must map parameter names to values, got {_short(parameters)}")
    for name, value in parameters.items():
        _check_parameter_name(name, f"{where}.parameters")
        if name in ("schemes", "baseline_cache", "backup_dir"):
            raise ValueError(f"{where}.parameters: {name} is set by the search for every trial; remove it")
        _check_value(value, f"{where}.parameters.{name}")
    schemes = search["schemes"]
    if not isinstance(schemes, dict) or not schemes:
        raise ValueError(f"{where}.schemes must map scheme names to their parameters' spaces, e.g. "
                         f"{{pbm_noise: {{sigma: {{low: 4, high: 256, log: true}}}}}}, got {_short(schemes)}")
    search["schemes"] = {name: _check_scheme_space(name, space, f"{where}.schemes.{name}")
                         for name, space in schemes.items()}
    try:
        search["n_trials"] = check_positive_int(search["n_trials"], name="n_trials")
    except ValueError:
        raise ValueError(f"{where}.n_trials must be a whole number of trials per scheme, 1 or more, got "
                         f"{_short(search['n_trials'])}") from None
    search.setdefault("sampler", "tpe")
    if search["sampler"] not in SAMPLERS:
        raise ValueError(f"{where}.sampler must be one of {', '.join(SAMPLERS)}, got {_short(search['sampler'])}")
    search.setdefault("startup_trials", 10)
    startup = search["startup_trials"]
    least = 2 if search["sampler"] == "nsga2" else 1
    if isinstance(startup, bool) or not isinstance(startup, int) or startup < least:
        raise ValueError(f"{where}.startup_trials must be a whole number, {least} or more"
                         f"{' (the NSGA-II population)' if least == 2 else ''}, got {_short(startup)}")
    search.setdefault("seed", 0)
    if isinstance(search["seed"], bool) or not isinstance(search["seed"], int) or search["seed"] < 0:
        raise ValueError(f"{where}.seed must be a whole number >= 0 (the sampler's seed), got "
                         f"{_short(search['seed'])}")
    resources = search.get("resources")
    search["resources"] = {} if resources is None else resources
    if not isinstance(search["resources"], dict) or not all(
            isinstance(k, str) and _number(v) and v > 0 for k, v in search["resources"].items()):
        raise ValueError(f"{where}.resources must map resource names to positive amounts, e.g. {{GPU: 1}}, "
                         f"got {_short(resources)}")
    shown = str(search["notebook"])
    if isinstance(search["notebook"], str):
        for candidate in (Path(shown), base / shown, base.parent / shown):
            ensure_notebook(candidate)  # a shipped notebook: its working copy, written from the tracked script
    notebook = _find_notebook(search["notebook"], base, f"{where}.notebook")
    declared: dict = {}
    _check_declared([], notebook, shown, f"{where}.notebook", declared,
                    required=("output_dir", "schemes", "baseline_cache"))
    _check_declared([("parameter", name) for name in parameters], notebook, shown, f"{where}.parameters", declared,
                    required=())
    search["notebook"] = str(notebook)
    return check_run_options(config, source)


# ----------------------------------------------------------------------------- the front

def pareto_front(points) -> np.ndarray:
    """Which points no other point dominates (every figure minimised).

    A point dominates another when it is no worse on every figure and better on at least
    one; equal points do not dominate each other (both stay on the front).

    Parameters
    ----------
    points : array-like of shape (n, k)
        Finite figures, one row per point.

    Returns
    -------
    ndarray of shape (n,), bool
        True for the non-dominated points.

    Examples
    --------
    >>> pareto_front([[1, 3], [2, 2], [2, 3], [3, 1], [1, 3]]).tolist()
    [True, True, False, True, True]
    """
    points = np.asarray(points, dtype=float)
    if points.ndim != 2:
        raise ValueError(f"points must be an array of shape (n, k), got shape {points.shape}")
    if not np.isfinite(points).all():
        raise ValueError("points must be finite; leave out the trials without figures")
    dominated = np.zeros(len(points), dtype=bool)
    chunk = max(1, (1 << 22) // max(1, len(points) * points.shape[1]))  # bounded memory: a few MB of comparisons
    for start in range(0, len(points), chunk):
        block = points[start:start + chunk, None, :]  # candidates that may dominate
        better = (block <= points[None]).all(axis=2) & (block < points[None]).any(axis=2)
        dominated |= better.any(axis=0)
    return ~dominated


# ----------------------------------------------------------------------------- running

def _search_fingerprint(config: dict, scheme: str, digest: str) -> str:
    search = config["search"]
    return json.dumps({"notebook": digest, "parameters": search["parameters"], "space": search["schemes"][scheme],
                       "sampler": search["sampler"], "startup_trials": search["startup_trials"],
                       "seed": search["seed"]}, sort_keys=True)


def _sampler(search: dict, scheme: str, number: int):
    """The sampler that asks trial ``number`` of ``scheme``: seeded from (seed, scheme, number)."""
    import optuna

    seed = int(np.random.SeedSequence([search["seed"], zlib.crc32(scheme.encode()), number]).generate_state(1)[0])
    if search["sampler"] == "nsga2":
        return optuna.samplers.NSGAIISampler(population_size=search["startup_trials"], seed=seed)
    return optuna.samplers.TPESampler(n_startup_trials=search["startup_trials"], seed=seed)


def _ask(study, search: dict, scheme: str):
    """Ask ``study`` for the next trial of ``scheme`` (its sampler seeded by the trial's number)."""
    space = _searched_space(search["schemes"][scheme])
    study.sampler = _sampler(search, scheme, len(study.get_trials(deepcopy=False)))
    return study.ask({param: s.distribution() for param, s in space.items()}).number


def _entry(search: dict, scheme: str, params: dict) -> dict:
    """The scheme entry a trial runs: its fixed parameters and the sampler's values, as the scheme gets them."""
    space = search["schemes"][scheme]
    searched = _searched_space(space)
    return {"scheme": scheme, **{param: searched[param].value(params[param]) if param in searched else value
                                 for param, value in space.items()}}


def _run_id(scheme: str, number: int) -> str:
    return f"{scheme}__trial-{number:04d}"


def _stage(search: dict, scheme: str, trial) -> dict:
    return {"name": _run_id(scheme, trial.number), "notebook": search["notebook"], "resources": search["resources"],
            "parameters": {**search["parameters"], "schemes": [REFERENCE, _entry(search, scheme, trial.params)]}}


def _figures(sweep_dir: Path, run_id: str) -> tuple[dict | None, str | None]:
    """The scheme's study row of a finished run, or None and why not."""
    from ..results import read_results

    path = sweep_dir / run_id / RESULTS_NAME
    if not path.is_file():
        return None, f"the run wrote no {RESULTS_NAME}"
    document = read_results(path)
    rows = [row for row in document.get("rows", []) if not row.get("reference")]
    if len(rows) != 1:
        return None, f"{path}: expected one protected setting beside the reference, found {len(rows)}"
    row = rows[0]
    measured = [name for name in MEMBERSHIP_SOURCES if _number(row.get(name))]
    missing = [name for name in ("accuracy_drop", "worst_reid_top1") if not _number(row.get(name))]
    if missing or not measured:
        return None, (f"{path}: no {', '.join(missing + ['worst_membership_auc'] * (not measured))} (the notebook "
                      f"must train and audit: a search needs the cost and both attacks)")
    worst = max(measured, key=lambda name: row[name])  # the first (the release's) on a tie
    return {**row, "membership_auc": row[worst], "membership_auc_low": row.get(f"{worst}_low"),
            "membership_auc_high": row.get(f"{worst}_high"), "membership_source": MEMBERSHIP_SOURCES[worst]}, None


@contextlib.contextmanager
def _quiet_optuna():
    """Optuna's per-trial log lines are not for users (the search prints its own summary)."""
    import optuna

    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(level)


@contextlib.contextmanager
def _storage(path: Path):
    import optuna

    storage = optuna.storages.RDBStorage(f"sqlite:///{path}", engine_kwargs={"connect_args": {"timeout": 60}})
    try:
        yield storage
    finally:
        storage.remove_session()
        engine = getattr(storage, "engine", None)
        if engine is not None:
            engine.dispose()


def _open_study(storage, config: dict, scheme: str, digest: str):
    import optuna

    study = optuna.create_study(storage=storage, study_name=scheme, directions=["minimize"] * len(OBJECTIVES),
                                load_if_exists=True)
    fingerprint = _search_fingerprint(config, scheme, digest)
    recorded = study.user_attrs.get("search")
    if recorded is None:
        study.set_user_attr("search", fingerprint)
    elif recorded != fingerprint:
        words = {"notebook": "the notebook's code", "parameters": "search.parameters", "space": "its space"}
        changed = [words.get(key, f"search.{key}") for key, value in json.loads(fingerprint).items()
                   if json.loads(recorded).get(key) != value]
        raise ValueError(f"search {config['name']!r}: {' and '.join(changed)} changed since the trials of {scheme} "
                         f"ran ({storage.url}); their figures would not compare with new ones: give the search "
                         f"another name (the finished one stays) or undo the change")
    return study


@contextlib.contextmanager
def _client(config: dict, scheduler, client, progress: bool, sweep_dir: Path):
    """The Dask client every batch runs on (opened once), or None to run here."""
    from ..cluster import check_workers_see

    if client is not None or (scheduler is None and config.get("cluster") is None):
        yield client
        return
    with open_client(scheduler=scheduler, cluster=config.get("cluster"), progress=progress) as own:
        check_workers_see(own, sweep_dir)
        yield own


def run_search(config: dict | str | os.PathLike, *, trials: int | None = None, workers: int | None = None,
               kernel_name: str | None = None, scheduler: str | None = None, client=None,
               progress: bool = True) -> dict:
    """Search every scheme's parameters for the frontier of (cost, worst membership, worst re-id).

    Everything is checked before anything is written (the config, the arguments, the
    search folder). Runs until each scheme has ``n_trials`` finished or failed trials
    (a search run again resumes; see the module's notes), then writes ``trials.csv``,
    ``pareto.csv`` and one figure per scheme into ``<output_root>/<name>/search/``.

    Parameters
    ----------
    config : dict or path
        A search config (see :mod:`pbmlib.workbench.sweeps.search`), or the path of its YAML file.
    trials : int, optional
        Trials per scheme, instead of the config's ``n_trials``.
    workers : int, optional
        Trials at once, instead of the config's ``workers``.
    kernel_name : str, optional
        Jupyter kernel of the runs; None takes the notebook's own.
    scheduler : str, optional
        Address of a Dask scheduler, instead of the config's ``cluster`` section.
    client : distributed.Client, optional
        Run on this client's cluster (left open).
    progress : bool, default=True
        A progress bar over the trials.

    Returns
    -------
    dict
        ``sweep_dir``; ``trials`` (DataFrame: one row per trial, the columns of
        ``trials.csv``); ``front`` (its rows on their scheme's front, as in
        ``pareto.csv``); ``ran`` (run ids executed now); ``read_back`` (run ids of trials
        whose process had died after their run finished: read, not re-run); ``failed``
        (run id -> error, failed now); ``files`` (paths written).

    Raises
    ------
    ValueError
        A bad config or argument, a search folder that is not a folder, a search whose
        notebook, parameters or space changed since its trials ran.
    pbmlib.workbench.sweeps.SweepLockedError
        Another sweep or search holds the folder.
    pbmlib.workbench.sweeps.SweepInterrupted
        Ctrl-C: the trials that finished are kept; run it again to resume.
    """
    from ..._fs import FolderLockedError
    from . import SweepLockedError

    if importlib.util.find_spec("optuna") is None:
        raise ValueError("pbm search needs Optuna: .venv/bin/python -m pip install -e '.[search]'")
    config = check_search(config) if isinstance(config, dict) else load_search(config)
    if trials is not None:
        config["search"]["n_trials"] = check_positive_int(trials, name="trials")
    if workers is not None:
        config["workers"] = check_workers(workers, "workers")
    if kernel_name is not None and (not isinstance(kernel_name, str) or not kernel_name):
        raise ValueError(f"kernel_name must be the name of a Jupyter kernel or None, got {kernel_name!r}")
    sweep_dir = Path(config["output_root"]).resolve() / config["name"]
    _check_sweep_dir(sweep_dir)
    search_dir = inside(sweep_dir, SEARCH_DIR)
    if search_dir.is_symlink() or (search_dir.exists() and not search_dir.is_dir()):
        raise ValueError(f"{search_dir} is a symbolic link or not a folder; the search writes only into a real "
                         f"folder: remove it")
    digest = notebook_digest(Path(config["search"]["notebook"]))
    search_dir.mkdir(parents=True, exist_ok=True)
    try:
        with lock(inside(sweep_dir, SEARCH_LOCK_NAME), what="search folder", target=sweep_dir), _quiet_optuna(), \
                _storage(search_dir / STUDY_DB) as storage:
            studies = {scheme: _open_study(storage, config, scheme, digest) for scheme in config["search"]["schemes"]}
            with _client(config, scheduler, client, progress, sweep_dir) as dask_client:
                summary = _search(config, studies, sweep_dir, dask_client, kernel_name, progress)
            summary["trials"] = _trials_table(studies, config["search"], sweep_dir)
    except FolderLockedError as exc:
        if isinstance(exc, SweepLockedError) or not str(exc).startswith("search folder "):
            raise
        raise SweepLockedError(f"{sweep_dir} is in use by another search "
                               f"{str(exc).split(' is in use by another process ', 1)[1]}") from None
    summary["front"] = summary["trials"][summary["trials"]["pareto"]].reset_index(drop=True)
    summary["files"] = _write_outputs(summary["trials"], summary["front"], search_dir, config)
    return summary


def _search(config, studies, sweep_dir, client, kernel_name, progress) -> dict:
    from optuna.trial import TrialState
    from tqdm.auto import tqdm

    from . import run_sweep

    search = config["search"]
    workers = config["workers"]
    summary = {"sweep_dir": str(sweep_dir), "ran": [], "read_back": [], "failed": {}}

    def states(study):
        return [t.state for t in study.get_trials(deepcopy=False)]

    ended = sum(s in (TrialState.COMPLETE, TrialState.FAIL) for study in studies.values() for s in states(study))
    total = max(ended, search["n_trials"] * len(studies))
    with tqdm(total=total, initial=ended, desc=config["name"], unit="trial", disable=not progress) as bar:
        while True:
            batch = [(scheme, t) for scheme, study in studies.items()  # trials whose process died: run them again
                     for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))]
            wanted = {scheme: search["n_trials"] - len(states(study)) for scheme, study in studies.items()}
            while len(batch) < workers and any(n > 0 for n in wanted.values()):
                scheme = max((s for s in studies if wanted[s] > 0), key=wanted.get)  # the least tried scheme first
                number = _ask(studies[scheme], search, scheme)
                batch.append((scheme, studies[scheme].get_trials(deepcopy=False)[number]))
                wanted[scheme] -= 1
            if not batch:
                break
            result = run_sweep({"name": config["name"], "output_root": str(sweep_dir.parent), "workers": workers,
                                "stages": [_stage(search, scheme, t) for scheme, t in batch]},
                               kernel_name=kernel_name, progress=False, analysis=False, client=client)
            summary["ran"] += result["finished"]
            summary["read_back"] += result["skipped"]
            for scheme, trial in batch:
                run_id = _run_id(scheme, trial.number)
                error = result["failed"].get(run_id)
                row = None
                if error is None:
                    row, error = _figures(sweep_dir, run_id)
                if row is None:
                    if run_id not in result["failed"]:  # the sweep has said why a run failed
                        bar.write(f"trial {run_id} failed: {error.splitlines()[0][:200]}")
                    summary["failed"][run_id] = error
                    studies[scheme].tell(trial.number, state=TrialState.FAIL)
                else:
                    studies[scheme].tell(trial.number, [float(row[name]) for name in OBJECTIVES])
                bar.update(1)
    return summary


def _trials_table(studies: dict, search: dict, sweep_dir: Path) -> pd.DataFrame:
    """Every trial of ``studies`` (scheme -> Optuna study): its run, the scheme entry it ran (JSON), its state
    and figures (read back from the run)."""
    from optuna.trial import TrialState

    from .layout import ERROR_RECORD_NAME, FAILED_DIR

    rows = []
    for scheme, study in studies.items():
        for trial in study.get_trials(deepcopy=False):
            run_id = _run_id(scheme, trial.number)
            row = {"scheme": scheme, "trial": trial.number, "run_id": run_id, "state": trial.state.name.lower(),
                   "setting": None, "entry": json.dumps(_entry(search, scheme, trial.params))}
            if trial.state == TrialState.COMPLETE:
                figures, _ = _figures(sweep_dir, run_id)
                if figures is not None:
                    row["setting"] = figures["setting"]
                    row.update({k: figures.get(k) for k in _figure_columns() + list(_ROW_COLUMNS)})
            elif trial.state == TrialState.FAIL:
                record = read_record(sweep_dir / FAILED_DIR / run_id / ERROR_RECORD_NAME)
                row["error"] = (record or {}).get("error") or "no figures in its results (see its run folder)"
            rows.append(row)
    columns = list(_TRIAL_COLUMNS) + _figure_columns() + list(_ROW_COLUMNS) + ["pareto", "pareto_all", "error"]
    table = pd.DataFrame(rows, columns=columns)
    table["pareto"] = False
    table["pareto_all"] = False
    done = table["state"].eq("complete") & table[list(OBJECTIVES)].notna().all(axis=1)
    figures = table.loc[done, list(OBJECTIVES)].astype(float)
    if len(figures):
        table.loc[figures.index, "pareto_all"] = pareto_front(figures.to_numpy())
        for scheme, group in figures.groupby(table.loc[done, "scheme"]):
            table.loc[group.index, "pareto"] = pareto_front(group.to_numpy())
    return table


def _figure_columns() -> list[str]:
    return [f"{name}{end}" for name in OBJECTIVES for end in ("", "_low", "_high")]


def _targets(parameters: dict) -> dict:
    """The target of the study settings, by figure (the notebook's parameters, else the study's defaults)."""
    from ...study.settings import StudySettings

    defaults = StudySettings()
    return {"accuracy_drop": parameters.get("max_accuracy_drop", defaults.max_accuracy_drop),
            "membership_auc": parameters.get("max_membership_auc", defaults.max_membership_auc),
            "worst_reid_top1": parameters.get("max_reid_top1", defaults.max_reid_top1)}


def _write_outputs(trials: pd.DataFrame, front: pd.DataFrame, search_dir: Path, config: dict) -> list[str]:
    """``trials.csv``, ``pareto.csv`` and ``front_<scheme>.png`` (atomically); returns their paths."""
    from ..plotting import _pyplot, data_name, plot_search_front

    written = []
    for name, frame in ((TRIALS_NAME, trials), (PARETO_NAME, front.sort_values(["scheme", "accuracy_drop"]))):
        write_bytes_atomic(search_dir / name, frame.to_csv(index=False).encode())
        written.append(str(search_dir / name))
    parameters = config["search"]["parameters"]
    dataset = data_name(parameters.get("dataset", "faces"))
    plt = _pyplot()
    complete = trials[trials["state"].eq("complete") & trials["accuracy_drop"].notna()]
    for scheme, group in complete.groupby("scheme", sort=False):
        fig = plot_search_front(group, targets=_targets(parameters), title=f"Search over {scheme} on {dataset}")
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=120)
        plt.close(fig)
        path = inside(search_dir, f"front_{scheme}.png")
        write_bytes_atomic(path, buffer.getvalue())
        written.append(str(path))
    return written
