"""Mix an image folder into a release folder, and keep the key to it in a separate private folder.

``mix_folder(src, dst)`` reads ``src/<label>/*`` and writes two folders::

    dst/                         the release: the only folder meant to be shared
        release.json             parameters, image format, class sizes, N_b, log10 restoration count,
                                 versions; no source path, no file names, no seed, no provenance
        <label>/000000.png ...   the mixed images under opaque names (a seeded permutation per label)
    dst.private/                 the key: it undoes the mixing; it must never leave the owner
        PRIVATE-DO-NOT-SHARE.txt what the folder is and why it must stay private
        manifest.json            everything in release.json plus the source path, the original file
                                 names and labels, the seed, and output name -> source file
        provenance.npz           ``sources`` (N, H // bh, W // bw): the source image of every output
                                 block (an index into ``files``); ``files``; ``outputs``

Why the two are apart: provenance maps every block of the release back to its original
image, and with it most original blocks go back in place pixel-exact; the seed regenerates
that provenance from the source; original file names often name people (LFW's
``Firstname_Lastname_0001.jpg``). A release folder holding any of them carries its own key.
"""

from __future__ import annotations

import contextlib
import copy
import errno
import io
import json
import os
import secrets
import shutil
import time
import uuid
import warnings
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from .._io import (
    release_pages,
    shared_file_mapping,
    IMAGE_FORMATS,
    check_image_format,
    encode_image,
    lock_folder,
    to_json,
    versions,
    write_new_file,
)
from .._validation import (check_block, check_bool, check_choice, check_positive_int, check_probability, check_rng,
                           usable_cores)
from ..data.datasets import RESAMPLING, _parse_size, list_image_folder
from ..data.store import load_store
from .mixing import gather_blocks, mixing_sources, n_blocks
from .restoration import restoration_log10_probability

__all__ = [
    "mix_folder",
    "load_private",
    "default_private_dir",
    "RELEASE_NAME",
    "MANIFEST_NAME",
    "PROVENANCE_NAME",
    "PRIVATE_NOTE_NAME",
]

RELEASE_NAME = "release.json"
MANIFEST_NAME = "manifest.json"
PROVENANCE_NAME = "provenance.npz"
PRIVATE_NOTE_NAME = "PRIVATE-DO-NOT-SHARE.txt"
PRIVATE_SUFFIX = ".private"
RELEASE_KIND = "pbm mix release"
PRIVATE_KIND = "pbm mix private key"
NAME_CHOICES = ("opaque", "keep")
_STAGING_MARKER = ".pbm-incomplete"
_STORE_DIR = "decoding"  # holds the store of decoded originals (and its lock), in the private staging folder
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


def _mix_batch(images_path: str, sources: np.ndarray, paths: list[str], format: str, quality) -> int:
    """One Dask task: gather these outputs from the store's memory map, encode and write them."""
    images = np.load(images_path, mmap_mode="r")
    for image, path in zip(gather_blocks(images, sources, workers=1), paths):
        write_new_file(path, encode_image(image, format, quality))
    return len(paths)


