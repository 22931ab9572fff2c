"""Auditing a release: every attack that knows the published mechanism, a calibrated worst case, intervals.

:func:`audit` takes a *fitted* scheme (it gives the public mechanism, never its key or its
random streams), the originals and their labels, the release, and images that were not
in it. It runs every attack of the workbench against the release as the attacker holds
it (the exact files, or lossy copies):

- membership (was a candidate in the set?): identical and robust block matching, the
  adaptive suite (:mod:`.adaptive`), the mechanism-aware likelihood-ratio attack
  (:mod:`.likelihood`) and its shadow-calibrated variant (the attacker runs the published
  algorithm on candidate subsets with their own randomness, offline LiRA-style);
- re-identification (which original does a released image carry?): the matchers
  (:mod:`.matchers`), reassembly, the learned inversion when given, the adaptive suite,
  the likelihood attack.

Honest figures. **Worst case**: the strongest attack is chosen on a calibration half of
the candidates and reported on the other half (the maximum of many attacks on one set is
biased upwards). Every figure is a **lower bound** on what an attacker achieves: a
stronger attack may exist. **Intervals**: bootstrap for AUC and TPR, for the
re-identification credit; membership TPR at 0.1 % and 1 % FPR only where the non-members
resolve them (:func:`.statistics.low_fpr_rates`). **Re-identification that means
something for every scheme**: per original, does the attacker's best-ranked released
image carry its content? Credited by that image's share of the original's content
against the largest share any released image holds (``shares``: where the content went,
known to the evaluator), beside "released i is original i" where released images keep
their own content. **Per class**: the chosen attacks per label, the worst class named.

What the attacker holds, in every figure: the released images (the kind of copy in the
field's suffix), their labels, and the exact original candidates it asks about.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from .._validation import (Settings, check_bool, check_images, check_labels, check_pair, check_positive_int,
                           check_real, check_rng, spawn_seeds)
from .adaptive import MEMBERSHIP_ATTACKS, REID_ATTACKS, adaptive_membership_scores, adaptive_reid_distances
from .attacks import membership_scores, reassemble
from .copies import COPY_KINDS, attacker_copy, check_copies
from .likelihood import likelihood_scores
from .matchers import available_matchers, pairwise_distances
from .similarity import psnr_scores, same_label_partners, ssim_scores
from .statistics import LOW_FPRS, auc_interval, bootstrap_interval, low_fpr_rates, roc_auc, roc_curve

__all__ = ["AttackSettings", "Audit", "audit", "combine_audits", "AUDIT_FIELDS", "copy_suffix"]


@dataclasses.dataclass(frozen=True)
class AttackSettings(Settings):
    """Which attacks an audit runs and how its figures are reported.

    Parameters
    ----------
    matchers : tuple of str, optional
        Re-identification matchers (:data:`pbmlib.privacy.matchers.MATCHERS`; default all
        that can run here).
    copies : tuple of str, default=("exact",)
        Kinds of copy of the release the attacker holds (:data:`pbmlib.privacy.copies.COPY_KINDS`).
    adaptive : bool, default=True
        The attacks designed against the defences (:mod:`pbmlib.privacy.adaptive`).
    likelihood : bool, default=True
        The mechanism-aware likelihood-ratio attacks.
    shadow_releases : int, default=16
        Shadow releases of the shadow-calibrated likelihood attack (0 leaves it out).
    reassembly : bool, default=True
        The seam-matching reassembly attack.
    inversion : bool, default=False
        The learned inversion (a trained network; the study supplies it).
    inversion_epochs : int, default=60
    attack_block : (int, int), optional
        The attacker's block guess for schemes without geometry of their own.
    calibration_fraction : float, default=0.5
        Share of the candidates (and originals) that choose the strongest attack; the rest
        report it.
    n_boot : int, default=1000
        Bootstrap replicates of every interval.
    level : float, default=0.95
        Confidence level of every interval.
    """

    matchers: tuple | None = None
    copies: tuple = ("exact",)
    adaptive: bool = True
    likelihood: bool = True
    shadow_releases: int = 16
    reassembly: bool = True
    inversion: bool = False
    inversion_epochs: int = 60
    attack_block: tuple | None = None
    calibration_fraction: float = 0.5
    n_boot: int = 1000
    level: float = 0.95

    def __post_init__(self):
        set_field = object.__setattr__
        if self.matchers is not None:
            available_matchers(self.matchers, block=(1, 1))  # unknown names raise
            set_field(self, "matchers", tuple(self.matchers))
        set_field(self, "copies", ("exact",) + tuple(k for k in check_copies(self.copies) if k != "exact"))
        for name in ("adaptive", "likelihood", "reassembly", "inversion"):
            set_field(self, name, check_bool(getattr(self, name), name=name))
        if self.shadow_releases != 0:
            set_field(self, "shadow_releases", check_positive_int(self.shadow_releases, name="shadow_releases"))
        set_field(self, "inversion_epochs", check_positive_int(self.inversion_epochs, name="inversion_epochs"))
        if self.attack_block is not None:
            set_field(self, "attack_block", check_pair(self.attack_block, name="attack_block"))
        set_field(self, "calibration_fraction", check_real(self.calibration_fraction, name="calibration_fraction",
                                                           low=0.0, high=1.0, low_open=True, high_open=True))
        set_field(self, "n_boot", check_positive_int(self.n_boot, name="n_boot"))
        set_field(self, "level", check_real(self.level, name="level", low=0.5, high=1.0, high_open=True))


def copy_suffix(kind: str) -> str:
    """Field suffix of a copy kind: ``""`` for ``"exact"``, else ``"_<kind>"``."""
    return "" if kind == "exact" else f"_{kind}"


_LOW = f"{100 * LOW_FPRS[0]:g}%"
_ONE = f"{100 * LOW_FPRS[1]:g}%"

#: Headline fields on the exact release (``name: meaning``); those in :data:`_PER_COPY` also come
#: with the suffix ``_<kind>`` for every other kind of copy the audit ran.
_EXACT_FIELDS = {
    "mechanism": "what the attacker knows of the scheme (its public mechanism)",
    "n_members": "training images the attacker asks about (members; half choose the attacks, half report)",
    "n_non_members": "held-out images the attacker asks about (non-members)",
    "ssim_mean": "mean SSIM of the released images to their originals",
    "ssim_floor_mean": "mean SSIM of each original to a random same-label original (the chance floor)",
    "ssim_excess": "ssim_mean - ssim_floor_mean",
    "psnr_mean": "mean PSNR (dB) of the released images to their originals",
    "psnr_floor_mean": "PSNR chance floor (dB)",
    "blocks_verbatim_fraction": "share of original blocks found unchanged at their position in the release "
                                "(counts coincidences too: see blocks_verbatim_floor)",
    "blocks_verbatim_floor": "the same share for non-members: coincidental equality",
    "blocks_copied_estimate": "share of original blocks really copied: (fraction - floor) / (1 - floor), clipped",
    "worst_membership_calibration_auc": "the chosen membership attack's AUC on the calibration half",
    "worst_membership_tpr_at_low_fpr": f"the chosen membership attack's TPR at {_LOW} FPR where the non-members "
                                       f"resolve it, else at 1/non-members (worst_membership_low_fpr says which)",
    "worst_membership_low_fpr": "the FPR worst_membership_tpr_at_low_fpr was measured at",
    "worst_membership_tpr_at_1pct_fpr": f"the chosen membership attack's TPR at {_ONE} FPR, null where the "
                                        f"non-members do not resolve it",
    "worst_class_membership_auc": "the chosen membership attack's AUC on the evaluation half of the worst class",
    "worst_membership_class": "that class",
    "reid_chance_top1": "chance credit of re-identification (a random released image)",
    "worst_class_reid_top1": "the chosen re-identification attack's credit on the worst class",
    "worst_reid_class": "that class",
    "released_reid_top1": "'released i is original i' top-1 rate of the strongest attack (calibrated), where "
                          "released images keep their own content (null elsewhere)",
    "released_reid_top1_low": "lower end of its 95 % Wilson interval",
    "released_reid_top1_high": "upper end",
    "released_reid_attack": "which attack that was",
}
_PER_COPY = {
    "worst_membership_auc": "a lower bound on what an attacker achieves: the membership AUC (0.5 = chance; "
                            "below 0.5 the scores point the wrong way) of the attack that was strongest on the "
                            "calibration half, measured on the evaluation half",
    "worst_membership_auc_low": "lower end of its 95 % bootstrap interval",
    "worst_membership_auc_high": "upper end",
    "worst_membership_attack": "which attack that was",
    "worst_reid_top1": "a lower bound on what an attacker achieves: per original, the share of its content in "
                       "the released image the attacker ranks first, against the largest share any released "
                       "image holds (1 = finds the image carrying it); the attack strongest on the calibration "
                       "half, measured on the evaluation half",
    "worst_reid_top1_low": "lower end of its 95 % bootstrap interval",
    "worst_reid_top1_high": "upper end",
    "worst_reid_attack": "which attack that was",
}
#: Every field :func:`audit` / :func:`combine_audits` may return: name -> meaning. The results
#: schema imports it.
AUDIT_FIELDS = {
    **_EXACT_FIELDS,
    **{f"{name}{copy_suffix(kind)}": f"{meaning}; the attacker holds {copy.description}"
       for kind, copy in COPY_KINDS.items() for name, meaning in _PER_COPY.items()},
}


@dataclasses.dataclass
class Audit:
    """One audited release.

    Attributes
    ----------
    fields : dict
        The headline (:data:`AUDIT_FIELDS`), JSON-able.
    attacks : DataFrame
        One row per attack and copy: ``copy``, ``task`` (membership / reid / released_reid),
        ``attack``, ``calibration``, ``evaluation`` (AUC or credit), ``chosen``.
    per_class : DataFrame
        The chosen attacks per class and copy.
    evidence : dict
        Per copy kind, the chosen attacks' evaluation data (for :func:`combine_audits`).
    roc : dict
        Per copy kind, ``(fpr, tpr)`` of the chosen membership attack on the evaluation half.
    """

    fields: dict
    attacks: pd.DataFrame
    per_class: pd.DataFrame
    evidence: dict
    roc: dict


def _halves(labels: np.ndarray, n: int, fraction: float, rng) -> np.ndarray:
    """Boolean calibration mask, stratified by label."""
    calibration = np.zeros(n, bool)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        chosen = rng.permutation(members)[: int(round(fraction * members.size))]
        calibration[chosen] = True
    return calibration


def _tied_credit(scores: np.ndarray, credit: np.ndarray) -> np.ndarray:
    """Per column, the mean credit over the rows tied for the best score (ties count against the attacker
    as random tie-breaking would)."""
    best = np.nanmax(np.where(np.isfinite(scores), scores, -np.inf), axis=0)
    tied = scores >= best[None, :]
    return (credit * tied).sum(axis=0) / np.maximum(tied.sum(axis=0), 1)


@dataclasses.dataclass
class _Release:
    """What every attack needs of one copy of one release."""

    held: np.ndarray
    labels: np.ndarray
    originals: np.ndarray
    candidates: np.ndarray
    candidate_labels: np.ndarray
    block: tuple | None
    scheme: object
    mechanism: object
    tolerance: float
    inverted: np.ndarray | None
    seed: object


def _membership_attacks(release: _Release, settings: AttackSettings) -> dict:
    """name -> scores of every candidate (higher = member)."""
    out = {}
    cands, held, block = release.candidates, release.held, release.block
    if block is not None:
        out["blocks exact"] = membership_scores(cands, held, block=block)
        out["blocks robust"] = membership_scores(cands, held, block=block, method="robust")
    if settings.adaptive:
        for name, attack in MEMBERSHIP_ATTACKS.items():
            if block is not None or not attack.needs_block:
                out[f"adaptive {name}"] = adaptive_membership_scores(cands, held, attack=name, block=block)
    if settings.likelihood and _likelihood_applies(release.mechanism):
        out["likelihood"] = likelihood_scores(release.mechanism, held, release.labels, cands, release.candidate_labels,
                                              copy_scale=release.tolerance).membership
        if settings.shadow_releases:
            out["likelihood shadow-calibrated"] = _shadow_calibrated(release, out["likelihood"],
                                                                     settings.shadow_releases)
    return out


def _likelihood_applies(mechanism) -> bool:
    return not mechanism.augmented and not (mechanism.keyed and mechanism.feature == "pixels")


def _shadow_calibrated(release: _Release, real: np.ndarray, k: int) -> np.ndarray:
    """Offline calibration: each candidate's likelihood score against k shadow releases the attacker
    makes by running the published scheme (own randomness) on random halves of the candidate pool,
    scored where the candidate was left out; the real score as a z-score of those."""
    rng = check_rng(release.seed)
    n = len(release.candidates)
    out_scores = [[] for _ in range(n)]
    share = len(release.originals) / n
    for _ in range(k):  # k shadow releases, each one vectorised likelihood pass
        chosen = rng.random(n) < share
        if chosen.sum() < 2:
            continue
        shadow = release.scheme.protect_public(release.candidates[chosen], release.candidate_labels[chosen],
                                               seed=rng)
        scores = likelihood_scores(release.mechanism, shadow, release.candidate_labels[chosen], release.candidates,
                                   release.candidate_labels, copy_scale=release.tolerance).membership
        for i in np.flatnonzero(~chosen):
            out_scores[i].append(scores[i])
    z = np.zeros(n)
    for i, values in enumerate(out_scores):
        if len(values) >= 2:
            z[i] = (real[i] - np.mean(values)) / (np.std(values) + 1e-6)
    return z


def _reid_attacks(release: _Release, settings: AttackSettings) -> dict:
    """name -> scores (released x originals, higher = more alike)."""
    out = {}
    held, originals, block = release.held, release.originals, release.block
    for matcher in available_matchers(settings.matchers, block=block):
        out[matcher] = -pairwise_distances(held, originals, matcher=matcher, block=block)
    if settings.reassembly and block is not None:
        rebuilt = reassemble(held, release.labels, block=block)
        out["reassembled"] = -pairwise_distances(rebuilt, originals, matcher="pixel")
    if release.inverted is not None:
        out["inverted"] = -pairwise_distances(release.inverted, originals, matcher="pixel")
    if settings.adaptive:
        for name, attack in REID_ATTACKS.items():
            if block is not None or not attack.needs_block:
                out[f"adaptive {name}"] = -adaptive_reid_distances(held, originals, attack=name, block=block)
    if settings.likelihood and _likelihood_applies(release.mechanism):
        scores = likelihood_scores(release.mechanism, held, release.labels, originals, release.labels,
                                   copy_scale=release.tolerance)
        out["likelihood"] = scores.reid
    return out


def audit(scheme, originals, labels, protected, *, non_members, non_member_labels, shares=None, inverted=None,
          settings: AttackSettings | None = None, seed=None, **options) -> Audit:
    """Audit one release with every attack that knows its published mechanism (see the module docstring).

    Parameters
    ----------
    scheme : Scheme
        The fitted scheme that made ``protected`` (its :meth:`~pbmlib.schemes.base.Scheme.mechanism`
        and, for the shadow-calibrated attack, :meth:`~pbmlib.schemes.base.Scheme.protect_public`).
    originals : ndarray of shape (N, H, W[, C]), uint8
        The training images (members; the re-identification gallery).
    labels : sequence of length N
        Released with the set (the attacker has them).
    protected : ndarray of the same shape, uint8
        The release: ``protected[i]`` is released image i.
    non_members, non_member_labels : ndarray (M, H, W[, C]), sequence of length M
        Images of the same distribution that were not in the set.
    shares : sparse or dense (N, N), optional
        ``shares[j, i]``: share of released image j's content from original i
        (``scheme.protect(..., return_shares=True)``); default: the identity.
    inverted : ndarray of the shape of ``protected``, uint8, optional
        A learned inversion's reconstructions of the release (exact copy only).
    settings : AttackSettings, optional
        Or its fields as keywords.
    seed : None, int, SeedSequence or Generator
        The calibration halves, the bootstrap, the shadow releases.

    Returns
    -------
    Audit
    """
    settings = AttackSettings.coerce(settings, where="audit", **options)
    originals, protected = check_images(originals, name="originals"), check_images(protected, name="protected")
    non_members = check_images(non_members, name="non_members")
    if originals.shape != protected.shape or originals.shape[1:] != non_members.shape[1:]:
        raise ValueError(f"originals {originals.shape}, protected {protected.shape} and non_members "
                         f"{non_members.shape} must hold images of one shape (originals and protected one per image)")
    check_labels(labels, len(originals))
    check_labels(non_member_labels, len(non_members))
    labels, non_member_labels = np.asarray(labels), np.asarray(non_member_labels)
    n = len(originals)
    shares = _dense_shares(shares, n)
    halves_seed, boot_seed, shadow_seed = spawn_seeds(seed, 3)
    rng = np.random.default_rng(halves_seed)
    member_calibration = _halves(labels, n, settings.calibration_fraction, rng)
    non_member_calibration = _halves(non_member_labels, len(non_members), settings.calibration_fraction, rng)
    block = scheme.attack_block(originals.shape[1:]) or (
        None if settings.attack_block is None else check_pair(settings.attack_block, name="attack_block"))
    mechanism = scheme.mechanism()
    candidates = np.concatenate([originals, non_members])
    candidate_labels = np.concatenate([labels, non_member_labels])
    fields = {"mechanism": mechanism.describe(), "n_members": n, "n_non_members": len(non_members),
              **_similarity(originals, protected, labels, non_members, block, seed)}
    rows, per_class, evidence, roc = [], [], {}, {}
    for kind in settings.copies:
        release = _Release(attacker_copy(protected, kind), labels, originals, candidates, candidate_labels, block,
                           scheme, mechanism, COPY_KINDS[kind].tolerance, inverted if kind == "exact" else None,
                           shadow_seed)
        found = _evaluate(release, settings, shares, member_calibration, non_member_calibration)
        for row in found["rows"]:
            rows.append({"copy": kind, **row})
        for row in found["per_class"]:
            per_class.append({"copy": kind, **row})
        evidence[kind], roc[kind] = found["evidence"], found["roc"]
    per_class = pd.DataFrame(per_class)
    fields.update(_headline([evidence], settings, boot_seed))
    fields.update(_worst_classes(per_class))
    return Audit(fields, pd.DataFrame(rows), per_class, evidence, roc)


def _dense_shares(shares, n: int) -> np.ndarray:
    if shares is None:
        return np.eye(n)
    dense = shares.toarray() if hasattr(shares, "toarray") else np.asarray(shares, np.float64)
    if dense.shape != (n, n):
        raise ValueError(f"shares must be of shape ({n}, {n}) (released x originals), got {dense.shape}")
    return dense


def _similarity(originals, protected, labels, non_members, block, seed) -> dict:
    partners = same_label_partners(labels, seed=seed)
    ssim, floor = ssim_scores(originals, protected), ssim_scores(originals, originals[partners])
    psnr, psnr_floor = psnr_scores(originals, protected), psnr_scores(originals, originals[partners])
    finite = lambda v: float(v[np.isfinite(v)].mean()) if np.isfinite(v).any() else None  # noqa: E731
    out = {"ssim_mean": float(ssim.mean()), "ssim_floor_mean": float(floor.mean()),
           "ssim_excess": float(ssim.mean() - floor.mean()), "psnr_mean": finite(psnr),
           "psnr_floor_mean": finite(psnr_floor)}
    if block is not None:
        fraction = float(membership_scores(originals, protected, block=block).mean())
        verbatim_floor = float(membership_scores(non_members, protected, block=block).mean())
        estimate = (fraction - verbatim_floor) / (1 - verbatim_floor) if verbatim_floor < 1 else None
        out.update(blocks_verbatim_fraction=fraction, blocks_verbatim_floor=verbatim_floor,
                   blocks_copied_estimate=None if estimate is None else float(np.clip(estimate, 0, 1)))
    return out


def _evaluate(release: _Release, settings: AttackSettings, shares: np.ndarray, member_cal: np.ndarray,
              non_member_cal: np.ndarray) -> dict:
    """Every attack on one copy: per-attack figures on both halves, the chosen ones' evidence."""
    n = len(release.originals)
    rows, per_class = [], []
    members_of = lambda scores, half: scores[:n][half]  # noqa: E731
    non_members_of = lambda scores, half: scores[n:][half]  # noqa: E731
    membership = _membership_attacks(release, settings)
    figures = {}
    for name, scores in membership.items():
        cal = roc_auc(members_of(scores, member_cal), non_members_of(scores, non_member_cal))
        ev = roc_auc(members_of(scores, ~member_cal), non_members_of(scores, ~non_member_cal))
        figures[name] = (cal, ev)
    chosen_membership = max(figures, key=lambda k: figures[k][0]) if figures else None
    for name, (cal, ev) in figures.items():
        rows.append({"task": "membership", "attack": name, "calibration": cal, "evaluation": ev,
                     "chosen": name == chosen_membership})
    evidence = {"member_cal": member_cal, "labels": release.labels}
    roc = None
    if chosen_membership is not None:
        scores = membership[chosen_membership]
        evidence["membership"] = (chosen_membership, members_of(scores, ~member_cal),
                                  non_members_of(scores, ~non_member_cal))
        evidence["membership_cal_auc"] = figures[chosen_membership][0]
        roc = roc_curve(*evidence["membership"][1:])
        member_labels = release.labels[~member_cal]
        non_member_labels = release.candidate_labels[n:][~non_member_cal]
        for label in np.unique(member_labels):
            a = evidence["membership"][1][member_labels == label]
            b = evidence["membership"][2][non_member_labels == label]
            if a.size and b.size:
                per_class.append({"task": "membership", "class": label, "attack": chosen_membership,
                                  "evaluation": roc_auc(a, b), "n_members": int(a.size), "n_non_members": int(b.size)})
    content, own = _reid_figures(_reid_attacks(release, settings), shares, member_cal)
    for task, found in (("reid", content), ("released_reid", own)):
        if not found:
            continue
        chosen = max(found, key=lambda k: found[k][0])
        for name, (cal, ev, _) in found.items():
            rows.append({"task": task, "attack": name, "calibration": cal, "evaluation": ev, "chosen": name == chosen})
        evidence[task] = (chosen, found[chosen][2])
        if task == "reid":
            eval_labels = release.labels[~member_cal]
            for label in np.unique(eval_labels):
                credit = found[chosen][2][eval_labels == label]
                per_class.append({"task": "reid", "class": label, "attack": chosen, "evaluation": float(credit.mean()),
                                  "n_members": int(credit.size), "n_non_members": None})
    evidence["reid_chance"] = float((shares.mean(axis=0) / np.maximum(shares.max(axis=0), 1e-12))[~member_cal].mean())
    return {"rows": rows, "per_class": per_class, "evidence": evidence, "roc": roc}


