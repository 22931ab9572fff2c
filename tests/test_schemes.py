"""The scheme contract (pbmlib.schemes): registry, parameters, fit/protect, seeds, what an attacker knows."""

import json
import math

import numpy as np
import pytest

import pbmlib
from pbmlib._validation import spawn_seeds
from pbmlib.schemes import SCHEMES, Scheme, get_scheme
from pbmlib.schemes.encryption import block_encrypt, pixel_decrypt, pixel_encrypt

# parameters that fit the 16x16 test images below (the defaults of pbm and pixelate need multiples of 5)
PARAMS = {"pbm": {"block": 4}, "pixelate": {"cell": 4}, "visualmixer": {"window": 8}, "block_encryption": {"block": 4},
          "dppix": {"epsilon": 1.0, "cell": 4}, "pbm_noise": {"block": 4}, "pbm_shuffle": {"block": 4},
          "pbm_average": {"block": 4}, "pbm_augment": {"block": 4}}
DEFENDED = {"dppix", "pbm_noise", "pbm_shuffle", "pbm_average", "pbm_augment"}
RANDOMIZED = sorted(name for name, cls in SCHEMES.items() if cls.randomized)
DETERMINISTIC = sorted(name for name, cls in SCHEMES.items() if not cls.randomized)


def make(name, **params):
    return get_scheme(name, **{**PARAMS.get(name, {}), **params})


@pytest.fixture(scope="module")
def data():
    """12 random RGB 16x16 images in three classes of 4."""
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (12, 16, 16, 3), dtype=np.uint8), np.repeat(["a", "b", "c"], 4)


@pytest.fixture(scope="module")
def public():
    """Another 6 images (an attacker's public set)."""
    return np.random.default_rng(1).integers(0, 256, (6, 16, 16, 3), dtype=np.uint8), np.repeat(["a", "b"], 3)


# -- registry and class attributes -----------------------------------------------------------------

def test_registry_names_classes_and_flags():
    assert set(SCHEMES) == {"none", "pbm", "blur", "pixelate", "mask", "visualmixer", "pixel_encryption",
                            "block_encryption"} | DEFENDED
    for name, cls in SCHEMES.items():
        assert issubclass(cls, Scheme) and cls.name == name
    assert [n for n, c in SCHEMES.items() if c.is_reference] == ["none"]
    assert DETERMINISTIC == ["blur", "mask", "none", "pixelate"]
    assert sorted(n for n, c in SCHEMES.items() if c.transforms_test) == ["block_encryption", "pixel_encryption",
                                                                         "visualmixer"]
    assert {n: c.adaptation for n, c in SCHEMES.items() if c.adaptation} == {"pixel_encryption": "pixel",
                                                                            "block_encryption": "block"}


def test_get_scheme_rejects_unknown_names_and_parameters():
    with pytest.raises(ValueError, match=r"unknown scheme 'rot13'; choose one of \['block_encryption'"):
        get_scheme("rot13")
    with pytest.raises(ValueError, match=r"bad parameters for scheme 'blur': unknown 'radius'; .*\['sigma'\]"):
        get_scheme("blur", radius=2)
    with pytest.raises(ValueError, match="unknown 'window'"):
        get_scheme("none", window=3)
    with pytest.raises(TypeError):
        SCHEMES["blur"](2.0)  # parameters are keyword-only


