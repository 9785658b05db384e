"""DAVIS 2016/2017 evaluation sequences (the official folder layout, ``datasets/layouts.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from datasets import layouts
from datasets.video_source import ImageFolderFrames, VideoSource, check_sequence_folder
from util.errors import UserError


def read_sequence_list(path: Path) -> list[str]:
    if not path.is_file():
        raise UserError(f"{path}: sequence list not found; check --davis (it should contain ImageSets/)")
    names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if not names:
        raise UserError(f"{path}: sequence list is empty")
    return names


def davis_sequences(
    root: str | Path, imset: str | Path, resolution: str = layouts.RESOLUTION, single_object: bool = False,
    max_pixels: Optional[int] = None,
) -> list[VideoSource]:
    """Sequences of a DAVIS split.

    ``root`` holds ``JPEGImages/<res>`` and ``Annotations/<res>``; ``imset`` is the
    sequence list (relative to ``root/ImageSets`` unless absolute). Outputs are named
    ``00000.png``… at the frames' size (that of the annotations, which is checked).
    ``max_pixels``: the largest frame, checked from each header (None: the default limit).
    """
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"{root}: DAVIS folder not found; pass the dataset root with --davis")
    names = read_sequence_list(root / layouts.IMAGE_SETS / imset)
    videos = []
    for name in names:
        frames = check_sequence_folder(layouts.davis_frames(root, name, resolution))
        first = layouts.davis_annotations(root, name, resolution) / "00000.png"
        if not first.is_file():
            raise UserError(f"{first}: first-frame annotation not found; every sequence needs 00000.png")
        videos.append(
            VideoSource(
                name=name,
                frames=ImageFolderFrames(frames, max_pixels),
                annotation_files={0: first},
                single_object=single_object,
                palette_from=first,
                numbered_outputs=True,
                max_pixels=max_pixels,
            )
        )
    return videos


def davis2017_videos(davis: str | Path, split: str, max_pixels: Optional[int] = None) -> list[VideoSource]:
    """DAVIS 2017 ``val`` or ``testdev`` under ``davis`` (``data/DAVIS/2017``)."""
    root = layouts.davis_folder(davis, split)
    if not root.is_dir():
        raise UserError(f"{root}: DAVIS 2017 {split} folder not found; --davis should point at DAVIS/2017")
    return davis_sequences(root, layouts.image_set_name("2017", split), max_pixels=max_pixels)


def davis2016_videos(davis: str | Path, max_pixels: Optional[int] = None) -> list[VideoSource]:
    """DAVIS 2016 val (one object) under ``davis`` (``data/DAVIS/2016``); as in the official
    code, the sequence list lives in the 2017 trainval folder beside it."""
    return davis_sequences(davis, layouts.davis2016_image_set(davis).resolve(), single_object=True, max_pixels=max_pixels)
