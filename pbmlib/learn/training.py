"""Train a classifier on (original, mixed or otherwise protected) images and test it on clean ones.

Keras 3 only (no backend-specific code): TensorFlow is the default backend on the
CPU; with ``KERAS_BACKEND=jax`` the same code runs on the lent GPU machines.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from .._io import versions
from .._validation import check_images, check_positive_int
from ..data.augmentation import Augmentation, expand_with_augmentation
from .layers import augmentation_layers
from .models import build_model

__all__ = ["train_and_evaluate", "compare_training", "encode_targets", "train_test_split"]


def train_test_split(labels, *, test_fraction: float = 0.3, seed=None) -> tuple[np.ndarray, np.ndarray]:
    """Stratified split: indices of the training and test images.

    Every class contributes ``round(test_fraction * size)`` images to the test set
    (at least one, and at least one stays for training).

    Returns
    -------
    train_index, test_index : ndarray of int64, sorted
    """
    from .._validation import check_labels, check_probability, check_rng

    check_probability(test_fraction, name="test_fraction")
    rng = check_rng(seed)
    codes, classes = check_labels(labels, len(labels))
    test = []
    for code in range(len(classes)):
        members = rng.permutation(np.flatnonzero(codes == code))
        if members.size < 2:
            raise ValueError(f"class {classes[code]!r} has {members.size} image(s); a split needs at least 2")
        k = min(max(1, round(test_fraction * members.size)), members.size - 1)
        test.append(members[:k])
    test = np.sort(np.concatenate(test))
    train = np.setdiff1d(np.arange(codes.size), test)
    return train, test


def encode_targets(train_labels, test_labels) -> tuple[np.ndarray, np.ndarray, list]:
    """Integer targets for training and test labels; test labels must occur in training.

    Returns
    -------
    y_train, y_test : ndarray of int64
    classes : list
        Sorted distinct training labels; ``classes[y]`` is the label of target y.
    """
    classes = sorted(set(np.asarray(train_labels).tolist()), key=str)
    index = {c: i for i, c in enumerate(classes)}
    unknown = sorted({c for c in np.asarray(test_labels).tolist() if c not in index}, key=str)
    if unknown:
        raise ValueError(f"test labels {unknown[:5]} do not occur in the training labels {classes[:10]}")
    to_int = lambda labels: np.array([index[c] for c in np.asarray(labels).tolist()], dtype=np.int64)
    return to_int(train_labels), to_int(test_labels), classes


def _as_float(images: np.ndarray) -> np.ndarray:
    images = check_images(images)
    if images.ndim == 3:
        images = images[..., None]
    return images.astype("float32")


def _make_optimizer(name: str, learning_rate: float | None):
    import keras

    options = {"adam": keras.optimizers.Adam, "sgd": keras.optimizers.SGD, "rmsprop": keras.optimizers.RMSprop}
    if name not in options:
        raise ValueError(f"optimizer must be one of {sorted(options)}, got {name!r}")
    return options[name]() if learning_rate is None else options[name](learning_rate=learning_rate)


def _one_run(model_name, x_train, y_train, x_test, y_test, n_classes, *, epochs, batch_size, optimizer,
             learning_rate, seed, augment, verbose, adaptation):
    import keras

    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    if augment is not None and augment.mode == "offline":  # x_train holds uint8 values as float32
        x_aug, y_aug = expand_with_augmentation(x_train.astype(np.uint8), y_train, augmentation=augment, seed=seed)
        x_train, y_train = x_aug.astype("float32"), y_aug
    preprocessing = augmentation_layers(augment, seed=seed) if augment is not None and augment.mode == "online" \
        else None
    model = build_model(model_name, input_shape=x_train.shape[1:], classes=n_classes, preprocessing=preprocessing,
                        adaptation=adaptation)
    model.compile(optimizer=_make_optimizer(optimizer, learning_rate), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    t0 = time.perf_counter()
    history = model.fit(x_train, y_train, epochs=epochs, batch_size=batch_size, shuffle=True, verbose=verbose)
    fit_s = time.perf_counter() - t0
    loss, accuracy = model.evaluate(x_test, y_test, batch_size=max(batch_size, 64), verbose=0)
    per_epoch = [{"epoch": i + 1, **{k: float(v[i]) for k, v in history.history.items()}} for i in range(epochs)]
    return {
        "seed": seed,
        "test_accuracy": float(accuracy),
        "test_loss": float(loss),
        "history": per_epoch,
        "fit_seconds": fit_s,
        "train_images_per_second": x_train.shape[0] * epochs / fit_s,
        "n_train_images": int(x_train.shape[0]),
        "n_parameters": int(model.count_params()),
    }


def train_and_evaluate(
    model_name: str,
    train: tuple,
    test: tuple,
    *,
    epochs: int = 10,
    batch_size: int = 32,
    optimizer: str = "adam",
    learning_rate: float | None = None,
    seed: int = 0,
    augment: Augmentation | None = None,
    repeats: int = 1,
    verbose: int = 0,
    adaptation: str | None = None,
) -> dict:
    """Train ``model_name`` on ``train`` and measure accuracy on the clean ``test`` set.

    Parameters
    ----------
    model_name : str
        See :func:`pbmlib.models.build_model` (``"small_cnn"``, ``"resnet50"``, ...).
    train, test : (images, labels)
        images: uint8 (N, H, W) or (N, H, W, C); labels: length N. Test labels must
        occur in training. The test images are never augmented or otherwise changed.
    epochs, batch_size : int
    optimizer : {"adam", "sgd", "rmsprop"}
    learning_rate : float, optional
        Keras' default for the optimizer when None.
    seed : int
        Run r uses seed ``seed + r`` (``keras.utils.set_random_seed``): weights,
        shuffling and augmentation repeat exactly on the CPU.
    augment : Augmentation, optional
        The paper's flip / rotation / brightness, online (Keras layers, training only)
        or offline (the set expanded by augmented copies).
    repeats : int, default=1
        Independent trainings; the paper trains each configuration 5 times.
    verbose : int, default=0
        Keras' progress output (0 silent, 1 progress bar, 2 one line per epoch).
    adaptation : {None, "pixel", "block"}
        Adaptation network in front of the model, for encrypted training sets.

    Returns
    -------
    dict
        ``test_accuracy_mean``, ``test_accuracy_std`` (sample std; NaN for one run),
        ``test_loss_mean``, ``test_loss_std``, ``runs`` (per run: ``test_accuracy``,
        ``test_loss``, ``history`` per epoch, ``fit_seconds``,
        ``train_images_per_second``, ``n_parameters``), ``wall_seconds``,
        ``parameters`` and ``versions``.
    """
    repeats = check_positive_int(repeats, name="repeats")
    epochs = check_positive_int(epochs, name="epochs")
    batch_size = check_positive_int(batch_size, name="batch_size")
    x_train, x_test = _as_float(train[0]), _as_float(test[0])
    if x_train.shape[1:] != x_test.shape[1:]:
        raise ValueError(f"training images {x_train.shape[1:]} and test images {x_test.shape[1:]} differ in shape")
    y_train, y_test, classes = encode_targets(train[1], test[1])
    if len(classes) < 2:
        raise ValueError(f"training needs at least 2 classes, got {classes}")
    if augment is not None and not isinstance(augment, Augmentation):
        raise ValueError(f"augment must be None or a pbmlib.augmentation.Augmentation, got {augment!r}")
    started = time.perf_counter()
    runs = [
        _one_run(model_name, x_train, y_train, x_test, y_test, len(classes), epochs=epochs, batch_size=batch_size,
                 optimizer=optimizer, learning_rate=learning_rate, seed=seed + r, augment=augment, verbose=verbose,
                 adaptation=adaptation)
        for r in range(repeats)
    ]
    acc = np.array([r["test_accuracy"] for r in runs])
    loss = np.array([r["test_loss"] for r in runs])
    std = (lambda v: float(v.std(ddof=1)) if v.size > 1 else float("nan"))
    return {
        "model": model_name,
        "test_accuracy_mean": float(acc.mean()),
        "test_accuracy_std": std(acc),
        "test_loss_mean": float(loss.mean()),
        "test_loss_std": std(loss),
        "runs": runs,
        "wall_seconds": time.perf_counter() - started,
        "parameters": {"epochs": epochs, "batch_size": batch_size, "optimizer": optimizer,
                       "learning_rate": learning_rate, "seed": seed, "repeats": repeats,
                       "augment": augment.to_dict() if augment is not None else None, "adaptation": adaptation,
                       "n_train": int(x_train.shape[0]), "n_test": int(x_test.shape[0]), "classes": classes},
        "versions": versions(),
    }


def compare_training(
    model_name: str,
    conditions: dict,
    test: tuple,
    **train_kwargs,
) -> tuple[pd.DataFrame, dict]:
    """Train the same model with the same settings and seeds under several conditions.

    Parameters
    ----------
    model_name : str
    conditions : dict of name -> (images, labels) or (images, labels, Augmentation)
        E.g. ``{"original": (x, y), "mixed": (xm, y), "mixed+augment": (xm, y, Augmentation())}``.
    test : (images, labels)
        One clean test set for every condition.
    **train_kwargs
        Passed to :func:`train_and_evaluate` (``epochs``, ``repeats``, ``seed``, ...).

    Returns
    -------
    table : DataFrame
        One row per condition: ``test_accuracy_mean``, ``test_accuracy_std``,
        ``test_loss_mean``, ``test_loss_std``, ``repeats``, ``fit_seconds_mean``, and
        ``accuracy_drop`` (points below the first condition's mean accuracy).
    records : dict of name -> the record of :func:`train_and_evaluate`
    """
    records = {}
    for name, condition in conditions.items():
        images, labels, *rest = condition
        records[name] = train_and_evaluate(model_name, (images, labels), test,
                                           augment=rest[0] if rest else None, **train_kwargs)
    rows = []
    for name, rec in records.items():
        rows.append({"condition": name, "test_accuracy_mean": rec["test_accuracy_mean"],
                     "test_accuracy_std": rec["test_accuracy_std"], "test_loss_mean": rec["test_loss_mean"],
                     "test_loss_std": rec["test_loss_std"], "repeats": len(rec["runs"]),
                     "fit_seconds_mean": float(np.mean([r["fit_seconds"] for r in rec["runs"]]))})
    table = pd.DataFrame(rows).set_index("condition")
    table["accuracy_drop"] = 100 * (table["test_accuracy_mean"].iloc[0] - table["test_accuracy_mean"])
    return table, records
