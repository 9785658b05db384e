"""Resize every image of a folder tree so that its shorter side is N px (default 384).

    python -m scripts.resize_length --in DIR --out DIR [--size 384] [--shrink_only] [--processes 8]

The official STCN script of this name (``scripts/resize_length.py IN OUT``) scales the
images of one flat folder so that the shorter side is exactly 384 px with OpenCV's
``INTER_AREA``. This version keeps that behaviour for photos and extends it:

* the whole tree under ``--in`` is processed and mirrored under ``--out``;
* palette (mode ``P``) PNGs are segmentation masks: they are resized with nearest
  neighbour by PIL, so the palette is kept and only the original ids occur
  (``--nearest`` treats every image as a mask, e.g. for grey-level ``L`` masks);
* ``--shrink_only`` leaves images whose shorter side is already at most N unchanged
  (they are copied), instead of enlarging them as the official script does.

Outputs that already exist are skipped (files are written under a temporary name and
renamed, so a killed run leaves no truncated image). Exit status 2 on bad input.
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import sys
from multiprocessing import Pool
from pathlib import Path

import cv2
import progressbar
from PIL import Image

from util.errors import UserError, exit_on_user_error

DEFAULT_SIZE = 384
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def scaled_size(width: int, height: int, size: int) -> tuple[int, int]:
    """(width, height) with the shorter side ``size`` and the longer one scaled and rounded down."""
    if width <= height:
        return size, max(1, height * size // width)
    return max(1, width * size // height), size


def list_images(root: Path) -> list[Path]:
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


def resize_tree(in_dir: Path, out_dir: Path, size: int = DEFAULT_SIZE, shrink_only: bool = False,
                nearest: bool = False, processes: int = 1) -> int:
    """Resize every image under ``in_dir`` into ``out_dir``; returns the number written (existing ones are skipped)."""
    images = list_images(in_dir)
    if not images:
        raise UserError(f"{in_dir}: no images found (looked for {', '.join(IMAGE_SUFFIXES)})")
    todo = [rel for rel in images if not (out_dir / rel).is_file()]
    print(f"{len(images)} images, {len(images) - len(todo)} already done")
    function = functools.partial(resize_file, in_dir=in_dir, out_dir=out_dir, size=size, shrink_only=shrink_only, nearest=nearest)
    with progressbar.ProgressBar(max_value=max(1, len(todo))) as bar:
        if processes <= 1 or len(todo) <= 1:
            for i, rel in enumerate(todo, 1):
                function(rel)
                bar.update(i)
        else:
            with Pool(processes=processes) as pool:
                for i, _ in enumerate(pool.imap_unordered(function, todo, chunksize=16), 1):
                    bar.update(i)
    return len(todo)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--in", dest="in_dir", type=Path, required=True, help="input folder (searched recursively)")
    parser.add_argument("--out", dest="out_dir", type=Path, required=True, help="output folder (same tree)")
    parser.add_argument("--size", type=int, default=DEFAULT_SIZE, help=f"shorter side in pixels (default {DEFAULT_SIZE})")
    parser.add_argument("--shrink_only", action="store_true", help="copy images whose shorter side is already <= SIZE")
    parser.add_argument("--nearest", action="store_true", help="treat every image as a mask (nearest neighbour)")
    parser.add_argument("--processes", type=int, default=min(8, os.cpu_count() or 1), help="worker processes")
    return parser.parse_args(argv)


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if not args.in_dir.is_dir():
        raise UserError(f"{args.in_dir}: input folder not found; check --in")
    if args.size < 1:
        raise UserError(f"--size {args.size}: must be a positive number of pixels")
    if args.out_dir.resolve().is_relative_to(args.in_dir.resolve()):
        raise UserError(f"{args.out_dir}: --out must not be --in or lie inside it (the outputs would be read as inputs)")
    resize_tree(args.in_dir, args.out_dir, args.size, args.shrink_only, args.nearest, args.processes)
    print("All done.")


if __name__ == "__main__":
    main(sys.argv[1:])