@pytest.mark.parametrize("name, params, match", [
    ("pbm", {"block": 0}, "block must be an int .a square., a pair .height, width. or 'HEIGHTxWIDTH' of whole pixels >= 1"),
    ("pbm", {"block": (5,)}, "block must be an int .* a pair"),
    ("pbm", {"block": (5, 5, 5)}, "block must be"),
    ("pbm", {"block": True}, "block must be"),
    ("pbm", {"block": (2.5, 2)}, "block must be .* whole pixels"),
    ("pbm", {"block": "5y5"}, "block must be"),
    ("pbm", {"n_donors": 0}, "n_donors must be an int from 1 to"),
    ("pbm", {"n_donors": True}, "n_donors must be an int"),
    ("pbm", {"rounds": -1}, "rounds must be an int from 1 to"),
    ("pbm", {"rounds": 1.0}, "rounds must be an int"),
    ("pbm", {"p": 1.5}, r"p must be a probability in \[0, 1\]"),
    ("pbm", {"p": True}, "p must be a probability"),
    ("pbm", {"p": "0.5"}, "p must be a probability"),
    ("pbm", {"allow_self": 1}, "allow_self must be True or False"),
    ("blur", {"sigma": -1}, r"sigma must be a number in \(0.0, inf\) pixels, got -1"),
    ("blur", {"sigma": 0}, "sigma must be"),
    ("blur", {"sigma": True}, "sigma must be"),
    ("blur", {"sigma": float("nan")}, "sigma must be"),
    ("blur", {"sigma": "2"}, "sigma must be"),
    ("pixelate", {"cell": 0}, "cell must be an int >= 1"),
    ("pixelate", {"cell": True}, "cell must be"),
    ("pixelate", {"cell": 2.0}, "cell must be"),
    ("mask", {"fraction": 0}, r"fraction must be a number in \(0.0, 1.0\]"),
    ("mask", {"fraction": 1.5}, "fraction must be"),
    ("mask", {"fraction": True}, "fraction must be"),
    ("visualmixer", {"window": 0}, "window must be an int >= 1"),
    ("visualmixer", {"window": False}, "window must be"),
    ("visualmixer", {"levels": (3,)}, r"levels \[3\] do not divide the window 8"),
    ("visualmixer", {"levels": ()}, "levels must hold at least one"),
    ("visualmixer", {"levels": 4}, "levels must be a sequence"),
    ("visualmixer", {"levels": (1, True)}, "levels must be an int"),
    ("pixel_encryption", {"per_image_keys": 1}, "per_image_keys must be True or False"),
    ("pixel_encryption", {"per_image_keys": "yes"}, "per_image_keys must be True or False"),
    ("block_encryption", {"block": 0}, "block must be .* whole pixels >= 1"),
    ("block_encryption", {"block": (4, True)}, "block must be .* whole pixels"),
])
def test_bad_parameters_raise_at_construction(name, params, match):
    with pytest.raises(ValueError, match=f"{name}: {match}"):
        get_scheme(name, **params)


def test_every_scheme_has_parameter_checks():
    """The parametrized list above covers every scheme that has parameters."""
    with_params = {name for name, cls in SCHEMES.items() if cls.param_names()}
    assert with_params == {"pbm", "blur", "pixelate", "mask", "visualmixer", "pixel_encryption",
                           "block_encryption"} | DEFENDED


def test_params_label_dict_and_clone():
    pbm = get_scheme("pbm", block=5)
    assert pbm.block == (5, 5) and pbm.get_params() == {"block": (5, 5), "n_donors": 10, "rounds": 1, "p": 0.5,
                                                         "allow_self": False}
    assert pbm.label == "pbm block=5x5"
    assert get_scheme("pbm", block=[5, 4], rounds=3).label == "pbm block=5x4 rounds=3"
    assert get_scheme("pbm", block=(5, 4), n_donors=3, rounds=2).label == "pbm block=5x4 n_donors=3 rounds=2"
    assert get_scheme("blur").label == "blur sigma=2.0" and get_scheme("blur", sigma=3).sigma == 3.0
    assert get_scheme("none").label == "none" and get_scheme("none").get_params() == {}
    assert get_scheme("visualmixer").label == "visualmixer window=8"
    assert get_scheme("visualmixer", levels=[1, 2]).label == "visualmixer window=8 levels=1x2"
    assert get_scheme("block_encryption").label == "block_encryption block=4x4"
    assert get_scheme("pixel_encryption", per_image_keys=np.True_).per_image_keys is True
    assert repr(pbm) == "PBM(block=(5, 5), n_donors=10, rounds=1, p=0.5, allow_self=False)"
    for name in SCHEMES:
        scheme = make(name)
        d = json.loads(json.dumps(scheme.to_dict()))
        assert d == scheme.to_dict() and d["scheme"] == name
        rebuilt = get_scheme(d.pop("scheme"), **d)
        assert rebuilt.get_params() == scheme.get_params() and rebuilt.label == scheme.label
        assert scheme.clone().get_params() == scheme.get_params() and scheme.clone() is not scheme


