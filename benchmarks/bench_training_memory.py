"""Training memory: peak RSS of one epoch of ``small_cnn`` against the number of images.

Run:  .venv/bin/python benchmarks/bench_training_memory.py [--sizes 1000 3000] [--no-baseline]

Random uint8 192 x 192 x 3 images (110.6 kB each) are written to a ``.npy`` file, as a
store holds them, and each training runs in its own process, whose peak resident set
(``ru_maxrss`` from ``os.wait4``) is read after it exits. Two paths, measured in the
same run:

- streaming: ``pbmlib.learn.training.train_and_evaluate(..., model_name="small_cnn")`` on the memory
  map, 1 epoch, batch 32 (float32 batches made on the fly);
- whole-set float (baseline; ``--no-baseline`` skips it): the earlier code path, the set
  converted to float32 up front and handed to ``model.fit`` as arrays.

Printed: peak RSS per size; the most of the training file's pages resident in the
process at once (sampled every 0.5 s; the float path reads the file once, into its
copy); and the slope between consecutive sizes per further image, also as a multiple
of one image's uint8 size. The peak RSS of TensorFlow varies by a few hundred MB from
run to run, which is the size of these slopes for the streaming path. The targets of
issue 13: at most 2.5 GB at 6,000 images, at most 1.2x the uint8 size per further image.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SHAPE = (192, 192, 3)
N_TEST = 64


def make_data(folder: Path, n: int, shape: tuple) -> None:
    """``n`` random training images and ``N_TEST`` test images as .npy files, written by chunks."""
    rng = np.random.default_rng(n)
    for name, count in (("train", n), ("test", N_TEST)):
        out = np.lib.format.open_memmap(folder / f"{name}.npy", mode="w+", dtype=np.uint8, shape=(count, *shape))
        for lo in range(0, count, 250):
            out[lo:lo + 250] = rng.integers(0, 256, (min(250, count - lo), *shape), dtype=np.uint8)
        out.flush()
        del out
        np.save(folder / f"{name}_labels.npy", np.arange(count) % 2)


def resident_mb(suffix: str) -> float | None:
    """Resident MB of this process' mappings of files ending in ``suffix`` (None without /proc)."""
    try:
        total, inside = 0, False
        with open("/proc/self/smaps") as fh:
            for line in fh:
                if "-" in line.split(" ", 1)[0] and not line.startswith(("Rss", "Pss")):
                    inside = line.rstrip().endswith(suffix)
                elif inside and line.startswith("Rss:"):
                    total += int(line.split()[1])
        return total / 1024
    except OSError:
        return None


def child(path: str, folder: Path, batch_size: int) -> None:
    """One training in this process; prints a JSON line."""
    import threading

    import keras

    from pbmlib.learn.training import train_and_evaluate

    samples, done = [], threading.Event()

    def sample():  # the training images' pages resident in this process, every half second
        while not done.wait(0.5):
            samples.append(resident_mb("train.npy"))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()

    x = np.load(folder / "train.npy", mmap_mode="r")
    y = np.load(folder / "train_labels.npy")
    x_test = np.load(folder / "test.npy", mmap_mode="r")
    y_test = np.load(folder / "test_labels.npy")
    t0 = time.perf_counter()
    if path == "streaming":
        record = train_and_evaluate((x, y), (x_test, y_test), epochs=1, batch_size=batch_size, seed=0, model_name="small_cnn")
        accuracy = record["test_accuracy_mean"]
    else:  # the pre-streaming path: whole set in float32, arrays to model.fit
        from pbmlib.learn.models import build_model

        keras.utils.set_random_seed(0)
        x_float, x_test_float = np.asarray(x).astype("float32"), np.asarray(x_test).astype("float32")
        model = build_model("small_cnn", input_shape=x.shape[1:], classes=2)
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        model.fit(x_float, y, epochs=1, batch_size=batch_size, shuffle=True, verbose=0)
        accuracy = model.evaluate(x_test_float, y_test, batch_size=max(batch_size, 64), verbose=0)[1]
    seconds = time.perf_counter() - t0
    done.set()
    sampler.join()
    mapped = [m for m in samples if m is not None]
    print(json.dumps({"seconds": seconds, "accuracy": float(accuracy),
                      "file_resident_mb": max(mapped) if mapped else float("nan")}))


