"""The ``pbm`` command line.

``mix`` (a folder), ``demo`` (the bundled faces), ``compare`` (training on mixed data),
``schemes`` (any protection by name: training and attacks), ``sweep`` (papermill).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

__all__ = ["main"]


def _pair(text: str) -> tuple[int, int]:
    """'24x12' -> (24, 12); '24' -> (24, 24)."""
    parts = text.lower().split("x")
    try:
        values = tuple(int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HEIGHTxWIDTH in pixels such as 24x24, got {text!r}") from None
    if len(values) == 1:
        return values[0], values[0]
    if len(values) != 2:
        raise argparse.ArgumentTypeError(f"expected HEIGHTxWIDTH in pixels such as 24x24, got {text!r}")
    return values


def _add_mixing_options(parser: argparse.ArgumentParser, *, block_default=None) -> None:
    parser.add_argument("--block", type=_pair, required=block_default is None, default=block_default,
                        help="block HEIGHTxWIDTH in pixels (L_b x W_b), e.g. 24x24")
    parser.add_argument("--donors", type=int, default=10, help="N_s, donors per image (default 10)")
    parser.add_argument("--rounds", type=int, default=1, help="N_t, mixing rounds (default 1)")
    parser.add_argument("-p", "--p", type=float, default=0.5, help="replacement probability (default 0.5)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--allow-self", action="store_true", help="an image may be its own donor")


def _mix(args) -> int:
    from ..pbm.folders import mix_folder

    manifest = mix_folder(
        args.src, args.dst, size=args.size, mode=args.mode, overwrite=args.overwrite,
        jpeg_quality=args.jpeg_quality, progress=not args.quiet, block=args.block,
        n_donors=args.donors, rounds=args.rounds, p=args.p, seed=args.seed, allow_self=args.allow_self,
    )
    print(f"mixed {manifest['n_images']} images of {len(manifest['class_sizes'])} classes into {args.dst}; "
          f"N_b = {manifest['n_blocks']}, log10 P(restore, Eq. 9) = "
          f"{manifest['log10_restoration_probability']:.1f}")
    return 0


def _demo(args) -> int:
    from .._io import write_image_atomic, write_json_atomic, versions
    from ..data.datasets import load_faces
    from ..pbm.folders import mix_folder
    from ..privacy.similarity import psnr_scores, ssim_floor_scores, ssim_floor_table, ssim_scores, summarize_scores

    out = Path(args.out)
    faces = load_faces()
    originals = out / "faces"
    for i, (image, label) in enumerate(zip(faces.images, faces.labels)):
        write_image_atomic(originals / str(label) / f"{i:03d}.png", image)
    mixed_dir = out / "mixed"
    manifest = mix_folder(originals, mixed_dir, overwrite=True, progress=not args.quiet, block=args.block,
                          n_donors=args.donors, rounds=args.rounds, p=args.p, seed=args.seed,
                          allow_self=args.allow_self)
    from ..data.datasets import load_folder

    mixed = load_folder(mixed_dir)
    ordered = load_folder(originals)
    if ordered.files != mixed.files:
        raise RuntimeError("mixed folder does not mirror the original folder")
    ssim = ssim_scores(ordered.images, mixed.images)
    floor = ssim_floor_scores(ordered.images, ordered.labels, seed=args.seed)
    table = ssim_floor_table(ssim, floor, ordered.labels)
    psnr = psnr_scores(ordered.images, mixed.images)
    table["psnr_mean_db"] = summarize_scores(np.where(np.isfinite(psnr), psnr, np.nan), ordered.labels,
                                             name="psnr")["psnr_mean"]
    table.to_csv(out / "ssim_report.csv")
    report = {
        "parameters": manifest["parameters"],
        "n_blocks": manifest["n_blocks"],
        "log10_restoration_probability": manifest["log10_restoration_probability"],
        "ssim_mean": float(ssim.mean()),
        "ssim_floor_mean": float(floor.mean()),
        "per_class": table.reset_index().to_dict(orient="records"),
        "versions": versions(),
    }
    write_json_atomic(out / "ssim_report.json", report)
    print(table.round(3).to_string())
    print(f"N_b = {manifest['n_blocks']}; log10 P(restore all, Eq. 9) = {report['log10_restoration_probability']:.1f}")
    print("SSIM alone overstates protection: compare ssim_mean with ssim_floor_mean "
          "(SSIM to a random other image of the same class).")
    print(f"wrote {originals}, {mixed_dir}, {out / 'ssim_report.csv'}, {out / 'ssim_report.json'}")
    return 0


def _study_parameters(args) -> dict:
    """The command's options as a study's parameters (JSON-able)."""
    return {k: (str(v) if k == "schemes" else v) for k, v in vars(args).items() if k != "func"}


def _print_study(table, columns) -> None:
    shown = table[[c for c in columns if c in table]]
    print(shown.to_string(index=False, na_rep="-", float_format=lambda v: f"{v:.3f}"))


def _compare(args) -> int:
    from ..data.augmentation import Augmentation
    from ..data.datasets import load_dataset
    from ..learn.studies import run_study
    from ..schemes import get_scheme
    from .results import write_study

    pbm = [get_scheme("pbm", block=block, n_donors=args.donors, rounds=args.rounds, p=args.p) for block in args.blocks]
    conditions = [get_scheme("none")] + pbm
    if args.augment:
        conditions += [(scheme, Augmentation(mode=args.augment)) for scheme in pbm]
    data = load_dataset(args.dataset, size=args.size)
    table, records = run_study(data, conditions, model_name=args.model, epochs=args.epochs,
                               batch_size=args.batch_size, repeats=args.repeats, seed=args.seed)
    results = write_study(args.out, _study_parameters(args), table, records)
    print(f"{args.model} on {args.dataset} ({len(data)} images), {args.repeats} repeats x {args.epochs} epochs, "
          f"N_s = {args.donors}, N_t = {args.rounds}; clean test set")
    _print_study(table, ["setting", "n_blocks", "test_accuracy_mean", "test_accuracy_std", "test_loss_mean",
                         "ssim_mean", "accuracy_drop"])
    print(f"SSIM floor (random same-label pair): {table['ssim_floor_mean'].iloc[0]:.3f}")
    print(f"wrote {results} and {results.parent / 'study.csv'}")
    return 0


def _sweep(args) -> int:
    from .sweeps import load_sweep, run_sweep

    config = load_sweep(args.config)
    if args.output_root:
        config["output_root"] = args.output_root
    summary = run_sweep(config, workers=args.workers, progress=not args.quiet, analysis=not args.no_analysis)
    print(f"sweep {config['name']}: {len(summary['finished'])} run(s) done now, {len(summary['skipped'])} "
          f"already finished, {len(summary['failed'])} failed; results in {summary['sweep_dir']}")
    for run_id, error in summary["failed"].items():
        print(f"  failed: {run_id}: {error.splitlines()[0][:300]}")
    if summary["analysis"]:
        print(f"analysis: {summary['analysis']}")
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
    from ..learn.studies import run_study
    from .results import write_study

    data = load_dataset(args.dataset, size=args.size)
    if args.rgb and data.images.ndim == 3:
        data = ImageSet(np.repeat(data.images[..., None], 3, axis=3), data.labels, data.files, data.description)
    table, records = run_study(data, args.schemes, scorecard=True, attack_block=args.attack_block,
                               epochs=args.epochs, repeats=args.repeats, inversion=args.inversion, seed=args.seed)
    results = write_study(args.out, _study_parameters(args), table, records)
    _print_study(table, ["setting", "test_accuracy_mean", "ssim_mean", "ssim_floor_mean", "reid_top1",
                         "reid_top1_attack", "membership_auc"])
    print(f"chance of re-identification top-1: {table['reid_chance_top1'].iloc[0]:.3f}; wrote {results}")
    return 0


def _pairs(text: str) -> list[tuple[int, int]]:
    return [_pair(part) for part in text.split(",") if part]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pbm", description="Pixel Block Mixing workbench")
    sub = parser.add_subparsers(dest="command", required=True)

    mix = sub.add_parser("mix", help="mix a folder of label/*.png|jpg images into a new folder")
    mix.add_argument("src", help="source folder with one sub-folder per label (never modified)")
    mix.add_argument("dst", help="destination folder (new or empty)")
    _add_mixing_options(mix)
    mix.add_argument("--size", type=_pair, default=None, help="resize to HEIGHTxWIDTH first, e.g. 192x192")
    mix.add_argument("--mode", choices=["L", "RGB"], default=None, help="convert to grayscale or RGB")
    mix.add_argument("--jpeg-quality", type=int, default=95, help="quality of JPEG outputs (default 95)")
    mix.add_argument("--overwrite", action="store_true", help="allow a non-empty destination")
    mix.add_argument("--quiet", action="store_true", help="no progress bar")
    mix.set_defaults(func=_mix)

    demo = sub.add_parser("demo", help="mix the bundled LFW faces and write an SSIM report")
    demo.add_argument("out", nargs="?", default="papermill_runs/demo", help="output folder")
    _add_mixing_options(demo, block_default=(5, 5))
    demo.add_argument("--quiet", action="store_true", help="no progress bar")
    demo.set_defaults(func=_demo)

    compare = sub.add_parser("compare", help="train a model on original vs mixed data, per block size")
    compare.add_argument("--dataset", default="faces", help="faces, mnist, fashion_mnist or a folder (default faces)")
    compare.add_argument("--size", type=_pair, default=None, help="resize images to HEIGHTxWIDTH first")
    compare.add_argument("--model", default="small_cnn", help="small_cnn, resnet50, vgg16, inceptionv3, densenet121")
    compare.add_argument("--blocks", type=_pairs, default=[(25, 5), (5, 5), (5, 1), (1, 1)],
                         help="comma-separated block sizes, e.g. 25x5,5x5,1x1")
    compare.add_argument("--donors", type=int, default=10)
    compare.add_argument("--rounds", type=int, default=1)
    compare.add_argument("-p", "--p", type=float, default=0.5)
    compare.add_argument("--augment", choices=["online", "offline"], default=None,
                         help="also train on mixed data with the paper's flip/rotation/brightness")
    compare.add_argument("--epochs", type=int, default=15)
    compare.add_argument("--batch-size", type=int, default=32)
    compare.add_argument("--repeats", type=int, default=5)
    compare.add_argument("--seed", type=int, default=0)
    compare.add_argument("--out", default="papermill_runs/compare", help="output folder")
    compare.set_defaults(func=_compare)

    schemes = sub.add_parser("schemes", help="train and attack several protections by name on one dataset")
    schemes.add_argument("schemes", nargs="+", type=_scheme_spec,
                         help="scheme specs NAME[:key=value,...], e.g. none pbm:block=6x6 visualmixer:window=8 "
                              "pixel_encryption block_encryption blur:sigma=2")
    schemes.add_argument("--dataset", default="faces")
    schemes.add_argument("--size", type=_pair, default=(24, 24), help="resize to HEIGHTxWIDTH (default 24x24)")
    schemes.add_argument("--rgb", action="store_true", help="give grayscale images three channels")
    schemes.add_argument("--attack-block", type=_pair, default=(4, 4), help="block of the block-level attacks")
    schemes.add_argument("--epochs", type=int, default=12)
    schemes.add_argument("--repeats", type=int, default=2)
    schemes.add_argument("--inversion", action="store_true", help="also run the learned-inversion attack")
    schemes.add_argument("--seed", type=int, default=0)
    schemes.add_argument("--out", default="papermill_runs/schemes", help="output folder")
    schemes.set_defaults(func=_schemes)

    sweep = sub.add_parser("sweep", help="run a papermill sweep from a YAML config (resumes where it stopped)")
    sweep.add_argument("config", nargs="?", default="sweeps/default.yaml", help="sweep config (YAML)")
    sweep.add_argument("--workers", type=int, default=None, help="runs at once (default: the config's)")
    sweep.add_argument("--output-root", default=None, help="write under this folder instead of the config's")
    sweep.add_argument("--no-analysis", action="store_true", help="skip the analysis notebook")
    sweep.add_argument("--quiet", action="store_true", help="no progress bar")
    sweep.set_defaults(func=_sweep)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as exc:
        print(f"pbm {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