def test_clone_is_unfitted(data):
    x, y = data
    scheme = make("block_encryption").fit(x, y, seed=0)
    twin = scheme.clone()
    assert not hasattr(twin, "key_") and not hasattr(twin, "seeds_")
    with pytest.raises(ValueError, match=r"call fit\(\.\.\.\) first"):
        twin.protect(x)


# -- fit and protect ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(SCHEMES))
def test_protect_before_fit_raises(name, data):
    x, y = data
    scheme = make(name)
    with pytest.raises(ValueError, match=r"not fitted yet: call fit\(\.\.\.\) first"):
        scheme.protect(x, y)
    with pytest.raises(ValueError, match=r"call fit\(\.\.\.\) first"):
        scheme.protect_test(x)


@pytest.mark.parametrize("name", sorted(SCHEMES))
def test_protect_is_a_new_uint8_array_and_repeatable(name, data):
    x, y = data
    before = x.copy()
    scheme = make(name)
    assert scheme.fit(x, y, seed=0) is scheme
    out = scheme.protect(x, y)
    assert out.dtype == np.uint8 and out.shape == x.shape and not np.shares_memory(out, x)
    np.testing.assert_array_equal(scheme.protect(x, y), out)  # the randomness was drawn by fit
    np.testing.assert_array_equal(scheme.protect_test(x), scheme.protect_test(x))
    np.testing.assert_array_equal(make(name).fit_protect(x, y, seed=0), out)
    test = scheme.protect_test(x)
    assert test.dtype == np.uint8 and test.shape == x.shape and not np.shares_memory(test, x)
    if not scheme.transforms_test:
        np.testing.assert_array_equal(test, x)
    np.testing.assert_array_equal(x, before)  # input untouched
    assert isinstance(scheme.seeds_, tuple) and scheme.image_shape_ == (16, 16, 3)
    assert np.array_equal(out, x) == scheme.is_reference


@pytest.mark.parametrize("name", sorted(SCHEMES))
def test_grey_images(name, data):
    x, y = data
    grey = x[..., 0]
    out = make(name).fit_protect(grey, y, seed=0)
    assert out.shape == grey.shape and out.dtype == np.uint8


@pytest.mark.parametrize("name", RANDOMIZED)
def test_randomized_schemes_same_seed_same_bytes_other_seed_other_bytes(name, data):
    x, y = data
    a, b, c = make(name).fit(x, y, seed=3), make(name).fit(x, y, seed=3), make(name).fit(x, y, seed=4)
    np.testing.assert_array_equal(a.protect(x, y), b.protect(x, y))
    np.testing.assert_array_equal(a.protect_test(x), b.protect_test(x))
    assert not np.array_equal(a.protect(x, y), c.protect(x, y))
    if a.transforms_test:
        assert not np.array_equal(a.protect_test(x), c.protect_test(x))
    assert all(isinstance(s, np.random.SeedSequence) for s in a.seeds_) and a.seeds_


@pytest.mark.parametrize("name", RANDOMIZED)
@pytest.mark.parametrize("kind", ["generator", "seed_sequence"])
def test_randomized_schemes_accept_a_generator_or_seed_sequence(name, kind, data):
    x, y = data
    seed = (lambda: np.random.default_rng(7)) if kind == "generator" else (lambda: np.random.SeedSequence(7))
    a, b = make(name).fit(x, y, seed=seed()), make(name).fit(x, y, seed=seed())
    np.testing.assert_array_equal(a.protect(x, y), b.protect(x, y))  # the same generator state, the same bytes
    np.testing.assert_array_equal(a.protect_test(x), b.protect_test(x))
    rng = np.random.default_rng(7)
    first, second = make(name).fit(x, y, seed=rng), make(name).fit(x, y, seed=rng)  # one stream drawn on
    assert not np.array_equal(first.protect(x, y), second.protect(x, y))


@pytest.mark.parametrize("name", RANDOMIZED)
def test_seed_none_draws_fresh_randomness(name, data):
    x, y = data
    assert not np.array_equal(make(name).fit_protect(x, y), make(name).fit_protect(x, y))


