"""Generate SynthVOS, a fixed synthetic VOS benchmark (see docs/SYNTHVOS.md).

Usage (from the repository root):

    python -m scripts.make_synthvos --out data/SynthVOS [--sets val,long,yv] [--workers 2]

Sets, all at 240x432 and regenerated bit for bit from fixed seeds
(``datasets.synthetic.SYNTHVOS_SEEDS``: val 2022, long 2023, yv 2024):

* ``val``  DAVIS 2017 layout in ``<out>/val/2017/trainval``: 20 sequences of
  40-80 frames, 1-3 objects, some with mild hard events.
* ``long`` DAVIS 2017 layout in ``<out>/long/2017/trainval``: 6 sequences of
  600-800 frames with 2 objects (even index) or 3 (odd), each with two full occlusions, a long exit from the frame,
  appearance drift, lighting changes (dimming, recovery, flicker) and
  look-alike distractors.
* ``yv``   YouTube-VOS valid layout in ``<out>/yv``: 10 videos of 40-60 frames
  with objects entering mid-video and non-consecutive ids; full ground truth
  on every frame in ``<out>/yv/valid_gt/Annotations``.

Video ``i`` of a set is a function of ``np.random.default_rng([seed, tag, i])``
only (tags: val 3100, long 3200, yv 3300), so videos are independent and are
generated in parallel. Each set also gets ``synthvos.json``: the events of
every video (frame numbers included) and, per object, the frames where its
ground-truth mask is empty. The SynthVOS seeds are reserved: generate
training data with other seeds (``synthetic.assert_not_synthvos_seed``).

``--style wide --seed N`` writes the wide training preset instead
(``datasets/synthetic/wide.py``: objects of 0.2-40 % of the frame, many shapes,
textures and backgrounds, camera pan and zoom, occlusions) in the same layouts, as
the sets ``val`` (DAVIS 2017) and ``yv`` (YouTube-VOS), videos named ``wideN-<set>-NNN``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import shutil
import sys
import time
from pathlib import Path

if not __package__:  # `python scripts/NAME.py`: the packages are in the repository root, not in scripts/
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from datasets import synthetic
from datasets.synthetic.synthvos import (
    HEIGHT,
    MANIFEST,
    MIN_TEST_FRAMES,
    NUM_VIDEOS,
    SETS,
    STYLES,
    WIDE_SETS,
    WIDTH,
    Settings,
    init_worker,
    make_set,
)


class _OneLineParser(argparse.ArgumentParser):
    """Report bad arguments as one line on stderr (exit code 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(prog="make_synthvos.py", description="Generate the SynthVOS benchmark.")
    parser.add_argument("--out", required=True, type=Path, help="output folder (e.g. data/SynthVOS)")
    parser.add_argument("--sets", default=None, help="comma-separated subset of val,long,yv (default: all; --style wide: val,yv)")
    parser.add_argument("--workers", type=int, default=2, help="parallel processes")
    parser.add_argument("--overwrite", action="store_true", help="replace sets a previous run wrote")
    parser.add_argument(
        "--seed",
        type=int,
        default=None,
        help="generate training data in the SynthVOS style from this seed (not a SynthVOS seed)",
    )
    parser.add_argument(
        "--style",
        choices=STYLES,
        default="synthvos",
        help="wide: the wide training preset (sets val and yv, needs --seed; docs/SYNTHVOS.md)",
    )
    # Hidden overrides for quick tests; they change the content of the videos.
    parser.add_argument("--scale", type=float, default=1.0, help=argparse.SUPPRESS)
    parser.add_argument("--frames", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--videos", type=int, default=None, help="number of videos per set (default: the SynthVOS counts)")
    return parser


def _parse_sets(parser: argparse.ArgumentParser, text: str | None, style: str) -> list[str]:
    allowed = WIDE_SETS if style == "wide" else SETS
    text = ",".join(allowed) if text is None else text
    sets = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [s for s in sets if s not in allowed]
    if not sets or unknown or len(set(sets)) != len(sets):
        parser.error(f"--sets must be distinct names from {','.join(allowed)}, got {text!r}")
    return [s for s in allowed if s in sets]


def _validate(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Settings:
    if args.out.exists() and not args.out.is_dir():
        parser.error(f"--out {args.out} exists and is not a directory")
    if args.workers < 1:
        parser.error(f"--workers must be positive, got {args.workers}")
    if not args.scale > 0 or min(HEIGHT, WIDTH) * args.scale < synthetic.MIN_SIZE:
        parser.error(f"--scale must give frames of at least {synthetic.MIN_SIZE} pixels, got {args.scale}")
    if args.frames is not None and args.frames < MIN_TEST_FRAMES:
        parser.error(f"--frames must be at least {MIN_TEST_FRAMES}, got {args.frames}")
    if args.videos is not None and args.videos < 1:
        parser.error(f"--videos must be positive, got {args.videos}")
    if args.seed is not None and (args.seed < 0 or args.seed in synthetic.SYNTHVOS_SEEDS.values()):
        parser.error(f"--seed must be >= 0 and not a SynthVOS seed {sorted(synthetic.SYNTHVOS_SEEDS.values())}, got {args.seed}")
    if args.style == "wide" and args.seed is None:
        parser.error("--style wide generates training data and needs --seed")
    height, width = round(HEIGHT * args.scale), round(WIDTH * args.scale)
    return Settings(out=args.out, height=height, width=width, frames=args.frames, seed=args.seed, style=args.style)


def _prepare(parser: argparse.ArgumentParser, out: Path, sets: list[str], overwrite: bool) -> None:
    """Refuse to mix with existing files; with --overwrite remove only set
    folders that carry a SynthVOS manifest."""
    for set_name in sets:
        root = out / set_name
        if not root.exists() or (root.is_dir() and not any(root.iterdir())):
            continue
        if not overwrite:
            parser.error(f"{root} exists and is not empty; pass --overwrite to regenerate it")
        if not (root / MANIFEST).is_file():
            parser.error(f"{root} has no {MANIFEST}; not removing a folder this script did not write")
    for set_name in sets:
        if (out / set_name / MANIFEST).is_file():
            shutil.rmtree(out / set_name)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    sets = _parse_sets(parser, args.sets, args.style)
    settings = _validate(parser, args)
    _prepare(parser, args.out, sets, args.overwrite)
    init_worker()
    start = time.perf_counter()
    context = multiprocessing.get_context("spawn")
    pool = context.Pool(args.workers, initializer=init_worker) if args.workers > 1 else None
    try:
        for set_name in sets:
            num_videos = args.videos or NUM_VIDEOS[set_name]
            print(make_set(set_name, num_videos, settings, pool), flush=True)
    except OSError as error:
        parser.error(str(error))
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    print(f"SynthVOS written to {args.out} in {time.perf_counter() - start:.1f}s with {args.workers} worker(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