def _mix_on_cluster(client, images_path: Path, sources, order, paths, format, quality, progress) -> None:
    """Mix, encode and write every output as tasks of a few hundred images on a Dask cluster."""
    from tqdm.auto import tqdm

    step = 256
    futures = [client.submit(_mix_batch, str(images_path), sources[order[lo:lo + step]],
                             [paths[i] for i in order[lo:lo + step]], format, quality, pure=False)
               for lo in range(0, len(order), step)]
    with tqdm(total=len(order), desc="mix and write (cluster)", disable=not progress) as bar:
        for future in futures:
            bar.update(future.result())



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
    path = private_dir / MANIFEST_NAME
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path} not found; pass the private folder mix_folder wrote "
                                f"(by default <dst>{PRIVATE_SUFFIX} beside the release)") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path} is not valid JSON ({exc}); it is not a complete private folder") from None
    if not isinstance(manifest, dict) or manifest.get("kind") != PRIVATE_KIND:
        raise ValueError(f"{path} is not the manifest of a pbm mix private folder")
    with np.load(private_dir / PROVENANCE_NAME) as npz:
        sources = npz["sources"]
    return manifest, sources


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _check_paths(src: Path, dst: Path, private: Path) -> tuple[Path, Path, Path]:
    """Resolve the three folders and refuse any overlap, links as targets, or non-folders."""
    if not src.is_dir():
        raise ValueError(f"src {src} is not a folder; expected a folder with one sub-folder per label")
    for path, role in ((dst, "dst"), (private, "private_dir")):
        if path.is_symlink():
            raise ValueError(f"{role} {path} is a symbolic link (to {os.readlink(path)}); pass the real folder's "
                             f"path: outputs are never written through a link")
        if path.exists() and not path.is_dir():
            raise ValueError(f"{role} {path} exists and is not a folder; choose a new or empty folder")
    src_r, dst_r, private_r = src.resolve(), dst.resolve(), private.resolve()
    if _inside(dst_r, src_r):
        raise ValueError(f"dst {dst} is inside src {src}; choose a destination outside the source folder")
    if _inside(src_r, dst_r):
        raise ValueError(f"src {src} is inside dst {dst}; choose a destination that does not contain the source")
    if _inside(private_r, src_r):
        raise ValueError(f"private_dir {private} is inside src {src}; choose a private folder outside the source")
    if _inside(src_r, private_r):
        raise ValueError(f"src {src} is inside private_dir {private}; choose a private folder that does not "
                         f"contain the source")
    if _inside(private_r, dst_r):
        raise ValueError(f"private_dir {private} is inside dst {dst}, so it would be shared with the release; "
                         f"choose a folder outside dst (the default is {default_private_dir(dst)})")
    if _inside(dst_r, private_r):
        raise ValueError(f"dst {dst} is inside private_dir {private}; keep the release and its key apart "
                         f"(the default private folder is {default_private_dir(dst)})")
    return src_r, dst_r, private_r


def _check_sources_outside(files: list[Path], folders: dict[str, Path]) -> None:
    """Refuse when a source file resolves (through a link) into an output folder: it would be lost."""
    for f in files:
        real = f.resolve()
        for role, folder in folders.items():
            if _inside(real, folder):
                raise ValueError(f"source file {f} is a link into {role} {folder}; replacing the output would "
                                 f"destroy it: copy the source images out of {folder} first")


def _output_kind(folder: Path) -> str:
    """What ``folder`` holds: ``absent``, ``empty``, ``release``, ``private``, ``legacy`` (an output of
    an older pbm mix, provenance inside) or ``foreign`` (anything else: never replaced)."""
    if not os.path.lexists(folder):
        return "absent"
    if not any(folder.iterdir()):
        return "empty"
    for name in (RELEASE_NAME, MANIFEST_NAME):
        candidate = folder / name
        if candidate.is_file() and not candidate.is_symlink():
            try:
                record = json.loads(candidate.read_text())
            except (OSError, ValueError, UnicodeDecodeError):
                continue
            if not isinstance(record, dict):
                continue
            if record.get("kind") == RELEASE_KIND and name == RELEASE_NAME:
                return "release"
            if record.get("kind") == PRIVATE_KIND and name == MANIFEST_NAME:
                return "private"
            if name == MANIFEST_NAME and "provenance" in record and "source" in record and "files" in record:
                return "legacy"
    return "foreign"


def _check_replaceable(folder: Path, role: str, overwrite: bool, allowed: tuple[str, ...]) -> None:
    kind = _output_kind(folder)
    if kind in ("absent", "empty"):
        return
    if not overwrite:
        raise ValueError(f"{role} {folder} is not empty; choose an empty or new folder, or pass overwrite=True "
                         f"(--overwrite) to replace an earlier output")
    if kind not in allowed:
        record = RELEASE_NAME if role == "dst" else MANIFEST_NAME
        raise ValueError(f"{role} {folder} is not empty and is not an earlier pbm mix output (it has no pbm mix "
                         f"{record}); overwrite only replaces an earlier output: choose an empty or new folder")


