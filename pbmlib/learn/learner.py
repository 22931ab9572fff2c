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

from .._fs import lock
from .._validation import as_seed_sequence

__all__ = ["KerasLearner", "SHADOW_PART"]

#: Shadow models trained together in one compiled step (and kept as one file).
SHADOW_PART = 4


class KerasLearner:
    """Train and invert with Keras.

    Parameters
    ----------
    baseline_cache : path or BaselineCache, optional
        Train the reference condition once per identical data, split, model, settings and
        seed, and reuse its record (:class:`pbmlib.learn.baseline_cache.BaselineCache`); records
        say whether they were reused (``baseline_reused``).
    backup_dir : path, optional
        Make every training resumable (Keras' ``BackupAndRestore``): one sub-folder per
        split and condition; a study killed part-way and run again resumes each training
        after its last finished epoch and skips finished ones.
    """

    def __init__(self, *, baseline_cache=None, backup_dir: str | os.PathLike | None = None):
        from .baseline_cache import BaselineCache

        self.baseline_cache = (baseline_cache if baseline_cache is None or isinstance(baseline_cache, BaselineCache)
                               else BaselineCache(baseline_cache))
        self.backup_dir = None if backup_dir is None else Path(backup_dir)

    def fit_evaluate(self, train, test, *, training, seed, augment=None, adaptation=None, probes=None, name="training",
                     reference=False, progress=None) -> dict:
        """One condition's trainings (:func:`pbmlib.learn.training.train_and_evaluate`), through the cache
        when it is the reference; the record gets ``baseline_reused`` (None without a cache)."""
        from .baseline_cache import baseline_key
        from .training import train_and_evaluate

        def fit():
            backup = None if self.backup_dir is None else self.backup_dir / name
            return train_and_evaluate(train, test, training=training, seed=seed, augment=augment,
                                      adaptation=adaptation, probes=probes, backup_dir=backup,
                                      progress=None if progress is None else lambda run, epoch, logs: progress())

        if self.baseline_cache is None or not reference:
            return {**fit(), "baseline_reused": None}
        key = baseline_key(train, test, settings={**training.to_dict(), "seed": _seed_key(seed),
                                                  "probes": _probes_key(probes), "versions": _training_versions()})
        record, reused = self.baseline_cache.get_or_train(key, fit)
        return {**record, "baseline_reused": reused}

    def shadow_confidences(self, population, labels, *, n_shadows: int, training, seed, progress=None) -> dict:
        """LiRA's shadow models on ``population`` (:func:`pbmlib.learn.shadows.train_shadows`), trained
        together in parts of :data:`SHADOW_PART` models with the target's recipe.

        With a baseline cache, the parts are kept under ``<cache>/shadows/<design>/`` (written
        atomically, one lock per part): every run of a sweep that asks for the same design
        (population, recipe, number, seed) reuses them, and an interrupted one resumes at its
        first missing part.

        Returns
        -------
        dict
            ``scores`` (n_shadows, N) float64, logit-scaled confidences of the true label;
            ``inclusion`` (n_shadows, N) bool; ``reused`` (whether every part came from the cache).
        """
        from .shadows import ShadowSettings, combine_shadow_scores, design_key, train_shadows

        settings = ShadowSettings(training=training.replace(repeats=1))
        seed = as_seed_sequence(seed)  # one design whatever the seed's type (None or a Generator draw once)
        parts = [list(range(lo, min(lo + SHADOW_PART, n_shadows))) for lo in range(0, n_shadows, SHADOW_PART)]
        tick = None if progress is None else lambda *_: progress()
        if self.baseline_cache is None:
            found = [train_shadows(population, labels, n_shadows=n_shadows, settings=settings, seed=seed,
                                   indices=part, progress=tick) for part in parts]
            order = np.argsort(np.concatenate([f["indices"] for f in found]))
            return {"scores": np.concatenate([f["scores"][..., 0] for f in found])[order],
                    "inclusion": np.concatenate([f["inclusion"] for f in found])[order], "reused": False}
        folder = self.baseline_cache.directory / "shadows" / design_key(population, labels, settings, n_shadows, seed)
        folder.mkdir(parents=True, exist_ok=True)
        paths, reused = [folder / f"part_{k:03d}.npz" for k in range(len(parts))], True
        for part, path in zip(parts, paths):
            with lock(folder / f"{path.stem}.lock", what="shadow models", target=path, wait=True,
                      timeout=self.baseline_cache.wait_seconds):
                reused &= path.exists()
                train_shadows(population, labels, n_shadows=n_shadows, settings=settings, seed=seed, indices=part,
                              path=path, progress=tick)
        combined = combine_shadow_scores(paths)
        return {"scores": combined["scores"][..., 0], "inclusion": combined["inclusion"], "reused": reused}

    def invert(self, public_protected, public_originals, targets, *, epochs: int, seed) -> np.ndarray:
        """The learned inversion (:func:`pbmlib.learn.inversion.learned_inversion`)."""
        from .inversion import learned_inversion

        return learned_inversion(public_protected, public_originals, targets, epochs=epochs, seed=seed)


def _seed_key(seed):
    """A seed as it identifies a training (a SeedSequence by its entropy and spawn key)."""
    if isinstance(seed, np.random.SeedSequence):
        return [str(seed.entropy), list(seed.spawn_key)]
    return seed


def _probes_key(probes: dict | None) -> str | None:
    """The probes a training is asked (their images and labels), as they identify a cached record."""
    from .baseline_cache import baseline_key

    if not probes:
        return None
    return baseline_key(*(probes[name] for name in sorted(probes)), settings={"names": sorted(probes)})


def _training_versions() -> dict:
    """Library versions a training's outcome depends on (part of a cached baseline's key)."""
    from .._io import versions

    return {k: v for k, v in versions().items() if k != "pbm-workbench"}
