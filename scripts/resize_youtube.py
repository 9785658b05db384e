"""Resize the YouTube-VOS training set so that the shorter side is 480 px (as STCN/QDMN train on).

    python -m scripts.resize_youtube data/YouTube/train data/YouTube/train_480p [--size 480] [--processes 8]

IN_DIR holds ``JPEGImages/<video>/*.jpg`` and ``Annotations/<video>/*.png``; the same tree
is written under OUT_DIR. As in the official script, every frame is scaled so that its
shorter side is exactly ``--size`` px (the longer side is rounded down): frames with
bicubic interpolation, annotations with nearest neighbour, so that they keep their palette
and hold only the original object ids. Videos whose output is complete are skipped, so an
interrupted run can simply be started again. Each file is written under a temporary name
and renamed, so a killed run never leaves a truncated frame that would count as done.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

if not __package__:  # `python scripts/NAME.py`: the packages are in the repository root, not in scripts/
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from datasets.resize import DEFAULT_SIZE, resize_all
from util.errors import UserError, exit_on_user_error


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("in_dir", type=Path, help="YouTube-VOS train folder (holds JPEGImages/ and Annotations/)")
    parser.add_argument("out_dir", type=Path, help="output folder, e.g. data/YouTube/train_480p")
    parser.add_argument("--size", type=int, default=DEFAULT_SIZE, help="shorter side in pixels (default 480)")
    parser.add_argument("--processes", type=int, default=min(8, os.cpu_count() or 1), help="worker processes")
    return parser.parse_args(argv)


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if not args.in_dir.is_dir():
        raise UserError(f"{args.in_dir}: input folder not found; pass the YouTube-VOS train folder (e.g. data/YouTube/train)")
    if args.size < 1:
        raise UserError(f"--size {args.size}: must be a positive number of pixels")
    if args.out_dir.resolve() == args.in_dir.resolve():
        raise UserError(f"{args.out_dir}: OUT_DIR must differ from IN_DIR (the originals would be overwritten)")
    resize_all(args.in_dir, args.out_dir, args.size, args.processes)
    print("All done.")


if __name__ == "__main__":
    main(sys.argv[1:])
