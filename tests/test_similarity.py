import numpy as np
import pytest
from skimage.metrics import structural_similarity

from pbmlib import load_faces, mix_blocks, psnr_scores, ssim_floor_scores, ssim_scores, summarize_scores
from pbmlib.privacy.similarity import same_label_partners, ssim_floor_table


def test_ssim_identical_is_one_and_matches_skimage(labelled_images, rng):
    images, _ = labelled_images
    np.testing.assert_allclose(ssim_scores(images, images), 1.0)
    noisy = np.clip(images.astype(int) + rng.integers(-40, 40, images.shape), 0, 255).astype(np.uint8)
    got = ssim_scores(images, noisy)
    expected = structural_similarity(images[3], noisy[3], data_range=255, channel_axis=-1)
    assert got[3] == pytest.approx(expected)
    assert (got < 1).all()


def test_ssim_grayscale_uses_no_channel_axis(labelled_images):
    gray = labelled_images[0][..., 0]
    other = gray[::-1].copy()
    expected = structural_similarity(gray[0], other[0], data_range=255)
    assert ssim_scores(gray, other)[0] == pytest.approx(expected)


def test_ssim_rejects_mismatch_and_tiny_images(labelled_images):
    images, _ = labelled_images
    with pytest.raises(ValueError, match="same shape"):
        ssim_scores(images, images[:3])
    with pytest.raises(ValueError, match="at least 7 x 7"):
        ssim_scores(images[:, :5, :5], images[:, :5, :5])


def test_psnr_known_value():
    a = np.zeros((1, 8, 8), np.uint8)
    b = np.full((1, 8, 8), 255, np.uint8)
    assert psnr_scores(a, b)[0] == pytest.approx(0.0)
    c = np.full((1, 8, 8), 10, np.uint8)  # MSE = 100
    assert psnr_scores(a, c)[0] == pytest.approx(10 * np.log10(255**2 / 100))
    assert np.isinf(psnr_scores(a, a)[0])


def test_ssim_drops_with_smaller_blocks_on_faces():
    faces = load_faces()
    coarse = ssim_scores(faces.images, mix_blocks(faces.images, faces.labels, block=(25, 25), seed=0)).mean()
    fine = ssim_scores(faces.images, mix_blocks(faces.images, faces.labels, block=(5, 5), seed=0)).mean()
    floor = ssim_floor_scores(faces.images, faces.labels, seed=0).mean()
    assert 1 > coarse and fine < coarse
    assert floor < fine  # mixing keeps more than an unrelated same-class image


def test_partners_share_label_and_are_others():
    labels = np.array([0, 0, 1, 1, 1, 2])
    partners = same_label_partners(labels, seed=0)
    assert (labels[partners] == labels).all()
    assert (partners[:5] != np.arange(5)).all() and partners[5] == 5


def test_summary_per_class_and_overall():
    table = summarize_scores([1.0, 3.0, 10.0, 20.0], ["x", "x", "y", "y"], name="ssim")
    assert table.loc["x", "ssim_mean"] == 2.0
    assert table.loc["y", "n"] == 2
    assert table.loc["all", "ssim_mean"] == pytest.approx(8.5)
    assert table.loc["x", "ssim_std"] == pytest.approx(np.sqrt(2))


def test_ssim_floor_table_columns_and_excess():
    table = ssim_floor_table([0.5, 0.7, 0.4, 0.6], [0.2, 0.2, 0.1, 0.3], ["x", "x", "y", "y"])
    assert list(table.columns) == ["ssim_mean", "ssim_std", "n", "ssim_floor_mean", "ssim_floor_std", "ssim_excess"]
    assert table.loc["x", "ssim_excess"] == pytest.approx(0.4)
    assert table.loc["all", "ssim_excess"] == pytest.approx(0.55 - 0.2)
