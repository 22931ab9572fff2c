"""Mix an image folder into a release folder, and keep the key to it in a separate private folder.

``mix_folder(src, dst)`` reads ``src/<label>/*`` and writes two folders::

    dst/                         the release: the only folder meant to be shared
        release.json             parameters, image format, class sizes, N_b, log10 restoration count,
                                 library versions, the release's own file names; no source path, no
                                 source file names, no seed, no provenance, no host or time
        <label>/000000.png ...   the mixed images under opaque names (a random permutation per label)
    dst.private/                 the key: it undoes the mixing; it must never leave the owner
        PRIVATE-DO-NOT-SHARE.txt what the folder is and why it must stay private
        manifest.json            everything in release.json plus the source path, the original file
                                 names and labels, the seed, and output name -> source file
        provenance.npz           ``sources`` (N, H // bh, W // bw): the source image of every output
                                 block (an index into ``files``); ``files``; ``outputs``

Why the two are apart: provenance maps every block of the release back to its original
image, and with it most original blocks go back in place pixel-exact; the seed regenerates
that provenance from the source and the release's parameters; original file names often
name people (LFW's ``Firstname_Lastname_0001.jpg``). A release folder holding any of them
carries its own key.

What the release resists, and what it does not. Unless a seed is given, the mixing and
the name permutation are drawn from 128 bits of fresh operating-system entropy, kept only
in the private folder: rebuilding the provenance from ``release.json`` means guessing that
seed, a 2^128 search. A given ``seed`` is the key (anyone who knows or guesses it rebuilds
the provenance): use it for research, never for a release. What no seed protects: PBM
copies blocks unchanged to their position, so an attacker holding photos of the people
finds their blocks in the release (:func:`pbmlib.privacy.audit` measures this).
"""

from __future__ import annotations

import dataclasses
import errno
import io
import json
import os
import time
import uuid
import warnings
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from .._fs import clean_stale, lock, lock_path, remove, staged_dir, write_new_file
from .._io import IMAGE_FORMATS, check_image_format, encode_image, release_pages, shared_file_mapping, to_json, versions
from .._validation import Settings, check_bool, check_choice, check_positive_int, check_seed, split_options, usable_cores
from ..data.datasets import Decoding, list_image_folder, read_image
from ..data.store import load_store
from .mixing import gather_blocks, mixing_sources
from .restoration import restoration_log10_probability
from .settings import Mixing

__all__ = ["mix_folder", "load_private", "default_private_dir", "ReleaseFormat", "RELEASE_NAME", "MANIFEST_NAME",
           "PROVENANCE_NAME", "PRIVATE_NOTE_NAME"]

RELEASE_NAME = "release.json"
MANIFEST_NAME = "manifest.json"
PROVENANCE_NAME = "provenance.npz"
PRIVATE_NOTE_NAME = "PRIVATE-DO-NOT-SHARE.txt"
PRIVATE_SUFFIX = ".private"
RELEASE_KIND = "pbm mix release"
PRIVATE_KIND = "pbm mix private key"
PRIVATE_FILES = (PRIVATE_NOTE_NAME, MANIFEST_NAME, PROVENANCE_NAME)
NAME_CHOICES = ("opaque", "keep")
_STORE_DIR = "decoding"  # holds the store of decoded originals, in the private staging folder
_BATCH_IMAGES = 32  # outputs mixed, encoded and written at a time (more with many cores): memory is flat in N
_NAMES_STREAM = 0x6F70617175  # spawn key of the name permutation's stream: independent of the mixing draws

PRIVATE_NOTE = """\
PRIVATE - DO NOT SHARE THIS FOLDER

It is the key to the mixed images in {release}:
- provenance.npz names, for every block of every mixed image, the original image it was copied
  from; with it most original blocks can be put back in place pixel-exact;
- manifest.json holds the source folder's path, every original file name (often a person's
  name), the seed (which regenerates the provenance from the source) and which output file
  came from which source file.

Share only the release folder. Keep this one with the original images, or delete it if you
do not need to trace outputs back to their sources.
"""


