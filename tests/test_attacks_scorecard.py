import numpy as np
import pytest

import pbmlib
from pbmlib.privacy.matchers import reidentify
from pbmlib.privacy.attacks import (block_keys, membership_attack, membership_scores, reassemble, roc_auc,
                            shared_block_counts, tpr_at_fpr)
from pbmlib.schemes import SCHEMES, get_scheme
from pbmlib.privacy.matchers import face_matcher_available
from pbmlib.privacy.scorecard import privacy_scorecard


@pytest.fixture(scope="module")
def noise():
    """60 random 20x20 images: every block is unique, so block counts have exact answers."""
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (60, 20, 20), dtype=np.uint8), np.repeat(["a", "b", "c"], 20)


@pytest.mark.parametrize("matcher", ["pixel", "hog", "blocks"])
def test_unprotected_copy_is_fully_reidentified_and_noise_is_not(noise, matcher):
    faces = pbmlib.load_faces().images[:80]
    copy = reidentify(faces.copy(), faces, np.arange(80), matcher=matcher, block=(5, 5))
    assert copy["top1"] == 1.0 and copy["chance_top1"] == pytest.approx(1 / 80)
    random = np.random.default_rng(1).integers(0, 256, faces.shape, dtype=np.uint8)
    assert reidentify(random, faces, np.arange(80), matcher=matcher, block=(5, 5))["top1"] <= 0.1


def test_reid_ties_count_against_the_attacker():
    gallery = np.zeros((4, 8, 8), np.uint8)  # four identical images: no way to tell
    assert reidentify(gallery, gallery, np.arange(4), matcher="pixel")["top1"] == 0.0


def test_block_keys_equal_exactly_for_equal_blocks_at_equal_positions(noise):
    images, _ = noise
    twin = images.copy()
    twin[0, :4, :4] = images[1, :4, :4]
    k, t = block_keys(images, block=(4, 4)), block_keys(twin, block=(4, 4))
    assert t[0, 0] == k[1, 0] and (t[0, 1:] == k[0, 1:]).all()
    assert np.unique(k).size == k.size  # random blocks, and positions are salted
    moved = np.roll(images, 4, axis=2)  # same blocks, other positions
    assert not np.isin(block_keys(moved, block=(4, 4)), k).any()


def test_shared_block_counts_and_verbatim_fraction_match_provenance(noise):
    images, labels = noise
    mixed, sources = pbmlib.mix_blocks(images, labels, block=(4, 5), seed=3, return_sources=True)
    counts = shared_block_counts(mixed, images, block=(4, 5))
    expected = np.array([[np.sum(sources[i] == j) for j in range(60)] for i in range(60)])
    np.testing.assert_array_equal(counts, expected)
    nb = sources[0].size
    present = {(s, a) for s, a in zip(sources.reshape(60, -1).ravel(), np.tile(np.arange(nb), 60))}
    fraction = membership_scores(images, mixed, block=(4, 5)).mean()
    assert fraction == pytest.approx(len(present) / (60 * nb))


def test_membership_rates_on_synthetic_data(noise):
    images, _ = noise
    members, non_members = images[:40], images[40:]
    protected = np.concatenate([members[:20], np.random.default_rng(5).integers(0, 256, (20, 20, 20), np.uint8)])
    result = membership_attack(members, non_members, protected, block=(5, 5))
    assert result["member_score_mean"] == 0.5 and result["non_member_score_mean"] == 0.0
    assert result["auc"] == pytest.approx(0.75)  # half the members perfectly found, half tied with non-members
    assert result["tpr_at_1pct_fpr"] == 0.5
    jpeg_like = np.clip(protected.astype(int) + 1, 0, 255).astype(np.uint8)  # every pixel off by one
    assert membership_scores(members[:20], jpeg_like, block=(5, 5)).mean() == 0.0
    assert membership_scores(members[:20], jpeg_like, block=(5, 5), tolerance=1.0).mean() == 1.0


