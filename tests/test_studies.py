"""run_study: the one study behind the CLI, the notebooks and the quick-sweep widget."""

import numpy as np
import pandas as pd
import pytest

import pbmlib
from pbmlib.data.augmentation import Augmentation
from pbmlib.learn import studies
from pbmlib.learn.studies import run_study, schemes_from_specs
from pbmlib.schemes import get_scheme
from pbmlib.workbench.results import STUDY_ROW_FIELDS


@pytest.fixture(scope="module")
def faces():
    return pbmlib.load_faces()


def test_rows_carry_the_schema_and_the_schemes_own_geometry(faces):
    schemes = [get_scheme("none"), get_scheme("pbm", block=(5, 5)), get_scheme("visualmixer", window=5, levels=(1,)),
               get_scheme("blur", sigma=1.0)]
    table, records = run_study(faces, schemes, train=False, scorecard=True, matchers=["pixel", "mosaic", "blocks"],
                               attack_block=(25, 25), seed=0)
    assert records == {} and set(STUDY_ROW_FIELDS) <= set(table.columns)
    rows = table.set_index("setting")
    assert rows.loc["none", "reference"] and not rows["reference"].iloc[1:].any()
    assert (rows.loc["pbm block=5x5", "attack_block_height"], rows.loc["pbm block=5x5", "n_blocks"]) == (5, 25)
    # VisualMixer is attacked with its own windows; blur, without geometry, with the study's guess
    assert rows.loc["visualmixer window=5 levels=1", "attack_block_height"] == 5
    assert rows.loc["visualmixer window=5 levels=1", "reid_top1_mosaic"] > 0.9
    assert rows.loc["blur sigma=1.0", "attack_block_height"] == 25 and pd.isna(rows.loc["blur sigma=1.0", "n_blocks"])
    assert rows.loc["pbm block=5x5", "log10_restoration_probability"] < -1000
    assert np.isnan(rows.loc["none", "log10_restoration_probability"])
    assert rows["ssim_excess"].to_numpy() == pytest.approx((rows["ssim_mean"] - rows["ssim_floor_mean"]).to_numpy())


def test_same_seed_same_table_other_seed_other_mixing(faces):
    schemes = [get_scheme("pbm", block=(5, 5))]
    a, _ = run_study(faces, schemes, train=False, seed=3)
    b, _ = run_study(faces, schemes, train=False, seed=3)
    c, _ = run_study(faces, schemes, train=False, seed=4)
    assert a.equals(b) and a["ssim_mean"].iloc[0] != c["ssim_mean"].iloc[0]
    generator, _ = run_study(faces, schemes, train=False, seed=np.random.default_rng(3))
    assert len(generator) == 1


def test_bad_conditions_fail_before_anything_trains(faces, monkeypatch):
    calls = []
    monkeypatch.setattr("pbmlib.learn.training.train_and_evaluate", lambda *a, **k: calls.append(a))
    with pytest.raises(ValueError, match="does not divide"):
        run_study(faces, [get_scheme("none"), get_scheme("pbm", block=(7, 7))], seed=0)
    with pytest.raises(ValueError, match="same setting"):
        run_study(faces, [get_scheme("none"), get_scheme("none")], train=False)
    with pytest.raises(ValueError, match="'scheme' key"):
        schemes_from_specs([{"name": "pbm"}])
    assert calls == []


@pytest.mark.slow
def test_training_rows_and_accuracy_drop(faces):
    pbm = get_scheme("pbm", block=(5, 5))
    conditions = [get_scheme("none"), pbm, (pbm, Augmentation(mode="offline"))]
    table, records = run_study(faces, conditions, epochs=1, repeats=2, seed=0)
    assert list(records) == ["none", "pbm block=5x5", "pbm block=5x5 +augment"]
    assert table["accuracy_drop"].iloc[0] == 0
    assert table["accuracy_drop"].to_numpy() == pytest.approx(
        100 * (table["test_accuracy_mean"].iloc[0] - table["test_accuracy_mean"]).to_numpy())
    assert table["ssim_mean"].iloc[1] == table["ssim_mean"].iloc[2]  # one mixed set, with and without augmentation
    assert table["augment"].isna().tolist() == [True, True, False] and table["augment"].iloc[2] == "offline"
    assert records["pbm block=5x5 +augment"]["runs"][0]["n_train_images"] == 2 * table["n_train"].iloc[0]


def test_module_never_branches_on_a_scheme_name():
    import inspect

    source = inspect.getsource(studies)
    for probe in ('name == "', "name == '", "getattr(scheme", "hasattr(scheme"):
        assert probe not in source


def test_adaptive_attacks_join_the_worst_case(faces):
    noised = get_scheme("pbm_noise", block=(5, 5), sigma=32.0)
    table, _ = run_study(faces, [noised], train=False, scorecard=True, adaptive=True,
                         matchers=["pixel", "blocks", "blocks_robust"], seed=0)
    row = table.iloc[0]
    assert row["worst_reid_top1"] == max(row["reid_top1"], row["adaptive_reid_top1"])
    assert row["worst_reid_top1"] > row["reid_top1"]  # noise beats the fixed matchers, not the adaptive ones
    assert row["worst_membership_auc"] >= max(row["membership_auc"], row["membership_auc_robust"])
    assert row["worst_reid_attack"].startswith("adaptive")


@pytest.mark.slow
def test_model_membership_is_measured_on_the_trained_models(faces):
    table, records = run_study(faces, [get_scheme("none"), get_scheme("pbm", block=(1, 1))], epochs=2, repeats=1,
                               model_membership=True, seed=0)
    rows = table.set_index("setting")
    run = records["none"]["runs"][0]
    assert len(run["probe_losses"]["members"]) == rows.loc["none", "n_train"]
    assert len(run["probe_losses"]["non_members"]) == rows.loc["none", "n_test"]
    # the non-members are the clean test set: their mean loss is the model's test loss
    assert np.mean(run["probe_losses"]["non_members"]) == pytest.approx(run["test_loss"], rel=1e-3)
    for setting in rows.index:
        assert 0 <= rows.loc[setting, "model_membership_auc"] <= 1
