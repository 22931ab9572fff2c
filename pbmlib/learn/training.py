"""Train a classifier on (original, mixed or otherwise protected) images and test it on clean ones.

Keras 3 only (no backend-specific code): TensorFlow is the default backend on the
CPU; with ``KERAS_BACKEND=jax`` the same code runs on the lent GPU machines.

Training streams its batches from the uint8 images (:mod:`pbmlib.learn.streaming`), so
memory does not grow with the set in float, and a ``backup_dir`` makes a training
resumable after a kill (Keras' ``BackupAndRestore``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np

from .._fs import write_json_atomic
from .._io import versions
from .._validation import check_images, spawn_seeds
from ..data.augmentation import Augmentation
from ..study.settings import TrainingSettings
from .quiet import quiet_keras

__all__ = ["train_and_evaluate", "encode_targets"]


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


def _make_optimizer(name: str, learning_rate: float | None):
    keras = quiet_keras()

    options = {"adam": keras.optimizers.Adam, "sgd": keras.optimizers.SGD, "rmsprop": keras.optimizers.RMSprop}
    if name not in options:
        raise ValueError(f"optimizer must be one of {sorted(options)}, got {name!r}")
    return options[name]() if learning_rate is None else options[name](learning_rate=learning_rate)


def _seed_states(model) -> dict:
    """The states of the model's random generators (dropout, augmentation layers).

    ``save_weights``, hence ``BackupAndRestore``, leaves them out; restoring them makes a
    resumed training draw the same dropout masks as an uninterrupted one.
    """
    return {v.path: np.asarray(v.numpy()).tolist() for v in model.variables if v.path.endswith("seed_generator_state")}


def _callbacks(batches, *, run: int, run_dir: Path | None, log: dict, progress):
    """The callbacks of one training: epoch numbering of the batches, history log, progress, backup.

    ``log`` holds ``history`` (epoch -> logs) and ``seed_states`` (epoch -> generator
    states after it), written to ``run_dir/history.json`` after every epoch.
    """
    keras = quiet_keras()

    class Epochs(keras.callbacks.Callback):
        started_at = None

        def on_epoch_begin(self, epoch, logs=None):
            if self.started_at is None:  # the first epoch of this call: 0, or where a backup resumes
                self.started_at = epoch
                batches.first_epoch = epoch  # before Keras makes the first iterator
                for key in ("history", "seed_states"):
                    for done in [e for e in log[key] if int(e) > epoch]:
                        del log[key][done]  # logged, but killed before its backup: trained again
                if epoch > 0 and epoch in log["seed_states"]:
                    for variable in self.model.variables:
                        if variable.path in log["seed_states"][epoch]:
                            variable.assign(np.asarray(log["seed_states"][epoch][variable.path],
                                                       dtype=variable.dtype))

        def on_epoch_end(self, epoch, logs=None):
            log["history"][epoch + 1] = {k: float(v) for k, v in (logs or {}).items()}
            log["seed_states"][epoch + 1] = _seed_states(self.model)
            if run_dir is not None:
                write_json_atomic(run_dir / "history.json",
                                  {key: {str(e): v for e, v in sorted(log[key].items())} for key in log})
            if progress is not None:
                progress(run, epoch + 1, dict(log["history"][epoch + 1]))

    epochs = Epochs()
    callbacks = [epochs]
    if run_dir is not None:  # after the history log: an epoch is logged before its backup is
        callbacks.append(keras.callbacks.BackupAndRestore(str(run_dir / "keras_backup"), double_checkpoint=True,
                                                          delete_checkpoint=False))
    return epochs, callbacks


def _repair_backup(folder: Path) -> None:
    """Fall back to Keras' previous checkpoint when a kill truncated ``training_metadata.json``.

    ``BackupAndRestore(double_checkpoint=True)`` falls back itself when the weights file is
    unreadable, but not when the metadata is: a kill while it was written leaves a file
    that is not JSON. Then the ``.bkp`` pair (the epoch before) is used, or, without one,
    the backup is dropped and the training starts over.
    """
    meta = folder / "training_metadata.json"

    def readable(path):
        try:
            return isinstance(json.loads(path.read_text()).get("epoch"), int)
        except (OSError, ValueError, AttributeError):
            return False

    if not meta.exists() or readable(meta):
        return
    previous = folder / "training_metadata.json.bkp"
    if readable(previous) and (folder / "latest.weights.h5.bkp").exists():
        shutil.copyfile(folder / "latest.weights.h5.bkp", folder / "latest.weights.h5")
        shutil.copyfile(previous, meta)
    else:
        shutil.rmtree(folder)


@dataclasses.dataclass
class _Job:
    """Everything the repeats of one :func:`train_and_evaluate` call share."""

    training: TrainingSettings
    train: tuple  # (images, targets, index)
    test: tuple
    n_classes: int
    augment: Augmentation | None
    adaptation: str | None
    verbose: int
    probes: dict
    backup_dir: Path | None
    progress: object


def _one_run(job: _Job, run: int, seed: int) -> dict:
    keras = quiet_keras()
    run_dir = None if job.backup_dir is None else job.backup_dir / f"run_{run}"
    record_path = run_dir / "record.json" if run_dir is not None else None
    if record_path is not None and record_path.exists():  # finished in an earlier call
        return json.loads(record_path.read_text())
    keras.backend.clear_session()
    from .seeding import keras_seed

    with keras_seed(seed):  # the caller's random and np.random states are given back afterwards
        return _fit_and_score(job, run, seed, run_dir, record_path)


def _fit_and_score(job: _Job, run: int, seed: int, run_dir: Path | None, record_path: Path | None) -> dict:
    from .layers import augmentation_layers
    from .models import build_model
    from .streaming import ImageBatches

    settings, augment = job.training, job.augment
    images, targets, index = job.train
    offline = augment if augment is not None and augment.mode == "offline" else None
    batches = ImageBatches(images, targets, index=index, batch_size=settings.batch_size, shuffle=True, repeat=True,
                           augment=offline, seed=seed)
    preprocessing = augmentation_layers(augment, seed=seed) if augment is not None and augment.mode == "online" \
        else None
    model = build_model(settings.model_name, input_shape=images.shape[1:], classes=job.n_classes,
                        preprocessing=preprocessing, adaptation=job.adaptation)
    model.compile(optimizer=_make_optimizer(settings.optimizer, settings.learning_rate),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    log = {"history": {}, "seed_states": {}}
    if run_dir is not None:
        run_dir.mkdir(parents=True, exist_ok=True)
        if (run_dir / "history.json").exists():
            saved = json.loads((run_dir / "history.json").read_text())
            log = {key: {int(e): v for e, v in saved[key].items()} for key in log}
        _repair_backup(run_dir / "keras_backup")
    epoch_log, callbacks = _callbacks(batches, run=run, run_dir=run_dir, log=log, progress=job.progress)
    t0 = time.perf_counter()
    model.fit(batches, epochs=settings.epochs, steps_per_epoch=len(batches), shuffle=False, verbose=job.verbose,
              callbacks=callbacks)
    fit_s = time.perf_counter() - t0
    resumed_from = epoch_log.started_at if epoch_log.started_at is not None else settings.epochs
    test_images, test_targets, test_index = job.test
    test_batches = ImageBatches(test_images, test_targets, index=test_index, batch_size=max(settings.batch_size, 64))
    probabilities = model.predict(test_batches, verbose=0)
    expected = test_targets if test_index is None else test_targets[test_index]
    own = probabilities[np.arange(len(expected)), expected]
    history = log["history"]
    if sorted(history) != list(range(1, settings.epochs + 1)):
        raise RuntimeError(f"training logged epochs {sorted(history)}, expected 1 to {settings.epochs}")
    correct = probabilities.argmax(axis=1) == expected
    record = {
        "seed": seed,
        "test_accuracy": float(correct.mean()),
        "test_loss": float(-np.log(np.clip(own, 1e-12, 1.0)).mean()),
        "test_correct": correct.astype(int).tolist(),
        "history": [{"epoch": e, **history[e]} for e in range(1, settings.epochs + 1)],
        "fit_seconds": fit_s,
        "train_images_per_second": batches.n_images * (settings.epochs - resumed_from) / fit_s,
        "n_train_images": int(batches.n_images),
        "n_parameters": int(model.count_params()),
        "resumed_from_epoch": int(resumed_from),
    }
    if job.probes:
        from .shadows import logit_confidences  # shadows builds on this module

        record["probe_confidences"] = {name: logit_confidences(model, images_, targets_)[0, :, 0].tolist()
                                       for name, (images_, targets_) in job.probes.items()}
    if record_path is not None:
        write_json_atomic(record_path, record)
        shutil.rmtree(run_dir / "keras_backup", ignore_errors=True)
    return record


def _digest(images: np.ndarray, labels: np.ndarray, index) -> str:
    """A cheap fingerprint of a data set: shape, labels, rows used and 16 sampled images."""
    digest = hashlib.sha256(repr((images.shape, str(images.dtype))).encode())
    digest.update(np.asarray(labels).astype(str).tobytes())
    if index is not None:
        digest.update(np.asarray(index, dtype=np.int64).tobytes())
    for row in np.unique(np.linspace(0, images.shape[0] - 1, 16).astype(np.int64)):
        digest.update(np.ascontiguousarray(images[row]).tobytes())
    return digest.hexdigest()


def _check_backup_dir(backup_dir, settings: dict) -> Path:
    """Create ``backup_dir`` for these settings, or check that it holds a backup of the same ones."""
    backup_dir = Path(backup_dir)
    path = backup_dir / "settings.json"
    if path.exists():
        try:
            saved = json.loads(path.read_text())
        except ValueError:
            saved = None
        wanted = json.loads(json.dumps(settings))
        if saved != wanted:
            differ = sorted(k for k in set(wanted) | set(saved or {}) if (saved or {}).get(k) != wanted.get(k))
            raise ValueError(f"backup_dir {backup_dir} holds a training with other settings or data (differs in: "
                             f"{', '.join(differ)}); pass a new folder, or delete it to start over")
    elif backup_dir.exists() and any(backup_dir.iterdir()):
        raise ValueError(f"backup_dir {backup_dir} is not empty and holds no training backup; pass a new or "
                         f"empty folder")
    else:
        write_json_atomic(path, settings)
    return backup_dir


def _rows(name: str, data, index) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    try:
        images, labels = data
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair (images, labels), got {type(data).__name__}") from None
    images = check_images(images, name=f"{name} images")  # a memmap stays a view, not a copy
    labels = np.asarray(labels)
    if labels.shape != (images.shape[0],):
        raise ValueError(f"{name} labels must have shape ({images.shape[0]},), one per image, got {labels.shape}")
    if index is not None:
        index = np.asarray(index)
        if index.ndim != 1 or index.size == 0 or not np.issubdtype(index.dtype, np.integer) \
                or index.min() < 0 or index.max() >= images.shape[0]:
            raise ValueError(f"{name}_index must be a non-empty 1-d array of row numbers in "
                             f"[0, {images.shape[0]}), got {index!r:.80}")
    return images, labels, index


def train_and_evaluate(train: tuple, test: tuple, *, training: TrainingSettings | None = None, seed=None,
                       augment: Augmentation | None = None, adaptation: str | None = None, probes: dict | None = None,
                       backup_dir: str | os.PathLike | None = None, progress=None, train_index=None,
                       test_index=None, verbose: int = 0, **options) -> dict:
    """Train a classifier on ``train`` and measure it on the clean ``test`` set, ``repeats`` times.

    The images are streamed (:class:`pbmlib.learn.streaming.ImageBatches`): each batch
    is read from the uint8 images and converted to float32 when it is needed, so the
    set is never held in float and a memory map (:func:`pbmlib.data.store.load_store`)
    is never read whole into memory.

    Parameters
    ----------
    train, test : (images, labels)
        images: uint8 (N, H, W) or (N, H, W, C), an array or a memory map; labels:
        length N. Test labels must occur in training. The test images are never
        augmented or otherwise changed.
    training : TrainingSettings, optional
        Or its fields as keywords: ``model_name`` (see
        :func:`pbmlib.learn.models.build_model`), ``epochs``, ``batch_size``,
        ``optimizer``, ``learning_rate``, ``repeats`` (independent trainings; the paper
        trains each configuration 5 times).
    seed : None, int, numpy.random.SeedSequence or numpy.random.Generator
        Every repeat gets a child stream (``SeedSequence.spawn``), turned into the int
        Keras takes (``keras.utils.set_random_seed``) and the batches' shuffling and
        augmentation: runs repeat exactly on the CPU for the same seed. None draws fresh
        entropy.
    augment : Augmentation, optional
        The paper's flip / rotation / brightness, online (Keras layers, training only)
        or offline (the set plus augmented copies, made batch by batch).
    adaptation : {None, "pixel", "block"}
        Adaptation network in front of the model, for encrypted training sets.
    probes : dict of name -> (images, labels), optional
        After each run, the trained model's logit-scaled confidence of the true label,
        ``log(p_y / (1 - p_y))`` computed from the logits in float64, on every one of these
        images (``runs[r]["probe_confidences"][name]``): what a membership-inference attacker
        on the *model* measures (:mod:`pbmlib.privacy.lira`). Labels must occur in training.
    backup_dir : path, optional
        Makes the training resumable: Keras' ``BackupAndRestore`` saves the model and
        optimizer there after every epoch, with the per-epoch history. A training killed
        part-way and called again with the same arguments resumes after its last
        finished epoch; a finished repeat's record is kept (``run_<r>/record.json``) and
        returned again without training. A folder holding a backup of other settings or
        data is refused.
    progress : callable, optional
        Called as ``progress(run, epoch, logs)`` after each epoch (run from 0, epoch
        from 1, ``logs`` the epoch's loss and accuracy).
    train_index, test_index : array of int, optional
        Use only these rows of ``train`` / ``test`` (e.g. from
        :func:`pbmlib.data.split.stratified_split` on one store), without copying them.
    verbose : int, default=0
        Keras' progress output (0 silent, 1 progress bar, 2 one line per epoch).

    Returns
    -------
    dict
        ``test_accuracy_mean``, ``test_accuracy_std`` (sample std; None for one run),
        ``test_loss_mean``, ``test_loss_std``, ``runs`` (per run: ``test_accuracy``,
        ``test_loss``, ``test_correct`` (per test image, 0 or 1), ``history`` per epoch,
        ``fit_seconds``, ``train_images_per_second``, ``n_train_images``,
        ``n_parameters``, ``resumed_from_epoch``), ``wall_seconds``, ``parameters`` and
        ``versions``.
    """
    training = TrainingSettings.coerce(training, where="train_and_evaluate", **options)
    x_train, labels_train, train_index = _rows("train", train, train_index)
    x_test, labels_test, test_index = _rows("test", test, test_index)
    if x_train.shape[1:] != x_test.shape[1:]:
        raise ValueError(f"training images {x_train.shape[1:]} and test images {x_test.shape[1:]} differ in shape")
    used_train = labels_train if train_index is None else labels_train[train_index]
    used_test = labels_test if test_index is None else labels_test[test_index]
    y_used, _, classes = encode_targets(used_train, used_test)
    if len(classes) < 2:
        raise ValueError(f"training needs at least 2 classes, got {classes}")
    code = {c: i for i, c in enumerate(classes)}  # targets for every row, so rows are picked by index
    y_train = np.array([code.get(c, -1) for c in labels_train.tolist()], dtype=np.int64)
    y_test = np.array([code.get(c, -1) for c in labels_test.tolist()], dtype=np.int64)
    probe_targets = {}
    for name, probe in (probes or {}).items():
        probe_images, probe_labels, _ = _rows(f"probes[{name!r}]", probe, None)
        unknown = sorted({c for c in probe_labels.tolist() if c not in code}, key=str)
        if unknown:
            raise ValueError(f"probes[{name!r}] has labels {unknown[:5]} that do not occur in training")
        probe_targets[name] = (probe_images, np.array([code[c] for c in probe_labels.tolist()], dtype=np.int64))
    if augment is not None and not isinstance(augment, Augmentation):
        raise ValueError(f"augment must be None or a pbmlib.data.augmentation.Augmentation, got {augment!r}")
    if progress is not None and not callable(progress):
        raise ValueError(f"progress must be None or a callable progress(run, epoch, logs), got {progress!r}")
    run_seeds = [int(s.generate_state(1, np.uint32)[0] >> 1) for s in spawn_seeds(seed, training.repeats)]
    parameters = {**training.to_dict(), "seeds": run_seeds,
                  "augment": augment.to_dict() if augment is not None else None, "adaptation": adaptation,
                  "n_train": int(y_used.size), "n_test": int(used_test.size), "classes": classes}
    if backup_dir is not None:
        settings = {**{k: v for k, v in parameters.items() if k != "repeats"},
                    "train": _digest(x_train, labels_train, train_index),
                    "test": _digest(x_test, labels_test, test_index)}
        backup_dir = _check_backup_dir(backup_dir, settings)
    job = _Job(training, (x_train, y_train, train_index), (x_test, y_test, test_index), len(classes), augment,
               adaptation, verbose, probe_targets, backup_dir, progress)
    started = time.perf_counter()
    runs = [_one_run(job, r, run_seed) for r, run_seed in enumerate(run_seeds)]
    acc = np.array([r["test_accuracy"] for r in runs])
    loss = np.array([r["test_loss"] for r in runs])
    std = (lambda v: float(v.std(ddof=1)) if v.size > 1 else None)
    return {
        "model": training.model_name,
        "test_accuracy_mean": float(acc.mean()),
        "test_accuracy_std": std(acc),
        "test_loss_mean": float(loss.mean()),
        "test_loss_std": std(loss),
        "runs": runs,
        "wall_seconds": time.perf_counter() - started,
        "parameters": parameters,
        "versions": versions(),
    }
