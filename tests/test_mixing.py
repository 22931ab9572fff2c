import numpy as np
import pytest

from pbmlib import gather_blocks, mix_blocks, mixing_sources, n_blocks


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
    src = mixing_sources(labels, (8, 8), block=1, p=1.0, seed=0)
    assert not (src == np.arange(100)[:, None, None]).any()
    src_self = mixing_sources(labels, (8, 8), block=1, p=1.0, seed=0, allow_self=True, n_donors=49)
    assert (src_self == np.arange(100)[:, None, None]).any()


def test_each_image_uses_at_most_n_donors_per_round(rng):
    labels = np.zeros(200, dtype=int)
    src = mixing_sources(labels, (10, 10), block=1, n_donors=3, p=1.0, seed=5)
    per_image = [np.unique(s).size for s in src]
    assert max(per_image) == 3  # 100 blocks, 3 donors: every donor used, never more


def test_donor_draw_is_uniform_over_class():
    labels = np.zeros(11, dtype=int)  # 10 possible donors each, 3 drawn
    counts = np.zeros(11)
    for s in range(300):
        src = mixing_sources(labels, (1, 1), block=1, n_donors=3, p=1.0, seed=s)
        counts += np.bincount(src.ravel(), minlength=11)
    freq = counts / counts.sum()
    assert np.allclose(freq, 1 / 11, atol=0.02)


def test_small_class_uses_all_its_images():
    labels = np.array([0, 0, 0, 1, 1, 1, 1, 1])
    src = mixing_sources(labels, (6, 6), block=1, n_donors=10, p=1.0, seed=2)
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
        ({"block": (4, 0)}, "whole pixels >= 1"),
        ({"block": (4, 4, 4)}, "pair"),
        ({"block": (2.5, 4)}, "whole pixels"),
        ({"block": (4, 4), "p": 1.5}, r"probability in \[0, 1\]"),
        ({"block": (4, 4), "p": -0.1}, r"probability in \[0, 1\]"),
        ({"block": (4, 4), "n_donors": 0}, "n_donors must be an int from 1 to"),
        ({"block": (4, 4), "rounds": 0}, "rounds must be an int from 1 to"),
        ({"block": (4, 4), "rounds": 10**9}, "rounds must be an int from 1 to 1000"),
        ({"block": (4, 4), "n_donor": 3}, "unknown option 'n_donor' .did you mean 'n_donors'"),
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


# --- hostile and careless inputs (issue 12: silent wrong results) -----------------------------

@pytest.mark.parametrize("block", [(5.9, 5.9), (2.5, 4), (4, 4.5), (True, True), ("4", "4"), (4, 4, 4)])
def test_non_integer_blocks_are_refused_not_truncated(labelled_images, block):
    images, labels = labelled_images
    with pytest.raises(ValueError, match="block must be .* whole pixels"):
        mix_blocks(images, labels, block=block, seed=0)


def test_integral_float_and_numpy_blocks_are_read_as_ints(labelled_images):
    images, labels = labelled_images
    a = mix_blocks(images, labels, block=(4.0, np.int64(4)), seed=0)
    np.testing.assert_array_equal(a, mix_blocks(images, labels, block=(4, 4), seed=0))
    assert n_blocks((12, 16), (np.int32(4), 4.0)) == 12


@pytest.mark.parametrize("kwargs, match", [
    ({"p": True}, "probability"), ({"p": np.True_}, "probability"), ({"seed": True}, "seed must be"),
    ({"seed": np.bool_(False)}, "seed must be"), ({"n_donors": True}, "n_donors"), ({"rounds": True}, "rounds"),
    ({"allow_self": "yes"}, "allow_self must be True or False"), ({"strict": 1}, "strict must be True or False"),
])
def test_bools_and_truthy_stand_ins_are_refused(labelled_images, kwargs, match):
    images, labels = labelled_images
    with pytest.raises(ValueError, match=match):
        mix_blocks(images, labels, block=(4, 4), **kwargs)


@pytest.mark.parametrize("labels", [[1, 1.0] * 12, [1, True] * 12, [np.int64(1), np.float64(1.0)] * 12,
                                    np.array([1, 1.0, True, 2] * 6, dtype=object)])
def test_labels_equal_across_kinds_are_refused_not_merged(labelled_images, labels):
    images, _ = labelled_images
    with pytest.raises(ValueError, match="equals the earlier label .* one type"):
        mix_blocks(images, labels, block=(4, 4), seed=0)


@pytest.mark.parametrize("labels", [[0.0] * 23 + [float("nan")], np.r_[np.zeros(23), np.nan],
                                    ["a"] * 23 + [np.float64("nan")]])
def test_nan_labels_are_refused(labelled_images, labels):
    images, _ = labelled_images
    with pytest.raises(ValueError, match="NaN"):
        mix_blocks(images, labels, block=(4, 4), seed=0)


def test_labelled_image_set_keeps_distinct_labels_numpy_would_merge():
    from pbmlib import ImageSet

    data = ImageSet(np.zeros((4, 4, 4), np.uint8), [1, "1", 1, "1"])
    assert data.classes == [1, "1"] and data.labels.tolist() == [1, "1", 1, "1"]
    with pytest.raises(ValueError, match="NaN"):
        ImageSet(np.zeros((2, 4, 4), np.uint8), [0.0, float("nan")])


