"""Adaptive attacks: attacks designed against a defence, not only the fixed suite (numpy tier).

A defence is only evaluated when the attacker knows it and adapts (Carlini et al. against
InstaHide [1]_). The fixed attacks (:mod:`pbmlib.privacy.attacks`) look for blocks copied
verbatim at their position; the defences of :mod:`pbmlib.schemes.defended` and DP-Pix
break exactly that, so each attack here undoes one defence:

=========================  =========================================================================
noise (``pbm_noise``,      denoise first (Gaussian or median filter, block means), then match;
DP-Pix)                    or match whole images by nearest neighbour after the same filter
shuffling                  look for a candidate's blocks at *any* position (``positions="any"``)
(``pbm_shuffle``)
averaging                  model the released block as ``w * candidate + (1 - w) * background``
(``pbm_average``)          and search ``w`` (the mixture attack); or compare z-scored blocks
augmentation               search the public transforms: flip and rotations on a grid applied to
(``pbm_augment``)          the candidates, z-scored blocks for brightness
=========================  =========================================================================

Every attack is run against every scheme by :func:`pbmlib.privacy.audit.audit` (the
calibrated worst case over all of them is reported, with the attack's name), so a
defence gains nothing from the attacker having to know which one it faces. Membership attacks score candidates
(members = training originals, non-members = held-out images) against the released set;
re-identification attacks rank a gallery of originals for every released image.

References
----------
.. [1] Carlini, N. et al. (2021). Is Private Learning Possible with Instance Encoding?
       IEEE S&P, 410-427. arXiv:2011.05315
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter, median_filter, rotate

from .._validation import check_block, check_choice, check_images
from .kernels import block_rows, image_sq_distances, nearest

__all__ = [
    "denoise",
    "nearest_block_distances",
    "mixture_block_distances",
    "block_vote_distances",
    "transform_grid",
    "DEFAULT_ANGLES",
    "AdaptiveAttack",
    "MEMBERSHIP_ATTACKS",
    "REID_ATTACKS",
    "adaptive_membership_scores",
    "adaptive_reid_distances",
]

_DENOISERS = ("none", "gaussian", "median", "block_mean")
#: default rotation grid of the augmentation search, in degrees (the paper's +-15, step 1.5)
DEFAULT_ANGLES = tuple(np.round(np.arange(-15.0, 15.01, 1.5), 6))


def _as_float(images, name: str) -> np.ndarray:
    """uint8 images (checked) or float arrays of shape (N, H, W[, C]) as float32."""
    arr = np.asarray(images)
    if arr.dtype == np.uint8:
        arr = check_images(arr, name=name)
    elif arr.ndim not in (3, 4) or not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(f"{name} must be uint8 or float images of shape (N, H, W) or (N, H, W, C), "
                         f"got dtype {arr.dtype} and shape {arr.shape}")
    return arr.astype(np.float32, copy=False)


def denoise(images, *, method: str = "gaussian", sigma: float = 1.0, size: int = 3, block=None) -> np.ndarray:
    """Filter images the way an attacker strips per-pixel noise, every channel on its own.

    Parameters
    ----------
    images : ndarray of shape (N, H, W) or (N, H, W, C), uint8 (or float)
    method : {"gaussian", "median", "block_mean", "none"}, default="gaussian"
        ``gaussian``: Gaussian filter of ``sigma`` pixels; ``median``: ``size x size``
        median; ``block_mean``: every ``block`` replaced by its mean (noise of standard
        deviation s becomes s / sqrt(bh * bw)); ``none``: unchanged.
    sigma : float, default=1.0
    size : int, default=3
    block : (int, int), optional
        Needed by ``block_mean``; must divide H and W.

    Returns
    -------
    ndarray of the shape of ``images``, float32 (not rounded: rounding would add noise back).

    Examples
    --------
    >>> x = np.random.default_rng(0).normal(100, 30, (2, 10, 10)).clip(0, 255).astype(np.uint8)
    >>> bool(denoise(x).std() < x.std())
    True
    >>> denoise(x, method="block_mean", block=(5, 5)).shape
    (2, 10, 10)
    """
    check_choice(method, _DENOISERS, name="method")
    x = _as_float(images, "images")
    spatial = (0, 1, 1) + ((0,) if x.ndim == 4 else ())
    if method == "none":
        return x.copy()
    if method == "gaussian":
        if isinstance(sigma, bool) or not isinstance(sigma, numbers.Real) or not sigma > 0:
            raise ValueError(f"sigma must be > 0 pixels, got {sigma!r}")
        return gaussian_filter(x, sigma=tuple(sigma * s for s in spatial), mode="reflect")
    if method == "median":
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
            raise ValueError(f"size must be an int >= 1 pixel, got {size!r}")
        return median_filter(x, size=tuple(size if s else 1 for s in spatial), mode="reflect")
    if block is None:
        raise ValueError("method='block_mean' needs block=(height, width)")
    bh, bw = check_block(x.shape[1:3], block)
    n, h, w = x.shape[:3]
    c = x.shape[3] if x.ndim == 4 else 1
    cells = x.reshape(n, h // bh, bh, w // bw, bw, c)
    means = np.broadcast_to(cells.mean(axis=(2, 4), keepdims=True), cells.shape)
    return np.ascontiguousarray(means).reshape(x.shape)


def _normalize(blocks: np.ndarray, mode) -> np.ndarray:
    """None: unchanged; ``"gain"``: unit norm (invariant to a brightness gain); ``"zscore"``: mean
    removed, then unit norm (invariant to gain and offset). Scaled by sqrt(D) so that
    distances stay per value."""
    if mode is None:
        return blocks
    check_choice(mode, ("gain", "zscore"), name="normalize")
    if mode == "zscore":
        blocks = blocks - blocks.mean(axis=-1, keepdims=True)
    norm = np.sqrt((blocks**2).sum(axis=-1, keepdims=True))
    return blocks * (np.sqrt(blocks.shape[-1]) / np.maximum(norm, 1e-3))


def nearest_block_distances(candidates, protected, *, block, positions: str = "same", normalize=None,
                            return_index: bool = False):
    """For every block of every candidate, the distance to the nearest block of the protected set.

    Parameters
    ----------
    candidates : ndarray of shape (N, H, W[, C]), uint8 or float
    protected : ndarray of shape (M, H, W[, C]), uint8 or float
    block : (int, int)
        Block height and width; must divide H and W.
    positions : {"same", "any"}, default="same"
        ``same``: only protected blocks at the candidate block's own position (PBM keeps
        positions); ``any``: blocks at every position (defeats moving blocks).
    normalize : {None, "gain", "zscore"}, default=None
        Compare blocks after scaling to unit norm (``gain``: invariant to brightness
        gain) or after also removing their mean (``zscore``).
    return_index : bool, default=False
        Also return which protected image holds each nearest block.

    Returns
    -------
    distances : ndarray of shape (N, nb), float64
        Mean squared difference per value (0 = a verbatim copy exists).
    index : ndarray of shape (N, nb), int64
        Only with ``return_index``: index of the protected image of the nearest block.

    Examples
    --------
    >>> x = np.random.default_rng(0).integers(0, 256, (3, 4, 4), dtype=np.uint8)
    >>> d = nearest_block_distances(x, x[::-1], block=(2, 2))
    >>> d.shape, float(d.max())
    ((3, 4), 0.0)
    """
    check_choice(positions, ("same", "any"), name="positions")
    c, p = _as_float(candidates, "candidates"), _as_float(protected, "protected")
    if c.shape[1:] != p.shape[1:]:
        raise ValueError(f"candidates {c.shape[1:]} and protected {p.shape[1:]} differ in image shape")
    bc, bp = _normalize(block_rows(c, block), normalize), _normalize(block_rows(p, block), normalize)
    n, nb = bc.shape[:2]
    if positions == "same":
        dist, index = nearest(bc.transpose(1, 0, 2), bp.transpose(1, 0, 2))  # (nb, N)
        dist, index = dist.T, index.T
    else:
        dist, flat = nearest(bc.reshape(1, n * nb, -1), bp.reshape(1, -1, bp.shape[2]))
        dist, index = dist.reshape(n, nb), (flat // nb).reshape(n, nb)
    return (dist, index) if return_index else dist


def mixture_block_distances(candidates, protected, *, block, weights=(1.0, 1 / 2, 1 / 3, 1 / 4, 1 / 6, 1 / 8),
                            background=None) -> np.ndarray:
    """Nearest-block distances under the averaging model: a released block is
    ``w * candidate_block + (1 - w) * background`` if the candidate was mixed in with weight w.

    Parameters
    ----------
    candidates, protected, block
        As in :func:`nearest_block_distances` (same positions).
    weights : sequence of float in (0, 1], default=(1, 1/2, 1/3, 1/4, 1/6, 1/8)
        Weights searched (1 is plain min-SSD; 1/k for an average of k blocks).
    background : ndarray of shape (H, W[, C]), optional
        The expected other blocks; default: the mean of the protected set (what averages
        of many same-position donors tend to).

    Returns
    -------
    ndarray of shape (N, nb), float64: the smallest distance over the weights.
    """
    weights = [float(w) for w in weights]
    if not weights or any(not 0 < w <= 1 for w in weights):
        raise ValueError(f"weights must be numbers in (0, 1], got {weights!r}")
    c, p = _as_float(candidates, "candidates"), _as_float(protected, "protected")
    mean = p.mean(axis=0) if background is None else np.asarray(background, np.float32)
    if mean.shape != p.shape[1:]:
        raise ValueError(f"background must have the shape of one image {p.shape[1:]}, got {mean.shape}")
    # one vectorized pass per weight (a handful), never per block
    return np.min([nearest_block_distances(w * c + (1 - w) * mean, p, block=block) for w in weights], axis=0)


def block_vote_distances(probes, gallery, *, block, positions: str = "same", normalize=None,
                         gallery_index=None, n_gallery=None) -> np.ndarray:
    """Re-identification by block votes: every probe block votes for the gallery image holding
    its nearest block; distance = minus the votes.

    Parameters
    ----------
    probes : ndarray of shape (N, H, W[, C]), uint8 or float
        Released images.
    gallery : ndarray of shape (G, H, W[, C]), uint8 or float
    block, positions, normalize
        As in :func:`nearest_block_distances`.
    gallery_index : array of shape (G,), int, optional
        Identity of each gallery entry (e.g. several transformed copies of one original);
        default ``arange(G)``.
    n_gallery : int, optional
        Number of identities; default ``gallery_index.max() + 1``.

    Returns
    -------
    ndarray of shape (N, n_gallery), float64 (smaller = more alike; ties are frequent).
    """
    _, nearest = nearest_block_distances(probes, gallery, block=block, positions=positions, normalize=normalize,
                                         return_index=True)
    gallery_index = np.arange(np.asarray(gallery).shape[0]) if gallery_index is None else np.asarray(gallery_index)
    m = int(gallery_index.max()) + 1 if n_gallery is None else int(n_gallery)
    who = gallery_index[nearest]  # (N, nb)
    n = who.shape[0]
    votes = np.bincount((np.arange(n)[:, None] * m + who).ravel(), minlength=n * m).reshape(n, m)
    return -votes.astype(np.float64)


def transform_grid(images, *, angles=DEFAULT_ANGLES, flips=(False, True)) -> np.ndarray:
    """Every image under every (flip, rotation) of a grid: what an attacker tries against
    augmentation before release (flip left-right first, then rotation about the centre,
    bilinear, mirrored border, as :func:`pbmlib.data.augmentation.augment_images`).

    Returns
    -------
    ndarray of shape (len(flips) * len(angles), N, H, W[, C]), float32; transform
    ``f * len(angles) + a`` is flip ``flips[f]`` then rotation ``angles[a]``.
    """
    x = _as_float(images, "images")
    out = []
    for flip in flips:  # a few dozen whole-stack transforms, never per pixel
        base = x[:, :, ::-1] if flip else x
        for angle in angles:
            out.append(base if angle == 0 else rotate(base, float(angle), axes=(2, 1), reshape=False, order=1,
                                                      mode="mirror"))
    return np.stack(out).astype(np.float32, copy=False)


# -- the attack suites ---------------------------------------------------------------------------------


def _score(distances: np.ndarray) -> np.ndarray:
    """Membership score of each candidate from its per-block nearest distances: minus the mean
    log distance (log: a few verbatim blocks weigh more than many near ones)."""
    return -np.log1p(distances).mean(axis=1)


def _filtered(method, **kw):
    return lambda x, block: denoise(x, method=method, block=block, **kw)


@dataclass(frozen=True)
class AdaptiveAttack:
    """One attack of a suite.

    Attributes
    ----------
    run : callable (images_a, images_b, block) -> ndarray
        Membership: ``(candidates, protected, block) -> (N,)`` scores, higher = member;
        re-identification: ``(probes, gallery, block) -> (N, G)`` distances, smaller = same.
    needs_block : bool
        Whether it reads the block geometry (skipped without one).
    for_augmented : bool
        Whether it searches the transforms of augmentation before release: an audit runs it
        only against a mechanism that publishes one (elsewhere the identity, which the other
        attacks try, is the only transform that can hold).
    """

    run: object
    needs_block: bool = True
    for_augmented: bool = False


def _member_blocks(filt, positions="same", normalize=None):
    def run(candidates, protected, block):
        return _score(nearest_block_distances(filt(candidates, block), filt(protected, block), block=block,
                                              positions=positions, normalize=normalize))
    return run


def _member_image(filt):
    def run(candidates, protected, block):
        return -image_sq_distances(filt(candidates, block), filt(protected, block)).min(axis=1)
    return run


def _member_mixture(candidates, protected, block):
    return _score(mixture_block_distances(candidates, protected, block=block))


def _member_augment(candidates, protected, block):
    grid = transform_grid(candidates)
    dist = np.min([nearest_block_distances(t, protected, block=block, normalize="zscore") for t in grid], axis=0)
    return _score(dist)


_none, _gauss, _median, _means = (_filtered("none"), _filtered("gaussian"), _filtered("median"),
                                  _filtered("block_mean"))

#: membership attacks by name: ``run(candidates, protected, block) -> scores`` (higher = member)
MEMBERSHIP_ATTACKS: dict[str, AdaptiveAttack] = {
    "min_ssd": AdaptiveAttack(_member_blocks(_none)),
    "denoised_min_ssd": AdaptiveAttack(_member_blocks(_gauss)),
    "median_min_ssd": AdaptiveAttack(_member_blocks(_median)),
    "block_means": AdaptiveAttack(_member_blocks(_means)),
    "normalized": AdaptiveAttack(_member_blocks(_none, normalize="zscore")),
    "mixture": AdaptiveAttack(_member_mixture),
    "any_position": AdaptiveAttack(_member_blocks(_none, positions="any")),
    "any_position_denoised": AdaptiveAttack(_member_blocks(_gauss, positions="any")),
    "any_position_normalized": AdaptiveAttack(_member_blocks(_none, positions="any", normalize="zscore")),
    "augment_search": AdaptiveAttack(_member_augment, for_augmented=True),
    "image_nn": AdaptiveAttack(_member_image(_gauss), needs_block=False),
    "image_nn_mosaic": AdaptiveAttack(_member_image(_means)),
}


def _reid_pixels(filt):
    def run(probes, gallery, block):
        return image_sq_distances(filt(probes, block), filt(gallery, block))
    return run


def _reid_votes(filt, positions="same", normalize=None):
    def run(probes, gallery, block):
        return block_vote_distances(filt(probes, block), filt(gallery, block), block=block, positions=positions,
                                    normalize=normalize)
    return run


def _reid_augment(probes, gallery, block):
    grid = transform_grid(gallery)  # (T, G, ...): every transformed original is a gallery entry
    t, g = grid.shape[:2]
    return block_vote_distances(probes, grid.reshape((t * g,) + grid.shape[2:]), block=block, normalize="zscore",
                                gallery_index=np.tile(np.arange(g), t), n_gallery=g)


#: re-identification attacks by name: ``run(probes, gallery, block) -> distances`` (smaller = same)
REID_ATTACKS: dict[str, AdaptiveAttack] = {
    "denoised_pixel": AdaptiveAttack(_reid_pixels(_gauss), needs_block=False),
    "median_pixel": AdaptiveAttack(_reid_pixels(_median), needs_block=False),
    "block_vote": AdaptiveAttack(_reid_votes(_none)),
    "block_vote_denoised": AdaptiveAttack(_reid_votes(_gauss)),
    "block_vote_any": AdaptiveAttack(_reid_votes(_none, positions="any")),
    "augment_search": AdaptiveAttack(_reid_augment, for_augmented=True),
}


def _check_block_arg(block, shape):
    return None if block is None else check_block(shape[1:3], block)


def adaptive_membership_scores(candidates, protected, *, attack: str, block=None) -> np.ndarray:
    """Membership score of every candidate under one attack of :data:`MEMBERSHIP_ATTACKS`.

    Parameters
    ----------
    candidates : ndarray of shape (N, H, W[, C]), uint8
    protected : ndarray of shape (M, H, W[, C]), uint8
        The released set.
    attack : str
        A key of :data:`MEMBERSHIP_ATTACKS`.
    block : (int, int), optional
        The scheme's block (the attacker knows it); required by the block attacks.

    Returns
    -------
    ndarray of shape (N,), float64: higher = more likely a member.
    """
    check_choice(attack, tuple(MEMBERSHIP_ATTACKS), name="attack")
    candidates, protected = check_images(candidates, name="candidates"), check_images(protected, name="protected")
    block = _check_block_arg(block, protected.shape)
    if MEMBERSHIP_ATTACKS[attack].needs_block and block is None:
        raise ValueError(f"the {attack!r} membership attack needs block=(height, width)")
    return np.asarray(MEMBERSHIP_ATTACKS[attack].run(candidates, protected, block), np.float64)


def adaptive_reid_distances(probes, gallery, *, attack: str, block=None) -> np.ndarray:
    """Distance of every released image to every gallery original under one attack of
    :data:`REID_ATTACKS`.

    Returns
    -------
    ndarray of shape (N_probes, N_gallery), float64: smaller = more likely the same image.
    """
    check_choice(attack, tuple(REID_ATTACKS), name="attack")
    probes, gallery = check_images(probes, name="probes"), check_images(gallery, name="gallery")
    if probes.shape[1:] != gallery.shape[1:]:
        raise ValueError(f"probes {probes.shape[1:]} and gallery {gallery.shape[1:]} differ in image shape")
    block = _check_block_arg(block, probes.shape)
    if REID_ATTACKS[attack].needs_block and block is None:
        raise ValueError(f"the {attack!r} re-identification attack needs block=(height, width)")
    return np.asarray(REID_ATTACKS[attack].run(probes, gallery, block), np.float64)
