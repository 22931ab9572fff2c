"""The learner a numpy-tier study trains through: Keras training and the learned inversion.

:func:`pbmlib.study.run_study` never imports Keras; it calls a learner's ``fit_evaluate``
(one condition's trainings on one split) and ``invert`` (the learned-inversion attack).
:class:`KerasLearner` is the default: :func:`pbmlib.learn.training.train_and_evaluate`,
with a baseline cache (the unprotected reference trained once per identical data,
settings and seed, shared by a sweep's runs) and resumable trainings.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

__all__ = ["KerasLearner"]


class KerasLearner:
    """Train and invert with Keras.

    Parameters
    ----------
    baseline_cache : path or BaselineCache, optional
        Train the reference condition once per identical data, split, model, settings and
        seed, and reuse its record (:class:`pbmlib.learn.baselines.BaselineCache`); records
        say whether they were reused (``baseline_reused``).
    backup_dir : path, optional
        Make every training resumable (Keras' ``BackupAndRestore``): one sub-folder per
        split and condition; a study killed part-way and run again resumes each training
        after its last finished epoch and skips finished ones.
    """

    def __init__(self, *, baseline_cache=None, backup_dir: str | os.PathLike | None = None):
        from .baselines import BaselineCache

        self.baseline_cache = (baseline_cache if baseline_cache is None or isinstance(baseline_cache, BaselineCache)
                               else BaselineCache(baseline_cache))
        self.backup_dir = None if backup_dir is None else Path(backup_dir)

    def fit_evaluate(self, train, test, *, training, seed, augment=None, adaptation=None, probes=None, name="training",
                     reference=False, progress=None) -> dict:
        """One condition's trainings (:func:`pbmlib.learn.training.train_and_evaluate`), through the cache
        when it is the reference; the record gets ``baseline_reused`` (None without a cache)."""
        from .baselines import baseline_key
        from .training import train_and_evaluate

        def fit():
            backup = None if self.backup_dir is None else self.backup_dir / name
            return train_and_evaluate(train, test, training=training, seed=seed, augment=augment,
                                      adaptation=adaptation, probes=probes, backup_dir=backup,
                                      progress=None if progress is None else lambda run, epoch, logs: progress())

        if self.baseline_cache is None or not reference:
            return {**fit(), "baseline_reused": None}
        key = baseline_key(train, test, {**training.to_dict(), "seed": _seed_key(seed), "probes": bool(probes),
                                         "versions": _training_versions()})
        record, reused = self.baseline_cache.get_or_train(key, fit)
        return {**record, "baseline_reused": reused}

    def invert(self, public_protected, public_originals, targets, *, epochs: int, seed) -> np.ndarray:
        """The learned inversion (:func:`pbmlib.learn.inversion.learned_inversion`)."""
        from .inversion import learned_inversion

        return learned_inversion(public_protected, public_originals, targets, epochs=epochs, seed=seed)


def _seed_key(seed):
    """A seed as it identifies a training (a SeedSequence by its entropy and spawn key)."""
    if isinstance(seed, np.random.SeedSequence):
        return [str(seed.entropy), list(seed.spawn_key)]
    return seed


def _training_versions() -> dict:
    """Library versions a training's outcome depends on (part of a cached baseline's key)."""
    from .._io import versions

    return {k: v for k, v in versions().items() if k != "pbm-workbench"}
