"""What a scheme publishes: the mechanism an attacker knows, without its key or random draws.

A protection is evaluated against an attacker who knows the algorithm and its parameters
(Kerckhoffs), but not the random draws of one release or a secret key. Every fitted
scheme describes that public part as a :class:`Mechanism`
(:meth:`pbmlib.schemes.base.Scheme.mechanism`), and the likelihood-ratio attacks of
:mod:`pbmlib.privacy.likelihood` are built from it alone: no attack asks which scheme it
faces.

A mechanism says, per *unit* (a block, a cell, a window, a pixel, or the whole image):

- which public **feature** of a source unit survives into the released unit
  (:data:`FEATURES`: its pixels; its mean; its sorted values; values folded by a keyed
  transform the attacker cannot undo but can factor out);
- a public deterministic **transform** of the source before that (blur, a mask,
  pixelation: the scheme itself run by the attacker on a candidate);
- the **noise** added to the feature values before they are rounded to whole grey levels
  and clipped to [0, 255] (:class:`Noise`: Gaussian or Laplace with its published scale);
- the **provenance** of a released unit: its own image's unit with probability ``keep``,
  else the same-position unit of another image of its label (PBM's mixing); the mean of
  ``average`` such draws; units kept at their position or moved anywhere in the class;
- whether the release went through a secret **key** or public **augmentation** (the
  attacker then searches the transforms, :mod:`pbmlib.privacy.adaptive`).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from scipy import stats

from .._validation import check_choice
from .kernels import block_rows

__all__ = ["Mechanism", "Noise", "FEATURES", "unit_features"]

_LEVELS = np.arange(256, dtype=np.float64)


@dataclasses.dataclass(frozen=True)
class Noise:
    """Noise added to feature values before rounding to whole grey levels and clipping to [0, 255].

    Parameters
    ----------
    law : {"gaussian", "laplace"}
    scale : float
        Standard deviation (Gaussian) or scale ``b`` (Laplace), in grey levels, > 0.
    """

    law: str
    scale: float

    def __post_init__(self):
        check_choice(self.law, ("gaussian", "laplace"), name="noise law")
        if not (isinstance(self.scale, (int, float)) and math.isfinite(self.scale) and self.scale > 0):
            raise ValueError(f"noise scale must be a number > 0 grey levels, got {self.scale!r}")

    def _cdf(self, x: np.ndarray) -> np.ndarray:
        dist = stats.norm if self.law == "gaussian" else stats.laplace
        return dist.cdf(x, scale=self.scale)

    def log_prob(self, released: np.ndarray, mean: np.ndarray) -> np.ndarray:
        """log P(released value | feature value ``mean``): the noise, then rounding and clipping.

        ``released`` holds whole grey levels 0..255; an interior value r has the mass of
        ``[r - 0.5, r + 0.5)``, 0 and 255 the whole tails (clipping). Broadcasts.
        """
        r = np.asarray(released, np.float64)
        mu = np.asarray(mean, np.float64)
        upper = np.where(r >= 255, np.inf, r + 0.5) - mu
        lower = np.where(r <= 0, -np.inf, r - 0.5) - mu
        # the smaller tail of each difference, for precision far from the mean
        flip = (lower + upper) > 0
        a, b = np.where(flip, -upper, lower), np.where(flip, -lower, upper)
        mass = self._cdf(b) - self._cdf(a)
        return np.log(np.maximum(mass, 1e-300))

    def table(self, resolution: int = 8) -> tuple[np.ndarray, int]:
        """``log_prob`` of every released level 0..255 for feature values on a grid of
        ``1 / resolution`` grey levels over [-64, 319]: ``(table (256, G), resolution)``;
        feature ``m`` is column ``round((m + 64) * resolution)``."""
        grid = np.arange(-64 * resolution, 320 * resolution + 1) / resolution
        return self.log_prob(_LEVELS[:, None], grid[None, :]), resolution


def _pixels(units: np.ndarray, channels: int) -> np.ndarray:
    return units


def _mean(units: np.ndarray, channels: int) -> np.ndarray:
    n, p, d = units.shape
    return units.reshape(n, p, d // channels, channels).mean(axis=2)


def _sorted(units: np.ndarray, channels: int) -> np.ndarray:
    n, p, d = units.shape
    x = np.sort(units.reshape(n, p, d // channels, channels), axis=2)
    return x.reshape(n, p, d)


def _abs_sorted(units: np.ndarray, channels: int) -> np.ndarray:
    return np.sort(np.abs(units - 127.5), axis=2)


def _nibbles_folded_sorted(units: np.ndarray, channels: int) -> np.ndarray:
    values = np.rint(units).astype(np.int64)
    nibbles = np.concatenate([values >> 4, values & 15], axis=2)
    return np.sort(np.minimum(nibbles, 15 - nibbles), axis=2).astype(np.float64)


#: Feature of a unit that survives the release: name -> (function (N, P, D) -> (N, P, F), description).
#: Functions take float64 unit rows (channels innermost) and the channel count.
FEATURES = {
    "pixels": (_pixels, "the unit's values as they are (copied, noised or averaged)"),
    "mean": (_mean, "the unit's mean per channel (pixelation, DP-Pix's cell means)"),
    "sorted": (_sorted, "the unit's values per channel in sorted order (pixels moved inside the unit)"),
    "abs_sorted": (_abs_sorted, "sorted |value - 127.5| over the unit (keyed negative-positive flips and "
                                "channel or pixel permutations leave it unchanged)"),
    "nibbles_folded_sorted": (_nibbles_folded_sorted, "sorted min(v, 15 - v) over the unit's 4-bit halves (a "
                                                       "keyed permutation and inversion of nibbles leaves it)"),
}


@dataclasses.dataclass(frozen=True)
class Mechanism:
    """The public mechanism of a fitted scheme (see the module docstring).

    Parameters
    ----------
    unit : (int, int) or None
        The geometry that stays linked to one source: PBM's block, a pixelation cell, a
        window; None for the whole image.
    feature : str, default="pixels"
        A key of :data:`FEATURES`.
    transform : callable (images) -> images, optional
        A public deterministic transform the attacker applies to a candidate first (a
        blur, a mask, or the whole scheme when it is deterministic).
    noise : Noise, optional
        Noise on the feature values before rounding and clipping.
    keep : float, default=1.0
        Probability that a released unit holds its own image's unit; otherwise it holds the
        same-position unit of another image of the label (uniformly).
    average : int, default=1
        A released unit is the mean of this many units drawn by the rule of ``keep``.
    positions : {"same", "any"}, default="same"
        Units stay at their position, or may be moved anywhere within the label.
    augmentation : Augmentation, optional
        The public augmentation (flip, rotation, brightness ranges) applied before release.
    keyed : bool, default=False
        A secret key shapes the release (the attacker has only what the key leaves
        unchanged, or a chosen-plaintext oracle).
    """

    unit: tuple[int, int] | None = None
    feature: str = "pixels"
    transform: object = None
    noise: Noise | None = None
    keep: float = 1.0
    average: int = 1
    positions: str = "same"
    augmentation: object = None
    keyed: bool = False

    def __post_init__(self):
        check_choice(self.feature, tuple(FEATURES), name="feature")
        check_choice(self.positions, ("same", "any"), name="positions")
        if not 0 <= self.keep <= 1:
            raise ValueError(f"keep must be a probability, got {self.keep!r}")

    def unit_for(self, image_shape) -> tuple[int, int]:
        """The unit geometry for images of ``image_shape`` (the whole image when ``unit`` is None)."""
        return tuple(self.unit) if self.unit is not None else (int(image_shape[0]), int(image_shape[1]))

    @property
    def augmented(self) -> bool:
        """Whether a public augmentation moved the released pixels off the unit grid."""
        return self.augmentation is not None

    @property
    def mixes(self) -> bool:
        """Whether units of one released image come from several sources."""
        return self.keep < 1 or self.average > 1 or self.positions == "any"

    def describe(self) -> str:
        """One line for reports: what the attacker knows."""
        parts = [f"unit {'image' if self.unit is None else 'x'.join(map(str, self.unit))}",
                 f"feature {self.feature}"]
        if self.transform is not None:
            parts.append("public transform")
        if self.noise is not None:
            parts.append(f"{self.noise.law} noise of scale {self.noise.scale:g}")
        if self.keep < 1:
            parts.append(f"own unit kept with probability {self.keep:.3g}")
        if self.average > 1:
            parts.append(f"mean of {self.average} draws")
        if self.positions == "any":
            parts.append("units moved within the label")
        if self.augmented:
            parts.append("augmented before release")
        if self.keyed:
            parts.append("secret key")
        return ", ".join(parts)


def unit_features(images: np.ndarray, mechanism: Mechanism, *, transform: bool = False) -> np.ndarray:
    """The mechanism's feature of every unit: ``(N, P, F)`` float64.

    Parameters
    ----------
    images : ndarray of shape (N, H, W[, C]), uint8
    mechanism : Mechanism
    transform : bool, default=False
        Apply the mechanism's public transform first (for candidates; the released images
        already went through it).
    """
    if transform and mechanism.transform is not None:
        images = mechanism.transform(images)
    channels = images.shape[3] if images.ndim == 4 else 1
    units = block_rows(images, mechanism.unit_for(images.shape[1:]), dtype=np.float64)
    return FEATURES[mechanism.feature][0](units, channels)
