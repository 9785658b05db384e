"""YouTube-VOS evaluation videos (2018 or 2019 layout, ``datasets/layouts.py``).

Objects first appear on different frames (each is annotated once, on that frame), ids
need not be consecutive, frames are resized to 480 px on the shorter side, and outputs
start at the first annotated frame and are named like the frames. Frames are read from
``all_frames`` (every frame) unless ``sparse`` (every 5th, ``<split>/JPEGImages``); the
frames a server scores are those of ``<split>/JPEGImages``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from datasets import layouts
from datasets.video_source import ImageFolderFrames, VideoSource, check_sequence_folder
from util.errors import UserError
from util.image_io import list_images

INFERENCE_SHORT_SIDE = 480


def youtube_videos(
    root: str | Path, split: str = "valid", sparse: bool = False, size: int = INFERENCE_SHORT_SIDE, max_pixels: Optional[int] = None
) -> list[VideoSource]:
    """Videos of a YouTube-VOS split (2018 or 2019 layout).

    Annotations come from ``<split>/Annotations/<video>/<frame>.png``; each names the
    objects that first appear on that frame. The frames a server scores are those of
    ``<split>/JPEGImages`` (every 5th frame). ``max_pixels``: the largest frame (None: the default limit).
    """
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"{root}: YouTube-VOS folder not found; pass the dataset root with --yv")
    frame_dir = layouts.youtube_frames(root, split, sparse)
    if not frame_dir.is_dir():
        hint = "run with --sparse to use the 5-frame JPEGImages" if not sparse else "check --split"
        raise UserError(f"{frame_dir}: frame folder not found; {hint}")
    mask_dir = layouts.youtube_annotations(root, split)
    sparse_dir = layouts.youtube_frames(root, split, sparse=True)
    names = sorted(p.name for p in frame_dir.iterdir() if p.is_dir())
    if not names:
        raise UserError(f"{frame_dir}: holds no video folders; re-extract the dataset")
    return [_video(name, frame_dir / name, mask_dir / name, sparse_dir / name, size, max_pixels) for name in names]


def _video(name: str, frame_folder: Path, mask_folder: Path, sparse_folder: Path, size: int, max_pixels: Optional[int]) -> VideoSource:
    frames = check_sequence_folder(frame_folder, "video folder")
    if not mask_folder.is_dir() or not list_images(mask_folder):
        raise UserError(f"{mask_folder}: no annotation for this video; every video needs the mask of its first frame")
    index = {p.stem: i for i, p in enumerate(frames)}
    annotations = {}
    for mask in list_images(mask_folder):
        if mask.stem not in index:
            raise UserError(f"{mask}: annotation for a frame that is not in {frame_folder}; check the frame folders")
        annotations[index[mask.stem]] = mask
    stems = {p.stem for p in list_images(sparse_folder)} if sparse_folder.is_dir() else None
    return VideoSource(
        name=name,
        frames=ImageFolderFrames(frames, max_pixels),
        annotation_files=annotations,
        infer_size=size,
        palette_from=annotations[min(annotations)],
        submission_stems=stems,
        max_pixels=max_pixels,
    )