@dataclasses.dataclass(frozen=True)
class ReleaseFormat(Settings):
    """How the release's images are written.

    Parameters
    ----------
    format : {"png", "jpeg", "webp"}, default="png"
        PNG (default) and WebP are written lossless, so the release holds exactly the
        mixed pixels; JPEG is lossy (the reference code saves JPEG at 75). ``"jpg"`` is
        read as ``"jpeg"``.
    jpeg_quality : int from 1 to 95, optional
        JPEG quality (default 95); only with ``format="jpeg"``. Values outside 1-95 are
        refused, not clamped.
    names : {"opaque", "keep"}, default="opaque"
        ``"opaque"`` names outputs ``<label>/000000.png``, ``000001.png``, ... in an order
        drawn at random per label, so a name says nothing about the source file;
        ``"keep"`` keeps the source file's name (warns: names often name people).
    """

    format: str = "png"
    jpeg_quality: int | None = None
    names: str = "opaque"

    def __post_init__(self):
        format, quality = check_image_format(self.format, self.jpeg_quality)
        object.__setattr__(self, "format", format)
        object.__setattr__(self, "jpeg_quality", quality)
        check_choice(self.names, NAME_CHOICES, name="names")

    @property
    def suffix(self) -> str:
        return IMAGE_FORMATS[self.format][0]

    def to_dict(self) -> dict:
        return {"format": self.format, "suffix": self.suffix, "lossless": IMAGE_FORMATS[self.format][2],
                "jpeg_quality": self.jpeg_quality}


def default_private_dir(dst: str | os.PathLike) -> Path:
    """Where :func:`mix_folder` keeps the key by default: ``<dst>.private`` beside ``dst``.

    ``dst`` is made absolute first, so ``dst="."`` gives ``../<folder name>.private``, never a
    folder inside ``dst``.
    """
    dst = Path(os.path.abspath(dst))
    return dst.parent / f"{dst.name}{PRIVATE_SUFFIX}"


def load_private(private_dir: str | os.PathLike) -> tuple[dict, np.ndarray]:
    """Read the key of a release: ``(manifest, sources)`` from a private folder of :func:`mix_folder`.

    Returns
    -------
    manifest : dict
        ``files`` (original names relative to the source), ``outputs`` (the release's file
        names, same order), ``labels``, ``seed``, ``source``, ``release_id``, the parameters.
    sources : ndarray of shape (N, H // bh, W // bw), int64
        ``sources[i, a, b]`` is the index in ``files`` of the original whose block (a, b) is
        block (a, b) of output ``outputs[i]``.
    """
    private_dir = Path(private_dir)
    manifest = _read_record(private_dir / MANIFEST_NAME, PRIVATE_KIND)
    if manifest is None:
        raise FileNotFoundError(f"{private_dir / MANIFEST_NAME} is not the manifest of a pbm mix private folder; "
                                f"pass the private folder mix_folder wrote (by default <dst>{PRIVATE_SUFFIX} beside "
                                f"the release)")
    with np.load(private_dir / PROVENANCE_NAME) as npz:
        sources = npz["sources"]
    return manifest, sources


def _read_record(path: Path, kind: str) -> dict | None:
    """The JSON record at ``path`` if it is a real file of this ``kind``, else None."""
    if path.is_symlink() or not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return record if isinstance(record, dict) and record.get("kind") == kind else None


# ----------------------------------------------------------------------------- 1. validate

