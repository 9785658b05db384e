"""Segment any video: a folder of frames (jpg/png) or a video file, from annotation PNGs.

Annotations (``--masks DIR``) are palette or grayscale PNGs named like the frames they
annotate (``00000.png`` … for a video file); objects may first appear on any of them.
Outputs are palette PNGs; ``--overlay`` also writes an overlay mp4 and a preview GIF.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from datasets.video_source import ImageFolderFrames, VideoFileFrames, VideoSource, check_sequence_folder
from model.memory_policy import DAVIS_MEMORY
from util.errors import UserError, exit_on_user_error
from util.eval_runner import add_eval_args, evaluate_from_args
from util.image_io import list_images, load_mask
from util.overlay import write_overlay

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--video", required=True, help="folder of frames, or a video file")
    parser.add_argument("--masks", required=True, help="folder of annotation PNGs named like their frames")
    parser.add_argument("--size", type=int, default=480, help="shorter side for inference; -1 keeps the native size")
    parser.add_argument("--name", default=None, help="output sub-folder (default: the video's name)")
    parser.add_argument("--overlay", action="store_true", help="also write <name>_overlay.mp4 and <name>_preview.gif")
    parser.add_argument("--fps", type=float, default=24.0, help="frame rate of the overlay video")
    add_eval_args(parser, DAVIS_MEMORY)
    return parser.parse_args(argv)


def generic_video(video: Path, masks: Path, size: int, name: str | None = None) -> VideoSource:
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
    for path in list_images(masks):
        if path.stem not in index:
            raise UserError(f"{path}: no frame named {path.stem} in {video}; name each annotation like its frame")
        annotations[index[path.stem]] = path
    return VideoSource(
        name=name or video.stem,
        frames=frames,
        annotation_files=annotations,
        infer_size=size if size > 0 else None,
        palette_from=annotations[min(annotations)],
    )


def overlay_pairs(video: VideoSource, folder: Path):
    for index, rgb in enumerate(video.frames):
        path = folder / video.output_name(index)
        ids = load_mask(path) if index >= video.first_annotated and path.is_file() else np.zeros(rgb.shape[:2], np.uint8)
        yield rgb, ids


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    video = generic_video(Path(args.video), Path(args.masks), args.size, args.name)
    output = evaluate_from_args(args, [video])
    if args.overlay:
        mp4, gif = output / f"{video.name}_overlay.mp4", output / f"{video.name}_preview.gif"
        write_overlay(overlay_pairs(video, output / video.name), len(video), mp4, gif, fps=args.fps)
        print(f"Overlay: {mp4}\nPreview: {gif}")


if __name__ == "__main__":
    main(sys.argv[1:])
