"""The numpy ciphers (pixel-based and block-wise encryption) and the VisualMixer transform;
the scheme classes built on them are tested in test_schemes.py."""

import numpy as np
import pytest

import pbmlib
from pbmlib.privacy.matchers import reidentify
from pbmlib.schemes.encryption import (PERMS, block_decrypt, block_encrypt, block_key, pixel_decrypt, pixel_encrypt,
                                       pixel_key)
from pbmlib.schemes import get_scheme
from pbmlib.schemes.visualmixer import (VFE_DEFINITIONS, VisualMixer, visual_feature_entropy, visualmixer_shuffle,
                                        window_energy)


@pytest.fixture(scope="module")
def rgb():
    return np.random.default_rng(0).integers(0, 256, (6, 8, 12, 3), dtype=np.uint8)


def test_pixel_encryption_round_trip_and_keys(rgb):
    key = pixel_key(rgb.shape[1:], seed=1)
    enc = pixel_encrypt(rgb, key)
    assert enc.dtype == np.uint8 and not np.array_equal(enc, rgb)
    np.testing.assert_array_equal(pixel_decrypt(enc, key), rgb)
    np.testing.assert_array_equal(pixel_decrypt(enc, pixel_key(rgb.shape[1:], seed=1)), rgb)  # same seed, same key
    assert not np.array_equal(pixel_decrypt(enc, pixel_key(rgb.shape[1:], seed=2)), rgb)
    per_image = pixel_key(rgb.shape[1:], n_images=6, seed=3)
    np.testing.assert_array_equal(pixel_decrypt(pixel_encrypt(rgb, per_image), per_image), rgb)
    gray = rgb[..., 0]
    gk = pixel_key(gray.shape[1:], seed=0)
    np.testing.assert_array_equal(pixel_decrypt(pixel_encrypt(gray, gk), gk), gray)


def test_pixel_encryption_definition(rgb):
    key = pixel_key(rgb.shape[1:], seed=5)
    enc = pixel_encrypt(rgb, key)
    i, y, x = 2, 3, 4
    step1 = np.where(key.flip[y, x], 255 - rgb[i, y, x], rgb[i, y, x])
    np.testing.assert_array_equal(enc[i, y, x], step1[PERMS[key.perm[y, x]]])
    assert 0.4 < key.flip.mean() < 0.6 and set(np.unique(key.perm)) <= set(range(6))
    # the per-pixel invariant that the 'invariant' matcher exploits
    inv = lambda a: np.sort(np.abs(a.astype(float) - 127.5), axis=-1)
    np.testing.assert_array_equal(inv(enc), inv(rgb))


def test_flipped_encrypted_image_is_an_encrypted_flipped_image(rgb):
    """Why augmentation works on pixel-encrypted images: flipping commutes with a flipped key."""
    key = pixel_key(rgb.shape[1:], seed=7)
    flipped_key = type(key)(key.flip[:, ::-1], key.perm[:, ::-1])
    np.testing.assert_array_equal(pixel_encrypt(rgb, key)[:, :, ::-1], pixel_encrypt(rgb[:, :, ::-1], flipped_key))


def test_block_encryption_round_trip_and_definition(rgb):
    key = block_key(3, seed=1)
    assert sorted(key.permutation) == list(range(96))
    enc = block_encrypt(rgb, key)
    np.testing.assert_array_equal(block_decrypt(enc, key), rgb)
    assert not np.array_equal(enc, rgb)
    # one block by hand: 48 values -> 96 nibbles -> permute -> invert keyed -> merge
    block = rgb[0, :4, :4].reshape(-1)
    nib = np.concatenate([block >> 4, block & 15])[key.permutation]
    nib = np.where(key.invert, 15 - nib, nib)
    np.testing.assert_array_equal(enc[0, :4, :4].reshape(-1), (nib[:48] << 4) | nib[48:])
    gray = rgb[..., 1]
    gk = block_key(1, seed=0)
    np.testing.assert_array_equal(block_decrypt(block_encrypt(gray, gk), gk), gray)
    with pytest.raises(ValueError, match="does not divide"):
        block_encrypt(rgb[:, :6, :6], key)
    with pytest.raises(ValueError, match="key is for 1 channels"):
        block_encrypt(rgb, gk)


