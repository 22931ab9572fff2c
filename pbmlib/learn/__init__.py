"""Keras tier: models, adaptation and augmentation layers, training, learned inversion, and the studies
that train on protected sets.

Importing this package imports Keras with the process's standard error silenced for the
duration of the import only: TensorFlow's C++ start-up lines (absl, oneDNN,
``cpu_feature_guard``) are information for its developers, not for users of the
workbench. ``TF_CPP_MIN_LOG_LEVEL`` defaults to 1 (TensorFlow's C++ information lines off,
its warnings and errors on) unless the user set it, and TensorFlow's note that a new model's
functions were traced again is dropped (a study trains many models by design). Anything else
Keras or TensorFlow writes as a warning or an error is untouched.
"""

import os
import sys


def _import_keras_quietly() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    if "keras" in sys.modules:
        return
    try:
        saved = os.dup(2)
    except OSError:  # no usable standard error: nothing to silence
        import keras  # noqa: F401

        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        sys.stderr.flush()
        os.dup2(devnull, 2)
        import keras  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


_import_keras_quietly()


class _NoRetracingNotes:
    """Drops TensorFlow's "triggered tf.function retracing" note: every training builds a new model
    (that is the study), so each has its own functions; TensorFlow's other warnings pass."""

    def filter(self, record) -> bool:
        return "triggered tf.function retracing" not in record.getMessage()


def _hide_retracing_notes() -> None:
    import logging

    logging.getLogger("tensorflow").addFilter(_NoRetracingNotes())


_hide_retracing_notes()
