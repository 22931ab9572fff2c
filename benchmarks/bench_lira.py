"""LiRA with 16 shadow models plus the target on 5,000 Fashion-MNIST images: time and attack figures.

The population is 5,000 images drawn (seeded) from Fashion-MNIST's 60,000 training images.
17 small CNNs (``build_model("small_cnn")``, 20 epochs, batch 32, Adam: the recipe of
``train_and_evaluate``) each train on a random half: 16 shadow models and the target (the
unpaired last model of :func:`pbmlib.privacy.lira.draw_inclusion`, so every candidate is in
exactly 8 shadows). The target's 2,500 members and 2,500 non-members are attacked with
LiRA online and offline (fixed variance), online with per-candidate variances, and the
loss-threshold baseline.

Two ways of training are timed in the same run, each in a fresh process:

- fast: :func:`pbmlib.learn.shadows.train_models`, all 17 models in one compiled step, then
  :func:`~pbmlib.learn.shadows.logit_confidences` of every model on every candidate (the
  mirrored candidates are scored too, untimed, for one extra row);
- plain: one ``train_and_evaluate`` per model (``--plain-models K`` trains K of them and
  extrapolates to all, saying so).

Both run with TensorFlow's default threads. ``--one-thread-per-op`` runs the fast path with
``TF_NUM_INTRAOP_THREADS=1`` and ``TF_NUM_INTEROP_THREADS`` = cores (the 17 models' small
operations side by side instead of each split over the cores): about 10 % less CPU time, but
no shorter wall time on this shared machine.

Run: ``.venv/bin/python benchmarks/bench_lira.py`` (15-20 minutes on this shared 2-core
machine, the plain loop over all 17 models included); ``--plain-models 3`` for a quicker run,
``--precision mixed_bfloat16`` for bfloat16 models (about 1.6 times less CPU time here),
``--json PATH`` to write the figures too. Other work on the machine slows both paths: read
the ratio, and the CPU seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _population(n: int, seed: int, directory=None):
    from pbmlib.data.datasets import load_fashion_mnist

    data = load_fashion_mnist(directory=directory)
    pick = np.sort(np.random.default_rng(seed).choice(data.images.shape[0], n, replace=False))
    return data.images[pick], data.labels[pick]


def _design(args):
    from pbmlib.privacy.lira import draw_inclusion

    n_models = args.shadows + 1
    inclusion = draw_inclusion(n_models, args.population, seed=args.seed)
    return inclusion, [args.seed * 1000 + k for k in range(n_models)]


def _worker(args) -> int:
    """One path, in its own process: writes its timings (and the fast path's scores) to ``args.out``."""
    from pbmlib.learn.shadows import ShadowSettings, logit_confidences, train_models
    from pbmlib.learn.streaming import ImageBatches
    from pbmlib.learn.training import train_and_evaluate
    from pbmlib.study.settings import TrainingSettings

    images, labels = _population(args.population, args.seed, args.fashion_mnist_dir)
    inclusion, seeds = _design(args)
    rows = [np.flatnonzero(r) for r in inclusion]
    settings = ShadowSettings(training=TrainingSettings(epochs=args.epochs), precision=args.precision)
    wall, cpu = time.perf_counter(), time.process_time()
    result = {}
    if args.worker == "fast":
        models = train_models(images, labels, rows, settings=settings, seeds=seeds)
        result["train"] = (time.perf_counter() - wall, time.process_time() - cpu)
        wall, cpu = time.perf_counter(), time.process_time()
        scores = logit_confidences(models, images, labels, queries=settings.queries)
        result["scoring"] = (time.perf_counter() - wall, time.process_time() - cpu)
        mirrored = logit_confidences(models, images, labels, queries=("flip",))  # an extra query, not timed
        predicted = models[-1].predict(ImageBatches(images, batch_size=500), verbose=0).argmax(axis=1)
        np.savez(args.out + ".npz", scores=np.concatenate([scores, mirrored], axis=2), correct=predicted == labels)
    else:
        for k in range(args.plain_models):
            train_and_evaluate((images[rows[k]], labels[rows[k]]), (images[~inclusion[k]], labels[~inclusion[k]]),
                               training=settings.training, seed=seeds[k])
        result["train"] = (time.perf_counter() - wall, time.process_time() - cpu)
    import keras

    result["keras"] = f"keras {keras.__version__} ({keras.backend.backend()})"
    Path(args.out).write_text(json.dumps(result))
    return 0


def _run_worker(args, worker: str, out: str, env: dict) -> dict:
    command = [sys.executable, os.path.abspath(__file__), "--worker", worker, "--out", out,
               "--population", str(args.population), "--shadows", str(args.shadows), "--epochs", str(args.epochs),
               "--plain-models", str(args.plain_models), "--seed", str(args.seed), "--precision", args.precision]
    if args.fashion_mnist_dir is not None:
        command += ["--fashion-mnist-dir", args.fashion_mnist_dir]
    done = subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if done.returncode:
        raise SystemExit(f"bench_lira: the {worker} path failed:\n{done.stderr[-3000:]}")
    return json.loads(Path(out).read_text())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--population", type=int, default=5000, help="candidate images (default 5000)")
    parser.add_argument("--shadows", type=int, default=16, help="shadow models besides the target (default 16)")
    parser.add_argument("--epochs", type=int, default=20, help="epochs per model (default 20)")
    parser.add_argument("--plain-models", type=int, default=None,
                        help="plain trainings to time (default: all models; fewer are extrapolated; 0: none)")
    parser.add_argument("--precision", default="float32", choices=["float32", "mixed_bfloat16"],
                        help="dtype policy of the fast path's models (default float32, as train_and_evaluate)")
    parser.add_argument("--one-thread-per-op", action="store_true",
                        help="run the fast path with one thread per TensorFlow operation, cores operations at once")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fashion-mnist-dir", default=None,
                        help="folder of the Fashion-MNIST .gz files (default: Debian's dataset-fashion-mnist)")
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for the intervals")
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file")
    parser.add_argument("--worker", choices=["fast", "plain"], help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    n_models = args.shadows + 1
    if args.plain_models is None:
        args.plain_models = n_models
    if not 0 <= args.plain_models <= n_models or args.shadows < 4 or args.population < 4 or args.epochs < 1 \
            or args.bootstrap < 0:
        print(f"bench_lira: --plain-models must be 0..{n_models}, --shadows >= 4, --population >= 4, "
              f"--epochs >= 1, --bootstrap >= 0", file=sys.stderr)
        return 2
    if args.json is not None and not os.path.isdir(os.path.dirname(os.path.abspath(args.json))):
        print(f"bench_lira: the folder of --json {args.json} does not exist", file=sys.stderr)
        return 2
    if args.worker is not None:
        return _worker(args)

    from pbmlib._fs import write_json_atomic
    from pbmlib._io import versions
    from pbmlib.privacy.lira import lira_offline, lira_online, loss_threshold_scores, membership_report

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    fast_env = dict(os.environ)
    if args.one_thread_per_op:
        fast_env.update(TF_NUM_INTRAOP_THREADS="1", TF_NUM_INTEROP_THREADS=str(cores))
    print(f"LiRA benchmark: {args.shadows} shadow models + the target, small_cnn, {args.epochs} epochs, batch 32, "
          f"{args.population} Fashion-MNIST images, each model on {args.population // 2}; {args.precision}; "
          f"{cores} cores, load average {os.getloadavg()[0]:.1f} at the start", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        fast = _run_worker(args, "fast", os.path.join(tmp, "fast.json"), fast_env)
        with np.load(os.path.join(tmp, "fast.json.npz")) as saved:
            scores, correct = saved["scores"], saved["correct"]
        print(f"fast path ({fast['keras']}, {n_models} models in one compiled step"
              f"{', one thread per operation' if args.one_thread_per_op else ''}): training {fast['train'][0]:.1f} s "
              f"(CPU {fast['train'][1]:.1f} s), scoring {fast['scoring'][0]:.1f} s", flush=True)
        plain = None
        if args.plain_models:
            plain = _run_worker(args, "plain", os.path.join(tmp, "plain.json"), dict(os.environ))
            per_model = [t / args.plain_models for t in plain["train"]]
            plain["all"] = [t * n_models for t in per_model]
            how = "measured" if args.plain_models == n_models else \
                f"{args.plain_models} measured, extrapolated to {n_models}"
            print(f"plain loop (train_and_evaluate, one model at a time): {plain['all'][0]:.1f} s "
                  f"(CPU {plain['all'][1]:.1f} s) for {n_models} models ({how}; {per_model[0]:.1f} s per model)",
                  flush=True)

    inclusion, _ = _design(args)
    target, shadows = n_models - 1, slice(0, n_models - 1)
    members = inclusion[target]
    started = time.perf_counter()
    image = scores[:, :, :1]  # the default query; the mirror (column 1) is scored only for one extra row
    attack_scores = {
        "LiRA online, fixed variance": lira_online(image[target], image[shadows], inclusion[shadows]),
        "LiRA offline, fixed variance": lira_offline(image[target], image[shadows], inclusion[shadows]),
        "LiRA online, per-candidate variance": lira_online(image[target], image[shadows], inclusion[shadows],
                                                           fixed_variance=False),
        "LiRA online, image and its mirror": lira_online(scores[target], scores[shadows], inclusion[shadows]),
        "loss threshold (baseline)": loss_threshold_scores(image[target]),
    }
    reports = {name: membership_report(s[members], s[~members], n_bootstrap=args.bootstrap, seed=args.seed)
               for name, s in attack_scores.items()}
    attack_s = time.perf_counter() - started
    fast_total = fast["train"][0] + fast["scoring"][0] + attack_s

    print()
    print(f"  {'':40s} {'wall s':>8s} {'CPU s':>8s}")
    print(f"  {f'fast: training {n_models} models':40s} {fast['train'][0]:8.1f} {fast['train'][1]:8.1f}")
    print(f"  {'fast: scoring':40s} {fast['scoring'][0]:8.1f} {fast['scoring'][1]:8.1f}")
    print(f"  {f'attacks, {args.bootstrap} bootstrap resamples':40s} {attack_s:8.1f}")
    print(f"  {'LiRA in all, fast path':40s} {fast_total:8.1f}")
    if plain is not None:
        print(f"  {'plain loop: training':40s} {plain['all'][0]:8.1f} {plain['all'][1]:8.1f}")
        print(f"  training, plain / fast: {plain['all'][0] / fast['train'][0]:.2f}x wall time, "
              f"{plain['all'][1] / fast['train'][1]:.2f}x CPU time; LiRA in all with the plain loop: "
              f"{plain['all'][0] + fast['scoring'][0] + attack_s:.0f} s")
    print()
    print(f"target: accuracy {correct[members].mean():.3f} on its {members.sum()} members (training set), "
          f"{correct[~members].mean():.3f} on the {(~members).sum()} non-members")
    print(f"  {'attack':38s} {'AUC [95 % CI]':>22s} {'TPR at 0.1 % FPR':>24s} {'TPR at 1 % FPR':>24s}")
    for name, report in reports.items():
        cells = [f"{report['auc']:.3f} [{report['auc_low']:.3f}, {report['auc_high']:.3f}]"]
        for row in report["low_fpr"]:
            mark = "" if row["resolved"] else f" (at {100 * row['fpr']:.2g} %)"
            cells.append(f"{row['tpr']:.3f} [{row['tpr_low']:.3f}, {row['tpr_high']:.3f}]{mark}")
        print(f"  {name:38s} {cells[0]:>22s} {cells[1]:>24s} {cells[2]:>24s}")
    print(f"  ({members.sum()} members, {(~members).sum()} non-members; a TPR at an FPR that the non-members "
          f"cannot resolve would be reported at 1 / non-members)")
    if args.json is not None:
        record = {"parameters": {k: v for k, v in vars(args).items() if k not in ("worker", "out")},
                  "versions": versions(), "fast": fast, "plain": plain, "attack_seconds": attack_s,
                  "target_accuracy_members": float(correct[members].mean()),
                  "target_accuracy_non_members": float(correct[~members].mean()), "attacks": reports,
                  "load_average_end": os.getloadavg()[0]}
        write_json_atomic(args.json, record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