def test_roc_helpers_known_values():
    assert roc_auc([3, 4], [1, 2]) == 1.0 and roc_auc([1, 2], [3, 4]) == 0.0 and roc_auc([1], [1]) == 0.5
    assert tpr_at_fpr([0.9, 0.8, 0.1], [0.1] * 49 + [0.85], fpr=0.01) == pytest.approx(1 / 3)
    assert tpr_at_fpr([0.9, 0.8, 0.1], [0.1] * 99 + [0.85], fpr=0.01) == pytest.approx(2 / 3)


def test_reassemble_keeps_positions_labels_and_identity(noise):
    images, labels = noise
    mixed = pbmlib.mix_blocks(images, labels, block=(5, 5), seed=0)
    rebuilt, choice = reassemble(mixed, labels, block=(5, 5), return_choice=True)
    assert (labels[choice] == labels[:, None, None]).all()  # only same-label blocks are used
    np.testing.assert_array_equal(rebuilt, pbmlib.gather_blocks(mixed, choice))
    same = reassemble(mixed, labels, block=(5, 5), switch_factor=0.0)  # never leave the own block
    np.testing.assert_array_equal(same, mixed)


def test_reassembly_restores_smooth_images_from_their_blocks():
    """Smooth, distinct gradients: seams identify the right blocks better than chance."""
    h = w = 20
    yy, xx = np.mgrid[0:h, 0:w]
    images = np.stack([np.clip(60 + 4 * k + (3 + k % 5) * yy + (k % 7) * xx, 0, 255) for k in range(30)]).astype(
        np.uint8)
    labels = np.zeros(30, int)
    mixed, sources = pbmlib.mix_blocks(images, labels, block=(5, 5), seed=1, return_sources=True)
    rebuilt = reassemble(mixed, labels, block=(5, 5))
    before = np.abs(mixed.astype(int) - images).mean()
    after = np.abs(rebuilt.astype(int) - images).mean()
    assert after < 0.8 * before  # measured: 30 % closer (24.0 -> 16.9 grey levels)


def test_scorecard_on_copy_noise_and_pbm(noise):
    faces = pbmlib.load_faces()
    x, y = faces.images[::2], faces.labels[::2]
    others = faces.images[1::2]
    copy = privacy_scorecard(x, x.copy(), y, block=(5, 5), non_members=others)
    assert copy["ssim_mean"] == 1.0 and copy["reid_top1"] == 1.0 and copy["blocks_verbatim_fraction"] == 1.0
    assert copy["membership_auc"] == 1.0 and 0 < copy["ssim_floor_mean"] < 0.5
    rnd = np.random.default_rng(2).integers(0, 256, x.shape, dtype=np.uint8)
    noisy = privacy_scorecard(x, rnd, y, block=(5, 5), non_members=others)
    assert noisy["blocks_verbatim_fraction"] == 0 and noisy["reid_top1"] <= 0.1
    assert noisy["membership_auc"] == 0.5
    mixed = pbmlib.mix_blocks(x, y, block=(5, 5), seed=0)
    pbm = privacy_scorecard(x, mixed, y, block=(5, 5), non_members=others)
    assert pbm["reid_top1_blocks"] > 0.9  # mixed faces are re-identified by their blocks
    assert pbm["membership_auc"] > 0.95
    assert pbm["reid_top1"] >= max(pbm["reid_top1_pixel"], pbm["reid_top1_hog"])
    assert 0.4 < pbm["blocks_verbatim_fraction"] < 0.9
    no_block = privacy_scorecard(x, mixed, y)
    assert "membership_auc" not in no_block and "reid_top1_blocks" not in no_block


@pytest.mark.skipif(not face_matcher_available(), reason="optional extra 'face' (dlib-bin) not installed")
def test_face_matcher_reidentifies_copies_not_noise():
    faces = pbmlib.load_faces().images[:40]
    assert reidentify(faces.copy(), faces, np.arange(40), matcher="face")["top1"] == 1.0
    random = np.random.default_rng(1).integers(0, 256, faces.shape, dtype=np.uint8)
    assert reidentify(random, faces, np.arange(40), matcher="face")["top1"] <= 0.15


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
