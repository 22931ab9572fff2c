"""The paper's classifiers (ResNet50, VGG16, InceptionV3, DenseNet121) and a small CPU CNN.

Every model takes uint8-valued images as float input, of any size: it rescales to
[0, 1] and, where the network needs a larger input than given (25 x 25 faces, 28 x 28
digits), resizes inside the model to the smallest size the network accepts. Weights
always start random (``weights=None``): nothing is downloaded.
"""

from __future__ import annotations


from .layers import build_adaptation
from .quiet import quiet_keras

keras = quiet_keras()
layers = keras.layers

__all__ = ["MODEL_NAMES", "MIN_INPUT_SIZE", "build_model"]

# Smallest input height/width each keras.applications network accepts.
MIN_INPUT_SIZE = {"resnet50": 32, "vgg16": 32, "inceptionv3": 75, "densenet121": 32, "small_cnn": 8}

_APPLICATIONS = {
    "resnet50": keras.applications.ResNet50,
    "vgg16": keras.applications.VGG16,
    "inceptionv3": keras.applications.InceptionV3,
    "densenet121": keras.applications.DenseNet121,
}

MODEL_NAMES = tuple(_APPLICATIONS) + ("small_cnn",)


def _small_cnn_body(x):
    """Two conv blocks and a small dense head: trains in seconds on 2 CPU cores."""
    for i, filters in enumerate((32, 64), start=1):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"small_block{i}_conv")(x)
        x = layers.MaxPooling2D(2, name=f"small_block{i}_pool")(x)
    x = layers.Flatten(name="small_flatten")(x)
    x = layers.Dropout(0.25, name="small_dropout")(x)
    return layers.Dense(64, activation="relu", name="small_dense")(x)


def build_model(
    name: str,
    *,
    input_shape: tuple[int, ...],
    classes: int,
    weights: None = None,
    preprocessing: keras.layers.Layer | None = None,
    adaptation: str | None = None,
) -> keras.Model:
    """Build a classifier by name, with random weights.

    Parameters
    ----------
    name : {"resnet50", "vgg16", "inceptionv3", "densenet121", "small_cnn"}
    input_shape : (H, W) or (H, W, C)
        Shape of one image; (H, W) means grayscale. Inputs are uint8-valued floats.
    classes : int
        Number of output classes (softmax).
    weights : None
        Only None (random initialisation) is allowed: nothing is downloaded.
    preprocessing : keras Layer, optional
        Applied to the raw inputs first, e.g. on-the-fly augmentation layers (active
        in training only).
    adaptation : {None, "pixel", "block"}
        Adaptation network for encrypted inputs, after rescaling: 1x1 convolutions
        (pixel-based encryption) or Tanaka's block network (block-wise encryption);
        see :mod:`pbmlib.encryption`.

    Returns
    -------
    keras.Model
        Not compiled. Input shape ``(H, W, C)``; output ``(classes,)`` probabilities.
    """
    key = name.lower()
    if key not in MIN_INPUT_SIZE:
        raise ValueError(f"unknown model {name!r}; choose one of {list(MODEL_NAMES)}")
    if weights is not None:
        raise ValueError(f"only weights=None (random initialisation) is supported offline, got weights={weights!r}")
    if classes < 2:
        raise ValueError(f"classes must be >= 2, got {classes}")
    if len(input_shape) == 2:
        input_shape = (*input_shape, 1)
    if len(input_shape) != 3:
        raise ValueError(f"input_shape must be (H, W) or (H, W, C), got {input_shape!r}")
    height, width, channels = input_shape
    inputs = keras.Input(shape=(height, width, channels), name="image")
    x = preprocessing(inputs) if preprocessing is not None else inputs
    x = layers.Rescaling(1.0 / 255, name="rescale")(x)
    if adaptation is not None:
        x = build_adaptation(adaptation, channels)(x)
        channels = x.shape[-1]
    size = MIN_INPUT_SIZE[key]
    if min(height, width) < size:
        scale = size / min(height, width)
        height, width = round(height * scale), round(width * scale)
        x = layers.Resizing(height, width, name="resize_to_min")(x)
    if key == "small_cnn":
        x = _small_cnn_body(x)
    else:
        backbone = _APPLICATIONS[key](include_top=False, weights=None, input_shape=(height, width, channels),
                                      pooling="avg")
        x = backbone(x)
    outputs = layers.Dense(classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name=key)
