"""The one study: protect a training set under several conditions, measure, train, attack.

Every comparison in the workbench is a call of :func:`run_study`: ``pbm compare`` and
``pbm schemes``, the notebooks ``02_training``, ``03_augmentation``, ``05_privacy`` and
``06_schemes``, and the quick-sweep widget. It returns one table whose columns are the
documented :data:`pbmlib.workbench.results.STUDY_ROW_FIELDS` (plus the scorecard's
fields where it ran), with the derived columns (``accuracy_drop``, ``ssim_excess``)
computed here and nowhere else.

The study never asks which scheme it holds: everything scheme-specific comes from the
:class:`pbmlib.schemes.base.Scheme` contract (``fit_protect``, ``protect_test``,
``protect_public``, ``attack_block``, ``restoration_log10_probability``,
``adaptation``, ``is_reference``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .._validation import check_positive_int, spawn_seeds
from ..data.augmentation import Augmentation
from ..data.datasets import ImageSet
from ..data.split import split_dataset
from ..pbm.mixing import n_blocks
from ..privacy.similarity import same_label_partners, ssim_scores
from ..schemes import get_scheme
from ..schemes.base import Scheme

__all__ = ["Condition", "run_study", "schemes_from_specs"]


@dataclass(frozen=True)
class Condition:
    """One training condition: a protection scheme, optionally followed by augmentation.

    Attributes
    ----------
    scheme : Scheme
        Unfitted; the study fits it on the training part.
    augment : Augmentation, optional
        The paper's flip / rotation / brightness on the protected training images.
    """

    scheme: Scheme
    augment: Augmentation | None = None

    @property
    def label(self) -> str:
        return self.scheme.label + (" +augment" if self.augment is not None else "")


def _as_condition(item) -> Condition:
    if isinstance(item, Condition):
        return item
    if isinstance(item, Scheme):
        return Condition(item)
    if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], Scheme):
        return Condition(*item)
    raise ValueError(f"a study condition is a Scheme, a (Scheme, Augmentation) pair or a Condition, got {item!r}")


def schemes_from_specs(specs) -> list[Scheme]:
    """Schemes from config entries such as ``{"scheme": "pbm", "block": [5, 5]}`` (notebook and
    sweep parameters); every entry's parameters are validated by its scheme."""
    schemes = []
    for spec in specs:
        if not isinstance(spec, dict) or "scheme" not in spec:
            raise ValueError(f"a scheme entry is a mapping with a 'scheme' key, got {spec!r}")
        schemes.append(get_scheme(spec["scheme"], **{k: v for k, v in spec.items() if k != "scheme"}))
    return schemes


def _int_seed(sequence: np.random.SeedSequence) -> int:
    """A 31-bit int drawn from a seed sequence (Keras' ``set_random_seed`` takes ints)."""
    return int(sequence.generate_state(1, np.uint32)[0] >> 1)


