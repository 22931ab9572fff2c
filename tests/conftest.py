import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture
def labelled_images(rng):
    """24 random RGB 12x16 images in three classes of 10, 8 and 6."""
    images = rng.integers(0, 256, size=(24, 12, 16, 3), dtype=np.uint8)
    labels = np.array(["a"] * 10 + ["b"] * 8 + ["c"] * 6)
    return images, labels


def pytest_sessionstart(session):
    """Write the shipped notebooks' .ipynb working copies from their tracked scripts (see jupytext.toml)."""
    from pbmlib.workbench.notebooks import checkout_notebooks, ensure_notebooks

    ensure_notebooks(checkout_notebooks())
