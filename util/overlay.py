"""Overlay videos and preview GIFs of predicted masks, for a person to look at."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from util.palette import davis_palette

PALETTE = np.frombuffer(davis_palette(), dtype=np.uint8).reshape(256, 3)


def blend(rgb: np.ndarray, ids: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Colour each object over the frame and draw its outline."""
    out = rgb.astype(np.float32)
    colours = PALETTE[ids].astype(np.float32)
    objects = ids > 0
    out[objects] = (1 - alpha) * out[objects] + alpha * colours[objects]
    edges = (ids != np.roll(ids, 1, 0)) | (ids != np.roll(ids, 1, 1))
    out[edges & (objects | np.roll(objects, 1, 0) | np.roll(objects, 1, 1))] = 255
    return out.clip(0, 255).astype(np.uint8)


def write_overlay(
    frames: Iterable[tuple[np.ndarray, np.ndarray]],
    total: int,
    mp4: Path,
    gif: Path,
    fps: float = 24.0,
    gif_width: int = 320,
    gif_frames: int = 48,
) -> int:
    """Write ``mp4`` (all frames) and a small ``gif`` (about ``gif_frames`` of the ``total``, ``gif_width`` wide).

    ``frames`` yields (RGB frame, label map) pairs at the same size; only the GIF's
    frames are kept in memory. Returns the number of frames written.
    """
    step = max(1, -(-total // gif_frames))
    writer = None
    previews: list[Image.Image] = []
    count = 0
    for rgb, ids in frames:
        image = blend(rgb, ids)
        if writer is None:
            h, w = image.shape[:2]
            writer = cv2.VideoWriter(str(mp4), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
            if not writer.isOpened():
                raise OSError(f"{mp4}: OpenCV cannot write mp4 here")
        writer.write(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        if count % step == 0:
            previews.append(_thumbnail(image, gif_width))
        count += 1
    if writer is not None:
        writer.release()
    if previews:
        previews[0].save(gif, save_all=True, append_images=previews[1:], duration=int(1000 * step / fps), loop=0)
    return count


def _thumbnail(image: np.ndarray, width: int) -> Image.Image:
    h, w = image.shape[:2]
    if w > width:
        image = cv2.resize(image, (width, max(1, round(h * width / w))), interpolation=cv2.INTER_AREA)
    return Image.fromarray(image)
