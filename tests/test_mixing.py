import numpy as np
import pytest

from pbmlib import draw_block_sources, gather_blocks, mix_blocks, n_blocks


def blocks_of(images, block):
    """(N, gh, gw, bh, bw, ...) view of the blocks, written the slow obvious way for checking."""
    bh, bw = block
    n, h, w = images.shape[:3]
    return np.stack(
        [np.stack([images[:, a * bh:(a + 1) * bh, b * bw:(b + 1) * bw] for b in range(w // bw)], axis=1)
         for a in range(h // bh)], axis=1)


@pytest.mark.parametrize("block", [(4, 4), (12, 16), (1, 1), (3, 8), (6, 2)])
@pytest.mark.parametrize("rounds", [1, 3])
def test_provenance_invariant(labelled_images, block, rounds):
    images, labels = labelled_images
    mixed, sources = mix_blocks(images, labels, block=block, n_donors=4, rounds=rounds, seed=7,
                                return_sources=True)
    assert mixed.shape == images.shape and mixed.dtype == np.uint8
    assert sources.shape == (24, 12 // block[0], 16 // block[1])
    got, orig = blocks_of(mixed, block), blocks_of(images, block)
    gh, gw = sources.shape[1:]
    a, b = np.meshgrid(np.arange(gh), np.arange(gw), indexing="ij")
    # every output block equals the same-position block of its recorded source ...
    np.testing.assert_array_equal(got, orig[sources, a[None], b[None]])
    # ... and that source has the same label
    assert (labels[sources] == labels[:, None, None]).all()


def test_grayscale_input(labelled_images):
    images, labels = labelled_images
    gray = images[..., 0]
    mixed, sources = mix_blocks(gray, labels, block=(4, 4), seed=1, return_sources=True)
    np.testing.assert_array_equal(mixed, mix_blocks(images, labels, block=(4, 4), seed=1)[..., 0])
    assert mixed.shape == gray.shape


def test_replacement_rate_matches_p_and_rounds(rng):
    images = rng.integers(0, 256, size=(400, 16, 16), dtype=np.uint8)
    labels = np.arange(400) % 2
    for p, rounds in [(0.5, 1), (0.5, 3), (0.2, 2), (1.0, 1)]:
        _, src = mix_blocks(images, labels, block=(2, 2), p=p, rounds=rounds, seed=3, return_sources=True)
        kept = (src == np.arange(400)[:, None, None]).mean()
        assert kept == pytest.approx((1 - p) ** rounds, abs=0.01)


def test_p_zero_is_identity(labelled_images):
    images, labels = labelled_images
    np.testing.assert_array_equal(mix_blocks(images, labels, block=(4, 4), p=0.0, seed=0), images)


def test_donors_exclude_self_by_default(rng):
    labels = np.repeat([0, 1], 50)
    src = draw_block_sources(labels, (8, 8), p=1.0, seed=0)
    assert not (src == np.arange(100)[:, None, None]).any()
    src_self = draw_block_sources(labels, (8, 8), p=1.0, seed=0, allow_self=True, n_donors=49)
    assert (src_self == np.arange(100)[:, None, None]).any()


def test_each_image_uses_at_most_n_donors_per_round(rng):
    labels = np.zeros(200, dtype=int)
    src = draw_block_sources(labels, (10, 10), n_donors=3, p=1.0, seed=5)
    per_image = [np.unique(s).size for s in src]
    assert max(per_image) == 3  # 100 blocks, 3 donors: every donor used, never more


def test_donor_draw_is_uniform_over_class():
    labels = np.zeros(11, dtype=int)  # 10 possible donors each, 3 drawn
    counts = np.zeros(11)
    for s in range(300):
        src = draw_block_sources(labels, (1, 1), n_donors=3, p=1.0, seed=s)
        counts += np.bincount(src.ravel(), minlength=11)
    freq = counts / counts.sum()
    assert np.allclose(freq, 1 / 11, atol=0.02)


def test_small_class_uses_all_its_images():
    labels = np.array([0, 0, 0, 1, 1, 1, 1, 1])
    src = draw_block_sources(labels, (6, 6), n_donors=10, p=1.0, seed=2)
    assert set(np.unique(src[0])) == {1, 2}
    assert set(np.unique(src[3])) == {4, 5, 6, 7}


def test_same_seed_same_bytes_and_other_seed_differs(labelled_images):
    images, labels = labelled_images
    a = mix_blocks(images, labels, block=(4, 4), rounds=3, seed=42)
    b = mix_blocks(images, labels, block=(4, 4), rounds=3, seed=42)
    c = mix_blocks(images, labels, block=(4, 4), rounds=3, seed=43)
    assert a.tobytes() == b.tobytes()
    assert a.tobytes() != c.tobytes()


def test_input_not_modified(labelled_images):
    images, labels = labelled_images
    before = images.copy()
    mix_blocks(images, labels, block=(4, 4), seed=0)
    np.testing.assert_array_equal(images, before)


def test_labels_of_any_hashable_kind(labelled_images):
    images, _ = labelled_images
    labels = [("x", 1)] * 12 + [np.int64(3)] * 6 + [3] * 6  # np.int64(3) and 3 are one class
    _, src = mix_blocks(images, labels, block=(4, 4), p=1.0, seed=0, return_sources=True)
    assert (src[12:] >= 12).all() and (src[:12] < 12).all()


def test_single_image_class_warns_and_stays(labelled_images):
    images, labels = labelled_images
    labels = labels.copy()
    labels[0] = "lonely"
    with pytest.warns(UserWarning, match="single image"):
        mixed = mix_blocks(images, labels, block=(4, 4), p=1.0, seed=0)
    np.testing.assert_array_equal(mixed[0], images[0])
    assert not np.array_equal(mixed[1], images[1])
    with pytest.raises(ValueError, match="single image"):
        mix_blocks(images, labels, block=(4, 4), seed=0, strict=True)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"block": (5, 4)}, r"does not divide.*height among \[1, 2, 3, 4, 6, 12\]"),
        ({"block": (4, 0)}, ">= 1 pixel"),
        ({"block": 4}, "pair"),
        ({"block": (4, 4), "p": 1.5}, r"probability in \[0, 1\]"),
        ({"block": (4, 4), "p": -0.1}, r"probability in \[0, 1\]"),
        ({"block": (4, 4), "n_donors": 0}, "n_donors must be an int >= 1"),
        ({"block": (4, 4), "rounds": 0}, "rounds must be an int >= 1"),
        ({"block": (4, 4), "seed": "x"}, "seed must be"),
    ],
)
def test_bad_parameters(labelled_images, kwargs, match):
    images, labels = labelled_images
    with pytest.raises(ValueError, match=match):
        mix_blocks(images, labels, **kwargs)


def test_bad_images_and_labels(labelled_images):
    images, labels = labelled_images
    with pytest.raises(ValueError, match="uint8"):
        mix_blocks(images.astype(np.float32), labels, block=(4, 4))
    with pytest.raises(ValueError, match=r"\(N, H, W\)"):
        mix_blocks(images[0, :, :, 0], labels, block=(4, 4))
    with pytest.raises(ValueError, match="empty"):
        mix_blocks(images[:0], labels[:0], block=(4, 4))
    with pytest.raises(ValueError, match="labels has length 23"):
        mix_blocks(images, labels[:-1], block=(4, 4))
    with pytest.raises(ValueError, match="hashable"):
        mix_blocks(images, [[1]] * 24, block=(4, 4))


def test_n_blocks_eq6():
    assert n_blocks((192, 192, 3), (96, 24)) == 16
    assert n_blocks((224, 224), (14, 14)) == 256
    with pytest.raises(ValueError, match="does not divide"):
        n_blocks((25, 25), (4, 4))


def test_gather_blocks_rejects_bad_sources(labelled_images):
    images, _ = labelled_images
    with pytest.raises(ValueError, match="outside"):
        gather_blocks(images, np.full((2, 3, 4), 99))
    with pytest.raises(ValueError, match="does not divide"):
        gather_blocks(images, np.zeros((2, 5, 4), dtype=int))
