"""Overlay videos and preview GIFs of predicted masks, for a person to look at.

Objects get saturated colours that stay distinct whatever the frame's own colours
(a half-transparent tint alone mixes with the object underneath: red over orange reads
as brown), drawn as a light tint plus a solid two-pixel outline in the object's colour,
so a swap of two objects' identities shows as swapped outline colours. With ground
truth, each frame is shown as ground truth | prediction.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Optional, Union

import cv2
import numpy as np
from PIL import Image

from util.write_gate import writing

# Saturated, mutually distinct colours (RGB), object k gets OBJECT_COLOURS[(k - 1) % len].
OBJECT_COLOURS = np.array(
    [
        (255, 0, 255),  # magenta
        (255, 235, 0),  # yellow
        (0, 120, 255),  # blue
        (0, 255, 0),  # green
        (255, 0, 0),  # red
        (0, 255, 255),  # cyan
        (255, 128, 0),  # orange
        (150, 0, 255),  # violet
    ],
    dtype=np.uint8,
)
_RING = np.ones((5, 5), np.uint8)
# Codec by file suffix: mp4 (MPEG-4 Part 2) for players; .webm is VP8, which web browsers play.
VIDEO_CODECS = {".mp4": "mp4v", ".webm": "VP80"}

OverlayItem = Union[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]]


def object_colour(label: int) -> np.ndarray:
    return OBJECT_COLOURS[(int(label) - 1) % len(OBJECT_COLOURS)]


def blend(rgb: np.ndarray, ids: np.ndarray, alpha: float = 0.4) -> np.ndarray:
    """Tint each object over the frame and draw a solid outline (about 2 px each side) in its colour."""
    out = rgb.astype(np.float32)
    for label in np.unique(ids):
        if label == 0 or label == 255:  # background, void
            continue
        mask = (ids == label).astype(np.uint8)
        colour = object_colour(label).astype(np.float32)
        inside = mask.astype(bool)
        out[inside] = (1 - alpha) * out[inside] + alpha * colour
        ring = (cv2.dilate(mask, _RING) > 0) & ~(cv2.erode(mask, _RING) > 0)
        out[ring] = colour
    return out.clip(0, 255).astype(np.uint8)


def _caption(image: np.ndarray, text: str) -> np.ndarray:
    out = image.copy()
    scale = max(0.4, image.shape[1] / 900)
    origin = (6, int(18 * scale / 0.5))
    cv2.putText(out, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(out, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def compose(rgb: np.ndarray, ids: np.ndarray, gt: Optional[np.ndarray] = None) -> np.ndarray:
    """The overlay of one frame; with ``gt``, ground truth | prediction side by side, captioned."""
    prediction = blend(rgb, ids)
    if gt is None:
        return prediction
    gap = np.full((rgb.shape[0], 4, 3), 255, np.uint8)
    return np.concatenate([_caption(blend(rgb, gt), "ground truth"), gap, _caption(prediction, "prediction")], axis=1)


def write_overlay(
    frames: Iterable[OverlayItem],
    total: int,
    mp4: Path,
    gif: Path,
    fps: float = 24.0,
    gif_width: int = 320,
    gif_frames: int = 48,
) -> int:
    """Write ``mp4`` (all frames) and a small ``gif`` (about ``gif_frames`` of the ``total``, ``gif_width`` wide per panel).

    The video's codec follows its suffix (:data:`VIDEO_CODECS`): ``.webm`` is VP8, which web browsers play.
    Both files go through the write gate (``util/write_gate``): neither replaces a file of the user's.

    ``frames`` yields (RGB frame, label map[, ground-truth label map or None]) at the same
    size; only the GIF's frames are kept in memory. Returns the number of frames written.
    """
    step = max(1, -(-total // gif_frames))
    writer = None
    previews: list[Image.Image] = []
    count = 0
    with writing(mp4, "--output") as mp4_tmp, writing(gif, "--output") as gif_tmp:  # both, or neither
        for item in frames:
            image = compose(*item)
            if writer is None:
                h, w = image.shape[:2]
                codec = VIDEO_CODECS.get(mp4.suffix.lower(), "mp4v")
                writer = cv2.VideoWriter(str(mp4_tmp), cv2.VideoWriter_fourcc(*codec), fps, (w, h))
                if not writer.isOpened():
                    raise OSError(f"{mp4}: OpenCV cannot write {codec} video here")
            writer.write(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            if count % step == 0:
                panels = 2 if len(item) > 2 and item[2] is not None else 1
                previews.append(_thumbnail(image, gif_width * panels))
            count += 1
        if writer is not None:
            writer.release()
        if previews:
            previews[0].save(gif_tmp, save_all=True, append_images=previews[1:], duration=int(1000 * step / fps), loop=0)
    return count


def _thumbnail(image: np.ndarray, width: int) -> Image.Image:
    h, w = image.shape[:2]
    if w > width:
        image = cv2.resize(image, (width, max(1, round(h * width / w))), interpolation=cv2.INTER_AREA)
    return Image.fromarray(image)
