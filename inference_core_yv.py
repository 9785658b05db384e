"""YouTube-VOS on the common engine.

YouTube-VOS differs from DAVIS only in its data: objects first appear on different
frames (each is annotated once, on that frame), ids need not be consecutive, frames
are resized to 480 px on the shorter side, and outputs start at the first annotated
frame. All of that is data preparation; propagation and memory are the engine's
(``inference_core.InferenceCore``), with one memory state per video across annotation
frames. Compared with the official ``inference_core_yv.py`` this fixes: qualities
stored as lists (a crash at the first eviction with several objects), the admission
bookkeeping reset at each annotation frame while the keys are kept (unbounded memory),
and a second softmax on probabilities when building the prior. The memory defaults
(``YOUTUBE_MEMORY``) are that core's at HEAD (301f7bf): a frame's quality is the mean
of its non-zero object scores divided by that of the first frame propagated after the
most recent annotated frame (each official pass starts at an annotated frame), and the
threshold is 0.75.
"""

from __future__ import annotations

from pathlib import Path

from datasets.video_source import ImageFolderFrames, VideoSource, check_sequence_folder
from model.memory_policy import YOUTUBE_MEMORY, MemoryConfig
from util.errors import UserError
from util.image_io import list_images

__all__ = ["YOUTUBE_MEMORY", "MemoryConfig", "youtube_frame_dir", "youtube_videos"]

INFERENCE_SHORT_SIDE = 480


def youtube_frame_dir(root: Path, split: str, sparse: bool) -> Path:
    """Where frames are read: every frame (``all_frames``) unless ``sparse``."""
    if sparse:
        return root / split / "JPEGImages"
    return root / "all_frames" / f"{split}_all_frames" / "JPEGImages"


def youtube_videos(root: str | Path, split: str = "valid", sparse: bool = False, size: int = INFERENCE_SHORT_SIDE) -> list[VideoSource]:
    """Videos of a YouTube-VOS split (2018 or 2019 layout).

    Annotations come from ``<split>/Annotations/<video>/<frame>.png``; each names the
    objects that first appear on that frame. The frames a server scores are those of
    ``<split>/JPEGImages`` (every 5th frame).
    """
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"{root}: YouTube-VOS folder not found; pass the dataset root with --yv")
    frame_dir = youtube_frame_dir(root, split, sparse)
    if not frame_dir.is_dir():
        hint = "run with --sparse to use the 5-frame JPEGImages" if not sparse else "check --split"
        raise UserError(f"{frame_dir}: frame folder not found; {hint}")
    mask_dir = root / split / "Annotations"
    sparse_dir = root / split / "JPEGImages"
    names = sorted(p.name for p in frame_dir.iterdir() if p.is_dir())
    if not names:
        raise UserError(f"{frame_dir}: holds no video folders; re-extract the dataset")
    return [_video(name, frame_dir / name, mask_dir / name, sparse_dir / name, size) for name in names]


def _video(name: str, frame_folder: Path, mask_folder: Path, sparse_folder: Path, size: int) -> VideoSource:
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
        frames=ImageFolderFrames(frames),
        annotation_files=annotations,
        infer_size=size,
        palette_from=annotations[min(annotations)],
        submission_stems=stems,
    )
