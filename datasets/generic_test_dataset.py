"""Any video as an evaluation video: a folder of frames (jpg/png) or a video file, with annotation PNGs.

Annotations are palette or grayscale PNGs named like the frames they annotate
(``00000.png`` … for a video file); objects may first appear on any of them. A grayscale
0/255 or 0/1 annotation is one object (id 1). Every annotation is checked before the first
frame is segmented; one within 1 % of its frame's size is padded or cropped to it with
background (docs/REAL_FOOTAGE.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from datasets.video_source import ImageFolderFrames, VideoFileFrames, VideoSource, check_sequence_folder
from util.errors import UserError
from util.image_io import check_unique_stems, list_images
from util.output_safety import check_plain_name

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm")
MAX_SHORT_SIDE = 480  # the official inference resolution (DAVIS 480p, YouTube-VOS resized to 480)


def generic_video(
    video: Path, masks: Path, size: Optional[int] = None, name: Optional[str] = None, max_pixels: Optional[int] = None
) -> VideoSource:
    """A video folder or file with its annotations, checked (:meth:`VideoSource.validate_annotations`);
    ``size`` None: never upscale, shorter side at most 480; ``max_pixels``: the largest frame (None: the default)."""
    if not video.exists():
        raise UserError(f"{video}: not found; --video takes a folder of frames or a video file")
    if video.is_dir():
        frames = ImageFolderFrames(check_sequence_folder(video, "frame folder"), max_pixels)
    elif video.suffix.lower() in VIDEO_EXTENSIONS:
        frames = VideoFileFrames(video, max_pixels)
    else:
        raise UserError(f"{video}: not a frame folder or a video file ({', '.join(VIDEO_EXTENSIONS)})")
    if not masks.is_dir() or not list_images(masks):
        raise UserError(f"{masks}: no annotation PNGs; --masks takes a folder with at least the first annotated frame's mask")
    index = {frames.stem(i): i for i in range(len(frames))}
    annotations = {}
    for path in check_unique_stems(list_images(masks)):
        if path.stem not in index:
            raise UserError(f"{path}: no frame named {path.stem} in {video}; name each annotation like its frame")
        annotations[index[path.stem]] = path
    source = VideoSource(
        name=check_plain_name(name or video.stem, "--name" if name else "video name"),
        frames=frames,
        annotation_files=annotations,
        infer_size=size if size is not None and size > 0 else None,
        max_short_side=MAX_SHORT_SIDE if size is None else None,
        palette_from=annotations[min(annotations)],
        gray_binary_is_one_object=True,
        fit_annotations=True,
        max_pixels=max_pixels,
    )
    source.validate_annotations()
    return source
