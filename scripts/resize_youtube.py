"""Resize the YouTube-VOS training set so that the shorter side is 480 px (as STCN/QDMN train on).

    python scripts/resize_youtube.py data/YouTube/train data/YouTube/train_480p [--size 480] [--processes 8]

IN_DIR holds ``JPEGImages/<video>/*.jpg`` and ``Annotations/<video>/*.png``; the same tree
is written under OUT_DIR. As in the official script, every frame is scaled so that its
shorter side is exactly ``--size`` px (the longer side is rounded down): frames with
bicubic interpolation, annotations with nearest neighbour, so that they keep their palette
and hold only the original object ids. Videos whose output is complete are skipped, so an
interrupted run can simply be started again. Each file is written under a temporary name
and renamed, so a killed run never leaves a truncated frame that would count as done.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from collections.abc import Callable, Iterable
from multiprocessing import Pool
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import progressbar  # noqa: E402
from PIL import Image  # noqa: E402

from util.errors import UserError, exit_on_user_error  # noqa: E402

FOLDERS = ("JPEGImages", "Annotations")
DEFAULT_SIZE = 480


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
    with progressbar.ProgressBar(max_value=len(jobs), widgets=widgets) as bar:
        if processes <= 1 or len(jobs) <= 1:
            results: Iterable = map(function, jobs)
            for i, _ in enumerate(results, 1):
                bar.update(i)
            return
        with Pool(processes=processes) as pool:
            for i, _ in enumerate(pool.imap_unordered(function, jobs), 1):
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
            function = functools.partial(resize_video, size=size, is_mask=folder == "Annotations")
            run_jobs(function, todo, processes, folder)
        processed += len(todo)
    return processed


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("in_dir", type=Path, help="YouTube-VOS train folder (holds JPEGImages/ and Annotations/)")
    parser.add_argument("out_dir", type=Path, help="output folder, e.g. data/YouTube/train_480p")
    parser.add_argument("--size", type=int, default=DEFAULT_SIZE, help="shorter side in pixels (default 480)")
    parser.add_argument("--processes", type=int, default=min(8, os.cpu_count() or 1), help="worker processes")
    return parser.parse_args(argv)


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if not args.in_dir.is_dir():
        raise UserError(f"{args.in_dir}: input folder not found; pass the YouTube-VOS train folder (e.g. data/YouTube/train)")
    if args.size < 1:
        raise UserError(f"--size {args.size}: must be a positive number of pixels")
    if args.out_dir.resolve() == args.in_dir.resolve():
        raise UserError(f"{args.out_dir}: OUT_DIR must differ from IN_DIR (the originals would be overwritten)")
    resize_all(args.in_dir, args.out_dir, args.size, args.processes)
    print("All done.")


if __name__ == "__main__":
    main(sys.argv[1:])
