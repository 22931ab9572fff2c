"""Auditing a release: every attack that knows the published mechanism, a calibrated worst case, intervals.

:func:`audit` takes a *fitted* scheme (it gives the public mechanism, never its key or its
random streams), the originals and their labels, the release, and images that were not
in it. It runs every attack of the workbench against the release as the attacker holds
it (the exact files, or lossy copies):

- membership (was a candidate in the set?): the mechanism-aware likelihood-ratio attacks
  (:mod:`.likelihood`: the mixture read-out, the one-to-one assignment of released images
  to candidates, a shadow-calibrated variant for which the attacker runs the published
  algorithm on candidate subsets with their own randomness, the sum query for averages;
  :mod:`.transform_search` for a public augmentation), identical and robust block
  matching, the adaptive suite (:mod:`.adaptive`);
- re-identification (which original does a released image carry?): the likelihood and
  transform-search attacks, the matchers (:mod:`.matchers`), reassembly, the learned
  inversion when given, the adaptive suite.

Honest figures. **Worst case**: the maximum of many attacks on one set is biased
upwards, so the audit cross-fits: the attack chosen on one half of the candidates is
reported on the other, both ways (every candidate reports once, no choice sees its own
report); on a half, the mechanism-aware attacks (listed first) are kept unless another
beats them by more than ``selection_tolerance``. Every figure is a **lower bound** on what
an attacker achieves: a stronger attack may exist. **Intervals**: bootstrap for AUC and TPR, for the
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
from .likelihood import likelihood_scores, sum_query_membership
from .matchers import available_matchers, pairwise_distances
from .similarity import psnr_scores, same_label_partners, ssim_scores
from .statistics import (LOW_FPRS, auc_interval, bootstrap_interval, low_fpr_rates, roc_auc, roc_curve,
                         wilson_interval)
from .transform_search import transform_search_scores

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
    max_candidates : int, optional
        Ask about at most this many members and this many non-members (a stratified random
        sample of each; the release and the re-identification gallery stay whole): for large
        sets, where every attack compares every candidate with every released image.
    calibration_fraction : float, default=0.5
        Share of the candidates (and originals) in the first half; the attack chosen on each
        half is reported on the other (cross-fitting: every candidate reports once).
    selection_tolerance : float, default=0.02
        On a half, the first attack listed (the mechanism-aware ones come first) within this
        of the best figure is chosen: selection among near-equal attacks adds noise, not
        strength.
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
    max_candidates: int | None = None
    calibration_fraction: float = 0.5
    selection_tolerance: float = 0.02
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
        if self.max_candidates is not None:
            set_field(self, "max_candidates", check_positive_int(self.max_candidates, name="max_candidates"))
        set_field(self, "calibration_fraction", check_real(self.calibration_fraction, name="calibration_fraction",
                                                           low=0.0, high=1.0, low_open=True, high_open=True))
        set_field(self, "selection_tolerance", check_real(self.selection_tolerance, name="selection_tolerance",
                                                         low=0.0, high=0.5))
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
    "worst_membership_calibration_auc": "the chosen membership attacks' AUC on the halves that chose them",
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
                            "below 0.5 the scores point the wrong way) of the attack chosen on one half of the "
                            "candidates, measured on the other (cross-fitted both ways), mean over splits",
    "worst_membership_auc_low": "lower end of its 95 % bootstrap interval",
    "worst_membership_auc_high": "upper end",
    "worst_membership_attack": "which attack that was",
    "worst_reid_top1": "a lower bound on what an attacker achieves: per original, the share of its content in "
                       "the released image the attacker ranks first, against the largest share any released "
                       "image holds (1 = finds the image carrying it); the attack chosen on one half of the "
                       "originals, measured on the other (cross-fitted both ways), mean over splits",
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


@dataclasses.dataclass
class _Release:
    """What every attack needs of one copy of one release."""

    held: np.ndarray
    labels: np.ndarray
    originals: np.ndarray
    asked: np.ndarray  # the members asked about (indices of originals), first among the candidates
    candidates: np.ndarray
    candidate_labels: np.ndarray
    block: tuple | None
    scheme: object
    mechanism: object
    tolerance: float
    inverted: np.ndarray | None
    seed: object


def _membership_attacks(release: _Release, settings: AttackSettings) -> dict:
    """name -> scores of every candidate (higher = member). The mechanism-aware attacks come first: a tie
    on the calibration half goes to the attack built from the scheme's published mechanism."""
    out = {}
    cands, held, block, mechanism = release.candidates, release.held, release.block, release.mechanism
    kind, found = _mechanism_attack(release, settings, cands, release.candidate_labels)
    if found is not None:
        if found.membership_assignment is not None:
            out[f"{kind} assignment"] = found.membership_assignment
        out[kind] = found.membership
    if kind == "likelihood":
        if settings.shadow_releases:
            out["likelihood shadow-calibrated"] = _shadow_calibrated(release, out["likelihood"],
                                                                     settings.shadow_releases)
        if mechanism.average > 1:
            out["sum query"] = sum_query_membership(held, release.labels, cands, release.candidate_labels)
    if block is not None:
        out["blocks exact"] = membership_scores(cands, held, block=block)
        out["blocks robust"] = membership_scores(cands, held, block=block, method="robust")
    if settings.adaptive:
        for name, attack in MEMBERSHIP_ATTACKS.items():
            if _adaptive_applies(attack, block, mechanism):
                out[f"adaptive {name}"] = adaptive_membership_scores(cands, held, attack=name, block=block)
    return out


