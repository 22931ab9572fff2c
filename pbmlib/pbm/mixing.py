"""Label-based Pixel Block Mixing (PBM), the paper's Algorithm 1, vectorized.

Every image is cut into an even grid of ``bh x bw`` pixel blocks. In each of
``rounds`` rounds, every block is, with probability ``p``, replaced by the block
at the same position of one of ``n_donors`` randomly chosen images with the same
label. Only *which original image each block comes from* is random; the pixels
are copied once at the end, so the cost does not grow with the number of rounds.

Mapping onto the paper's notation [1]_: ``block=(bh, bw)`` is ``(L_b, W_b)`` (the
reference code's ``block_len`` is the block height, ``block_wid`` its width),
``n_donors`` is N_s, ``rounds`` is N_t, ``p`` the replacement probability (0.5 in
the paper), and the number of blocks N_b = (H * W) / (bh * bw) (Eq. 6).

Deliberate differences from the paper's reference code (documented, not copied):

- Donors always come from the *original* set, never from already-mixed images, so
  the result does not depend on file order. The reference code overwrites files in
  place in directory order, so later images can receive already-mixed donors.
- One fresh Bernoulli(p) mask per image per round over all N_b blocks; the
  reference code draws one 0/1 vector per *row* of blocks.
- Donors exclude the image itself unless ``allow_self=True`` (the reference code
  samples from the whole folder listing, the image included).
- ``rounds`` is a loop here; the reference code has none (re-run the script).
- Arrays in, arrays out: no JPEG re-encoding (the reference code saves at quality 75).

References
----------
.. [1] Xiang, Li, Ren, Zhu, Choo. "A Lightweight Privacy-Preserving Scheme Using
       Pixel Block Mixing for Facial Image Classification in Deep Learning."
"""

from __future__ import annotations

import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .._validation import check_block, check_bool, check_images, check_labels, check_positive_int, check_rng, usable_cores
from .settings import Mixing

__all__ = ["mix_blocks", "mixing_sources", "gather_blocks", "n_blocks", "Mixing"]

# Images gathered per np.take call: bounds the index array to a few MB.
_CHUNK_SEGMENTS = 1 << 20



def n_blocks(image_shape: tuple[int, ...], block: tuple[int, int]) -> int:
    """Number of blocks N_b = N_p / (L_b * W_b), Eq. (6) of [1]_.

    Parameters
    ----------
    image_shape : tuple of int
        ``(H, W)`` or ``(H, W, C)`` of one image; channels do not count as pixels.
    block : (int, int)
        Block height and width in pixels; must divide H and W.

    Examples
    --------
    >>> n_blocks((192, 192, 3), (96, 24))
    16
    """
    if len(image_shape) not in (2, 3):
        raise ValueError(f"image_shape must be (H, W) or (H, W, C), got {image_shape!r}")
    h, w = int(image_shape[0]), int(image_shape[1])
    bh, bw = check_block((h, w), block)
    return (h * w) // (bh * bw)