def test_vfe_on_known_gradients():
    ramp = np.tile(np.arange(16, dtype=np.uint8) * 3, (16, 1))[None]  # dx = 3 everywhere, dy = 0
    energy = window_energy(ramp, 8)
    assert energy.shape == (1, 2, 2, 1)
    assert np.all(energy == 8 * 7 * 9)  # per window: 8 rows x 7 forward differences x 3^2
    assert visual_feature_entropy(np.zeros((2, 16, 16, 3), np.uint8), window=8).tolist() == [0.0, 0.0]
    stripes = np.zeros((1, 16, 16), np.uint8)
    stripes[:, ::2] = 10  # dy = 10 on every row step
    assert visual_feature_entropy(stripes, window=16)[0] == 16 * 15 * 100
    assert visual_feature_entropy(stripes, window=16)[0] > visual_feature_entropy(ramp, window=16)[0]


def _reference_partial_derivative(img):
    """The public code's ``partial_derivative`` (VisualMixer.py), loops and all, on floats."""
    img = np.pad(img.astype(float), ((0, 1), (0, 1)), constant_values=0)
    h, w = img.shape
    out = np.zeros((h - 1, w - 1))
    for i in range(h - 1):
        for j in range(w - 1):
            out[i, j] = (img[i, j + 1] - img[i, j]) ** 2 + (img[i + 1, j] - img[i, j]) ** 2
    return out


def test_reference_vfe_adds_the_zero_padding_edge_term():
    ramp = np.tile(np.arange(16, dtype=np.uint8) * 3, (16, 1))[None]  # dx = 3 everywhere, dy = 0
    energy = window_energy(ramp, 8, vfe="reference")[0, :, :, 0]
    # window (0, 0): 504 inside + last column 8 * 21^2 + last row 9 * (0^2 + ... + 7^2) = 504 + 3528 + 1260
    # window (0, 1): 504 + 8 * 45^2 + 9 * (8^2 + ... + 15^2) = 504 + 16200 + 9900
    np.testing.assert_array_equal(energy, [[5292, 26604], [5292, 26604]])
    rng = np.random.default_rng(4)
    x = rng.integers(0, 256, (2, 16, 16, 3), dtype=np.uint8)
    ref = window_energy(x, 8, vfe="reference")
    for n, a, b, c in [(0, 0, 0, 0), (1, 1, 0, 2), (0, 1, 1, 1)]:
        window = x[n, 8 * a:8 * a + 8, 8 * b:8 * b + 8, c]
        assert ref[n, a, b, c] == pytest.approx(_reference_partial_derivative(window).sum())
    assert (ref > window_energy(x, 8)).all()
    np.testing.assert_allclose(visual_feature_entropy(x, window=8, vfe="reference"), ref.mean(axis=(1, 2, 3)))
    assert set(VFE_DEFINITIONS) == {"paper", "reference"}
    with pytest.raises(ValueError, match="vfe must be one of"):
        window_energy(x, 8, vfe="code")


