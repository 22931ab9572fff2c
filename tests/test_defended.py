"""Defended mixing (pbmlib.schemes.defended): seeds, parameters, and that each defence changes what it claims."""

import numpy as np
import pytest

from pbmlib.data.augmentation import augment_images
from pbmlib.pbm.mixing import gather_blocks, mixing_sources
from pbmlib.privacy.attacks import block_keys, membership_scores
from pbmlib.schemes import SCHEMES, get_scheme

NAMES = ["pbm_noise", "pbm_shuffle", "pbm_average", "pbm_augment"]
BLOCK = (4, 4)


@pytest.fixture(scope="module")
def data():
    """80 random grey 20x20 images in two classes of 40 (no two blocks alike by chance)."""
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (80, 20, 20), dtype=np.uint8), np.repeat(["a", "b"], 40)


def make(name, **params):
    return get_scheme(name, **{"block": BLOCK, **params})


def pbm(x, y, seed):
    return get_scheme("pbm", block=BLOCK).fit_protect(x, y, seed=seed)


@pytest.mark.parametrize("name", NAMES)
def test_seeded_bytes_and_contract(name, data):
    x, y = data
    a, b = make(name).fit(x, y, seed=3), make(name).fit(x, y, seed=3)
    out = a.protect(x, y)
    assert out.shape == x.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out, b.protect(x, y))
    np.testing.assert_array_equal(out, a.protect(x, y))  # replayed from the fitted streams
    assert not np.array_equal(out, make(name).fit_protect(x, y, seed=4))
    assert not np.array_equal(out, pbm(x, y, 3))  # the defence changes PBM's output
    assert len(a.seeds_) == 2 and SCHEMES[name].name == name and a.randomized and not a.transforms_test
    assert a.attack_block(x.shape[1:]) == BLOCK and a.restoration_log10_probability(y, x.shape[1:]) is None
    np.testing.assert_array_equal(a.protect_test(x), x)
    with pytest.raises(ValueError, match="pass labels"):
        make(name).fit(x, seed=0)
    with pytest.raises(ValueError, match="pass labels"):
        a.protect(x)
    rgb = np.repeat(x[..., None], 3, axis=3)
    assert make(name).fit_protect(rgb, y, seed=0).shape == rgb.shape


@pytest.mark.parametrize("name, params, match", [
    ("pbm_noise", {"sigma": 0}, r"sigma must be a number in \(0.0, inf\) grey levels"),
    ("pbm_noise", {"sigma": True}, "sigma must be"),
    ("pbm_noise", {"noise": "uniform"}, "noise must be one of 'gaussian', 'laplace'"),
    ("pbm_noise", {"block": 0}, "block must be .* whole pixels >= 1"),
    ("pbm_shuffle", {"fraction": 0}, r"fraction must be a number in \(0.0, 1.0\]"),
    ("pbm_shuffle", {"fraction": 1.5}, "fraction must be"),
    ("pbm_shuffle", {"scope": "set"}, "scope must be one of 'class', 'image'"),
    ("pbm_shuffle", {"p": 2}, "p must be"),
    ("pbm_average", {"k": 0}, "k must be an int >= 1"),
    ("pbm_average", {"k": 2.0}, "k must be an int"),
    ("pbm_average", {"n_donors": 0}, "n_donors must be"),
    ("pbm_augment", {"rotation": -1}, r"rotation must be a number in \[0.0, 180.0\] degrees"),
    ("pbm_augment", {"rotation": 200}, "rotation must be"),
    ("pbm_augment", {"brightness": 1.0}, r"brightness must be a number in \[0.0, 1.0\)"),
    ("pbm_augment", {"flip": 1}, "flip must be True or False"),
    ("pbm_augment", {"rounds": 0}, "rounds must be"),
])
def test_parameters_are_validated(name, params, match):
    with pytest.raises(ValueError, match=f"{name}: {match}"):
        get_scheme(name, **params)


def test_labels_and_params():
    assert get_scheme("pbm_noise").label == "pbm_noise sigma=32.0"
    assert get_scheme("pbm_noise", sigma=8, noise="laplace", block=4).label == \
        "pbm_noise sigma=8.0 noise=laplace block=4x4"
    assert get_scheme("pbm_shuffle", scope="image").get_params() == {
        "fraction": 1.0, "scope": "image", "block": (5, 5), "n_donors": 10, "rounds": 1, "p": 0.5,
        "allow_self": False}
    assert get_scheme("pbm_average", k=4, p=1.0).label == "pbm_average k=4 p=1.0"
    assert get_scheme("pbm_augment").augmentation.rotation == 15.0
    for name in NAMES:
        scheme = get_scheme(name)
        spec = scheme.to_dict()
        assert get_scheme(spec.pop("scheme"), **spec).get_params() == scheme.get_params()


def test_fit_checks_the_block(data):
    x, y = data
    with pytest.raises(ValueError, match="does not divide"):
        get_scheme("pbm_noise", block=3).fit(x, y, seed=0)


# -- each defence does what it claims -----------------------------------------------------------------

@pytest.mark.parametrize("noise", ["gaussian", "laplace"])
def test_noise_is_pbm_plus_noise_of_sigma(noise):
    """On mid-grey images PBM changes nothing, so what is left is the noise: standard deviation sigma."""
    x = np.full((400, 20, 20), 128, np.uint8)
    y = np.repeat([0, 1], 200)
    out = make("pbm_noise", sigma=12, noise=noise).fit_protect(x, y, seed=0).astype(float) - 128
    assert out.std() == pytest.approx(12, rel=0.02) and abs(out.mean()) < 0.1
    kurtosis = (out**4).mean() / out.var() ** 2
    assert kurtosis == pytest.approx(3.0 if noise == "gaussian" else 6.0, rel=0.1)