def _reid_figures(attacks: dict, shares: np.ndarray, member_cal: np.ndarray):
    """Per attack: content credit per original (calibration mean, evaluation mean, evaluation credits),
    and, where released images keep their own content, 'released i is original i'."""
    n = shares.shape[0]
    best_share = np.maximum(shares.max(axis=0), 1e-12)
    own_defined = (shares.argmax(axis=1) == np.arange(n)).mean() >= 0.9
    content, own = {}, {}
    for name, scores in attacks.items():
        scores = np.asarray(scores, np.float64)
        credit = _tied_credit(scores, shares / best_share[None, :])  # per original (column)
        content[name] = (float(credit[member_cal].mean()), float(credit[~member_cal].mean()), credit[~member_cal])
        if own_defined:
            hit = _tied_credit(scores.T, np.eye(n))  # per released image: is its best original itself?
            own[name] = (float(hit[member_cal].mean()), float(hit[~member_cal].mean()), hit[~member_cal])
    return content, own


def _headline(evidences: list[dict], settings: AttackSettings, seed) -> dict:
    """The chosen attacks' figures over one or several audits (splits), with intervals."""
    from .statistics import wilson_interval

    rng = check_rng(seed)
    out = {}
    for kind in settings.copies:
        per_split = [e[kind] for e in evidences if kind in e]
        suffix = copy_suffix(kind)
        if per_split and all("membership" in e for e in per_split):
            groups = [e["membership"][1:] for e in per_split]
            out[f"worst_membership_auc{suffix}"] = float(np.mean([roc_auc(a, b) for a, b in groups]))
            low, high = auc_interval(groups, n_boot=settings.n_boot, level=settings.level, seed=rng)
            out[f"worst_membership_auc_low{suffix}"], out[f"worst_membership_auc_high{suffix}"] = low, high
            out[f"worst_membership_attack{suffix}"] = _names(e["membership"][0] for e in per_split)
            if kind == "exact":
                out.update(_low_fpr(groups))
                out["worst_membership_calibration_auc"] = float(np.mean([e["membership_cal_auc"] for e in per_split]))
        if per_split and all("reid" in e for e in per_split):
            credits = [e["reid"][1] for e in per_split]
            out[f"worst_reid_top1{suffix}"] = float(np.mean([c.mean() for c in credits]))
            low, high = bootstrap_interval(lambda a, b: a.mean(), [(c, c) for c in credits], n_boot=settings.n_boot,
                                           level=settings.level, seed=rng)
            out[f"worst_reid_top1_low{suffix}"], out[f"worst_reid_top1_high{suffix}"] = low, high
            out[f"worst_reid_attack{suffix}"] = _names(e["reid"][0] for e in per_split)
            if kind == "exact":
                out["reid_chance_top1"] = float(np.mean([e["reid_chance"] for e in per_split]))
                if all("released_reid" in e for e in per_split):
                    hits = np.concatenate([e["released_reid"][1] for e in per_split])
                    out["released_reid_top1"] = float(hits.mean())
                    out["released_reid_top1_low"], out["released_reid_top1_high"] = wilson_interval(
                        float(hits.sum()), hits.size, level=settings.level)
                    out["released_reid_attack"] = _names(e["released_reid"][0] for e in per_split)
                else:
                    out.update(released_reid_top1=None, released_reid_top1_low=None, released_reid_top1_high=None,
                               released_reid_attack=None)
    return out


