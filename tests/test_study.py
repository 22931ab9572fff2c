"""The one study (pbmlib.study): splits, audit, training through a learner, paired intervals, the target."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import pbmlib
from pbmlib.data.augmentation import Augmentation
from pbmlib.schemes import get_scheme
from pbmlib.privacy.lira import loss_threshold_scores
from pbmlib.study import (ROW_FIELDS, STUDY_ROW_FIELDS, StudySettings, TrainingSettings, run_study,
                          schemes_from_specs, study_from_parameters)
from pbmlib.study import core

ATTACKS = dict(adaptive=False, shadow_releases=0, reassembly=False, matchers=("pixel", "mosaic", "blocks"),
               n_boot=100)


@pytest.fixture(scope="module")
def faces():
    return pbmlib.load_faces()


def test_importing_the_study_and_privacy_never_loads_tensorflow():
    code = ("import sys, pbmlib.privacy, pbmlib.schemes; from pbmlib.study import run_study; "
            "print(sorted(m for m in ('keras', 'tensorflow', 'jax') if m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "[]\n"


def test_rows_carry_the_schema_and_the_schemes_own_geometry(faces):
    schemes = [get_scheme("none"), get_scheme("pbm", block=(5, 5)), get_scheme("visualmixer", window=5, levels=(1,)),
               get_scheme("blur", sigma=1.0)]
    table, records = run_study(faces, schemes, train=False, audit=True, attack_block=(25, 25), seed=0, **ATTACKS)
    assert set(STUDY_ROW_FIELDS) <= set(table.columns) <= set(ROW_FIELDS)
    assert all(r["training"] is None and len(r["audits"]) == 1 for r in records.values())
    rows = table.set_index("setting")
    assert rows.loc["none", "reference"] and not rows["reference"].iloc[1:].any()
    assert (rows.loc["pbm block=5x5", "attack_block_height"], rows.loc["pbm block=5x5", "n_blocks"]) == (5, 25)
    assert rows.loc["visualmixer window=5 levels=1", "attack_block_height"] == 5
    assert rows.loc["visualmixer window=5 levels=1", "worst_reid_top1"] > 0.9  # its windows' values give it away
    assert rows.loc["blur sigma=1.0", "attack_block_height"] == 25 and pd.isna(rows.loc["blur sigma=1.0", "n_blocks"])
    assert rows.loc["pbm block=5x5", "log10_restoration_probability"] < -1000
    assert rows["ssim_excess"].to_numpy() == pytest.approx((rows["ssim_mean"] - rows["ssim_floor_mean"]).to_numpy())
    assert (rows["meets_target"] == "not met").all()  # nothing here protects: the intervals say so
    assert rows["cost_target"].eq("undecided").all()  # without training the cost is not known


def test_same_seed_same_table_other_seed_other_split(faces):
    schemes = [get_scheme("pbm", block=(5, 5))]
    a, _ = run_study(faces, schemes, train=False, seed=3)
    b, _ = run_study(faces, schemes, train=False, seed=3)
    c, _ = run_study(faces, schemes, train=False, seed=4)
    assert a.equals(b) and a["ssim_mean"].iloc[0] != c["ssim_mean"].iloc[0]
    two, _ = run_study(faces, schemes, train=False, n_splits=2, seed=3)
    assert two["n_splits"].iloc[0] == 2 and two["ssim_mean"].iloc[0] != a["ssim_mean"].iloc[0]



def test_a_condition_draws_the_same_streams_whatever_ran_before_it(faces):
    """A cached baseline skipped, a condition added or a run resumed must not change another condition's
    scheme, training or attack streams (SeedSequence.spawn counts its children; the study never relies on
    that count)."""
    pbm = get_scheme("pbm", block=(5, 5))
    alone, _ = run_study(faces, [pbm], train=False, audit=True, seed=3, **ATTACKS)
    after, _ = run_study(faces, [get_scheme("pbm_noise", sigma=8.0, block=(5, 5)), pbm], train=False, audit=True,
                         seed=3, **ATTACKS)
    assert alone.iloc[0].equals(after.iloc[1])

def test_bad_conditions_and_settings_fail_before_anything_trains(faces):
    class Refusing:
        def fit_evaluate(self, *args, **kwargs):
            raise AssertionError("trained")

    with pytest.raises(ValueError, match="does not divide"):
        run_study(faces, [get_scheme("none"), get_scheme("pbm", block=(7, 7))], seed=0, learner=Refusing())
    with pytest.raises(ValueError, match="same setting"):
        run_study(faces, [get_scheme("none"), get_scheme("none")], train=False)
    with pytest.raises(ValueError, match="'scheme' key"):
        schemes_from_specs([{"name": "pbm"}])
    with pytest.raises(ValueError, match="epochs must be an int from 1|epochs must be an int >= 1"):
        run_study(faces, [get_scheme("none")], epochs=0, learner=Refusing())
    with pytest.raises(ValueError, match="unknown option 'epoch' .did you mean 'epochs'"):
        run_study(faces, [get_scheme("none")], epoch=2, learner=Refusing())


class Memorising:
    """A learner without Keras: predicts a test image's label when it sits in the training set, else guesses
    the first class. Deterministic, so costs and intervals are known exactly."""

    def fit_evaluate(self, train, test, *, training, seed, augment=None, adaptation=None, probes=None, name="",
                     reference=False, progress=None):
        (x, y), (xt, yt) = train, test
        known = {image.tobytes(): label for image, label in zip(x, y)}
        first = sorted(set(np.asarray(y).tolist()))[0]
        correct = [int(known.get(image.tobytes(), first) == label) for image, label in zip(xt, yt)]
        runs = [{"test_accuracy": float(np.mean(correct)), "test_loss": 0.0, "test_correct": correct,
                 "history": [{"epoch": 1, "loss": 0.0}]} for _ in range(training.repeats)]
        return {"runs": runs, "baseline_reused": None}


def test_accuracy_costs_are_paired_and_decided_by_their_interval(faces):
    """Tested on the training images themselves (test = data): the unprotected set is memorised, every
    protected one is not, so the cost is exactly the share of test images the guess gets wrong."""
    conditions = [get_scheme("none"), get_scheme("pbm", block=(5, 5))]
    table, records = run_study(faces, conditions, test=faces, learner=Memorising(), repeats=2, n_splits=2,
                               audit=True, seed=0, **ATTACKS)
    rows = table.set_index("setting")
    assert rows.loc["none", "test_accuracy_mean"] == 1.0 and rows.loc["none", "accuracy_drop"] == 0.0
    drop = rows.loc["pbm block=5x5", "accuracy_drop"]
    assert drop == pytest.approx(100 * (1 - rows.loc["pbm block=5x5", "test_accuracy_mean"]))
    assert rows.loc["pbm block=5x5", "accuracy_drop_low"] < drop < rows.loc["pbm block=5x5", "accuracy_drop_high"]
    assert rows.loc["pbm block=5x5", "accuracy_drop_mcnemar_p"] < 1e-6
    assert rows.loc["pbm block=5x5", "cost_target"] == "not met" and rows.loc["none", "cost_target"] == "met"
    assert [r["split"] for r in records["none"]["training"]["runs"]] == [0, 0, 1, 1]


def test_study_from_parameters_reads_the_notebooks_vocabulary():
    plan = study_from_parameters({"dataset": "faces", "block_height": 5, "block_width": 1, "rounds": 3, "epochs": 4,
                                  "repeats": 2, "seed": 7})
    assert [c.label for c in plan.conditions] == ["none", "pbm block=5x1 rounds=3"]
    assert plan.options["training"] == TrainingSettings(epochs=4, repeats=2) and plan.seed == 7
    augmented = study_from_parameters({"block_height": 5, "block_width": 5, "augment_mode": "offline",
                                       "augment_copies": 2, "epochs": 1})
    assert augmented.conditions[1].augment == Augmentation(mode="offline", copies=2)
    assert augmented.conditions[1].images_per_training_image == 3
    privacy = study_from_parameters({"pbm_blocks": [[5, 5], [1, 1]], "baselines": [{"scheme": "blur"}],
                                     "train": False, "audit": True, "copies": ["exact", "jpeg75"],
                                     "attack_block": [5, 5], "n_splits": 3})
    assert [c.label for c in privacy.conditions] == ["none", "pbm block=5x5", "pbm block=1x1", "blur sigma=2.0"]
    assert privacy.options["study"] == StudySettings(train=False, audit=True, n_splits=3) and not privacy.trainings()
    assert privacy.options["attacks"].copies == ("exact", "jpeg75")
    with pytest.raises(ValueError, match="describe no study"):
        study_from_parameters({"block_height": 5, "block_width": 5, "n_images": 10})  # the mixing notebook's


def test_the_study_never_branches_on_a_scheme_name():
    import inspect

    import pbmlib.privacy.likelihood

    for module in (core, sys.modules["pbmlib.privacy.audit"], pbmlib.privacy.likelihood):
        source = inspect.getsource(module)
        for probe in ('name == "', "name == '", "getattr(scheme", "hasattr(scheme", "isinstance(scheme"):
            assert probe not in source


@pytest.mark.slow
def test_training_through_keras_with_augmentation_and_model_membership(faces):
    pbm = get_scheme("pbm", block=(5, 5))
    conditions = [get_scheme("none"), pbm, (pbm, Augmentation(mode="offline"))]
    from pbmlib.learn.learner import KerasLearner

    table, records = run_study(faces, conditions, epochs=1, repeats=2, model_membership=True, shadow_models=4,
                               seed=0, learner=KerasLearner())
    with pytest.raises(ValueError, match="needs a learner"):
        run_study(faces, conditions, epochs=1)
    assert list(records) == ["none", "pbm block=5x5", "pbm block=5x5 +augment"]
    assert table["ssim_mean"].iloc[1] == table["ssim_mean"].iloc[2]  # one mixed set, with and without augmentation
    assert table["augment"].isna().tolist() == [True, True, False] and table["augment"].iloc[2] == "offline"
    assert records["pbm block=5x5 +augment"]["training"]["runs"][0]["n_train_images"] == 2 * table["n_train"].iloc[0]
    run = records["none"]["training"]["runs"][0]
    assert len(run["test_correct"]) == table["n_test"].iloc[0]
    assert len(run["probe_confidences"]["members"]) == table["n_train"].iloc[0]
    # every held-out face is a non-member candidate (fewer than the members); the loss from the logit-scaled
    # confidence is the test loss the training measured from the probabilities
    assert len(run["probe_confidences"]["non_members"]) == table["n_test"].iloc[0]
    loss = -loss_threshold_scores(np.asarray(run["probe_confidences"]["non_members"]))
    assert loss.mean() == pytest.approx(run["test_loss"], rel=1e-3)
    assert (table["model_membership_attack"] == "LiRA online").all() and (table["model_membership_shadows"] == 4).all()
    assert (table["model_membership_auc_low"] <= table["model_membership_auc"]).all()
    assert (table["model_membership_auc"] <= table["model_membership_auc_high"]).all()
    assert table["model_membership_loss_auc"].between(0, 1).all()
    assert (table["model_membership_n_members"] == 2 * table["n_train"]).all()  # pooled over the two repeats
    fpr, tpr = records["none"]["model_membership_roc"]["LiRA online"]
    assert fpr[0] == pytest.approx(1 / (2 * table["n_test"].iloc[0])) and fpr[-1] == 1.0 and tpr[-1] == 1.0
