"""The sweep folder's layout: the names of its files and folders, in one place.

``<output_root>/<name>/`` holds:

``<run>/``
    A finished run: the executed notebook, its files, ``results.json`` (written by the
    notebook through :mod:`pbmlib.workbench.results`) and ``run.json`` (parameters, the
    run's fingerprint, the final folder, the git commit of the code, versions). The sweep
    made it, and only the sweep replaces it (to ``stale/``).
``.work/<run>/<attempt>/``
    A run in progress: every attempt executes in its own folder and is moved to ``<run>/``
    only when it succeeded. ``.work/<run>/backup/`` keeps its trainings' backups across
    attempts.
``failed/<run>/``
    A run that raised: ``error.json`` and the executed notebook with its traceback.
``stale/<run>/<UTC time>/``
    Every earlier generation of a run whose parameters or notebook changed since it finished.
``baselines/``
    Training records of the unprotected baselines, shared by every run of the sweep.
``analysis/``
    The analysis notebook's run.
``sweeps/<UTC time>.json``
    One record per invocation (never overwritten).
``.lock``
    Held while a sweep runs (:func:`pbmlib._fs.lock`).
``search/``, ``.search.lock``
    A search's Optuna studies (``search.db``), its tables and fronts
    (:mod:`pbmlib.workbench.sweeps.search`); its trials are runs of this folder. The lock is
    held while a search runs.
"""

RUN_RECORD_NAME = "run.json"
ERROR_RECORD_NAME = "error.json"
RESULTS_NAME = "results.json"  # written by the notebooks (pbmlib.workbench.results)
LOCK_NAME = ".lock"
WORK_DIR = ".work"
FAILED_DIR = "failed"
STALE_DIR = "stale"
RECORDS_DIR = "sweeps"
ANALYSIS_DIR = "analysis"
BASELINES_DIR = "baselines"
BACKUP_DIR = "backup"  # inside .work/<run>/: training backups, kept until the run finishes
SEARCH_DIR = "search"
SEARCH_LOCK_NAME = ".search.lock"
#: The sweep's own folders; no stage may take one of these names.
OWN_DIRS = (WORK_DIR, FAILED_DIR, STALE_DIR, RECORDS_DIR, ANALYSIS_DIR, BASELINES_DIR)
RESERVED_NAMES = frozenset({FAILED_DIR, STALE_DIR, RECORDS_DIR, ANALYSIS_DIR, BASELINES_DIR, SEARCH_DIR})