def _names(names) -> str:
    """The chosen attack of every split: one name, or the names with their counts."""
    counts = pd.Series(list(names)).value_counts()
    return counts.index[0] if len(counts) == 1 else ", ".join(f"{k} ({v})" for k, v in counts.items())


def _low_fpr(groups) -> dict:
    members = np.concatenate([a for a, _ in groups])
    non_members = np.concatenate([b for _, b in groups])
    rates = low_fpr_rates(members, non_members)
    low, one = rates[_LOW], rates[_ONE]
    return {"worst_membership_tpr_at_low_fpr": low["tpr"], "worst_membership_low_fpr": low["fpr"],
            "worst_membership_tpr_at_1pct_fpr": one["tpr"] if one["resolved"] else None}


def combine_audits(audits: list[Audit], settings: AttackSettings | None = None, *, seed=None) -> dict:
    """The headline over several audits of the same setting (splits and scheme seeds): figures are means
    over the audits, intervals resample within each audit (see :mod:`pbmlib.privacy.statistics`)."""
    settings = AttackSettings.coerce(settings, where="combine_audits")
    fields = {k: v for k, v in audits[0].fields.items() if k in _EXACT_FIELDS}
    for name in ("ssim_mean", "ssim_floor_mean", "ssim_excess", "psnr_mean", "psnr_floor_mean",
                 "blocks_verbatim_fraction", "blocks_verbatim_floor", "blocks_copied_estimate"):
        values = [a.fields.get(name) for a in audits if a.fields.get(name) is not None]
        if values:
            fields[name] = float(np.mean(values))
    fields["n_members"] = int(sum(a.fields["n_members"] for a in audits))
    fields["n_non_members"] = int(sum(a.fields["n_non_members"] for a in audits))
    fields.update(_headline([a.evidence for a in audits], settings, seed))
    fields.update(_worst_classes(pd.concat([a.per_class for a in audits], ignore_index=True)))
    return fields


def _worst_classes(per_class: pd.DataFrame) -> dict:
    """The worst class of the chosen membership and re-identification attacks on the exact release
    (each class's figure averaged over audits)."""
    out = {}
    if per_class.empty:
        return out
    for task, field, name in (("membership", "worst_class_membership_auc", "worst_membership_class"),
                              ("reid", "worst_class_reid_top1", "worst_reid_class")):
        rows = per_class[(per_class["copy"] == "exact") & (per_class["task"] == task)]
        if not rows.empty:
            means = rows.groupby("class")["evaluation"].mean()
            out[field], out[name] = float(means.max()), str(means.idxmax())
    return out
