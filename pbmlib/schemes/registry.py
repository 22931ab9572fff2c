"""Named protections behind one interface, so every study can compare them on one dataset.

A scheme has a ``name`` and parameters, protects a training set
(``protect(images, labels, seed=...)``) and says whether the *test* set must be
transformed too (``transforms_test``): PBM and the simple baselines leave test images
clean; encryption-style schemes transform them with the same key.

>>> scheme = get_scheme("pbm", block=(5, 5))
>>> scheme.name, scheme.transforms_test
('pbm', False)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .._validation import check_images, check_positive_int
from ..pbm.mixing import mix_blocks

__all__ = ["Scheme", "PBM", "GaussianBlur", "Pixelation", "BlackBoxMask", "VisualMixer", "PixelEncryption",
           "BlockEncryption", "get_scheme", "SCHEMES"]


class Scheme:
    """Base class: subclasses are dataclasses of their parameters and implement ``protect``."""

    name: str = ""
    transforms_test: bool = False
    #: adaptation network a classifier needs in front (``build_model(adaptation=...)``), or None
    adaptation: str | None = None

    def protect(self, images, labels, *, seed=None) -> np.ndarray:
        """Protected copy of ``images`` (same shape, uint8). ``images`` is not modified."""
        raise NotImplementedError

    def protect_test(self, images, *, seed=None) -> np.ndarray:
        """Transform test images when ``transforms_test`` is True; otherwise return them unchanged."""
        return check_images(images)

    @property
    def label(self) -> str:
        """Short description: the name, the first parameter, and any other parameter not at its
        default, e.g. ``pbm block=5x5`` or ``pbm block=5x5 rounds=3``."""
        from dataclasses import fields

        parts = []
        for i, f in enumerate(fields(self)):
            value = getattr(self, f.name)
            if i > 0 and value == f.default:
                continue
            if isinstance(value, tuple):
                value = "x".join(str(v) for v in value)
            parts.append(f"{f.name}={value}")
        return " ".join([self.name] + parts)

    def to_dict(self) -> dict:
        return {"scheme": self.name, **asdict(self)}


@dataclass
class PBM(Scheme):
    """Label-based Pixel Block Mixing; see :func:`pbmlib.mix_blocks`."""

    block: tuple = (5, 5)
    n_donors: int = 10
    rounds: int = 1
    p: float = 0.5
    name = "pbm"

    def __post_init__(self):
        self.block = tuple(int(b) for b in self.block)

    def protect(self, images, labels, *, seed=None):
        return mix_blocks(images, labels, block=self.block, n_donors=self.n_donors, rounds=self.rounds, p=self.p,
                          seed=seed)


@dataclass
class GaussianBlur(Scheme):
    """Gaussian blur of every image with standard deviation ``sigma`` pixels (baseline)."""

    sigma: float = 2.0
    name = "blur"

    def protect(self, images, labels, *, seed=None):
        from scipy.ndimage import gaussian_filter

        images = check_images(images)
        if self.sigma <= 0:
            raise ValueError(f"sigma must be > 0, got {self.sigma}")
        sigma = (0, self.sigma, self.sigma) + ((0,) if images.ndim == 4 else ())
        out = gaussian_filter(images.astype(np.float32), sigma=sigma, mode="reflect")
        return np.clip(np.rint(out), 0, 255).astype(np.uint8)


@dataclass
class Pixelation(Scheme):
    """Replace every ``cell x cell`` square by its mean (baseline); the cell must divide the image."""

    cell: int = 5
    name = "pixelate"

    def protect(self, images, labels, *, seed=None):
        from .._validation import check_block

        images = check_images(images)
        c = check_positive_int(self.cell, name="cell")
        check_block(images.shape[1:3], (c, c))
        n, h, w = images.shape[:3]
        rest = images.shape[3:]
        cells = images.reshape(n, h // c, c, w // c, c, *rest).astype(np.float32)
        means = np.rint(cells.mean(axis=(2, 4), keepdims=True))
        return np.broadcast_to(means, cells.shape).reshape(images.shape).astype(np.uint8)


@dataclass
class BlackBoxMask(Scheme):
    """Black out a centred box covering ``fraction`` of the height and width (baseline, e.g. eyes/face)."""

    fraction: float = 0.5
    name = "mask"

    def protect(self, images, labels, *, seed=None):
        images = check_images(images)
        if not 0 < self.fraction <= 1:
            raise ValueError(f"fraction must be in (0, 1], got {self.fraction}")
        out = images.copy()
        h, w = images.shape[1:3]
        bh, bw = max(1, round(h * self.fraction)), max(1, round(w * self.fraction))
        top, left = (h - bh) // 2, (w - bw) // 2
        out[:, top:top + bh, left:left + bw] = 0
        return out


@dataclass
class Identity(Scheme):
    """No protection: the originals (the reference row of every comparison)."""

    name = "none"

    def protect(self, images, labels, *, seed=None):
        return check_images(images).copy()


@dataclass
class VisualMixer(Scheme):
    """VisualMixer pixel shuffling inside windows (Li et al., NDSS 2024); test images are shuffled too.

    See :func:`pbmlib.visualmixer.visualmixer_shuffle`.
    """

    window: int = 8
    levels: tuple = (1, 2, 4)
    name = "visualmixer"
    transforms_test = True

    def __post_init__(self):
        self.levels = tuple(int(v) for v in self.levels)

    def protect(self, images, labels, *, seed=None):
        from .visualmixer import visualmixer_shuffle

        return visualmixer_shuffle(images, window=self.window, levels=self.levels, seed=seed)

    def protect_test(self, images, *, seed=None):
        from .visualmixer import visualmixer_shuffle

        # the procedure, not a key: fresh randomness for the test images
        return visualmixer_shuffle(images, window=self.window, levels=self.levels,
                                   seed=None if seed is None else seed + 1)


@dataclass
class PixelEncryption(Scheme):
    """Pixel-based encryption (Sirichotedumrong et al., ICIP 2019). ``seed`` is the key: the test
    set is encrypted with the same key (one shared key, or one per image with ``per_image_keys``)."""

    per_image_keys: bool = False
    name = "pixel_encryption"
    transforms_test = True
    adaptation = "pixel"

    def _encrypt(self, images, seed, stream):
        from .encryption import pixel_encrypt, pixel_key

        images = check_images(images)
        if self.per_image_keys:
            rng = np.random.default_rng([stream, seed if seed is not None else 0])
            return pixel_encrypt(images, pixel_key(images.shape[1:], n_images=len(images), seed=rng))
        return pixel_encrypt(images, pixel_key(images.shape[1:], seed=seed))

    def protect(self, images, labels, *, seed=None):
        return self._encrypt(images, seed, 0)

    def protect_test(self, images, *, seed=None):
        return self._encrypt(images, seed, 1)


@dataclass
class BlockEncryption(Scheme):
    """Block-wise learnable encryption (Tanaka, ICCE-TW 2018) with 4x4 blocks; ``seed`` is the key."""

    block: int = 4
    name = "block_encryption"
    transforms_test = True
    adaptation = "block"

    def protect(self, images, labels, *, seed=None):
        from .encryption import block_encrypt, block_key

        images = check_images(images)
        channels = images.shape[3] if images.ndim == 4 else 1
        return block_encrypt(images, block_key(channels, block=self.block, seed=seed))

    def protect_test(self, images, *, seed=None):
        return self.protect(images, None, seed=seed)


SCHEMES: dict[str, type[Scheme]] = {"none": Identity, "pbm": PBM, "blur": GaussianBlur, "pixelate": Pixelation,
                                    "mask": BlackBoxMask, "visualmixer": VisualMixer,
                                    "pixel_encryption": PixelEncryption, "block_encryption": BlockEncryption}


def get_scheme(name: str, **params) -> Scheme:
    """Build a scheme by name with its parameters, e.g. ``get_scheme("blur", sigma=3)``."""
    if name not in SCHEMES:
        raise ValueError(f"unknown scheme {name!r}; choose one of {sorted(SCHEMES)}")
    try:
        return SCHEMES[name](**params)
    except TypeError as exc:
        raise ValueError(f"bad parameters for scheme {name!r}: {exc}") from None