def run_study(
    data: ImageSet,
    conditions,
    *,
    train: bool = True,
    scorecard: bool = False,
    model_name: str = "small_cnn",
    epochs: int = 10,
    batch_size: int = 32,
    optimizer: str = "adam",
    learning_rate: float | None = None,
    repeats: int = 1,
    test_fraction: float = 0.3,
    matchers=None,
    attack_block: tuple[int, int] | None = None,
    copies=("exact",),
    inversion: bool = False,
    inversion_epochs: int = 60,
    adaptive: bool = False,
    model_membership: bool = False,
    seed=None,
    test: ImageSet | None = None,
    baseline_cache=None,
    backup_dir=None,
    progress=None,
) -> tuple[pd.DataFrame, dict]:
    """Protect, measure, train and (optionally) attack under every condition, on one split.

    The set is split once (stratified); only the training part is protected. Every
    scheme is fitted with the same seed material, so a scheme listed with and without
    augmentation protects the same images identically, and PBM at one block size
    mixes the same way whichever other conditions the study holds.

    Parameters
    ----------
    data : ImageSet
    conditions : list of Scheme, (Scheme, Augmentation) or Condition
        Put ``get_scheme("none")`` first for the unprotected reference row (its
        accuracy is what ``accuracy_drop`` is measured from).
    train : bool, default=True
        Train ``model_name`` on every protected set and test it: on clean test images,
        or on test images the scheme transforms (``protect_test``) where it must.
    scorecard : bool, default=False
        Run :func:`pbmlib.privacy.scorecard.privacy_scorecard` on every unaugmented
        condition, with the held-out images as membership non-members.
    model_name, epochs, batch_size, optimizer, learning_rate, repeats
        As in :func:`pbmlib.learn.training.train_and_evaluate`.
    test_fraction : float
        Share of every class held out (clean test set, non-members, public images).
    matchers : sequence of str, optional
        Re-identification matchers (default: all that can run here).
    attack_block : (int, int), optional
        The attacker's guess of a block size for schemes that declare no block
        geometry of their own (``Scheme.attack_block`` returns None); schemes with
        geometry are always attacked with it. None skips block-level attacks there.
    copies : sequence of str, default=("exact",)
        Kinds of copy of each protected set the attacker holds, passed to the scorecard
        (:data:`pbmlib.privacy.copies.COPY_KINDS`, e.g. ``("exact", "jpeg95", "jpeg75")``):
        every attack also runs against each, in fields suffixed ``_<kind>``.
    inversion : bool, default=False
        Also run the learned-inversion attack: a network trained on the held-out
        images protected by :meth:`Scheme.protect_public` (the scheme's own key where
        it has one: a chosen-plaintext attacker).
    adaptive : bool, default=False
        Also run the attacks designed against defences
        (:func:`pbmlib.privacy.adaptive.adaptive_scorecard`: denoising, position-free block
        search, mixture models, augmentation search, ...). The rows' ``worst_reid_top1`` and
        ``worst_membership_auc`` are the worst case over every attack that ran.
    model_membership : bool, default=False
        With ``train``: the standard audit of what the *trained model* leaks, a
        loss-threshold membership attack (Yeom et al., 2018): the model's cross-entropy on
        the original training images (members) against the held-out ones, each shown to
        the model as it sees inputs (``protect_test``). Rows get
        ``model_membership_auc`` and ``model_membership_tpr_at_1pct_fpr`` (means over repeats).
    seed : None, int or numpy.random.Generator
        Child streams (``SeedSequence.spawn``) for the split, the schemes, the
        trainings and the attacks.
    test : ImageSet, optional
        A test set of its own (e.g. a data set's official test split): then all of
        ``data`` is the training set and nothing is split off (``test_fraction`` unused).
    baseline_cache : path or BaselineCache, optional
        Train the reference condition (unprotected, unaugmented) once per identical
        data, split, model, settings and seed, and reuse its record in every study that
        asks (:class:`pbmlib.learn.baselines.BaselineCache`); the row's
        ``baseline_reused`` says whether this study reused one.
    backup_dir : path, optional
        Make every training resumable (Keras' ``BackupAndRestore``, see
        :func:`pbmlib.learn.training.train_and_evaluate`): one sub-folder per condition; a
        study killed part-way and run again resumes each training after its last finished
        epoch and skips finished ones.
    progress : None, True or callable, default=None
        True shows one progress bar over the whole study (every epoch of every repeat of
        every condition; conditions without training count one step); a callable is called
        as ``progress(done, total)`` with the same steps (the widgets' bars).

    Returns
    -------
    table : DataFrame
        One row per condition with every field of
        :data:`pbmlib.workbench.results.STUDY_ROW_FIELDS` (and the scorecard's fields
        where it ran).
    records : dict of setting -> training record of :func:`train_and_evaluate`
    """
    conditions = [_as_condition(c) for c in conditions]
    if not conditions:
        raise ValueError("a study needs at least one condition")
    labels = [c.label for c in conditions]
    if len(set(labels)) != len(labels):
        raise ValueError(f"two conditions have the same setting: {labels}")
    repeats = check_positive_int(repeats, name="repeats")
    if attack_block is not None:
        attack_block = tuple(int(v) for v in attack_block)
    split_seed, scheme_seed, train_seed, attack_seed = (_int_seed(s) for s in spawn_seeds(seed, 4))

    if test is None:
        train_set, test_set = split_dataset(data, test_fraction=test_fraction, seed=split_seed)
    else:  # a given test set (e.g. Fashion-MNIST's own 10,000): train on all of data
        if not isinstance(test, ImageSet):
            raise ValueError(f"test must be an ImageSet or None, got {type(test).__name__}")
        train_set, test_set = data, test
    x, y, x_test, y_test = train_set.images, train_set.labels, test_set.images, test_set.labels
    floor = ssim_scores(x, x[same_label_partners(y, seed=attack_seed)]).mean()
    if train:
        from .baselines import BaselineCache, baseline_key
        from .training import train_and_evaluate

        cache = (baseline_cache if isinstance(baseline_cache, BaselineCache) or baseline_cache is None
                 else BaselineCache(baseline_cache))

    # Protect first: a scheme that cannot handle these images fails before any training starts.
    # Fit every scheme first: one that cannot handle these images fails before any training starts.
    # The protected sets are then made one at a time (only one is held in memory).
    fitted = {}
    for condition in conditions:
        if condition.scheme.label not in fitted:
            fitted[condition.scheme.label] = condition.scheme.clone().fit(x, y, seed=scheme_seed)
    rows, records = [], {}
    protected_label, protected = None, None
    per_condition = epochs * repeats if train else 1
    steps = _Steps(progress, total=per_condition * len(conditions))
    step = lambda: steps.update(1)  # noqa: E731 - one epoch of one repeat
    for done, condition in enumerate(conditions, start=1):
        base = (done - 1) * per_condition
        scheme = fitted[condition.scheme.label]
        if protected_label != scheme.label:
            protected_label, protected = None, None  # free the previous set first
            protected_label, protected = scheme.label, scheme.protect(x, y)
        block = scheme.attack_block(x.shape[1:])
        own_block = block
        block = block if block is not None else attack_block
        ssim = float(ssim_scores(x, protected).mean())
        nb = n_blocks(x.shape[1:], own_block) if own_block is not None else None
        row = {
            "setting": condition.label, "scheme": scheme.name,
            "reference": bool(scheme.is_reference and condition.augment is None),
            "augment": condition.augment.mode if condition.augment is not None else None,
            "block_height": own_block[0] if own_block else None, "block_width": own_block[1] if own_block else None,
            "n_blocks": nb, "model_name": model_name if train else None, "n_train": len(y), "n_test": len(y_test),
            "repeats": repeats if train else None,
            "test_accuracy_mean": None, "test_accuracy_std": None, "test_loss_mean": None, "test_loss_std": None,
            "accuracy_drop": None, "ssim_mean": ssim, "ssim_floor_mean": float(floor), "ssim_excess": ssim - floor,
            "log10_restoration_probability": scheme.restoration_log10_probability(y, x.shape[1:]),
            "attack_block_height": block[0] if block else None, "attack_block_width": block[1] if block else None,
            "baseline_reused": None,
        }
        if scorecard and condition.augment is None:
            row.update(_attack(scheme, x, y, protected, x_test, y_test, block=block, matchers=matchers,
                               copies=copies, inversion=inversion, inversion_epochs=inversion_epochs,
                               adaptive=adaptive, seed=attack_seed))
        if train:
            settings = dict(epochs=epochs, batch_size=batch_size, optimizer=optimizer, learning_rate=learning_rate,
                            repeats=repeats, seed=train_seed)
            test = (scheme.protect_test(x_test), y_test)

            probes = ({"members": (scheme.protect_test(x), y), "non_members": test} if model_membership else None)

            backup = None if backup_dir is None else Path(backup_dir) / _folder_name(condition.label)

            def fit(protected=protected, test=test, condition=condition, scheme=scheme, settings=settings,
                    probes=probes, backup=backup):
                return train_and_evaluate(model_name, (protected, y), test, augment=condition.augment,
                                          adaptation=scheme.adaptation, probes=probes, backup_dir=backup,
                                          progress=lambda run, epoch, logs: step(), **settings)

            if cache is not None and row["reference"]:
                key = baseline_key((protected, y), test, {"model_name": model_name, **settings,
                                                          "probes": model_membership,
                                                          "versions": _training_versions()})
                record, row["baseline_reused"] = cache.get_or_train(key, fit)
            else:
                record = fit()
            records[condition.label] = record
            steps.update(base + per_condition - steps.n)  # a cached baseline or resumed epochs: jump ahead
            if model_membership:
                row.update(_model_membership(record))
            row.update(test_accuracy_mean=record["test_accuracy_mean"], test_accuracy_std=record["test_accuracy_std"],
                       test_loss_mean=record["test_loss_mean"], test_loss_std=record["test_loss_std"])
        rows.append(row)
        steps.update(base + per_condition - steps.n)
    steps.close()
    table = pd.DataFrame(rows)
    counts = ["n_blocks", "block_height", "block_width", "attack_block_height", "attack_block_width", "repeats"]
    table[counts] = table[counts].astype("Int64")  # whole numbers, missing where they do not apply
    reference = table.loc[table["reference"], "test_accuracy_mean"]
    if train and len(reference):
        table["accuracy_drop"] = 100 * (reference.iloc[0] - table["test_accuracy_mean"])
    return table, records


