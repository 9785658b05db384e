"""What ``eval_generic.py`` and ``demo.py`` add to the evaluation loop for one video:
``--gt`` checked before inference, J&F of the written masks, and the overlay video."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Optional

import numpy as np

from datasets.video_source import VideoSource
from evaluation.masks import PALETTE_PNG
from util.errors import UserError
from util.image_io import load_mask
from util.metrics import EvaluationError
from util.metrics_folders import check_ground_truth_names, score_video
from util.overlay import write_overlay


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
DEFAULT_FPS = 24.0  # the overlay's frame rate for a frame folder (a video file's own rate otherwise)


def overlay_fps(video: VideoSource, fps: Optional[float] = None) -> float:
    """``fps`` when given, else the video file's frame rate (OpenCV's ``CAP_PROP_FPS``), else :data:`DEFAULT_FPS`."""
    return fps or getattr(video.frames, "fps", None) or DEFAULT_FPS


def overlay_items(video: VideoSource, folder: Path, gt: Optional[Path] = None) -> Iterator[OverlayFrame]:
    """(frame, predicted labels, ground-truth labels or None) for :func:`util.overlay.write_overlay`."""
    for index, rgb in enumerate(video.frames):
        path = folder / PALETTE_PNG.file_name(video.output_stem(index))
        ids = load_mask(path) if index >= video.first_annotated and path.is_file() else np.zeros(rgb.shape[:2], np.uint8)
        truth = None
        if gt is not None:
            gt_path = gt / f"{video.frames.stem(index)}.png"
            truth = load_mask(gt_path) if gt_path.is_file() else np.zeros_like(ids)
        yield rgb, ids, truth


def overlay_names(video: VideoSource) -> list[str]:
    """The overlay video and preview written beside the masks folder."""
    return [f"{video.name}_overlay.mp4", f"{video.name}_preview.gif"]


def write_video_overlay(video: VideoSource, output: Path, gt: Optional[Path], fps: Optional[float] = None) -> tuple[Path, Path]:
    """The overlay mp4 and preview GIF, at ``fps`` or the source's frame rate (:func:`overlay_fps`)."""
    mp4, gif = (output / name for name in overlay_names(video))
    write_overlay(overlay_items(video, output / video.name, gt), len(video), mp4, gif, fps=overlay_fps(video, fps))
    return mp4, gif


def print_jf(gt: Path, output: Path, video: VideoSource) -> dict:
    """Score the written masks against ``gt`` and print one line; returns the global measures."""
    try:
        g = score_video(gt, output / video.name, video.name)["global"]
    except EvaluationError as e:
        raise UserError(str(e)) from None
    print(f"J&F {100 * g['J&F-Mean']:.1f}  (J {100 * g['J-Mean']:.1f}, F {100 * g['F-Mean']:.1f}) against {gt}")
    return g