def _mechanism_attack(release: _Release, settings: AttackSettings, candidates, candidate_labels):
    """(name, scores) of the attack built from the published mechanism against ``candidates``: the transform
    search for augmented mechanisms, else the likelihood attacks where they apply; (None, None) otherwise."""
    mechanism = release.mechanism
    if not settings.likelihood:
        return None, None
    if mechanism.augmented and mechanism.unit is not None:
        return "transform search", transform_search_scores(mechanism, release.held, release.labels, candidates,
                                                           candidate_labels)
    if _likelihood_applies(mechanism):
        return "likelihood", likelihood_scores(mechanism, release.held, release.labels, candidates,
                                               candidate_labels, copy_scale=release.tolerance)
    return None, None

def _adaptive_applies(attack, block, mechanism) -> bool:
    """Whether an attack of the adaptive suite has what it reads: a block, and augmentation to search."""
    return (block is not None or not attack.needs_block) and (mechanism.augmented or not attack.for_augmented)


def _likelihood_applies(mechanism) -> bool:
    """Whether the likelihood attacks have a feature to compare: not after augmentation (the transform
    search reads that) and not through a key that leaves the raw pixels (the learned inversion does)."""
    return not mechanism.augmented and not (mechanism.keyed and mechanism.feature == "pixels")


def _shadow_calibrated(release: _Release, real: np.ndarray, k: int) -> np.ndarray:
    """Offline calibration: each candidate's likelihood score against k shadow releases the attacker
    makes by running the published scheme (own randomness) on random halves of the candidate pool,
    scored where the candidate was left out; the real score as a z-score of those."""
    rng = check_rng(release.seed)
    n = len(release.candidates)
    out_scores = [[] for _ in range(n)]
    share = len(release.asked) / n  # the members' share of the pool, as in the real release
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
    """name -> scores (released x originals, higher = more alike), the mechanism-aware attacks first."""
    out = {}
    held, originals, block = release.held, release.originals, release.block
    kind, found = _mechanism_attack(release, settings, originals, release.labels)
    if found is not None:
        if found.reid_assignment is not None:
            out[f"{kind} assignment"] = found.reid_assignment
        out[kind] = found.reid
    for matcher in available_matchers(settings.matchers, block=block):
        out[matcher] = -pairwise_distances(held, originals, matcher=matcher, block=block)
    if settings.reassembly and block is not None:
        rebuilt = reassemble(held, release.labels, block=block)
        out["reassembled"] = -pairwise_distances(rebuilt, originals, matcher="pixel")
    if release.inverted is not None:
        out["inverted"] = -pairwise_distances(release.inverted, originals, matcher="pixel")
    if settings.adaptive:
        for name, attack in REID_ATTACKS.items():
            if _adaptive_applies(attack, block, release.mechanism):
                out[f"adaptive {name}"] = -adaptive_reid_distances(held, originals, attack=name, block=block)
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
    shares = _sparse_shares(shares, n)
    halves_seed, boot_seed, shadow_seed = spawn_seeds(seed, 3)
    rng = np.random.default_rng(halves_seed)
    asked = _sample(labels, settings.max_candidates, rng)
    asked_non = _sample(non_member_labels, settings.max_candidates, rng)
    member_calibration = _halves(labels[asked], len(asked), settings.calibration_fraction, rng)
    non_member_calibration = _halves(non_member_labels[asked_non], len(asked_non), settings.calibration_fraction, rng)
    block = scheme.attack_block(originals.shape[1:]) or (
        None if settings.attack_block is None else check_pair(settings.attack_block, name="attack_block"))
    mechanism = scheme.mechanism()
    candidates = np.concatenate([originals[asked], non_members[asked_non]])
    candidate_labels = np.concatenate([labels[asked], non_member_labels[asked_non]])
    fields = {"mechanism": mechanism.describe(), "n_members": len(asked), "n_non_members": len(asked_non),
              **_similarity(originals, protected, labels, non_members, block, seed)}
    rows, per_class, evidence, roc = [], [], {}, {}
    for kind in settings.copies:
        release = _Release(attacker_copy(protected, kind), labels, originals, asked, candidates, candidate_labels,
                           block, scheme, mechanism, COPY_KINDS[kind].tolerance,
                           inverted if kind == "exact" else None, shadow_seed)
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


