"""The one study: protect a training set under several conditions, audit, train, decide the target.

Every comparison in the workbench is a call of :func:`run_study`: ``pbm compare`` and
``pbm schemes``, the study notebooks and the quick-sweep widget. It is numpy-tier code:
training goes through the *learner* the caller passes (the Keras tier's
:class:`pbmlib.learn.learner.KerasLearner`), so importing or running a study without
training never loads TensorFlow.

Per split (``n_splits`` independent splits, scheme seeds and training seeds, all child
streams of ``seed``): the set is split once (stratified; or a test set of its own is
used), every scheme is fitted on the training part with the same seed material and every
condition trains and is attacked with the same streams (common random numbers: a condition's
draws never depend on which conditions ran before it or came from a cache), each
condition's protected set is audited (:func:`pbmlib.privacy.audit.audit`, the held-out
images as non-members) and a classifier is trained on it and tested on the clean test
images (or on test images the scheme transforms, where it must). Per condition, figures
are means over splits, with intervals: the audit's (:func:`pbmlib.privacy.audit.combine_audits`),
and a paired bootstrap of the accuracy cost against the reference on the same test
images (with McNemar's test). The target (membership AUC, re-identification, cost) is
decided per setting only where the intervals decide it: "met", "not met", "undecided".
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from .._validation import split_options, spawn_seeds
from ..data.datasets import ImageSet
from ..data.split import split_dataset, stratified_subsample
from ..privacy.audit import AUDIT_FIELDS, AttackSettings, audit, combine_audits
from ..privacy.lira import lira_offline, lira_online, loss_threshold_scores, membership_report
from ..privacy.similarity import same_label_partners, ssim_scores
from ..privacy.statistics import decide, mcnemar_p, paired_difference_interval, roc_auc, tpr_at_fpr
from .conditions import as_condition
from .settings import StudySettings, TrainingSettings

__all__ = ["run_study", "STUDY_ROW_FIELDS", "MODEL_MEMBERSHIP_FIELDS", "TARGET_FIELDS"]

#: Every row of a study table: name -> meaning. All present in every row (null where not measured).
STUDY_ROW_FIELDS = {
    "setting": "the condition's label: the scheme and its parameters, '+augment' when augmented",
    "scheme": "the scheme's registry name",
    "reference": "true for the unprotected reference condition (scheme 'none', no augmentation)",
    "augment": "augmentation mode ('offline' or 'online') or null",
    "block_height": "PBM block height L_b in pixels, or null",
    "block_width": "PBM block width W_b in pixels, or null",
    "n_blocks": "N_b, blocks per image (Eq. 6), or null for schemes without blocks",
    "model_name": "the classifier trained, or null without training",
    "n_splits": "independent splits (and scheme and training seeds) the row's figures are means over",
    "n_train": "training images per split (before offline augmentation)",
    "n_test": "clean test images per split",
    "repeats": "trainings per condition and split, or null without training",
    "test_accuracy_mean": "clean-test accuracy, mean over splits and repeats",
    "test_accuracy_std": "sample standard deviation over splits and repeats (null for one training)",
    "test_loss_mean": "clean-test loss, mean over splits and repeats",
    "test_loss_std": "sample standard deviation over splits and repeats",
    "accuracy_drop": "points below the reference on the same test images (paired), mean over splits",
    "accuracy_drop_low": "lower end of its 95 % paired bootstrap interval (test images resampled per split)",
    "accuracy_drop_high": "upper end",
    "accuracy_drop_mcnemar_p": "exact McNemar test of the majority-vote predictions against the reference's, "
                               "on the test images of every split",
    "ssim_mean": "mean SSIM of the protected training images to their originals",
    "ssim_floor_mean": "mean SSIM of each original to a random same-label original (the chance floor)",
    "ssim_excess": "ssim_mean - ssim_floor_mean",
    "log10_restoration_probability": "the paper's brute-force count (Eq. 9, log10) where the scheme has one",
    "attack_block_height": "block height of the block-level attacks (the scheme's own, else the guess), or null",
    "attack_block_width": "block width of the block-level attacks, or null",
    "baseline_reused": "for a reference trained through a baseline cache: whether an earlier or parallel run had "
                       "trained it (true on every split) or this run did; null without a cache",
}
#: Fields of the membership attacks on the trained models (``model_membership``): pooled over splits and repeats.
MODEL_MEMBERSHIP_FIELDS = {
    "model_membership_attack": "the attack on the trained models the model_membership_* figures come from: 'LiRA "
                               "online' (with shadow models) or 'loss threshold' (without)",
    "model_membership_auc": "membership AUC of that attack on the trained models (training originals vs as many held-"
                            "out originals; 0.5 = chance), scores pooled over splits and repeats: what a released "
                            "model leaks",
    "model_membership_auc_low": "lower end of its 95 % bootstrap interval",
    "model_membership_auc_high": "upper end",
    "model_membership_tpr_at_low_fpr": "its members detected at 0.1 % false positives where the non-members resolve "
                                       "it, else at 1/non-members (model_membership_low_fpr says which)",
    "model_membership_tpr_at_low_fpr_low": "lower end of its 95 % bootstrap interval",
    "model_membership_tpr_at_low_fpr_high": "upper end",
    "model_membership_low_fpr": "the FPR model_membership_tpr_at_low_fpr was measured at",
    "model_membership_tpr_at_1pct_fpr": "members detected at 1 % false positives, null where the non-members do not "
                                        "resolve it",
    "model_membership_offline_auc": "AUC of offline LiRA (only the shadow models without the candidate), null "
                                    "without shadow models",
    "model_membership_loss_auc": "AUC of the loss-threshold attack (the weak baseline: a lower loss means member)",
    "model_membership_loss_tpr_at_low_fpr": "its members detected at model_membership_low_fpr",
    "model_membership_shadows": "shadow models of LiRA (0: the loss-threshold attack alone)",
    "model_membership_n_members": "member scores pooled (training images x splits x repeats)",
    "model_membership_n_non_members": "non-member scores pooled",
}
#: The target, decided per setting from the intervals.
TARGET_FIELDS = {
    "membership_target": "membership AUC below the target, for the release's worst attack and (where measured) the "
                         "attack on the trained models: 'met' when every interval's upper end is below it, 'not met' "
                         "when one interval's lower end is not, else 'undecided'",
    "reid_target": "re-identification below the target, decided the same way",
    "cost_target": "accuracy cost at most the target, decided the same way on the paired interval",
    "meets_target": "'met' when all three are met, 'not met' when one is not met, else 'undecided'",
}
_SHARED_FIELDS = ("ssim_mean", "ssim_floor_mean", "ssim_excess")  # measured by the study for every condition


def run_study(data: ImageSet, conditions, *, test: ImageSet | None = None, seed=None, learner=None, progress=None,
              **options) -> tuple[pd.DataFrame, dict]:
    """Protect, audit, train and decide under every condition, over ``n_splits`` splits.

    Parameters
    ----------
    data : ImageSet
    conditions : list of Scheme, (Scheme, Augmentation) or Condition
        Put ``get_scheme("none")`` first for the unprotected reference row (what
        ``accuracy_drop`` is measured from).
    test : ImageSet, optional
        A test set of its own (e.g. a data set's official test split): then all of
        ``data`` is the training set on every split (splits then vary the seeds only).
    seed : None, int, SeedSequence or Generator
        Child streams (``SeedSequence.spawn``) for every split: its split, the schemes,
        the trainings, the audit.
    learner : object, optional
        What trains (``fit_evaluate``) and inverts (``invert``), required when the study
        trains or runs the learned inversion: :class:`pbmlib.learn.learner.KerasLearner`
        (with its baseline cache and backup folder, if any) or any object with those methods.
    progress : None, True or callable, default=None
        True shows one progress bar over every epoch of every repeat of every condition and
        split (conditions without training count one step); a callable is called as
        ``progress(done, total)`` with the same steps (the widgets' bars).
    **options
        The settings, each as one object or by its fields:

        - ``study=StudySettings(...)``: ``train``, ``audit``, ``model_membership``,
          ``n_splits``, ``test_fraction``, the target (``max_membership_auc``,
          ``max_reid_top1``, ``max_accuracy_drop``);
        - ``training=TrainingSettings(...)``: ``model_name``, ``epochs``, ``batch_size``,
          ``optimizer``, ``learning_rate``, ``repeats``;
        - ``attacks=AttackSettings(...)``: ``matchers``, ``copies``, ``adaptive``,
          ``likelihood``, ``shadow_releases``, ``reassembly``, ``inversion``,
          ``attack_block``, ... (see :class:`pbmlib.privacy.audit.AttackSettings`).

    Returns
    -------
    table : DataFrame
        One row per condition with every field of :data:`STUDY_ROW_FIELDS`, the audit's
        (:data:`pbmlib.privacy.audit.AUDIT_FIELDS`) where it ran, the model attack's and the
        target's (:data:`TARGET_FIELDS`) where they apply.
    records : dict of setting -> dict
        ``training``: the trainings' record (every split's runs, tagged with ``split``) or
        None; ``audits``: per split, the attacks table, the per-class table and the ROC of
        the chosen membership attack (JSON-able); ``model_membership_roc``: per attack on the
        trained models, ``[fpr, tpr]`` on a log-spaced FPR grid (None without it).
    """
    settings = split_options(options, {"study": StudySettings, "training": TrainingSettings,
                                       "attacks": AttackSettings}, where="run_study")
    study, training, attacks = settings["study"], settings["training"], settings["attacks"]
    conditions = [as_condition(c) for c in conditions]
    if not conditions:
        raise ValueError("a study needs at least one condition")
    labels = [c.label for c in conditions]
    if len(set(labels)) != len(labels):
        raise ValueError(f"two conditions have the same setting: {labels}")
    if test is not None and not isinstance(test, ImageSet):
        raise ValueError(f"test must be an ImageSet or None, got {type(test).__name__}")
    if learner is None and (study.train or (study.audit and attacks.inversion)):
        raise ValueError("training (and the learned inversion) needs a learner: pass "
                         "learner=pbmlib.learn.learner.KerasLearner(), or train=False (the study itself never "
                         "imports Keras)")
    per_condition = training.epochs * training.repeats if study.train else 1
    steps = _Steps(progress, total=per_condition * len(conditions) * study.n_splits, per_condition=per_condition)
    found = {c.label: {"rows": [], "trainings": [], "audits": [], "model_attacks": []} for c in conditions}
    *split_seeds, summary_seed = spawn_seeds(seed, study.n_splits + 1)
    for split, split_seed in enumerate(split_seeds):
        _one_split(data, test, conditions, split, split_seed, study, training, attacks, learner, steps, found)
    steps.close()
    rows, records = [], {}
    reference = next((c for c in conditions if c.reference), None)
    for condition in conditions:
        item = found[condition.label]
        row = _row(condition, item, found[reference.label] if reference is not None and study.train else None,
                   study, training, attacks, summary_seed)
        rows.append(row)
        records[condition.label] = {"training": _combined_training(item["trainings"]),
                                    "audits": [_audit_record(a) for a in item["audits"]],
                                    "model_membership_roc": item.get("model_membership_roc")}
    table = pd.DataFrame(rows)
    counts = ["n_blocks", "block_height", "block_width", "attack_block_height", "attack_block_width", "repeats",
              "n_splits"]
    table[counts] = table[counts].astype("Int64")  # whole numbers, missing where they do not apply
    return table, records


def _one_split(data, test, conditions, split, split_seed, study, training, attacks, learner, steps, found) -> None:
    split_part, scheme_seed, train_seed, attack_seed, model_attack_seed = spawn_seeds(split_seed, 5)
    if test is None:
        train_set, test_set = split_dataset(data, test_fraction=study.test_fraction, seed=split_part)
    else:
        train_set, test_set = data, test
    x, y, x_test, y_test = train_set.images, train_set.labels, test_set.images, test_set.labels
    floor = float(ssim_scores(x, x[same_label_partners(y, seed=attack_seed)]).mean())
    fitted = {}  # fit every scheme first: one that cannot handle these images fails before any training
    for condition in conditions:
        if condition.scheme.label not in fitted:
            fitted[condition.scheme.label] = condition.scheme.clone().fit(x, y, seed=scheme_seed)
    model_attack = _ModelAttack(x, y, x_test, y_test, study, training, learner, model_attack_seed) \
        if study.train and study.model_membership else None
    protected_label, protected, shares = None, None, None
    for condition in conditions:
        done = steps.n
        scheme = fitted[condition.scheme.label]
        if protected_label != scheme.label:  # one protected set held at a time
            protected_label, protected, shares = None, None, None
            protected, shares = scheme.protect(x, y, return_shares=True)
            protected_label = scheme.label
        item = found[condition.label]
        ssim = float(ssim_scores(x, protected).mean())
        item["rows"].append({"ssim_mean": ssim, "ssim_floor_mean": floor, "n_train": len(y), "n_test": len(y_test),
                             "scheme": scheme, "image_shape": x.shape[1:], "labels": y})
        if study.audit and condition.augment is None:
            inverted = None
            if attacks.inversion:
                public = scheme.protect_public(x_test, y_test, seed=attack_seed)
                inverted = learner.invert(public, x_test, protected, epochs=attacks.inversion_epochs, seed=attack_seed)
            item["audits"].append(audit(scheme, x, y, protected, non_members=x_test, non_member_labels=y_test,
                                        shares=shares, inverted=inverted, settings=attacks, seed=attack_seed))
        if study.train:
            test_pair = (scheme.protect_test(x_test), y_test)
            probes = None if model_attack is None else model_attack.probes(scheme, x, y, x_test, y_test)
            record = learner.fit_evaluate((protected, y), test_pair, training=training, seed=train_seed,
                                          augment=condition.augment, adaptation=scheme.adaptation, probes=probes,
                                          name=f"split_{split}/{_folder_name(condition.label)}",
                                          reference=condition.reference, progress=lambda *_: steps.update(1))
            item["trainings"].append(record)
            if model_attack is not None:
                item["model_attacks"].extend(model_attack.attack(record))
        steps.update(done + steps.per_condition - steps.n)  # a cached baseline or resumed epochs: jump ahead


def _row(condition, item, reference, study, training, attacks, seed) -> dict:
    first = item["rows"][0]
    scheme = first["scheme"]
    own_block = scheme.attack_block(first["image_shape"])
    block = own_block if own_block is not None else attacks.attack_block
    nb = None if own_block is None else (first["image_shape"][0] // own_block[0]) * (first["image_shape"][1]
                                                                                    // own_block[1])
    ssim = float(np.mean([r["ssim_mean"] for r in item["rows"]]))
    floor = float(np.mean([r["ssim_floor_mean"] for r in item["rows"]]))
    row = {
        "setting": condition.label, "scheme": scheme.name, "reference": condition.reference,
        "augment": condition.augment.mode if condition.augment is not None else None,
        "block_height": own_block[0] if own_block else None, "block_width": own_block[1] if own_block else None,
        "n_blocks": nb, "model_name": training.model_name if study.train else None, "n_splits": study.n_splits,
        "n_train": first["n_train"], "n_test": first["n_test"], "repeats": training.repeats if study.train else None,
        "test_accuracy_mean": None, "test_accuracy_std": None, "test_loss_mean": None, "test_loss_std": None,
        "accuracy_drop": None, "accuracy_drop_low": None, "accuracy_drop_high": None, "accuracy_drop_mcnemar_p": None,
        "ssim_mean": ssim, "ssim_floor_mean": floor, "ssim_excess": ssim - floor,
        "log10_restoration_probability": scheme.restoration_log10_probability(first["labels"], first["image_shape"]),
        "attack_block_height": block[0] if block else None, "attack_block_width": block[1] if block else None,
        "baseline_reused": None,
    }
    if item["trainings"]:
        row.update(_accuracy(item["trainings"], reference["trainings"] if reference is not None else None, seed))
        reused = [t.get("baseline_reused") for t in item["trainings"]]
        row["baseline_reused"] = None if any(r is None for r in reused) else all(reused)
        if item["model_attacks"]:
            fields, item["model_membership_roc"] = _model_membership(item["model_attacks"], seed)
            row.update(fields)
    if item["audits"]:
        fields = combine_audits(item["audits"], attacks, seed=seed)
        row.update({k: v for k, v in fields.items() if k not in _SHARED_FIELDS})
        row.update(_targets(row, study))
    return row


def _correct(record: dict) -> np.ndarray:
    """Per test image, the share of the repeats that classified it correctly."""
    return np.mean([run["test_correct"] for run in record["runs"]], axis=0)


def _accuracy(trainings: list[dict], reference: list[dict] | None, seed) -> dict:
    accuracy = np.array([run["test_accuracy"] for t in trainings for run in t["runs"]])
    loss = np.array([run["test_loss"] for t in trainings for run in t["runs"]])
    std = lambda v: float(v.std(ddof=1)) if v.size > 1 else None  # noqa: E731
    out = {"test_accuracy_mean": float(accuracy.mean()), "test_accuracy_std": std(accuracy),
           "test_loss_mean": float(loss.mean()), "test_loss_std": std(loss)}
    if reference is not None:
        base = [_correct(t) for t in reference]
        other = [_correct(t) for t in trainings]
        drop, (low, high) = paired_difference_interval(base, other, seed=seed)
        out.update(accuracy_drop=100 * drop, accuracy_drop_low=100 * low, accuracy_drop_high=100 * high,
                   accuracy_drop_mcnemar_p=mcnemar_p(np.concatenate(base) >= 0.5, np.concatenate(other) >= 0.5))
    return out


def _model_membership(attacks: list[dict], seed) -> tuple[dict, dict]:
    """The model-level attacks' headline over every target model (splits x repeats), scores pooled,
    and their ROC on a log-spaced FPR grid (for log-log plots)."""
    pooled = {name: tuple(np.concatenate([a[name][k] for a in attacks]) for k in (0, 1))
              for name in attacks[0] if name != "shadows"}
    shadows = attacks[0]["shadows"]
    headline = "LiRA online" if shadows else "loss threshold"
    rng = np.random.default_rng(seed)
    report = membership_report(*pooled[headline], seed=rng)
    low, one = report["low_fpr"]
    loss = pooled["loss threshold"]
    out = {"model_membership_attack": headline, "model_membership_auc": report["auc"],
           "model_membership_auc_low": report["auc_low"], "model_membership_auc_high": report["auc_high"],
           "model_membership_tpr_at_low_fpr": low["tpr"], "model_membership_tpr_at_low_fpr_low": low["tpr_low"],
           "model_membership_tpr_at_low_fpr_high": low["tpr_high"], "model_membership_low_fpr": low["fpr"],
           "model_membership_tpr_at_1pct_fpr": one["tpr"] if one["resolved"] else None,
           "model_membership_offline_auc": roc_auc(*pooled["LiRA offline"]) if shadows else None,
           "model_membership_loss_auc": roc_auc(*loss),
           "model_membership_loss_tpr_at_low_fpr": tpr_at_fpr(*loss, low["fpr"]),
           "model_membership_shadows": shadows, "model_membership_n_members": report["n_members"],
           "model_membership_n_non_members": report["n_non_members"]}
    grid = np.unique(np.geomspace(1.0 / len(loss[1]), 1.0, 60))
    roc = {name: [grid.tolist(), [tpr_at_fpr(a, b, f) for f in grid]] for name, (a, b) in pooled.items()}
    return out, roc


class _ModelAttack:
    """One split's membership attacks on trained models: the candidates (the training originals and as many
    held-out ones), LiRA's shadow models on them (trained once, shared by every condition)."""

    def __init__(self, x, y, x_test, y_test, study, training, learner, seed):
        sample_seed, shadow_seed = spawn_seeds(seed, 2)
        self.non = stratified_subsample(y_test, len(y), seed=np.random.default_rng(sample_seed))
        self.n_members, self.shadows = len(y), None
        if study.shadow_models:
            population = np.concatenate([x, x_test[self.non]])
            _, codes = np.unique(np.concatenate([np.asarray(y), np.asarray(y_test)[self.non]]).astype(str),
                                 return_inverse=True)
            self.shadows = learner.shadow_confidences(population, codes, n_shadows=study.shadow_models,
                                                      training=training, seed=shadow_seed)

    def probes(self, scheme, x, y, x_test, y_test) -> dict:
        """What the target models are asked: the candidates as the scheme shows test images to a model."""
        return {"members": (scheme.protect_test(x), y),
                "non_members": (scheme.protect_test(x_test[self.non]), np.asarray(y_test)[self.non])}

    def attack(self, record: dict) -> list[dict]:
        """Per trained model: attack name -> (member scores, non-member scores)."""
        out = []
        for run in record["runs"]:
            target = np.concatenate([run["probe_confidences"]["members"], run["probe_confidences"]["non_members"]])
            scores = {"loss threshold": loss_threshold_scores(target)}
            if self.shadows is not None:
                shadow, inclusion = self.shadows["scores"], self.shadows["inclusion"]
                scores["LiRA online"] = lira_online(target, shadow, inclusion)
                scores["LiRA offline"] = lira_offline(target, shadow, inclusion)
            m = self.n_members
            out.append({name: (v[:m], v[m:]) for name, v in scores.items()}
                       | {"shadows": 0 if self.shadows is None else len(self.shadows["scores"])})
        return out


