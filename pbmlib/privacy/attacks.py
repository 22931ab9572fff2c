"""Attacks on protected training sets: what an attacker can actually do, measured.

- re-identification lives in :mod:`pbmlib.privacy.matchers` (:func:`reidentify`).
- :func:`membership_scores` / :func:`membership_attack`: was a candidate image in the
  protected set? PBM copies blocks unchanged and at their position, so count them.
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

__all__ = [
    "block_keys",
    "shared_block_counts",
    "membership_scores",
    "membership_attack",
    "roc_auc",
    "tpr_at_fpr",
    "reassemble",
]

_HASH_SEED = 0x9E3779B97F4A7C15


def _blocks(images: np.ndarray, block) -> np.ndarray:
    """(N, gh * gw, bh * bw * C) view-copy of the blocks, positions in row-major order."""
    n, h, w = images.shape[:3]
    bh, bw = check_block((h, w), block)
    c = images.shape[3] if images.ndim == 4 else 1
    x = images.reshape(n, h // bh, bh, w // bw, bw, c).transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(n, (h // bh) * (w // bw), bh * bw * c)


def block_keys(images, *, block) -> np.ndarray:
    """A 64-bit key per block that is equal exactly when two blocks at the same position are equal.

    Returns
    -------
    ndarray of shape (N, N_b), uint64
        Random-projection hash of the block's bytes, salted with its position
        (collisions have probability about 2**-64 per pair).
    """
    blocks = _blocks(check_images(images), block).astype(np.uint64)
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


def membership_scores(candidates, protected, *, block, tolerance: float = 0.0) -> np.ndarray:
    """Fraction of each candidate's blocks found at the same position in the protected set.

    Parameters
    ----------
    candidates : ndarray (N, H, W[, C]), uint8
    protected : ndarray (M, H, W[, C]), uint8
    block : (int, int)
    tolerance : float, default=0
        0 counts identical blocks only; > 0 also counts near-identical ones (mean
        absolute pixel difference at most ``tolerance``, e.g. after JPEG re-encoding).

    Returns
    -------
    ndarray of shape (N,), float64 in [0, 1]
    """
    candidates = check_images(candidates, name="candidates")
    protected = check_images(protected, name="protected")
    if tolerance == 0:
        kc, kp = block_keys(candidates, block=block), block_keys(protected, block=block)
        return np.isin(kc, kp).mean(axis=1)
    bc = _blocks(candidates, block).astype(np.float32).transpose(1, 0, 2)  # (nb, N, D)
    bp = _blocks(protected, block).astype(np.float32).transpose(1, 0, 2)  # (nb, M, D)
    found = np.zeros(bc.shape[:2], dtype=bool)
    step = max(1, (1 << 24) // max(1, bc.shape[0] * bp.shape[1]))
    for lo in range(0, bc.shape[1], step):  # chunks of candidates bound the memory
        diff = np.abs(bc[:, lo:lo + step, None, :] - bp[:, None, :, :]).mean(axis=3)
        found[:, lo:lo + step] = (diff <= tolerance).any(axis=2)
    return found.mean(axis=0)


def roc_auc(member_scores, non_member_scores) -> float:
    """Area under the ROC curve (Mann-Whitney U, ties counted half)."""
    from scipy.stats import rankdata

    a, b = np.asarray(member_scores, float), np.asarray(non_member_scores, float)
    ranks = rankdata(np.concatenate([a, b]))
    return float((ranks[: a.size].sum() - a.size * (a.size + 1) / 2) / (a.size * b.size))


def tpr_at_fpr(member_scores, non_member_scores, fpr: float = 0.01) -> float:
    """Share of members flagged when the threshold flags at most ``fpr`` of non-members."""
    a, b = np.asarray(member_scores, float), np.asarray(non_member_scores, float)
    thresholds = np.unique(np.concatenate([a, b, [np.inf]]))
    best = 0.0
    for t in thresholds:  # flag score >= t; few distinct thresholds, not pixels
        if (b >= t).mean() <= fpr:
            best = max(best, float((a >= t).mean()))
    return best


def membership_attack(members, non_members, protected, *, block, tolerance: float = 0.0) -> dict:
    """Block-matching membership inference against the protected set.

    Returns
    -------
    dict
        ``auc``, ``tpr_at_1pct_fpr``, ``member_score_mean``, ``non_member_score_mean``.
    """
    sm = membership_scores(members, protected, block=block, tolerance=tolerance)
    sn = membership_scores(non_members, protected, block=block, tolerance=tolerance)
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
    top, bottom, left, right = _edges(_blocks(protected, block), bh, bw, c)  # (N, nb, D)
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
                cost /= count[None, :, None]
                anchor = np.arange(members.size)
                own_cost = cost[anchor, :, anchor].copy()  # (m, k): the anchor's own block
                cost[anchor, :, anchor] = own_cost * switch_factor  # compare others against a bar
                best_j = np.argmin(cost, axis=2)
                choice[np.ix_(members, active)] = members[best_j]
    choice = choice.reshape(n, gh, gw)
    rebuilt = gather_blocks(protected, choice)
    return (rebuilt, choice) if return_choice else rebuilt
