"""The privacy scorecard (pbmlib.privacy.scorecard): every attack, every kind of copy the attacker holds,
every measure with its floor; plus the schemes and the learned inversion it scores."""

import numpy as np
import pytest

import pbmlib
from pbmlib.privacy.copies import COPY_KINDS
from pbmlib.privacy.matchers import MATCHERS
from pbmlib.privacy.scorecard import privacy_scorecard
from pbmlib.schemes import SCHEMES, get_scheme
from pbmlib.workbench.results import SCORECARD_FIELDS, STUDY_ROW_FIELDS


@pytest.fixture(scope="module")
def faces_halves():
    faces = pbmlib.load_faces()
    return faces.images[::2], faces.labels[::2], faces.images[1::2]


@pytest.fixture(scope="module")
def noise():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (60, 20, 20), dtype=np.uint8), np.repeat(["a", "b", "c"], 20)


def test_scorecard_on_copy_noise_and_pbm(faces_halves):
    x, y, others = faces_halves
    copy = privacy_scorecard(x, x.copy(), y, block=(5, 5), non_members=others)
    assert copy["ssim_mean"] == 1.0 and copy["reid_top1"] == 1.0 and copy["blocks_verbatim_fraction"] == 1.0
    assert copy["membership_auc"] == 1.0 and 0 < copy["ssim_floor_mean"] < 0.5
    assert copy["membership_auc_robust"] > 0.99 and copy["reid_top1_blocks_robust"] == 1.0
    rnd = np.random.default_rng(2).integers(0, 256, x.shape, dtype=np.uint8)
    noisy = privacy_scorecard(x, rnd, y, block=(5, 5), non_members=others)
    assert noisy["blocks_verbatim_fraction"] == 0 and noisy["reid_top1"] <= 0.1
    assert noisy["membership_auc"] == 0.5 and 0.35 < noisy["membership_auc_robust"] < 0.65
    mixed = pbmlib.mix_blocks(x, y, block=(5, 5), seed=0)
    pbm = privacy_scorecard(x, mixed, y, block=(5, 5), non_members=others)
    assert pbm["reid_top1_blocks"] > 0.9  # mixed faces are re-identified by their blocks
    assert pbm["membership_auc"] > 0.95 and pbm["membership_auc_robust"] > 0.95
    assert pbm["reid_top1"] >= max(pbm[f"reid_top1_{m}"] for m in ("pixel", "hog", "blocks", "blocks_robust"))
    assert 0.4 < pbm["blocks_verbatim_fraction"] < 0.9
    no_block = privacy_scorecard(x, mixed, y)
    assert "membership_auc" not in no_block and "reid_top1_blocks" not in no_block
    assert "reid_top1_blocks_robust" not in no_block and "blocks_verbatim_floor" not in no_block


def test_scorecard_scores_each_copy_the_attacker_holds(faces_halves):
    """PBM 5x5 released as JPEG 75: exact block matching is at chance, the robust attacks are not;
    the unsuffixed fields still mean the exact release."""
    x, y, others = faces_halves
    mixed = get_scheme("pbm", block=(5, 5)).fit_protect(x, y, seed=0)
    card = privacy_scorecard(x, mixed, y, block=(5, 5), non_members=others, copies=tuple(COPY_KINDS))
    exact_only = privacy_scorecard(x, mixed, y, block=(5, 5), non_members=others)
    assert {k: v for k, v in card.items() if k in exact_only} == exact_only
    assert 0.4 < card["membership_auc_jpeg75"] < 0.6 and card["reid_top1_blocks_jpeg75"] <= 0.05
    assert card["membership_auc_robust_jpeg75"] > 0.85  # measured 0.97 (TPR at 1 % FPR 0.94)
    assert card["reid_top1_blocks_robust_jpeg75"] > 0.5  # measured 0.88; chance 0.01
    assert card["reid_top1_jpeg75"] >= card["reid_top1_blocks_robust_jpeg75"]
    assert card["reid_top1_attack_jpeg75"] in set(MATCHERS) | {"reassembled"}
    assert card["blocks_verbatim_fraction_jpeg75"] < 0.05  # JPEG leaves almost no block verbatim
    for kind in COPY_KINDS:  # every field is documented, with what the attacker holds
        assert f"reid_top1{'' if kind == 'exact' else '_' + kind}" in card
    assert set(card) <= set(SCORECARD_FIELDS) | set(STUDY_ROW_FIELDS)
    with pytest.raises(ValueError, match="sequence of copy kinds"):
        privacy_scorecard(x, mixed, y, copies="jpeg75")
    with pytest.raises(ValueError, match="unknown kind"):
        privacy_scorecard(x, mixed, y, copies=("exact", "webp"))


def test_scorecard_fields_say_what_the_attacker_holds():
    for kind, holds in COPY_KINDS.items():
        suffix = "" if kind == "exact" else f"_{kind}"
        for name in ("reid_top1", "membership_auc", "membership_auc_robust", "blocks_verbatim_floor",
                     *(f"reid_top1_{m}" for m in MATCHERS)):
            assert SCORECARD_FIELDS[name + suffix].endswith(f"the attacker holds {holds}")


