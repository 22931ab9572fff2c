"""Privacy measures between original and protected images.

SSIM is the paper's measure (Table IV). Always read it beside its chance floor:
two unrelated images of the same class already share some structure.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .._validation import check_images, check_labels

__all__ = ["ssim_scores", "psnr_scores", "summarize_scores", "same_label_partners", "ssim_floor_scores",
           "ssim_floor_table"]


def _paired(originals, protected) -> tuple[np.ndarray, np.ndarray]:
    a = check_images(originals, name="originals")
    b = check_images(protected, name="protected")
    if a.shape != b.shape:
        raise ValueError(f"originals {a.shape} and protected {b.shape} must have the same shape")
    return a, b


def ssim_scores(originals, protected) -> np.ndarray:
    """Per-image SSIM between each original and its protected version.

    Parameters
    ----------
    originals, protected : ndarray of shape (N, H, W) or (N, H, W, C), uint8
        Images are compared pairwise; a 4-D stack is colour with channels last.

    Returns
    -------
    ndarray of shape (N,), float64
        SSIM in [-1, 1] (1 = identical), scikit-image's implementation with
        ``data_range=255`` and its default 7 x 7 window.
    """
    from skimage.metrics import structural_similarity

    a, b = _paired(originals, protected)
    channel_axis = -1 if a.ndim == 4 else None
    if min(a.shape[1:3]) < 7:
        raise ValueError(f"SSIM needs images of at least 7 x 7 pixels, got {a.shape[1:3]}")
    return np.array([structural_similarity(x, y, data_range=255, channel_axis=channel_axis) for x, y in zip(a, b)])


def psnr_scores(originals, protected) -> np.ndarray:
    """Per-image PSNR in dB between originals and protected images (inf where identical).

    Parameters
    ----------
    originals, protected : ndarray of shape (N, H, W) or (N, H, W, C), uint8

    Returns
    -------
    ndarray of shape (N,), float64
    """
    a, b = _paired(originals, protected)
    diff = a.astype(np.float64) - b.astype(np.float64)
    mse = (diff**2).reshape(a.shape[0], -1).mean(axis=1)
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(255.0**2 / mse)


def summarize_scores(scores, labels, *, name: str = "score") -> pd.DataFrame:
    """Mean, standard deviation and count of per-image scores, per class and overall.

    Parameters
    ----------
    scores : array of shape (N,)
    labels : sequence of length N
    name : str
        Column prefix, e.g. ``"ssim"``.

    Returns
    -------
    DataFrame indexed by class (as str), with a last row ``"all"``; columns
    ``{name}_mean``, ``{name}_std``, ``n``.
    """
    scores = np.asarray(scores, dtype=float)
    codes, classes = check_labels(labels, scores.shape[0])
    rows = []
    for code, label in enumerate(classes):
        s = scores[codes == code]
        rows.append((str(label), s.mean(), s.std(ddof=1) if s.size > 1 else np.nan, s.size))
    rows.append(("all", scores.mean(), scores.std(ddof=1) if scores.size > 1 else np.nan, scores.size))
    frame = pd.DataFrame(rows, columns=["class", f"{name}_mean", f"{name}_std", "n"])
    return frame.set_index("class")


def same_label_partners(labels, *, seed=None) -> np.ndarray:
    """For every image, the index of a random *other* image with the same label.

    Used for chance floors: a measure between an original and an unrelated
    same-label image is what any protection scores with no information kept.
    Images alone in their class get themselves (-1 is never returned).

    Returns
    -------
    ndarray of shape (N,), int64
    """
    from ..pbm.mixing import mixing_sources

    return mixing_sources(labels, (1, 1), block=1, n_donors=1, p=1.0, seed=seed)[:, 0, 0]


def ssim_floor_scores(originals, labels, *, seed=None) -> np.ndarray:
    """SSIM between each original and a random other original of its class (the chance floor).

    Returns
    -------
    ndarray of shape (N,), float64
    """
    originals = check_images(originals, name="originals")
    partners = same_label_partners(labels, seed=seed)
    return ssim_scores(originals, originals[partners])


def ssim_floor_table(ssim, floor, labels) -> pd.DataFrame:
    """Per-class SSIM beside its chance floor and the excess over it.

    Parameters
    ----------
    ssim : array of shape (N,)
        SSIM of each protected image to its original (:func:`ssim_scores`).
    floor : array of shape (N,)
        SSIM of each original to a random same-label image (:func:`ssim_floor_scores`).
    labels : sequence of length N

    Returns
    -------
    DataFrame indexed by class and ``"all"``: ``ssim_mean``, ``ssim_std``, ``n``,
    ``ssim_floor_mean``, ``ssim_floor_std``, ``ssim_excess``.
    """
    table = summarize_scores(ssim, labels, name="ssim").join(
        summarize_scores(floor, labels, name="ssim_floor").drop(columns="n"))
    table["ssim_excess"] = table["ssim_mean"] - table["ssim_floor_mean"]
    return table
