"""The privacy scorecard: every measure and attack on one protected set, side by side.

Never SSIM alone: each similarity comes with its chance floor, and the attacks say
what an attacker holding the protected set (and, for re-identification, a gallery of
the originals) can actually do. The paper's brute-force restoration count goes beside
them for comparison, not as evidence.

What the attacker holds is part of every figure: the released files themselves
(``exact``, the unsuffixed fields) or a lossy copy of them (``copies=``, fields with the
kind as suffix, e.g. ``reid_top1_jpeg75``; :data:`pbmlib.privacy.copies.COPY_KINDS`).
Re-identification and membership also assume the attacker holds the *originals* it asks
about (the exact training files: a gallery, or candidates); other photos of the same
people are not measured here (that needs a dataset with identities).
"""

from __future__ import annotations

import numpy as np

from .._validation import check_images, check_labels
from .attacks import MEMBERSHIP_METHODS, membership_attack, membership_scores, reassemble
from .copies import attacker_copy, check_copies
from .matchers import available_matchers, reidentify
from .similarity import psnr_scores, same_label_partners, ssim_scores

__all__ = ["privacy_scorecard", "copy_suffix", "membership_suffix", "worst_case"]


def copy_suffix(kind: str) -> str:
    """Field suffix of a copy kind: ``""`` for ``"exact"``, else ``"_<kind>"``."""
    return "" if kind == "exact" else f"_{kind}"


def membership_suffix(method: str) -> str:
    """Field suffix of a membership method: ``""`` for ``"exact"``, else ``"_<method>"``."""
    return "" if method == "exact" else f"_{method}"


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
    copies=("exact",),
    seed=0,
) -> dict:
    """Measure one protected training set against its originals.

    Parameters
    ----------
    originals : ndarray (N, H, W[, C]), uint8
        The training images before protection (the evaluator has them; the attacker
        has them only as a gallery for re-identification and as membership candidates).
    protected : ndarray of the same shape, uint8
        ``protected[i]`` is the protected version of ``originals[i]``: the released set.
    labels : sequence of length N
        Released with the protected set (PBM needs them, so the attacker has them).
    block : (int, int), optional
        Block size for the block-level attacks (the ``blocks`` and ``blocks_robust``
        matchers, membership, reassembly, verbatim blocks). For PBM use its block; for
        other schemes the attacker's guess. Without it those attacks are skipped.
    non_members : ndarray (M, H, W[, C]), uint8, optional
        Images of the same distribution that were not in the set (e.g. the test set),
        for membership inference and the verbatim-block floor.
    matchers : sequence of str, optional
        Names from :data:`pbmlib.privacy.matchers.MATCHERS` (default: all); those that
        cannot run here (optional extra missing, or no ``block``) are skipped.
    reassembly : bool, default=True
        Run :func:`pbmlib.privacy.attacks.reassemble` and score its rebuilt images.
    membership_tolerance : float, default=0
        Exact membership: 0 counts identical blocks; > 0 near-identical ones too.
    inverted : ndarray of the shape of ``protected``, uint8, optional
        An attacker's reconstructions of the protected images, e.g. from
        :func:`pbmlib.learn.inversion.learned_inversion`: scored as
        ``inverted_ssim_mean`` and ``reid_top1_inverted`` (exact copy only).
    copies : sequence of str, default=("exact",)
        Kinds of copy of the *protected* set the attacker holds
        (:data:`pbmlib.privacy.copies.COPY_KINDS`: ``"exact"``, ``"jpeg95"``,
        ``"jpeg75"``, ``"resized"``, ``"brightness"``). Every attack runs against each,
        made by :func:`pbmlib.privacy.copies.attacker_copy`; ``exact`` is always scored
        (the unsuffixed fields), the others add the same fields with ``_<kind>``
        appended. The attacker's own images (gallery, candidates) stay exact.
    seed : int
        For the chance-floor pairs.

    Returns
    -------
    dict of plain-named numbers
        Exact copy, measured on the protected set itself: ``ssim_mean``,
        ``ssim_floor_mean``, ``ssim_excess``, ``psnr_mean``, ``psnr_floor_mean``,
        ``psnr_excess`` (dB); ``reid_chance_top1``, ``reid_chance_top5``. Then, for each
        kind of copy (suffix ``""`` for exact, ``_<kind>`` otherwise): per matcher
        ``reid_top1_<m>``, ``reid_top5_<m>``; with ``block``: ``blocks_verbatim_fraction``
        (share of original blocks present unchanged at their position somewhere in the
        held set), ``reassembled_ssim_mean``, ``reid_top1_reassembled`` (pixel matcher on
        the rebuilt images); with ``block`` and ``non_members``:
        ``blocks_verbatim_floor`` (the same share for non-members: coincidence, e.g.
        about 0.4 at 1 x 1 blocks on the faces), ``blocks_copied_estimate`` (the share really
        copied, corrected for coincidence: ``(fraction - floor) / (1 - floor)``, clipped
        to [0, 1]),
        ``membership_auc``, ``membership_tpr_at_1pct_fpr`` (identical blocks) and
        ``membership_auc_robust``, ``membership_tpr_at_1pct_fpr_robust`` (robust block
        match, :data:`pbmlib.privacy.attacks.MEMBERSHIP_METHODS`); and ``reid_top1``
        (the worst case: the best attack's top-1 rate) with ``reid_top1_attack`` (which
        one).
    """
    originals = check_images(originals, name="originals")
    protected = check_images(protected, name="protected")
    if originals.shape != protected.shape:
        raise ValueError(f"originals {originals.shape} and protected {protected.shape} must have the same shape")
    check_labels(labels, originals.shape[0])
    kinds = ("exact",) + tuple(k for k in check_copies(copies) if k != "exact")
    labels = np.asarray(labels)
    if non_members is not None:
        non_members = check_images(non_members, name="non_members")
    if inverted is not None:
        inverted = check_images(inverted, name="inverted")
    names = available_matchers(matchers, block=block)
    n = originals.shape[0]
    partners = same_label_partners(labels, seed=seed)
    card: dict = {"n_images": n}

    ssim, ssim_floor = ssim_scores(originals, protected), ssim_scores(originals, originals[partners])
    psnr, psnr_floor = psnr_scores(originals, protected), psnr_scores(originals, originals[partners])
    card.update(ssim_mean=float(ssim.mean()), ssim_floor_mean=float(ssim_floor.mean()),
                ssim_excess=float(ssim.mean() - ssim_floor.mean()), psnr_mean=_finite_mean(psnr),
                psnr_floor_mean=_finite_mean(psnr_floor))
    card["psnr_excess"] = card["psnr_mean"] - card["psnr_floor_mean"]
    card["reid_chance_top1"], card["reid_chance_top5"] = min(1.0, 1 / n), min(1.0, 5 / n)
    for kind in kinds:
        held = protected if kind == "exact" else attacker_copy(protected, kind)
        card.update(_attacks(originals, held, labels, names=names, block=block, non_members=non_members,
                             reassembly=reassembly, membership_tolerance=membership_tolerance,
                             inverted=inverted if kind == "exact" else None, suffix=copy_suffix(kind)))
    return card