def test_verbatim_blocks_have_a_floor_and_the_estimate_matches_provenance():
    """At 1x1 blocks many grey levels coincide by chance: the raw share over-counts the copies,
    the floor-corrected estimate does not."""
    faces = pbmlib.load_faces()
    x, y, others = faces.images[::2], faces.labels[::2], faces.images[1::2]
    mixed, sources = pbmlib.mix_blocks(x, y, block=(1, 1), seed=0, return_sources=True)
    n, nb = len(x), sources[0].size
    present = np.zeros((n, nb), bool)
    present[sources.reshape(n, -1), np.broadcast_to(np.arange(nb), (n, nb))] = True
    card = privacy_scorecard(x, mixed, y, block=(1, 1), non_members=others, matchers=("pixel",), reassembly=False)
    assert card["blocks_verbatim_fraction"] > present.mean() + 0.05  # 0.82 against 0.70 really copied
    assert card["blocks_verbatim_floor"] > 0.3  # non-members already "found"
    assert card["blocks_copied_estimate"] == pytest.approx(present.mean(), abs=0.02)


def test_run_study_passes_copies_to_the_scorecard():
    from pbmlib.learn.studies import run_study

    data = pbmlib.load_faces()
    table, _ = run_study(data, [get_scheme("pbm", block=(5, 5))], train=False, scorecard=True,
                         matchers=("pixel", "blocks", "blocks_robust"), copies=("exact", "jpeg95"), seed=0)
    row = table.iloc[0]
    assert row["membership_auc_robust_jpeg95"] > 0.85 and row["reid_top1_blocks_robust_jpeg95"] > 0.5
    assert set(table.columns) <= set(SCORECARD_FIELDS) | set(STUDY_ROW_FIELDS)


def test_baseline_schemes_known_outputs():
    x = np.zeros((2, 10, 10), np.uint8)
    x[:, :5] = 200
    pix = get_scheme("pixelate", cell=5).fit_protect(x, [0, 1])
    np.testing.assert_array_equal(pix, x)  # already constant per 5x5 cell
    y = x.copy()
    y[0, 0, 0] = 0
    assert get_scheme("pixelate", cell=5).fit_protect(y, [0, 1])[0, 0, 0] == 192  # (24*200)/25
    masked = get_scheme("mask", fraction=0.4).fit_protect(np.full((1, 10, 10), 9, np.uint8), [0])
    assert (masked[0, 3:7, 3:7] == 0).all() and masked.sum() == 9 * 84
    flat = get_scheme("blur", sigma=1.5).fit_protect(np.full((1, 8, 8, 3), 77, np.uint8), [0])
    assert (flat == 77).all()
    with pytest.raises(ValueError, match="does not divide"):
        get_scheme("pixelate", cell=3).fit_protect(x, [0, 1])
    with pytest.raises(ValueError, match="unknown scheme"):
        get_scheme("rot13")
    with pytest.raises(ValueError, match="bad parameters"):
        get_scheme("blur", radius=2)
    assert {"pbm", "blur", "pixelate", "mask", "none"} <= set(SCHEMES)


def test_pbm_scheme_is_mix_blocks(noise):
    images, labels = noise
    scheme = get_scheme("pbm", block=(5, 4), n_donors=3, rounds=2)
    np.testing.assert_array_equal(scheme.fit_protect(images, labels, seed=4),  # mixes on the fitted stream
                                  pbmlib.mix_blocks(images, labels, block=(5, 4), n_donors=3, rounds=2,
                                                    seed=np.random.default_rng(scheme.seeds_[0])))
    assert not scheme.transforms_test and scheme.label == "pbm block=5x4 n_donors=3 rounds=2"
    assert get_scheme("pbm", block=(5, 5)).label == "pbm block=5x5"


def test_learned_inversion_undoes_a_learnable_transform():
    from pbmlib.learn.inversion import learned_inversion

    faces = pbmlib.load_faces().images
    public, targets = faces[::2], faces[1::2]
    negative = lambda a: 255 - a  # an invertible transform the network must learn
    inverted = learned_inversion(negative(public), public, negative(targets), epochs=30, seed=0)
    assert inverted.shape == targets.shape and inverted.dtype == np.uint8
    assert pbmlib.ssim_scores(targets, inverted).mean() > 0.8
    assert pbmlib.ssim_scores(targets, negative(targets)).mean() < 0.1


def test_scorecard_counts_inversion_in_the_worst_case():
    from pbmlib.learn.inversion import learned_inversion
    faces = pbmlib.load_faces()
    x, y, public = faces.images[::2], faces.labels[::2], faces.images[1::2]
    inverted = learned_inversion(255 - public, public, 255 - x, epochs=30, seed=0)
    card = privacy_scorecard(x, 255 - x, y, matchers=("pixel",), inverted=inverted)
    assert card["reid_top1_pixel"] < 0.2 and card["reid_top1_inverted"] > 0.9
    assert card["reid_top1_attack"] == "inverted" and card["inverted_ssim_mean"] > 0.8
