"""Seeding Keras without touching the caller's random state.

``keras.utils.set_random_seed`` seeds Python's ``random``, numpy's global generator and
the backend's. Training inside a notebook or a widget must not reseed the user's own
``random`` and ``np.random`` calls, so :func:`keras_seed` restores both afterwards.
"""

from __future__ import annotations

import random
from contextlib import contextmanager

import numpy as np

from .quiet import quiet_keras

keras = quiet_keras()

__all__ = ["keras_seed"]


@contextmanager
def keras_seed(seed: int):
    """Seed Keras (weights, shuffling, dropout, augmentation layers) with ``seed`` for the
    ``with`` block; Python's and numpy's global generators get their previous state back."""
    python_state, numpy_state = random.getstate(), np.random.get_state()
    keras.utils.set_random_seed(int(seed))
    try:
        yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)
