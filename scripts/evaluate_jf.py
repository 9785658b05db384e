#!/usr/bin/env python
"""DAVIS semi-supervised J&F of a folder of predicted masks (official davis2017-evaluation protocol).

    python -m scripts.evaluate_jf DAVIS/2017/trainval/Annotations/480p output/davis17_val \
        --json output/davis17_val/jf.json --processes 8

Both folders hold one sub-folder of PNG masks per sequence.  Prints the global
and per-object tables and writes ``global_results.csv`` and
``per-sequence_results.csv`` (official format) into ``--csv_dir`` (default:
PRED_DIR).  On bad input it prints one line to stderr, writes nothing and exits
with status 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

if not __package__:  # `python scripts/NAME.py`: the packages are in the repository root, not in scripts/
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from evaluation.arguments import positive_int
from util.errors import EXIT_USAGE, UserError
from util.metrics_folders import run_jf


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("gt_dir", help="ground-truth folder, one sub-folder per sequence (e.g. Annotations/480p)")
    parser.add_argument("pred_dir", help="prediction folder, one sub-folder per sequence")
    parser.add_argument("--json", dest="json_path", help="also write the results as JSON (0-1 scale) to this file")
    parser.add_argument("--csv_dir", help="folder for the two CSV files (default: PRED_DIR)")
    parser.add_argument("--processes", type=positive_int, default=min(8, os.cpu_count() or 1),
                        help="worker processes (default: %(default)s)")
    parser.add_argument("--sequences", help="comma-separated subset of sequences to evaluate (default: all)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sequences = [s for s in args.sequences.split(",") if s] if args.sequences else None
    try:
        run_jf(
            args.gt_dir,
            args.pred_dir,
            processes=args.processes,
            sequences=sequences,
            csv_dir=args.csv_dir,
            json_path=args.json_path,
        )
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    return 0


if __name__ == "__main__":
    sys.exit(main())