def _clean_stale(target: Path) -> list[Path]:
    """Remove what a killed run left beside ``target``: ``.<name>.incomplete-*.tmp`` staging folders
    (marked by us) and ``.<name>.replaced-*.tmp`` (an earlier output being replaced; put back
    when ``target`` itself is gone). Call it holding the target's lock."""
    removed = []
    parent = target.parent
    if not parent.is_dir():
        return removed
    prefix = f".{target.name}."
    for entry in sorted(parent.iterdir()):
        name = entry.name
        if not (name.startswith(prefix) and name.endswith(".tmp")) or entry.is_symlink() or not entry.is_dir():
            continue
        middle = name[len(prefix):-len(".tmp")]
        if middle.startswith("incomplete-") and (entry / _STAGING_MARKER).is_file():
            shutil.rmtree(entry)
            removed.append(entry)
        elif middle.startswith("replaced-"):
            if not os.path.lexists(target):
                os.rename(entry, target)  # the swap was cut between its two renames: put the old output back
            else:
                shutil.rmtree(entry)
                removed.append(entry)
    return removed


def _new_staging(target: Path, *, private: bool) -> Path:
    """A fresh, marked folder beside ``target`` (same file system, so the final rename is atomic)."""
    staging = target.parent / f".{target.name}.incomplete-{secrets.token_hex(6)}.tmp"
    os.mkdir(staging, 0o700 if private else 0o777)  # umask applies; the key folder is the owner's only
    write_new_file(staging / _STAGING_MARKER, b"an unfinished pbm mix output; removed by the next run\n")
    return staging


def _install(staging: Path, target: Path) -> None:
    """Make ``staging`` the new ``target``: the old one is renamed aside, then removed (links in it
    are removed, never followed)."""
    (staging / _STAGING_MARKER).unlink()
    if not os.path.lexists(target):
        os.rename(staging, target)
        return
    aside = target.parent / f".{target.name}.replaced-{secrets.token_hex(6)}.tmp"
    os.rename(target, aside)
    try:
        os.rename(staging, target)
    except BaseException:
        os.rename(aside, target)
        raise
    shutil.rmtree(aside)


def _output_names(rel: list[str], labels: list[str], names: str, suffix: str, rng: np.random.Generator) -> list[str]:
    """The release's file name of every source file (same order as ``rel``)."""
    if names == "keep":
        outputs = [f"{Path(r).parent.as_posix()}/{Path(r).stem}{suffix}" for r in rel]
        seen: dict[str, str] = {}
        for r, out in zip(rel, outputs):
            other = seen.setdefault(out.lower(), r)
            if other != r:
                raise ValueError(f"names='keep' would write {other} and {r} to one file {out}; rename one of them "
                                 f"or use names='opaque'")
        return outputs
    sizes = Counter(labels)
    width = max(6, len(str(max(sizes.values()) - 1)))
    number = {label: iter(rng.permutation(n).tolist()) for label, n in sizes.items()}
    return [f"{label}/{next(number[label]):0{width}d}{suffix}" for label in labels]


def _seed_material(seed):
    """``(seed for mix_blocks, rng for the names, record)``; validated, nothing consumed yet."""
    if isinstance(seed, np.random.Generator):
        state = copy.deepcopy(seed.bit_generator.state)
        return seed, None, {"seed": None, "generator_state": state}
    check_rng(seed)  # refuses bools, negative ints, strings
    value = int(np.random.SeedSequence().entropy) if seed is None else int(seed)
    names_rng = np.random.default_rng(np.random.SeedSequence(value, spawn_key=(_NAMES_STREAM,)))
    return value, names_rng, {"seed": value, "seed_drawn": seed is None}


