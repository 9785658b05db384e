"""Generate the held-out check of generalisation (``datasets/heldout``, docs/SYNTHVOS.md).

Usage (from the repository root):

    python -m scripts.make_heldout --out data/heldout --videos 10 --frames 40 \
        --height 240 --width 432 --seed 1 [--youtube] [--overwrite]

Writes ``<out>/2017/trainval`` (DAVIS 2017: every frame annotated,
``ImageSets/2017/val.txt``), with ``--youtube`` also ``<out>/yv`` (YouTube-VOS valid,
full ground truth in ``valid_gt``), and ``<out>/heldout.json``. The generator is
written apart from ``datasets/synthetic`` and is never used for training. Evaluate with

    python eval_davis.py --model saves/qdmn_lite_synth.pth --davis data/heldout/2017 \
        --output outputs/heldout --evaluate
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

if not __package__:  # `python scripts/NAME.py`: the packages are in the repository root, not in scripts/
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from datasets.heldout import MANIFEST, write_heldout

MIN_SIDE = 32


class _OneLineParser(argparse.ArgumentParser):
    """Report bad arguments as one line on stderr (exit code 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(prog="make_heldout.py", description="Generate the held-out synthetic VOS check.")
    parser.add_argument("--out", required=True, type=Path, help="output folder (DAVIS layout in <out>/2017)")
    parser.add_argument("--videos", type=int, default=10)
    parser.add_argument("--frames", type=int, default=40, help="frames per video")
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--width", type=int, default=432)
    parser.add_argument("--seed", type=int, default=1, help="random seed (>= 0)")
    parser.add_argument("--youtube", action="store_true", help="also write a YouTube-VOS valid layout in <out>/yv")
    parser.add_argument("--overwrite", action="store_true", help="replace a folder a previous run wrote")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    for name in ("videos", "frames"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be positive, got {getattr(args, name)}")
    if min(args.height, args.width) < MIN_SIDE:
        parser.error(f"--height and --width must be at least {MIN_SIDE}, got {args.height}x{args.width}")
    if args.seed < 0:
        parser.error(f"--seed must be >= 0, got {args.seed}")
    out: Path = args.out
    if out.exists() and not out.is_dir():
        parser.error(f"--out {out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()):
        if not args.overwrite:
            parser.error(f"{out} exists and is not empty; pass --overwrite to regenerate it")
        if not (out / MANIFEST).is_file():
            parser.error(f"{out} has no {MANIFEST}; not removing a folder this script did not write")
        shutil.rmtree(out)
    start = time.perf_counter()
    try:
        manifest = write_heldout(out, args.videos, args.frames, args.height, args.width, args.seed, args.youtube)
    except (ValueError, OSError) as error:
        parser.error(str(error))
    objects = sum(len(v["objects"]) for v in manifest["videos"])
    print(
        f"held-out: {args.videos} videos, {args.videos * args.frames} frames, {objects} objects, "
        f"{args.height}x{args.width}, seed {args.seed} in {out} ({time.perf_counter() - start:.1f}s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