def test_per_image_pixel_keys_are_fresh_without_a_seed(data):
    """The reported bug: per-image keys gave the same bytes on every call with seed=None."""
    x, _ = data
    one, two = (get_scheme("pixel_encryption", per_image_keys=True).fit(x, seed=None) for _ in range(2))
    assert not np.array_equal(one.protect(x), two.protect(x))
    np.testing.assert_array_equal(one.protect(x), one.protect(x))
    gen = get_scheme("pixel_encryption", per_image_keys=True).fit(x, seed=np.random.default_rng(0))
    assert gen.key_ is None and not np.array_equal(gen.protect(x), gen.protect_test(x))  # own test keys


def test_generator_seed_in_visualmixer_test_images(data):
    """The reported bug: VisualMixer.protect_test did seed + 1, a TypeError for a Generator."""
    x, y = data
    scheme = get_scheme("visualmixer").fit(x, y, seed=np.random.default_rng(0))
    test, train = scheme.protect_test(x), scheme.protect(x)
    assert not np.array_equal(test, train)  # an independent test stream, not the training one


@pytest.mark.parametrize("name", DETERMINISTIC)
def test_deterministic_schemes_ignore_the_seed(name, data):
    x, y = data
    reference = make(name).fit_protect(x, y, seed=0)
    rng = np.random.default_rng(0)
    state = rng.bit_generator.state
    for seed in (None, 1, rng, np.random.SeedSequence(5)):
        np.testing.assert_array_equal(make(name).fit_protect(x, y, seed=seed), reference)
    assert rng.bit_generator.state == state  # a Generator is not drawn from
    assert make(name).fit(x, y, seed=0).seeds_ == ()


@pytest.mark.parametrize("name", sorted(SCHEMES))
@pytest.mark.parametrize("seed", [-1, 1.5, "0", True])
def test_bad_seeds_raise(name, seed, data):
    x, y = data
    with pytest.raises(ValueError, match="seed must be"):
        make(name).fit(x, y, seed=seed)


def test_fit_checks_the_data(data):
    x, y = data
    with pytest.raises(ValueError, match="pass labels"):
        get_scheme("pbm", block=4).fit(x, seed=0)
    with pytest.raises(ValueError, match="pass labels"):
        get_scheme("pbm", block=4).fit(x, y, seed=0).protect(x)
    with pytest.raises(ValueError, match="labels has length 3"):
        get_scheme("pbm", block=4).fit(x, y[:3], seed=0)
    for name, params in [("pbm", {"block": 5}), ("pixelate", {"cell": 5}), ("visualmixer", {"window": 6, "levels": (1, 2)}),
                         ("block_encryption", {"block": 5})]:
        with pytest.raises(ValueError, match="does not divide"):
            get_scheme(name, **params).fit(x, y, seed=0)
    with pytest.raises(ValueError, match="must be uint8"):
        get_scheme("blur").fit(x.astype(float))
    with pytest.raises(ValueError, match="1 or 3 channels"):
        get_scheme("pixel_encryption").fit(x[..., :2], seed=0)
    scheme = get_scheme("pixel_encryption").fit(x, seed=0)
    with pytest.raises(ValueError, match=r"fitted on images of shape \(16, 16, 3\)"):
        scheme.protect(x[:, :8])
    with pytest.raises(ValueError, match="key is for 3 channels"):
        get_scheme("block_encryption").fit(x, seed=0).protect(x[..., 0])


def test_a_failed_refit_leaves_the_scheme_unfitted(data):
    x, y = data
    scheme = get_scheme("visualmixer").fit(x, y, seed=0)
    with pytest.raises(ValueError, match="does not divide"):
        scheme.fit(x[:, :12], y, seed=0)
    with pytest.raises(ValueError, match=r"call fit\(\.\.\.\) first"):
        scheme.protect(x)


# -- keys ---------------------------------------------------------------------------------------------

def test_encryptions_draw_one_key_in_fit(data):
    x, _ = data
    pixel = get_scheme("pixel_encryption").fit(x, seed=0)
    np.testing.assert_array_equal(pixel.protect(x), pixel_encrypt(x, pixel.key_))
    np.testing.assert_array_equal(pixel_decrypt(pixel.protect(x), pixel.key_), x)
    np.testing.assert_array_equal(pixel.protect(x), pixel.protect_test(x))  # the same key for test images
    block = get_scheme("block_encryption").fit(x, seed=0)
    assert block.key_.block == (4, 4) and block.key_.permutation.size == 2 * 16 * 3
    np.testing.assert_array_equal(block.protect(x), block_encrypt(x, block.key_))
    np.testing.assert_array_equal(block.protect(x), block.protect_test(x))
    assert len(pixel.seeds_) == 2 and len(block.seeds_) == 1
    # the key comes from a child stream of the seed, never from the seed itself
    from pbmlib.schemes.encryption import pixel_key
    assert not np.array_equal(pixel.key_.flip, pixel_key(x.shape[1:], seed=0).flip)