def mix_folder(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    *,
    block=None,
    n_donors: int = 10,
    rounds: int = 1,
    p: float = 0.5,
    seed=None,
    allow_self: bool = False,
    strict: bool = False,
    private_dir: str | os.PathLike | None = None,
    names: str = "opaque",
    size=None,
    mode: str | None = None,
    resample: str = "bilinear",
    format: str = "png",
    jpeg_quality: int | None = None,
    overwrite: bool = False,
    progress: bool = False,
    workers: int | None = None,
    client=None,
) -> dict:
    """Mix every image of ``src/<label>/`` with same-label blocks; write a release and, apart, its key.

    Parameters
    ----------
    src : path
        A folder with one sub-folder per label holding .png/.jpg/... files. Never written to.
    dst : path
        The release folder: created if missing; must be new or empty unless
        ``overwrite=True``. It receives only ``<label>/<name>`` images and ``release.json``
        (parameters, no source path, no original names, no seed, no provenance).
    block : (int, int)
        Block height and width in pixels; required. The mixing parameters ``block``,
        ``n_donors``, ``rounds``, ``p``, ``seed``, ``allow_self``, ``strict`` are those of
        :func:`pbmlib.mix_blocks`: the same seed gives the same mixed pixels.
    seed : None, int or numpy.random.Generator, default=None
        Pass an int for reproducible output. None draws fresh entropy and records it (as
        ``seed``) in the private manifest; a Generator's state before use is recorded there
        (``generator_state``) and the Generator is advanced. The seed is a key too (it
        regenerates the provenance from the source), so it is kept out of the release.
    private_dir : path, optional
        Where the key goes (``manifest.json``, ``provenance.npz``, a note); default
        ``<dst>.private`` beside ``dst``. It must lie outside ``dst`` and ``src``; it is
        created owner-only (mode 0700). Never share it.
    names : {"opaque", "keep"}, default="opaque"
        ``"opaque"`` names outputs ``<label>/000000.png``, ``000001.png``, ... in an order
        drawn at random per label (from the seed), so a name says nothing about the source
        file; ``"keep"`` keeps the source file's name (warns: names often name people).
    size : None, int or (height, width)
        Resize every image first (the paper resizes to one size; its code uses 192 x 192).
    mode : None, "L" or "RGB"
        Channel layout; None keeps what the files have and requires them to agree.
        ``"RGB"`` gives grey images three equal channels, as the reference code does.
    resample : {"bilinear", "lanczos", "bicubic", "nearest"}, default="bilinear"
        Resize filter with ``size`` (the reference code uses Lanczos); recorded in the release.
    format : {"png", "jpeg", "webp"}, default="png"
        Output format. PNG (default) and WebP are written lossless, so the release holds
        exactly the mixed pixels; JPEG is lossy (the reference code saves JPEG at 75).
    jpeg_quality : int from 1 to 95, optional
        JPEG quality (default 95); only with ``format="jpeg"``. Values outside 1-95 are
        refused, not clamped. ``release.json`` records the format and quality used.
    overwrite : bool, default=False
        Replace an earlier output of ``mix_folder``: the whole of ``dst`` (and of the
        private folder) is replaced, nothing of the old output is left beside the new one.
        A non-empty folder that is not an earlier output is never replaced.
    progress : bool, default=False
        Show a tqdm progress bar while reading and writing.
    workers : int, optional
        Processes that decode and threads that encode (Pillow releases the GIL while it
        encodes); default: the cores this process may use. The output does not depend on it.
    client : distributed.Client, optional
        Decode, mix and encode as tasks on this Dask cluster (for folders of hundreds of
        thousands of images); ``src``, ``dst`` and the private folder must be on storage every
        worker sees at the same paths. The output is the same bytes.

    Returns
    -------
    dict
        The private manifest (as written to ``<private_dir>/manifest.json``), plus
        ``dst`` and ``private_dir`` (resolved paths). Its ``release`` entries (``parameters``,
        ``n_images``, ``class_sizes``, ``n_blocks``, ``log10_restoration_probability``, ...)
        are those of ``release.json``.

    Notes
    -----
    Memory stays flat as the folder grows: the images are decoded once, in parallel, into
    an on-disk uint8 store (:func:`pbmlib.data.store.load_store`, inside the private
    staging folder, removed afterwards), the mixing is drawn for the whole set at once
    (indices only), and the pixels are gathered from the memory map a few dozen outputs
    at a time into one reused buffer (the map's pages handed back after each batch) and
    encoded on every core. The same seed gives the same bytes as :func:`pbmlib.mix_blocks`
    on the same images.

    Every argument is checked before anything is written. Both folders are then written under temporary names
    beside their targets (``.<name>.incomplete-<random>.tmp``), ``release.json`` last, and
    renamed into place only when complete: ``dst`` is always either the earlier complete
    output or the new complete one, never a mixture; an interrupted run leaves only its
    ``.incomplete-...tmp`` folder, which the next run on the same ``dst`` removes. Links are
    never followed when writing: a ``dst`` or ``private_dir`` that is a link is refused,
    the new folders are created fresh, and an old output is removed with links in it
    unlinked, not followed. A source file that resolves into ``dst`` is refused. While it
    runs, ``dst`` and the private folder are locked (``.<name>.lock`` beside each): a second
    ``mix_folder`` on either refuses at once. Replacing ``dst`` swaps in a new folder: a shell
    whose working directory is ``dst`` must ``cd`` into it again.

    Why opaque names by default: file names in face data sets are often people's names,
    and even a neutral sorted numbering would give away each output's position in the
    source listing; a random per-label permutation keeps both out of the release. Files
    are also written in the order of their opaque names, so file times and inode numbers
    do not reveal the source order. Label folder names are kept (they are the training
    target): rename label folders before mixing if they name people.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from PIL import Image
    >>> root = Path(tempfile.mkdtemp())
    >>> for label in ("a", "b"):
    ...     (root / "src" / label).mkdir(parents=True)
    ...     for i in range(3):
    ...         Image.fromarray(np.full((8, 8), 40 * i, np.uint8)).save(root / "src" / label / f"x{i}.png")
    >>> info = mix_folder(root / "src", root / "release", block=(4, 4), seed=0)
    >>> sorted(p.name for p in (root / "release").iterdir())
    ['a', 'b', 'release.json']
    >>> sorted(p.name for p in (root / "release.private").iterdir())
    ['PRIVATE-DO-NOT-SHARE.txt', 'manifest.json', 'provenance.npz']
    """
    from tqdm.auto import tqdm

    # 1. Every argument, before anything is read or written.
    if block is None:
        raise ValueError("mix_folder needs block=(height, width) in pixels, e.g. block=(24, 24)")
    check_block((0, 0), block)  # a pair of whole numbers >= 1; divisibility once the image size is known
    n_donors = check_positive_int(n_donors, name="n_donors")
    rounds = check_positive_int(rounds, name="rounds")
    p = check_probability(p)
    allow_self = check_bool(allow_self, name="allow_self")
    strict = check_bool(strict, name="strict")
    overwrite = check_bool(overwrite, name="overwrite")
    progress = check_bool(progress, name="progress")
    if workers is not None:
        workers = check_positive_int(workers, name="workers")
    check_choice(names, NAME_CHOICES, name="names")
    format, quality = check_image_format(format, jpeg_quality)
    size = _parse_size(size)
    check_choice(resample, tuple(RESAMPLING), name="resample")
    if size is not None:
        check_block(size, block)
    if mode not in (None, "L", "RGB"):
        raise ValueError(f"mode must be None, 'L' or 'RGB', got {mode!r}")
    mix_seed, names_rng, seed_record = _seed_material(seed)

    # 2. Paths: resolved, apart, no links as targets, no source inside an output.
    src, dst = Path(src), Path(dst)
    private = Path(private_dir) if private_dir is not None else default_private_dir(dst)
    src_r, dst_r, private_r = _check_paths(src, dst, private)
    files, labels = list_image_folder(src)
    _check_sources_outside(files, {"dst": dst_r, "private_dir": private_r})
    if names == "keep":
        warnings.warn("names='keep' copies the source file names into the release; in face data sets they often "
                      "name the people shown (e.g. LFW's Firstname_Lastname_0001.jpg)", UserWarning, stacklevel=2)

    with lock_folder(dst_r, what="dst"), lock_folder(private_r, what="private_dir"):
        # Under the lock (no other run can be mid-write): leftovers of a killed run go first, then
        # the targets are checked as they now are.
        _clean_stale(dst_r)
        _clean_stale(private_r)
        _check_replaceable(dst_r, "dst", overwrite, ("release", "legacy"))
        _check_replaceable(private_r, "private_dir", overwrite, ("private",))

        # 3. Decode once into a store inside the private staging folder (decoded originals are as private
        # as the key), draw the whole mixing (cheap: no pixels), build every document; the targets are
        # still untouched.
        staged: list[Path] = []
        try:
            release_stage = _new_staging(dst_r, private=False)
            staged.append(release_stage)
            private_stage = _new_staging(private_r, private=True)
            staged.append(private_stage)
            started = time.perf_counter()
            store_dir = private_stage / _STORE_DIR / "store"
            store = load_store(src_r, store_dir, size=size, mode=mode, resample=resample, workers=workers,
                               client=client)
            images = store.images  # a read-only memory map: never read whole into memory
            rel = list(store.files)
            read_s = time.perf_counter() - started
            block = check_block(images.shape[1:3], block)
            t0 = time.perf_counter()
            sources = mixing_sources(labels, images.shape[1:], block=block, n_donors=n_donors, rounds=rounds, p=p,
                                     seed=mix_seed, allow_self=allow_self, strict=strict)
            suffix = IMAGE_FORMATS[format][0]
            outputs = _output_names(rel, labels, names, suffix, names_rng if names_rng is not None else mix_seed)

            class_sizes = dict(Counter(labels))  # insertion order: first appearance
            nb = n_blocks(images.shape[1:], block)
            release_id = uuid.uuid4().hex
            release = {
                "kind": RELEASE_KIND,
                "release_id": release_id,
                "parameters": {"block": list(block), "n_donors": n_donors, "rounds": rounds, "p": p,
                               "allow_self": allow_self, "size": list(size) if size else None, "mode": mode,
                               "resample": resample},
                "image_format": {"format": format, "suffix": suffix, "lossless": IMAGE_FORMATS[format][2],
                                 "jpeg_quality": quality},
                "names": names,
                "image_shape": list(images.shape[1:]),
                "n_images": len(rel),
                "class_sizes": class_sizes,
                "n_blocks": nb,
                "log10_restoration_probability": restoration_log10_probability(class_sizes, nb),
                "key": "the provenance, seed and source names of this release are kept apart by its owner; "
                       "they are not part of it",
                "versions": versions(),
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            }
            manifest = {
                **release,
                "kind": PRIVATE_KIND,
                "key": "PRIVATE: this folder undoes the mixing of the release; never let it leave the owner",
                "release_dir": str(dst_r),
                "source": str(src_r),
                **seed_record,
                "files": rel,
                "labels": labels,
                "outputs": outputs,
                "provenance": PROVENANCE_NAME,
                "seconds": {"read": read_s},
            }
            buffer = io.BytesIO()
            np.savez_compressed(buffer, sources=sources, files=np.array(rel), outputs=np.array(outputs))
            provenance_bytes = buffer.getvalue()
            note = PRIVATE_NOTE.format(release=dst_r).encode()

            # 4. Mix a chunk at a time from the memory map into one reused buffer, encode the chunk on every
            # core, write both folders under temporary names (release.json last), then rename into place.
            for label in class_sizes:
                os.mkdir(release_stage / str(label))
            order = np.array(sorted(range(len(outputs)), key=outputs.__getitem__))  # write order hides the source's
            if client is not None:
                _mix_on_cluster(client, store_dir / "images.npy", sources, order,
                                [str(release_stage / name) for name in outputs], format, quality, progress)
                order = order[:0]  # nothing left for this machine
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
                    for i, data in zip(index, pool.map(lambda image: encode_image(image, format, quality), part)):
                        write_new_file(release_stage / outputs[i], data)
                    bar.update(len(index))
            manifest["seconds"]["mix_and_write"] = time.perf_counter() - t0
            shutil.rmtree(private_stage / _STORE_DIR)  # the decoded originals do not stay
            write_new_file(private_stage / PRIVATE_NOTE_NAME, note)
            write_new_file(private_stage / PROVENANCE_NAME, provenance_bytes)
            write_new_file(private_stage / MANIFEST_NAME, to_json(manifest).encode())
            write_new_file(release_stage / RELEASE_NAME, to_json(release).encode())
            _install(private_stage, private_r)
            staged.remove(private_stage)
            _install(release_stage, dst_r)
            staged.remove(release_stage)
        except OSError as exc:
            raise OSError(exc.errno or errno.EIO,
                          f"{exc.strerror or exc}; could not write the output (dst {dst} was not changed: free "
                          f"space, fix permissions or choose another dst)", exc.filename) from exc
        finally:
            for folder in staged:
                with contextlib.suppress(OSError):
                    shutil.rmtree(folder)
    return {**manifest, "dst": str(dst_r), "private_dir": str(private_r)}
