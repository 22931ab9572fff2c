"""Target and shadow models trained K at a time (pbmlib.learn.shadows), and LiRA on a model that memorised."""

import numpy as np
import pytest

from pbmlib.learn.shadows import (QUERIES, ShadowSettings, combine_shadow_scores, logit_confidences, train_models,
                                  train_shadows)
from pbmlib.study.settings import TrainingSettings
from pbmlib.privacy.lira import draw_inclusion, lira_online, loss_threshold_scores, membership_report


@pytest.fixture(scope="module")
def noise_population():
    """200 random 12x12 grayscale images with random labels in 4 classes: only memorising fits them."""
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (200, 12, 12), dtype=np.uint8), rng.integers(0, 4, 200)


@pytest.mark.slow
def test_lira_recovers_membership_of_a_model_that_memorised_its_training_set(noise_population):
    images, labels = noise_population
    inclusion = draw_inclusion(9, 200, seed=1)  # 8 shadows (pairs) and the target (unpaired, last)
    models = train_models(images, labels, [np.flatnonzero(r) for r in inclusion],
                          settings=ShadowSettings(training={"epochs": 30, "batch_size": 16}), seeds=list(range(9)))
    scores = logit_confidences(models, images, labels)
    assert scores.shape == (9, 200, 1)
    members = inclusion[-1]
    lira = lira_online(scores[-1], scores[:-1], inclusion[:-1])
    report = membership_report(lira[members], lira[~members], seed=0)
    assert report["auc_low"] > 0.85
    loss = loss_threshold_scores(scores[-1])
    assert membership_report(loss[members], loss[~members], n_bootstrap=0)["auc"] > 0.8  # it memorised
    swapped = np.random.default_rng(2).permutation(members)
    chance = membership_report(lira[swapped], lira[~swapped], seed=0)
    assert chance["auc_low"] < 0.5 < chance["auc_high"]


@pytest.mark.slow
def test_a_model_trains_alike_alone_or_beside_others_and_the_same_seed_gives_the_same_scores(noise_population):
    images, labels = noise_population
    rows = [np.arange(0, 100), np.arange(50, 150), np.arange(100, 200)]
    settings = ShadowSettings(training={"epochs": 1, "batch_size": 16})
    together = logit_confidences(train_models(images, labels, rows, settings=settings, seeds=3), images, labels)
    again = logit_confidences(train_models(images, labels, rows, settings=settings, seeds=3), images, labels)
    np.testing.assert_array_equal(together, again)
    seeds = np.random.SeedSequence(3).spawn(3)
    alone = logit_confidences(train_models(images, labels, rows[1:2], settings=settings, seeds=seeds[1:2]),
                              images, labels)
    np.testing.assert_array_equal(alone[0], together[1])
    in_twos = train_models(images, labels, rows, settings=settings, seeds=3, group_size=2)
    np.testing.assert_array_equal(logit_confidences(in_twos, images, labels), together)
    other = logit_confidences(train_models(images, labels, rows, settings=settings, seeds=4), images, labels)
    assert not np.array_equal(other, together)


@pytest.mark.slow
def test_shadow_parts_saved_apart_combine_into_the_whole_design(noise_population, tmp_path, monkeypatch):
    images, labels = noise_population[0][:60], noise_population[1][:60]
    settings = ShadowSettings(training={"epochs": 1, "batch_size": 16}, queries=("identity", "flip"))
    whole = train_shadows(images, labels, n_shadows=4, settings=settings, seed=5)
    assert whole["scores"].shape == (4, 60, 2) and whole["inclusion"].shape == (4, 60)
    assert (whole["inclusion"].sum(axis=0) == 2).all()
    first = train_shadows(images, labels, n_shadows=4, settings=settings, seed=5, indices=[2, 0],
                          path=tmp_path / "a.npz")
    train_shadows(images, labels, n_shadows=4, settings=settings, seed=5, indices=[1, 3], path=tmp_path / "b.npz")
    combined = combine_shadow_scores([tmp_path / "b.npz", tmp_path / "a.npz"])
    np.testing.assert_array_equal(combined["scores"], whole["scores"])
    np.testing.assert_array_equal(combined["inclusion"], whole["inclusion"])
    assert combined["design"] == whole["design"] and combined["n_shadows"] == 4

    def no_training(*args, **kwargs):
        raise AssertionError("a saved part was trained again")

    monkeypatch.setattr("pbmlib.learn.shadows.train_models", no_training)
    resumed = train_shadows(images, labels, n_shadows=4, settings=settings, seed=5, indices=[2, 0],
                            path=tmp_path / "a.npz")
    np.testing.assert_array_equal(resumed["scores"], first["scores"])
    with pytest.raises(ValueError, match="holds shadow models"):
        train_shadows(images, labels, n_shadows=4, settings=settings, seed=6, indices=[2, 0],
                      path=tmp_path / "a.npz")
    with pytest.raises(ValueError, match="missing"):
        combine_shadow_scores([tmp_path / "a.npz"])
    with pytest.raises(ValueError, match="duplicates"):
        combine_shadow_scores([tmp_path / "a.npz", tmp_path / "a.npz", tmp_path / "b.npz"])
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a shadow-scores file"):
        combine_shadow_scores([tmp_path / "bad.npz"])