def test_noise_mixes_as_pbm_and_leaves_no_block_verbatim(data):
    x, y = data
    out = make("pbm_noise", sigma=8).fit_protect(x, y, seed=5)
    mixed = pbm(x, y, 5)  # stream 0 is PBM's, for the same seed
    residual = out.astype(float) - mixed
    assert residual.std() == pytest.approx(8, rel=0.05)  # nothing but the noise (plus clipping at the ends)
    assert membership_scores(x, mixed, block=BLOCK).mean() > 0.5
    assert membership_scores(x, out, block=BLOCK).mean() < 0.01


def test_shuffle_keeps_each_class_blocks_and_moves_them(data):
    x, y = data
    mixed = pbm(x, y, 2)
    out = make("pbm_shuffle").fit_protect(x, y, seed=2)
    km, ko = block_keys(mixed, block=BLOCK), block_keys(out, block=BLOCK)  # keys salted by position

    def pooled(img):  # blocks as unsalted bytes, per class
        b = img.reshape(80, 5, 4, 5, 4).transpose(0, 1, 3, 2, 4).reshape(80, 25, 16)
        return {c: sorted(map(bytes, b[y == c].reshape(-1, 16))) for c in ("a", "b")}

    assert pooled(out) == pooled(mixed)  # a permutation of PBM's blocks within each class
    assert (km == ko).mean() < 0.05  # chance of a block staying at its slot: 1 / (40 * 25)
    verbatim_pbm = membership_scores(x, mixed, block=BLOCK).mean()
    verbatim = membership_scores(x, out, block=BLOCK).mean()
    assert verbatim_pbm > 0.5 and verbatim < 0.15  # at their own position only by chance (about 1 in 25 per copy)


def test_shuffle_within_images_and_fraction(data):
    x, y = data
    mixed = pbm(x, y, 2)
    out = make("pbm_shuffle", scope="image").fit_protect(x, y, seed=2)
    as_blocks = lambda img: np.sort(img.reshape(80, 5, 4, 5, 4).transpose(0, 1, 3, 2, 4).reshape(80, 25, 16), axis=1)
    sort_rows = lambda b: np.array([sorted(map(bytes, row)) for row in b])
    np.testing.assert_array_equal(sort_rows(as_blocks(out)), sort_rows(as_blocks(mixed)))  # same blocks per image
    assert (block_keys(out, block=BLOCK) == block_keys(mixed, block=BLOCK)).mean() < 0.1  # 1/25 stay by chance
    part = make("pbm_shuffle", fraction=0.3).fit_protect(x, y, seed=2)
    moved = (block_keys(part, block=BLOCK) != block_keys(mixed, block=BLOCK)).mean()
    assert 0.25 < moved < 0.35


def test_average_is_the_mean_of_k_pbm_mixings(data):
    x, y = data
    np.testing.assert_array_equal(make("pbm_average", k=1).fit_protect(x, y, seed=1), pbm(x, y, 1))
    scheme = make("pbm_average", k=3).fit(x, y, seed=1)
    rng = np.random.default_rng(scheme.seeds_[1])
    total = pbm(x, y, 1).astype(float)  # the first mixing is PBM's
    for _ in range(2):  # the other k - 1 from the second stream
        total += gather_blocks(x, mixing_sources(y, (5, 5), block=1, seed=rng))
    np.testing.assert_array_equal(scheme.protect(x, y), np.rint(total / 3).astype(np.uint8))
    assert membership_scores(x, scheme.protect(x, y), block=BLOCK).mean() < 0.2  # copies only where all k agree


def test_average_blocks_are_convex_mixtures_of_same_position_blocks():
    """Images of one value each: every released block is the rounded mean of k class values."""
    values = np.arange(0, 240, 6, dtype=np.uint8)  # 40 distinct values
    x = np.repeat(values, 400).reshape(40, 20, 20)
    y = np.repeat([0, 1], 20)
    out = make("pbm_average", k=4, p=1.0).fit_protect(x, y, seed=0)
    blocks = out.reshape(40, 5, 4, 5, 4)
    assert (blocks == blocks[:, :, :1, :, :1]).all()  # blocks stay whole
    low, high = out[:20].astype(int), out[20:].astype(int)
    assert low.min() >= values[:20].min() and low.max() <= values[:20].max()  # class 0 mixes only class 0
    assert high.min() >= values[20:].min() and high.max() <= values[20:].max()
    own = out.astype(int) == x.astype(int)
    assert own.mean() < 0.2  # with p=1 no mixing keeps the own block


def test_augment_is_augmentation_of_pbm(data):
    x, y = data
    scheme = make("pbm_augment").fit(x, y, seed=6)
    expected = augment_images(pbm(x, y, 6), augmentation=scheme.augmentation,
                              seed=np.random.default_rng(scheme.seeds_[1]))
    np.testing.assert_array_equal(scheme.protect(x, y), expected)
    identity = make("pbm_augment", rotation=0, brightness=0, flip=False).fit_protect(x, y, seed=6)
    np.testing.assert_array_equal(identity, pbm(x, y, 6))  # no transform: PBM's bytes
    assert membership_scores(x, scheme.protect(x, y), block=BLOCK).mean() < 0.1