def test_visualmixer_vfe_option():
    rng = np.random.default_rng(5)
    x = np.zeros((4, 32, 32), np.uint8)
    x[:, :16] = 250  # eight bright flat windows: no texture, but a large edge term
    x[:, 24:, :8] = rng.integers(100, 140, (4, 8, 8))  # one dim textured window
    paper, reference = VisualMixer(window=8), VisualMixer(window=8, vfe="reference")
    assert paper.vfe == "paper" and reference.label == "visualmixer window=8 vfe=reference"
    assert reference.get_params()["vfe"] == "reference" and reference.clone().vfe == "reference"
    a, b = paper.fit_protect(x, None, seed=0), reference.fit_protect(x, None, seed=0)
    np.testing.assert_array_equal(a[:, :16], x[:, :16])  # flat: any shuffle leaves it unchanged
    # the paper ranks the textured window first (pixel-wise shuffle); the reference ranks it ninth
    # of 16, behind the bright borders, so it is shuffled in 2x2 sub-blocks
    textured = lambda z: z[:, 24:, :8].reshape(4, 4, 2, 4, 2).transpose(0, 1, 3, 2, 4).reshape(4, 16, 4)
    blocks_of = lambda z: {tuple(v) for v in textured(z).reshape(-1, 4).tolist()}
    assert blocks_of(b) == blocks_of(x) and not blocks_of(a) <= blocks_of(x)
    with pytest.raises(ValueError, match="visualmixer: vfe must be one of"):
        VisualMixer(vfe="Reference")
    with pytest.raises(ValueError, match="vfe must be one of"):
        get_scheme("visualmixer", vfe=1)


def test_visualmixer_keeps_window_contents_and_is_finer_where_features_are_dense():
    rng = np.random.default_rng(0)
    img = np.zeros((1, 16, 16, 3), np.uint8)
    img[0, :8, :8] = rng.integers(0, 256, (8, 8, 3))  # one busy window, three flat ones
    img[0, 8:, 8:] = np.arange(8, dtype=np.uint8)[:, None, None] * 20
    out = visualmixer_shuffle(img, window=8, levels=(1, 2, 4), seed=0)
    for a in (0, 8):
        for b in (0, 8):
            for c in range(3):
                np.testing.assert_array_equal(np.sort(out[0, a:a + 8, b:b + 8, c], axis=None),
                                              np.sort(img[0, a:a + 8, b:b + 8, c], axis=None))
    busy = out[0, :8, :8]
    assert not np.array_equal(busy, img[0, :8, :8])
    # the busy window is shuffled pixel by pixel: its 2x2 sub-blocks are broken apart
    assert not all(np.array_equal(busy[y:y + 2, x:x + 2, 0], img[0, y2:y2 + 2, x2:x2 + 2, 0])
                   for y in (0,) for x in (0,) for y2 in (0,) for x2 in (0,))
    same = visualmixer_shuffle(img, window=8, seed=0)
    np.testing.assert_array_equal(out, same)
    with pytest.raises(ValueError, match="does not divide the window"):
        visualmixer_shuffle(img, window=8, levels=(3,))


def test_mosaic_and_invariant_matchers_break_the_schemes():
    faces = pbmlib.load_faces().images[:60, :24, :24]
    shuffled = visualmixer_shuffle(faces, window=8, seed=0)
    assert reidentify(shuffled, faces, np.arange(60), matcher="mosaic", block=(8, 8))["top1"] == 1.0
    rgb = np.repeat(faces[..., None], 3, axis=3)
    encrypted = get_scheme("pixel_encryption").fit_protect(rgb, None, seed=0)
    assert reidentify(encrypted, rgb, np.arange(60), matcher="invariant")["top1"] == 1.0
    assert reidentify(encrypted, rgb, np.arange(60), matcher="pixel")["top1"] < 0.5


@pytest.mark.slow
def test_adaptation_networks_shapes():
    import keras

    from pbmlib.learn.layers import PixelShuffle
    from pbmlib.learn.models import build_model

    x = np.arange(2 * 3 * 3 * 32, dtype="float32").reshape(2, 3, 3, 32)
    y = keras.ops.convert_to_numpy(PixelShuffle(4)(x))
    assert y.shape == (2, 12, 12, 2)
    assert y[0, 1, 0, 0] == x[0, 0, 0, 4 * 2]  # row offset 1 in the 4x4 cell, channel 0 -> depth index 8
    for adaptation in ("pixel", "block"):
        model = build_model("small_cnn", input_shape=(24, 24, 3), classes=2, adaptation=adaptation)
        assert model.get_layer(f"{adaptation}_adaptation") is not None and model.output_shape == (None, 2)
    with pytest.raises(ValueError, match="adaptation must be"):
        build_model("small_cnn", input_shape=(24, 24, 3), classes=2, adaptation="rot13")
