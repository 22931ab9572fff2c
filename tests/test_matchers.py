"""Re-identification matchers (pbmlib.privacy.matchers), the robust block matcher included."""

import numpy as np
import pytest

import pbmlib
from pbmlib.privacy.attacks import robust_block_scores
from pbmlib.privacy.copies import attacker_copy
from pbmlib.privacy.matchers import MATCHERS, available_matchers, face_matcher_available, pairwise_distances, reidentify
from pbmlib.schemes import get_scheme


@pytest.fixture(scope="module")
def pbm_faces():
    """The bundled faces split in two halves, the first mixed by PBM 5x5 (the scheme's own seed stream)."""
    faces = pbmlib.load_faces()
    x, y = faces.images[::2], faces.labels[::2]
    return x, y, faces.images[1::2], get_scheme("pbm", block=(5, 5)).fit_protect(x, y, seed=0)


@pytest.mark.parametrize("matcher", ["pixel", "hog", "blocks", "blocks_robust"])
def test_unprotected_copy_is_fully_reidentified_and_noise_is_not(matcher):
    faces = pbmlib.load_faces().images[:80]
    copy = reidentify(faces.copy(), faces, np.arange(80), matcher=matcher, block=(5, 5))
    assert copy["top1"] == 1.0 and copy["chance_top1"] == pytest.approx(1 / 80)
    random = np.random.default_rng(1).integers(0, 256, faces.shape, dtype=np.uint8)
    assert reidentify(random, faces, np.arange(80), matcher=matcher, block=(5, 5))["top1"] <= 0.1


def test_reid_ties_count_against_the_attacker():
    gallery = np.zeros((4, 8, 8), np.uint8)  # four identical images: no way to tell
    assert reidentify(gallery, gallery, np.arange(4), matcher="pixel")["top1"] == 0.0
    assert reidentify(gallery, gallery, np.arange(4), matcher="blocks_robust", block=(4, 4))["top1"] == 0.0


def test_robust_scores_count_copied_blocks_and_ignore_brightness():
    """Probes assembled from known gallery blocks: each scores about its number of blocks from each
    source, and exactly the same after a brightness shift (each block's mean is removed)."""
    rng = np.random.default_rng(0)
    gallery = rng.integers(20, 230, (30, 20, 20), dtype=np.uint8)  # no clipping after +4
    sources = rng.integers(0, 30, (10, 4, 4))
    sources[:, :2] = np.arange(10)[:, None, None]  # probe i: at least half its blocks from gallery i
    probes = pbmlib.gather_blocks(gallery, sources)
    scores = robust_block_scores(probes, gallery, block=(5, 5))
    counts = np.array([[np.sum(sources[i] == j) for j in range(30)] for i in range(10)])
    np.testing.assert_allclose(scores, counts, atol=0.5)
    assert (scores.argmax(axis=1) == np.arange(10)).all()
    shifted = attacker_copy(probes, "brightness")
    assert not np.array_equal(shifted, probes)
    np.testing.assert_allclose(robust_block_scores(shifted, gallery, block=(5, 5)), scores, atol=1e-9)
    # a contrast change is small against the distance to the next-best block
    contrast = np.clip(np.rint(127.5 + 1.05 * (probes.astype(float) - 127.5)), 0, 255).astype(np.uint8)
    np.testing.assert_allclose(robust_block_scores(contrast, gallery, block=(5, 5)), counts, atol=0.5)


def test_flat_blocks_vote_for_no_one():
    """A block the gallery holds twice (here a flat one) identifies no one: its reference distance is 0."""
    rng = np.random.default_rng(1)
    gallery = rng.integers(0, 256, (5, 10, 10), dtype=np.uint8)
    gallery[:, :5, :5] = 128  # the same flat block at the same position everywhere
    scores = robust_block_scores(gallery, gallery, block=(5, 5))
    np.testing.assert_allclose(np.diag(scores), 3.0, atol=1e-6)  # 3 distinctive blocks of 4
    assert robust_block_scores(gallery, gallery, block=(1, 1)).max() == 0.0  # 1-pixel blocks: no content


def test_robust_matcher_survives_jpeg_where_exact_blocks_fail(pbm_faces):
    x, _, _, mixed = pbm_faces
    truth = np.arange(len(x))
    for kind, least in (("exact", 0.95), ("jpeg95", 0.8), ("jpeg75", 0.7), ("brightness", 0.95)):
        held = attacker_copy(mixed, kind)
        robust = reidentify(held, x, truth, matcher="blocks_robust", block=(5, 5))
        assert robust["top1"] > least, kind  # measured 0.99 / 0.92 / 0.88 / 0.99; chance 0.01
        if kind != "exact":
            assert reidentify(held, x, truth, matcher="blocks", block=(5, 5))["top1"] <= 0.05, kind


def test_registry_and_errors():
    assert {"pixel", "hog", "invariant", "mosaic", "blocks", "blocks_robust", "face"} <= set(MATCHERS)
    assert "blocks_robust" in available_matchers(block=(5, 5)) and "blocks_robust" not in available_matchers()
    x = np.zeros((2, 10, 10), np.uint8)
    with pytest.raises(ValueError, match="needs block"):
        pairwise_distances(x, x, matcher="blocks_robust")
    with pytest.raises(ValueError, match="unknown matcher"):
        pairwise_distances(x, x, matcher="blocks_fuzzy")
    with pytest.raises(ValueError, match="ratio"):
        robust_block_scores(x, x, block=(5, 5), ratio=0)
    with pytest.raises(ValueError, match="does not divide"):
        robust_block_scores(x, x, block=(3, 3))


@pytest.mark.skipif(not face_matcher_available(), reason="optional extra 'face' (dlib-bin) not installed")
def test_face_matcher_reidentifies_copies_not_noise():
    faces = pbmlib.load_faces().images[:40]
    assert reidentify(faces.copy(), faces, np.arange(40), matcher="face")["top1"] == 1.0
    random = np.random.default_rng(1).integers(0, 256, faces.shape, dtype=np.uint8)
    assert reidentify(random, faces, np.arange(40), matcher="face")["top1"] <= 0.15