@dataclasses.dataclass
class _Job:
    """Everything :func:`mix_folder` decided before it writes anything."""

    src: Path
    dst: Path
    private: Path
    files: list[Path]
    labels: list[str]
    mixing: Mixing
    decoding: Decoding
    release_format: ReleaseFormat
    image_shape: tuple
    class_sizes: dict
    seed: object
    seed_record: dict
    names_rng: np.random.Generator | None
    unprotected: str | None


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _check_paths(src: Path, dst: Path, private: Path) -> tuple[Path, Path, Path]:
    """Resolve the three folders and refuse any overlap, links as targets, non-folders, or a
    folder inside another release or key."""
    if not src.is_dir():
        raise ValueError(f"src {src} is not a folder; expected a folder with one sub-folder per label")
    for path, role in ((dst, "dst"), (private, "private_dir")):
        if path.is_symlink():
            raise ValueError(f"{role} {path} is a symbolic link (to {os.readlink(path)}); pass the real folder's "
                             f"path: outputs are never written through a link")
        if path.exists() and not path.is_dir():
            raise ValueError(f"{role} {path} exists and is not a folder; choose a new or empty folder")
    src_r, dst_r, private_r = src.resolve(), dst.resolve(), private.resolve()
    pairs = ((dst_r, "dst", src_r, "src", "a destination outside the source folder"),
             (src_r, "src", dst_r, "dst", "a destination that does not contain the source"),
             (private_r, "private_dir", src_r, "src", "a private folder outside the source"),
             (src_r, "src", private_r, "private_dir", "a private folder that does not contain the source"),
             (private_r, "private_dir", dst_r, "dst", f"a folder outside dst (the default is "
                                                       f"{default_private_dir(dst)}): it would be shared with "
                                                       f"the release"),
             (dst_r, "dst", private_r, "private_dir", f"a release apart from its key (the default private folder "
                                                      f"is {default_private_dir(dst)})"))
    for inner, inner_role, outer, outer_role, advice in pairs:
        if _inside(inner, outer):
            raise ValueError(f"{inner_role} {inner} is inside {outer_role} {outer}; choose {advice}")
    for path, role in ((private_r, "private_dir"), (dst_r, "dst")):
        for ancestor in path.parents:
            for name, kind, what in ((RELEASE_NAME, RELEASE_KIND, "the release"),
                                     (MANIFEST_NAME, PRIVATE_KIND, "the private key folder")):
                if _read_record(ancestor / name, kind) is not None:
                    raise ValueError(f"{role} {path} is inside {what} {ancestor} (it holds a pbm mix {name}); "
                                     f"sharing or replacing that folder would take this one with it: choose a "
                                     f"folder outside it")
    return src_r, dst_r, private_r


def _check_labels(labels: list[str], src: Path) -> None:
    """Label folder names become release folders: none may clash with the record or another label."""
    seen: dict[str, str] = {}
    for label in dict.fromkeys(labels):
        if label == RELEASE_NAME:
            raise ValueError(f"src {src} has a label folder named {RELEASE_NAME!r}, the name of the release's record; "
                             f"rename that folder")
        other = seen.setdefault(label.casefold(), label)
        if other != label:
            raise ValueError(f"src {src} has label folders {other!r} and {label!r}, which differ only in case: on a "
                             f"case-insensitive disk they are one folder; rename or merge them")


def _seed_material(seed):
    """``(seed for the mixing, rng for the names, record for the private manifest)``; nothing consumed.

    None draws 128 bits of fresh entropy (``SeedSequence().entropy``), recorded only in the
    private manifest: the release cannot be rebuilt without it.
    """
    seed = check_seed(seed)
    if isinstance(seed, np.random.Generator):
        state = seed.bit_generator.state
        return seed, None, {"seed": None, "generator_state": json.loads(to_json(state))}
    if isinstance(seed, np.random.SeedSequence):
        record = {"seed": None, "seed_sequence": {"entropy": seed.entropy, "spawn_key": list(seed.spawn_key)}}
        names = np.random.default_rng(np.random.SeedSequence(seed.entropy, spawn_key=(*seed.spawn_key, _NAMES_STREAM)))
        return seed, names, record
    value = int(np.random.SeedSequence().entropy) if seed is None else seed
    names = np.random.default_rng(np.random.SeedSequence(value, spawn_key=(_NAMES_STREAM,)))
    return value, names, {"seed": value, "seed_drawn": seed is None}


