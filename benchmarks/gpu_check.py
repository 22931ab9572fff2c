"""The workbench on a GPU machine with JAX: ResNet50 training images/s and the LiRA benchmark, in under 8 minutes.

The lent GPU machines have JAX (CUDA) but no TensorFlow and no Keras, and reach no package
registry (README, "On a GPU"). So the wheels that pbmlib's Keras tier needs there (keras and
its two dependencies that the machine lacks, namex and optree) and the Fashion-MNIST files are
prepared here and carried beside the checkout:

    .venv/bin/python benchmarks/gpu_check.py --prepare   # here: .whl/ (pip download) and .gpu_data/
    .venv/bin/python benchmarks/gpu_check.py --dry-run   # here: what would run, and whether it is ready

and there (the device tool: ``carry: [".whl", ".gpu_data"]``, both ignored by git):

    python3 benchmarks/gpu_check.py

which installs the wheels offline into /tmp/site (``pip install --no-index --no-deps --target``),
then runs, each in its own process with ``KERAS_BACKEND=jax`` and a time limit that keeps the
whole under 8 minutes:

1. ResNet50 at 224 x 224, batch 128, float32 and mixed bfloat16: training images/s on one
   device-resident batch (``build_model("resnet50")``, Adam; the first steps compile and are
   not timed);
2. the small CNN at 28 x 28, batch 32, the same way, and from its rate the training time of
   the Fashion-MNIST frontier (``sweeps/frontier_fashion.yaml``: its trainings and shadow
   models, as the planner counted them here at ``--prepare``; its audits run on the CPU);
3. ``benchmarks/bench_lira.py --plain-models 2``: LiRA with 16 shadow models and the target on
   5,000 Fashion-MNIST images, the fast path and the plain loop (2 models, extrapolated).

It prints every step's figures and time. Exit status: 0 when every step ran, 1 when one failed
or ran out of time (the others still run), 2 for a missing wheel or data file.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WHEELS = ROOT / ".whl"
DATA = ROOT / ".gpu_data"
SITE = "/tmp/site"
#: Packages pbmlib's Keras tier imports that the GPU machine's image lacks (KINDS.md's list).
NEEDED = ("keras", "namex", "optree")
FASHION_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")
#: Seconds per step; together well under 8 minutes (480 s), with room for starting Python.
BUDGET = {"install": 60, "resnet50 float32": 90, "resnet50 mixed_bfloat16": 90, "small_cnn": 40, "lira": 180}
#: The Fashion-MNIST frontier's training work, counted here by the planner at --prepare (the GPU
#: machine lacks the planner's packages): written beside the data, read after the small_cnn step.
FRONTIER_PLAN = "frontier_plan.json"
FRONTIER_CONFIG = ROOT / "sweeps" / "frontier_fashion.yaml"
_RATE = re.compile(r": ([\d,]+) training images/s")
PYTHON_VERSION = "3.12"  # the GPU machine's python3
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64",
             "manylinux1_x86_64")


def download_command(folder: Path = WHEELS) -> list[str]:
    """``pip download`` of the wheels the GPU machine lacks, at the versions installed here."""
    from importlib import metadata

    pins = []
    for name in NEEDED:
        try:
            pins.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            pins.append(name)
    platforms = [arg for p in PLATFORMS for arg in ("--platform", p)]
    return [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--python-version",
            PYTHON_VERSION, "--implementation", "cp", *platforms, "-d", str(folder), *pins]


_INSTALL = ["-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile", "--no-cache-dir", "--upgrade",
            "--target"]


def install_command(folder: Path = WHEELS, site: str = SITE) -> list[str]:
    """The offline install there (README's GPU section): no index, no dependency resolution."""
    return [sys.executable, *_INSTALL, site, *sorted(glob.glob(str(folder / "*.whl")))]


def missing(wheels: Path = WHEELS, data: Path = DATA) -> list[str]:
    """What the GPU run needs and cannot find, one line each."""
    found = {Path(w).name.split("-")[0].lower() for w in glob.glob(str(wheels / "*.whl"))}
    lines = [f"the {name} wheel in {wheels}" for name in NEEDED if name not in found]
    lines += [f"{data / name}" for name in FASHION_FILES + (FRONTIER_PLAN,) if not (data / name).is_file()]
    return lines


def steps(data: Path = DATA, *, smoke: bool = False) -> list[tuple[str, list[str]]]:
    """The measured steps: (name, command), each run with ``KERAS_BACKEND=jax``; ``smoke``: tiny sizes."""
    here = os.path.abspath(__file__)
    tiny = ["--smoke"] if smoke else []
    resnet = [(f"resnet50 {p}", [sys.executable, here, "--resnet50", p, *tiny]) for p in ("float32", "mixed_bfloat16")]
    resnet.append(("small_cnn", [sys.executable, here, "--small-cnn", *tiny]))
    sizes = ["--population", "200", "--shadows", "4", "--epochs", "1", "--plain-models", "1", "--bootstrap", "10"] \
        if smoke else ["--plain-models", "2"]
    lira = [sys.executable, str(ROOT / "benchmarks" / "bench_lira.py"), *sizes, "--fashion-mnist-dir", str(data)]
    return resnet + [("lira", lira)]


def child_environment(site: str = SITE) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([site, str(ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env.update(KERAS_BACKEND="jax", PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL="2")
    return env


def plan(wheels: Path = WHEELS, data: Path = DATA, *, smoke: bool = False, site: str = SITE) -> str:
    lines = ["gpu_check plan (KERAS_BACKEND=jax; every step in its own process, with a time limit):",
             f"  install ({BUDGET['install']} s): {shlex.join([sys.executable, *_INSTALL, site])} {wheels}/*.whl"]
    for name, command in steps(data, smoke=smoke):
        lines.append(f"  {name} ({BUDGET[name]} s): {shlex.join(command)}")
    lines.append(f"  time limits add up to {sum(BUDGET.values())} s (under 8 minutes: 480 s)")
    gaps = missing(wheels, data)
    lines.append("ready: yes" if not gaps else "ready: no; missing " + "; ".join(gaps) +
                 " (run `benchmarks/gpu_check.py --prepare` here, where PyPI is reachable)")
    return "\n".join(lines)


def prepare(wheels: Path = WHEELS, data: Path = DATA) -> int:
    """Here: download the wheels and copy the Fashion-MNIST training files into the carried folders."""
    from pbmlib.data.datasets import FASHION_MNIST_DIR

    wheels.mkdir(exist_ok=True)
    done = subprocess.run(download_command(wheels))
    if done.returncode:
        print("gpu_check: pip download failed (see above)", file=sys.stderr)
        return 2
    data.mkdir(exist_ok=True)
    for name in FASHION_FILES:
        source = Path(FASHION_MNIST_DIR) / name
        if not source.is_file():
            print(f"gpu_check: {source} is missing; install Debian's dataset-fashion-mnist "
                  f"(apt-get install dataset-fashion-mnist)", file=sys.stderr)
            return 2
        shutil.copyfile(source, data / name)
    (data / FRONTIER_PLAN).write_text(json.dumps(frontier_work()) + "\n")
    for folder in (wheels, data):
        print(f"{folder}: {sorted(p.name for p in folder.iterdir())}")
    print("carry both to the GPU machine (ignored by git: add '/.whl/' and '/.gpu_data/' to .git/info/exclude)")
    return 0


def frontier_work(config: Path = FRONTIER_CONFIG) -> dict:
    """The planner's count of the frontier's training work: image-epochs, trainings, shadow models."""
    from pbmlib.workbench.plan import plan_sweep
    from pbmlib.workbench.sweeps import load_sweep

    table = plan_sweep(load_sweep(config), measure=False)
    return {"config": config.name, "image_epochs": int(table["image_epochs"].sum()),
            "trainings": int(table["trainings_after_reuse"].sum()), "shadow_models": int(table["shadow_models"].sum())}


def frontier_estimate(rate: float, data: Path = DATA) -> str:
    """The frontier's training time at ``rate`` small-CNN training images/s."""
    work = json.loads((data / FRONTIER_PLAN).read_text())
    return (f"{work['config']}: {work['trainings']} trainings and {work['shadow_models']} shadow models, "
            f"{work['image_epochs']:,} image-epochs: {work['image_epochs'] / rate / 60:.1f} minutes of training at "
            f"{rate:,.0f} images/s (its audits run on the CPU, as measured there)")


def training_rate(model_name: str, shape: tuple, precision: str, *, batch: int, steps_timed: int) -> None:
    """Child process: training images/s of ``model_name`` on one batch kept on the device."""
    import keras
    import numpy as np

    from pbmlib.learn.models import build_model

    keras.config.set_dtype_policy(precision)
    model = build_model(model_name, input_shape=shape, classes=10)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (batch, *shape), dtype=np.uint8).astype(np.float32)
    y = rng.integers(0, 10, batch)
    if keras.backend.backend() == "jax":
        import jax

        x, y = jax.device_put(x), jax.device_put(y)
        device = str(jax.devices()[0])
    else:
        device = "the default device"
    started = time.perf_counter()
    for _ in range(3):  # the first step compiles
        model.train_on_batch(x, y)
    compile_s = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(steps_timed):
        loss = model.train_on_batch(x, y)
    float(np.asarray(loss))  # waits for the last step
    seconds = time.perf_counter() - started
    size = "x".join(str(d) for d in shape)
    print(f"{model_name} {size} {precision}, batch {batch}, {device}: {steps_timed * batch / seconds:,.0f} training "
          f"images/s ({steps_timed} steps in {seconds:.1f} s; compiling and 3 warm-up steps {compile_s:.0f} s)",
          flush=True)


def run(wheels: Path = WHEELS, data: Path = DATA, *, smoke: bool = False, site: str = SITE) -> int:
    gaps = missing(wheels, data)
    if gaps:
        print("gpu_check: missing " + "; ".join(gaps) + "; run `benchmarks/gpu_check.py --prepare` where PyPI is "
              "reachable and carry .whl and .gpu_data", file=sys.stderr)
        return 2
    started = time.perf_counter()
    print(plan(wheels, data, smoke=smoke, site=site), flush=True)
    failed = []
    # --smoke runs here, where the wheels (for the GPU machine's Python 3.12) may not install: the
    # packages already installed are used instead
    commands = ([] if smoke else [("install", install_command(wheels, site))]) + steps(data, smoke=smoke)
    for name, command in commands:
        begun = time.perf_counter()
        env = dict(os.environ) if name == "install" else child_environment(site)
        try:
            done = subprocess.run(command, env=env, timeout=BUDGET[name], stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
            output, status = done.stdout, done.returncode
        except subprocess.TimeoutExpired as stopped:  # what it printed so far is kept
            partial = stopped.stdout or ""
            output = partial.decode(errors="replace") if isinstance(partial, bytes) else partial
            status = f"stopped after its {BUDGET[name]} s"
        lines = [line for line in output.splitlines() if line.strip() and not line.startswith(("I0000", "W0000"))]
        print(f"\n== {name}: {time.perf_counter() - begun:.0f} s, "
              f"{'ok' if status == 0 else f'FAILED ({status})'}", flush=True)
        print("\n".join(lines[-40:]), flush=True)
        rates = [float(m.group(1).replace(",", "")) for m in map(_RATE.search, lines) if m]
        if name == "small_cnn" and status == 0 and rates:
            print("Fashion-MNIST frontier, " + frontier_estimate(rates[-1], data), flush=True)
        if status != 0:
            failed.append(name)
            if name == "install":
                break
    print(f"\ngpu_check: {time.perf_counter() - started:.0f} s in all; "
          f"{'every step ran' if not failed else 'failed: ' + ', '.join(failed)}")
    return 1 if failed else 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true", help="print the plan and whether it is ready; run nothing")
    mode.add_argument("--prepare", action="store_true", help="here: download the wheels, copy Fashion-MNIST")
    mode.add_argument("--resnet50", choices=["float32", "mixed_bfloat16"], help=argparse.SUPPRESS)
    mode.add_argument("--small-cnn", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--wheels", type=Path, default=WHEELS, help=f"wheel folder (default {WHEELS})")
    parser.add_argument("--data", type=Path, default=DATA, help=f"Fashion-MNIST folder (default {DATA})")
    parser.add_argument("--site", default=SITE, help=f"where the wheels are installed (default {SITE})")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny sizes (ResNet50 batch 2, LiRA on 200 images) and no install: tries the run path "
                             "on a CPU")
    args = parser.parse_args(argv)
    if args.dry_run:
        print(plan(args.wheels, args.data, smoke=args.smoke, site=args.site))
        return 0
    if args.prepare:
        return prepare(args.wheels, args.data)
    if args.resnet50:
        training_rate("resnet50", (224, 224, 3), args.resnet50, batch=2 if args.smoke else 128,
                      steps_timed=2 if args.smoke else 20)
        return 0
    if args.small_cnn:
        training_rate("small_cnn", (28, 28, 1), "float32", batch=32, steps_timed=5 if args.smoke else 200)
        return 0
    return run(args.wheels, args.data, smoke=args.smoke, site=args.site)


if __name__ == "__main__":
    sys.exit(main())
