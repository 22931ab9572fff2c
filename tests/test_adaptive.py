"""Adaptive attacks (pbmlib.privacy.adaptive): the building blocks, the suites, and that they beat the
fixed attacks where a defence was built against those."""

import numpy as np
import pytest

import pbmlib
from pbmlib.data.split import split_dataset
from pbmlib.privacy.adaptive import (
    MEMBERSHIP_ATTACKS,
    REID_ATTACKS,
    adaptive_membership_scores,
    adaptive_reid_distances,
    block_vote_distances,
    denoise,
    mixture_block_distances,
    nearest_block_distances,
    transform_grid,
)
from pbmlib.privacy.attacks import membership_attack
from pbmlib.privacy.matchers import reidentify
from pbmlib.privacy.statistics import roc_auc
from pbmlib.schemes import get_scheme


def membership_auc(attack, members, non_members, protected, block=None):
    return roc_auc(adaptive_membership_scores(members, protected, attack=attack, block=block),
                   adaptive_membership_scores(non_members, protected, attack=attack, block=block))


def reid_top1(attack, originals, protected, block=None):
    """Top-1 re-identification of released i as original i, ties counted against the attacker."""
    distances = adaptive_reid_distances(protected, originals, attack=attack, block=block)
    own = np.diag(distances)
    return float(((distances <= own[:, None]).sum(axis=1) == 1).mean())


@pytest.fixture(scope="module")
def random_images():
    return np.random.default_rng(0).integers(0, 256, (10, 12, 12), dtype=np.uint8)


@pytest.fixture(scope="module")
def faces_split():
    """The bundled faces split as run_study splits them (70 % members, 30 % held out)."""
    train, test = split_dataset(pbmlib.load_faces(), test_fraction=0.3, seed=1)
    return train.images, train.labels, test.images


# -- building blocks ------------------------------------------------------------------------------------

def test_denoise_methods():
    rng = np.random.default_rng(0)
    noisy = np.clip(128 + rng.normal(0, 20, (20, 20, 20)), 0, 255).astype(np.uint8)
    for method, kw in [("gaussian", {}), ("median", {}), ("block_mean", {"block": (5, 5)})]:
        out = denoise(noisy, method=method, **kw)
        assert out.dtype == np.float32 and out.shape == noisy.shape
        assert out.std() < 0.5 * noisy.std()
    means = denoise(noisy, method="block_mean", block=(5, 5)).reshape(20, 4, 5, 4, 5)
    assert np.allclose(means, means[:, :, :1, :, :1])
    np.testing.assert_array_equal(denoise(noisy, method="none"), noisy.astype(np.float32))
    rgb = np.repeat(noisy[..., None], 3, axis=3)
    np.testing.assert_allclose(denoise(rgb)[..., 1], denoise(noisy), atol=1e-4)  # channels filtered on their own


@pytest.mark.parametrize("kw, match", [
    ({"method": "wiener"}, "method must be one of"),
    ({"method": "block_mean"}, "needs block"),
    ({"method": "gaussian", "sigma": 0}, "sigma must be > 0"),
    ({"method": "gaussian", "sigma": "1"}, "sigma must be > 0"),
    ({"method": "median", "size": 0}, "size must be an int >= 1"),
    ({"method": "block_mean", "block": (5, 5)}, "does not divide"),
])
def test_denoise_validates(kw, match, random_images):
    with pytest.raises(ValueError, match=match):
        denoise(random_images, **kw)


def test_nearest_block_distances_same_and_any_position(random_images):
    x = random_images
    assert nearest_block_distances(x, x[::-1], block=(4, 4)).max() == 0  # every block verbatim somewhere
    moved = np.roll(x, 4, axis=2)  # every block one block to the right
    same = nearest_block_distances(x, moved, block=(4, 4))
    anywhere, index = nearest_block_distances(x, moved, block=(4, 4), positions="any", return_index=True)
    assert same.min() > 0 and anywhere.max() == 0
    np.testing.assert_array_equal(index, np.repeat(np.arange(10)[:, None], 9, axis=1))
    d, i = nearest_block_distances(x, x, block=(4, 4), return_index=True)
    assert d.shape == (10, 9) and (i == np.arange(10)[:, None]).all()


def test_normalized_distances_ignore_gain_and_offset(random_images):
    x = random_images.astype(np.float32)
    assert nearest_block_distances(x, 0.7 * x, block=(4, 4)).min() > 1
    assert nearest_block_distances(x, 0.7 * x, block=(4, 4), normalize="gain").max() < 1e-6
    assert nearest_block_distances(x, 0.5 * x + 40, block=(4, 4), normalize="gain").min() > 1e-3
    assert nearest_block_distances(x, 0.5 * x + 40, block=(4, 4), normalize="zscore").max() < 1e-6
    with pytest.raises(ValueError, match="normalize must be one of"):
        nearest_block_distances(x, x, block=(4, 4), normalize="l1")


def test_nearest_block_distances_validates(random_images):
    x = random_images
    with pytest.raises(ValueError, match="positions must be one of"):
        nearest_block_distances(x, x, block=(4, 4), positions="near")
    with pytest.raises(ValueError, match="differ in image shape"):
        nearest_block_distances(x, x[:, :8], block=(4, 4))
    with pytest.raises(ValueError, match="candidates must be uint8 or float"):
        nearest_block_distances(x.astype(np.int64), x, block=(4, 4))
    with pytest.raises(ValueError, match="does not divide"):
        nearest_block_distances(x, x, block=(5, 5))


