"""Encoding and writing frames, masks and lists."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from datasets.synthetic.constants import JPEG_QUALITY
from datasets.synthetic.video import _check_frame_size, _check_positive
from util.palette import davis_palette

# --------------------------------------------------------------------------- #
# File writing helpers
# --------------------------------------------------------------------------- #


def _video_rng(seed: int, tag: int, *index: int) -> np.random.Generator:
    return np.random.default_rng([seed, tag, *index])


def _jpeg_bytes(image: np.ndarray) -> bytes:
    ok, encoded = cv2.imencode(
        ".jpg",
        cv2.cvtColor(image, cv2.COLOR_RGB2BGR),
        [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY],
    )
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return encoded.tobytes()


def _write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _write_jpeg(path: Path, image: np.ndarray) -> None:
    _write_bytes(path, _jpeg_bytes(image))


def _write_palette_png(path: Path, mask: np.ndarray) -> None:
    """Save an id mask as a 'P' mode PNG with the DAVIS palette."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(np.ascontiguousarray(mask, dtype=np.uint8))
    image.putpalette(davis_palette())
    image.save(path)


def encode_jpeg(image: np.ndarray) -> bytes:
    """JPEG bytes of an RGB uint8 image, as every layout here writes them."""
    return _jpeg_bytes(image)


def write_palette_png(path: str | Path, mask: np.ndarray) -> None:
    """Save an id mask as a DAVIS-palette 'P' PNG, creating parent folders."""
    _write_palette_png(Path(path), mask)


def _write_binary_png(path: Path, mask: np.ndarray) -> None:
    """Save a mask as an 'L' mode PNG with values 0 (background) and 255."""
    path.parent.mkdir(parents=True, exist_ok=True)
    binary = np.where(mask > 0, 255, 0).astype(np.uint8)
    Image.fromarray(binary).save(path)


def _write_list(path: Path, names: Sequence[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{name}\n" for name in names))


def _frame_name(index: int) -> str:
    return f"{index:05d}"


def _check_seed(seed: int) -> None:
    if int(seed) < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")


def _check_common(seed: int, height: int, width: int, **positive: int) -> None:
    _check_seed(seed)
    _check_positive(**positive)
    _check_frame_size(height, width)
