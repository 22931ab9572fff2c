"""The frontier search: the Pareto front is exactly the non-dominated set, configs fail in one line
naming the key, the sampler is seeded per trial (a resumed search asks what an uninterrupted one
would), and a tiny real search writes its front and resumes without recomputing finished trials."""

import copy
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from pbmlib.workbench.sweeps import search as search_module
from pbmlib.workbench.cli import main
from pbmlib.workbench.sweeps.search import OBJECTIVES, check_search, load_search, pareto_front, run_search

optuna = pytest.importorskip("optuna")

ROOT = Path(__file__).resolve().parents[1]
FRONTIER = ROOT / "notebooks" / "07_frontier.ipynb"


def _config(tmp_path, **search):
    return {"name": "tiny", "output_root": str(tmp_path / "runs"),
            "search": {"notebook": str(FRONTIER),
                       "parameters": {"dataset": "faces", "n_splits": 1, "epochs": 1, "repeats": 1,
                                      "inversion": False, "shadow_releases": 0, "adaptive": False,
                                      "shadow_models": 0, "matchers": ["pixel", "blocks"]},
                       "schemes": {"pbm_noise": {"block": [5, 5], "sigma": {"low": 8, "high": 128, "log": True}}},
                       "n_trials": 2, "seed": 0, **search}}


# ----------------------------------------------------------------------------- the front

def _brute_force(points):
    points = np.asarray(points, dtype=float)
    keep = []
    for i, p in enumerate(points):
        keep.append(not any(np.all(q <= p) and np.any(q < p) for j, q in enumerate(points) if j != i))
    return np.array(keep, dtype=bool)


@pytest.mark.parametrize("n, k, ties", [(1, 3, False), (7, 2, True), (60, 3, False), (60, 3, True), (200, 4, True)])
def test_pareto_front_is_exactly_the_non_dominated_set(n, k, ties):
    rng = np.random.default_rng(n * 10 + k)
    points = rng.integers(0, 4, size=(n, k)) if ties else rng.normal(size=(n, k))
    found = pareto_front(points)
    assert found.dtype == bool and found.shape == (n,)
    np.testing.assert_array_equal(found, _brute_force(points))
    assert found.any()  # a finite set always has a non-dominated point


def test_pareto_front_keeps_equal_points_and_refuses_what_is_not_a_set_of_points():
    assert pareto_front([[1.0, 2.0], [1.0, 2.0], [2.0, 3.0]]).tolist() == [True, True, False]
    assert pareto_front(np.empty((0, 3))).tolist() == []
    with pytest.raises(ValueError, match="finite"):
        pareto_front([[0.1, np.nan], [0.2, 0.3]])
    with pytest.raises(ValueError, match=r"shape \(n, k\)"):
        pareto_front([0.1, 0.2])


# ----------------------------------------------------------------------------- the config

def _set(config, path, value):
    node = config
    *parents, last = path.split(".")
    for key in parents:
        node = node[key]
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value


