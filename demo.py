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

from eval_generic import generic_video, overlay_pairs
from model.memory_policy import DAVIS_MEMORY
from util.errors import UserError, exit_on_user_error
from util.eval_runner import add_eval_args, evaluate_from_args
from util.image_io import save_palette_png
from util.metrics import run_jf
from util.overlay import write_overlay

DEFAULT_MODEL = "saves/qdmn_lite_synth.pth"
SAMPLE_DIR = Path("data/demo_sample")
SAMPLE_NAME = "sample"
SAMPLE_SEED = 7  # not a SynthVOS seed
SAMPLE_FRAMES, SAMPLE_HEIGHT, SAMPLE_WIDTH, SAMPLE_OBJECTS = 48, 240, 432, 2


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--video", default=None, help="folder of frames or a video file (default: the bundled sample)")
    p.add_argument("--masks", default=None, help="annotation PNGs named like their frames")
    p.add_argument("--gt", default=None, help="ground-truth PNGs (one per frame) to compute J&F")
    p.add_argument("--size", type=int, default=-1, help="shorter side for inference (-1: native)")
    add_eval_args(p, DAVIS_MEMORY, default_model=DEFAULT_MODEL, default_output="outputs/demo")
    args = p.parse_args(argv)
    args.overwrite = True  # the demo always recomputes
    return args


def ensure_sample(root: Path = SAMPLE_DIR) -> tuple[Path, Path, Path]:
    """Frames, first-frame mask and full ground truth of the sample video, generated once."""
    frames, masks, gt = root / "frames", root / "masks", root / "gt" / SAMPLE_NAME
    if not (gt / f"{SAMPLE_FRAMES - 1:05d}.png").is_file():
        from datasets.synthetic import render_video

        images, ids = render_video(np.random.default_rng(SAMPLE_SEED), SAMPLE_FRAMES, SAMPLE_HEIGHT, SAMPLE_WIDTH, SAMPLE_OBJECTS)
        shutil.rmtree(root, ignore_errors=True)
        for folder in (frames, masks, gt):
            folder.mkdir(parents=True)
        from PIL import Image

        for t, (image, mask) in enumerate(zip(images, ids)):
            Image.fromarray(image).save(frames / f"{t:05d}.jpg", quality=95)
            save_palette_png(gt / f"{t:05d}.png", mask)
        save_palette_png(masks / "00000.png", ids[0])
    return frames, masks, gt.parent


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    start = time.perf_counter()
    if args.video is None:
        video_path, masks_path, gt_root = ensure_sample()
        name = SAMPLE_NAME
    else:
        if args.masks is None:
            raise UserError("--video needs --masks: a folder with the first annotated frame's mask")
        video_path, masks_path, gt_root, name = Path(args.video), Path(args.masks), None, None
    if not Path(args.model).is_file() and args.model == DEFAULT_MODEL:
        raise UserError(f"{args.model}: demonstration model not found; restore it with `git checkout {args.model}` or pass --model")
    video = generic_video(Path(video_path), Path(masks_path), args.size, name)
    output = evaluate_from_args(args, [video])
    mp4, gif = output / f"{video.name}_overlay.mp4", output / f"{video.name}_preview.gif"
    write_overlay(overlay_pairs(video, output / video.name), len(video), mp4, gif)
    print(f"masks: {output / video.name}\noverlay: {mp4}\npreview: {gif}")
    gt = Path(args.gt).parent if args.gt else gt_root
    if gt is not None:
        if args.gt:
            name = Path(args.gt).name
            if name != video.name:
                raise UserError(f"{args.gt}: the ground-truth folder must be named like the output ({video.name})")
        result = run_jf(gt, output, sequences=[video.name], write_csv=False, verbose=False)
        g = result["global"]
        print(f"J&F {100 * g['J&F-Mean']:.1f}  (J {100 * g['J-Mean']:.1f}, F {100 * g['F-Mean']:.1f}) against {gt / video.name}")
    print(f"total {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main(sys.argv[1:])
