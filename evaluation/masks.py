"""How an evaluation writes its masks: a mask format (suffix and writer), the palette and binary PNGs, and the one-line error
of a failed write."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
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


@dataclass(frozen=True)
class MaskFormat:
    """How a run writes its masks: the file suffix and the writer; every place that names a mask file asks it."""

    suffix: str
    write: MaskWriter

    def file_name(self, stem: str) -> str:
        return f"{stem}{self.suffix}"

    def files(self, folder: Path) -> list[Path]:
        """The masks of this format in ``folder``, by name."""
        return sorted(folder.glob(f"*{self.suffix}"))


PALETTE_PNG = MaskFormat(".png", write_palette)  # DAVIS 2017, YouTube-VOS, generic videos: object ids in the DAVIS palette
BINARY_PNG = MaskFormat(".png", write_binary)  # DAVIS 2016: 0 / 255 grayscale
