"""A video to segment: frames decoded lazily, annotations, output names and sizes.

Every evaluation script turns its dataset layout into :class:`VideoSource` objects and
hands them to the one propagation loop (``util/eval_runner.py``). Frames come from a
folder of images or a video file and are decoded one at a time, so memory does not
grow with the length of the video.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Protocol

import numpy as np
import torch
import torch.nn.functional as F

from util.errors import UserError
from util.image_io import list_images, load_mask, load_rgb, normalize_image

VOID_LABEL = 255  # DAVIS marks ambiguous pixels with 255; they are never an object


class FrameSequence(Protocol):
    """Frames of one video, decoded in order as (H, W, 3) uint8 RGB arrays."""

    def __len__(self) -> int: ...

    def __iter__(self) -> Iterator[np.ndarray]: ...

    def stem(self, index: int) -> str: ...


class ImageFolderFrames:
    def __init__(self, paths: Sequence[Path]):
        self.paths = list(paths)

    def __len__(self) -> int:
        return len(self.paths)

    def __iter__(self) -> Iterator[np.ndarray]:
        for path in self.paths:
            yield load_rgb(path)

    def stem(self, index: int) -> str:
        return self.paths[index].stem


class VideoFileFrames:
    """Frames of a video file (mp4, avi...) read with OpenCV, named 00000, 00001..."""

    def __init__(self, path: Path):
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # no FFmpeg chatter on stderr: we explain failures
        import cv2

        self.path = path
        capture = cv2.VideoCapture(str(path))
        ok, _ = capture.read() if capture.isOpened() else (False, None)
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if ok else 0
        capture.release()
        if not ok:
            raise UserError(f"{path}: cannot decode this video file; convert it to mp4 (H.264) or extract its frames to a folder")
        self.count = max(count, 1)

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[np.ndarray]:
        import cv2

        capture = cv2.VideoCapture(str(self.path))
        try:
            for _ in range(self.count):
                ok, bgr = capture.read()
                if not ok:
                    return
                yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        finally:
            capture.release()

    def stem(self, index: int) -> str:
        return f"{index:05d}"


@dataclass
class Annotation:
    masks: torch.Tensor  # (n, H, W) float, one binary mask per annotated object
    object_ids: list[int]  # the labels they carry in the dataset


@dataclass
class FrameItem:
    """One decoded frame, ready for the engine."""

    index: int
    image: torch.Tensor  # (3, h, w) normalised, at the inference size
    annotation: Optional[Annotation]
    size: tuple[int, int]  # the frame's original (H, W)


@dataclass
class VideoSource:
    name: str
    frames: FrameSequence
    annotation_files: dict[int, Path]  # frame index -> annotation PNG
    single_object: bool = False  # DAVIS 2016: every non-zero label is the one object
    infer_size: Optional[int] = None  # resize frames to this shorter side for inference
    palette_from: Optional[Path] = None
    numbered_outputs: bool = False  # DAVIS: 00000.png...; otherwise named like the input frames
    submission_stems: Optional[set[str]] = None  # frames a server scores (None: all written frames)

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def first_annotated(self) -> int:
        return min(self.annotation_files) if self.annotation_files else 0

    def output_name(self, index: int) -> str:
        return f"{index:05d}.png" if self.numbered_outputs else f"{self.frames.stem(index)}.png"

    def items(self) -> Iterator[FrameItem]:
        """Decode frames in order, with their annotations, ready for the engine.

        Every frame is brought to the inference size of the first one, so a video
        whose frames differ in size still runs; outputs keep each frame's own size.
        """
        target: Optional[tuple[int, int]] = None
        for index, rgb in enumerate(self.frames):
            size = (int(rgb.shape[0]), int(rgb.shape[1]))
            target = target or self.inference_size(size)
            image = normalize_image(rgb)
            if target != size:
                # torchvision's Resize(480, BICUBIC) on the normalised tensor, as in the official code
                image = F.interpolate(image[None], size=target, mode="bicubic", align_corners=False, antialias=True)[0]
            yield FrameItem(index, image, self.read_annotation(index, size, target), size)

    def inference_size(self, size: Sequence[int]) -> tuple[int, int]:
        """Frame size for inference: the shorter side becomes ``infer_size`` (torchvision rounding)."""
        h, w = int(size[0]), int(size[1])
        if self.infer_size is None or self.infer_size <= 0 or min(h, w) == self.infer_size:
            return h, w
        if h <= w:
            return self.infer_size, int(self.infer_size * w / h)
        return int(self.infer_size * h / w), self.infer_size

    def read_annotation(self, index: int, frame_size: tuple[int, int], target: Optional[tuple[int, int]] = None) -> Optional[Annotation]:
        """Objects annotated on this frame (void 255 excluded), as masks at ``target`` size."""
        path = self.annotation_files.get(index)
        if path is None:
            return None
        ids = load_mask(path)
        if ids.shape != frame_size:
            raise UserError(
                f"{path}: annotation is {ids.shape[1]}x{ids.shape[0]} but its frame is "
                f"{frame_size[1]}x{frame_size[0]}; resize the annotation to the frame size"
            )
        if self.single_object:  # DAVIS 2016 masks are 0/255: every non-zero label is the object
            ids = (ids > 0).astype(np.uint8)
        labels = [int(v) for v in np.unique(ids) if v != 0 and v != VOID_LABEL]
        size = target or self.inference_size(ids.shape)
        if not labels:
            return Annotation(torch.zeros((0, *size)), [])
        masks = torch.from_numpy(np.stack([ids == v for v in labels])).float()
        if size != tuple(ids.shape):
            masks = F.interpolate(masks[None], size=size, mode="nearest")[0]
        return Annotation(masks, labels)


def check_sequence_folder(folder: Path, what: str = "sequence folder") -> list[Path]:
    """The JPEG/PNG frames of a folder, or a UserError naming it."""
    if not folder.is_dir():
        raise UserError(f"{folder}: {what} not found; check the dataset root and the sequence list")
    frames = list_images(folder)
    if not frames:
        raise UserError(f"{folder}: {what} holds no frames (.jpg/.png); re-extract the dataset")
    return frames
