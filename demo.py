"""Run QDMN on a sample video: masks, an overlay mp4 and a GIF in outputs/demo/, and J&F.

With no arguments it segments a bundled sample (generated on first run, deterministic)
with the shipped demonstration model ``saves/qdmn_lite_synth.pth`` and scores it
against the sample's ground truth. ``--video``, ``--masks`` and ``--model`` point it at
anything else (``--gt`` then gives the ground truth to score against, if any).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from datasets.generic_test_dataset import MAX_SHORT_SIDE, generic_video
from evaluation.arguments import add_eval_args, eval_config, positive_float, size_or_native
from evaluation.generic import DEFAULT_FPS, checked_ground_truth, overlay_names, print_jf, write_video_overlay
from evaluation.runner import evaluate
from model.memory_policy import DAVIS_MEMORY
from util.errors import UserError, exit_on_user_error
from util.image_io import save_palette_png
from util.output_safety import check_files, waiting_lock

DEFAULT_MODEL = "saves/qdmn_lite_synth.pth"
SAMPLE_DIR = Path("data/demo_sample")
SAMPLE_NAME = "sample"
SAMPLE_SEED = 7  # not a SynthVOS seed
SAMPLE_FRAMES, SAMPLE_HEIGHT, SAMPLE_WIDTH, SAMPLE_OBJECTS = 48, 240, 432, 2


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--video", default=None, help="folder of frames or a video file (default: the bundled sample)")
    p.add_argument("--masks", default=None, help="annotation PNGs named like their frames")
    p.add_argument("--gt", default=None, help="ground-truth PNGs named like the frames: J&F and a side-by-side overlay")
    p.add_argument("--size", type=size_or_native, default=None,
                   help=f"shorter side for inference; -1: native (default: at most {MAX_SHORT_SIDE}, never upscaled)")
    p.add_argument("--fps", type=positive_float, default=None,
                   help=f"overlay frame rate (default: the video file's; {DEFAULT_FPS:g} for a frame folder)")
    add_eval_args(p, DAVIS_MEMORY, default_model=DEFAULT_MODEL, default_output="outputs/demo", distributed=False)
    return p.parse_args(argv)


def ensure_sample(root: Path = SAMPLE_DIR) -> tuple[Path, Path, Path]:
    """Frames, first-frame mask and ground-truth folder of the sample video, generated once.

    The sample is generated under a temporary name beside ``root`` and renamed into place,
    so ``root`` is either absent or complete; runs starting together take turns (a lock
    file beside it), and a later one uses the finished sample.
    """
    frames, masks, gt = root / "frames", root / "masks", root / "gt" / SAMPLE_NAME
    if _sample_complete(gt):
        return frames, masks, gt
    with waiting_lock(root.with_name(f".{root.name}.lock")):
        if not _sample_complete(gt):
            _generate_sample(root)
    return frames, masks, gt


def _sample_complete(gt: Path) -> bool:
    return (gt / f"{SAMPLE_FRAMES - 1:05d}.png").is_file()


def _generate_sample(root: Path) -> None:
    """Render the sample into a fresh hidden folder beside ``root``, then rename it to ``root``."""
    foreign = sorted(p.name for p in root.iterdir() if p.name not in ("frames", "masks", "gt")) if root.is_dir() else []
    if foreign:  # the sample folder is regenerated whole: never delete what the demo did not write
        raise UserError(f"{root}: holds {', '.join(foreign)}, not written by the demo; move them so the sample can be regenerated")
    from PIL import Image

    from datasets.synthetic import VideoSpec, render_video

    spec = VideoSpec(SAMPLE_FRAMES, SAMPLE_HEIGHT, SAMPLE_WIDTH, SAMPLE_OBJECTS)
    images, ids = render_video(np.random.default_rng(SAMPLE_SEED), spec)
    try:
        root.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{root.name}.", suffix=".new", dir=root.parent))
        umask = os.umask(0)
        os.umask(umask)
        staging.chmod(0o777 & ~umask)  # mkdtemp's folder is private; the sample's is not
    except OSError as e:
        raise UserError(f"{root.parent}: cannot create the demo sample ({e.strerror or e}); fix the permissions") from None
    try:
        frames, masks, gt = staging / "frames", staging / "masks", staging / "gt" / SAMPLE_NAME
        for folder in (frames, masks, gt):
            folder.mkdir(parents=True)
        for t, (image, mask) in enumerate(zip(images, ids)):
            Image.fromarray(image).save(frames / f"{t:05d}.jpg", quality=95)
            save_palette_png(gt / f"{t:05d}.png", mask)
        save_palette_png(masks / "00000.png", ids[0])
        if root.exists():  # an unfinished sample of an earlier version (frames, masks, gt only: checked above)
            shutil.rmtree(root)
        staging.rename(root)
    except OSError as e:
        raise UserError(f"{root}: cannot write the demo sample ({e.strerror or e}); free disk space or fix the permissions") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


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
    output = evaluate(eval_config(args, ground_truth=args.gt, overwrite=True), [video])  # the demo always recomputes
    mp4, gif = write_video_overlay(video, output, gt, args.fps)
    print(f"masks: {output / video.name}\noverlay: {mp4}\npreview: {gif}")
    if gt is not None:
        print_jf(gt, output, video)
    print(f"total {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main(sys.argv[1:])
