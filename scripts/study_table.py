"""Print a study's results.json as the README's markdown tables.

    .venv/bin/python scripts/study_table.py papermill_runs/frontier/frontier/results.json
    .venv/bin/python scripts/study_table.py RESULTS.json --table privacy

``target`` (default): every setting against the target with its intervals and decisions
(:func:`pbmlib.workbench.analysis.target_table`); ``privacy``: what the strongest attacks
achieved beside chance (:func:`pbmlib.workbench.analysis.privacy_table`).
"""

from __future__ import annotations

import argparse
import sys

import pandas as pd

from pbmlib.workbench.analysis import markdown_table, privacy_table, target_table
from pbmlib.workbench.results import read_results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("results", help="a study's results.json")
    parser.add_argument("--table", choices=["target", "privacy"], default="target")
    args = parser.parse_args(argv)
    rows = pd.DataFrame(read_results(args.results)["rows"]).assign(stage="")
    table = target_table(rows) if args.table == "target" else privacy_table(rows).drop(columns="sweep stage")
    print(markdown_table(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
