"""The privacy scorecard: every measure and attack on one protected set, side by side.

Never SSIM alone: each similarity comes with its chance floor, and the attacks say
what an attacker holding the protected set (and, for re-identification, a gallery of
the originals) can actually do. The paper's brute-force restoration count goes beside
them for comparison, not as evidence.
"""

from __future__ import annotations

import numpy as np

from .._validation import check_images, check_labels
from .attacks import membership_attack, membership_scores, reassemble
from .matchers import available_matchers, reidentify
from .similarity import psnr_scores, same_label_partners, ssim_scores

__all__ = ["privacy_scorecard"]


def _finite_mean(values: np.ndarray) -> float:
    values = values[np.isfinite(values)]
    return float(values.mean()) if values.size else float("inf")


def privacy_scorecard(
    originals,
    protected,
    labels,
    *,
    block: tuple[int, int] | None = None,
    non_members=None,
    matchers=None,
    reassembly: bool = True,
    membership_tolerance: float = 0.0,
    inverted=None,
    seed=0,
) -> dict:
    """Measure one protected training set against its originals.

    Parameters
    ----------
    originals : ndarray (N, H, W[, C]), uint8
        The training images before protection (the evaluator has them; the attacker
        has them only as a gallery for re-identification).
    protected : ndarray of the same shape, uint8
        ``protected[i]`` is the protected version of ``originals[i]``.
    labels : sequence of length N
        Released with the protected set (PBM needs them, so the attacker has them).
    block : (int, int), optional
        Block size for the block-level attacks (the ``blocks`` matcher, membership,
        reassembly, verbatim blocks). For PBM use its block; for other schemes the
        attacker's guess. Without it those attacks are skipped.
    non_members : ndarray (M, H, W[, C]), uint8, optional
        Images of the same distribution that were not in the set (e.g. the test set),
        for membership inference.
    matchers : sequence of str, optional
        Names from :data:`pbmlib.privacy.matchers.MATCHERS` (default: all); those that
        cannot run here (optional extra missing, or no ``block``) are skipped.
    reassembly : bool, default=True
        Run :func:`pbmlib.attacks.reassemble` and score its rebuilt images.
    membership_tolerance : float, default=0
        0 counts identical blocks; > 0 near-identical ones too.
    inverted : ndarray of the shape of ``protected``, uint8, optional
        An attacker's reconstructions of the protected images, e.g. from
        :func:`pbmlib.learn.inversion.learned_inversion`: scored as
        ``inverted_ssim_mean`` and ``reid_top1_inverted``.
    seed : int
        For the chance-floor pairs.

    Returns
    -------
    dict of plain-named numbers
        ``ssim_mean``, ``ssim_floor_mean``, ``ssim_excess``, ``psnr_mean``,
        ``psnr_floor_mean``, ``psnr_excess`` (dB); per matcher ``reid_top1_<m>``,
        ``reid_top5_<m>``; ``reid_chance_top1``, ``reid_chance_top5``; with ``block``:
        ``blocks_verbatim_fraction`` (share of original blocks present unchanged at their
        position somewhere in the protected set), ``reassembled_ssim_mean``,
        ``reid_top1_reassembled`` (pixel matcher on the rebuilt images); with
        ``non_members``: ``membership_auc``, ``membership_tpr_at_1pct_fpr``; and
        ``reid_top1`` (the worst case: the best attack's top-1 rate) with
        ``reid_top1_attack`` (which one).
    """
    originals = check_images(originals, name="originals")
    protected = check_images(protected, name="protected")
    if originals.shape != protected.shape:
        raise ValueError(f"originals {originals.shape} and protected {protected.shape} must have the same shape")
    check_labels(labels, originals.shape[0])
    labels = np.asarray(labels)
    n = originals.shape[0]
    partners = same_label_partners(labels, seed=seed)
    card: dict = {"n_images": n}

    ssim, ssim_floor = ssim_scores(originals, protected), ssim_scores(originals, originals[partners])
    psnr, psnr_floor = psnr_scores(originals, protected), psnr_scores(originals, originals[partners])
    card.update(ssim_mean=float(ssim.mean()), ssim_floor_mean=float(ssim_floor.mean()),
                ssim_excess=float(ssim.mean() - ssim_floor.mean()), psnr_mean=_finite_mean(psnr),
                psnr_floor_mean=_finite_mean(psnr_floor))
    card["psnr_excess"] = card["psnr_mean"] - card["psnr_floor_mean"]

    truth = np.arange(n)
    attacks = {}
    for matcher in available_matchers(matchers, block=block):
        result = reidentify(protected, originals, truth, matcher=matcher, block=block)
        card[f"reid_top1_{matcher}"], card[f"reid_top5_{matcher}"] = result["top1"], result["top5"]
        attacks[matcher] = result["top1"]
    card["reid_chance_top1"], card["reid_chance_top5"] = min(1.0, 1 / n), min(1.0, 5 / n)

    if block is not None:
        card["blocks_verbatim_fraction"] = float(membership_scores(originals, protected, block=block).mean())
        if reassembly:
            rebuilt = reassemble(protected, labels, block=block)
            card["reassembled_ssim_mean"] = float(ssim_scores(originals, rebuilt).mean())
            card["reid_top1_reassembled"] = reidentify(rebuilt, originals, truth, matcher="pixel")["top1"]
            attacks["reassembled"] = card["reid_top1_reassembled"]
    if inverted is not None:
        inverted = check_images(inverted, name="inverted")
        card["inverted_ssim_mean"] = float(ssim_scores(originals, inverted).mean())
        card["reid_top1_inverted"] = reidentify(inverted, originals, truth, matcher="pixel")["top1"]
        attacks["inverted"] = card["reid_top1_inverted"]
    if non_members is not None and block is not None:
        membership = membership_attack(originals, check_images(non_members, name="non_members"), protected, block=block,
                                       tolerance=membership_tolerance)
        card["membership_auc"] = membership["auc"]
        card["membership_tpr_at_1pct_fpr"] = membership["tpr_at_1pct_fpr"]
    if attacks:
        worst = max(attacks, key=attacks.get)
        card["reid_top1"], card["reid_top1_attack"] = attacks[worst], worst
    return card
