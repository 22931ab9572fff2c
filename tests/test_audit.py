"""The audit (pbmlib.privacy.audit): every attack that knows the mechanism, a calibrated worst case,
intervals, re-identification that means something for every scheme, per class."""

import numpy as np
import pytest

import pbmlib
from pbmlib.data.split import split_dataset
from pbmlib.privacy import AttackSettings, audit, combine_audits
from pbmlib.privacy.audit import AUDIT_FIELDS
from pbmlib.privacy.copies import COPY_KINDS
from pbmlib.schemes import get_scheme

FAST = dict(adaptive=False, shadow_releases=0, reassembly=False, matchers=("pixel", "blocks", "blocks_robust"),
            n_boot=200)


@pytest.fixture(scope="module")
def faces():
    train, test = split_dataset(pbmlib.load_faces(), test_fraction=0.3, seed=0)
    return train.images, train.labels, test.images, test.labels


def run(name, faces, seed=0, **settings):
    x, y, xt, yt = faces
    scheme = get_scheme(name, **({"block": 5} if name == "pbm" else {})).fit(x, y, seed=seed)
    protected, shares = scheme.protect(x, y, return_shares=True)
    return audit(scheme, x, y, protected, non_members=xt, non_member_labels=yt, shares=shares, seed=seed,
                 **{**FAST, **settings})


def test_unprotected_and_pbm_are_found(faces):
    for name in ("none", "pbm"):
        f = run(name, faces).fields
        assert f["worst_membership_auc"] > 0.95 and f["worst_reid_top1"] > 0.9, name
        assert f["worst_membership_auc_low"] <= f["worst_membership_auc"] <= f["worst_membership_auc_high"]
        assert set(f) <= set(AUDIT_FIELDS)
    f = run("pbm", faces).fields
    assert f["mechanism"].startswith("unit 5x5") and "kept with probability 0.5" in f["mechanism"]
    assert f["released_reid_top1"] > 0.9 and f["released_reid_top1_low"] < f["released_reid_top1"]
    assert 0.4 < f["blocks_copied_estimate"] < 0.7 and f["worst_membership_class"] in {"face", "non-face"}


def test_the_calibrated_worst_case_is_at_chance_on_a_release_that_leaks_nothing(faces):
    """A release of images none of the candidates are: every attack is blind, and the worst case chosen
    on the calibration half does not keep the upward bias of the maximum (it is measured on the other)."""
    x, y, xt, yt = faces
    rng = np.random.default_rng(5)
    strangers = np.clip(rng.normal(x.mean(), x.std(), x.shape), 0, 255).astype(np.uint8)
    scheme = get_scheme("none").fit(x, y)
    found = [audit(scheme, x, y, strangers, non_members=xt, non_member_labels=yt, seed=s,
                   **{**FAST, "adaptive": True}) for s in range(4)]
    aucs = [a.fields["worst_membership_auc"] for a in found]
    assert abs(np.mean(aucs) - 0.5) < 0.08
    assert all(a.fields["worst_membership_auc_low"] < 0.5 < a.fields["worst_membership_auc_high"] for a in found)
    assert all(a.fields["worst_reid_top1"] < 0.1 for a in found)
    biased = np.mean([a.attacks.query("task == 'membership'")["evaluation"].max() for a in found])
    assert biased > np.mean(aucs)  # the maximum over attacks on one half is biased upwards


def test_an_attack_below_chance_is_reported_as_such(faces):
    """The release carries the non-members (same-label held-out images), not the members: membership
    scores point the wrong way, and the audit says so instead of flipping them."""
    x, y, xt, yt = faces
    rng = np.random.default_rng(0)
    carried = np.array([rng.choice(np.flatnonzero(yt == label)) for label in y])
    scheme = get_scheme("none").fit(x, y)
    a = audit(scheme, x, y, xt[carried], non_members=xt, non_member_labels=yt, seed=0, **FAST)
    assert a.fields["worst_membership_auc"] < 0.5


def test_content_reidentification_is_defined_for_schemes_that_move_content(faces):
    x, y, xt, yt = faces
    scheme = get_scheme("pbm_average", block=5, k=4, p=1.0).fit(x, y, seed=0)
    protected, shares = scheme.protect(x, y, return_shares=True)
    assert np.allclose(shares.sum(axis=1), 1) and shares.diagonal().max() == 0  # released i holds none of i
    f = audit(scheme, x, y, protected, non_members=xt, non_member_labels=yt, shares=shares, seed=0, **FAST).fields
    assert f["released_reid_top1"] is None  # "released i is original i" means nothing here
    assert f["worst_reid_top1"] > 5 * f["reid_chance_top1"]  # yet its content is found