def test_rectangular_block_encryption(data):
    x, _ = data
    scheme = get_scheme("block_encryption", block=(4, 8)).fit(x, seed=0)
    assert scheme.block == (4, 8) and scheme.attack_block(x.shape[1:]) == (4, 8)
    from pbmlib.schemes.encryption import block_decrypt
    np.testing.assert_array_equal(block_decrypt(scheme.protect(x), scheme.key_), x)


def test_pbm_protect_is_mix_blocks_on_the_fitted_stream(data):
    x, y = data
    scheme = get_scheme("pbm", block=(4, 8), n_donors=2, rounds=2).fit(x, y, seed=4)
    expected = pbmlib.mix_blocks(x, y, block=(4, 8), n_donors=2, rounds=2,
                                 seed=np.random.default_rng(spawn_seeds(4, 1)[0]))
    np.testing.assert_array_equal(scheme.protect(x, y), expected)


# -- what the attacker gets and knows -----------------------------------------------------------------

@pytest.mark.parametrize("name", ["pixel_encryption", "block_encryption"])
def test_protect_public_encrypts_with_the_fitted_key(name, data, public):
    x, y = data
    xp, yp = public
    scheme = make(name).fit(x, y, seed=0)
    key = scheme.key_
    encrypt = pixel_encrypt if name == "pixel_encryption" else block_encrypt
    np.testing.assert_array_equal(scheme.protect_public(xp, yp, seed=99), encrypt(xp, key))
    np.testing.assert_array_equal(scheme.protect_public(xp, yp), scheme.protect_test(xp))
    assert scheme.key_ is key  # the fitted state is left alone


def test_protect_public_of_visualmixer_uses_the_test_stream(data):
    x, y = data
    scheme = get_scheme("visualmixer").fit(x, y, seed=0)
    np.testing.assert_array_equal(scheme.protect_public(x, y, seed=1), scheme.protect_test(x))
    assert not np.array_equal(scheme.protect_public(x, y), scheme.protect(x, y))


def test_protect_public_of_pbm_uses_fresh_randomness(data, public):
    x, y = data
    xp, yp = public
    scheme = get_scheme("pbm", block=4).fit(x, y, seed=0)
    seeds = scheme.seeds_
    attacker = scheme.protect_public(xp, yp, seed=1)
    np.testing.assert_array_equal(attacker, get_scheme("pbm", block=4).fit_protect(xp, yp, seed=1))
    assert not np.array_equal(attacker, scheme.clone().fit_protect(xp, yp, seed=0))  # not the owner's stream
    assert not np.array_equal(scheme.protect_public(xp, yp), scheme.protect_public(xp, yp))  # seed=None: fresh
    assert scheme.seeds_ is seeds  # the owner's fitted state is left alone
    with pytest.raises(ValueError, match="pass labels"):
        scheme.protect_public(xp)


@pytest.mark.parametrize("name", DETERMINISTIC)
def test_protect_public_of_deterministic_schemes_is_protect(name, data, public):
    x, y = data
    xp, yp = public
    scheme = make(name).fit(x, y)
    np.testing.assert_array_equal(scheme.protect_public(xp, yp, seed=5), scheme.protect(xp, yp))


@pytest.mark.parametrize("name, expected", [
    ("none", None), ("pbm", (4, 4)), ("blur", None), ("pixelate", (4, 4)), ("mask", None),
    ("visualmixer", (8, 8)), ("pixel_encryption", None), ("block_encryption", (4, 4)),
])
def test_attack_block(name, expected):
    scheme = make(name)
    assert scheme.attack_block((16, 16, 3)) == expected and scheme.attack_block((16, 16)) == expected
    if expected is not None:
        assert all(type(v) is int for v in scheme.attack_block((16, 16)))
        with pytest.raises(ValueError, match="does not divide"):
            scheme.attack_block((18, 18, 3))
    assert get_scheme("pbm", block=(5, 4)).attack_block((20, 20)) == (5, 4)


