"""The ``pbm`` command line.

``mix`` (a folder), ``demo`` (the bundled faces), ``compare`` (training on mixed data),
``schemes`` (any protection by name: training and attacks), ``sweep`` (papermill), ``search``
(the frontier, searched).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import numpy as np

__all__ = ["main"]

# the names of pbmlib.learn.models.MODEL_NAMES, without importing Keras to parse arguments
MODEL_CHOICES = ("small_cnn", "resnet50", "vgg16", "inceptionv3", "densenet121")


def _pair(text: str) -> tuple[int, int]:
    """'24x12' -> (24, 12); '24' -> (24, 24); whole pixels >= 1 only (:func:`pbmlib._validation.check_pair`)."""
    from .._validation import check_pair

    try:
        return check_pair(text, name="value")
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HEIGHTxWIDTH in whole pixels >= 1 such as 24x24, "
                                         f"got {text!r}") from None


def _add_mixing_options(parser: argparse.ArgumentParser, *, block_default=None, seed_default=None) -> None:
    parser.add_argument("--block", type=_pair, required=block_default is None, default=block_default,
                        help="block HEIGHTxWIDTH in pixels (L_b x W_b), e.g. 24x24")
    parser.add_argument("--donors", type=int, default=None,
                        help="N_s, donors per image and round (default 10; capped at the largest class size)")
    parser.add_argument("--rounds", type=int, default=1, help="N_t, mixing rounds (default 1)")
    parser.add_argument("-p", "--p", type=float, default=0.5, help="replacement probability (default 0.5)")
    if seed_default is None:
        seed_help = ("a fixed seed for research: the same seed gives the same bytes, but whoever knows the seed "
                     "undoes the release from release.json (default: 128 bits of fresh entropy, kept only in the "
                     "private folder)")
    else:
        seed_help = f"random seed (default {seed_default})"
    parser.add_argument("--seed", type=int, default=seed_default, help=seed_help)
    parser.add_argument("--allow-self", action="store_true", help="an image may be its own donor")


def _mixing(args):
    """The command's mixing options as one :class:`pbmlib.Mixing` (errors name the flags); ``pbm compare``'s
    first ``--blocks`` stands for the block."""
    from ..pbm.settings import Mixing

    donors = {} if args.donors is None else {"n_donors": args.donors}
    block = args.block if hasattr(args, "block") else args.blocks[0]
    return _flagged(lambda: Mixing(block=block, rounds=args.rounds, p=args.p,
                                   allow_self=getattr(args, "allow_self", False), **donors),
                    {"n_donors": "--donors", "rounds": "--rounds", "p": "-p", "block": "--block",
                     "allow_self": "--allow-self"})


def _add_tls_options(parser: argparse.ArgumentParser) -> None:
    for flag, what in (("ca-file", "certificate authority"), ("cert", "certificate"), ("key", "certificate's key")):
        parser.add_argument(f"--tls-{flag}", default=None, metavar="PEM",
                            help=f"with a tls:// --scheduler: the {what} (PEM file), as dask worker --tls-{flag}")


def _scheduler_section(args) -> dict | None:
    """The cluster section of ``--scheduler`` and its ``--tls-*`` certificates (None without a scheduler)."""
    from .cluster import scheduler_cluster

    tls = (args.tls_ca_file, args.tls_cert, args.tls_key)
    if args.scheduler is not None:
        return scheduler_cluster(args.scheduler, ca_file=tls[0], cert=tls[1], key=tls[2])
    if any(tls):
        raise ValueError("--tls-ca-file, --tls-cert and --tls-key go with --scheduler tls://HOST:PORT (a config's "
                         "certificates go in its cluster.tls)")
    return None


def _warnings_to_stderr(command: str):
    """Show library warnings as one 'pbm CMD: warning: ...' line each (no file and line number)."""
    import contextlib
    import warnings

    @contextlib.contextmanager
    def shown():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UserWarning)
            try:
                yield
            finally:
                for w in caught:
                    print(f"pbm {command}: warning: {w.message}", file=sys.stderr)

    return shown()


def _print_private(manifest: dict) -> None:
    print(f"PRIVATE: {manifest['private_dir']} holds the key to this release (block provenance, seed, original "
          f"file names and source path): it undoes the mixing. Never let it leave the owner; share only "
          f"{manifest['dst']}.")


def _mix(args) -> int:
    from ..pbm.release import mix_folder

    mixing = _mixing(args)
    if args.seed is not None:
        print(f"pbm mix: warning: --seed {args.seed} is the key of this release: whoever knows or guesses it "
              f"rebuilds the provenance from release.json; use a fixed seed for research only (without --seed "
              f"the release draws 128 bits of fresh entropy)", file=sys.stderr)

    def run(client=None):
        with _warnings_to_stderr("mix"):
            return mix_folder(
                args.src, args.dst, mixing=mixing, private_dir=args.private_dir,
                names="keep" if args.keep_names else "opaque", size=args.size, mode=args.mode,
                resample=args.resample, format=args.format, jpeg_quality=args.jpeg_quality, workers=args.workers,
                client=client, overwrite=args.overwrite, allow_unprotected=args.allow_unprotected,
                progress=not args.quiet, seed=args.seed,
            )

    section = _scheduler_section(args)
    if section is None:
        manifest = run()
    else:
        from .cluster import check_workers_see, open_client

        with open_client(cluster=section, progress=not args.quiet) as client:
            check_workers_see(client, Path(args.dst).resolve().parent)
            manifest = run(client)
    fmt = manifest["image_format"]
    quality = f", quality {fmt['jpeg_quality']}" if fmt["jpeg_quality"] is not None else ""
    used = manifest["parameters"]["n_donors"]
    if args.donors is not None and used < mixing.n_donors:
        print(f"pbm mix: note: --donors {mixing.n_donors} capped at {used}: the largest class has "
              f"{max(manifest['class_sizes'].values())} images", file=sys.stderr)
    protection = (f"log10 P(restore, Eq. 9) = {manifest['log10_restoration_probability']:.1f}"
                  if manifest["log10_restoration_probability"] is not None
                  else f"NO PROTECTION ({manifest['protection'][len('none: '):]})")
    print(f"mixed {manifest['n_images']} images of {len(manifest['class_sizes'])} classes into {manifest['dst']} "
          f"(the release: images and release.json only; {fmt['format']}{quality}, "
          f"{'lossless' if fmt['lossless'] else 'lossy'}, {manifest['names']} names); N_b = {manifest['n_blocks']}, "
          f"{protection}")
    _print_private(manifest)
    return 0


_DEMO_ENTRIES = {"faces", "mixed", "mixed.private", "ssim_report.csv", "ssim_report.json"}


def _demo_replaceable(out: Path, overwrite: bool) -> None:
    """Refuse a non-empty demo folder unless ``--overwrite``, and then only an earlier demo's output."""
    if not out.exists() or not any(out.iterdir()):
        return
    if not overwrite:
        raise ValueError(f"demo folder {out} is not empty; choose an empty or new folder, or pass --overwrite "
                         f"to replace an earlier pbm demo output")
    ours = {e.name for e in out.iterdir() if e.name in _DEMO_ENTRIES or
            (e.name.startswith((".mixed.", ".faces.", ".ssim_report.")) and e.name.endswith((".tmp", ".lock")))}
    others = sorted(e.name for e in out.iterdir() if e.name not in ours)
    if others or "faces" not in ours:
        raise ValueError(f"demo folder {out} is not an earlier pbm demo output (it holds {others[:5] or 'no faces/'}); "
                         f"--overwrite only replaces an earlier demo: choose an empty or new folder")