def _validate(src, dst, private_dir, options: dict, *, seed, allow_unprotected: bool) -> _Job:
    """Check every argument and read what the checks need (the file list, one image's shape); write nothing."""
    settings = split_options(options, {"mixing": Mixing, "decoding": Decoding, "release_format": ReleaseFormat},
                             where="mix_folder")
    mixing, decoding, release_format = settings["mixing"], settings["decoding"], settings["release_format"]
    allow_unprotected = check_bool(allow_unprotected, name="allow_unprotected")
    mix_seed, names_rng, seed_record = _seed_material(seed)
    src, dst = Path(src), Path(dst)
    private = Path(private_dir) if private_dir is not None else default_private_dir(dst)
    src_r, dst_r, private_r = _check_paths(src, dst, private)
    files, labels = list_image_folder(src)
    _check_labels(labels, src)
    for f in files:  # a source file that resolves into an output would be destroyed with it
        real = f.resolve()
        for role, folder in (("dst", dst_r), ("private_dir", private_r)):
            if _inside(real, folder):
                raise ValueError(f"source file {f} is a link into {role} {folder}; replacing the output would "
                                 f"destroy it: copy the source images out of {folder} first")
    image_shape = read_image(files[0], decoding=decoding).shape  # every image must have it (checked as decoded)
    mixing.grid(image_shape)  # the block divides the images
    class_sizes = dict(Counter(labels))
    unprotected = mixing.unprotected_reason(image_shape, class_sizes)
    if unprotected and not allow_unprotected:
        raise ValueError(f"{unprotected}; a release with these settings is the originals under new names: change "
                         f"p, block or the classes, or pass allow_unprotected=True (pbm mix --allow-unprotected) "
                         f"to write it anyway")
    if release_format.names == "keep":
        warnings.warn("names='keep' copies the source file names into the release; in face data sets they often "
                      "name the people shown (e.g. LFW's Firstname_Lastname_0001.jpg)", UserWarning, stacklevel=3)
    return _Job(src_r, dst_r, private_r, files, labels, mixing, decoding, release_format, tuple(image_shape),
                class_sizes, mix_seed, seed_record, names_rng, unprotected)


def _own_files(folder: Path) -> set[str] | None:
    """The entries an earlier :func:`mix_folder` wrote into ``folder`` (relative paths, folders
    included), or None when ``folder`` is not an earlier release or key folder."""
    release = _read_record(folder / RELEASE_NAME, RELEASE_KIND)
    if release is not None and isinstance(release.get("contents"), list):
        contents = {str(name) for name in release["contents"]}
        return {RELEASE_NAME} | contents | {name.rsplit("/", 1)[0] for name in contents if "/" in name}
    if _read_record(folder / MANIFEST_NAME, PRIVATE_KIND) is not None:
        return set(PRIVATE_FILES)
    return None


def _check_replaceable(folder: Path, role: str, overwrite: bool) -> None:
    """Refuse to replace anything but an earlier output holding only what that output wrote."""
    if not os.path.lexists(folder) or not any(folder.iterdir()):
        return
    if not overwrite:
        raise ValueError(f"{role} {folder} is not empty; choose an empty or new folder, or pass overwrite=True "
                         f"(--overwrite) to replace an earlier output")
    own = _own_files(folder)
    if own is None:
        record = RELEASE_NAME if role == "dst" else MANIFEST_NAME
        raise ValueError(f"{role} {folder} is not empty and is not an earlier pbm mix output (it has no pbm mix "
                         f"{record}); overwrite only replaces an earlier output: choose an empty or new folder")
    found = {p.relative_to(folder).as_posix() for p in folder.rglob("*")}
    added = sorted(found - own)
    if added:
        shown = ", ".join(added[:10]) + (f" and {len(added) - 10} more" if len(added) > 10 else "")
        raise ValueError(f"{role} {folder} holds {len(added)} file(s) the earlier pbm mix did not write ({shown}); "
                         f"overwrite replaces only what it wrote: move them out first, or choose a new folder")


# ----------------------------------------------------------------------------- 2.-4. decode, draw, records

def _output_names(rel: list[str], job: _Job) -> list[str]:
    """The release's file name of every source file (same order as ``rel``)."""
    suffix = job.release_format.suffix
    if job.release_format.names == "keep":
        outputs = [f"{Path(r).parent.as_posix()}/{Path(r).stem}{suffix}" for r in rel]
        seen: dict[str, str] = {}
        for r, out in zip(rel, outputs):
            other = seen.setdefault(out.lower(), r)
            if other != r:
                raise ValueError(f"names='keep' would write {other} and {r} to one file {out}; rename one of them "
                                 f"or use names='opaque'")
        return outputs
    rng = job.names_rng if job.names_rng is not None else job.seed
    width = max(6, len(str(max(job.class_sizes.values()) - 1)))
    number = {label: iter(rng.permutation(n).tolist()) for label, n in job.class_sizes.items()}
    return [f"{label}/{next(number[label]):0{width}d}{suffix}" for label in job.labels]


