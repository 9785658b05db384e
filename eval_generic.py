"""Segment any video: a folder of frames (jpg/png) or a video file, from annotation PNGs.

Annotations (``--masks DIR``) are palette or grayscale PNGs named like the frames they
annotate (``00000.png`` … for a video file); objects may first appear on any of them.
Outputs are palette PNGs; ``--overlay`` also writes an overlay mp4 and a preview GIF.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Optional

import numpy as np

from datasets.video_source import ImageFolderFrames, VideoFileFrames, VideoSource, check_sequence_folder
from model.memory_policy import DAVIS_MEMORY
from util.arg_types import plain_name, positive_float, size_or_native
from util.errors import UserError, exit_on_user_error
from util.eval_runner import add_eval_args, evaluate_from_args
from util.image_io import check_unique_stems, list_images, load_mask
from util.metrics import EvaluationError, check_ground_truth_names, score_video
from util.output_safety import check_files, check_plain_name, claim_files
from util.overlay import write_overlay

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm")
MAX_SHORT_SIDE = 480  # the official inference resolution (DAVIS 480p, YouTube-VOS resized to 480)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--video", required=True, help="folder of frames, or a video file")
    parser.add_argument("--masks", required=True, help="folder of annotation PNGs named like their frames")
    parser.add_argument("--size", type=size_or_native, default=None,
                        help=f"shorter side for inference (may upscale); -1 native; default: never upscale, at most {MAX_SHORT_SIDE}")
    parser.add_argument("--gt", default=None, help="ground-truth PNGs named like the frames (any folder name): print J&F")
    parser.add_argument("--name", type=plain_name, default=None, help="output sub-folder, a plain folder name (default: the video's name)")
    parser.add_argument("--overlay", action="store_true",
                        help="also write <name>_overlay.mp4 and <name>_preview.gif (ground truth | prediction with --gt)")
    parser.add_argument("--fps", type=positive_float, default=24.0, help="frame rate of the overlay video")
    add_eval_args(parser, DAVIS_MEMORY)
    return parser.parse_args(argv)


def generic_video(video: Path, masks: Path, size: Optional[int] = None, name: Optional[str] = None) -> VideoSource:
    """A video folder or file with its annotations; ``size`` None: never upscale, shorter side at most 480."""
    if not video.exists():
        raise UserError(f"{video}: not found; --video takes a folder of frames or a video file")
    if video.is_dir():
        frames = ImageFolderFrames(check_sequence_folder(video, "frame folder"))
    elif video.suffix.lower() in VIDEO_EXTENSIONS:
        frames = VideoFileFrames(video)
    else:
        raise UserError(f"{video}: not a frame folder or a video file ({', '.join(VIDEO_EXTENSIONS)})")
    if not masks.is_dir() or not list_images(masks):
        raise UserError(f"{masks}: no annotation PNGs; --masks takes a folder with at least the first annotated frame's mask")
    index = {frames.stem(i): i for i in range(len(frames))}
    annotations = {}
    for path in check_unique_stems(list_images(masks)):
        if path.stem not in index:
            raise UserError(f"{path}: no frame named {path.stem} in {video}; name each annotation like its frame")
        annotations[index[path.stem]] = path
    return VideoSource(
        name=check_plain_name(name or video.stem, "--name" if name else "video name"),
        frames=frames,
        annotation_files=annotations,
        infer_size=size if size is not None and size > 0 else None,
        max_short_side=MAX_SHORT_SIDE if size is None else None,
        palette_from=annotations[min(annotations)],
        gray_binary_is_one_object=True,
    )


def checked_ground_truth(gt: Optional[str], video: VideoSource) -> Optional[Path]:
    """``--gt`` checked before any inference: a folder of >= 3 PNGs named like the video's frames."""
    if gt is None:
        return None
    try:
        check_ground_truth_names(Path(gt), [video.frames.stem(i) for i in range(len(video))])
    except EvaluationError as e:
        raise UserError(str(e)) from None
    return Path(gt)


OverlayFrame = tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]


def overlay_items(video: VideoSource, folder: Path, gt: Optional[Path] = None) -> Iterator[OverlayFrame]:
    """(frame, predicted labels, ground-truth labels or None) for :func:`util.overlay.write_overlay`."""
    for index, rgb in enumerate(video.frames):
        path = folder / video.output_name(index)
        ids = load_mask(path) if index >= video.first_annotated and path.is_file() else np.zeros(rgb.shape[:2], np.uint8)
        truth = None
        if gt is not None:
            gt_path = gt / f"{video.frames.stem(index)}.png"
            truth = load_mask(gt_path) if gt_path.is_file() else np.zeros_like(ids)
        yield rgb, ids, truth


def overlay_names(video: VideoSource) -> list[str]:
    """The overlay video and preview written beside the masks folder."""
    return [f"{video.name}_overlay.mp4", f"{video.name}_preview.gif"]


def write_video_overlay(video: VideoSource, output: Path, gt: Optional[Path], fps: float = 24.0) -> tuple[Path, Path]:
    claim_files(output, overlay_names(video))  # never over a file this project did not write
    mp4, gif = (output / name for name in overlay_names(video))
    write_overlay(overlay_items(video, output / video.name, gt), len(video), mp4, gif, fps=fps)
    return mp4, gif


def print_jf(gt: Path, output: Path, video: VideoSource) -> dict:
    """Score the written masks against ``gt`` and print one line; returns the global measures."""
    try:
        g = score_video(gt, output / video.name, video.name)["global"]
    except EvaluationError as e:
        raise UserError(str(e)) from None
    print(f"J&F {100 * g['J&F-Mean']:.1f}  (J {100 * g['J-Mean']:.1f}, F {100 * g['F-Mean']:.1f}) against {gt}")
    return g


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    video = generic_video(Path(args.video), Path(args.masks), args.size, args.name)
    gt = checked_ground_truth(args.gt, video)
    if args.overlay:
        check_files(Path(args.output), overlay_names(video))  # before inference, not after
    output = evaluate_from_args(args, [video])
    if args.overlay:
        mp4, gif = write_video_overlay(video, output, gt, args.fps)
        print(f"Overlay: {mp4}\nPreview: {gif}")
    if gt is not None:
        print_jf(gt, output, video)


if __name__ == "__main__":
    main(sys.argv[1:])