_DELETE = object()
_BAD = [
    ("search", _DELETE, "missing 'search'"),
    ("serch", {}, "unknown key 'serch' (did you mean 'search'?)"),
    ("name", "../out", "name must be a plain folder name"),
    ("workers", 0, "workers must be a whole number"),
    ("search.n_trials", 0, "search.n_trials must be a whole number"),
    ("search.sampler", "random", "search.sampler must be one of tpe, nsga2"),
    ("search.seed", -1, "search.seed must be a whole number"),
    ("search.startup_trials", 0, "search.startup_trials"),
    ("search.notebook", "nowhere/07_frontier.ipynb", "search.notebook: 'nowhere/07_frontier.ipynb' not found"),
    ("search.parameters.schemes", [], "search.parameters: schemes is set by the search"),
    ("search.parameters.epoch", 3, "search.parameters: parameter 'epoch' is not a parameter of"),
    ("search.schemes", {}, "search.schemes must map scheme names"),
    ("search.schemes.pbm_nois", {"sigma": {"low": 1, "high": 2}}, "search.schemes.pbm_nois: 'pbm_nois' is not a"),
    ("search.schemes.none", {"block": [5, 5]}, "search.schemes.none: 'none' is not a scheme to search"),
    ("search.schemes.pbm_noise.sgma", {"low": 1, "high": 2}, "unknown key 'sgma' (did you mean 'sigma'?)"),
    ("search.schemes.pbm_noise.sigma", {"low": 64, "high": 8}, "search.schemes.pbm_noise.sigma: low must be below"),
    ("search.schemes.pbm_noise.sigma", {"low": 0, "high": 8, "log": True}, "log-scaled range needs low > 0"),
    ("search.schemes.pbm_noise.sigma", {"low": 1, "high": 8, "log": "yes"}, "log must be true or false"),
    ("search.schemes.pbm_noise.sigma", {"high": 8}, "search.schemes.pbm_noise.sigma: missing 'low'"),
    ("search.schemes.pbm_noise.sigma", {"low": 1, "high": 8, "lg": True}, "unknown key 'lg' (did you mean 'log'?)"),
    ("search.schemes.pbm_noise.sigma", {"low": 1, "high": 8, "step": 1, "log": True}, "step and log"),
    ("search.schemes.pbm_noise.sigma", {"choices": []}, "choices must be a non-empty list"),
    ("search.schemes.pbm_noise.sigma", {"choices": [8, 8]}, "choices holds a value twice"),
    ("search.schemes.pbm_noise.sigma", {"choices": [8, 16], "low": 1}, "choices go alone"),
    ("search.schemes.pbm_noise.sigma", 8.0, "search.schemes.pbm_noise: no parameter is searched"),
    ("search.schemes.pbm_noise.p", {"low": 0.5, "high": 1.5},
     "search.schemes.pbm_noise.p: the scheme refuses {'block': [5, 5], 'p': 1.5}"),
    ("search.schemes.pbm_noise.rounds", {"low": 1, "high": 4},
     "search.schemes.pbm_noise.rounds: the scheme refuses {'block': [5, 5], 'rounds': 1.0}: pbm_noise: rounds must "
     "be an int from 1 to 1000, got 1.0 (N_t); for a whole-number parameter add int: true"),
    ("search.schemes.pbm_noise.rounds", {"low": 1.5, "high": 4, "int": True}, "needs whole-number low and high"),
    ("search.schemes.pbm_noise.block", {"choices": [[5, 5], [0, 5]]},
     "search.schemes.pbm_noise.block: the scheme refuses {'block': [0, 5]}"),
    ("search.schemes.dppix", {"cell": {"choices": [1, 5]}}, "search.schemes.dppix: the scheme needs epsilon"),
    ("search.resources", {"GPU": 0}, "search.resources must map resource names to positive amounts"),
]


@pytest.mark.parametrize("path, value, message", _BAD, ids=[f"{p}={v!r}"[:60] for p, v, _ in _BAD])
def test_config_errors_are_one_line_naming_the_key(tmp_path, path, value, message):
    config = _config(tmp_path)
    _set(config, path, value)
    with pytest.raises(ValueError) as caught:
        check_search(config)
    text = str(caught.value)
    assert "\n" not in text and message in text, text
    assert not (tmp_path / "runs").exists()  # nothing written


