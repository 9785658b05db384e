"""Segment any video: a folder of frames (jpg/png) or a video file, from annotation PNGs.

Annotations (``--masks DIR``) are palette or grayscale PNGs named like the frames they
annotate (``00000.png`` … for a video file); objects may first appear on any of them.
Outputs are palette PNGs; ``--overlay`` also writes an overlay mp4 and a preview GIF.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional

from datasets.generic_test_dataset import MAX_SHORT_SIDE, generic_video
from datasets.video_source import VideoSource
from evaluation.arguments import add_eval_args, eval_config, plain_name, positive_float, size_or_native
from evaluation.config import EvalConfig
from evaluation.generic import DEFAULT_FPS, checked_ground_truth, overlay_names, print_jf, write_video_overlay
from evaluation.runner import evaluate
from model.memory_policy import DAVIS_MEMORY
from util.errors import exit_on_user_error
from util.output_safety import check_files


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--video", required=True, help="folder of frames, or a video file")
    parser.add_argument("--masks", required=True, help="folder of annotation PNGs named like their frames")
    parser.add_argument("--size", type=size_or_native, default=None,
                        help=f"shorter side for inference; -1: native (default: at most {MAX_SHORT_SIDE}, never upscaled)")
    parser.add_argument("--gt", default=None, help="ground-truth PNGs named like the frames (any folder name): print J&F")
    parser.add_argument("--name", type=plain_name, default=None, help="output sub-folder, a plain folder name (default: the video's name)")
    parser.add_argument("--overlay", action="store_true",
                        help="also write <name>_overlay.mp4 and <name>_preview.gif")
    parser.add_argument("--fps", type=positive_float, default=None,
                        help=f"overlay frame rate (default: the video file's; {DEFAULT_FPS:g} for a frame folder)")
    add_eval_args(parser, DAVIS_MEMORY)
    return parser.parse_args(argv)


def run_config(args: argparse.Namespace) -> EvalConfig:
    """The evaluation's settings (``--gt`` is an input the output must not be written into); the page's runs use it too."""
    return eval_config(args, ground_truth=args.gt)


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    video = generic_video(Path(args.video), Path(args.masks), args.size, args.name, args.max_pixels)
    gt = checked_ground_truth(args.gt, video)
    if args.overlay:
        check_files(Path(args.output), overlay_names(video))  # before inference, not after
    evaluate(run_config(args), [video], finish=lambda output: finish(args, output, video, gt))


def finish(args: argparse.Namespace, output: Path, video: VideoSource, gt: Optional[Path]) -> None:
    """Once the masks are complete (in one process): the overlay, then J&F."""
    if args.overlay:
        mp4, gif = write_video_overlay(video, output, gt, args.fps)
        print(f"Overlay: {mp4}\nPreview: {gif}")
    if gt is not None:
        print_jf(gt, output, video)


if __name__ == "__main__":
    main(sys.argv[1:])
