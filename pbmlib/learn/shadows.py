"""Many small models trained at once: the target and the shadow models of a model-level membership attack.

LiRA (:mod:`pbmlib.privacy.lira`) needs the same small CNN trained many times, each on
another random half of a *population* of candidate images. Training them one at a time
(:func:`pbmlib.learn.training.train_and_evaluate`) spends part of each step outside the
arithmetic: a Python batch from :class:`~pbmlib.learn.streaming.ImageBatches`, a dispatch of
one small graph. :func:`train_models` trains K models in **one compiled step**:

- the K models are ordinary :func:`~pbmlib.learn.models.build_model` Keras models (the small
  CNN by default), each built under its own seed, held side by side by one trainer model
  whose step runs all K forward and backward passes (one graph, one optimizer over their
  union; the summed loss gives every model exactly its own gradient, and Adam's updates are
  per weight);
- the images sit on the device once, as a uint8 variable; a step receives only the (batch, K)
  row numbers, gathers each model's batch there and converts it to float32;
- every model's batches come from its own seed (a new permutation of its training rows every
  epoch, the last batch of an epoch short, as in ``train_and_evaluate``), so a model's
  training depends on its seed and its rows, not on which models it was trained beside.

:func:`train_shadows` trains some or all shadow models of a design (population, settings,
seed) and can save their confidences to an ``.npz``; :func:`combine_shadow_scores` puts saved
parts together. The shadows depend only on the population, the settings and the seed, so
one set serves every attacked setting (every protected training set) of that population.
:func:`logit_confidences` scores any of these models, or a target trained elsewhere.

References
----------
.. [1] Carlini, Chien, Nasr, Song, Terzis, Tramèr (2022). Membership Inference Attacks From
       First Principles. IEEE S&P. arXiv:2112.03570
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import numbers
import os
import time
from pathlib import Path

import numpy as np

from .._fs import write_bytes_atomic
from .._io import versions
from .._validation import Settings, as_seed_sequence, check_choice, check_images, spawn_seeds
from ..privacy.lira import draw_inclusion, logit_confidence
from ..study.settings import TrainingSettings
from .models import build_model
from .quiet import quiet_keras
from .seeding import keras_seed
from .streaming import ImageBatches
from .training import _make_optimizer

keras = quiet_keras()

__all__ = ["QUERIES", "ShadowSettings", "train_models", "logit_confidences", "train_shadows",
           "combine_shadow_scores"]

#: Query views of a candidate: the image itself and its left-right mirror. [1]_ queries mirrors and
#: shifts of models trained with them; the models here train without augmentation, and on
#: Fashion-MNIST adding the mirror did not raise LiRA's figures (benchmarks/bench_lira.py).
QUERIES = {
    "identity": lambda images: images,
    "flip": lambda images: images[:, :, ::-1],
}

# The softmax layer of every build_model model: the confidences are computed from its input
# (the features) and its kernel and bias, in float64.
_HEAD = "predictions"
_FORMAT = 1  # version of the .npz written by train_shadows
#: Keras dtype policies a model can be trained with.
PRECISIONS = ("float32", "mixed_bfloat16")


@dataclasses.dataclass(frozen=True)
class ShadowSettings(Settings):
    """How the target and the shadow models are trained and queried: one recipe for all of them.

    Parameters
    ----------
    training : TrainingSettings or mapping, default=TrainingSettings(epochs=20)
        The target's recipe (``model_name``, ``epochs``, ``batch_size``, ``optimizer``,
        ``learning_rate``) as :func:`pbmlib.learn.training.train_and_evaluate` trains it
        (sparse categorical cross-entropy on the softmax outputs). ``repeats`` must be 1.
    queries : tuple of str, default=("identity",)
        Views of every candidate that are scored (:data:`QUERIES`).
    precision : {"float32", "mixed_bfloat16"}, default="float32"
        Keras' dtype policy of the models: ``"mixed_bfloat16"`` computes the convolutions
        and hidden layers in bfloat16 (weights and the softmax layer stay float32), faster
        on CPUs with AMX or AVX512-BF16 and on GPUs, but another recipe than a float32
        ``train_and_evaluate`` target: train the target with the same precision.
    """

    training: TrainingSettings = TrainingSettings(epochs=20)
    queries: tuple = ("identity",)
    precision: str = "float32"

    def __post_init__(self):
        training = TrainingSettings.coerce(self.training, where="ShadowSettings.training")
        if training.repeats != 1:
            raise ValueError(f"ShadowSettings.training.repeats must be 1 (every model has its own seed), got "
                             f"{training.repeats}")
        object.__setattr__(self, "training", training)
        queries = tuple(self.queries) if isinstance(self.queries, (list, tuple)) else ()
        if not queries or any(q not in QUERIES for q in queries) or len(set(queries)) != len(queries):
            raise ValueError(f"ShadowSettings.queries must be a non-empty tuple of distinct names among "
                             f"{list(QUERIES)}, got {self.queries!r}")
        object.__setattr__(self, "queries", queries)
        check_choice(self.precision, PRECISIONS, name="ShadowSettings.precision")

    def to_dict(self) -> dict:
        return {"training": self.training.to_dict(), "queries": list(self.queries), "precision": self.precision}


def _model_seeds(seed, n: int) -> list[np.random.SeedSequence]:
    if isinstance(seed, (list, tuple)):
        if len(seed) != n:
            raise ValueError(f"seeds must hold one seed per model ({n}), got {len(seed)}")
        return [s if isinstance(s, np.random.SeedSequence) else spawn_seeds(s, 1)[0] for s in seed]
    return spawn_seeds(seed, n)


def _int_seed(sequence: np.random.SeedSequence) -> int:
    """A 31-bit int from a seed sequence (Keras' ``set_random_seed`` takes ints)."""
    return int(sequence.generate_state(1, np.uint32)[0] >> 1)


def _epoch_order(sequence: np.random.SeedSequence, epoch: int, rows: np.ndarray) -> np.ndarray:
    """Model's rows in the order of ``epoch``: a permutation drawn from (its seed, epoch)."""
    child = np.random.SeedSequence(sequence.entropy, spawn_key=sequence.spawn_key + (1, epoch))
    return rows[np.random.default_rng(child).permutation(rows.size)]


def _trainer(images: np.ndarray, models: list):
    """One Keras model whose step trains every model of ``models`` on its own rows of ``images``.

    Input: (batch, K) int32 row numbers; output: (batch, K, classes) probabilities, model k's
    on its batch (column k). ``images`` (N, H, W, C) uint8 is held as one non-trainable variable.
    """
    from keras import ops

    class Trainer(keras.Model):
        def __init__(self):
            super().__init__(name="stacked_models")
            self.images = self.add_weight(shape=images.shape, dtype="uint8", trainable=False,
                                          initializer="zeros", name="images")
            self.images.assign(images)
            self.members = models

        def call(self, rows, training=False):
            outputs = [member(ops.cast(ops.take(self.images, rows[:, k], axis=0), "float32"), training=training)
                       for k, member in enumerate(self.members)]
            return ops.stack(outputs, axis=1)

    return Trainer()


def _summed_loss(targets, probabilities):
    """(batch,) the models' cross-entropies summed: each model's gradient is its own mean loss's."""
    from keras import ops

    return ops.sum(keras.losses.sparse_categorical_crossentropy(targets, probabilities), axis=1)


def train_models(images, targets, rows, *, settings: ShadowSettings = ShadowSettings(), seeds=None,
                 group_size: int | None = None, progress=None) -> list:
    """Train one small CNN per entry of ``rows``, K at a time in one compiled step.

    Parameters
    ----------
    images : ndarray of shape (N, H, W) or (N, H, W, C), uint8 in [0, 255]
        Every image any model trains on (e.g. a population, or a population and a protected
        set side by side); held once on the device as uint8.
    targets : array of int of shape (N,)
        Class numbers in [0, classes), classes = ``targets.max() + 1`` (at least 2).
    rows : sequence of arrays of int
        ``rows[k]``: the rows of ``images`` model k trains on.
    settings : ShadowSettings
    seeds : None, int, Generator, or a sequence of one seed per model
        Model k's weights, dropout and batch order come from seed k (with one seed, from
        child k of ``SeedSequence.spawn``). Pass an int for reproducible models.
    group_size : int, optional
        Models per compiled step (default: all models whose training sets have one size).
        A speed knob only: a model's training does not depend on its group.
    progress : None, True or callable, default=None
        True shows a progress bar (tqdm) in model-epochs; a callable is called as
        ``progress(done, total)`` after every epoch of a group.

    Returns
    -------
    list of keras.Model
        ``build_model(settings.training.model_name, input_shape=images.shape[1:],
        classes=...)`` models, trained; outputs are softmax probabilities.
    """
    images = check_images(images)
    if images.ndim == 3:
        images = images[..., None]
    targets = _check_targets(targets, images.shape[0])
    rows = _check_rows(rows, images.shape[0])
    if not isinstance(settings, ShadowSettings):
        raise ValueError(f"settings must be a ShadowSettings, got {settings!r}")
    if group_size is not None and (isinstance(group_size, bool) or not isinstance(group_size, numbers.Integral)
                                   or group_size < 1):
        raise ValueError(f"group_size must be None or an int >= 1, got {group_size!r}")
    if progress is not None and progress is not True and not callable(progress):
        raise ValueError(f"progress must be None, True or a callable progress(done, total), got {progress!r}")
    sequences = _model_seeds(seeds, len(rows))
    classes = int(targets.max()) + 1
    if classes < 2:
        raise ValueError("targets hold one class only; training needs at least 2")
    by_size: dict[int, list[int]] = {}
    for k, r in enumerate(rows):
        by_size.setdefault(r.size, []).append(k)
    groups = []
    for ks in by_size.values():
        step = group_size or len(ks)
        groups += [ks[i:i + step] for i in range(0, len(ks), step)]
    models = [None] * len(rows)
    done, total = 0, len(rows) * settings.training.epochs
    bar = None
    if progress is True:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc="models", unit="model-epoch")
        progress = lambda n, _total: bar.update(n - bar.n)
    for group in groups:
        trained = _train_group(images, targets, [rows[k] for k in group], [sequences[k] for k in group],
                               classes, settings,
                               None if progress is None else (lambda n, base=done: progress(base + n, total)))
        for k, model in zip(group, trained):
            models[k] = model
        done += len(group) * settings.training.epochs
    if bar is not None:
        bar.close()
    return models


