"""Batch runs of the parameterized notebooks with papermill: grids, resumable, interruptible sweeps.

One job per module:

- :mod:`.config`: the YAML config, read with limits and checked before anything runs;
- :mod:`.runs`: the runs a config plans, their ids, fingerprints and states;
- :mod:`.layout`: the names of the sweep folder's files and folders;
- :mod:`.runner`: executing the runs (here or on a Dask cluster) under the sweep's lock;
- :mod:`.search`: a multi-objective search of scheme parameters whose trials are sweep runs.

See :mod:`.layout` for what a sweep folder holds and :mod:`.runner` for what a run
guarantees.
"""

from .config import DEFAULT_MAX_RUNS, check_sweep, load_sweep
from .runner import SweepInterrupted, SweepLockedError, execute_run, git_state, run_sweep
from .runs import Run, is_finished, iter_runs, plan_runs, run_state

__all__ = ["Run", "SweepLockedError", "SweepInterrupted", "DEFAULT_MAX_RUNS", "load_sweep", "check_sweep",
           "iter_runs", "plan_runs", "run_sweep", "execute_run", "is_finished", "run_state", "git_state"]