def _draw_donors(codes: np.ndarray, n_donors: int, allow_self: bool, rng: np.random.Generator):
    """Draw up to ``n_donors`` distinct same-label donors for every image.

    Vectorized Floyd sampling: one pass per donor slot, none per image.

    Returns
    -------
    donors : ndarray of shape (N, min(n_donors, max(1, largest population))), int64
        Original-image indices; only the first ``n_valid[i]`` entries of row i count.
        No row can use more donors than its class has, so the columns are capped at the
        largest donor population: the cost and memory follow the class sizes, not
        ``n_donors`` (``n_donors=10**9`` on small classes is as cheap as ``n_donors=10``).
    n_valid : ndarray of shape (N,), int64
        min(n_donors, size of the donor population of image i); 0 for a class of one
        image (without ``allow_self``).

    Notes
    -----
    The random stream is consumed exactly as by the uncapped loop (one ``rng.random(N)``
    per slot ``j < n_donors``): the draws of slots no row uses are skipped with
    ``bit_generator.advance`` for PCG64 (the default) and PCG64DXSM, else drawn and
    discarded in chunks. So the same seed gives the same bytes whatever
    the cap.
    """
    n = codes.shape[0]
    order = np.argsort(codes, kind="stable")  # images grouped by class
    sorted_codes = codes[order]
    starts = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]])
    sizes = np.diff(np.r_[starts, n])
    class_start = np.repeat(starts, sizes)  # per sorted position
    class_size = np.repeat(sizes, sizes)
    position = np.arange(n) - class_start  # rank inside the class
    population = class_size if allow_self else class_size - 1
    k = np.minimum(population, n_donors)
    columns = int(min(n_donors, max(1, int(population.max()))))  # slots any row can use

    # Floyd's algorithm: a uniform k-subset of range(population), row-wise.
    chosen = np.full((n, columns), -1, dtype=np.int64)
    for j in range(columns):
        active = j < k
        upper = population - k + j  # inclusive upper bound for this slot
        t = np.floor(rng.random(n) * (upper + 1)).astype(np.int64)
        seen = (chosen[:, :j] == t[:, None]).any(axis=1)
        chosen[:, j] = np.where(active, np.where(seen, upper, t), -1)
    _skip_uniforms(rng, n, n_donors - columns)  # the unused slots' draws, as the uncapped loop made them

    if allow_self:
        member = chosen
    else:  # skip the image itself: the t-th *other* member of the class
        member = (position[:, None] + 1 + chosen) % class_size[:, None]
    donors_sorted = np.where(chosen >= 0, order[class_start[:, None] + member], -1)
    donors = np.empty_like(donors_sorted)
    donors[order] = donors_sorted
    n_valid = np.empty_like(k)
    n_valid[order] = k
    return donors, n_valid


