"""Reading frames and masks, writing palette PNGs; every failure names the file."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from util.errors import UserError
from util.palette import davis_palette

IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")
LOSSY_EXTENSIONS = (".jpg", ".jpeg")


def _open(path: Path) -> Image.Image:
    try:
        img = Image.open(path)
        img.load()
        return img
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise UserError(f"{path}: cannot decode image ({e}); replace or re-extract this file") from None


def load_rgb(path: str | os.PathLike) -> np.ndarray:
    """An image as an (H, W, 3) uint8 RGB array."""
    return np.array(_open(Path(path)).convert("RGB"))


def normalize_image(rgb: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 -> (3, H, W) float32, ImageNet-normalised (ToTensor + Normalize)."""
    x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float().div(255)
    return (x - IMAGENET_MEAN) / IMAGENET_STD


def load_mask(path: str | os.PathLike) -> np.ndarray:
    """A mask as an (H, W) uint8 array of object ids.

    Palette ('P') and grayscale PNGs give their values; 16- and 32-bit masks too when
    every id fits 0..255 (otherwise the id is named). An RGB mask is accepted when every
    colour is a DAVIS palette colour (it is mapped to the palette index). Lossy (JPEG)
    masks are refused: compression noise would become objects.
    """
    path = Path(path)
    if path.suffix.lower() in LOSSY_EXTENSIONS:
        raise UserError(f"{path}: JPEG masks are lossy (compression noise would become objects); save the masks as PNG")
    img = _open(path)
    if img.mode in ("P", "L"):
        return np.array(img, dtype=np.uint8)
    if img.mode == "1":
        return np.array(img).astype(np.uint8)
    if img.mode.startswith(("I", "F")):
        return _wide_to_ids(np.array(img), path)
    return _rgb_to_ids(np.asarray(img.convert("RGB")), path)


def _wide_to_ids(values: np.ndarray, path: Path) -> np.ndarray:
    """A 16/32-bit mask as uint8 ids: exact when every id fits 0..255, else refused naming the id."""
    bad = values[(values < 0) | (values > 255) | (values != np.round(values))]
    if bad.size:
        raise UserError(f"{path}: mask id {bad.flat[0]:g} does not fit 0..255 (255 = void); renumber the objects 1..254")
    return values.astype(np.uint8)


def mask_mode(path: str | os.PathLike) -> str:
    """The PIL mode of a mask file ('P', 'L', ...); '' when unreadable."""
    try:
        with Image.open(path) as img:
            return img.mode
    except (OSError, UnidentifiedImageError):
        return ""


def _rgb_to_ids(rgb: np.ndarray, path: Path) -> np.ndarray:
    palette = np.frombuffer(davis_palette(), dtype=np.uint8).reshape(256, 3).astype(np.int64)
    codes = (rgb[..., 0].astype(np.int64) << 16) | (rgb[..., 1].astype(np.int64) << 8) | rgb[..., 2]
    lookup = {int(c): i for i, c in reversed(list(enumerate((palette[:, 0] << 16) | (palette[:, 1] << 8) | palette[:, 2])))}
    uniques, inverse = np.unique(codes, return_inverse=True)
    ids = []
    for c in uniques:
        if int(c) not in lookup:
            colour = ((int(c) >> 16) & 255, (int(c) >> 8) & 255, int(c) & 255)
            raise UserError(f"{path}: RGB mask colour {colour} is not a DAVIS palette colour; save masks as palette PNGs (mode 'P')")
        ids.append(lookup[int(c)])
    return np.asarray(ids, dtype=np.uint8)[inverse].reshape(codes.shape)


@functools.lru_cache(maxsize=64)
def mask_palette(path: str | os.PathLike) -> bytes:
    """The palette of a 'P' mask, or the DAVIS palette for other masks (read once per file)."""
    try:
        with Image.open(path) as img:
            pal = img.getpalette() if img.mode == "P" else None
    except (OSError, UnidentifiedImageError):
        pal = None
    if not pal:
        return davis_palette()
    return bytes(pal[:768]).ljust(768, b"\0")


def save_palette_png(path: str | os.PathLike, ids: np.ndarray, palette: Optional[bytes] = None) -> None:
    img = Image.fromarray(np.ascontiguousarray(ids, dtype=np.uint8))
    img.putpalette(palette if palette is not None else davis_palette())
    img.save(path)


def save_gray_png(path: str | os.PathLike, values: np.ndarray) -> None:
    Image.fromarray(np.ascontiguousarray(values, dtype=np.uint8)).save(path)


def check_unique_stems(paths: list[Path]) -> list[Path]:
    """``paths`` unless two share a name stem (``00001.jpg`` beside ``00001.png``: one output each would collide)."""
    seen: dict[str, Path] = {}
    for path in paths:
        if path.stem in seen:
            raise UserError(f"{seen[path.stem]} and {path}: two images share the name {path.stem}; keep one of them")
        seen[path.stem] = path
    return paths


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Image files of a folder, sorted by name."""
    folder = Path(folder)
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