def _demo(args) -> int:
    import os
    import secrets
    import shutil

    from .._fs import clean_stale, lock, lock_path, write_bytes_atomic, write_json_atomic
    from .._io import versions, write_image_atomic
    from .._validation import check_seed
    from ..data.datasets import load_faces, load_folder, read_image
    from ..pbm.release import load_private, mix_folder
    from ..privacy.matchers import pairwise_distances
    from ..privacy.similarity import psnr_scores, ssim_floor_scores, ssim_floor_table, ssim_scores, summarize_scores

    # Every argument before anything is written (the faces are 25 x 25).
    mixing = _mixing(args)
    mixing.grid((25, 25))
    check_seed(args.seed)
    out = Path(args.out)
    if out.is_symlink():
        raise ValueError(f"demo folder {out} is a symbolic link; pass the real folder's path")
    if out.exists() and not out.is_dir():
        raise ValueError(f"demo folder {out} exists and is not a folder; choose a new or empty folder")
    out = out.resolve()
    _demo_replaceable(out, args.overwrite)
    faces = load_faces()
    with lock(lock_path(out), what="demo folder", target=out):
        clean_stale(out)
        _demo_replaceable(out, args.overwrite)
        aside = None
        if out.exists() and any(out.iterdir()):  # an earlier demo: set aside, removed once the new one is complete
            aside = out.parent / f".{out.name}.replaced-{secrets.token_hex(6)}.tmp"
            os.rename(out, aside)
        out.mkdir(parents=True, exist_ok=True)
        originals = out / "faces"
        for i, (image, label) in enumerate(zip(faces.images, faces.labels)):
            write_image_atomic(originals / str(label) / f"{i:03d}.png", image)
        mixed_dir = out / "mixed"
        with _warnings_to_stderr("demo"):
            manifest = mix_folder(originals, mixed_dir, progress=not args.quiet, mixing=mixing, seed=args.seed)
        # The release has opaque names: pair each output with its original through the private mapping.
        key, _ = load_private(manifest["private_dir"])
        ordered = load_folder(originals)
        output_of = dict(zip(key["files"], key["outputs"]))
        mixed = np.stack([read_image(mixed_dir / output_of[f]) for f in ordered.files])
        ssim = ssim_scores(ordered.images, mixed)
        floor = ssim_floor_scores(ordered.images, ordered.labels, seed=args.seed)
        table = ssim_floor_table(ssim, floor, ordered.labels)
        psnr = psnr_scores(ordered.images, mixed)
        table["psnr_mean_db"] = summarize_scores(np.where(np.isfinite(psnr), psnr, np.nan), ordered.labels,
                                                 name="psnr")["psnr_mean"]
        write_bytes_atomic(out / "ssim_report.csv", table.to_csv().encode())
        # the simplest attack: rank the originals by identical same-position blocks
        distances = pairwise_distances(mixed, ordered.images, matcher="blocks", block=mixing.block)
        found = float((distances.argmin(axis=1) == np.arange(len(mixed))).mean())
        report = {
            "kind": "pbm demo",
            "parameters": manifest["parameters"],
            "image_format": manifest["image_format"],
            "n_blocks": manifest["n_blocks"],
            "log10_restoration_probability": manifest["log10_restoration_probability"],
            "ssim_mean": float(ssim.mean()),
            "ssim_floor_mean": float(floor.mean()),
            "reid_blocks_top1": found,
            "reid_chance_top1": 1.0 / len(mixed),
            "per_class": table.reset_index().to_dict(orient="records"),
            "versions": versions(),
        }
        write_json_atomic(out / "ssim_report.json", report)  # last: a demo folder without it is incomplete
        if aside is not None:
            shutil.rmtree(aside)
    print(table.round(3).to_string())
    print(f"N_b = {manifest['n_blocks']}; log10 P(restore all, Eq. 9) = {report['log10_restoration_probability']:.1f}")
    print("SSIM alone overstates protection: compare ssim_mean with ssim_floor_mean "
          "(SSIM to a random other image of the same class).")
    print(f"An attacker holding the {len(ordered.images)} originals finds the original of {100 * found:.0f} % of the "
          f"mixed images first by counting identical blocks at their positions (chance {100 / len(mixed):.1f} %); "
          f"notebooks/05_privacy.ipynb runs every attack, with intervals.")
    print(f"wrote {originals}, {mixed_dir}, {out / 'ssim_report.csv'}, {out / 'ssim_report.json'}")
    _print_private(manifest)
    return 0