def _attacks(originals, held, labels, *, names, block, non_members, reassembly, membership_tolerance, inverted,
             suffix) -> dict:
    """Every attack against one set the attacker holds; field names end in ``suffix``."""
    n = originals.shape[0]
    truth = np.arange(n)
    card, attacks = {}, {}
    for matcher in names:
        result = reidentify(held, originals, truth, matcher=matcher, block=block)
        card[f"reid_top1_{matcher}{suffix}"], card[f"reid_top5_{matcher}{suffix}"] = result["top1"], result["top5"]
        attacks[matcher] = result["top1"]
    if block is not None:
        fraction = float(membership_scores(originals, held, block=block).mean())
        card[f"blocks_verbatim_fraction{suffix}"] = fraction
        if non_members is not None:
            floor = float(membership_scores(non_members, held, block=block).mean())
            card[f"blocks_verbatim_floor{suffix}"] = floor
            estimate = (fraction - floor) / (1 - floor) if floor < 1 else float("nan")
            card[f"blocks_copied_estimate{suffix}"] = float(np.clip(estimate, 0.0, 1.0))  # nan stays nan
        if reassembly:
            rebuilt = reassemble(held, labels, block=block)
            card[f"reassembled_ssim_mean{suffix}"] = float(ssim_scores(originals, rebuilt).mean())
            card[f"reid_top1_reassembled{suffix}"] = reidentify(rebuilt, originals, truth, matcher="pixel")["top1"]
            attacks["reassembled"] = card[f"reid_top1_reassembled{suffix}"]
    if inverted is not None:
        card[f"inverted_ssim_mean{suffix}"] = float(ssim_scores(originals, inverted).mean())
        card[f"reid_top1_inverted{suffix}"] = reidentify(inverted, originals, truth, matcher="pixel")["top1"]
        attacks["inverted"] = card[f"reid_top1_inverted{suffix}"]
    if non_members is not None and block is not None:
        for method in MEMBERSHIP_METHODS:
            tolerance = membership_tolerance if method == "exact" else 0.0
            result = membership_attack(originals, non_members, held, block=block, method=method, tolerance=tolerance)
            card[f"membership_auc{membership_suffix(method)}{suffix}"] = result["auc"]
            card[f"membership_tpr_at_1pct_fpr{membership_suffix(method)}{suffix}"] = result["tpr_at_1pct_fpr"]
    if attacks:
        worst = max(attacks, key=attacks.get)
        card[f"reid_top1{suffix}"], card[f"reid_top1_attack{suffix}"] = attacks[worst], worst
    return card


def worst_case(card: dict) -> dict:
    """The headline of a scorecard: the strongest re-identification and membership attacks that ran.

    Takes the fixed suite's worst (``reid_top1``; ``membership_auc`` exact and robust) and,
    when present, the adaptive attacks' (``adaptive_reid_top1``, ``adaptive_membership_auc``),
    all on the exact released images.

    Returns
    -------
    dict
        ``worst_reid_top1`` and ``worst_reid_attack``; ``worst_membership_auc`` and
        ``worst_membership_attack`` (absent where no such attack ran).
    """
    reid = {card.get("reid_top1_attack"): card.get("reid_top1"),
            f"adaptive {card.get('adaptive_reid_attack')}": card.get("adaptive_reid_top1")}
    membership = {"blocks exact": card.get("membership_auc"), "blocks robust": card.get("membership_auc_robust"),
                  f"adaptive {card.get('adaptive_membership_attack')}": card.get("adaptive_membership_auc")}
    out = {}
    for kind, found in (("reid", {k: v for k, v in reid.items() if v is not None}),
                        ("membership", {k: v for k, v in membership.items() if v is not None})):
        if found:
            attack = max(found, key=found.get)
            key = "worst_reid_top1" if kind == "reid" else "worst_membership_auc"
            out[key], out[f"worst_{kind}_attack"] = found[attack], attack
    return out