def test_mixture_finds_averaged_blocks(random_images):
    x = random_images.astype(np.float32)
    background = np.full(x.shape[1:], 100.0, np.float32)
    averaged = (x + 3 * background) / 4  # each candidate mixed in with weight 1/4
    plain = nearest_block_distances(x, averaged, block=(4, 4))
    mixture = mixture_block_distances(x, averaged, block=(4, 4), background=background)
    assert plain.min() > 100 and mixture.max() < 1e-6
    with pytest.raises(ValueError, match=r"weights must be numbers in \(0, 1\]"):
        mixture_block_distances(x, x, block=(4, 4), weights=(0.0,))
    with pytest.raises(ValueError, match="background must have the shape"):
        mixture_block_distances(x, x, block=(4, 4), background=np.zeros(3))


def test_block_votes(random_images):
    x = random_images
    d = block_vote_distances(x, x, block=(4, 4))
    assert d.shape == (10, 10) and (np.diag(d) == -9).all() and (d - np.diag(np.diag(d)) == 0).all()
    stacked = np.concatenate([x[::-1], x[::-1]])  # two copies of each identity, in another order
    d2 = block_vote_distances(x, stacked, block=(4, 4), gallery_index=np.tile(np.arange(10)[::-1], 2), n_gallery=10)
    np.testing.assert_array_equal(d2, d)


def test_transform_grid(random_images):
    x = random_images
    grid = transform_grid(x, angles=(0.0, 10.0), flips=(False, True))
    assert grid.shape == (4, 10, 12, 12) and grid.dtype == np.float32
    np.testing.assert_array_equal(grid[0], x)
    np.testing.assert_array_equal(grid[2], x[:, :, ::-1])
    assert not np.array_equal(grid[1], x)
    assert transform_grid(np.repeat(x[..., None], 3, axis=3), angles=(5.0,), flips=(False,)).shape == (1, 10, 12, 12, 3)


# -- the suites -----------------------------------------------------------------------------------------

def test_every_attack_finds_an_unprotected_set_and_not_an_unrelated_one():
    rng = np.random.default_rng(0)
    x, held_out, other = rng.integers(0, 256, (3, 12, 10, 10), dtype=np.uint8)
    for name, attack in MEMBERSHIP_ATTACKS.items():
        assert membership_auc(name, x, held_out, x, block=(5, 5)) == 1.0, name
    for name in REID_ATTACKS:
        assert reid_top1(name, x, x, block=(5, 5)) == 1.0, name
    assert reid_top1("block_vote", x, other, block=(5, 5)) <= 0.2


def test_attacks_without_block_and_bad_names(random_images):
    x = random_images
    for name, attack in REID_ATTACKS.items():
        if not attack.needs_block:
            assert reid_top1(name, x, x) == 1.0
    with pytest.raises(ValueError, match="attack must be one of"):
        adaptive_membership_scores(x, x, attack="telepathy")
    with pytest.raises(ValueError, match="attack must be one of"):
        adaptive_reid_distances(x, x, attack="telepathy")
    with pytest.raises(ValueError, match="needs block"):
        adaptive_membership_scores(x, x, attack="min_ssd")
    with pytest.raises(ValueError, match="differ in image shape"):
        adaptive_reid_distances(x, x[:, :6], attack="denoised_pixel")


# -- adaptive beats fixed where the defence targets the fixed suite (bundled faces) ----------------------

def test_denoising_and_normalized_matching_find_noised_pbm_members(faces_split):
    """pbm_noise sigma=32 puts the exact-block membership test at chance; the adaptive ones see through it."""
    x, y, held_out = faces_split
    protected = get_scheme("pbm_noise", sigma=32).fit_protect(x, y, seed=0)
    fixed = membership_attack(x, held_out, protected, block=(5, 5))["auc"]
    adaptive = max(membership_auc(a, x, held_out, protected, block=(5, 5))
                   for a in ("min_ssd", "denoised_min_ssd", "normalized"))
    assert fixed == pytest.approx(0.5, abs=0.02)
    assert adaptive > 0.65  # measured 0.76 (normalized)
    assert reid_top1("block_vote", x, protected, block=(5, 5)) > 0.5  # measured 0.81; chance 1/140


def test_position_free_search_finds_shuffled_blocks(faces_split):
    x, y, held_out = faces_split
    protected = get_scheme("pbm_shuffle").fit_protect(x, y, seed=0)
    assert membership_auc("min_ssd", x, held_out, protected, block=(5, 5)) < 0.65  # same-position is fooled
    assert membership_auc("any_position", x, held_out, protected, block=(5, 5)) > 0.8  # measured 0.90


def test_augmentation_search_reidentifies_augmented_pbm(faces_split):
    x, y, held_out = faces_split
    protected = get_scheme("pbm_augment").fit_protect(x, y, seed=0)
    truth = np.arange(len(x))
    fixed = max(reidentify(protected, x, truth, matcher=m, block=(5, 5))["top1"] for m in ("pixel", "blocks"))
    assert fixed < 0.3 and reid_top1("block_vote", x, protected, block=(5, 5)) < 0.4
    assert reid_top1("augment_search", x, protected, block=(5, 5)) > 0.6  # measured 0.81


def test_mosaic_nearest_neighbour_finds_dppix_members(faces_split):
    """DP-Pix at epsilon=1 (m=1 pixel) leaves whole faces recognisable: its guarantee is per m pixels."""
    x, y, held_out = faces_split
    protected = get_scheme("dppix", epsilon=1.0).fit_protect(x, y, seed=0)
    assert membership_auc("min_ssd", x, held_out, protected, block=(5, 5)) < 0.6
    assert membership_auc("image_nn_mosaic", x, held_out, protected, block=(5, 5)) > 0.8
    assert reid_top1("denoised_pixel", x, protected) > 0.8