@pytest.mark.slow
def test_confidences_are_the_log_odds_of_the_models_softmax_and_bfloat16_trains(noise_population):
    images, labels = noise_population
    for precision in ("float32", "mixed_bfloat16"):
        model, = train_models(images, labels, [np.arange(100)], seeds=0,
                              settings=ShadowSettings(training={"epochs": 2}, precision=precision))
        phi = logit_confidences(model, images, labels, queries=("identity", "flip"))
        assert phi.shape == (1, 200, 2) and np.isfinite(phi).all()
        assert model.get_layer("predictions").compute_dtype == "float32"
        p = model.predict(images[..., None].astype(np.float32), verbose=0)[np.arange(200), labels]
        np.testing.assert_allclose(phi[0, :, 0], np.log(p / (1 - p)), atol=2e-3 if precision == "float32" else 0.1)
        flipped = model.predict(QUERIES["flip"](images)[..., None].astype(np.float32), verbose=0)
        p = flipped[np.arange(200), labels]
        np.testing.assert_allclose(phi[0, :, 1], np.log(p / (1 - p)), atol=2e-3 if precision == "float32" else 0.1)


@pytest.mark.parametrize("kwargs, match", [
    (dict(training={"epochs": 0}), "epochs"),
    (dict(training={"optimizer": "adamw"}), "optimizer"),
    (dict(training={"epoch": 3}), "did you mean 'epochs'"),
    (dict(training={"repeats": 2}), "repeats must be 1"),
    (dict(training=3), "TrainingSettings"),
    (dict(queries=("identity", "rotate")), "queries"),
    (dict(queries=()), "queries"),
    (dict(precision="float16"), "precision"),
])
def test_shadow_settings_are_checked(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ShadowSettings(**kwargs)


def test_shadow_settings_carry_the_training_settings_whole():
    settings = ShadowSettings(training={"epochs": 5, "learning_rate": 0.01})
    assert settings.training == TrainingSettings(epochs=5, learning_rate=0.01)
    assert ShadowSettings().training.epochs == 20 and ShadowSettings().queries == ("identity",)
    assert settings.to_dict()["training"]["learning_rate"] == 0.01 and settings.to_dict()["precision"] == "float32"


def test_training_arguments_are_checked_before_anything_is_built(noise_population, tmp_path):
    images, labels = noise_population
    with pytest.raises(ValueError, match=r"rows\[1\] must be a non-empty 1-d array of row numbers in \[0, 200\)"):
        train_models(images, labels, [np.arange(5), np.array([199, 200])])
    with pytest.raises(ValueError, match="targets must be 200 class numbers"):
        train_models(images, labels.astype(float), [np.arange(5)])
    with pytest.raises(ValueError, match="one seed per model"):
        train_models(images, labels, [np.arange(5)], seeds=[1, 2])
    with pytest.raises(ValueError, match="group_size"):
        train_models(images, labels, [np.arange(5)], group_size=0)
    with pytest.raises(ValueError, match="indices must be distinct"):
        train_shadows(images, labels, n_shadows=4, indices=[0, 4])
    with pytest.raises(ValueError, match="n_shadows must be an int >= 2"):
        train_shadows(images, labels, n_shadows=1)
    with pytest.raises(ValueError, match="path must end in .npz"):
        train_shadows(images, labels, n_shadows=2, path=tmp_path / "x.json")
    with pytest.raises(ValueError, match="does not exist"):
        train_shadows(images, labels, n_shadows=2, path=tmp_path / "missing" / "x.npz")


@pytest.mark.slow
def test_a_learner_trains_a_shadow_design_once_through_its_cache_in_parts(noise_population, tmp_path):
    from pbmlib.learn.learner import SHADOW_PART, KerasLearner

    images, labels = noise_population[0][:40], noise_population[1][:40]
    training = TrainingSettings(epochs=1, batch_size=16)
    seed = np.random.SeedSequence(3)
    plain = KerasLearner().shadow_confidences(images, labels, n_shadows=6, training=training, seed=seed)
    cached = KerasLearner(baseline_cache=tmp_path)
    first = cached.shadow_confidences(images, labels, n_shadows=6, training=training, seed=seed)
    parts = sorted((tmp_path / "shadows").glob("*/part_*.npz"))
    assert len(parts) == -(-6 // SHADOW_PART) and not first["reused"]
    np.testing.assert_array_equal(first["scores"], plain["scores"])  # cached or not, the same models
    np.testing.assert_array_equal(first["inclusion"], plain["inclusion"])
    assert first["scores"].shape == (6, 40) and (first["inclusion"].sum(axis=0) == 3).all()
    parts[-1].unlink()  # a run killed before its last part: the next one trains that part only
    stamp = parts[0].stat().st_mtime_ns
    again = cached.shadow_confidences(images, labels, n_shadows=6, training=training, seed=seed)
    assert parts[0].stat().st_mtime_ns == stamp and parts[-1].exists() and not again["reused"]
    np.testing.assert_array_equal(again["scores"], first["scores"])
    assert cached.shadow_confidences(images, labels, n_shadows=6, training=training, seed=seed)["reused"]