def test_copies_and_low_fpr_fields_say_what_they_hold(faces):
    a = run("pbm", faces, copies=("exact", "jpeg75"))
    f = a.fields
    assert f["worst_membership_auc_jpeg75"] > 0.8 and "worst_reid_top1_jpeg75" in f
    assert AUDIT_FIELDS["worst_membership_auc_jpeg75"].endswith(COPY_KINDS["jpeg75"].description)
    # 60 non-members (each reports once, cross-fitted) resolve neither 0.1 % nor 1 %: the TPR is at 1/60, said so
    assert f["worst_membership_tpr_at_1pct_fpr"] is None and f["worst_membership_low_fpr"] == pytest.approx(1 / 60)
    assert set(a.attacks["copy"]) == {"exact", "jpeg75"} and a.attacks["chosen"].sum() >= 4
    assert len(a.roc["exact"][0]) == len(a.roc["exact"][1]) > 2


def test_combining_splits_averages_and_narrows(faces):
    x, y, xt, yt = faces
    audits = []
    for s in range(3):
        scheme = get_scheme("pbm_noise", block=5, sigma=128.0).fit(x, y, seed=s)
        protected, shares = scheme.protect(x, y, return_shares=True)
        audits.append(audit(scheme, x, y, protected, non_members=xt, non_member_labels=yt, shares=shares, seed=s,
                            **FAST))
    combined = combine_audits(audits, AttackSettings(**FAST), seed=0)
    single = audits[0].fields
    assert combined["worst_membership_auc"] == pytest.approx(np.mean([a.fields["worst_membership_auc"]
                                                                      for a in audits]))
    width = lambda f: f["worst_membership_auc_high"] - f["worst_membership_auc_low"]  # noqa: E731
    assert width(combined) < width(single) and combined["n_members"] == 3 * single["n_members"]


def test_settings_are_validated():
    with pytest.raises(ValueError, match="unknown matcher"):
        AttackSettings(matchers=("telepathy",))
    with pytest.raises(ValueError, match="copies holds unknown kind"):
        AttackSettings(copies=("exact", "webp"))
    with pytest.raises(ValueError, match="calibration_fraction must be a number"):
        AttackSettings(calibration_fraction=1.0)
    with pytest.raises(ValueError, match="unknown option 'copys'"):
        audit(None, None, None, None, non_members=None, non_member_labels=None, copys=("exact",))


def test_verbatim_blocks_have_a_floor_and_the_estimate_matches_provenance():
    """At 1x1 blocks many grey levels coincide by chance: the raw share over-counts the copies,
    the floor-corrected estimate does not."""
    faces = pbmlib.load_faces()
    x, y, others, other_labels = faces.images[::2], faces.labels[::2], faces.images[1::2], faces.labels[1::2]
    scheme = get_scheme("pbm", block=(1, 1)).fit(x, y, seed=0)
    mixed, sources = pbmlib.mix_blocks(x, y, block=(1, 1), seed=np.random.default_rng(scheme.seeds_[0]),
                                       return_sources=True)
    n, nb = len(x), sources[0].size
    present = np.zeros((n, nb), bool)
    present[sources.reshape(n, -1), np.broadcast_to(np.arange(nb), (n, nb))] = True
    card = audit(scheme, x, y, mixed, non_members=others, non_member_labels=other_labels, seed=0,
                 **{**FAST, "matchers": ("pixel",), "likelihood": False}).fields
    assert card["blocks_verbatim_fraction"] > present.mean() + 0.05  # 0.82 against 0.70 really copied
    assert card["blocks_verbatim_floor"] > 0.3  # non-members already "found"
    assert card["blocks_copied_estimate"] == pytest.approx(present.mean(), abs=0.02)


@pytest.mark.slow
def test_learned_inversion_undoes_a_learnable_transform_and_joins_the_audit():
    from pbmlib.learn.inversion import learned_inversion

    faces = pbmlib.load_faces()
    x, y, public, public_labels = faces.images[::2], faces.labels[::2], faces.images[1::2], faces.labels[1::2]
    inverted = learned_inversion(255 - public, public, 255 - x, epochs=30, seed=0)
    assert inverted.shape == x.shape and inverted.dtype == np.uint8
    assert pbmlib.ssim_scores(x, inverted).mean() > 0.8 and pbmlib.ssim_scores(x, 255 - x).mean() < 0.1
    scheme = get_scheme("none").fit(x, y)
    a = audit(scheme, x, y, 255 - x, non_members=public, non_member_labels=public_labels, inverted=inverted, seed=0,
              **{**FAST, "matchers": ("pixel",), "likelihood": False})
    reid = a.attacks.query("task == 'reid'").set_index("attack")["evaluation"]
    assert reid["pixel"] < 0.2 and reid["inverted"] > 0.9 and a.fields["worst_reid_attack"] == "inverted"


def test_large_sets_ask_about_a_sample_against_the_whole_release(faces):
    f = run("pbm", faces, max_candidates=40).fields
    assert f["n_members"] == 40 and f["n_non_members"] == 40  # stratified samples of 140 and 60
    assert f["worst_membership_auc"] > 0.9 and f["worst_reid_top1"] > 0.9
