"""YouTube-VOS 2018/2019 evaluation: palette PNGs per video, and the submission zip."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from datasets.yv_test_dataset import INFERENCE_SHORT_SIDE, youtube_videos
from evaluation.arguments import add_eval_args, eval_config, size_or_native
from evaluation.publish import write_submission_zip
from evaluation.runner import evaluate
from model.memory_policy import YOUTUBE_MEMORY
from util.errors import exit_on_user_error


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--yv", default="data/YouTube", help="YouTube-VOS root (2018 or 2019)")
    parser.add_argument("--split", default="valid", choices=["valid", "test"])
    parser.add_argument("--sparse", action="store_true", help="read the 5-frame JPEGImages instead of all_frames")
    parser.add_argument("--size", type=size_or_native, default=INFERENCE_SHORT_SIDE, help="shorter side for inference (-1: native)")
    parser.add_argument("--zip", action="store_true", help="also write <output>.zip for the evaluation server")
    add_eval_args(parser, YOUTUBE_MEMORY)
    return parser.parse_args(argv)


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    videos = youtube_videos(args.yv, args.split, args.sparse, args.size, max_pixels=args.max_pixels)
    evaluate(eval_config(args, zip=args.zip), videos, finish=lambda output: write_zip(args, output, videos))


def write_zip(args: argparse.Namespace, output: Path, videos) -> None:
    """Once every video is complete (in one process): the submission zip."""
    if args.zip:
        print(f"Submission archive: {write_submission_zip(output, videos)}")


if __name__ == "__main__":
    main(sys.argv[1:])