def _sample(labels: np.ndarray, most: int | None, rng) -> np.ndarray:
    """Sorted indices of at most ``most`` images, every label keeping its share (all without ``most``)."""
    if most is None or len(labels) <= most:
        return np.arange(len(labels))
    from ..data.split import stratified_subsample

    return stratified_subsample(labels, most, seed=rng)


def _sparse_shares(shares, n: int):
    from scipy.sparse import csr_matrix, identity

    if shares is None:
        return identity(n, format="csr", dtype=np.float64)
    found = csr_matrix(shares, dtype=np.float64)
    if found.shape != (n, n):
        raise ValueError(f"shares must be of shape ({n}, {n}) (released x originals), got {found.shape}")
    return found


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


def _choose(figures: dict, tolerance: float) -> str:
    """The first attack (in the listed order: the mechanism-aware ones first) within ``tolerance`` of the best
    figure: a later attack must beat them clearly on the calibration half to be chosen."""
    best = max(figures.values())
    return next(name for name, value in figures.items() if value >= best - tolerance)


def _evaluate(release: _Release, settings: AttackSettings, shares: np.ndarray, member_cal: np.ndarray,
              non_member_cal: np.ndarray) -> dict:
    """Every attack on one copy, cross-fitted: the attack chosen on each half is reported on the other
    (two directions), so every candidate reports once and no choice sees its own report."""
    n = len(release.asked)
    halves = ((member_cal, non_member_cal), (~member_cal, ~non_member_cal))
    rows, per_class = [], []
    evidence = {"membership": [], "reid": [], "released_reid": []}
    membership = _membership_attacks(release, settings)
    figures = [{name: roc_auc(scores[:n][m], scores[n:][nm]) for name, scores in membership.items()}
               for m, nm in halves]
    cal_aucs = []
    for direction, (choose, report) in enumerate(((0, 1), (1, 0))):
        if not membership:
            break
        chosen = _choose(figures[choose], settings.selection_tolerance)
        m, nm = halves[report]
        evidence["membership"].append((chosen, membership[chosen][:n][m], membership[chosen][n:][nm]))
        cal_aucs.append(figures[choose][chosen])
        member_labels, non_member_labels = release.candidate_labels[:n][m], release.candidate_labels[n:][nm]
        for label in np.unique(member_labels):
            a = membership[chosen][:n][m][member_labels == label]
            b = membership[chosen][n:][nm][non_member_labels == label]
            if a.size and b.size:
                per_class.append({"task": "membership", "class": label, "attack": chosen, "direction": direction,
                                  "evaluation": roc_auc(a, b), "n_members": int(a.size), "n_non_members": int(b.size)})
    for name in membership:
        rows.append({"task": "membership", "attack": name, "calibration": figures[0][name],
                     "evaluation": figures[1][name], "chosen": any(name == e[0] for e in evidence["membership"])})
    evidence["membership_cal_auc"] = float(np.mean(cal_aucs)) if cal_aucs else None
    roc = roc_curve(*evidence["membership"][0][1:]) if evidence["membership"] else None
    content, own = _reid_figures(_reid_attacks(release, settings), shares, release.asked)
    for task, found in (("reid", content), ("released_reid", own)):
        if not found:
            continue
        chosen_names = set()
        for direction, (choose, report) in enumerate(((member_cal, ~member_cal), (~member_cal, member_cal))):
            chosen = _choose({name: values[choose].mean() for name, values in found.items()},
                             settings.selection_tolerance)
            chosen_names.add(chosen)
            evidence[task].append((chosen, found[chosen][report]))
            if task == "reid":
                labels = release.labels[release.asked][report]
                for label in np.unique(labels):
                    credit = found[chosen][report][labels == label]
                    per_class.append({"task": "reid", "class": label, "attack": chosen, "direction": direction,
                                      "evaluation": float(credit.mean()), "n_members": int(credit.size),
                                      "n_non_members": None})
        for name, values in found.items():
            rows.append({"task": task, "attack": name, "calibration": float(values[member_cal].mean()),
                         "evaluation": float(values[~member_cal].mean()), "chosen": name in chosen_names})
    asked = shares.tocsc()[:, release.asked]
    best = np.maximum(asked.max(axis=0).toarray().ravel(), 1e-12)
    evidence["reid_chance"] = float((np.asarray(asked.mean(axis=0)).ravel() / best).mean())
    return {"rows": rows, "per_class": per_class, "evidence": evidence, "roc": roc}


