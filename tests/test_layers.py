"""Keras tier: registered layers save and load, and training leaves the caller's random state alone."""

import random

import numpy as np
import pytest

pytestmark = pytest.mark.slow


def test_model_with_block_adaptation_saves_and_loads(tmp_path):
    import keras

    from pbmlib.learn.layers import PixelShuffle
    from pbmlib.learn.models import build_model

    model = build_model("small_cnn", input_shape=(16, 16, 3), classes=2, adaptation="block")
    assert any(isinstance(layer, PixelShuffle) for layer in model.get_layer("block_adaptation").layers)
    x = np.random.default_rng(0).integers(0, 256, size=(4, 16, 16, 3)).astype("float32")
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def test_keras_seed_restores_global_generators():
    from pbmlib.learn.seeding import keras_seed

    random.seed(1)
    np.random.seed(1)
    expected = (random.random(), np.random.random())
    random.seed(1)
    np.random.seed(1)
    with keras_seed(123):
        random.random(), np.random.random()
    assert (random.random(), np.random.random()) == expected


def test_cli_model_choices_are_the_models():
    from pbmlib.learn.models import MODEL_NAMES
    from pbmlib.workbench.cli import MODEL_CHOICES

    assert set(MODEL_CHOICES) == set(MODEL_NAMES)
