"""What a run leaves beside its masks: the output folder checked, the videos still to do, the submission zip and the summary."""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Optional

from datasets.video_source import VideoSource
from evaluation.masks import PALETTE_PNG
from evaluation.propagation import RunStats
from util.atomic import write_text_atomic
from util.errors import UserError
from util.output_safety import (
    archive_path,
    check_archive_replaceable,
    check_plain_name,
    check_video_outputs,
    is_complete,
    zip_comment,
)
from util.profiling import peak_rss_mib


def prepare_output(path: str | os.PathLike) -> Path:
    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write_test.", dir=out)  # a fresh name: no file of the user's is touched
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise UserError(f"{out}: output folder cannot be written ({e.strerror}); choose another --output") from None
    return out


def pending_videos(output: Path, videos: list[VideoSource], overwrite: bool, announce: bool = True) -> list[VideoSource]:
    """The videos still to do (all with ``overwrite``), once every existing output of theirs is known to be this project's."""
    check_video_outputs(output, [check_plain_name(v.name, "video name") for v in videos])
    todo = [v for v in videos if overwrite or not is_complete(output, v.name)]
    if announce and len(todo) < len(videos):
        print(f"skipping {len(videos) - len(todo)} complete video(s) already in {output} (--overwrite redoes them)")
    return todo


ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # the earliest date a zip can hold: members carry no run-specific time


def add_to_zip(archive: zipfile.ZipFile, path: Path, name: str) -> None:
    info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    archive.writestr(info, path.read_bytes())


def write_submission_zip(output: Path, videos: Iterable[VideoSource], zip_path: Optional[Path] = None) -> Path:
    """Zip ``Annotations/<video>/<frame>.png`` for the evaluation servers.

    Only the frames a server scores are included (``VideoSource.submission_stems``).
    The archive is ``<output>.zip`` (the folder's full name); an existing archive is
    replaced only when it was written from the same folder by this project. The same
    masks give the same bytes (fixed member dates), however many processes wrote them.
    """
    zip_path = zip_path or archive_path(output)
    check_archive_replaceable(zip_path, output)
    tmp = zip_path.with_name(f".{zip_path.name}.{os.getpid()}.tmp")
    try:
        with zipfile.ZipFile(tmp, "x", zipfile.ZIP_DEFLATED) as archive:  # "x": never over an existing file
            archive.comment = zip_comment(output)
            for video in videos:
                for png in PALETTE_PNG.files(output / video.name):
                    if video.submission_stems is None or png.stem in video.submission_stems:
                        add_to_zip(archive, png, f"Annotations/{video.name}/{png.name}")
        os.replace(tmp, zip_path)
    except FileExistsError:
        raise UserError(f"{tmp}: exists; move it and rerun") from None
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise UserError(f"{zip_path}: cannot write the archive ({e.strerror or e}); free disk space or choose another --output") from None
    return zip_path


def print_summary(stats: RunStats, output: Path) -> None:
    print(f"Total processing time: {stats.seconds:.2f} s")
    print(f"Total processed frames: {stats.frames} ({stats.videos} videos)")
    print(f"FPS: {stats.fps:.3f}")
    if stats.compile_seconds > 0:
        print(f"Compile time: {stats.compile_seconds:.2f} s (--compile; not in the time and FPS above)")
    print(f"Peak memory frames: {stats.peak_memory_frames}")
    print(f"Peak RSS: {peak_rss_mib():.0f} MiB")
    print(f"Masks written to {output}")


def summary(stats: RunStats, output: Path) -> dict[str, object]:
    """What ``print_summary`` prints, as data."""
    return {
        "videos": stats.videos,
        "frames": stats.frames,
        "seconds": stats.seconds,
        "fps": stats.fps,
        "compile_seconds": stats.compile_seconds,
        "peak_memory_frames": stats.peak_memory_frames,
        "peak_rss_mib": peak_rss_mib(),
        "output": str(output),
        "per_video": {name: asdict(v) for name, v in stats.per_video.items()},
    }


def check_stats_json(path: Path) -> None:
    """``--stats_json`` names a new or JSON file (never a folder, a mask or a checkpoint)."""
    if path.is_dir():
        raise UserError(f"{path}: is a folder; --stats_json takes a file name, e.g. {path / 'stats.json'}")
    if path.exists() and path.suffix.lower() != ".json":
        raise UserError(f"{path}: exists and is not a .json file; --stats_json would replace it, choose another name")


def write_stats_json(result: dict[str, object], path: Path) -> None:
    """A run's summary as JSON, written under a temporary name and renamed."""
    try:
        write_text_atomic(path, json.dumps(result, indent=1) + "\n")
    except OSError as e:
        raise UserError(f"{path}: cannot write ({e.strerror or e}); choose another --stats_json") from None