def _study_parameters(args) -> dict:
    """The command's options as a study's parameters (JSON-able)."""
    return {k: (str(v) if k == "schemes" else v) for k, v in vars(args).items() if k != "func"}


def _print_study(table, columns) -> None:
    shown = table[[c for c in columns if c in table]]
    shown = shown.astype(object).where(shown.notna(), "-")  # pandas' <NA> of whole-number columns too
    print(shown.to_string(index=False, float_format=lambda v: f"{v:.3f}"))


def _training(args):
    """The command's training options as one TrainingSettings (errors name the flags)."""
    from ..study.settings import TrainingSettings

    return _flagged(lambda: TrainingSettings(model_name=getattr(args, "model_name", "small_cnn"), epochs=args.epochs,
                                             batch_size=getattr(args, "batch_size", 32), repeats=args.repeats),
                    {"epochs": "--epochs", "batch_size": "--batch-size", "repeats": "--repeats"})


def _flagged(build, flags: dict):
    """``build()``, with a ValueError's leading parameter name replaced by its flag."""
    try:
        return build()
    except ValueError as exc:
        message = str(exc)
        for field, flag in flags.items():
            if message.startswith(f"{field} "):
                message = flag + message[len(field):]
        raise ValueError(message) from None


def _compare(args) -> int:
    from ..data.augmentation import Augmentation
    from ..data.datasets import load_dataset
    from ..schemes import get_scheme
    from ..study import run_study
    from .results import write_study

    mixing = _mixing(args)
    training = _training(args)
    splits = _flagged(lambda: _study(args, train=True), {"n_splits": "--splits"})
    pbm = [get_scheme("pbm", **{**mixing.to_dict(), "block": block}) for block in args.blocks]
    if args.size is not None:  # before reading any image
        for block in args.blocks:
            try:
                mixing.replace(block=block).grid(args.size)
            except ValueError as exc:
                raise ValueError(f"--blocks {block[0]}x{block[1]}: {exc}".replace("block=", "")) from None
    conditions = [get_scheme("none")] + pbm
    if args.augment:
        conditions += [(scheme, Augmentation(mode=args.augment)) for scheme in pbm]
    data = load_dataset(args.dataset, size=args.size)
    _note_donor_cap(mixing, args, data.labels)
    from ..learn.learner import KerasLearner

    table, records = run_study(data, conditions, training=training, study=splits, seed=args.seed,
                               learner=KerasLearner(), progress=None if args.quiet else True)
    results = write_study(args.out, _study_parameters(args), table, records)
    print(f"{args.model_name} on {args.dataset} ({len(data)} images), {args.splits} split(s) x {args.repeats} repeats "
          f"x {args.epochs} epochs, N_s = {mixing.n_donors}, N_t = {mixing.rounds}; clean test set")
    _print_study(table, ["setting", "n_blocks", "test_accuracy_mean", "test_accuracy_std", "test_loss_mean",
                         "ssim_mean", "accuracy_drop", "accuracy_drop_low", "accuracy_drop_high"])
    print(f"SSIM floor (random same-label pair): {table['ssim_floor_mean'].iloc[0]:.3f}; accuracy_drop in points "
          f"with its 95 % paired interval over the same test images")
    _print_written(results)
    return 0