def measure(path: str, folder: Path, batch_size: int) -> dict:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    with tempfile.TemporaryFile(mode="w+") as errors:
        proc = subprocess.Popen([sys.executable, __file__, "--child", path, "--data", str(folder),
                                 "--batch-size", str(batch_size)], stdout=subprocess.PIPE, stderr=errors,
                                env=env, text=True)
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)  # the rusage of this child alone
        proc.returncode = os.waitstatus_to_exitcode(status)
        proc.stdout.close()
        if proc.returncode != 0:
            errors.seek(0)
            raise RuntimeError(f"{path} training failed ({proc.returncode}):\n{errors.read()[-3000:]}")
    result = json.loads(out.strip().splitlines()[-1])
    result["peak_rss_mb"] = usage.ru_maxrss / 1024  # kB on Linux
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 3000])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--shape", type=int, nargs=3, default=list(SHAPE), metavar=("H", "W", "C"),
                        help="image shape (default 192 192 3); small shapes for a quick check")
    parser.add_argument("--no-baseline", action="store_true", help="skip the whole-set float path")
    parser.add_argument("--baseline-max", type=int, default=3000,
                        help="run the whole-set float path only up to this many images (default 3000: it needs "
                             "about 1.2 MB per image)")
    parser.add_argument("--workdir", type=Path, default=None, help="where the .npy files go (default: a temp dir)")
    parser.add_argument("--child", choices=["streaming", "float"], help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.data, args.batch_size)
        return
    sizes = sorted(set(args.sizes))
    if len(sizes) < 2:
        parser.error("--sizes needs two sizes or more, for the slope")
    shape = tuple(args.shape)
    paths = ["streaming"] + ([] if args.no_baseline else ["float"])
    image_bytes = int(np.prod(shape))
    root = Path(tempfile.mkdtemp(prefix="bench_training_memory_", dir=args.workdir))
    print(f"training peak RSS: small_cnn, 1 epoch, batch {args.batch_size}, random uint8 {shape[0]}x{shape[1]}x"
          f"{shape[2]} ({image_bytes / 1000:.1f} kB per image), {N_TEST} test images, one process per training")
    print(f"  {'path':<11} {'images':>7} {'uint8 MB':>9} {'peak RSS MB':>12} {'memmap res. MB':>15} {'train s':>8} "
          f"{'images/s':>9}")
    results = {p: {} for p in paths}
    try:
        for n in sizes:
            folder = root / str(n)
            folder.mkdir()
            make_data(folder, n, shape)
            for path in paths:
                if path == "float" and n > args.baseline_max:
                    continue
                r = measure(path, folder, args.batch_size)
                results[path][n] = r
                print(f"  {path:<11} {n:>7} {n * image_bytes / 1e6:>9.1f} {r['peak_rss_mb']:>12.0f} "
                      f"{r['file_resident_mb']:>15.0f} {r['seconds']:>8.1f} {n / r['seconds']:>9.1f}", flush=True)
            shutil.rmtree(folder)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"slope per further image (uint8 image = {image_bytes / 1000:.1f} kB):")
    for path in paths:
        measured = sorted(results[path])
        for lo, hi in zip(measured, measured[1:]):
            slope = (results[path][hi]["peak_rss_mb"] - results[path][lo]["peak_rss_mb"]) * 2**20 / (hi - lo)
            print(f"  {path:<11} {lo:>6} -> {hi:<6} {slope / 1000:>8.1f} kB per image = "
                  f"{slope / image_bytes:>5.2f} x its uint8 size")
    for n in sorted(set(results["streaming"]) & set(results.get("float", {}))):
        ratio = results["streaming"][n]["peak_rss_mb"] / results["float"][n]["peak_rss_mb"]
        print(f"  streaming / whole-set float peak RSS at {n} images: {ratio:.2f}")
    print("targets (issue 13): <= 2.5 GB at 6,000 images; <= 1.2x the uint8 size per further image")


if __name__ == "__main__":
    main()