@pytest.mark.parametrize("name", sorted(SCHEMES))
def test_restoration_log10_probability(name, data):
    _, y = data
    value = make(name).restoration_log10_probability(y, (16, 16, 3))
    if name != "pbm":
        assert value is None
        return
    # 3 classes of 4 images, N_b = 16 blocks of 4x4: -12 * log10(16!)
    assert value == pytest.approx(-12 * math.log10(math.factorial(16)))
    assert value == pytest.approx(pbmlib.restoration_log10_probability({"a": 4, "b": 4, "c": 4}, 16))
    assert get_scheme("pbm", block=(8, 16)).restoration_log10_probability(["x", "x", "y"], (16, 16)) == \
        pytest.approx(-3 * math.log10(2))


# -- a new scheme is one class ------------------------------------------------------------------------

class _Invert(Scheme):
    """A toy scheme: 255 - v, on the training and the test images."""

    name = "invert"
    randomized = False
    transforms_test = True

    def __init__(self, *, strength: int = 255):
        self.strength = strength

    def _protect(self, images, labels):
        return (self.strength - images.astype(int)).clip(0, 255).astype(np.uint8)

    def _protect_test(self, images):
        return self._protect(images, None)


def test_a_new_scheme_needs_only_its_own_methods(data):
    x, _ = data
    scheme = _Invert()
    assert scheme.label == "invert strength=255" and scheme.to_dict() == {"scheme": "invert", "strength": 255}
    out = scheme.fit_protect(x, seed=0)
    np.testing.assert_array_equal(out, 255 - x)
    np.testing.assert_array_equal(scheme.protect_public(x), out)
    assert scheme.attack_block(x.shape[1:]) is None and scheme.restoration_log10_probability([0], (4, 4)) is None


# -- on real images -----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["visualmixer", "pixel_encryption", "block_encryption"])
def test_schemes_transform_the_test_set_consistently(name):
    faces = pbmlib.load_faces()
    x = np.repeat(pbmlib.data.datasets.resize_images(faces.images[:10], (24, 24))[..., None], 3, axis=3)
    scheme = get_scheme(name)
    assert scheme.transforms_test
    train = scheme.fit_protect(x, faces.labels[:10], seed=3)
    test = scheme.protect_test(x)
    assert train.shape == x.shape and not np.array_equal(train, x)
    if name != "visualmixer":  # keyed schemes: the same key for training and test images
        np.testing.assert_array_equal(train, test)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["visualmixer", "pixel_encryption", "block_encryption"])
def test_each_scheme_trains_the_small_cnn_above_chance(name):
    from pbmlib.data.split import stratified_split
    from pbmlib.learn.training import train_and_evaluate

    faces = pbmlib.load_faces()
    images = pbmlib.data.datasets.resize_images(faces.images, (24, 24))
    images = np.repeat(images[..., None], 3, axis=3)
    tr, te = stratified_split(faces.labels, seed=0)
    scheme = get_scheme(name)
    train = (scheme.fit_protect(images[tr], faces.labels[tr], seed=0), faces.labels[tr])
    record = train_and_evaluate(train, (scheme.protect_test(images[te]), faces.labels[te]), epochs=10,
                                seed=0, adaptation=scheme.adaptation, model_name="small_cnn")
    assert record["test_accuracy_mean"] > 0.7  # chance is 0.5


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


def test_pbm_scheme_is_mix_blocks():
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (60, 20, 20), dtype=np.uint8), np.repeat(["a", "b", "c"], 20)
    images, labels = noise
    scheme = get_scheme("pbm", block=(5, 4), n_donors=3, rounds=2)
    np.testing.assert_array_equal(scheme.fit_protect(images, labels, seed=4),  # mixes on the fitted stream
                                  pbmlib.mix_blocks(images, labels, block=(5, 4), n_donors=3, rounds=2,
                                                    seed=np.random.default_rng(scheme.seeds_[0])))
    assert not scheme.transforms_test and scheme.label == "pbm block=5x4 n_donors=3 rounds=2"
    assert get_scheme("pbm", block=(5, 5)).label == "pbm block=5x5"
