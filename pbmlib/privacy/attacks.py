"""Attacks on protected training sets: what an attacker can actually do, measured.

- re-identification lives in :mod:`pbmlib.privacy.matchers` (:func:`reidentify`).
- :func:`membership_scores` / :func:`membership_attack`: was a candidate image in the
  protected set? PBM copies blocks unchanged and at their position, so count them:
  identical blocks (``method="exact"``, needs the released bytes) or blocks that are
  clearly nearer to a protected block than to any other image's (``method="robust"``,
  survives JPEG re-encoding and brightness or contrast changes; :data:`MEMBERSHIP_METHODS`).
- :func:`robust_block_scores`: the same robust block match between every probe and every
  gallery image (the ``blocks_robust`` re-identification matcher).
- :func:`reassemble`: rebuild originals from the protected set alone by choosing, at
  every block position, the same-label block whose seams continue its neighbours best
  (a fixed-position jigsaw solver).

References
----------
.. [1] Carlini et al. (2021). Is Private Learning Possible with Instance Encoding?
       IEEE S&P. (InstaHide reversed by clustering encodings.)
.. [2] Chuman, Kurihara, Kiya (2018). On the security of block scrambling-based
       encryption schemes against the jigsaw puzzle solver attacks. IEICE Trans.
"""

from __future__ import annotations

import numpy as np

from .._validation import check_block, check_images, check_labels
from .kernels import block_rows, centre_blocks, chunked_sq_distances, nearest
from .statistics import roc_auc, tpr_at_fpr

__all__ = [
    "MEMBERSHIP_METHODS",
    "block_keys",
    "shared_block_counts",
    "robust_block_scores",
    "membership_scores",
    "membership_attack",
    "reassemble",
]

_HASH_SEED = 0x9E3779B97F4A7C15
#: A block is "found" when its squared distance is below this share of its reference distance.
ROBUST_RATIO = 0.5
# Steepness of the soft vote 1 / (1 + (d / (ratio * r))**4) used to rank (re-identification).
_SOFTNESS = 4

#: Membership attacks by name, with what each needs from the attacker.
MEMBERSHIP_METHODS = {
    "exact": "identical same-position blocks (needs the released bytes: any re-encoding breaks it)",
    "robust": "same-position blocks matched after removing each block's mean, calibrated by the "
              "candidate's nearest other image (survives JPEG, brightness and contrast changes)",
}


def block_keys(images, *, block) -> np.ndarray:
    """A 64-bit key per block that is equal exactly when two blocks at the same position are equal.

    Returns
    -------
    ndarray of shape (N, N_b), uint64
        Random-projection hash of the block's bytes, salted with its position
        (collisions have probability about 2**-64 per pair).
    """
    blocks = block_rows(check_images(images), block, dtype=np.uint64)
    rng = np.random.default_rng(_HASH_SEED)
    weights = rng.integers(1, 2**63, size=blocks.shape[2], dtype=np.uint64) | np.uint64(1)
    salt = rng.integers(1, 2**63, size=blocks.shape[1], dtype=np.uint64)
    with np.errstate(over="ignore"):
        return (blocks * weights).sum(axis=2, dtype=np.uint64) ^ salt


def shared_block_counts(probes, gallery, *, block) -> np.ndarray:
    """Number of identical same-position blocks between every probe and gallery image.

    Returns
    -------
    ndarray of shape (N_probes, N_gallery), int64
    """
    from scipy.sparse import csr_matrix

    kp, kg = block_keys(probes, block=block), block_keys(gallery, block=block)
    _, ids = np.unique(np.concatenate([kp.ravel(), kg.ravel()]), return_inverse=True)
    n_ids = int(ids.max()) + 1
    ip, ig = ids[: kp.size].reshape(kp.shape), ids[kp.size:].reshape(kg.shape)

    def one_hot(index):
        rows = np.repeat(np.arange(index.shape[0]), index.shape[1])
        return csr_matrix((np.ones(index.size, dtype=np.int64), (rows, index.ravel())),
                          shape=(index.shape[0], n_ids))

    return (one_hot(ip) @ one_hot(ig).T).toarray().astype(np.int64)


