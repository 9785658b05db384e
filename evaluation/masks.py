"""How an evaluation writes its masks: the writers of the palette and binary PNGs, and the one-line error of a failed write."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from datasets.video_source import VideoSource
from util.errors import UserError
from util.image_io import mask_palette, save_gray_png, save_palette_png

MaskWriter = Callable[[Path, np.ndarray, VideoSource], None]


def write_palette(path: Path, ids: np.ndarray, video: VideoSource) -> None:
    save_palette_png(path, ids, mask_palette(video.palette_from) if video.palette_from else None)


def write_binary(path: Path, ids: np.ndarray, video: VideoSource) -> None:
    save_gray_png(path, (ids > 0).astype(np.uint8) * 255)


def write_mask(writer: MaskWriter, path: Path, ids: np.ndarray, video: VideoSource) -> None:
    """``writer``; a full disk or a permission error is one line naming the file (nothing is published)."""
    try:
        writer(path, ids, video)
    except OSError as e:
        raise UserError(f"{path}: cannot write ({e.strerror or e}); free disk space or fix the permissions of --output") from None
