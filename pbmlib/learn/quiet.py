"""Keras, imported quietly: called by every Keras entry point, never at import.

TensorFlow's C++ start-up lines (absl, oneDNN, ``cpu_feature_guard``) are information for
its developers, not for users of the workbench. :func:`quiet_keras` imports Keras with
the process's standard error silenced for the duration of that import only, sets
``TF_CPP_MIN_LOG_LEVEL`` to 1 unless the user set it (TensorFlow's C++ information lines
off, its warnings and errors on), and drops TensorFlow's note that a new model's
functions were traced again (a study trains many models by design). Anything else Keras
or TensorFlow writes as a warning or an error is untouched. Importing a module of
:mod:`pbmlib.learn` changes nothing; the first training, model or inversion does this once.
"""

from __future__ import annotations

import logging
import os
import sys

__all__ = ["quiet_keras"]


class _NoRetracingNotes(logging.Filter):
    """Drops TensorFlow's "triggered tf.function retracing" note; its other warnings pass."""

    def filter(self, record) -> bool:
        return "triggered tf.function retracing" not in record.getMessage()


_FILTER = _NoRetracingNotes()


def quiet_keras():
    """Import Keras (once, quietly; see the module docstring) and return the ``keras`` module."""
    if "keras" not in sys.modules:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
        try:
            saved = os.dup(2)
        except OSError:  # no usable standard error: nothing to silence
            saved = None
        if saved is not None:
            devnull = os.open(os.devnull, os.O_WRONLY)
            try:
                sys.stderr.flush()
                os.dup2(devnull, 2)
                import keras  # noqa: F401
            finally:
                os.dup2(saved, 2)
                os.close(saved)
                os.close(devnull)
    import keras

    tensorflow_log = logging.getLogger("tensorflow")
    if _FILTER not in tensorflow_log.filters:
        tensorflow_log.addFilter(_FILTER)
    return keras
