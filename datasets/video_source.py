"""A video to segment: frames decoded lazily, annotations, output names and sizes.

Every evaluation script turns its dataset layout into :class:`VideoSource` objects and
hands them to the one propagation loop (``evaluation/propagation.py``). Frames come from a
folder of images or a video file and are decoded one at a time, so memory does not
grow with the length of the video.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Protocol

import numpy as np
import torch
import torch.nn.functional as F

from util.errors import UserError
from util.image_io import check_unique_stems, list_images, load_mask, load_rgb, mask_mode, normalize_image

VOID_LABEL = 255  # DAVIS marks ambiguous pixels with 255; they are never an object
MAX_INFERENCE_SIDE = 4096  # a longer inference side is refused (a 2x300 frame at --size 480 would ask for 480x72000)


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

    def inputs(self) -> list[Path]:
        """The folders the frames are read from."""
        return sorted({p.parent for p in self.paths})


class VideoFileFrames:
    """Frames of a video file (mp4, avi...) read with OpenCV, named 00000, 00001..."""

    def __init__(self, path: Path):
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # no FFmpeg chatter on stderr: we explain failures
        import cv2

        self.path = path
        capture = cv2.VideoCapture(str(path))
        ok, _ = capture.read() if capture.isOpened() else (False, None)
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if ok else 0
        if ok and count <= 0:  # no frame count in the header: count by decoding (read() below checks every frame)
            count = 1
            while capture.read()[0]:
                count += 1
        capture.release()
        if not ok:
            raise UserError(f"{path}: cannot decode this video file; convert it to mp4 (H.264) or extract its frames to a folder")
        self.count = count

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[np.ndarray]:
        import cv2

        capture = cv2.VideoCapture(str(self.path))
        try:
            for decoded in range(self.count):
                ok, bgr = capture.read()
                if not ok:
                    raise UserError(
                        f"{self.path}: the header announces {self.count} frames but only {decoded} decode; "
                        "the file is truncated or damaged: re-encode it or extract its frames to a folder"
                    )
                yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        finally:
            capture.release()

    def stem(self, index: int) -> str:
        return f"{index:05d}"

    def inputs(self) -> list[Path]:
        return [self.path]


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
    infer_size: Optional[int] = None  # resize frames to this shorter side for inference (may upscale)
    max_short_side: Optional[int] = None  # without infer_size: never upscale, shrink the shorter side to at most this
    palette_from: Optional[Path] = None
    numbered_outputs: bool = False  # DAVIS: masks 00000, 00001...; otherwise named like the input frames
    submission_stems: Optional[set[str]] = None  # frames a server scores (None: all written frames)
    gray_binary_is_one_object: bool = False  # generic videos: a 0/255 (or 0/1) grayscale mask is one object
    _said_binary: bool = field(default=False, init=False, repr=False)  # the one-object line is printed once

    def __len__(self) -> int:
        return len(self.frames)

    def inputs(self) -> list[Path]:
        """Every file or folder this video is read from (frames, video file, annotation folders)."""
        frames = self.frames.inputs() if hasattr(self.frames, "inputs") else []
        return [*frames, *sorted({p.parent for p in self.annotation_files.values()})]

    @property
    def first_annotated(self) -> int:
        return min(self.annotation_files) if self.annotation_files else 0

    def output_stem(self, index: int) -> str:
        """The name of frame ``index``'s mask without its suffix (the mask format's: ``evaluation/masks.py``)."""
        return f"{index:05d}" if self.numbered_outputs else self.frames.stem(index)

    def items(self) -> Iterator[FrameItem]:
        """Decode frames in order, with their annotations, ready for the engine.

        Every frame is brought to the inference size of the first one, so a video
        whose frames differ in size still runs; outputs keep each frame's own size.
        """
        target: Optional[tuple[int, int]] = None
        for index, rgb in enumerate(self.frames):
            size = (int(rgb.shape[0]), int(rgb.shape[1]))
            target = target or self.checked_inference_size(size, index)
            image = normalize_image(rgb)
            if target != size:
                # torchvision's Resize(480, BICUBIC) on the normalised tensor, as in the official code
                image = F.interpolate(image[None], size=target, mode="bicubic", align_corners=False, antialias=True)[0]
            yield FrameItem(index, image, self.read_annotation(index, size, target), size)

    def inference_size(self, size: Sequence[int]) -> tuple[int, int]:
        """Frame size for inference: the shorter side becomes ``infer_size`` (torchvision rounding).

        Without ``infer_size``, ``max_short_side`` only ever shrinks: the shorter side
        becomes ``min(native, max_short_side)``.
        """
        h, w = int(size[0]), int(size[1])
        if self.infer_size is not None and self.infer_size > 0:
            short = self.infer_size
        elif self.max_short_side is not None and self.max_short_side > 0:
            short = min(h, w, self.max_short_side)
        else:
            return h, w
        if min(h, w) == short:
            return h, w
        if h <= w:
            return short, int(short * w / h)
        return int(short * h / w), short

    def checked_inference_size(self, size: Sequence[int], index: int) -> tuple[int, int]:
        """:meth:`inference_size`, refused when its long side exceeds :data:`MAX_INFERENCE_SIDE`."""
        target = self.inference_size(size)
        if max(target) > MAX_INFERENCE_SIDE:
            hint = "pass a smaller --size" if self.infer_size and self.infer_size > 0 else "resize the video"
            raise UserError(
                f"{self.frame_location(index)}: a {size[1]}x{size[0]} frame would be segmented at {target[1]}x{target[0]}, "
                f"longer than {MAX_INFERENCE_SIDE} px; {hint} (--size -1 keeps the native size)"
            )
        return target

    def frame_location(self, index: int) -> str:
        """The file of frame ``index`` (or the video file and the index), for messages."""
        paths = getattr(self.frames, "paths", None)
        return str(paths[index]) if paths is not None else f"{getattr(self.frames, 'path', self.name)} frame {index}"

    def read_annotation(self, index: int, frame_size: tuple[int, int], target: Optional[tuple[int, int]] = None) -> Optional[Annotation]:
        """Objects annotated on this frame (void 255 excluded), as masks at ``target`` size."""
        path = self.annotation_files.get(index)
        if path is None:
            return None
        ids = load_mask(path)
        if self.gray_binary_is_one_object:
            ids = self.gray_binary_as_one_object(path, ids)
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


    def gray_binary_as_one_object(self, path: Path, ids: np.ndarray) -> np.ndarray:
        """A grayscale (non-palette) 0/255 or 0/1 mask is one object (id 1), said once per video."""
        values = set(np.unique(ids).tolist())
        if values <= {0} or not (values <= {0, VOID_LABEL} or values <= {0, 1}) or mask_mode(path) == "P":
            return ids
        if not self._said_binary:
            print(f"{path}: grayscale {'0/255' if VOID_LABEL in values else '0/1'} mask: one object (id 1); "
                  "use palette PNGs for several objects or void")
            self._said_binary = True
        return (ids > 0).astype(np.uint8)


def check_sequence_folder(folder: Path, what: str = "sequence folder") -> list[Path]:
    """The JPEG/PNG frames of a folder, or a UserError naming it."""
    if not folder.is_dir():
        raise UserError(f"{folder}: {what} not found; check the dataset root and the sequence list")
    frames = list_images(folder)
    if not frames:
        raise UserError(f"{folder}: {what} holds no frames (.jpg/.png); re-extract the dataset")
    return check_unique_stems(frames)
