"""The web page's checks of what a visitor uploads (``app_session.py`` calls them).

Limits (upload size, frames, pixels per frame) come from ``app.py``'s flags and are checked
before anything is decoded: a zip's frames from its members' headers, a video's frame size from
its header. A zip's member names are never used as paths. Each refusal is one
:class:`util.errors.UserError` line naming the fix.
"""

from __future__ import annotations

import re
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from datasets.video_source import VOID_LABEL, open_capture
from util.errors import UserError
from util.image_io import DEFAULT_MAX_PIXELS, open_header

FRAME_SUFFIXES = {".jpg": ".jpg", ".jpeg": ".jpg", ".png": ".png"}
ZIP_MAGIC = b"PK\x03\x04"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class Limits:
    max_upload_mb: float = 200.0
    max_frames: int = 300
    max_pixels: int = DEFAULT_MAX_PIXELS

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)


def natural_key(name: str) -> list:
    """``frame2`` before ``frame10``."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def is_frame_member(info: zipfile.ZipInfo) -> bool:
    path = Path(info.filename)
    hidden = path.name.startswith(".") or "__MACOSX" in path.parts  # macOS resource forks, dot files
    return not info.is_dir() and not hidden and path.suffix.lower() in FRAME_SUFFIXES


def extract_frames(archive: Path, dest: Path, limits: Limits) -> int:
    """The zip's .jpg/.png frames, in natural name order, written as ``dest/00000.jpg``…; member names are never paths."""
    try:
        with zipfile.ZipFile(archive) as zf:
            members = sorted((m for m in zf.infolist() if is_frame_member(m)), key=lambda m: natural_key(m.filename))
            if not members:
                raise UserError("the zip holds no .jpg or .png frames; zip the frames of one video")
            check_frame_count(len(members), limits)
            if sum(m.file_size for m in members) > 4 * limits.max_upload_bytes:
                raise UserError(f"the zip's frames unpack to more than {4 * limits.max_upload_mb:g} MB; upload fewer or smaller frames")
            for member in members:
                check_member_header(zf, member, limits)
            dest.mkdir(parents=True)
            for index, member in enumerate(members):
                with zf.open(member) as src, open(dest / f"{index:05d}{FRAME_SUFFIXES[Path(member.filename).suffix.lower()]}", "xb") as dst:
                    shutil.copyfileobj(src, dst)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError) as e:
        raise UserError(f"the zip cannot be read ({e}); zip the frames again") from None
    return len(members)


def check_member_header(zf: zipfile.ZipFile, member: zipfile.ZipInfo, limits: Limits) -> None:
    """A zip member's image header (only its first bytes are unpacked): an image, within the pixel limit."""
    with zf.open(member) as stream:
        try:
            with open_header(stream) as img:
                width, height = img.size
        except (OSError, SyntaxError, ValueError) as e:
            raise UserError(f"{member.filename} in the zip is not a readable image ({e}); zip the frames again") from None
    check_frame_pixels(f"{member.filename} in the zip", width, height, limits)


def check_video_header(path: Path, limits: Limits) -> None:
    """The video's frame size from its header (nothing decoded), within the pixel limit."""
    capture = open_capture(path)
    try:
        width, height = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    finally:
        capture.release()
    check_frame_pixels("the video", width, height, limits)


def check_frame_pixels(what: str, width: int, height: int, limits: Limits) -> None:
    if width * height > limits.max_pixels:
        raise UserError(f"{what} has {width}x{height} frames ({width * height / 1e6:.1f} megapixels), more than this page's limit "
                        f"of {limits.max_pixels / 1e6:g} megapixels per frame (app.py --max_pixels); upload smaller frames")


def check_frame_count(count: int, limits: Limits) -> None:
    if count > limits.max_frames:
        raise UserError(f"the video has {count} frames, more than this page's limit of {limits.max_frames} "
                        "(app.py --max_frames); upload a shorter clip")


def check_upload_size(path: Path, limits: Limits, what: str) -> None:
    size = path.stat().st_size
    if size > limits.max_upload_bytes:
        raise UserError(f"the {what} is {size / 2**20:.1f} MB, more than this page's limit of {limits.max_upload_mb:g} MB "
                        "(app.py --max_upload_mb); upload a smaller file")


def check_mask_upload(path: Path, limits: Limits) -> None:
    """An uploaded first-frame mask: within the upload limit, and a PNG (its first bytes)."""
    check_upload_size(path, limits, "mask")
    with open(path, "rb") as f:
        if f.read(8) != PNG_MAGIC:
            raise UserError("the mask is not a PNG; upload a palette or grayscale PNG the size of the first frame")


def check_objects(ids: np.ndarray) -> None:
    if not any(v not in (0, VOID_LABEL) for v in np.unique(ids).tolist()):
        raise UserError("the first-frame mask holds no object; paint at least one object or upload a PNG with non-zero labels")