def _records(job: _Job, rel: list[str], outputs: list[str], read_seconds: float) -> tuple[dict, dict]:
    """``(release, manifest)``: what is shared, and the key."""
    nb = job.mixing.n_blocks(job.image_shape)
    mixing = job.mixing.replace(n_donors=max(1, job.mixing.donors_used(job.class_sizes)))  # the N_s actually used
    release = {
        "kind": RELEASE_KIND,
        "release_id": uuid.uuid4().hex,
        "parameters": {**mixing.to_dict(), **job.decoding.to_dict()},
        "n_donors_requested": job.mixing.n_donors,
        "image_format": job.release_format.to_dict(),
        "names": job.release_format.names,
        "image_shape": list(job.image_shape),
        "n_images": len(rel),
        "class_sizes": job.class_sizes,
        "n_blocks": nb,
        "protection": ("none: " + job.unprotected) if job.unprotected else "pbm",
        "log10_restoration_probability": None if job.unprotected else restoration_log10_probability(job.class_sizes,
                                                                                                   nb),
        "key": "the provenance, seed and source names of this release are kept apart by its owner; "
               "they are not part of it",
        "versions": versions(),
        "contents": sorted(outputs),
    }
    manifest = {
        **release,
        "kind": PRIVATE_KIND,
        "key": "PRIVATE: this folder undoes the mixing of the release; never let it leave the owner",
        "release_dir": str(job.dst),
        "source": str(job.src),
        **job.seed_record,
        "files": rel,
        "labels": job.labels,
        "outputs": outputs,
        "provenance": PROVENANCE_NAME,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "seconds": {"read": read_seconds},
    }
    del manifest["contents"]
    return release, manifest


# ----------------------------------------------------------------------------- 5. write

def _mix_batch(images_path: str, sources: np.ndarray, paths: list[str], format: str, quality) -> int:
    """One Dask task: gather these outputs from the store's memory map, encode and write them."""
    images = np.load(images_path, mmap_mode="r")
    for image, path in zip(gather_blocks(images, sources, workers=1), paths):
        write_new_file(path, encode_image(image, format, quality))
    return len(paths)


def _write_images(job: _Job, images, sources, outputs, stage: Path, *, store_path: Path, workers, client,
                  progress: bool) -> None:
    """Gather, encode and write every output in name order (file times and inode numbers then say
    nothing of the source order), a batch at a time: memory is flat in N."""
    from tqdm.auto import tqdm

    fmt, quality = job.release_format.format, job.release_format.jpeg_quality
    for label in job.class_sizes:
        os.mkdir(stage / str(label))
    order = np.array(sorted(range(len(outputs)), key=outputs.__getitem__), dtype=np.int64)
    if client is not None:  # tasks of a few hundred outputs; the mixing was drawn once, here
        step = 256
        futures = [client.submit(_mix_batch, str(store_path), sources[order[lo:lo + step]],
                                 [str(stage / outputs[i]) for i in order[lo:lo + step]], fmt, quality, pure=False)
                   for lo in range(0, len(order), step)]
        with tqdm(total=len(order), desc="mix and write (cluster)", disable=not progress) as bar:
            for future in futures:
                bar.update(future.result())
        return
    threads = workers or usable_cores()
    step = max(_BATCH_IMAGES, 4 * threads)
    mixed = np.empty((min(step, len(order)),) + images.shape[1:], dtype=np.uint8)
    hand_back = shared_file_mapping(images)
    with ThreadPoolExecutor(max_workers=threads) as pool, \
            tqdm(total=len(order), desc="mix and write", disable=not progress) as bar:
        for lo in range(0, len(order), step):
            index = order[lo:lo + step]
            part = gather_blocks(images, sources[index], out=mixed[:len(index)])
            if hand_back:  # donors come from all over the map: hand its pages back (they stay cached)
                release_pages(images)
            for i, data in zip(index, pool.map(lambda image: encode_image(image, fmt, quality), part)):
                write_new_file(stage / outputs[i], data)
            bar.update(len(index))


