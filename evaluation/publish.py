"""What a run leaves beside its masks: the output folder checked, the videos still to do, the submission zip and the summary."""

from __future__ import annotations

import os
import zipfile
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Optional

from datasets.video_source import VideoSource
from evaluation.masks import PALETTE_PNG
from evaluation.propagation import RunStats
from util import write_gate
from util.output_safety import (
    archive_path,
    check_archive_replaceable,
    check_complete,
    check_plain_name,
    check_video_outputs,
    is_complete,
    zip_comment,
)
from util.profiling import peak_rss_mib


def prepare_output(path: str | os.PathLike) -> Path:
    return write_gate.make_folder(path, "--output")


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
    videos = list(videos)
    zip_path = zip_path or archive_path(output)
    check_archive_replaceable(zip_path, output)
    check_complete(output, [v.name for v in videos])  # never the masks of another input
    with write_gate.writing(zip_path, "--output") as tmp, zipfile.ZipFile(tmp, "x", zipfile.ZIP_DEFLATED) as archive:
        archive.comment = zip_comment(output)
        for video in videos:
            for png in PALETTE_PNG.files(output / video.name):
                if video.submission_stems is None or png.stem in video.submission_stems:
                    add_to_zip(archive, png, f"Annotations/{video.name}/{png.name}")
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
    """``--stats_json`` may be written (the gate's rule: not an input, not a file of the user's)."""
    write_gate.check_target(path, "--stats_json")


def write_stats_json(result: dict[str, object], path: Path) -> None:
    """A run's summary as JSON, through the gate."""
    write_gate.write_json(path, result, "--stats_json")
