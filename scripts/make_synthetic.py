"""Write synthetic VOS data in the real dataset layouts.

Usage (from the repository root):

    python -m scripts.make_synthetic --out DIR --seed 0 --layout davis2017 \
        --videos 4 --frames 12 --height 96 --width 160 --max_objects 3

A single layout is written with DIR as its dataset root (e.g. DIR/2017/...).
``--layout all`` writes DIR/DAVIS (2017 trainval, 2017 test-dev, 2016),
DIR/YouTube (train and valid) and DIR/static.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

if not __package__:  # `python scripts/NAME.py`: the packages are in the repository root, not in scripts/
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from datasets import synthetic

LAYOUTS = ("davis2017", "davis2016", "davis_testdev", "youtube", "static", "all")


class _OneLineParser(argparse.ArgumentParser):
    """Report bad arguments as one line on stderr (exit code 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(
        prog="make_synthetic.py",
        description="Write deterministic synthetic VOS datasets in their real layouts.",
    )
    parser.add_argument("--out", required=True, type=Path, help="output root folder")
    parser.add_argument("--seed", type=int, default=0, help="random seed (>= 0)")
    parser.add_argument("--layout", choices=LAYOUTS, default="davis2017")
    parser.add_argument(
        "--videos", type=int, default=4, help="number of videos (static: FSS classes)"
    )
    parser.add_argument(
        "--frames",
        type=int,
        default=12,
        help="frames per video (YouTube-VOS: sparse frames; each video has 5x as many)",
    )
    parser.add_argument("--height", type=int, default=96)
    parser.add_argument("--width", type=int, default=160)
    parser.add_argument("--max_objects", type=int, default=3)
    parser.add_argument(
        "--split", default="valid", help="YouTube-VOS split for --layout youtube"
    )
    parser.add_argument(
        "--images", type=int, default=4, help="images per static set and per FSS class"
    )
    parser.add_argument(
        "--leave_share",
        type=float,
        default=0.15,
        help="davis2017: probability that an object leaves the frame and returns",
    )
    return parser


def _validate(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.out.exists() and not args.out.is_dir():
        parser.error(f"--out {args.out} exists and is not a directory")
    for name in ("videos", "frames", "height", "width", "max_objects", "images"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be positive, got {getattr(args, name)}")
    if min(args.height, args.width) < synthetic.MIN_SIZE:
        parser.error(f"--height and --width must be at least {synthetic.MIN_SIZE}")
    if args.seed < 0:
        parser.error(f"--seed must be >= 0, got {args.seed}")
    if not 0 <= args.leave_share <= 1:
        parser.error(f"--leave_share must be in [0, 1], got {args.leave_share}")


def _write(layout: str, root: Path, args: argparse.Namespace) -> int:
    """Write one layout under ``root``; return the number of videos/images."""
    video = {
        "seed": args.seed,
        "num_videos": args.videos,
        "num_frames": args.frames,
        "height": args.height,
        "width": args.width,
    }
    if layout == "davis2017":
        names = synthetic.write_davis2017(
            root, max_objects=args.max_objects, leave_share=args.leave_share, **video
        )
        return sum(len(v) for v in names.values())
    if layout == "davis2016":
        return sum(len(v) for v in synthetic.write_davis2016(root, **video).values())
    if layout == "davis_testdev":
        return len(
            synthetic.write_davis2017_testdev(
                root, max_objects=args.max_objects, **video
            )
        )
    if layout == "youtube":
        return len(
            synthetic.write_youtube(
                root, split=args.split, max_objects=args.max_objects, **video
            )
        )
    counts = synthetic.write_static(
        root, args.seed, args.images, args.height, args.width, num_classes=args.videos
    )
    return sum(counts.values())


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _validate(parser, args)
    start = time.perf_counter()
    try:
        if args.layout == "all":
            davis, youtube = args.out / "DAVIS", args.out / "YouTube"
            count = sum(
                _write(layout, davis, args)
                for layout in ("davis2017", "davis_testdev", "davis2016")
            )
            for split in ("train", "valid"):
                args.split = split
                count += _write("youtube", youtube, args)
            count += _write("static", args.out / "static", args)
        else:
            count = _write(args.layout, args.out, args)
    except (ValueError, OSError) as error:
        parser.error(str(error))
    print(
        f"wrote {count} synthetic {args.layout} videos/images "
        f"(seed {args.seed}, {args.height}x{args.width}) to {args.out} "
        f"in {time.perf_counter() - start:.1f}s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
