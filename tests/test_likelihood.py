"""Mechanism-aware likelihood-ratio attacks (pbmlib.privacy.likelihood): they recover membership from a
release whose mechanism they know, and are at chance on a release independent of the members."""

import numpy as np
import pytest

from pbmlib.data.augmentation import Augmentation
from pbmlib.privacy.likelihood import likelihood_scores
from pbmlib.privacy.mechanism import Mechanism, Noise
from pbmlib.privacy.statistics import roc_auc
from pbmlib.schemes import get_scheme


@pytest.fixture(scope="module")
def pool():
    """Smooth synthetic images (so that blocks and cells carry signal), two labels, half members."""
    rng = np.random.default_rng(0)
    base = rng.normal(128, 50, (240, 4, 4))
    images = np.clip(np.kron(base, np.ones((5, 5))) + rng.normal(0, 8, (240, 20, 20)), 0, 255).astype(np.uint8)
    labels = np.repeat(["a", "b"], 120)
    members = np.zeros(240, bool)
    members[rng.permutation(240)[:120]] = True
    return images, labels, members


def auc(scores, members):
    return roc_auc(scores[members], scores[~members])


def test_censored_noise_is_a_distribution_over_grey_levels():
    levels = np.arange(256)
    for noise in (Noise("gaussian", 30.0), Noise("laplace", 100.0), Noise("gaussian", 0.3)):
        for mean in (-40.0, 0.0, 17.3, 250.0, 300.0):
            assert np.exp(noise.log_prob(levels, mean)).sum() == pytest.approx(1.0, abs=1e-9)
    clipped = Noise("laplace", 100.0).log_prob(np.array([0, 128, 255]), 250.0)
    assert clipped[2] > clipped[0] > clipped[1]  # clipping piles the tails' mass on 255 and 0


@pytest.mark.parametrize("name, params, floor", [
    ("dppix", {"epsilon": 1.0, "cell": 5}, 0.9),
    ("pbm", {"block": 5}, 0.95),
    ("pbm_noise", {"block": 5, "sigma": 48.0}, 0.85),
    ("pbm_average", {"block": 5, "k": 4}, 0.7),
    ("pbm_shuffle", {"block": 5}, 0.95),
    ("pixelate", {"cell": 5}, 0.95),
])
def test_recovers_members_and_is_at_chance_on_an_independent_release(pool, name, params, floor):
    images, labels, members = pool
    scheme = get_scheme(name, **params).fit(images[members], labels[members], seed=0)
    released = scheme.protect(images[members], labels[members])
    found = likelihood_scores(scheme.mechanism(), released, labels[members], images, labels)
    assert auc(found.membership, members) > floor
    assert found.reid.shape == (members.sum(), len(images))
    assert np.isneginf(found.reid[labels[members] == "a"][:, labels == "b"]).all()  # labels are released
    # the same mechanism on images none of the candidates are: nothing to find
    rng = np.random.default_rng(1)
    strangers = np.clip(np.kron(rng.normal(128, 50, (120, 4, 4)), np.ones((5, 5))), 0, 255).astype(np.uint8)
    unrelated = scheme.protect(strangers, labels[members])
    null = likelihood_scores(scheme.mechanism(), unrelated, labels[members], images, labels)
    assert abs(auc(null.membership, members) - 0.5) < 0.12


def test_reidentification_ranks_the_source_first(pool):
    images, labels, members = pool
    scheme = get_scheme("pbm_noise", block=5, sigma=32.0).fit(images[members], labels[members], seed=0)
    released = scheme.protect(images[members], labels[members])
    found = likelihood_scores(scheme.mechanism(), released, labels[members], images[members], labels[members])
    assert (found.reid.argmax(axis=1) == np.arange(members.sum())).mean() > 0.9


def test_a_mechanism_without_a_comparable_feature_is_refused(pool):
    images, labels, _ = pool
    with pytest.raises(ValueError, match="leaves no feature"):
        likelihood_scores(Mechanism(augmentation=Augmentation()), images[:4], labels[:4], images, labels)
    with pytest.raises(ValueError, match="differ in image shape"):
        likelihood_scores(Mechanism(), images[:4, :10], labels[:4], images, labels)


def test_the_transform_search_recovers_members_of_an_augmented_release_and_is_at_chance_on_another(pool):
    from pbmlib.privacy.transform_search import transform_search_scores

    images, labels, members = pool
    scheme = get_scheme("pbm_augment", block=5).fit(images[members], labels[members], seed=0)
    released = scheme.protect(images[members], labels[members])
    found = transform_search_scores(scheme.mechanism(), released, labels[members], images, labels)
    assert auc(found.membership, members) > 0.9 and auc(found.membership_assignment, members) > 0.9
    own = np.flatnonzero(members)  # released image i comes from candidate own[i], a block in two kept
    assert (found.reid.argmax(axis=1) == own).mean() > 0.8
    rng = np.random.default_rng(1)
    strangers = np.clip(np.kron(rng.normal(128, 50, (120, 4, 4)), np.ones((5, 5))), 0, 255).astype(np.uint8)
    null = transform_search_scores(scheme.mechanism(), scheme.protect(strangers, labels[members]), labels[members],
                                   images, labels)
    assert abs(auc(null.membership, members) - 0.5) < 0.12


def test_the_searched_rotation_is_scipys_bilinear_mirrored_rotation():
    """The search computes the published rotation with precomputed neighbours and weights; it must be the
    interpolation scipy's map_coordinates (order 1, mirrored border) gives."""
    from scipy.ndimage import map_coordinates

    from pbmlib.privacy.transform_search import _source_coords, _transform

    x = np.random.default_rng(0).integers(0, 256, (3, 12, 10, 2)).astype(np.float32)
    for flip in (False, True):
        for degrees in (-15.0, -7.3, 0.4, 12.9):
            sy, sx = _source_coords(12, 10, degrees)
            source = x[:, :, ::-1] if flip else x
            expected = np.stack([np.stack([map_coordinates(source[n, ..., c], [sy, sx], order=1, mode="mirror")
                                           for c in range(2)], axis=-1) for n in range(3)])
            np.testing.assert_allclose(_transform(x, flip, degrees), expected, atol=1e-3)