def _reid_figures(attacks: dict, shares, asked: np.ndarray):
    """Per attack and asked original: the content credit (the share of its content in the released image the
    attacker ranks first, ties averaged, over the largest share any released image holds), and, where
    released images keep their own content, whether released image i's best original is i (per asked i)."""
    columns = shares.tocsc()[:, asked]
    best_share = np.maximum(columns.max(axis=0).toarray().ravel(), 1e-12)
    diagonal = shares.diagonal()
    own_defined = (diagonal >= shares.max(axis=1).toarray().ravel() - 1e-12).mean() >= 0.9
    content, own = {}, {}
    for name, scores in attacks.items():
        scores = np.asarray(scores, np.float64)
        column_scores = np.where(np.isfinite(scores[:, asked]), scores[:, asked], -np.inf)
        tied = column_scores >= column_scores.max(axis=0, keepdims=True)
        credit = np.asarray(columns.multiply(tied).sum(axis=0)).ravel() / np.maximum(tied.sum(axis=0), 1)
        content[name] = credit / best_share
        if own_defined:
            row_scores = np.where(np.isfinite(scores[asked]), scores[asked], -np.inf)
            tied_rows = row_scores >= row_scores.max(axis=1, keepdims=True)
            own[name] = tied_rows[np.arange(len(asked)), asked] / np.maximum(tied_rows.sum(axis=1), 1)
    return content, own


def _edge_safe(point: float, interval: tuple, n: int, level: float) -> tuple[float, float]:
    """A bootstrap interval, widened to the Wilson interval of ``n`` trials where the figure sits within
    ``1 / n`` of 0 or 1: a perfect sample resamples to itself, so the bootstrap cannot see past it."""
    if n and (point >= 1 - 1 / n or point <= 1 / n):
        low, high = wilson_interval(int(round(point * n)), n, level=level)
        return min(interval[0], low), max(interval[1], high)
    return interval


def _headline(evidences: list[dict], settings: AttackSettings, seed) -> dict:
    """The chosen attacks' figures over one or several audits (splits), both cross-fitted directions of
    each, with intervals."""
    rng = check_rng(seed)
    out = {}
    for kind in settings.copies:
        per_split = [e[kind] for e in evidences if kind in e]
        suffix = copy_suffix(kind)
        groups = [(a, b) for e in per_split for _, a, b in e["membership"]]
        if groups:
            point = float(np.mean([roc_auc(a, b) for a, b in groups]))
            interval = auc_interval(groups, n_boot=settings.n_boot, level=settings.level, seed=rng)
            n_eff = min(sum(len(a) for a, _ in groups), sum(len(b) for _, b in groups))
            (out[f"worst_membership_auc_low{suffix}"],
             out[f"worst_membership_auc_high{suffix}"]) = _edge_safe(point, interval, n_eff, settings.level)
            out[f"worst_membership_auc{suffix}"] = point
            out[f"worst_membership_attack{suffix}"] = _names(name for e in per_split for name, _, _ in e["membership"])
            if kind == "exact":
                out.update(_low_fpr(groups))
                out["worst_membership_calibration_auc"] = float(np.mean([e["membership_cal_auc"] for e in per_split]))
        credits = [c for e in per_split for _, c in e["reid"]]
        if credits:
            point = float(np.mean([c.mean() for c in credits]))
            interval = bootstrap_interval(lambda a, b: a.mean(), [(c, c) for c in credits], n_boot=settings.n_boot,
                                          level=settings.level, seed=rng)
            (out[f"worst_reid_top1_low{suffix}"],
             out[f"worst_reid_top1_high{suffix}"]) = _edge_safe(point, interval, sum(c.size for c in credits),
                                                                settings.level)
            out[f"worst_reid_top1{suffix}"] = point
            out[f"worst_reid_attack{suffix}"] = _names(name for e in per_split for name, _ in e["reid"])
            if kind == "exact":
                out["reid_chance_top1"] = float(np.mean([e["reid_chance"] for e in per_split]))
                hits = [h for e in per_split for _, h in e["released_reid"]]
                if hits:
                    hits = np.concatenate(hits)
                    out["released_reid_top1"] = float(hits.mean())
                    out["released_reid_top1_low"], out["released_reid_top1_high"] = wilson_interval(
                        int(round(float(hits.sum()))), hits.size, level=settings.level)
                    out["released_reid_attack"] = _names(n for e in per_split for n, _ in e["released_reid"])
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
