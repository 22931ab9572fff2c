"""Frontier of the defences on the bundled faces (issue 17, sections 1 and 2): a table, not a test.

For every setting (no protection, PBM 5x5, DP-Pix over epsilon, the defended PBM variants)
one :func:`pbmlib.learn.studies.run_study` trains the small CNN (clean-test accuracy), runs
the privacy scorecard (every matcher, exact and robust block membership, reassembly) and the
learned inversion (trained on public images protected by ``scheme.protect_public``: the
adaptive attacker that learns to undo exactly that defence); then
:func:`pbmlib.privacy.adaptive.adaptive_scorecard` runs the attacks designed against the
defences on the same protected set. Printed per setting: accuracy, its drop from the
unprotected reference, the worst re-identification and the worst membership AUC over
*all* attacks (with the attack's name), and whether the setting meets the issue's target:
membership AUC < 0.6, re-identification top-1 < 0.2, accuracy drop <= 5 points.

Usage::

    python benchmarks/frontier_defences.py              # the full table (Keras; ~12 min on 2 shared cores)
    python benchmarks/frontier_defences.py --quick      # a smoke run: 1 epoch, 3 settings
    python benchmarks/frontier_defences.py --csv out.csv
"""

from __future__ import annotations

import argparse
import re
import sys
import time

import numpy as np

import pbmlib
from pbmlib._validation import spawn_seeds
from pbmlib.data.split import split_dataset
from pbmlib.learn.studies import run_study
from pbmlib.privacy.adaptive import adaptive_scorecard
from pbmlib.privacy.similarity import ssim_scores
from pbmlib.schemes import get_scheme

#: the issue's target
MAX_MEMBERSHIP_AUC, MAX_REID, MAX_DROP = 0.6, 0.2, 5.0

SETTINGS = [
    ("none", {}),
    ("pbm", {"block": 5}),
    *[("dppix", {"epsilon": eps, "cell": 5}) for eps in (0.1, 0.5, 1.0, 4.0, 16.0, float("inf"))],
    *[("pbm_noise", {"sigma": sigma}) for sigma in (32.0, 64.0, 128.0)],
    ("pbm_shuffle", {"fraction": 1.0}),
    ("pbm_shuffle", {"fraction": 1.0, "scope": "image"}),
    ("pbm_average", {"k": 4}),
    ("pbm_average", {"k": 16, "p": 1.0}),
    ("pbm_augment", {}),
    ("pbm_augment", {"rotation": 30.0, "brightness": 0.4}),
]
QUICK = [("none", {}), ("pbm", {"block": 5}), ("dppix", {"epsilon": 1.0, "cell": 5})]


def _study_seeds(seed: int) -> tuple[int, int]:
    """The split and scheme seeds run_study derives from ``seed`` (checked against its ssim_mean)."""
    split, scheme, _, _ = (int(s.generate_state(1, np.uint32)[0] >> 1) for s in spawn_seeds(seed, 4))
    return split, scheme


def _worst_membership(row: dict) -> tuple[float, str]:
    """Largest membership AUC of the row over the scorecard's attacks (``membership_auc`` = exact
    blocks, ``membership_auc_<method>``) and the adaptive ones (``adaptive_membership_auc_<attack>``)."""
    found = []
    for key, value in row.items():
        fixed = re.fullmatch(r"membership_auc(?:_(\w+))?", key)
        adaptive = re.fullmatch(r"adaptive_membership_auc_(\w+)", key)
        if not (fixed or adaptive) or key.endswith("_worst") or value is None or not np.isfinite(value):
            continue
        name = f"blocks {fixed.group(1) or 'exact'}" if fixed else f"adaptive {adaptive.group(1)}"
        found.append((float(value), name))
    return max(found, key=lambda item: item[0]) if found else (float("nan"), "")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--inversion-epochs", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="1 epoch, 1 repeat, 3 settings (a smoke run)")
    parser.add_argument("--csv", help="also write every column to this CSV file")
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs, args.repeats, args.inversion_epochs = 1, 1, 2
    specs = QUICK if args.quick else SETTINGS
    schemes = [get_scheme(name, **params) for name, params in specs]
    data = pbmlib.load_faces()
    block = (5, 5)

    start = time.time()
    table, _ = run_study(data, schemes, scorecard=True, attack_block=block, inversion=True, epochs=args.epochs,
                         repeats=args.repeats, inversion_epochs=args.inversion_epochs, seed=args.seed,
                         progress=lambda done, total: print(f"  study {done}/{total} ({time.time() - start:.0f} s)",
                                                            file=sys.stderr))
    # the adaptive suite, on the very sets run_study protected
    split_seed, scheme_seed = _study_seeds(args.seed)
    train, test = split_dataset(data, test_fraction=0.3, seed=split_seed)
    rows = []
    for scheme, row in zip(schemes, table.to_dict("records")):
        protected = scheme.clone().fit(train.images, train.labels, seed=scheme_seed).protect(train.images, train.labels)
        if abs(float(ssim_scores(train.images, protected).mean()) - row["ssim_mean"]) > 1e-9:
            raise RuntimeError("run_study protected the set differently from this script: update _study_seeds")
        row.update(adaptive_scorecard(train.images, protected, block=scheme.attack_block(train.images.shape[1:])
                                      or block, non_members=test.images))
        row["membership_auc_worst"], row["membership_attack_worst"] = _worst_membership(row)
        fixed_reid, adaptive_reid = row.get("reid_top1", float("nan")), row["adaptive_reid_top1"]
        row["reid_top1_worst"], row["reid_attack_worst"] = max(
            (fixed_reid, row.get("reid_top1_attack", "")), (adaptive_reid, "adaptive " + row["adaptive_reid_attack"]))
        drop = row["accuracy_drop"]
        fails = [name for name, bad in (("membership", not row["membership_auc_worst"] < MAX_MEMBERSHIP_AUC),
                                        ("re-id", not row["reid_top1_worst"] < MAX_REID),
                                        ("accuracy", not drop <= MAX_DROP)) if bad]
        row["meets_target"] = not fails
        row["target_fails"] = ", ".join(fails)
        rows.append(row)
    print(f"# frontier on the bundled faces: {len(train.labels)} training / {len(test.labels)} held-out images, "
          f"small_cnn {args.epochs} epochs x {args.repeats} repeats, inversion {args.inversion_epochs} epochs, "
          f"seed {args.seed}, {time.time() - start:.0f} s")
    print(f"# target: membership AUC < {MAX_MEMBERSHIP_AUC}, re-id top-1 < {MAX_REID} "
          f"(chance {1 / len(train.labels):.3f}), accuracy drop <= {MAX_DROP} points")
    header = (f"{'setting':<40} {'accuracy':>13} {'drop':>6} {'re-id top-1 (worst attack)':<36} "
              f"{'membership AUC (worst attack)':<38} target")
    print(header)
    print("-" * len(header))
    for row in rows:
        accuracy = f"{row['test_accuracy_mean']:.3f}±{row['test_accuracy_std']:.3f}"
        reid = f"{row['reid_top1_worst']:.2f} ({row['reid_attack_worst']})"
        member = f"{row['membership_auc_worst']:.2f} ({row['membership_attack_worst']})"
        verdict = "MEETS" if row["meets_target"] else f"no: {row['target_fails']}"
        print(f"{row['setting']:<40} {accuracy:>13} {row['accuracy_drop']:>6.1f} {reid:<36} {member:<38} {verdict}")
    if args.csv:
        import pandas as pd

        pd.DataFrame(rows).to_csv(args.csv, index=False)
        print(f"# every column written to {args.csv}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
