"""Learned inversion: an attacker trains a network to undo a protection.

The attacker holds public images of the same kind (here: images that are not in the
protected set), runs them through the same scheme (with the same key, for the
encryptions: a chosen-plaintext setting), and fits a small fully convolutional network
from protected to original images. The network is then applied to the protected
training set. This is the learned/GAN inversion family of attacks on pixel- and
block-based encryptions, in its simplest (mean-squared error) form.
"""

from __future__ import annotations

import numpy as np

from .._validation import check_images, spawn_seeds
from .quiet import quiet_keras

__all__ = ["build_inverter", "learned_inversion"]


def build_inverter(input_shape: tuple[int, int, int], *, width: int = 48, depth: int = 5):
    """A fully convolutional image-to-image network: (H, W, C) uint8-valued -> (H, W, C) in [0, 255].

    ``depth`` 3x3 convolutions of ``width`` channels (ReLU, batch norm), then a 1x1
    convolution with a sigmoid, scaled to [0, 255].
    """
    keras = quiet_keras()
    layers = keras.layers

    inputs = keras.Input(shape=input_shape, name="protected")
    x = layers.Rescaling(1.0 / 255, name="inv_rescale")(inputs)
    for i in range(depth):
        x = layers.Conv2D(width, 3, padding="same", activation="relu", name=f"inv_conv{i}")(x)
        x = layers.BatchNormalization(momentum=0.9, name=f"inv_bn{i}")(x)
    x = layers.Conv2D(input_shape[-1], 1, activation="sigmoid", name="inv_out")(x)
    outputs = layers.Rescaling(255.0, name="inv_scale")(x)
    return keras.Model(inputs, outputs, name="inverter")


def learned_inversion(public_protected, public_originals, targets, *, epochs: int = 60, batch_size: int = 16,
                      seed=None) -> np.ndarray:
    """Fit protected -> original on public pairs and invert ``targets``.

    Parameters
    ----------
    public_protected, public_originals : ndarray (M, H, W[, C]), uint8
        Pairs the attacker made from public images.
    targets : ndarray (N, H, W[, C]), uint8
        Protected images to invert.
    epochs, batch_size : int
    seed : None, int, numpy.random.SeedSequence or numpy.random.Generator
        Seeds Keras for this training (a child stream turned into Keras' int,
        :func:`pbmlib.learn.seeding.keras_seed`): repeatable on the CPU for the same seed.

    Returns
    -------
    ndarray of the shape of ``targets``, uint8: the attacker's reconstructions.
    """
    keras = quiet_keras()
    from .seeding import keras_seed

    pp = check_images(public_protected, name="public_protected")
    po = check_images(public_originals, name="public_originals")
    targets = check_images(targets, name="targets")
    if pp.shape != po.shape or pp.shape[1:] != targets.shape[1:]:
        raise ValueError(f"shapes differ: public protected {pp.shape}, public originals {po.shape}, "
                         f"targets {targets.shape}")
    gray = pp.ndim == 3
    as_float = (lambda a: a[..., None].astype("float32")) if gray else (lambda a: a.astype("float32"))
    keras.backend.clear_session()
    with keras_seed(int(spawn_seeds(seed, 1)[0].generate_state(1, np.uint32)[0] >> 1)):
        model = build_inverter(as_float(pp).shape[1:])
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
        model.fit(as_float(pp), as_float(po), epochs=epochs, batch_size=batch_size, shuffle=True, verbose=0)
        out = model.predict(as_float(targets), batch_size=64, verbose=0)
    out = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return out[..., 0] if gray else out