def _study(args, *, train: bool, audit: bool = False):
    from ..study.settings import StudySettings

    return StudySettings(train=train, audit=audit, n_splits=args.splits)


def _note_donor_cap(mixing, args, labels) -> None:
    """Say when --donors is more than any class can give (the draws use every other image of the class)."""
    if args.donors is None:
        return
    used = mixing.donors_used({label: count for label, count in zip(*np.unique(labels, return_counts=True))})
    if used < mixing.n_donors:
        print(f"pbm {args.command}: note: --donors {mixing.n_donors} capped at {used}: the largest class has "
              f"{used + (0 if mixing.allow_self else 1)} images", file=sys.stderr)


def _print_written(results: Path) -> None:
    """Every file a study command wrote, relative to the working directory where it is below it."""
    folder = results.parent
    names = sorted(p.name for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    print(f"wrote {folder}: {', '.join(names)}")


def _plan(config: dict, args) -> int:
    from .plan import plan_sweep

    if args.images_per_second is not None and not args.images_per_second > 0:
        raise ValueError(f"--images-per-second must be > 0, got {args.images_per_second}")
    table = plan_sweep(config, images_per_second=args.images_per_second, measure=args.measure,
                       progress=not args.quiet)
    print(f"sweep {config['name']}: {int(table['runs'].sum())} runs, {int(table['trainings'].sum())} trainings, "
          f"{int(table['trainings_after_reuse'].sum())} after reusing baselines"
          + (f", {int(table['shadow_models'].sum())} shadow models" if table["shadow_models"].sum() else ""))
    print(table.to_string(index=False, na_rep="-", float_format=lambda v: f"{v:,.2f}"))
    hours = [c for c in table if c.startswith("hours")]
    if hours:
        print("estimated total: " + "; ".join(f"{table[c].sum():,.2f} h ({c.replace('_', ' ')})" for c in hours))
    else:
        print("no time estimate: pass --images-per-second RATE, or --measure to time this machine")
    return 0


def _app(args) -> int:
    import importlib.util
    import subprocess

    from .app import CULL_IDLE_SECONDS, MAX_KERNELS, voila_command
    from .notebooks import checkout_notebooks, ensure_notebook

    if importlib.util.find_spec("voila") is None:
        raise ValueError("the teaching app needs Voila: .venv/bin/python -m pip install -e '.[app]'")
    notebook = checkout_notebooks() / "00_explore.ipynb"
    if not notebook.with_suffix(".py").is_file():
        raise ValueError(f"{notebook.with_suffix('.py')} not found: pbm app runs from a checkout of pbm-workbench")
    ensure_notebook(notebook)  # the working copy of the tracked script
    max_kernels = getattr(args, "max_kernels", None) or MAX_KERNELS
    idle = getattr(args, "idle_seconds", None) or CULL_IDLE_SECONDS
    command = voila_command(notebook, port=args.port, ip=args.ip, browser=args.browser, max_kernels=max_kernels,
                            cull_idle_seconds=idle)
    print(f"serving the explorer without code at http://{args.ip}:{args.port}/ (Ctrl-C stops it); at most "
          f"{max_kernels} pages at once, a page idle for {idle // 60} min is closed")
    return subprocess.call(command)


def _report(args) -> int:
    from .report import write_report

    path = write_report(args.sweep_dir, args.output)
    print(f"wrote {path} (one self-contained HTML file: open it in a browser or share it)")
    return 0


def _sweep(args) -> int:
    from .sweeps import SweepInterrupted, load_sweep, run_sweep

    if args.workers is not None and args.workers < 1:
        raise ValueError(f"--workers must be 1 or more, got {args.workers}")
    if args.max_runs < 1:
        raise ValueError(f"--max-runs must be 1 or more, got {args.max_runs}")
    if args.output_root is not None and not args.output_root.strip():
        raise ValueError("--output-root must name a folder, got an empty string")
    config = load_sweep(args.config, max_runs=args.max_runs)
    if args.output_root is not None:
        config["output_root"] = args.output_root
    section = _scheduler_section(args)
    if section is not None:  # replaces the config's cluster section
        config["cluster"] = section
    if args.plan:
        return _plan(config, args)
    try:
        summary = run_sweep(config, workers=args.workers, progress=not args.quiet, analysis=not args.no_analysis,
                            max_runs=args.max_runs)
    except SweepInterrupted as exc:
        summary = exc.summary
        print(f"pbm sweep: interrupted: {len(summary['finished'])} run(s) finished now, "
              f"{len(summary['failed'])} failed, the others not run; run the same command again to resume; "
              f"record: {summary['record']}", file=sys.stderr)
        return 130
    print(f"sweep {config['name']}: {len(summary['finished'])} run(s) done now, {len(summary['skipped'])} "
          f"already finished, {len(summary['failed'])} failed; results in {summary['sweep_dir']}")
    if summary["changed"]:
        print(f"  re-ran {len(summary['changed'])} run(s) whose parameters or notebook changed since they "
              f"finished (previous results in {Path(summary['sweep_dir']) / 'stale'}): "
              f"{', '.join(summary['changed'])}")
    if summary["not_in_config"]:
        print(f"  {len(summary['not_in_config'])} finished run(s) in the folder are not in this config (kept, "
              f"and read by the analysis): {', '.join(summary['not_in_config'])}")
    for run_id, error in summary["failed"].items():
        print(f"  failed: {run_id}: {error.splitlines()[0][:300]}")
    if summary["analysis"]:
        print(f"analysis: {summary['analysis']}")
    print(f"record of this sweep: {summary['record']}")
    return 1 if summary["failed"] else 0


def _search(args) -> int:
    from .sweeps.search import OBJECTIVES, load_search, run_search
    from .sweeps import SweepInterrupted

    if args.trials is not None and args.trials < 1:
        raise ValueError(f"--trials must be 1 or more (trials per scheme), got {args.trials}")
    config = load_search(args.config)
    try:
        summary = run_search(config, trials=args.trials, progress=not args.quiet)
    except SweepInterrupted as exc:
        print(f"pbm search: interrupted: the trials that finished are kept; run the same command again to resume; "
              f"record: {exc.summary['record']}", file=sys.stderr)
        return 130
    trials = summary["trials"]
    print(f"search {config['name']}: {len(summary['ran'])} trial(s) run now, {len(summary['read_back'])} read back "
          f"from runs that had finished, {trials['state'].eq('complete').sum()} finished in all, "
          f"{trials['state'].eq('fail').sum()} failed; runs in {summary['sweep_dir']}")
    for run_id, error in summary["failed"].items():
        print(f"  failed: {run_id}: {error.splitlines()[0][:300]}")
    front = summary["front"].sort_values(["scheme", "accuracy_drop"])
    for scheme, group in front.groupby("scheme", sort=False):
        print(f"Pareto front of {scheme} ({len(group)} of {trials['scheme'].eq(scheme).sum()} trials), "
              f"figure [95 % interval]:")
        shown = group[["trial", "setting"]].copy()
        for name in OBJECTIVES:
            shown[name] = [f"{v:.3g} [{lo:.3g}, {hi:.3g}]" for v, lo, hi in
                           zip(group[name], group[f"{name}_low"], group[f"{name}_high"])]
        shown["meets_target"] = group["meets_target"]
        print(shown.to_string(index=False))
    print("wrote " + ", ".join(summary["files"]))
    return 1 if summary["failed"] else 0


def _scheme_spec(text: str):
    """'pbm:block=5x5,rounds=3' -> get_scheme("pbm", block=(5, 5), rounds=3)."""
    from ..schemes import get_scheme

    name, _, rest = text.partition(":")
    params = {}
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        if "x" in value and all(part.isdigit() for part in value.split("x")):
            params[key] = _pair(value)
        else:
            try:
                params[key] = int(value)
            except ValueError:
                try:
                    params[key] = float(value)
                except ValueError:
                    params[key] = {"true": True, "false": False}.get(value.lower(), value)
    try:
        return get_scheme(name.strip(), **params)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _schemes(args) -> int:
    from ..data.datasets import ImageSet, load_dataset
    from ..privacy.audit import AttackSettings
    from ..study import run_study
    from .results import write_study

    training = _training(args)
    study = _flagged(lambda: _study(args, train=True, audit=True), {"n_splits": "--splits"})
    attacks = AttackSettings(attack_block=args.attack_block, inversion=args.inversion)
    data = load_dataset(args.dataset, size=args.size)
    if args.rgb and data.images.ndim == 3:
        data = ImageSet(np.repeat(data.images[..., None], 3, axis=3), data.labels, data.files, data.description)
    from ..learn.learner import KerasLearner

    table, records = run_study(data, args.schemes, training=training, study=study, attacks=attacks, seed=args.seed,
                               learner=KerasLearner(), progress=None if args.quiet else True)
    results = write_study(args.out, _study_parameters(args), table, records)
    _print_study(table, ["setting", "test_accuracy_mean", "accuracy_drop", "ssim_mean", "worst_reid_top1",
                         "worst_reid_attack", "worst_membership_auc", "worst_membership_attack", "meets_target"])
    print(f"worst_*: lower bounds on what an attacker achieves (the attack strongest on a calibration half, "
          f"reported on the other half); re-identification chance: {table['reid_chance_top1'].iloc[0]:.3f}; "
          f"intervals in study.csv")
    _print_written(results)
    return 0


def _pairs(text: str) -> list[tuple[int, int]]:
    return [_pair(part) for part in text.split(",") if part]


class _Parser(argparse.ArgumentParser):
    """argparse without abbreviations (``--rep`` is not ``--repeats``) and with a close-match hint for a
    mistyped option or command."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def parse_known_args(self, args=None, namespace=None):
        self._argv = list(sys.argv[1:] if args is None else args)
        unknown = self._unknown_option()
        if unknown is not None:  # before argparse's check of required options, which would hide it
            self.error(f"unrecognized arguments: {unknown}")
        return super().parse_known_args(args, namespace)

    def _unknown_option(self) -> str | None:
        """The first option of the command line that the command does not know, if any."""
        for action in self._actions:
            if not isinstance(action, argparse._SubParsersAction):
                continue
            position = next((i for i, a in enumerate(self._argv) if a in action.choices), None)
            if position is None:
                return None
            known = {o for a in action.choices[self._argv[position]]._actions for o in a.option_strings}
            for token in self._argv[position + 1:]:
                if token == "--":
                    return None
                name = token.split("=", 1)[0]
                if token.startswith("-") and len(token) > 1 and not token[1].isdigit() and name not in known:
                    return name
        return None

    def error(self, message):
        import difflib

        known = [o for action in self._actions for o in action.option_strings]
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):  # commands, and their options
                known += list(action.choices)
                command = next((a for a in getattr(self, "_argv", []) if a in action.choices), None)
                if command is not None:
                    known += [o for a in action.choices[command]._actions for o in a.option_strings]
        words = re.findall(r"(?:unrecognized arguments|invalid choice): '?([^\s']+)", message)
        for word in words:
            close = difflib.get_close_matches(word.split("=")[0], known, n=1)
            if close:
                message += f" (did you mean {close[0]}?)"
        super().error(message)


def _add_mix_command(sub) -> None:
    mix = sub.add_parser("mix", help="mix a folder of label/*.png|jpg images into a release folder and a private key")
    mix.add_argument("src", help="source folder with one sub-folder per label (never modified)")
    mix.add_argument("dst", help="release folder (new or empty): the mixed images and release.json, nothing else")
    _add_mixing_options(mix)
    mix.add_argument("--private-dir", default=None,
                     help="where the key goes (provenance, seed, original names); default DST.private beside DST. "
                          "Never share it")
    mix.add_argument("--keep-names", action="store_true",
                     help="keep the source file names in the release (default: opaque names such as label/000123.png;"
                          " file names often name people)")
    mix.add_argument("--size", type=_pair, default=None, help="resize to HEIGHTxWIDTH first, e.g. 192x192")
    mix.add_argument("--mode", choices=["L", "RGB"], default=None,
                     help="convert to grayscale, or to RGB (grey images get three equal channels, as the reference "
                          "code does) (default: keep the files' mode)")
    mix.add_argument("--scheduler", default=None, metavar="ADDRESS",
                     help="decode, mix and encode as tasks on the Dask cluster of this scheduler, e.g. "
                          "tcp://10.0.0.5:8786; SRC and DST must be on storage every worker sees (default: this "
                          "machine)")
    _add_tls_options(mix)
    mix.add_argument("--workers", type=int, default=None,
                     help="processes that decode and threads that encode (default: every core this process may use)")
    mix.add_argument("--resample", choices=["bilinear", "lanczos", "bicubic", "nearest"], default="bilinear",
                     help="resize filter with --size (default bilinear; the reference code uses lanczos)")
    mix.add_argument("--format", choices=["png", "jpeg", "jpg", "webp"], default="png",
                     help="output format (default png; png and webp are lossless, jpeg (or jpg) is lossy)")
    mix.add_argument("--jpeg-quality", type=int, default=None, help="JPEG quality 1-95 (default 95), --format jpeg only")
    mix.add_argument("--overwrite", action="store_true",
                     help="replace an earlier pbm mix output in DST (the whole folder and its private folder); "
                          "refused when files were added to it")
    mix.add_argument("--allow-unprotected", action="store_true",
                     help="write the release even when the settings leave every image unchanged (-p 0, a block "
                          "equal to the image, classes of one image); refused otherwise")
    mix.add_argument("--quiet", action="store_true", help="no progress bar")
    mix.set_defaults(func=_mix)


def _add_demo_command(sub) -> None:
    demo = sub.add_parser("demo", help="mix the bundled LFW faces and write an SSIM report")
    demo.add_argument("out", nargs="?", default="papermill_runs/demo", help="output folder (new or empty)")
    _add_mixing_options(demo, block_default=(5, 5), seed_default=0)
    demo.add_argument("--overwrite", action="store_true", help="replace an earlier pbm demo output in OUT")
    demo.add_argument("--quiet", action="store_true", help="no progress bar")
    demo.set_defaults(func=_demo)


def _add_dataset_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", default="faces",
                        help="faces, mnist, fashion_mnist or a folder of label/*.png|jpg (default faces)")


def _add_study_options(parser: argparse.ArgumentParser, *, epochs: int, repeats: int, out: str, keys: str) -> None:
    """The options ``pbm compare`` and ``pbm schemes`` share: trainings, splits, seed, output folder, bar."""
    parser.add_argument("--epochs", type=int, default=epochs, help=f"training epochs (default {epochs})")
    parser.add_argument("--repeats", type=int, default=repeats,
                        help=f"trainings per condition and split (default {repeats})")
    parser.add_argument("--splits", type=int, default=1,
                        help="independent splits, scheme seeds and training seeds (default 1)")
    parser.add_argument("--seed", type=int, default=0,
                        help=f"seed of the split, {keys} and the trainings (default 0)")
    parser.add_argument("--out", default=out,
                        help=f"output folder for results.json and study.csv (default {out})")
    parser.add_argument("--quiet", action="store_true", help="no progress bar (default: one bar over every epoch)")


def _add_compare_command(sub) -> None:
    compare = sub.add_parser("compare", help="train a model on original vs mixed data, per block size")
    _add_dataset_option(compare)
    compare.add_argument("--size", type=_pair, default=None,
                         help="resize images to HEIGHTxWIDTH first, e.g. 192x192 (default: keep their size)")
    compare.add_argument("--model-name", default="small_cnn", choices=MODEL_CHOICES,
                         help="the classifier to train (default small_cnn)")
    compare.add_argument("--blocks", type=_pairs, default=[(25, 5), (5, 5), (5, 1), (1, 1)],
                         help="comma-separated block sizes HEIGHTxWIDTH in pixels (default 25x5,5x5,5x1,1x1)")
    compare.add_argument("--donors", type=int, default=None,
                         help="N_s, donors per image and round (default 10; capped at the largest class size)")
    compare.add_argument("--rounds", type=int, default=1, help="N_t, mixing rounds (default 1)")
    compare.add_argument("-p", "--p", type=float, default=0.5,
                         help="probability that a block is replaced in a round (default 0.5)")
    compare.add_argument("--augment", choices=["online", "offline"], default=None,
                         help="also train on mixed data with the paper's flip/rotation/brightness (default: no)")
    compare.add_argument("--batch-size", type=int, default=32, help="training batch size (default 32)")
    _add_study_options(compare, epochs=15, repeats=5, out="papermill_runs/compare", keys="the mixing")
    compare.set_defaults(func=_compare)


def _add_schemes_command(sub) -> None:
    schemes = sub.add_parser("schemes", help="train and attack several protections by name on one dataset")
    schemes.add_argument("schemes", nargs="+", type=_scheme_spec,
                         help="scheme specs NAME[:key=value,...], e.g. none pbm:block=6x6 visualmixer:window=8 "
                              "pixel_encryption block_encryption blur:sigma=2")
    _add_dataset_option(schemes)
    schemes.add_argument("--size", type=_pair, default=(24, 24), help="resize to HEIGHTxWIDTH (default 24x24)")
    schemes.add_argument("--rgb", action="store_true", help="give grayscale images three channels (default: no)")
    schemes.add_argument("--attack-block", type=_pair, default=(4, 4),
                         help="the attacker's block guess for schemes without block geometry of their own "
                              "(default 4x4; PBM, VisualMixer, block encryption use their own)")
    schemes.add_argument("--inversion", action="store_true",
                         help="also run the learned-inversion attack (default: no)")
    _add_study_options(schemes, epochs=12, repeats=2, out="papermill_runs/schemes", keys="the schemes' keys")
    schemes.set_defaults(func=_schemes)


def _add_sweep_command(sub) -> None:
    sweep = sub.add_parser("sweep", help="run a papermill sweep from a YAML config (resumes where it stopped)",
                           description="Run every unfinished run of a sweep config; runs that finished with the "
                                       "same parameters and notebook are skipped, changed ones re-run. Each "
                                       "invocation is recorded in <output_root>/<name>/sweeps/<time>.json.")
    sweep.add_argument("config", help="sweep config (YAML), e.g. sweeps/default.yaml or sweeps/paper.yaml")
    sweep.add_argument("--workers", type=int, default=None,
                       help="runs at once, 1 or more (default: the config's workers)")
    sweep.add_argument("--output-root", default=None,
                       help="write under this folder instead of the config's output_root (default: the config's)")
    sweep.add_argument("--no-analysis", action="store_true",
                       help="skip the analysis notebook (default: run it last)")
    sweep.add_argument("--scheduler", default=None, metavar="ADDRESS",
                       help="run every run as a task on the Dask cluster of this scheduler, e.g. "
                            "tcp://127.0.0.1:8786 or tls://10.0.0.5:8786; the sweep folder must be on storage every "
                            "worker sees (default: the config's cluster section, else this machine)")
    _add_tls_options(sweep)
    sweep.add_argument("--plan", action="store_true",
                       help="print the runs, trainings (after baseline reuse), images and an estimated time, "
                            "then stop without running anything (default: run)")
    sweep.add_argument("--images-per-second", type=float, default=None, metavar="RATE",
                       help="with --plan: estimate the time at this training throughput, e.g. a GPU's")
    sweep.add_argument("--measure", action="store_true",
                       help="with --plan: also measure this machine's throughput per model and image size (a few "
                            "batches each, cached) (default: measure nothing)")
    sweep.add_argument("--max-runs", type=int, default=10_000, metavar="N",
                       help="refuse a config that plans more runs than this (default 10000)")
    sweep.add_argument("--quiet", action="store_true", help="no progress bar (default: show one)")
    sweep.set_defaults(func=_sweep)


def _add_search_command(sub) -> None:
    search = sub.add_parser("search", help="search each scheme's parameters for the privacy/utility frontier "
                                           "(Optuna; trials are sweep runs; resumes where it stopped)",
                            description="Ask Optuna's multi-objective sampler for each scheme's parameters, run every "
                                        "trial as a sweep run of the study notebook, and write the Pareto front of "
                                        "(accuracy cost, worst membership AUC, worst re-identification) with its "
                                        "intervals: <output_root>/<name>/search/pareto.csv, trials.csv and "
                                        "front_<scheme>.png. Run it again to resume; finished trials are kept.")
    search.add_argument("config", help="search config (YAML), e.g. sweeps/search.yaml")
    search.add_argument("--trials", type=int, default=None, metavar="N",
                        help="trials per scheme (default: the config's n_trials); more extends a finished search")
    search.add_argument("--quiet", action="store_true", help="no progress bar (default: show one)")
    search.set_defaults(func=_search)


def _add_app_command(sub) -> None:
    app = sub.add_parser("app", help="serve the mixing explorer and the quick sweep as a Voila app (no code shown)",
                         description="A teaching app: notebooks/00_explore.ipynb served by Voila, its code hidden.")
    app.add_argument("--port", type=int, default=8866, help="port to listen on (default 8866)")
    app.add_argument("--ip", default="127.0.0.1",
                     help="address to listen on (default 127.0.0.1, this machine only; 0.0.0.0 for a classroom)")
    app.add_argument("--browser", action="store_true", help="open a browser tab (default: do not)")
    app.set_defaults(func=_app)


def _add_report_command(sub) -> None:
    report = sub.add_parser("report", help="write a sweep's analysis as one self-contained HTML file",
                            description="Convert the sweep's executed analysis notebook to HTML (code hidden, "
                                        "figures embedded) with the sweep's parameters, versions and git commit.")
    report.add_argument("sweep_dir", help="the sweep folder, e.g. papermill_runs/default")
    report.add_argument("--output", default=None, help="the HTML file to write (default: SWEEP_DIR/report.html)")
    report.set_defaults(func=_report)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="pbm", description="Pixel Block Mixing workbench")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_mix_command(sub)
    _add_demo_command(sub)
    _add_compare_command(sub)
    _add_schemes_command(sub)
    _add_sweep_command(sub)
    _add_search_command(sub)
    _add_app_command(sub)
    _add_report_command(sub)
    return parser


#: How a library argument is written on the command line, for error messages (longest first).
_FLAG_WORDS = (("size=(height, width)", "--size HEIGHTxWIDTH"), ("mode='RGB' or mode='L'", "--mode RGB or --mode L"),
               ("mode='RGB'", "--mode RGB"), ("mode='L'", "--mode L"), ("overwrite=True", "--overwrite"),
               ("allow_unprotected=True", "--allow-unprotected"), ("names='opaque'", "the default names"),
               ("names='keep'", "--keep-names"), ("jpeg_quality", "--jpeg-quality"), ("format='jpeg'", "--format jpeg"),
               ("format='png'", "--format png"), ("format='webp'", "--format webp"),
               ("private_dir", "--private-dir"), ("block=(height, width)", "--block HEIGHTxWIDTH"))


def _one_line(exc: BaseException, *, flags: bool = True) -> str:
    """The error as one line; library argument spellings as the command line writes them."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if flags:
        for python, flag in _FLAG_WORDS:
            text = text.replace(python, flag)
    return text


def main(argv: list[str] | None = None) -> int:
    """Run ``pbm``; errors are one line on stderr.

    Exit codes: 0 success; 2 bad input or a file problem the user can fix (a ValueError,
    a missing or unreadable file, a full or read-only disk: the line names the file and what
    to change); 1 an internal error or running out of memory; 130 interrupted. Set
    ``PBM_TRACEBACK=1`` to see the traceback of an internal error.
    """
    import os

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print(f"pbm {args.command}: interrupted; outputs are renamed into place only when complete, so nothing "
              f"half-written is left under a final name", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (pbm ... | head): stop quietly, as other commands do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except MemoryError:
        print(f"pbm {args.command}: error: out of memory; use fewer or smaller images (--size), or a machine with "
              f"more memory", file=sys.stderr)
        return 1
    except (ValueError, FileNotFoundError) as exc:
        print(f"pbm {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except OSError as exc:  # full or read-only disk, permissions: the message names the file
        print(f"pbm {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except Exception as exc:
        if os.environ.get("PBM_TRACEBACK"):
            raise
        if type(exc).__name__ == "DecompressionBombError":  # an image too large to decode safely
            print(f"pbm {args.command}: error: {_one_line(exc)}", file=sys.stderr)
            return 2
        print(f"pbm {args.command}: internal error: {type(exc).__name__}: {_one_line(exc)}; please report it "
              f"(PBM_TRACEBACK=1 shows the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