class _Steps:
    """The study's progress: a tqdm bar (``progress=True``), a callable ``progress(done, total)``, or nothing."""

    def __init__(self, progress, *, total: int):
        if progress is not None and progress is not True and not callable(progress):
            raise ValueError(f"progress must be None, True or a callable progress(done, total), got {progress!r}")
        self.n, self.total, self.callback, self.bar = 0, total, None, None
        if progress is True:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc="study", unit="epoch")
        elif progress is not None:
            self.callback = progress

    def update(self, k: int) -> None:
        if k <= 0:
            return
        self.n += k
        if self.bar is not None:
            self.bar.update(k)
        if self.callback is not None:
            self.callback(self.n, self.total)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _folder_name(label: str) -> str:
    """A condition's backup folder: its label with anything but letters, digits, '.', '-' as '_'."""
    return re.sub(r"[^A-Za-z0-9.-]+", "_", label).strip("_") or "condition"


def _model_membership(record: dict) -> dict:
    """Loss-threshold membership inference on the trained models: lower loss means member."""
    from ..privacy.statistics import roc_auc, tpr_at_fpr

    aucs, tprs = [], []
    for run in record["runs"]:
        members = -np.asarray(run["probe_losses"]["members"])
        non_members = -np.asarray(run["probe_losses"]["non_members"])
        aucs.append(roc_auc(members, non_members))
        tprs.append(tpr_at_fpr(members, non_members, 0.01))
    return {"model_membership_auc": float(np.mean(aucs)), "model_membership_tpr_at_1pct_fpr": float(np.mean(tprs))}


def _training_versions() -> dict:
    """Library versions a training's outcome depends on (part of a cached baseline's key)."""
    from .._io import versions

    return {k: v for k, v in versions().items() if k not in ("platform", "pbm-workbench")}


def _attack(scheme, x, y, protected, x_test, y_test, *, block, matchers, copies, inversion, inversion_epochs,
            adaptive, seed) -> dict:
    """The privacy scorecard of one protected set, with the learned inversion and the adaptive attacks when
    asked, and the worst case over all of them."""
    from ..privacy.scorecard import privacy_scorecard, worst_case

    inverted = None
    if inversion:
        from .inversion import learned_inversion

        public = scheme.protect_public(x_test, y_test, seed=seed)
        inverted = learned_inversion(public, x_test, protected, epochs=inversion_epochs, seed=seed)
    card = privacy_scorecard(x, protected, y, block=block, non_members=x_test, matchers=matchers,
                             inverted=inverted, copies=copies, seed=seed)
    if adaptive:
        from ..privacy.adaptive import adaptive_scorecard

        card.update(adaptive_scorecard(x, protected, block=block, non_members=x_test))
    return {**card, **worst_case(card)}
