"""Keras layers and small networks placed in front of a classifier.

- :class:`PixelShuffle` (depth to space), a registered layer class: models that use it
  save and load with ``keras.saving``;
- :func:`pixel_adaptation` and :func:`block_adaptation`, the adaptation networks that let
  a classifier learn on pixel-based [1]_ and block-wise [2]_ encrypted images
  (see :mod:`pbmlib.schemes.encryption` for the ciphers);
- :func:`augmentation_layers`, the paper's flip / rotation / brightness applied to batches
  during training only (see :class:`pbmlib.data.augmentation.Augmentation`).

References
----------
.. [1] Sirichotedumrong, Maekawa, Kinoshita, Kiya (2019). Pixel-based image encryption
       without key management for privacy-preserving deep neural networks. ICIP.
.. [2] Tanaka (2018). Learnable image encryption. ICCE-TW.
"""

from __future__ import annotations


from ..data.augmentation import Augmentation
from .quiet import quiet_keras

keras = quiet_keras()
layers = keras.layers

__all__ = ["PixelShuffle", "pixel_adaptation", "block_adaptation", "build_adaptation", "augmentation_layers"]


@keras.saving.register_keras_serializable(package="pbmlib")
class PixelShuffle(layers.Layer):
    """Depth to space: (H, W, r*r*C) -> (r*H, r*W, C) for ``factor`` r."""

    def __init__(self, factor: int, **kwargs):
        super().__init__(**kwargs)
        self.factor = int(factor)

    def call(self, x):
        ops = keras.ops
        _, h, w, c = x.shape
        r = self.factor
        x = ops.reshape(x, (-1, h, w, r, r, c // (r * r)))
        x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
        return ops.reshape(x, (-1, h * r, w * r, c // (r * r)))

    def compute_output_shape(self, shape):
        r = self.factor
        return (shape[0], shape[1] * r, shape[2] * r, shape[3] // (r * r))

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


def pixel_adaptation(channels: int, *, width: int = 64) -> keras.Sequential:
    """Adaptation network of [1]_: 1x1 convolutions (with batch norm and ReLU) in front of the
    classifier, so it can undo per-pixel transforms; outputs ``channels`` channels.

    Batch norm uses momentum 0.9 (Keras' 0.99 leaves the moving statistics near their
    initial values after the few hundred steps of a small training set, and the test
    accuracy falls to chance)."""
    return keras.Sequential([
        layers.Conv2D(width, 1, name="adapt_conv1"), layers.BatchNormalization(momentum=0.9, name="adapt_bn1"),
        layers.ReLU(name="adapt_relu1"),
        layers.Conv2D(width, 1, name="adapt_conv2"), layers.BatchNormalization(momentum=0.9, name="adapt_bn2"),
        layers.ReLU(name="adapt_relu2"),
        layers.Conv2D(channels, 1, name="adapt_conv3"),
    ], name="pixel_adaptation")


def block_adaptation(channels: int, *, block: int = 4, width: int = 48, expanded: int = 512) -> keras.Sequential:
    """Adaptation network of [2]_: BN, block x block convolution with stride block, ReLU, BN,
    1x1 convolution, ReLU, BN, 1x1 convolution to ``expanded`` channels, pixel shuffle by
    ``block`` (so ``expanded / block**2`` channels at the input resolution)."""
    if expanded % (block * block):
        raise ValueError(f"expanded={expanded} must be a multiple of block**2={block * block}")
    return keras.Sequential([
        layers.BatchNormalization(momentum=0.9, name="adapt_bn0"),
        layers.Conv2D(width, block, strides=block, name="adapt_block_conv"), layers.ReLU(name="adapt_relu1"),
        layers.BatchNormalization(momentum=0.9, name="adapt_bn1"), layers.Conv2D(width, 1, name="adapt_conv1"),
        layers.ReLU(name="adapt_relu2"), layers.BatchNormalization(momentum=0.9, name="adapt_bn2"),
        layers.Conv2D(expanded, 1, name="adapt_conv2"), PixelShuffle(block, name="adapt_pixel_shuffle"),
    ], name="block_adaptation")


_ADAPTATIONS = {"pixel": pixel_adaptation, "block": block_adaptation}


def build_adaptation(name: str, channels: int) -> keras.Sequential:
    """The adaptation network a scheme declares (``Scheme.adaptation``): ``"pixel"`` or ``"block"``."""
    if name not in _ADAPTATIONS:
        raise ValueError(f"adaptation must be one of {sorted(_ADAPTATIONS)} or None, got {name!r}")
    return _ADAPTATIONS[name](channels)


def augmentation_layers(augmentation: Augmentation = Augmentation(), *, seed: int | None = None) -> keras.Sequential:
    """Keras layers that augment batches during training and do nothing at inference.

    Returns
    -------
    keras.Sequential
        RandomFlip("horizontal"), RandomRotation, RandomBrightness on 0-255 inputs.
    """

    stack = []
    if augmentation.flip:
        stack.append(keras.layers.RandomFlip("horizontal", seed=seed))
    if augmentation.rotation > 0:
        stack.append(keras.layers.RandomRotation(augmentation.rotation / 360.0, fill_mode="reflect", seed=seed))
    if augmentation.brightness > 0:
        stack.append(keras.layers.RandomBrightness(augmentation.brightness, value_range=(0, 255), seed=seed))
    return keras.Sequential(stack, name="augmentation")
