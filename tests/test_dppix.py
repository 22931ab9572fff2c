"""DP-Pix (pbmlib.schemes.dppix): the Laplace scale of the guarantee, seeds, parameters."""

import math

import numpy as np
import pytest

from pbmlib.schemes import SCHEMES, get_scheme
from pbmlib.schemes.dppix import DPPix, dppix_scale

INF = float("inf")


def _cell_values(out, cell):
    """One value per cell and channel (the scheme writes a constant into every cell)."""
    n, h, w = out.shape[:3]
    c = out.shape[3] if out.ndim == 4 else 1
    cells = out.reshape(n, h // cell, cell, w // cell, cell, c).astype(float)
    assert (cells == cells[:, :, :1, :, :1]).all()  # pixelated: constant inside each cell
    return cells[:, :, 0, :, 0].ravel()


@pytest.mark.parametrize("epsilon, cell, m", [(1.0, 5, 1), (2.0, 5, 4), (8.0, 2, 1), (0.5, 10, 2)])
def test_noise_scale_matches_255_m_over_cell2_epsilon(epsilon, cell, m):
    """Constant images: the cell values are 128 + Laplace(b), b = 255 m / (cell^2 epsilon) (Fan 2018)."""
    x = np.full((16000 // (40 // cell) ** 2, 40, 40), 128, np.uint8)
    scheme = get_scheme("dppix", epsilon=epsilon, cell=cell, m=m).fit(x, seed=0)
    expected = 255 * m / (cell**2 * epsilon)
    assert scheme.scale_ == pytest.approx(expected) == dppix_scale(epsilon=epsilon, cell=cell, m=m)
    deviation = _cell_values(scheme.protect(x), cell) - 128
    assert deviation.size >= 16000
    mad = np.abs(deviation).mean()  # E|L| = b for Laplace(b)
    assert mad == pytest.approx(expected, rel=0.03)
    assert abs(deviation.mean()) < 0.05 * expected  # unbiased
    assert deviation.std() / mad == pytest.approx(math.sqrt(2), rel=0.06)  # Laplace, not Gaussian (1.25)


def test_colour_images_scale_with_the_channels_and_noise_each_independently():
    """A pixel is C values: the scale is C times the grey one, so the guarantee still covers m pixels."""
    x = np.full((1000, 20, 20, 3), 128, np.uint8)
    scheme = get_scheme("dppix", epsilon=6.0, cell=5).fit(x, seed=1)
    expected = 3 * 255 / (25 * 6.0)
    assert scheme.scale_ == pytest.approx(expected)
    out = scheme.protect(x).astype(float)[:, ::5, ::5]  # one pixel per cell, (N, 4, 4, 3)
    assert np.abs(out - 128).mean() == pytest.approx(expected, rel=0.03)
    r, g = (out[..., 0] - 128).ravel(), (out[..., 1] - 128).ravel()
    assert abs(np.corrcoef(r, g)[0, 1]) < 0.05  # independent noise per channel


def test_cell_means_and_rounding():
    x = np.zeros((1, 10, 10), np.uint8)
    x[0, :5, :5] = np.arange(25).reshape(5, 5)  # mean 12
    x[0, 5:, 5:] = 255
    out = get_scheme("dppix", epsilon=INF, cell=5).fit_protect(x, seed=0)
    assert out[0, 0, 0] == 12 and out[0, 0, 9] == 0 and out[0, 9, 9] == 255
    near_clip = np.full((200, 10, 10), 250, np.uint8)
    noisy = get_scheme("dppix", epsilon=1.0, cell=5).fit_protect(near_clip, seed=0)
    assert noisy.max() == 255 and noisy.dtype == np.uint8  # clipped, not wrapped


def test_epsilon_inf_is_plain_pixelation():
    x = np.random.default_rng(0).integers(0, 256, (8, 15, 10, 3), dtype=np.uint8)
    scheme = get_scheme("dppix", epsilon=INF, cell=5).fit(x, seed=0)
    assert scheme.epsilon == math.inf and scheme.scale_ == 0.0 and scheme.label == "dppix epsilon=inf"
    np.testing.assert_array_equal(scheme.protect(x), get_scheme("pixelate", cell=5).fit_protect(x))
    assert get_scheme("dppix", epsilon=np.float64("inf")).epsilon == math.inf


def test_same_seed_same_bytes_other_seed_other_bytes():
    x = np.random.default_rng(0).integers(0, 256, (6, 10, 10), dtype=np.uint8)
    a, b = (get_scheme("dppix", epsilon=1).fit(x, seed=3) for _ in range(2))
    np.testing.assert_array_equal(a.protect(x), b.protect(x))
    np.testing.assert_array_equal(a.protect(x), a.protect(x))  # replayed: no second draw of the noise
    assert not np.array_equal(a.protect(x), get_scheme("dppix", epsilon=1).fit_protect(x, seed=4))
    rng_a, rng_b = np.random.default_rng(7), np.random.default_rng(7)
    np.testing.assert_array_equal(DPPix(epsilon=1).fit_protect(x, seed=rng_a),
                                  DPPix(epsilon=1).fit_protect(x, seed=rng_b))
    assert not np.array_equal(DPPix(epsilon=1).fit_protect(x), DPPix(epsilon=1).fit_protect(x))  # seed=None: fresh
    np.testing.assert_array_equal(a.protect_test(x), x)  # test images stay clean


def test_contract_attributes():
    scheme = get_scheme("dppix", epsilon=2, cell=5, m=16)
    assert SCHEMES["dppix"] is DPPix and scheme.randomized and not scheme.transforms_test
    assert scheme.get_params() == {"epsilon": 2.0, "cell": 5, "m": 16}
    assert scheme.label == "dppix epsilon=2.0 m=16" and scheme.to_dict() == {"scheme": "dppix", "epsilon": 2.0,
                                                                            "cell": 5, "m": 16}
    assert scheme.attack_block((25, 25)) == (5, 5) and scheme.restoration_log10_probability([0, 1], (25, 25)) is None
    with pytest.raises(ValueError, match="does not divide"):
        scheme.attack_block((24, 24))
    public = np.zeros((3, 10, 10), np.uint8)
    assert scheme.protect_public(public, seed=0).shape == public.shape  # attacker's own noise


@pytest.mark.parametrize("params, match", [
    ({"epsilon": 0}, r"epsilon must be a number in \(0.0, inf\)"),
    ({"epsilon": -1.0}, "epsilon must be"),
    ({"epsilon": -INF}, "epsilon must be"),
    ({"epsilon": float("nan")}, "epsilon must be"),
    ({"epsilon": True}, "epsilon must be"),
    ({"epsilon": "1"}, "epsilon must be"),
    ({"epsilon": None}, "epsilon must be"),
    ({"epsilon": 1, "cell": 0}, "cell must be an int >= 1"),
    ({"epsilon": 1, "cell": 2.0}, "cell must be an int"),
    ({"epsilon": 1, "cell": True}, "cell must be an int"),
    ({"epsilon": 1, "m": 0}, "m must be an int >= 1"),
    ({"epsilon": 1, "m": 1.5}, "m must be an int"),
    ({"epsilon": 1, "m": False}, "m must be an int"),
])
def test_parameters_are_validated(params, match):
    with pytest.raises(ValueError, match=f"dppix: {match}"):
        get_scheme("dppix", **params)


def test_epsilon_is_required_and_fit_checks_the_cell():
    with pytest.raises(TypeError):
        DPPix()
    x = np.zeros((2, 12, 12), np.uint8)
    with pytest.raises(ValueError, match="does not divide"):
        DPPix(epsilon=1, cell=5).fit(x, seed=0)
    scheme = DPPix(epsilon=1, cell=4).fit(x, seed=0)
    with pytest.raises(ValueError, match=r"fitted on images of shape \(12, 12\)"):
        scheme.protect(np.zeros((2, 12, 12, 3), np.uint8))  # the scale was set for one channel
