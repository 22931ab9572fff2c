"""Float32 batches streamed from uint8 images, so training never holds the set in float.

:class:`ImageBatches` is a :class:`keras.utils.PyDataset` over a uint8 array or a
memory map (e.g. a store from :func:`pbmlib.data.store.load_store`). Each batch is
gathered from the uint8 rows, augmented when asked, and converted to float32; the set
itself is never copied, converted or expanded.

- Shuffling draws one permutation per epoch from ``seed`` and the epoch number, so a
  batch depends only on (seed, epoch, batch number): the same seed gives the same
  batches, whatever Keras prefetches and whether a training was restarted.
- The paper's offline augmentation (``Augmentation(mode="offline")``) is streamed: the
  set behaves as the originals plus ``copies`` augmented copies of every image, and
  copy k of image j is made when its batch is read, with
  :func:`pbmlib.data.augmentation.augment_images` seeded by (seed, k, j), so it is the
  same copy in every epoch. The expanded set never exists in memory.
- With a read-only (or read-write, shared) memory map, the pages of a batch are handed
  back to the page cache once read (``madvise(MADV_DONTNEED)`` on Linux), so the process'
  resident memory does not grow with the file as an epoch reads it through.
"""

from __future__ import annotations


import numpy as np

from .._io import release_pages, shared_file_mapping
from .._validation import check_images, check_positive_int, spawn_seeds
from ..data.augmentation import Augmentation, augment_images
from .quiet import quiet_keras

keras = quiet_keras()

__all__ = ["ImageBatches"]


