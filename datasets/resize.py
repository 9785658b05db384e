"""Resizing images so that their shorter side is N px: a YouTube-VOS training folder (480) or any folder tree (384).

As the official script: frames bicubic, annotations nearest neighbour (palette and object
ids kept), the longer side rounded down; complete videos are skipped and every file is
written under a temporary name and renamed. CLI: ``python -m scripts.resize_youtube``.
A tree (``python -m scripts.resize_length``): photos with OpenCV's ``INTER_AREA`` as the official
STCN script, palette masks nearest neighbour; existing outputs are skipped.
"""

from __future__ import annotations

import functools
import os
import shutil
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

import cv2
import progressbar
from PIL import Image

from datasets import layouts
from util.errors import UserError
from util.pool import imap_unordered

FOLDERS = (layouts.FRAMES, layouts.ANNOTATIONS)
DEFAULT_SIZE = 480
TREE_SIZE = 384  # the official STCN resize_length.py


def scaled_size(width: int, height: int, size: int) -> tuple[int, int]:
    """(width, height) with the shorter side ``size`` and the longer one scaled and rounded down."""
    if width <= height:
        return size, max(1, height * size // width)
    return max(1, width * size // height), size


def resize_image(src: Path, dst: Path, size: int, is_mask: bool) -> None:
    """Resize one frame (bicubic) or annotation (nearest, palette kept) and write it atomically."""
    with Image.open(src) as im:
        if is_mask and im.mode not in ("P", "L", "I", "1"):
            im = im.convert("P")
        resample = Image.NEAREST if is_mask else Image.BICUBIC
        out = im.resize(scaled_size(*im.size, size), resample)
        tmp = dst.with_name(f".{dst.name}.tmp{dst.suffix}")
        out.save(tmp)
    os.replace(tmp, dst)


def frames(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def video_done(src: Path, dst: Path) -> bool:
    """A video is done when every input frame has an output of the same name."""
    return dst.is_dir() and set(frames(src)) <= set(frames(dst))


def resize_video(job: tuple[Path, Path], size: int, is_mask: bool) -> None:
    src, dst = job
    dst.mkdir(parents=True, exist_ok=True)
    for name in frames(src):
        resize_image(src / name, dst / name, size, is_mask)


def run_jobs(function: Callable, jobs: list, processes: int, label: str) -> None:
    """Apply ``function`` to every job with a progress bar, in a Pool when ``processes > 1``."""
    widgets = [f"{label} ", progressbar.Counter(), f"/{len(jobs)} ", progressbar.Bar(), " ", progressbar.ETA()]
    with progressbar.ProgressBar(max_value=len(jobs), widgets=widgets, fd=sys.stderr) as bar:  # the current stderr
        if processes <= 1 or len(jobs) <= 1:
            results: Iterable = map(function, jobs)
            for i, _ in enumerate(results, 1):
                bar.update(i)
            return
        for i, _ in enumerate(imap_unordered(function, jobs, processes), 1):
            bar.update(i)


def resize_all(in_dir: str | os.PathLike, out_dir: str | os.PathLike, size: int = DEFAULT_SIZE, processes: int = 8) -> int:
    """Resize ``in_dir/{JPEGImages,Annotations}`` into ``out_dir``; returns the number of videos processed."""
    in_dir, out_dir = Path(in_dir), Path(out_dir)
    present = [f for f in FOLDERS if (in_dir / f).is_dir()]
    if not present:
        raise UserError(f"{in_dir}: no JPEGImages/ or Annotations/ folder; pass the YouTube-VOS train folder (e.g. data/YouTube/train)")
    processed = 0
    for folder in present:
        videos = sorted(p.name for p in (in_dir / folder).iterdir() if p.is_dir())
        jobs = [(in_dir / folder / v, out_dir / folder / v) for v in videos]
        todo = [job for job in jobs if not video_done(*job)]
        print(f"{folder}: {len(videos)} videos, {len(videos) - len(todo)} already done")
        if todo:
            function = functools.partial(resize_video, size=size, is_mask=folder == layouts.ANNOTATIONS)
            run_jobs(function, todo, processes, folder)
        processed += len(todo)
    return processed


# --------------------------------------------------------------------------- any folder tree
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def images_below(root: Path) -> list[Path]:
    """Image files under ``root`` (relative paths, sorted), hidden files excluded."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.lower().endswith(IMAGE_SUFFIXES) and not name.startswith("."):
                found.append(Path(dirpath, name).relative_to(root))
    return found


def _tmp(dst: Path) -> Path:
    return dst.with_name(f".{dst.name}.tmp{dst.suffix}")


def _resize_mask(src: Path, tmp: Path, size: int) -> None:
    with Image.open(src) as im:
        im.resize(scaled_size(*im.size, size), Image.NEAREST).save(tmp)


def _resize_photo(src: Path, tmp: Path, size: int) -> None:
    img = cv2.imread(str(src), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise UserError(f"{src}: cannot read image")
    h, w = img.shape[:2]
    out = cv2.resize(img, scaled_size(w, h, size), interpolation=cv2.INTER_AREA)
    if not cv2.imwrite(str(tmp), out):
        raise UserError(f"{tmp}: cannot write image")


def resize_file(rel: Path, in_dir: Path, out_dir: Path, size: int, shrink_only: bool, nearest: bool) -> None:
    """Resize ``in_dir/rel`` into ``out_dir/rel`` (masks nearest with palette, photos INTER_AREA)."""
    src, dst = in_dir / rel, out_dir / rel
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp(dst)
    with Image.open(src) as im:
        (width, height), mode = im.size, im.mode
    if shrink_only and min(width, height) <= size:
        shutil.copyfile(src, tmp)
    elif nearest or mode == "P":
        _resize_mask(src, tmp, size)
    else:
        _resize_photo(src, tmp, size)
    os.replace(tmp, dst)


def resize_tree(in_dir: Path, out_dir: Path, size: int = TREE_SIZE, shrink_only: bool = False,
                nearest: bool = False, processes: int = 1) -> int:
    """Resize every image under ``in_dir`` into ``out_dir``; returns the number written (existing ones are skipped)."""
    images = images_below(in_dir)
    if not images:
        raise UserError(f"{in_dir}: no images found (looked for {', '.join(IMAGE_SUFFIXES)})")
    todo = [rel for rel in images if not (out_dir / rel).is_file()]
    print(f"{len(images)} images, {len(images) - len(todo)} already done")
    function = functools.partial(resize_file, in_dir=in_dir, out_dir=out_dir, size=size, shrink_only=shrink_only, nearest=nearest)
    with progressbar.ProgressBar(max_value=max(1, len(todo)), fd=sys.stderr) as bar:
        if processes <= 1 or len(todo) <= 1:
            for i, rel in enumerate(todo, 1):
                function(rel)
                bar.update(i)
        else:
            for i, _ in enumerate(imap_unordered(function, todo, processes, chunksize=16), 1):
                bar.update(i)
    return len(todo)