def mix_folder(src: str | os.PathLike, dst: str | os.PathLike, *, seed=None, private_dir=None,
               overwrite: bool = False, allow_unprotected: bool = False, progress: bool = False,
               workers: int | None = None, client=None, **options) -> dict:
    """Mix a folder ``src/<label>/*`` into a release ``dst`` and its key ``<dst>.private``.

    Parameters
    ----------
    src : path
        One sub-folder per label; never written to.
    dst : path
        The release folder: new, empty, or an earlier release to replace with ``overwrite``.
        It receives only ``<label>/<name>`` images and ``release.json`` (parameters and the
        release's own file names; no source path, no original names, no seed, no provenance).
    seed : None, int, numpy.random.SeedSequence or numpy.random.Generator, default=None
        None (the default, and what a release should use) draws 128 bits of fresh entropy
        from the operating system and records them only in the private manifest (as
        ``seed``): without the private folder, rebuilding the provenance is a 2^128 search.
        An int gives reproducible output (the same bytes as :func:`pbmlib.mix_blocks` with
        that seed) for research, but a known seed is the key: whoever knows or guesses it
        rebuilds the provenance from ``release.json``. A Generator's state before use is
        recorded (``generator_state``) and the Generator is advanced.
    private_dir : path, optional
        Where the key goes (``manifest.json``, ``provenance.npz``, a note); default
        ``<dst>.private`` beside ``dst``. It must lie outside ``dst``, ``src`` and any other
        release or key folder; it is created owner-only (mode 0700). Never share it.
    overwrite : bool, default=False
        Replace an earlier output of ``mix_folder``: the whole of ``dst`` (and of the
        private folder) is replaced. Refused when the folder holds anything the earlier
        output did not write (the files added are listed), and for any folder that is not
        an earlier output.
    allow_unprotected : bool, default=False
        Write a release even when the settings leave every image unchanged (``p=0``, a
        block equal to the image, classes of one image); refused otherwise. Such a release
        records ``protection: none`` and no restoration count.
    progress : bool, default=False
        Show a tqdm progress bar while reading and writing.
    workers : int, optional
        Processes that decode and threads that encode (Pillow releases the GIL while it
        encodes); default: the cores this process may use. The output does not depend on it.
    client : distributed.Client, optional
        Decode, mix and encode as tasks on this Dask cluster (for folders of hundreds of
        thousands of images); ``src``, ``dst`` and the private folder must be on storage every
        worker sees at the same paths. The output is the same bytes.
    **options
        The settings, each as one object or as its fields:

        - ``mixing=Mixing(...)`` or ``block`` (required), ``n_donors``, ``rounds``, ``p``,
          ``allow_self``: see :class:`pbmlib.Mixing` and :func:`pbmlib.mix_blocks`;
        - ``decoding=Decoding(...)`` or ``size`` (resize first; the paper's code uses
          192 x 192), ``mode`` (None, "L" or "RGB": grey images get three equal channels,
          as the reference code does), ``resample`` ("bilinear" default; the reference
          code uses "lanczos"): see :class:`pbmlib.data.datasets.Decoding`;
        - ``release_format=ReleaseFormat(...)`` or ``format`` ("png" default, "jpeg",
          "webp"), ``jpeg_quality`` (1-95, JPEG only), ``names`` ("opaque" default or
          "keep"): see :class:`ReleaseFormat`.

    Returns
    -------
    dict
        The private manifest (as written to ``<private_dir>/manifest.json``), plus
        ``dst`` and ``private_dir`` (resolved paths). Its ``release`` entries (``parameters``,
        ``n_images``, ``class_sizes``, ``n_blocks``, ``log10_restoration_probability``, ...)
        are those of ``release.json``.

    Notes
    -----
    The steps: every argument is checked and the file list and one image's shape read
    (nothing written); the images are decoded once, in parallel, into an on-disk uint8
    store (:func:`pbmlib.data.store.load_store`) inside the private staging folder; the
    mixing is drawn for the whole set at once (indices only); the records are built; the
    pixels are gathered from the memory map a few dozen outputs at a time into one reused
    buffer (the map's pages handed back after each batch) and encoded on every core.
    Memory stays flat as the folder grows. The same seed gives the same bytes as
    :func:`pbmlib.mix_blocks` on the same images.

    Both folders are written under temporary names beside their targets
    (``.<name>.incomplete-<random>.tmp``, :func:`pbmlib._fs.staged_dir`), ``release.json``
    last, and renamed into place only when complete: ``dst`` is always either the earlier
    complete output or the new one; an interrupted run leaves only its staging folder,
    which the next run on the same ``dst`` removes. Links are never followed when writing.
    While it runs, ``dst`` and the private folder are locked (``.<name>.lock`` beside each):
    a second ``mix_folder`` on either refuses at once.

    Why opaque names by default: file names in face data sets are often people's names,
    and even a neutral sorted numbering would give away each output's position in the
    source listing. Label folder names are kept (they are the training target): rename
    label folders before mixing if they name people.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from PIL import Image
    >>> root = Path(tempfile.mkdtemp())
    >>> for label in ("a", "b"):
    ...     (root / "src" / label).mkdir(parents=True)
    ...     for i in range(3):
    ...         Image.fromarray(np.full((8, 8), 40 * i, np.uint8)).save(root / "src" / label / f"x{i}.png")
    >>> info = mix_folder(root / "src", root / "release", block=(4, 4))
    >>> sorted(p.name for p in (root / "release").iterdir())
    ['a', 'b', 'release.json']
    >>> sorted(p.name for p in (root / "release.private").iterdir())
    ['PRIVATE-DO-NOT-SHARE.txt', 'manifest.json', 'provenance.npz']
    """
    overwrite = check_bool(overwrite, name="overwrite")
    progress = check_bool(progress, name="progress")
    if workers is not None:
        workers = check_positive_int(workers, name="workers")
    job = _validate(src, dst, private_dir, options, seed=seed, allow_unprotected=allow_unprotected)
    with lock(lock_path(job.dst), what="dst", target=job.dst), \
            lock(lock_path(job.private), what="private_dir", target=job.private):
        # Under the locks (no other run can be mid-write): leftovers of a killed run go first, then the
        # targets are checked as they now are.
        clean_stale(job.dst)
        clean_stale(job.private)
        _check_replaceable(job.dst, "dst", overwrite)
        _check_replaceable(job.private, "private_dir", overwrite)
        try:
            with staged_dir(job.dst) as release_stage, staged_dir(job.private, private=True) as private_stage:
                started = time.perf_counter()
                store_dir = private_stage / _STORE_DIR / "store"  # decoded originals are as private as the key
                store = load_store(job.src, store_dir, decoding=job.decoding, workers=workers, client=client)
                read_seconds = time.perf_counter() - started
                rel = list(store.files)
                t0 = time.perf_counter()
                sources = mixing_sources(job.labels, store.images.shape[1:], mixing=job.mixing, seed=job.seed)
                outputs = _output_names(rel, job)
                release, manifest = _records(job, rel, outputs, read_seconds)
                buffer = io.BytesIO()
                np.savez_compressed(buffer, sources=sources, files=np.array(rel), outputs=np.array(outputs))
                _write_images(job, store.images, sources, outputs, release_stage, store_path=store_dir / "images.npy",
                              workers=workers, client=client, progress=progress)
                manifest["seconds"]["mix_and_write"] = time.perf_counter() - t0
                del store
                remove(private_stage / _STORE_DIR)  # the decoded originals do not stay
                write_new_file(private_stage / PRIVATE_NOTE_NAME, PRIVATE_NOTE.format(release=job.dst).encode())
                write_new_file(private_stage / PROVENANCE_NAME, buffer.getvalue())
                write_new_file(private_stage / MANIFEST_NAME, to_json(manifest).encode())
                write_new_file(release_stage / RELEASE_NAME, to_json(release).encode())  # last: marks it complete
        except OSError as exc:
            where = exc.filename or job.dst
            raise OSError(exc.errno or errno.EIO,
                          f"{exc.strerror or exc} while writing {where}; dst {job.dst} was not changed, nor "
                          f"private_dir {job.private}: free space, fix permissions or choose another dst",
                          exc.filename) from exc
    return {**manifest, "dst": str(job.dst), "private_dir": str(job.private)}
