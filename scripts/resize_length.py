"""Resize every image of a folder tree so that its shorter side is N px (default 384).

    python -m scripts.resize_length --in DIR --out DIR [--size 384] [--shrink_only] [--processes 8]

The official STCN script of this name (``scripts/resize_length.py IN OUT``) scales the
images of one flat folder so that the shorter side is exactly 384 px with OpenCV's
``INTER_AREA``. This version keeps that behaviour for photos and extends it:

* the whole tree under ``--in`` is processed and mirrored under ``--out``;
* palette (mode ``P``) PNGs are segmentation masks: they are resized with nearest
  neighbour by PIL, so the palette is kept and only the original ids occur
  (``--nearest`` treats every image as a mask, e.g. for grey-level ``L`` masks);
* ``--shrink_only`` leaves images whose shorter side is already at most N unchanged
  (they are copied), instead of enlarging them as the official script does.

Outputs that already exist are skipped (files are written under a temporary name and
renamed, so a killed run leaves no truncated image). Exit status 2 on bad input.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

if not __package__:  # `python scripts/NAME.py`: the packages are in the repository root, not in scripts/
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from datasets.resize import TREE_SIZE, resize_tree
from util.errors import UserError, exit_on_user_error

DEFAULT_SIZE = TREE_SIZE


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--in", dest="in_dir", type=Path, required=True, help="input folder (searched recursively)")
    parser.add_argument("--out", dest="out_dir", type=Path, required=True, help="output folder (same tree)")
    parser.add_argument("--size", type=int, default=DEFAULT_SIZE, help=f"shorter side in pixels (default {DEFAULT_SIZE})")
    parser.add_argument("--shrink_only", action="store_true", help="copy images whose shorter side is already <= SIZE")
    parser.add_argument("--nearest", action="store_true", help="treat every image as a mask (nearest neighbour)")
    parser.add_argument("--processes", type=int, default=min(8, os.cpu_count() or 1), help="worker processes")
    return parser.parse_args(argv)


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if not args.in_dir.is_dir():
        raise UserError(f"{args.in_dir}: input folder not found; check --in")
    if args.size < 1:
        raise UserError(f"--size {args.size}: must be a positive number of pixels")
    if args.out_dir.resolve().is_relative_to(args.in_dir.resolve()):
        raise UserError(f"{args.out_dir}: --out must not be --in or lie inside it (the outputs would be read as inputs)")
    resize_tree(args.in_dir, args.out_dir, args.size, args.shrink_only, args.nearest, args.processes)
    print("All done.")


if __name__ == "__main__":
    main(sys.argv[1:])