def _same_images(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, M) bool: which images of ``b`` are byte-identical to each image of ``a``."""
    ka = block_keys(a, block=a.shape[1:3])[:, 0]
    kb = block_keys(b, block=b.shape[1:3])[:, 0]
    return ka[:, None] == kb[None, :]


def robust_block_scores(probes, gallery, *, block, ratio: float = ROBUST_RATIO) -> np.ndarray:
    """How many of each probe's blocks are found in each gallery image, robust to re-encoding.

    Every block has its mean removed (per channel), so a brightness shift does not
    matter; the distance is the mean squared difference of what remains. A probe block
    ``q`` at position ``k`` is found in gallery image ``j`` when ``d(q, g_jk)`` is well
    below the distance ``r_jk`` from ``g_jk`` to the nearest block at ``k`` of any *other*
    gallery image: a soft vote ``1 / (1 + (d / (ratio * r_jk))**4)`` (1 when far below,
    1/2 at ``ratio * r_jk``, 0 when far above; 0 where ``r_jk = 0``, a block the gallery
    holds twice, which identifies no one). The calibration by ``r`` is what makes JPEG
    noise harmless: a copied block stays much nearer its source than to the nearest
    other image's block, while flat blocks (sky, background), which match everything,
    vote for no one.

    Parameters
    ----------
    probes : ndarray (N, H, W[, C]), uint8
        What the attacker holds (e.g. a JPEG copy of the protected set).
    gallery : ndarray (M, H, W[, C]), uint8
        Images to find the blocks in (e.g. the originals).
    block : (int, int)
        Block geometry; blocks of 1 pixel have no content once their mean is removed
        (every score is 0).
    ratio : float, default=0.5
        A squared distance of ``ratio * r`` counts half a vote.

    Returns
    -------
    ndarray of shape (N, M), float64 in [0, N_b]

    Examples
    --------
    >>> x = np.random.default_rng(0).integers(0, 256, (3, 4, 4), dtype=np.uint8)
    >>> scores = robust_block_scores(x, x, block=(2, 2))
    >>> scores.shape, scores.argmax(axis=1), scores.diagonal()
    ((3, 3), array([0, 1, 2]), array([4., 4., 4.]))
    """
    probes, gallery = check_images(probes, name="probes"), check_images(gallery, name="gallery")
    block = check_block(probes.shape[1:3], block)
    ratio = _check_ratio(ratio)
    p, g = centre_blocks(probes, block), centre_blocks(gallery, block)
    m = g.shape[1]
    reference = nearest(g, g, exclude="diagonal")[0]  # (N_b, M): r_jk
    scale = ratio * reference[:, None, :]
    scores = np.zeros((p.shape[1], m), dtype=np.float64)
    for lo, hi, dist in chunked_sq_distances(p, g):
        with np.errstate(divide="ignore", invalid="ignore"):
            vote = 1.0 / (1.0 + (dist / scale) ** _SOFTNESS)
        vote[np.broadcast_to(scale == 0, vote.shape)] = 0.0
        scores[lo:hi] = vote.sum(axis=0)
    return scores


def _check_ratio(ratio) -> float:
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float, np.floating, np.integer)) or not 0 < ratio <= 1:
        raise ValueError(f"ratio must be a number in (0, 1], got {ratio!r}")
    return float(ratio)


def membership_scores(candidates, protected, *, block, tolerance: float = 0.0, method: str = "exact",
                      reference=None, ratio: float = ROBUST_RATIO) -> np.ndarray:
    """Fraction of each candidate's blocks found at the same position in the protected set.

    Parameters
    ----------
    candidates : ndarray (N, H, W[, C]), uint8
    protected : ndarray (M, H, W[, C]), uint8
        What the attacker holds of the released set (the files, or a re-encoded copy).
    block : (int, int)
    tolerance : float, default=0
        ``method="exact"`` only: 0 counts identical blocks only; > 0 also counts
        near-identical ones (mean absolute pixel difference at most ``tolerance``).
    method : {"exact", "robust"}, default="exact"
        ``exact``: identical blocks (:data:`MEMBERSHIP_METHODS`). ``robust``: a block is
        found when, with each block's mean removed (per channel), its squared distance to
        the nearest same-position protected block is below ``ratio`` times its distance to
        the nearest same-position block of any other ``reference`` image. Survives JPEG
        (quality 75 and 95) and brightness or contrast changes; flat blocks, which match
        everything, are never found.
    reference : ndarray (R, H, W[, C]), uint8, optional
        ``method="robust"`` only: images the attacker holds besides the candidate, to
        tell a distinctive block from a common one; images byte-identical to the
        candidate are left out. Default: the other candidates.
        :func:`membership_attack` pools members and non-members here, so both are
        scored against the same reference.
    ratio : float, default=0.5
        ``method="robust"`` only.

    Returns
    -------
    ndarray of shape (N,), float64 in [0, 1]
    """
    candidates = check_images(candidates, name="candidates")
    protected = check_images(protected, name="protected")
    if method not in MEMBERSHIP_METHODS:
        raise ValueError(f"method must be one of {list(MEMBERSHIP_METHODS)}, got {method!r}")
    if candidates.shape[1:] != protected.shape[1:]:
        raise ValueError(f"candidates {candidates.shape[1:]} and protected {protected.shape[1:]} differ in image shape")
    if method == "robust":
        if tolerance != 0:
            raise ValueError(f"tolerance applies to method='exact' only, got tolerance={tolerance!r} with 'robust'")
        ratio = _check_ratio(ratio)
        block = check_block(candidates.shape[1:3], block)
        if reference is None:
            if candidates.shape[0] < 2:
                raise ValueError("robust membership of a single candidate needs reference= images to compare with")
            reference, exclude = candidates, "diagonal"
        else:
            reference = check_images(reference, name="reference")
            if reference.shape[1:] != candidates.shape[1:]:
                raise ValueError(f"reference {reference.shape[1:]} and candidates {candidates.shape[1:]} differ in "
                                 f"image shape")
            exclude = _same_images(candidates, reference)
            if (~exclude).sum(axis=1).min() == 0:
                raise ValueError("reference holds no image besides the candidate itself: pass reference= with "
                                 "other images of the same kind")
        c = centre_blocks(candidates, block)
        found = nearest(c, centre_blocks(protected, block))[0]
        other = nearest(c, centre_blocks(reference, block), exclude=exclude)[0]
        return (found < ratio * other).mean(axis=0)
    if tolerance == 0:
        kc, kp = block_keys(candidates, block=block), block_keys(protected, block=block)
        return np.isin(kc, kp).mean(axis=1)
    bc = block_rows(candidates, block, dtype=np.float32).transpose(1, 0, 2)  # (nb, N, D)
    bp = block_rows(protected, block, dtype=np.float32).transpose(1, 0, 2)  # (nb, M, D)
    found = np.zeros(bc.shape[:2], dtype=bool)
    step = max(1, (1 << 24) // max(1, bc.shape[0] * bp.shape[1]))
    for lo in range(0, bc.shape[1], step):  # chunks of candidates bound the memory
        diff = np.abs(bc[:, lo:lo + step, None, :] - bp[:, None, :, :]).mean(axis=3)
        found[:, lo:lo + step] = (diff <= tolerance).any(axis=2)
    return found.mean(axis=0)


def membership_attack(members, non_members, protected, *, block, tolerance: float = 0.0, method: str = "exact",
                      ratio: float = ROBUST_RATIO) -> dict:
    """Block-matching membership inference against the protected set.

    Parameters
    ----------
    members, non_members : ndarray (N, H, W[, C]), uint8
        Candidates that were (were not) in the protected set; the attack does not know which.
    protected : ndarray (M, H, W[, C]), uint8
        What the attacker holds of the released set.
    block, tolerance, method, ratio
        See :func:`membership_scores`. With ``method="robust"`` every candidate is
        calibrated against the pooled candidates (members and non-members alike).

    Returns
    -------
    dict
        ``auc``, ``tpr_at_1pct_fpr``, ``member_score_mean``, ``non_member_score_mean``.
    """
    if method == "robust":
        members, non_members = check_images(members, name="members"), check_images(non_members, name="non_members")
        pool = np.concatenate([members, non_members])
        kw = dict(block=block, tolerance=tolerance, method=method, reference=pool, ratio=ratio)
    else:
        kw = dict(block=block, tolerance=tolerance, method=method)
    sm = membership_scores(members, protected, **kw)
    sn = membership_scores(non_members, protected, **kw)
    return {"auc": roc_auc(sm, sn), "tpr_at_1pct_fpr": tpr_at_fpr(sm, sn, 0.01),
            "member_score_mean": float(sm.mean()), "non_member_score_mean": float(sn.mean())}


def _edges(blocks: np.ndarray, bh: int, bw: int, c: int):
    """Top, bottom, left, right pixel edges of (N, nb, bh*bw*c) blocks, as float32."""
    x = blocks.reshape(*blocks.shape[:2], bh, bw, c).astype(np.float32)
    flat = lambda e: e.reshape(*blocks.shape[:2], -1)
    return flat(x[:, :, 0]), flat(x[:, :, -1]), flat(x[:, :, :, 0]), flat(x[:, :, :, -1])


def reassemble(protected, labels, *, block, sweeps: int = 3, switch_factor: float = 0.25,
               return_choice: bool = False):
    """Rebuild candidate originals from the protected set alone (a fixed-position jigsaw solver).

    Each protected image is the starting point of its own reconstruction. At every block
    position, the attacker may use any block found at that position in a same-label
    protected image (PBM keeps positions and labels). Positions are updated in a
    chessboard order: each takes the candidate whose edges continue its four
    neighbours best (least squared difference across the seams), ``sweeps`` times.

    Parameters
    ----------
    protected : ndarray (N, H, W[, C]), uint8
    labels : sequence of length N
    block : (int, int)
        Block size (assumed known to the attacker: it can be read off the seams).
    sweeps : int, default=3
    switch_factor : float, default=0.25
        A position leaves the block its own protected image has there only for a
        candidate whose seam cost is below ``switch_factor`` times that block's (the
        protected image keeps about (1 - p)^N_t of its own blocks; 1 = no preference).

    Returns
    -------
    rebuilt : ndarray of the shape of ``protected``, uint8
    choice : ndarray (N, gh, gw), int64
        Only with ``return_choice=True``: index of the protected image each rebuilt
        block was taken from.
    """
    from ..pbm.mixing import gather_blocks

    protected = check_images(protected, name="protected")
    codes, _ = check_labels(labels, protected.shape[0])
    n, h, w = protected.shape[:3]
    bh, bw = check_block((h, w), block)
    c = protected.shape[3] if protected.ndim == 4 else 1
    gh, gw = h // bh, w // bw
    top, bottom, left, right = _edges(block_rows(protected, block), bh, bw, c)  # (N, nb, D)
    choice = np.broadcast_to(np.arange(n)[:, None], (n, gh * gw)).copy()
    pos = np.arange(gh * gw)
    row, col = pos // gw, pos % gw
    neighbours = [  # (offset in positions, valid, edge of the neighbour, edge of the candidate)
        (-gw, row > 0, bottom, top), (gw, row < gh - 1, top, bottom),
        (-1, col > 0, right, left), (1, col < gw - 1, left, right),
    ]
    for _ in range(sweeps):
        for colour in (0, 1):
            active = pos[(row + col) % 2 == colour]
            for code in np.unique(codes):
                members = np.flatnonzero(codes == code)  # the candidates for this class
                cost = np.zeros((members.size, active.size, members.size), dtype=np.float32)
                count = np.zeros(active.size, dtype=np.float32)
                for offset, valid, nb_edge, cand_edge in neighbours:
                    ok = valid[active]
                    a = active[ok]
                    # edge of the neighbour currently placed in each member's reconstruction
                    target = nb_edge[choice[members][:, a + offset], a + offset]  # (m, k, D)
                    cand = cand_edge[members][:, a]  # (m_cand, k, D)
                    cost[:, ok] += ((target**2).sum(-1)[:, :, None] + (cand**2).sum(-1).T[None]
                                    - 2 * np.einsum("ikd,jkd->ikj", target, cand))
                    count[ok] += 1
                np.divide(cost, count[None, :, None], out=cost, where=count[None, :, None] > 0)
                anchor = np.arange(members.size)
                own_cost = cost[anchor, :, anchor].copy()  # (m, k): the anchor's own block
                cost[anchor, :, anchor] = own_cost * switch_factor  # compare others against a bar
                alone = np.flatnonzero(count == 0)  # a 1x1 grid: no seam to judge by, keep the own block
                cost[:, alone, :] = np.inf
                cost[anchor[:, None], alone[None, :], anchor[:, None]] = 0.0
                best_j = np.argmin(cost, axis=2)
                choice[np.ix_(members, active)] = members[best_j]
    choice = choice.reshape(n, gh, gw)
    rebuilt = gather_blocks(protected, choice)
    return (rebuilt, choice) if return_choice else rebuilt