def _reference_draw_block_sources(labels, grid, *, n_donors, rounds, p, allow_self, rng):
    """The donor draw as it was before n_donors was capped (uncapped Floyd loop): the byte reference."""
    codes = np.unique(np.asarray(labels), return_inverse=True)[1].ravel()
    n = codes.shape[0]
    order = np.argsort(codes, kind="stable")
    sorted_codes = codes[order]
    starts = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]])
    sizes = np.diff(np.r_[starts, n])
    class_start, class_size = np.repeat(starts, sizes), np.repeat(sizes, sizes)
    position = np.arange(n) - class_start
    population = class_size if allow_self else class_size - 1
    gh, gw = grid
    sources = np.broadcast_to(np.arange(n)[:, None, None], (n, gh, gw)).copy()
    for _ in range(rounds):
        k = np.minimum(population, n_donors)
        chosen = np.full((n, n_donors), -1, dtype=np.int64)
        for j in range(n_donors):
            upper = population - k + j
            t = np.floor(rng.random(n) * (upper + 1)).astype(np.int64)
            seen = (chosen[:, :j] == t[:, None]).any(axis=1)
            chosen[:, j] = np.where(j < k, np.where(seen, upper, t), -1)
        member = chosen if allow_self else (position[:, None] + 1 + chosen) % class_size[:, None]
        donors_sorted = np.where(chosen >= 0, order[class_start[:, None] + member], -1)
        donors = np.empty_like(donors_sorted)
        donors[order] = donors_sorted
        n_valid = np.empty_like(k)
        n_valid[order] = k
        replace = rng.random((n, gh, gw)) < p
        slot = np.floor(rng.random((n, gh, gw)) * n_valid[:, None, None]).astype(np.int64)
        replace &= n_valid[:, None, None] > 0
        np.copyto(sources, donors[np.arange(n)[:, None, None], np.minimum(slot, n_donors - 1)], where=replace)
    return sources


@pytest.mark.parametrize("n_donors", [1, 2, 4, 5, 11, 40])
@pytest.mark.parametrize("bit_generator", [np.random.PCG64, np.random.PCG64DXSM, np.random.MT19937])
@pytest.mark.parametrize("allow_self", [False, True])
def test_capping_n_donors_keeps_the_same_bytes(n_donors, bit_generator, allow_self):
    labels = np.array([0] * 3 + [1] * 5 + [2] + [3] * 12)
    got = mixing_sources(labels, (3, 4), block=1, n_donors=n_donors, rounds=2, p=0.6, allow_self=allow_self,
                             seed=np.random.Generator(bit_generator(11)))
    want = _reference_draw_block_sources(labels, (3, 4), n_donors=n_donors, rounds=2, p=0.6, allow_self=allow_self,
                                         rng=np.random.Generator(bit_generator(11)))
    np.testing.assert_array_equal(got, want)


def test_huge_n_donors_is_capped_at_the_class_size(labelled_images):
    import time

    images, labels = labelled_images
    started = time.perf_counter()
    mixed, src = mix_blocks(images, labels, block=(4, 4), n_donors=10**6, p=1.0, seed=0,  # hung before the cap
                            return_sources=True)
    assert (labels[src] == labels[:, None, None]).all()
    assert time.perf_counter() - started < 5
    with pytest.raises(ValueError, match=r"n_donors must be an int from 1 to 1000000"):
        mix_blocks(images, labels, block=(4, 4), n_donors=10**9, seed=0)  # refused before any work


def test_mixing_into_a_memory_map_gives_the_same_bytes(tmp_path, labelled_images):
    images, labels = labelled_images
    path = tmp_path / "images.npy"
    np.save(path, images)
    source = np.load(path, mmap_mode="r")  # read-only memory map, never copied whole
    out = np.lib.format.open_memmap(tmp_path / "mixed.npy", mode="w+", dtype=np.uint8, shape=images.shape)
    result = mix_blocks(source, labels, block=(4, 4), seed=7, out=out)
    assert result is out
    out.flush()
    np.testing.assert_array_equal(np.load(tmp_path / "mixed.npy"), mix_blocks(images, labels, block=(4, 4), seed=7))


def test_gather_into_a_chunk_buffer_and_bad_outputs(labelled_images):
    images, labels = labelled_images
    sources = mixing_sources(labels, (3, 4), block=1, seed=1)
    whole = gather_blocks(images, sources)
    buffer = np.empty((5,) + images.shape[1:], np.uint8)
    for lo in range(0, len(images), 5):  # a chunk at a time, into one reused buffer
        part = gather_blocks(images, sources[lo:lo + 5], out=buffer[:len(sources[lo:lo + 5])])
        np.testing.assert_array_equal(part, whole[lo:lo + 5])
    with pytest.raises(ValueError, match="out must be"):
        gather_blocks(images, sources, out=np.empty(images.shape, np.float32))
    with pytest.raises(ValueError, match="overlaps"):
        gather_blocks(images, sources, out=images)


def test_gather_on_several_threads_gives_the_same_bytes(labelled_images, monkeypatch):
    from pbmlib.pbm import mixing

    images, labels = labelled_images
    monkeypatch.setattr(mixing, "_CHUNK_SEGMENTS", 12 * 4)  # one image per chunk: 24 chunks over 3 threads
    sources = mixing_sources(labels, (3, 4), block=1, seed=2)
    np.testing.assert_array_equal(gather_blocks(images, sources, workers=3), gather_blocks(images, sources, workers=1))
    with pytest.raises(ValueError, match="workers"):
        gather_blocks(images, sources, workers=0)