class ImageBatches(keras.utils.PyDataset):
    """Batches of float32 images (and integer targets) read from uint8 images.

    Parameters
    ----------
    images : ndarray of shape (N, H, W) or (N, H, W, C), uint8 in [0, 255]
        An in-memory array or a memory map (``np.load(path, mmap_mode="r")``); it is
        kept as given and read one batch at a time.
    targets : array of int of shape (N,), optional
        One target per row of ``images``; None yields images only (``predict``).
    batch_size : int, default=32
    index : array of int, optional
        The rows of ``images`` (and ``targets``) that make the set, in this order, e.g.
        from :func:`pbmlib.data.split.stratified_split`; the rows are not copied.
        Default: every row.
    shuffle : bool, default=False
        A new order every epoch, drawn from ``seed`` and the epoch number. Needs
        ``repeat=True``.
    augment : Augmentation, optional
        With ``mode="offline"``: the set plus ``augment.copies`` augmented copies of every
        image, made per batch (originals first, then copy 1 of every image, ...). Online
        augmentation belongs to the model (:func:`pbmlib.learn.layers.augmentation_layers`).
    seed : None, int, numpy.random.SeedSequence or numpy.random.Generator
        Seeds the shuffling and the augmented copies (two child streams of
        :func:`pbmlib._validation.spawn_seeds`). Pass an int for reproducible batches.
    repeat : bool, default=False
        An endless stream of epochs: item ``i`` is batch ``i % len(self)`` of epoch
        ``first_epoch + i // len(self)``. Fit with ``steps_per_epoch=len(batches)``.
        Keras makes the next epoch's iterator (and TensorFlow starts prefetching it)
        before its epoch callbacks run, so a finite dataset cannot tell which epoch a
        batch is for; numbering batches across epochs can.
    first_epoch : int, default=0
        Epoch of item 0 (set it to the epoch a restarted training resumes at).
    **kwargs
        ``workers``, ``use_multiprocessing``, ``max_queue_size`` of
        :class:`keras.utils.PyDataset`.

    Notes
    -----
    ``len(self)`` is the number of batches in one epoch, the last one possibly short.
    Grayscale images (N, H, W) come out as (batch, H, W, 1).

    Examples
    --------
    >>> images = np.zeros((10, 8, 8), np.uint8)
    >>> batches = ImageBatches(images, np.arange(10) % 2, batch_size=4)
    >>> len(batches), batches[0][0].shape, batches[0][0].dtype, batches[2][0].shape
    (3, (4, 8, 8, 1), dtype('float32'), (2, 8, 8, 1))
    """

    def __init__(self, images, targets=None, *, batch_size: int = 32, index=None, shuffle: bool = False,
                 augment: Augmentation | None = None, seed=None, repeat: bool = False, first_epoch: int = 0,
                 **kwargs):
        super().__init__(**kwargs)
        self._release = shared_file_mapping(images)
        self.images = check_images(images)  # a view: np.asarray keeps a memmap's buffer
        n_rows = self.images.shape[0]
        self.batch_size = check_positive_int(batch_size, name="batch_size")
        if index is None:
            self.index = np.arange(n_rows)
        else:
            self.index = np.asarray(index)
            if self.index.ndim != 1 or self.index.size == 0 or not np.issubdtype(self.index.dtype, np.integer):
                raise ValueError(f"index must be a non-empty 1-d array of row numbers, got {index!r:.80}")
            if self.index.min() < 0 or self.index.max() >= n_rows:
                raise ValueError(f"index must hold row numbers in [0, {n_rows}), got values from "
                                 f"{self.index.min()} to {self.index.max()}")
        if targets is None:
            self.targets = None
        else:
            targets = np.asarray(targets)
            if targets.shape != (n_rows,):
                raise ValueError(f"targets must have shape ({n_rows},), one per row of images, got {targets.shape}")
            self.targets = targets[self.index]
        if augment is not None and (not isinstance(augment, Augmentation) or augment.mode != "offline"):
            raise ValueError(f"augment must be None or an Augmentation with mode='offline' (online augmentation "
                             f"is a layer of the model), got {augment!r}")
        self.augment = augment
        if shuffle and not repeat:
            raise ValueError("shuffle=True needs repeat=True: fit with steps_per_epoch=len(batches); a finite "
                             "PyDataset cannot tell which epoch Keras is prefetching")
        self.shuffle, self.repeat = bool(shuffle), bool(repeat)
        if isinstance(first_epoch, bool) or not isinstance(first_epoch, (int, np.integer)) or first_epoch < 0:
            raise ValueError(f"first_epoch must be an int >= 0, got {first_epoch!r}")
        self.first_epoch = int(first_epoch)
        self._order_seed, self._augment_seed = spawn_seeds(seed, 2)
        self._order_cache: tuple[int, np.ndarray] | None = None

    @property
    def n_images(self) -> int:
        """Images in one epoch: the rows, times ``copies + 1`` with offline augmentation."""
        copies = self.augment.copies if self.augment is not None else 0
        return self.index.size * (copies + 1)

    def __len__(self) -> int:
        return -(-self.n_images // self.batch_size)

    @property
    def num_batches(self):
        return None if self.repeat else len(self)

    def _order(self, epoch: int) -> np.ndarray:
        cached = self._order_cache
        if cached is not None and cached[0] == epoch:
            return cached[1]
        child = np.random.SeedSequence(self._order_seed.entropy, spawn_key=self._order_seed.spawn_key + (epoch,))
        order = np.random.default_rng(child).permutation(self.n_images)
        self._order_cache = (epoch, order)
        return order

    def positions(self, item: int) -> np.ndarray:
        """Positions in the (expanded) set of the images of ``self[item]``.

        Position ``p`` is row ``index[p % len(index)]``; ``p // len(index)`` is 0 for the
        original and k for augmented copy k.
        """
        if item < 0 or (not self.repeat and item >= len(self)):
            raise IndexError(f"batch {item} out of range for {len(self)} batches")
        epoch, batch = divmod(item, len(self))
        lo = batch * self.batch_size
        hi = min(lo + self.batch_size, self.n_images)
        if not self.shuffle:
            return np.arange(lo, hi)
        return self._order(self.first_epoch + epoch)[lo:hi]

    def __getitem__(self, item):
        positions = self.positions(int(item))
        n = self.index.size
        copy, member = np.divmod(positions, n)
        rows = self.index[member]
        batch = self.images[rows]  # a uint8 copy of these rows only
        if self._release:
            release_pages(self.images)
        for k in np.flatnonzero(copy):  # offline augmentation: copy k of image member, same in every epoch
            child = np.random.SeedSequence(self._augment_seed.entropy,
                                           spawn_key=self._augment_seed.spawn_key + (int(copy[k]), int(member[k])))
            batch[k] = augment_images(batch[k:k + 1], augmentation=self.augment, seed=np.random.default_rng(child))[0]
        x = batch.astype(np.float32)
        if x.ndim == 3:
            x = x[..., None]
        if self.targets is None:
            return (x,)
        return x, self.targets[member]
