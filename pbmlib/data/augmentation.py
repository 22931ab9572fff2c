"""The paper's data augmentation: horizontal flip, rotation, brightness.

Two forms, with the same strengths:

- offline (what the paper did): :func:`expand_with_augmentation` adds ``copies``
  augmented versions of every training image to the set;
- on the fly: :func:`pbmlib.learn.layers.augmentation_layers` returns Keras layers that augment each
  batch during training and pass images through unchanged at inference.

Augmentation is meant for the (mixed) training set only; the test set stays clean.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .._validation import Settings, check_bool, check_choice, check_images, check_positive_int, check_real, check_rng

__all__ = ["Augmentation", "AugmentationDraws", "draw_augmentation", "apply_augmentation", "augment_images",
           "expand_with_augmentation"]

_CHUNK = 256


@dataclass(frozen=True)
class Augmentation(Settings):
    """Strengths of the paper's three augmentations.

    Attributes
    ----------
    flip : bool, default=True
        Mirror left-right with probability 0.5.
    rotation : float, default=15.0
        Maximum rotation in degrees; each image turns by U(-rotation, rotation).
    brightness : float, default=0.2
        Maximum relative brightness change: offline, pixels are scaled by
        U(1 - brightness, 1 + brightness) (as PIL's ``ImageEnhance.Brightness``);
        on the fly, Keras' ``RandomBrightness`` adds up to ``brightness * 255``.
    mode : {"online", "offline"}, default="online"
        Augment batches during training, or expand the set before training.
    copies : int, default=1
        With ``mode="offline"``: augmented copies added per image.
    """

    flip: bool = True
    rotation: float = 15.0
    brightness: float = 0.2
    mode: str = "online"
    copies: int = 1

    def __post_init__(self):
        set_field = object.__setattr__
        set_field(self, "flip", check_bool(self.flip, name="flip"))
        set_field(self, "rotation", check_real(self.rotation, name="rotation", low=0.0, high=180.0, unit="degrees"))
        set_field(self, "brightness", check_real(self.brightness, name="brightness", low=0.0, high=1.0,
                                                 high_open=True))
        check_choice(self.mode, ("online", "offline"), name="mode")
        set_field(self, "copies", check_positive_int(self.copies, name="copies"))

    def to_dict(self) -> dict:
        return asdict(self)


def _rotate_batch(images: np.ndarray, degrees: np.ndarray) -> np.ndarray:
    """Rotate each image of a float stack about its centre (bilinear, reflected border)."""
    from scipy.ndimage import map_coordinates

    n, h, w = images.shape[:3]
    theta = np.deg2rad(degrees)[:, None, None]
    yy, xx = np.meshgrid(np.arange(h) - (h - 1) / 2, np.arange(w) - (w - 1) / 2, indexing="ij")
    cos, sin = np.cos(theta), np.sin(theta)
    src_y = cos * yy[None] - sin * xx[None] + (h - 1) / 2  # inverse rotation of output coords
    src_x = sin * yy[None] + cos * xx[None] + (w - 1) / 2
    idx = np.broadcast_to(np.arange(n)[:, None, None], (n, h, w)).astype(float)
    if images.ndim == 4:
        c = images.shape[3]
        coords = [np.repeat(a[..., None], c, axis=3) for a in (idx, src_y, src_x)]
        coords.append(np.broadcast_to(np.arange(c, dtype=float), (n, h, w, c)))
    else:
        coords = [idx, src_y, src_x]
    return map_coordinates(images, np.stack(coords), order=1, mode="mirror")


@dataclass(frozen=True)
class AugmentationDraws:
    """The random part of one augmentation of ``N`` images, drawn apart from the transform (replayable).

    Attributes
    ----------
    flip : ndarray of shape (N,), bool
    degrees : ndarray of shape (N,), float64
    gain : ndarray of shape (N,), float64
    """

    flip: np.ndarray
    degrees: np.ndarray
    gain: np.ndarray


def draw_augmentation(n: int, *, augmentation: Augmentation = Augmentation(), seed=None) -> AugmentationDraws:
    """Draw the flips, angles and brightness gains of ``n`` images (kornia's ``generate_parameters``).

    Parameters
    ----------
    n : int
    augmentation : Augmentation
    seed : None, int, numpy.random.SeedSequence or numpy.random.Generator
        Pass an int for reproducible output.
    """
    rng = check_rng(seed)
    flip = rng.random(n) < 0.5 if augmentation.flip else np.zeros(n, bool)
    degrees = rng.uniform(-augmentation.rotation, augmentation.rotation, n)
    gain = rng.uniform(1 - augmentation.brightness, 1 + augmentation.brightness, n)
    return AugmentationDraws(flip, degrees, gain)


def apply_augmentation(images, draws: AugmentationDraws) -> np.ndarray:
    """Flip, rotate (bilinear, mirrored border) and brighten every image as ``draws`` say (a new array).

    Parameters
    ----------
    images : ndarray of shape (N, H, W) or (N, H, W, C), uint8
    draws : AugmentationDraws of N images

    Returns
    -------
    ndarray of the same shape, uint8
    """
    images = check_images(images)
    n = images.shape[0]
    if draws.flip.shape != (n,):
        raise ValueError(f"draws are for {draws.flip.shape[0]} images, got {n}")
    out = np.empty_like(images)
    for lo in range(0, n, _CHUNK):
        batch = images[lo:lo + _CHUNK].astype(np.float32)
        sl = slice(lo, lo + batch.shape[0])
        batch[draws.flip[sl]] = batch[draws.flip[sl], :, ::-1]
        if np.any(draws.degrees[sl] != 0):
            batch = _rotate_batch(batch, draws.degrees[sl])
        shape = (-1,) + (1,) * (batch.ndim - 1)
        batch *= draws.gain[sl].reshape(shape)
        out[sl] = np.clip(np.rint(batch), 0, 255).astype(np.uint8)
    return out


def augment_images(images, *, augmentation: Augmentation = Augmentation(), seed=None) -> np.ndarray:
    """Apply random flip, rotation and brightness to every image (a new array):
    :func:`apply_augmentation` of :func:`draw_augmentation`.

    Parameters
    ----------
    images : ndarray of shape (N, H, W) or (N, H, W, C), uint8
    augmentation : Augmentation
    seed : None, int, numpy.random.SeedSequence or numpy.random.Generator
        Pass an int for reproducible output.

    Returns
    -------
    ndarray of the same shape, uint8
    """
    images = check_images(images)
    return apply_augmentation(images, draw_augmentation(images.shape[0], augmentation=augmentation, seed=seed))


def expand_with_augmentation(images, labels, *, augmentation: Augmentation = Augmentation(), seed=None):
    """The paper's offline augmentation: the set plus ``augmentation.copies`` augmented copies.

    Returns
    -------
    images : ndarray of shape ((copies + 1) * N, H, W[, C]), uint8
        Originals first, then each batch of copies.
    labels : ndarray of shape ((copies + 1) * N,)
    """
    images = check_images(images)
    labels = np.asarray(labels)
    rng = check_rng(seed)
    stacks = [images] + [augment_images(images, augmentation=augmentation, seed=rng)
                         for _ in range(augmentation.copies)]
    return np.concatenate(stacks), np.concatenate([labels] * (augmentation.copies + 1))