def _skip_uniforms(rng: np.random.Generator, n: int, slots: int) -> None:
    """Advance ``rng`` past ``slots`` calls of ``rng.random(n)`` (one 64-bit draw per float64)."""
    if slots <= 0 or n == 0:
        return
    bit_generator = rng.bit_generator
    if isinstance(bit_generator, (np.random.PCG64, np.random.PCG64DXSM)):  # advance counts 64-bit draws
        bit_generator.advance(slots * n)
        return
    chunk = max(1, _CHUNK_SEGMENTS // n)
    for lo in range(0, slots, chunk):
        rng.random((min(chunk, slots - lo), n))


def _draw_sources(codes: np.ndarray, grid: tuple[int, int], mixing: Mixing, rng: np.random.Generator) -> np.ndarray:
    """For every block of every image, the original image it comes from (the random part of PBM).

    ``codes`` are class codes (N,), ``grid`` the blocks per column and row; returns
    ``sources`` of shape (N, gh, gw), int64.
    """
    n = codes.shape[0]
    gh, gw = grid
    sources = np.broadcast_to(np.arange(n, dtype=np.int64)[:, None, None], (n, gh, gw)).copy()
    rows = np.arange(n)[:, None, None]
    for _ in range(mixing.rounds):
        # Algorithm 1 draws the N_s donors inside the rounds loop (its line 8).
        donors, n_valid = _draw_donors(codes, mixing.n_donors, mixing.allow_self, rng)
        replace = rng.random((n, gh, gw)) < mixing.p
        slot = np.floor(rng.random((n, gh, gw)) * n_valid[:, None, None]).astype(np.int64)
        replace &= n_valid[:, None, None] > 0
        donor_block = donors[rows, np.minimum(slot, donors.shape[1] - 1)]
        np.copyto(sources, donor_block, where=replace)
    return sources


def gather_blocks(images: np.ndarray, sources: np.ndarray, *, out: np.ndarray | None = None,
                  workers: int | None = None) -> np.ndarray:
    """Assemble images from blocks: block (a, b) of output i is block (a, b) of ``images[sources[i, a, b]]``.

    Parameters
    ----------
    images : ndarray of shape (N, H, W) or (N, H, W, C), uint8
    sources : ndarray of shape (M, gh, gw), int
        Source image per output block; gh and gw must divide H and W.
    out : ndarray of shape (M, H, W[, C]), uint8, optional
        Where to write (e.g. a memory map on disk, or a reused chunk buffer); C-contiguous
        and not overlapping ``images``. A new array when None.
    workers : int, optional
        Threads that gather chunks of outputs at once (``np.take`` releases the GIL);
        default: the cores this process may use. The bytes do not depend on it.

    Returns
    -------
    ndarray of shape (M, H, W[, C]), uint8
        ``out`` when given; ``images`` is not modified. ``images`` may be a memory map:
        it is read a chunk of outputs at a time, never copied whole.

    Notes
    -----
    One ``np.take`` over rows of a block (``bw * C`` contiguous bytes), in chunks of
    images, written straight into the output: memory is the output plus a small
    index array.
    """
    images = np.ascontiguousarray(check_images(images))
    n, h, w = images.shape[:3]
    sources = np.asarray(sources)
    workers = usable_cores() if workers is None else check_positive_int(workers, name="workers")
    m, gh, gw = sources.shape
    if h % gh or w % gw:
        raise ValueError(f"a grid of {gh} x {gw} blocks does not divide images of {h} x {w}")
    if sources.size and (sources.min() < 0 or sources.max() >= n):
        raise ValueError(f"sources must index the {n} images, got values outside [0, {n})")
    bh, bw = h // gh, w // gw
    channels = images.shape[3] if images.ndim == 4 else 1
    segments = images.reshape(n * h * gw, bw * channels)  # one row of one block each
    if out is None:
        out = np.empty((m,) + images.shape[1:], dtype=np.uint8)
    elif (not isinstance(out, np.ndarray) or out.dtype != np.uint8 or out.shape != (m,) + images.shape[1:]
          or not out.flags.c_contiguous or not out.flags.writeable):
        raise ValueError(f"out must be a writeable C-contiguous uint8 array of shape {(m,) + images.shape[1:]}, got "
                         f"{getattr(out, 'dtype', type(out).__name__)} {getattr(out, 'shape', '')}")
    elif np.may_share_memory(out, images):
        raise ValueError("out overlaps images; give the mixed images their own array")
    out_segments = out.reshape(m * h * gw, bw * channels)
    # Segment (a, r, b) of image s sits at ((s * gh + a) * bh + r) * gw + b.
    a = np.arange(gh)[:, None, None]
    r = np.arange(bh)[None, :, None]
    b = np.arange(gw)[None, None, :]
    offset = ((a * bh + r) * gw + b).astype(np.int64)  # (gh, bh, gw)
    per_image = h * gw
    chunk = max(1, _CHUNK_SEGMENTS // per_image)

    def gather(lo: int) -> None:
        src = sources[lo : lo + chunk].astype(np.int64)  # (c, gh, gw)
        index = src[:, :, None, :] * per_image + offset[None]  # (c, gh, bh, gw)
        np.take(segments, index.reshape(-1), axis=0, out=out_segments[lo * per_image : (lo + len(src)) * per_image])

    starts = range(0, m, chunk)
    if workers == 1 or len(starts) == 1:
        for lo in starts:
            gather(lo)
    else:  # np.take releases the GIL: chunks of outputs on several cores
        with ThreadPoolExecutor(max_workers=min(workers, len(starts))) as pool:
            list(pool.map(gather, starts))
    return out


def mixing_sources(labels, image_shape: tuple[int, ...], *, mixing: Mixing | None = None, seed=None,
                   strict: bool = False, **settings) -> np.ndarray:
    """The block provenance :func:`mix_blocks` gathers: which original each output block comes from.

    Everything :func:`mix_blocks` decides, without reading a pixel (the random part of
    PBM, drawn apart from the pixel copy :func:`gather_blocks`): folder mixing draws this
    once and then gathers chunk by chunk from a memory map (the same seed gives the same
    bytes either way).

    Parameters
    ----------
    labels : sequence of hashables, length N
    image_shape : tuple
        One image's shape ``(H, W[, C])``: the block must divide H and W.
    mixing : Mixing, optional
        The settings; or pass its fields (``block``, ``n_donors``, ``rounds``, ``p``,
        ``allow_self``) as keywords.
    seed, strict
        As in :func:`mix_blocks` (single-image classes warn, or raise with ``strict``).

    Returns
    -------
    sources : ndarray of shape (N, H // bh, W // bw), int64
        ``sources[i, a, b]`` is the index of the original image whose block (a, b) ends up
        in output image i.
    """
    mixing = Mixing.coerce(mixing, **settings)
    grid = mixing.grid(image_shape)
    codes, classes = check_labels(labels, len(labels))
    strict = check_bool(strict, name="strict")
    rng = check_rng(seed)
    counts = np.bincount(codes, minlength=len(classes))
    lonely = [classes[c] for c in np.flatnonzero(counts == 1)]
    if lonely:
        message = (
            f"{len(lonely)} class(es) have a single image and no donor, so they stay unmixed "
            f"(unprotected): {lonely[:10]}{' ...' if len(lonely) > 10 else ''}; "
            f"drop or merge them, or add images"
        )
        if strict:
            raise ValueError(message)
        warnings.warn(message, UserWarning, stacklevel=3)
    return _draw_sources(codes, grid, mixing, rng)


def mix_blocks(images, labels, *, mixing: Mixing | None = None, seed=None, strict: bool = False,
               return_sources: bool = False, out: np.ndarray | None = None, workers: int | None = None,
               **settings):
    """Mix every image with blocks of same-label images (PBM, Algorithm 1 of [1]_).

    Parameters
    ----------
    images : ndarray of shape (N, H, W) or (N, H, W, C), uint8 in [0, 255]
        The training images. Not modified.
    labels : sequence of hashables, length N
        Class of each image; donors always share the label. Two labels are one class
        when equal and of the same kind (``np.int64(1)`` and ``1`` are one class);
        labels Python calls equal across kinds (``1``, ``1.0``, ``True``) and NaN are
        refused rather than merged.
    mixing : Mixing, optional
        The settings (:class:`pbmlib.pbm.settings.Mixing`); or pass its fields as
        keywords:

        - ``block`` : int or (int, int), block height and width in pixels ``(L_b, W_b)``
          (an int is a square); must divide H and W. Whole numbers only.
        - ``n_donors`` : int, default=10. N_s, donors drawn per image and round. A class
          with fewer other images uses all of them (the cost is capped by the class sizes).
        - ``rounds`` : int, default=1. N_t, mixing rounds. Each round redraws donors and
          the mask; a block keeps its own pixels with probability (1 - p) ** rounds
          (donors are other images). With ``allow_self=True`` an image can be its own
          donor, and donors always give their original blocks, so in a class of C images a
          block keeps its own pixels with probability q + (1 - q) / C, q = (1 - p) ** rounds.
        - ``p`` : float, default=0.5. Probability that a block is replaced in one round.
        - ``allow_self`` : bool, default=False. Let an image be drawn as its own donor (the
          reference code does); it then keeps more of its own blocks.
    seed : None, int, numpy.random.SeedSequence or numpy.random.Generator
        Pass an int for reproducible output: the same seed gives the same bytes. None
        draws fresh entropy from the operating system.
    strict : bool, default=False
        Raise instead of warning when a class has a single image (it has no donor
        and is left unchanged).
    return_sources : bool, default=False
        Also return the provenance of every block.
    out : ndarray of the shape of ``images``, uint8, optional
        Write the mixed images here (e.g. a ``numpy.lib.format.open_memmap`` on disk, so
        that neither input nor output needs to fit in memory); see :func:`gather_blocks`.
    workers : int, optional
        Threads for the pixel gather (default: every core); the bytes do not depend on it.

    Returns
    -------
    mixed : ndarray of the shape of ``images``, uint8
    sources : ndarray of shape (N, H // bh, W // bw), int64
        Only with ``return_sources=True``: index of the original image each output
        block was copied from.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.integers(0, 256, size=(6, 8, 8, 3), dtype=np.uint8)
    >>> mixed, src = mix_blocks(x, [0, 0, 0, 1, 1, 1], block=(4, 4), seed=0,
    ...                         return_sources=True)
    >>> mixed.shape, src.shape
    ((6, 8, 8, 3), (6, 2, 2))
    """
    images = check_images(images)
    check_labels(labels, images.shape[0])
    return_sources = check_bool(return_sources, name="return_sources")
    sources = mixing_sources(labels, images.shape[1:], mixing=Mixing.coerce(mixing, where="mix_blocks", **settings),
                             seed=seed, strict=strict)
    mixed = gather_blocks(images, sources, out=out, workers=workers)
    return (mixed, sources) if return_sources else mixed