def test_the_shipped_config_checks_and_a_bad_file_is_one_line_with_exit_2(tmp_path, capsys):
    config = load_search(ROOT / "sweeps" / "search.yaml")
    assert set(config["search"]["schemes"]) >= {"pbm_noise", "dppix", "pbm_average"}
    assert check_search(config) == config  # a checked config checks again unchanged
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(_config(tmp_path, n_trials="many")))
    assert main(["search", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "search.n_trials must be a whole number" in err and str(path) in err
    path.write_text("name: x\nsearch:\n  n_trials: 1\n  n_trials: 2\n")
    assert main(["search", str(path)]) == 2
    assert "key 'n_trials' is given twice" in capsys.readouterr().err


# ----------------------------------------------------------------------------- the sampler

def _objectives(entry) -> list[float]:
    """A stand-in for a study's figures, a fixed function of the setting: cost rises, leaks fall with sigma."""
    sigma = entry["sigma"] / (5 if entry.get("block") == [1, 1] else 1)
    return [float(np.log(sigma)), float(1 / sigma), float(1 / np.sqrt(sigma))]


def _asked(config, storage, n, *, start=0):
    search = config["search"]
    study = optuna.create_study(storage=storage, study_name="pbm_noise", directions=["minimize"] * 3,
                                load_if_exists=True)
    entries = []
    for _ in range(start, n):
        number = search_module._ask(study, search, "pbm_noise")
        entry = search_module._entry(search, "pbm_noise", study.trials[number].params)
        study.tell(number, _objectives(entry))
        entries.append(entry)
    return entries


@pytest.mark.parametrize("sampler", ["tpe", "nsga2"])
def test_each_trial_is_asked_by_a_sampler_seeded_from_the_seed_and_its_number(tmp_path, sampler):
    config = check_search(_config(tmp_path, sampler=sampler, startup_trials=4, schemes={"pbm_noise": {
        "block": {"choices": [[5, 5], [1, 1]]}, "sigma": {"low": 4, "high": 256, "log": True}}}))
    with search_module._quiet_optuna():
        once = _asked(config, optuna.storages.InMemoryStorage(), 12)
        again = _asked(config, optuna.storages.InMemoryStorage(), 12)
        url = f"sqlite:///{tmp_path / 'search.db'}"  # interrupted after 5 trials, resumed from the database
        resumed = _asked(config, url, 5) + _asked(config, url, 12, start=5)
        other = _asked(copy.deepcopy(config) | {"search": {**config["search"], "seed": 1}},
                       optuna.storages.InMemoryStorage(), 12)
    assert once == again == resumed
    assert other != once
    assert {json.dumps(e["block"]) for e in once} == {"[5, 5]", "[1, 1]"}
    assert all(4 <= e["sigma"] <= 256 and e["sigma"] == float(f"{e['sigma']:.4g}") for e in once)


def test_a_search_whose_space_changed_is_refused(tmp_path):
    config = check_search(_config(tmp_path))
    with search_module._quiet_optuna(), search_module._storage(tmp_path / "search.db") as storage:
        search_module._open_study(storage, config, "pbm_noise", "digest")
        search_module._open_study(storage, config, "pbm_noise", "digest")  # the same search: reopened
        wider = copy.deepcopy(config)
        wider["search"]["schemes"]["pbm_noise"]["sigma"]["high"] = 512
        with pytest.raises(ValueError, match=r"its space changed since the trials of pbm_noise ran .* give the search another name"):
            search_module._open_study(storage, wider, "pbm_noise", "digest")
        with pytest.raises(ValueError, match="the notebook's code changed"):
            search_module._open_study(storage, config, "pbm_noise", "changed code")


# ----------------------------------------------------------------------------- a tiny real search

@pytest.mark.slow
def test_a_tiny_search_writes_its_front_and_resumes_without_recomputing(tmp_path, capsys):
    config = _config(tmp_path)
    sweep_dir = tmp_path / "runs" / "tiny"
    first = run_search(config, trials=1, progress=False)
    assert first["ran"] == ["pbm_noise__trial-0000"] and not first["failed"]
    record = sweep_dir / "pbm_noise__trial-0000" / "run.json"
    stamp = record.stat().st_mtime_ns
    # a search killed while trial 1 ran: the study holds it as running (as _search asks it)
    checked = check_search(config)
    with search_module._quiet_optuna():
        orphan = optuna.load_study(study_name="pbm_noise", storage=f"sqlite:///{sweep_dir / 'search' / 'search.db'}")
        number = search_module._ask(orphan, checked["search"], "pbm_noise")
        asked = search_module._entry(checked["search"], "pbm_noise", orphan.trials[number].params)
    second = run_search(config, progress=False)  # n_trials 2: runs the orphan, asks nothing new
    assert second["ran"] == ["pbm_noise__trial-0001"] and not second["failed"]
    assert record.stat().st_mtime_ns == stamp  # the finished trial was not recomputed
    trials = second["trials"]
    assert trials["state"].tolist() == ["complete", "complete"]
    assert json.loads(trials.loc[1, "entry"]) == asked  # the orphan ran with the parameters it was asked with
    study = pd.read_csv(sweep_dir / "pbm_noise__trial-0001" / "study.csv")
    assert study.loc[study["setting"] == "none", "baseline_reused"].tolist() == [True]  # reference trained once
    worse = trials[["worst_membership_auc", "model_membership_auc"]].max(axis=1)  # as the target judges membership
    np.testing.assert_array_equal(trials["membership_auc"], worse)
    assert set(trials["membership_source"]) <= {"release", "model"}
    figures = trials[list(OBJECTIVES)].to_numpy(dtype=float)
    np.testing.assert_array_equal(trials["pareto"].to_numpy(), _brute_force(figures))
    with search_module._quiet_optuna():
        best = optuna.load_study(study_name="pbm_noise",
                                 storage=f"sqlite:///{sweep_dir / 'search' / 'search.db'}").best_trials
    assert sorted(t.number for t in best) == trials.loc[trials["pareto"], "trial"].tolist()
    pareto = pd.read_csv(sweep_dir / "search" / "pareto.csv")
    assert len(pareto) == trials["pareto"].sum() and {f"{name}_low" for name in OBJECTIVES} <= set(pareto)
    assert set(pareto["meets_target"]) <= {"met", "not met", "undecided"}
    assert (sweep_dir / "search" / "front_pbm_noise.png").stat().st_size > 10_000
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["search", str(path), "--quiet"]) == 0  # finished: nothing runs again
    out = capsys.readouterr().out
    assert "0 trial(s) run now" in out and "Pareto front of pbm_noise" in out and "pareto.csv" in out
    assert record.stat().st_mtime_ns == stamp
