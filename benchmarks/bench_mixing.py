"""Mixing speed: in memory against np.copy, and folder to folder against decode+resize+encode.

Run:  .venv/bin/python benchmarks/bench_mixing.py [--images 5000] [--files 300]

Prints images/second and ratios against a baseline measured in the same run:
- in memory, 224 x 224 x 3 uint8 images, N_s = 10, N_t = 1 and 3, N_b = 16..256, on one
  core and on every core (the gather's chunks on threads);
  baseline: one np.copy of the same array (one core; the physical limit of any gather);
- folder to folder, JPEG files resized to 192 x 192 (the reference code's setting), on one
  core and, at N_b = 64, on every core (decoding processes, encoding threads);
  baseline: PIL decode + resize + JPEG encode of the same files on one core, nothing else.
Best of ``--repeats`` runs each. In memory single-threaded: numpy's copy and take use one core.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from pbmlib import mix_blocks, mix_folder, n_blocks

BLOCKS_224 = {16: (56, 56), 64: (28, 28), 128: (28, 14), 256: (14, 14)}
BLOCKS_192 = {16: (96, 24), 64: (24, 24), 128: (24, 12), 256: (12, 12)}


def best_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def bench_memory(n_images: int, repeats: int) -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(n_images, 224, 224, 3), dtype=np.uint8)
    labels = rng.integers(0, 2, n_images)
    copy_s = best_time(lambda: np.copy(images), repeats)
    print(f"in memory: {n_images} images 224x224x3 ({images.nbytes / 2**20:.0f} MiB), N_s = 10")
    print(f"  np.copy baseline: {copy_s:.3f} s ({n_images / copy_s:,.0f} images/s)")
    cores = len(os.sched_getaffinity(0))
    print(f"  {'N_b':>4} {'block':>7} {'N_t':>3} {'images/s':>10} {'time/copy':>9}   {cores} cores: "
          f"{'images/s':>10} {'time/copy':>9}")
    for nb, block in BLOCKS_224.items():
        assert n_blocks((224, 224), block) == nb
        for rounds in (1, 3):
            t1, tn = (best_time(lambda: mix_blocks(images, labels, block=block, n_donors=10, rounds=rounds, seed=0,
                                                   workers=workers), repeats) for workers in (1, cores))
            print(f"  {nb:>4} {block[0]:>3}x{block[1]:<3} {rounds:>3} {n_images / t1:>10,.0f} {t1 / copy_s:>9.2f}"
                  f"   {'':>{len(str(cores)) + 7}}{n_images / tn:>10,.0f} {tn / copy_s:>9.2f}")


def make_jpeg_folder(root: Path, n_files: int) -> None:
    """Photo-like JPEGs (crops of scikit-image's sample photos), 256 x 256, two labels."""
    from skimage import data

    photos = [data.astronaut(), data.chelsea(), data.coffee(), data.rocket()]
    rng = np.random.default_rng(0)
    for i in range(n_files):
        photo = photos[i % len(photos)]
        y = rng.integers(0, photo.shape[0] - 256)
        x = rng.integers(0, photo.shape[1] - 256)
        label_dir = root / ("a" if i % 2 else "b")
        label_dir.mkdir(parents=True, exist_ok=True)
        Image.fromarray(photo[y:y + 256, x:x + 256]).save(label_dir / f"{i:05d}.jpg", quality=90)


def transcode(src: Path, dst: Path) -> None:
    """Baseline: decode, resize to 192 x 192, encode; no mixing, no manifest."""
    for f in sorted(src.rglob("*.jpg")):
        out = dst / f.relative_to(src)
        out.parent.mkdir(parents=True, exist_ok=True)
        with Image.open(f) as img:
            img.convert("RGB").resize((192, 192), Image.Resampling.BILINEAR).save(out, quality=95)


def bench_folder(n_files: int, repeats: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="pbm-bench-"))
    try:
        src = work / "src"
        make_jpeg_folder(src, n_files)

        def fresh(name):
            for path in (work / name, work / f"{name}.private"):
                shutil.rmtree(path, ignore_errors=True)
            return work / name

        base_s = best_time(lambda: transcode(src, fresh("plain")), repeats)
        print(f"folder to folder: {n_files} JPEG files 256x256 -> 192x192 JPEG (quality 95), N_s = 10, N_t = 1")
        print(f"  decode+resize+encode baseline (one core): {n_files / base_s:,.0f} images/s")
        print(f"  {'N_b':>4} {'block':>7} {'cores':>5} {'images/s':>10} {'time/baseline':>13}")
        cores = len(os.sched_getaffinity(0))
        for nb, block in BLOCKS_192.items():
            for workers in (1, cores) if nb == 64 else (1,):
                t = best_time(lambda: mix_folder(src, fresh("mixed"), size=(192, 192), block=block, n_donors=10,
                                                 seed=0, format="jpeg", jpeg_quality=95, workers=workers), repeats)
                print(f"  {nb:>4} {block[0]:>3}x{block[1]:<3} {workers:>5} {n_files / t:>10,.0f} {t / base_s:>13.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=5000, help="in-memory images (default 5000)")
    parser.add_argument("--files", type=int, default=300, help="JPEG files for the folder run (default 300)")
    parser.add_argument("--repeats", type=int, default=3, help="best of this many runs (default 3)")
    args = parser.parse_args()
    bench_memory(args.images, args.repeats)
    bench_folder(args.files, args.repeats)


if __name__ == "__main__":
    main()
