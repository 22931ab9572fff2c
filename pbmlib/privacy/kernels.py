"""The numeric kernels every attack shares: block rows, chunked distances, nearest neighbours.

One implementation of each, used by the fixed attacks (:mod:`.attacks`), the adaptive
suite (:mod:`.adaptive`), the matchers and the mechanism-aware likelihood attacks
(:mod:`.likelihood`). Memory is bounded by chunks of images whatever the set sizes;
nothing loops over pixels or blocks.
"""

from __future__ import annotations

import numpy as np

from .._validation import check_block

__all__ = ["block_rows", "centre_blocks", "chunked_sq_distances", "nearest", "image_sq_distances", "CHUNK"]

#: Elements of one chunk of distances (float64): about 128 MB whatever the set sizes.
CHUNK = 1 << 24


def block_rows(images: np.ndarray, block, *, dtype=None) -> np.ndarray:
    """Every block of every image as one row: ``(N, gh * gw, bh * bw * C)``, positions row-major.

    Parameters
    ----------
    images : ndarray of shape (N, H, W) or (N, H, W, C)
    block : (int, int)
        Must divide H and W.
    dtype : numpy dtype, optional
        Of the result (default: the images' own).

    Returns
    -------
    ndarray, C-contiguous (a copy): row ``[i, k]`` is block ``k`` of image ``i``, its pixels
    in row-major order with the channels innermost.

    Examples
    --------
    >>> block_rows(np.arange(16).reshape(1, 4, 4), (2, 2))[0, 1]
    array([2, 3, 6, 7])
    """
    n, h, w = images.shape[:3]
    bh, bw = check_block((h, w), block)
    c = images.shape[3] if images.ndim == 4 else 1
    x = np.asarray(images).reshape(n, h // bh, bh, w // bw, bw, c).transpose(0, 1, 3, 2, 4, 5)
    return np.ascontiguousarray(x.reshape(n, (h // bh) * (w // bw), bh * bw * c), dtype=dtype)


def centre_blocks(images: np.ndarray, block) -> np.ndarray:
    """Blocks with each block's mean removed per channel (brightness-free): ``(N_b, N, D)`` float64,
    position first (the layout :func:`chunked_sq_distances` takes)."""
    n = images.shape[0]
    c = images.shape[3] if images.ndim == 4 else 1
    bh, bw = check_block(images.shape[1:3], block)
    x = block_rows(images, block, dtype=np.float64).reshape(n, -1, bh * bw, c)
    x -= x.mean(axis=2, keepdims=True)
    return np.ascontiguousarray(x.reshape(n, x.shape[1], -1).transpose(1, 0, 2))


def chunked_sq_distances(a: np.ndarray, b: np.ndarray, exclude=None):
    """Mean squared differences per value between rows of ``a`` and ``b``, batched, in chunks of ``a``.

    Parameters
    ----------
    a : ndarray of shape (P, N, D)
    b : ndarray of shape (P, M, D)
        ``P`` independent batches (e.g. block positions), compared batch by batch.
    exclude : None, "diagonal" or ndarray of shape (N, M), bool
        Pairs set to ``inf``: ``"diagonal"`` when row i of ``a`` is row i of ``b``.

    Yields
    ------
    (lo, hi, dist)
        ``dist`` of shape (P, hi - lo, M), float64, for rows ``lo:hi`` of ``a``.
    """
    p, n, d = a.shape
    m = b.shape[1]
    b = b.astype(np.float64, copy=False)
    b2 = (b**2).sum(axis=2)  # (P, M)
    bt = np.ascontiguousarray(b.transpose(0, 2, 1))  # batched matmul is slow on strided operands
    step = max(1, CHUNK // max(1, p * m))
    for lo in range(0, n, step):  # chunks of images bound the memory; never single pixels
        chunk = np.ascontiguousarray(a[:, lo:lo + step], dtype=np.float64)
        dist = (chunk**2).sum(axis=2)[:, :, None] + b2[:, None, :] - 2.0 * np.matmul(chunk, bt)
        dist = np.maximum(dist, 0.0) / max(1, d)
        if isinstance(exclude, str):  # "diagonal"
            rows = np.arange(chunk.shape[1])
            dist[:, rows, lo + rows] = np.inf
        elif exclude is not None:
            dist[:, exclude[lo:lo + step]] = np.inf
        yield lo, lo + chunk.shape[1], dist


def nearest(a: np.ndarray, b: np.ndarray, exclude=None) -> tuple[np.ndarray, np.ndarray]:
    """For every row of ``a`` (P, N, D), the nearest row of ``b`` (P, M, D) in the same batch.

    Returns
    -------
    distance : ndarray of shape (P, N), float64
        Mean squared difference per value (``inf`` where ``b`` is empty or all excluded).
    index : ndarray of shape (P, N), int64
        The row of ``b`` (0 where the distance is ``inf``).
    """
    distance = np.full(a.shape[:2], np.inf)
    index = np.zeros(a.shape[:2], dtype=np.int64)
    if b.shape[1] == 0:
        return distance, index
    for lo, hi, dist in chunked_sq_distances(a, b, exclude):
        index[:, lo:hi] = dist.argmin(axis=2)
        distance[:, lo:hi] = np.take_along_axis(dist, index[:, lo:hi, None], axis=2)[..., 0]
    return distance, index


def image_sq_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances between whole images (or feature rows): ``(N, M)`` float64."""
    a = a.reshape(a.shape[0], -1).astype(np.float64)
    b = b.reshape(b.shape[0], -1).astype(np.float64)
    return np.maximum((a**2).sum(1)[:, None] + (b**2).sum(1)[None, :] - 2.0 * a @ b.T, 0.0)