def _targets(row: dict, study: StudySettings) -> dict:
    membership = _all_of([decide((row[f"{name}_low"], row[f"{name}_high"]), study.max_membership_auc)
                          for name in ("worst_membership_auc", "model_membership_auc")
                          if row.get(f"{name}_low") is not None]) or "undecided"
    reid = decide((row["worst_reid_top1_low"], row["worst_reid_top1_high"]), study.max_reid_top1) \
        if row.get("worst_reid_top1_low") is not None else "undecided"
    cost = decide((row["accuracy_drop_low"], row["accuracy_drop_high"]), study.max_accuracy_drop, strict=False) \
        if row.get("accuracy_drop_low") is not None else "undecided"
    return {"membership_target": membership, "reid_target": reid, "cost_target": cost,
            "meets_target": _all_of([membership, reid, cost])}


def _all_of(decisions: list[str]) -> str | None:
    """'not met' if one is, 'met' if all are, else 'undecided' (None for no decision)."""
    if not decisions:
        return None
    return "not met" if "not met" in decisions else "met" if all(d == "met" for d in decisions) else "undecided"


def _combined_training(trainings: list[dict]) -> dict | None:
    """One record of every split's trainings: the runs of all splits (tagged ``split``), means over them."""
    if not trainings:
        return None
    runs = [{**run, "split": s} for s, t in enumerate(trainings) for run in t["runs"]]
    accuracy = np.array([r["test_accuracy"] for r in runs])
    loss = np.array([r["test_loss"] for r in runs])
    return {**{k: v for k, v in trainings[0].items() if k not in ("runs",)}, "runs": runs,
            "test_accuracy_mean": float(accuracy.mean()),
            "test_accuracy_std": float(accuracy.std(ddof=1)) if accuracy.size > 1 else None,
            "test_loss_mean": float(loss.mean()), "test_loss_std": float(loss.std(ddof=1)) if loss.size > 1 else None}


def _audit_record(a) -> dict:
    return {"fields": a.fields, "attacks": a.attacks.to_dict(orient="records"),
            "per_class": a.per_class.to_dict(orient="records"),
            "roc": {kind: None if roc is None else [np.asarray(roc[0]).tolist(), np.asarray(roc[1]).tolist()]
                    for kind, roc in a.roc.items()}}


class _Steps:
    """The study's progress: a tqdm bar (``progress=True``), a callable ``progress(done, total)``, or nothing."""

    def __init__(self, progress, *, total: int, per_condition: int):
        if progress is not None and progress is not True and not callable(progress):
            raise ValueError(f"progress must be None, True or a callable progress(done, total), got {progress!r}")
        self.n, self.total, self.callback, self.bar = 0, total, None, None
        self.per_condition = per_condition
        if progress is True:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc="study", unit="step")
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


#: Every field a study row may carry: name -> meaning (the results schema imports it).
ROW_FIELDS = {**STUDY_ROW_FIELDS, **AUDIT_FIELDS, **MODEL_MEMBERSHIP_FIELDS, **TARGET_FIELDS}
