"""Folder-scale figures: decoding into the store on one and on all cores, and ``pbm mix`` folder to
folder with its peak memory, on a deterministic synthetic folder of N JPEG files at 192 x 192.

Run:  .venv/bin/python benchmarks/bench_scale.py [--files 20000] [--keep DIR]

Prints, each measured in this run:
- the synthetic folder: N files, two labels, 192 x 192 x 3 JPEG (quality 90);
- folder -> store (``pbmlib.data.store.build_store``) in images/s with 1 process and with
  every core, and the speed-up;
- ``pbm mix`` folder -> folder (N_b = 64, PNG output) in images/s and its peak resident
  memory, for N/4 and N files: flat memory means the peak does not grow with N (the
  images alone are N x 110 KB decoded);
- baseline: plain decode + encode of the same files on one core (what any tool must do).
Each ``pbm mix`` runs in a child process whose peak RSS is read with ``resource``.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image


def make_folder(root: Path, n_files: int, size: int = 192) -> None:
    """Deterministic photo-like JPEGs: smooth random fields plus grain, two labels."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size] / size
    for i in range(n_files):
        a, b, c = rng.uniform(0.5, 6.0, 3)
        field = np.sin(a * xx * 6.28 + b) * np.cos(c * yy * 6.28) * 80 + 128
        image = np.clip(field[..., None] + rng.normal(0, 12, (size, size, 3)), 0, 255).astype(np.uint8)
        folder = root / ("a" if i % 2 else "b")
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / f"{i:06d}.jpg", quality=90)


def peak_rss_of(command: list[str]) -> tuple[float, float]:
    """(seconds, peak resident MiB) of a child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if peak <= before:  # ru_maxrss of children is the largest so far: run the larger case last
        raise RuntimeError("measure the smaller folder first")
    return seconds, peak / 1024


def transcode_rate(src: Path, limit: int = 500) -> float:
    files = sorted(src.rglob("*.jpg"))[:limit]
    t0 = time.perf_counter()
    for f in files:
        with Image.open(f) as img:
            img.convert("RGB").save(os.devnull, format="PNG")
    return len(files) / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=20000, help="N, JPEG files in the folder (default 20000)")
    parser.add_argument("--keep", default=None, help="build the folder here and keep it (default: a temporary one)")
    args = parser.parse_args()
    from pbmlib.data.store import build_store

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="pbm-scale-"))
    try:
        cores = len(os.sched_getaffinity(0))
        for n in (args.files // 4, args.files):
            src = work / f"src{n}"
            if not src.exists():
                t0 = time.perf_counter()
                make_folder(src, n)
                print(f"synthetic folder: {n} JPEG files 192x192x3 in {time.perf_counter() - t0:.0f} s")
        big = work / f"src{args.files}"
        print(f"baseline, decode + PNG encode on one core: {transcode_rate(big):,.0f} images/s")
        rates = {}
        for workers in (1, cores):
            store = work / f"store{workers}"
            t0 = time.perf_counter()
            build_store(big, store, workers=workers)
            rates[workers] = args.files / (time.perf_counter() - t0)
            shutil.rmtree(store)
            print(f"folder -> store, {workers} process(es): {rates[workers]:,.0f} images/s")
        print(f"  speed-up with {cores} cores: {rates[cores] / rates[1]:.2f}x")
        print(f"pbm mix folder -> folder (N_b = 64, 24x24 blocks, PNG, {cores} workers):")
        for n in (args.files // 4, args.files):
            dst = work / f"mixed{n}"
            seconds, peak = peak_rss_of([sys.executable, "-c", "from pbmlib.workbench.cli import main; main()", "mix",
                                         str(work / f"src{n}"), str(dst), "--block", "24x24", "--seed", "0", "--quiet"])
            decoded = n * 192 * 192 * 3 / 2**20
            print(f"  N = {n:>6}: {n / seconds:,.0f} images/s, peak RSS {peak:,.0f} MiB "
                  f"(the decoded images alone: {decoded:,.0f} MiB)")
            shutil.rmtree(dst)
            shutil.rmtree(work / f"mixed{n}.private")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