def _train_group(images, targets, rows, sequences, classes, settings, progress):
    keras.backend.clear_session()
    recipe = settings.training
    members = [_build(recipe.model_name, images.shape[1:], classes, sequence, settings.precision)
               for sequence in sequences]
    trainer = _trainer(images, members)
    trainer.compile(optimizer=_make_optimizer(recipe.optimizer, recipe.learning_rate), loss=_summed_loss)
    for epoch in range(recipe.epochs):
        order = np.stack([_epoch_order(s, epoch, r) for s, r in zip(sequences, rows)], axis=1).astype(np.int32)
        trainer.fit(order, targets[order], batch_size=recipe.batch_size, epochs=1, shuffle=False, verbose=0)
        if progress is not None:
            progress((epoch + 1) * len(members))
    return members


def _build(model_name: str, input_shape, classes: int, sequence: np.random.SeedSequence, precision: str):
    """``build_model(model_name)`` with the weights and dropout seed of ``sequence`` and the dtype policy
    ``precision`` (the softmax layer float32); Keras' global policy is given back afterwards."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision)
    try:
        with keras_seed(_int_seed(sequence)):  # this model's seed alone
            model = build_model(model_name, input_shape=input_shape, classes=classes)
    finally:
        keras.config.set_dtype_policy(previous)
    if precision != "float32":
        model.get_layer(_HEAD).dtype_policy = "float32"  # probabilities and the loss in float32
    return model


def _check_targets(targets, n: int) -> np.ndarray:
    targets = np.asarray(targets)
    if targets.shape != (n,) or not np.issubdtype(targets.dtype, np.integer) or (n and targets.min() < 0):
        raise ValueError(f"targets must be {n} class numbers >= 0 (ints, one per image), got "
                         f"{targets.dtype} of shape {targets.shape}; encode labels with "
                         f"pbmlib.learn.training.encode_targets")
    return targets.astype(np.int64)


def _check_rows(rows, n: int) -> list[np.ndarray]:
    try:
        rows = [np.asarray(r) for r in rows]
    except TypeError:
        raise ValueError(f"rows must be a sequence of arrays of row numbers, got {rows!r:.80}") from None
    if not rows:
        raise ValueError("rows is empty: pass one array of training rows per model")
    for k, r in enumerate(rows):
        if r.ndim != 1 or r.size == 0 or not np.issubdtype(r.dtype, np.integer) or r.min() < 0 or r.max() >= n:
            raise ValueError(f"rows[{k}] must be a non-empty 1-d array of row numbers in [0, {n}), got {r!r:.80}")
    return rows


def logit_confidences(models, images, labels, *, queries=("identity",), batch_size: int = 500) -> np.ndarray:
    """Logit-scaled confidence of the true label of every model on every image and query.

    Reads the features the softmax layer receives and applies its kernel and bias
    in float64, so ``phi = z_y - logsumexp_{j != y} z_j``
    (:func:`pbmlib.privacy.lira.logit_confidence`) never goes through a probability that
    rounds to 1.

    Parameters
    ----------
    models : keras.Model or list of keras.Model
        Models of one architecture from :func:`pbmlib.learn.models.build_model` (trained
        here or elsewhere): their softmax layer is named ``"predictions"``.
    images : ndarray of shape (N, H, W) or (N, H, W, C), uint8
        Candidates; streamed in batches (never held in float whole).
    labels : array of int of shape (N,)
        Class numbers (the models' output positions).
    queries : sequence of str, default=("identity",)
        Views of every image (:data:`QUERIES`).
    batch_size : int, default=500

    Returns
    -------
    ndarray of shape (K, N, Q), float64
    """
    from keras import ops

    single = isinstance(models, keras.Model)
    models = [models] if single else list(models)
    images = check_images(images)
    labels = _check_targets(labels, images.shape[0])
    queries = ShadowSettings(queries=tuple(queries) if isinstance(queries, (list, tuple)) else queries).queries
    heads, extractors = [], []
    for model in models:
        try:
            head = model.get_layer(_HEAD)
        except ValueError:
            raise ValueError(f"model {model.name!r} has no layer {_HEAD!r}; pass models from "
                             f"pbmlib.learn.models.build_model") from None
        kernel, bias = (np.asarray(w, dtype=np.float64) for w in head.get_weights())
        if labels.max() >= kernel.shape[1]:
            raise ValueError(f"labels go up to {labels.max()} but model {model.name!r} has {kernel.shape[1]} classes")
        if heads and kernel.shape != heads[0][0].shape:
            raise ValueError(f"model {model.name!r} has a softmax layer of shape {kernel.shape}, the first model "
                             f"{heads[0][0].shape}: score models of one architecture together")
        heads.append((kernel, bias))
        extractors.append(keras.Model(model.inputs, head.input))  # the features the softmax layer reads

    class Features(keras.Model):  # every model's features in one pass over a batch
        def __init__(self):
            super().__init__(name="stacked_features")
            self.members = extractors

        def call(self, x):
            return ops.stack([m(x) for m in self.members], axis=1)

    stacked = Features()
    out = np.empty((len(models), images.shape[0], len(queries)))
    for q, name in enumerate(queries):
        feats = stacked.predict(ImageBatches(QUERIES[name](images), batch_size=batch_size), verbose=0)
        logits = np.einsum("nkf,kfc->knc", feats.astype(np.float64), np.stack([k for k, _ in heads])) \
            + np.stack([b for _, b in heads])[:, None, :]
        out[:, :, q] = logit_confidence(logits, labels)
    return out


def design_key(images: np.ndarray, labels, settings: ShadowSettings, n_shadows: int, seed) -> str:
    """Hex digest of everything a shadow design depends on: population bytes, labels, settings, number
    and seed (a SeedSequence, or what :func:`pbmlib._validation.as_seed_sequence` turns into one)."""
    root = as_seed_sequence(seed)
    images = np.asarray(images)
    hasher = hashlib.sha256()
    hasher.update(f"{images.dtype.str}{images.shape}".encode())
    flat = images.reshape(-1)
    for lo in range(0, flat.size, 1 << 24):  # a memory map is read in pieces
        hasher.update(np.ascontiguousarray(flat[lo:lo + (1 << 24)]).tobytes())
    hasher.update(np.asarray(labels, dtype=np.int64).tobytes())
    hasher.update(json.dumps({"settings": settings.to_dict(), "n_shadows": n_shadows, "seed": _seed_record(root),
                              "format": _FORMAT}, sort_keys=True).encode())
    return hasher.hexdigest()[:32]


def _seed_record(root: np.random.SeedSequence) -> dict:
    return {"entropy": str(root.entropy), "spawn_key": [int(k) for k in root.spawn_key]}


def _child(root: np.random.SeedSequence, *keys: int) -> np.random.SeedSequence:
    """Child ``keys`` of ``root``, as ``spawn`` would make it, without changing ``root``'s spawn counter."""
    return np.random.SeedSequence(root.entropy, spawn_key=tuple(root.spawn_key) + keys)


def train_shadows(images, labels, *, n_shadows: int = 16, settings: ShadowSettings = ShadowSettings(),
                  seed=None, indices=None, path: str | os.PathLike | None = None, group_size: int | None = None,
                  progress=None) -> dict:
    """Train shadow models of one design and score every candidate of the population with them.

    The design is the population (``images``, ``labels``), ``settings``, ``n_shadows`` and
    ``seed``: the inclusion mask is :func:`~pbmlib.privacy.lira.draw_inclusion` from the
    seed's child 0, shadow k's weights, dropout and batches from its child (1, k). So shadows can be
    trained in parts (``indices``, e.g. one part per sweep run or Dask task), saved, and
    put together by :func:`combine_shadow_scores`.

    Parameters
    ----------
    images : ndarray of shape (N, H, W) or (N, H, W, C), uint8
        The population: every candidate of the attacks (members and non-members of the
        targets alike).
    labels : array of int of shape (N,)
        Class numbers.
    n_shadows : int, default=16
        Shadow models of the design (an even number gives every candidate as many "in"
        as "out" shadows).
    settings : ShadowSettings
        The target's training recipe.
    seed : None, int, SeedSequence or Generator
        The design's seed; its entropy is recorded (``seed`` in the result), so a design
        drawn with None can be completed later by passing
        ``np.random.SeedSequence(int(result["seed"]["entropy"]))``.
    indices : sequence of int, optional
        The shadow models to train now (default: all).
    path : path, optional
        Write the result there as ``.npz`` (atomically). If the file already holds this
        part of this design, it is returned without training (resumable).
    group_size, progress
        See :func:`train_models`.

    Returns
    -------
    dict
        ``scores`` (len(indices), N, Q) float64, logit-scaled confidences;
        ``inclusion`` (len(indices), N) bool; ``indices`` (len(indices),) int64;
        ``n_shadows``, ``design`` (hex key of the design), ``seed`` (entropy and spawn key),
        ``settings`` (dict), ``train_seconds``, ``versions``.
    """
    images = check_images(images)
    labels = _check_targets(labels, images.shape[0])
    n_shadows = int(n_shadows) if isinstance(n_shadows, numbers.Integral) and not isinstance(n_shadows, bool) \
        else n_shadows
    if not isinstance(n_shadows, int) or n_shadows < 2:
        raise ValueError(f"n_shadows must be an int >= 2, got {n_shadows!r}")
    if not isinstance(settings, ShadowSettings):
        raise ValueError(f"settings must be a ShadowSettings, got {settings!r}")
    indices = np.arange(n_shadows) if indices is None else np.asarray(indices)
    if indices.ndim != 1 or indices.size == 0 or not np.issubdtype(indices.dtype, np.integer) \
            or indices.min() < 0 or indices.max() >= n_shadows or np.unique(indices).size != indices.size:
        raise ValueError(f"indices must be distinct shadow numbers in [0, {n_shadows}), got {indices!r:.80}")
    root = as_seed_sequence(seed)
    design = design_key(images, labels, settings, n_shadows, root)
    if path is not None:
        path = Path(path)
        if path.suffix != ".npz":
            raise ValueError(f"path must end in .npz, got {str(path)!r}")
        if path.exists():
            saved = _load(path)
            if saved["design"] != design or not np.array_equal(saved["indices"], indices):
                raise ValueError(f"{path} holds shadow models {saved['indices'].tolist()} of design "
                                 f"{saved['design']}, not {indices.tolist()} of {design}; pass a new path")
            return saved
        if not path.parent.is_dir():
            raise ValueError(f"the folder of path {str(path)!r} does not exist; create it first")
    inclusion = draw_inclusion(n_shadows, images.shape[0], seed=_child(root, 0))[indices]
    sequences = [_child(root, 1, int(k)) for k in indices]
    started = time.perf_counter()
    models = train_models(images, labels, [np.flatnonzero(row) for row in inclusion], settings=settings,
                          seeds=sequences, group_size=group_size, progress=progress)
    train_seconds = time.perf_counter() - started
    scores = logit_confidences(models, images, labels, queries=settings.queries)
    result = {"scores": scores, "inclusion": inclusion, "indices": indices.astype(np.int64),
              "n_shadows": n_shadows, "design": design, "seed": _seed_record(root),
              "settings": settings.to_dict(), "train_seconds": train_seconds, "versions": versions()}
    if path is not None:
        _save(path, result)
    return result


_ARRAYS = ("scores", "inclusion", "indices")


def _save(path: Path, result: dict) -> None:
    buffer = io.BytesIO()
    meta = {k: v for k, v in result.items() if k not in _ARRAYS}
    np.savez(buffer, **{k: result[k] for k in _ARRAYS}, meta=np.array(json.dumps(meta)))
    write_bytes_atomic(path, buffer.getvalue())


def _load(path: Path) -> dict:
    try:
        with np.load(path, allow_pickle=False) as data:
            result = {k: data[k] for k in _ARRAYS}
            meta = json.loads(str(data["meta"]))
    except (OSError, ValueError, KeyError) as exc:
        raise ValueError(f"{path} is not a shadow-scores file written by train_shadows ({exc}); "
                         f"delete it or pass another path") from None
    return {**result, **meta}


def combine_shadow_scores(paths) -> dict:
    """Put together the parts of one shadow design saved by :func:`train_shadows`.

    Parameters
    ----------
    paths : sequence of path
        ``.npz`` files of one design that hold every shadow model exactly once.

    Returns
    -------
    dict
        ``scores`` (n_shadows, N, Q) float64 and ``inclusion`` (n_shadows, N) bool, in
        shadow order, with ``n_shadows``, ``design``, ``seed``, ``settings`` and
        ``train_seconds`` (summed over the parts).
    """
    paths = [Path(p) for p in paths]
    if not paths:
        raise ValueError("paths is empty: pass the .npz files written by train_shadows")
    parts = [_load(p) for p in paths]
    first = parts[0]
    for p, part in zip(paths, parts):
        if part["design"] != first["design"]:
            raise ValueError(f"{p} belongs to shadow design {part['design']}, {paths[0]} to {first['design']}: "
                             f"combine the parts of one design")
    indices = np.concatenate([part["indices"] for part in parts])
    n = first["n_shadows"]
    if np.sort(indices).tolist() != list(range(n)):
        missing = sorted(set(range(n)) - set(indices.tolist()))
        raise ValueError(f"the parts hold shadow models {sorted(indices.tolist())} of {n}: missing {missing}, "
                         f"duplicates {sorted({int(i) for i in indices if (indices == i).sum() > 1})}")
    order = np.argsort(indices)
    return {"scores": np.concatenate([part["scores"] for part in parts])[order],
            "inclusion": np.concatenate([part["inclusion"] for part in parts])[order],
            "n_shadows": n, "design": first["design"], "seed": first["seed"], "settings": first["settings"],
            "train_seconds": float(sum(part["train_seconds"] for part in parts))}
