"""Run QDMN on a sample video: masks, an overlay mp4 and a GIF in outputs/demo/, and J&F.

With no arguments it segments a bundled sample (generated on first run, deterministic)
with the shipped demonstration model ``saves/qdmn_lite_synth.pth`` and scores it
against the sample's ground truth. ``--video``, ``--masks`` and ``--model`` point it at
anything else (``--gt`` then gives the ground truth to score against, if any).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from datasets.generic_test_dataset import generic_video
from evaluation.generic import DEFAULT_FPS, checked_ground_truth, overlay_names, print_jf, write_video_overlay
from evaluation.runner import add_eval_args, evaluate_from_args
from model.memory_policy import DAVIS_MEMORY
from util.arg_types import positive_float, size_or_native
from util.errors import UserError, exit_on_user_error
from util.image_io import save_palette_png
from util.output_safety import check_files

DEFAULT_MODEL = "saves/qdmn_lite_synth.pth"
SAMPLE_DIR = Path("data/demo_sample")
SAMPLE_NAME = "sample"
SAMPLE_SEED = 7  # not a SynthVOS seed
SAMPLE_FRAMES, SAMPLE_HEIGHT, SAMPLE_WIDTH, SAMPLE_OBJECTS = 48, 240, 432, 2


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--video", default=None, help="folder of frames or a video file (default: the bundled sample)")
    p.add_argument("--masks", default=None, help="annotation PNGs named like their frames")
    p.add_argument("--gt", default=None, help="ground-truth PNGs named like the frames (any folder name): J&F and a side-by-side overlay")
    p.add_argument("--size", type=size_or_native, default=None,
                   help="shorter side for inference (may upscale); -1 native; default: never upscale, at most 480")
    p.add_argument("--fps", type=positive_float, default=None,
                   help=f"frame rate of the overlay video (default: the video file's; {DEFAULT_FPS:g} for a frame folder)")
    add_eval_args(p, DAVIS_MEMORY, default_model=DEFAULT_MODEL, default_output="outputs/demo", distributed=False)
    args = p.parse_args(argv)
    args.overwrite = True  # the demo always recomputes
    return args


def ensure_sample(root: Path = SAMPLE_DIR) -> tuple[Path, Path, Path]:
    """Frames, first-frame mask and ground-truth folder of the sample video, generated once."""
    frames, masks, gt = root / "frames", root / "masks", root / "gt" / SAMPLE_NAME
    if not (gt / f"{SAMPLE_FRAMES - 1:05d}.png").is_file():
        from datasets.synthetic import VideoSpec, render_video

        spec = VideoSpec(SAMPLE_FRAMES, SAMPLE_HEIGHT, SAMPLE_WIDTH, SAMPLE_OBJECTS)
        images, ids = render_video(np.random.default_rng(SAMPLE_SEED), spec)
        foreign = sorted(p.name for p in root.iterdir() if p.name not in ("frames", "masks", "gt")) if root.is_dir() else []
        if foreign:  # the sample folder is regenerated whole: never delete what the demo did not write
            raise UserError(f"{root}: holds {', '.join(foreign)}, not written by the demo; move them so the sample can be regenerated")
        shutil.rmtree(root, ignore_errors=True)
        for folder in (frames, masks, gt):
            folder.mkdir(parents=True)
        from PIL import Image

        for t, (image, mask) in enumerate(zip(images, ids)):
            Image.fromarray(image).save(frames / f"{t:05d}.jpg", quality=95)
            save_palette_png(gt / f"{t:05d}.png", mask)
        save_palette_png(masks / "00000.png", ids[0])
    return frames, masks, gt


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    start = time.perf_counter()
    if args.video is None:
        video_path, masks_path, sample_gt = ensure_sample()
        name, gt_arg = SAMPLE_NAME, args.gt or str(sample_gt)
    else:
        if args.masks is None:
            raise UserError("--video needs --masks: a folder with the first annotated frame's mask")
        video_path, masks_path, name, gt_arg = Path(args.video), Path(args.masks), None, args.gt
    if not Path(args.model).is_file() and args.model == DEFAULT_MODEL:
        raise UserError(f"{args.model}: demonstration model not found; restore it with `git checkout {args.model}` or pass --model")
    video = generic_video(Path(video_path), Path(masks_path), args.size, name, args.max_pixels)
    gt = checked_ground_truth(gt_arg, video)
    check_files(Path(args.output), overlay_names(video))  # before inference, not after
    output = evaluate_from_args(args, [video])
    mp4, gif = write_video_overlay(video, output, gt, args.fps)
    print(f"masks: {output / video.name}\noverlay: {mp4}\npreview: {gif}")
    if gt is not None:
        print_jf(gt, output, video)
    print(f"total {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main(sys.argv[1:])
