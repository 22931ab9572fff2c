"""Block-level attacks (pbmlib.privacy.attacks) and the attacker's lossy copies (pbmlib.privacy.copies)."""

import numpy as np
import pytest

import pbmlib
from pbmlib.privacy.attacks import (MEMBERSHIP_METHODS, block_keys, membership_attack, membership_scores, reassemble,
                                    roc_auc, shared_block_counts, tpr_at_fpr)
from pbmlib.privacy.copies import COPY_KINDS, attacker_copy, check_copies
from pbmlib.schemes import get_scheme


@pytest.fixture(scope="module")
def noise():
    """60 random 20x20 images: every block is unique, so block counts have exact answers."""
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (60, 20, 20), dtype=np.uint8), np.repeat(["a", "b", "c"], 20)


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
    # the robust method finds them after the shift as before it (each block's mean is removed)
    robust = membership_attack(members, non_members, jpeg_like, block=(5, 5), method="robust")
    assert robust["member_score_mean"] == 0.5 and robust["tpr_at_1pct_fpr"] == 0.5
    assert robust["non_member_score_mean"] < 0.01  # measured: 1 chance match among 320 non-member blocks
    assert robust == membership_attack(members, non_members, protected, block=(5, 5), method="robust")


def test_robust_membership_reference():
    """The reference tells distinctive blocks from common ones; the candidate itself is never its own reference."""
    rng = np.random.default_rng(2)
    images = rng.integers(0, 256, (12, 10, 10), dtype=np.uint8)
    protected = images[:6]
    default = membership_scores(images, protected, block=(5, 5), method="robust")
    np.testing.assert_array_equal(default, [1.0] * 6 + [0.0] * 6)
    pooled = membership_scores(images, protected, block=(5, 5), method="robust", reference=images)
    np.testing.assert_array_equal(pooled, default)  # identical images are left out of the reference
    # a reference holding twins as near as the protected copies are: nothing is distinctive any more
    jitter = lambda: np.clip(images.astype(int) + rng.integers(-2, 3, images.shape), 0, 255).astype(np.uint8)
    noisy_protected, twins = jitter()[:6], jitter()
    np.testing.assert_array_equal(membership_scores(images, noisy_protected, block=(5, 5), method="robust"),
                                  default)  # found among the other images
    assert membership_scores(images, noisy_protected, block=(5, 5), method="robust", reference=twins).max() == 0.0


@pytest.mark.parametrize("block", [(5, 5), (25, 5)])
def test_robust_membership_survives_jpeg75_on_pbm_faces(block):
    """Exact block matching is at chance on a JPEG-75 copy of PBM faces; the robust match is not."""
    faces = pbmlib.load_faces()
    x, y, others = faces.images[::2], faces.labels[::2], faces.images[1::2]
    held = attacker_copy(get_scheme("pbm", block=block).fit_protect(x, y, seed=0), "jpeg75")
    exact = membership_attack(x, others, held, block=block)
    robust = membership_attack(x, others, held, block=block, method="robust")
    assert 0.4 < exact["auc"] < 0.6 and exact["tpr_at_1pct_fpr"] < 0.05
    assert robust["auc"] > 0.85 and robust["tpr_at_1pct_fpr"] > 0.5  # measured 0.97 / 0.94 (5x5), 0.99 / 0.97


def test_membership_errors(noise):
    images, _ = noise
    with pytest.raises(ValueError, match="method must be one of"):
        membership_scores(images, images, block=(5, 5), method="fuzzy")
    with pytest.raises(ValueError, match="tolerance applies to method='exact'"):
        membership_scores(images, images, block=(5, 5), method="robust", tolerance=2.0)
    with pytest.raises(ValueError, match="single candidate needs reference"):
        membership_scores(images[:1], images, block=(5, 5), method="robust")
    with pytest.raises(ValueError, match="reference holds no image besides"):
        membership_scores(images[:1], images, block=(5, 5), method="robust", reference=images[:1])
    with pytest.raises(ValueError, match="reference .* differ in image shape"):
        membership_scores(images, images, block=(5, 5), method="robust", reference=images[:, :10])
    with pytest.raises(ValueError, match="differ in image shape"):
        membership_scores(images, images[:, :10], block=(5, 5))
    assert set(MEMBERSHIP_METHODS) == {"exact", "robust"}


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


def test_attacker_copies_known_outputs():
    rng = np.random.default_rng(3)
    grey = rng.integers(0, 256, (3, 16, 16), dtype=np.uint8)
    exact = attacker_copy(grey, "exact")
    np.testing.assert_array_equal(exact, grey)
    assert exact is not grey
    bright = attacker_copy(np.array([[[0, 100, 252, 255]]], np.uint8), "brightness")
    np.testing.assert_array_equal(bright, [[[4, 104, 255, 255]]])
    flat = np.full((2, 10, 12), 77, np.uint8)
    for kind in COPY_KINDS:
        if kind != "brightness":
            np.testing.assert_array_equal(attacker_copy(flat, kind), flat)  # a flat image survives every copy
    q95, q75 = attacker_copy(grey, "jpeg95"), attacker_copy(grey, "jpeg75")
    error = lambda a: np.abs(a.astype(int) - grey).mean()
    assert 0 < error(q95) < error(q75)  # lossier at lower quality
    np.testing.assert_array_equal(attacker_copy(grey, "jpeg75"), q75)  # deterministic
    assert error(attacker_copy(grey, "resized")) > error(q75)  # noise does not survive halving
    rgb = rng.integers(0, 256, (2, 16, 16, 3), dtype=np.uint8)
    for kind in COPY_KINDS:
        assert attacker_copy(rgb, kind).shape == rgb.shape and attacker_copy(rgb, kind).dtype == np.uint8
        assert attacker_copy(rgb[..., :1], kind).shape == (2, 16, 16, 1)
    np.testing.assert_array_equal(attacker_copy(grey[..., None], "jpeg75")[..., 0], q75)
    with pytest.raises(ValueError, match="kind must be one of"):
        attacker_copy(grey, "jpeg50")
    with pytest.raises(ValueError, match="1 or 3 channels"):
        attacker_copy(rng.integers(0, 256, (1, 8, 8, 4), dtype=np.uint8), "jpeg75")
    with pytest.raises(ValueError, match="uint8"):
        attacker_copy(grey.astype(float), "exact")
    assert check_copies(["jpeg75", "exact", "jpeg75"]) == ("jpeg75", "exact")
    with pytest.raises(ValueError, match="sequence of copy kinds"):
        check_copies("jpeg75")
    with pytest.raises(ValueError, match="unknown kind"):
        check_copies(("exact", "png"))
