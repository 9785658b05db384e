"""Reading frames and masks, writing palette PNGs; every failure names the file."""

from __future__ import annotations

import functools
import os
import struct
import warnings
from pathlib import Path
from typing import BinaryIO, Optional, Union

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from util.errors import UserError
from util.palette import davis_palette

IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")
LOSSY_EXTENSIONS = (".jpg", ".jpeg")
DEFAULT_MAX_PIXELS = 40_000_000  # pixels per frame: admits 8K (7680x4320 = 33.2 megapixels)
EXIF_ORIENTATION = 0x0112
SIXTEEN_BIT_GRAY = ("I;16", "I;16L", "I;16B", "I;16N")
# Modes whose conversion to 8-bit RGB keeps what the image shows (alpha dropped); 16-bit grey is scaled separately.
RGB_MODES = ("1", "L", "P", "RGB", "RGBA", "RGBX", "RGBa", "LA", "La", "PA", "CMYK", "YCbCr")
ImageSource = Union[str, os.PathLike, BinaryIO]


def check_pixels(what: object, width: int, height: int, max_pixels: Optional[int]) -> None:
    """Refuse a frame of more than ``max_pixels`` pixels (``None``: :data:`DEFAULT_MAX_PIXELS`, the limit of a command
    without ``--max_pixels``), from its header, before anything is decoded."""
    limit = DEFAULT_MAX_PIXELS if max_pixels is None else max_pixels
    if width * height > limit:
        fix = f"downscale it or raise --max_pixels (now {limit})" if max_pixels is not None else "downscale it"
        raise UserError(f"{what}: {width}x{height} is {width * height / 1e6:.1f} megapixels, more than the limit of "
                        f"{limit / 1e6:g} megapixels per frame; {fix}")


def open_header(source: ImageSource) -> Image.Image:
    """The image with only its header read (nothing decoded), whatever Pillow's own pixel limit says: the
    project checks its own (:func:`check_pixels`), in one line, instead of Pillow's warning or traceback."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            return Image.open(source)
        except Image.DecompressionBombError:
            return _header_past_pillow_limit(source)


def _header_past_pillow_limit(source: ImageSource) -> Image.Image:
    """What ``Image.open`` finds, without its decompression-bomb check (only the header is read)."""
    owned = isinstance(source, (str, os.PathLike))
    fp = open(source, "rb") if owned else source  # handed to the image, which closes it
    fp.seek(0)
    prefix = fp.read(16)
    for name in Image.ID:
        factory, accept = Image.OPEN[name]
        if accept is None or accept(prefix) is True:
            fp.seek(0)
            try:
                img = factory(fp, os.fspath(source) if owned else "")
            except (SyntaxError, IndexError, TypeError, struct.error):
                continue
            img._exclusive_fp = owned
            return img
    if owned:
        fp.close()
    raise UnidentifiedImageError("cannot identify image file")


def exif_orientation(img: Image.Image) -> int:
    """The EXIF Orientation tag (1: upright) from what the header holds, without decoding the pixels."""
    raw = img.info.get("exif")
    if not raw:
        return 1
    exif = Image.Exif()
    try:
        exif.load(raw)
    except (ValueError, OSError, SyntaxError, struct.error):
        return 1  # unreadable EXIF: Pillow's exif_transpose would not turn the image either
    value = exif.get(EXIF_ORIENTATION, 1)
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def upright_size(img: Image.Image) -> tuple[int, int]:
    """(width, height) once the EXIF orientation is applied."""
    w, h = img.size
    return (h, w) if exif_orientation(img) in (5, 6, 7, 8) else (w, h)


def header_size(path: str | os.PathLike, max_pixels: Optional[int] = None) -> tuple[int, int]:
    """(height, width) of a frame, upright, from its header only; refused past ``max_pixels`` (:func:`check_pixels`)
    or when its mode cannot be read faithfully (:func:`check_frame_mode`)."""
    path = Path(path)
    try:
        with open_header(path) as img:
            check_pixels(path, *img.size, max_pixels)
            check_frame_mode(img, path)
            w, h = upright_size(img)
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise UserError(f"{path}: cannot decode image ({e}); replace or re-extract this file") from None
    return h, w


def open_image(path: str | os.PathLike, max_pixels: Optional[int] = None, upright: bool = True) -> Image.Image:
    """The decoded image once its header has passed :func:`check_pixels`; ``upright``: its EXIF orientation applied
    (Pillow's ``exif_transpose``), as for every frame and mask this project reads, except the static training sets'
    (read as stored, as the official code reads them: their masks are drawn on the stored pixels)."""
    path = Path(path)
    try:
        img = open_header(path)
        try:
            check_pixels(path, *img.size, max_pixels)
            img.load()
            if upright:
                ImageOps.exif_transpose(img, in_place=True)
        except BaseException:
            img.close()
            raise
        return img
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise UserError(f"{path}: cannot decode image ({e}); replace or re-extract this file") from None


def load_rgb(path: str | os.PathLike, max_pixels: Optional[int] = None, upright: bool = True) -> np.ndarray:
    """An image as an (H, W, 3) uint8 RGB array (``upright``: see :func:`open_image`); 16-bit grey is scaled to 8 bits
    (its high byte, as Pillow reads 16-bit colour); a mode that 8-bit RGB cannot show faithfully (32-bit integer,
    float) is refused."""
    path = Path(path)
    with open_image(path, max_pixels, upright) as img:
        return rgb_array(img, path)


def check_frame_mode(img: Image.Image, path: Path) -> None:
    if img.mode not in RGB_MODES and img.mode not in SIXTEEN_BIT_GRAY:
        raise UserError(f"{path}: image mode {img.mode} (32-bit integer or float) cannot be read as 8-bit RGB faithfully; "
                        "save the frames as 8- or 16-bit PNG or as JPEG")


def rgb_array(img: Image.Image, path: Path) -> np.ndarray:
    """The decoded frame as (H, W, 3) uint8: 16-bit grey by its high byte, other modes by Pillow's conversion."""
    check_frame_mode(img, path)
    if img.mode in SIXTEEN_BIT_GRAY:
        grey = (np.asarray(img).astype(np.uint16) >> 8).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    return np.array(img if img.mode == "RGB" else img.convert("RGB"))


def normalize_image(rgb: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 -> (3, H, W) float32, ImageNet-normalised (ToTensor + Normalize).

    The same operations in the same order, in place: one float copy of the frame, not
    three (an 8K frame's is 400 MB).
    """
    x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float()
    return x.div_(255).sub_(IMAGENET_MEAN).div_(IMAGENET_STD)


def load_mask(path: str | os.PathLike, max_pixels: Optional[int] = None) -> np.ndarray:
    """A mask as an (H, W) uint8 array of object ids, upright (its EXIF orientation applied, as for frames).

    Palette ('P') and grayscale PNGs give their values; 16- and 32-bit masks too when
    every id fits 0..255 (otherwise the id is named). An RGB mask is accepted when every
    colour is a DAVIS palette colour (it is mapped to the palette index). Lossy (JPEG)
    masks are refused: compression noise would become objects.
    """
    path = Path(path)
    if path.suffix.lower() in LOSSY_EXTENSIONS:
        raise UserError(f"{path}: JPEG masks are lossy (compression noise would become objects); save the masks as PNG")
    with open_image(path, max_pixels) as img:
        return _mask_ids(img, path)


def _mask_ids(img: Image.Image, path: Path) -> np.ndarray:
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
        with open_header(path) as img:
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
        with open_header(path) as img:
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
