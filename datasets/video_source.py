"""A video to segment: frames decoded lazily, annotations, output names and sizes.

Every evaluation script turns its dataset layout into :class:`VideoSource` objects and
hands them to the one propagation loop (``evaluation/propagation.py``). Frames come from a
folder of images or a video file and are decoded one at a time, so memory does not
grow with the length of the video.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Protocol

import numpy as np
import torch
import torch.nn.functional as F

from util.errors import UserError
from util.image_io import (
    check_pixels,
    check_unique_stems,
    header_size,
    list_images,
    load_mask,
    load_rgb,
    mask_mode,
    normalize_image,
)

VOID_LABEL = 255  # DAVIS marks ambiguous pixels with 255; they are never an object
MAX_INFERENCE_SIDE = 4096  # a longer inference side is refused (a 2x300 frame at --size 480 would ask for 480x72000)
MAX_FPS = 1000.0  # a larger (or non-finite) frame rate in a video header is taken as unknown


class FrameSequence(Protocol):
    """Frames of one video, decoded in order as (H, W, 3) uint8 RGB arrays."""

    def __len__(self) -> int: ...

    def __iter__(self) -> Iterator[np.ndarray]: ...

    def stem(self, index: int) -> str: ...

    def size(self, index: int) -> tuple[int, int]: ...


class ImageFolderFrames:
    """Image files, decoded upright (EXIF orientation) once each header passes ``max_pixels`` (None: the default limit)."""

    def __init__(self, paths: Sequence[Path], max_pixels: Optional[int] = None):
        self.paths = list(paths)
        self.max_pixels = max_pixels

    def __len__(self) -> int:
        return len(self.paths)

    def __iter__(self) -> Iterator[np.ndarray]:
        for path in self.paths:
            yield load_rgb(path, self.max_pixels)

    def stem(self, index: int) -> str:
        return self.paths[index].stem

    def size(self, index: int) -> tuple[int, int]:
        """Frame ``index``'s upright (H, W), from its header."""
        return header_size(self.paths[index], self.max_pixels)

    def check_headers(self) -> None:
        """Every frame's header read and checked against ``max_pixels``; nothing decoded."""
        for path in self.paths:
            header_size(path, self.max_pixels)

    def inputs(self) -> list[Path]:
        """The folders the frames are read from."""
        return sorted({p.parent for p in self.paths})


class VideoFileFrames:
    """Frames of a video file (mp4, avi...) read with OpenCV, named 00000, 00001...

    The frame size is checked against ``max_pixels`` from the header before a frame is
    decoded. Rotation metadata is applied (OpenCV's ``CAP_PROP_ORIENTATION_AUTO``), and
    said in one line; ``fps`` is the header's frame rate (None when it has none).
    """

    def __init__(self, path: Path, max_pixels: Optional[int] = None):
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # no FFmpeg chatter on stderr: we explain failures
        import cv2

        self.path = path
        capture = open_capture(path)
        try:
            if capture.isOpened():
                width, height = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
                check_pixels(path, width, height, max_pixels)
            ok, first = capture.read() if capture.isOpened() else (False, None)
            if not ok:
                raise UserError(f"{path}: cannot decode this video file; convert it to mp4 (H.264) or extract its frames to a folder")
            check_pixels(path, first.shape[1], first.shape[0], max_pixels)  # a header without a size: the first frame's
            count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
            if count <= 0:  # no frame count in the header: count by decoding (read() below checks every frame)
                count = 1
                while capture.read()[0]:
                    count += 1
            fps = capture.get(cv2.CAP_PROP_FPS)
            self.rotation = int(capture.get(cv2.CAP_PROP_ORIENTATION_META)) % 360
            self.upright = bool(capture.get(cv2.CAP_PROP_ORIENTATION_AUTO))
        finally:
            capture.release()
        self.count = count
        self.frame_size = (int(first.shape[0]), int(first.shape[1]))
        self.fps: Optional[float] = fps if math.isfinite(fps) and 0 < fps <= MAX_FPS else None
        if self.rotation:
            done = "turned upright" if self.upright else "read as stored (OpenCV cannot apply it here)"
            print(f"{path}: rotation metadata {self.rotation} degrees: frames {done}, "
                  f"{self.frame_size[1]}x{self.frame_size[0]}")

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[np.ndarray]:
        import cv2

        capture = open_capture(self.path)
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

    def size(self, index: int) -> tuple[int, int]:
        return self.frame_size

    def inputs(self) -> list[Path]:
        return [self.path]


def open_capture(path: Path):
    """An OpenCV capture of ``path`` that applies the file's rotation metadata (where the backend can)."""
    import cv2

    capture = cv2.VideoCapture(str(path))
    capture.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)
    return capture


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
    fit_annotations: bool = False  # generic videos: an annotation within 1 % of its frame's size is padded/cropped to it
    max_pixels: Optional[int] = None  # largest annotation, checked from its header (None: the default limit)
    _said_binary: bool = field(default=False, init=False, repr=False)  # the one-object line is printed once
    _said_fitted: set[Path] = field(default_factory=set, init=False, repr=False)  # the padded/cropped line: once a file

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
        ids = self.annotation_ids(path, frame_size)
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

    def annotation_ids(self, path: Path, frame_size: tuple[int, int]) -> np.ndarray:
        """The annotation's label map at ``frame_size`` (H, W): read, checked, and fitted (:meth:`fitted`)."""
        ids = load_mask(path, self.max_pixels)
        if self.gray_binary_is_one_object:
            ids = self.gray_binary_as_one_object(path, ids)
        return self.fitted(path, ids, frame_size)

    def fitted(self, path: Path, ids: np.ndarray, frame_size: tuple[int, int]) -> np.ndarray:
        """``ids`` at the frame's size. With ``fit_annotations``, a difference of at most 1 % of each side (at least
        1 px) is padded or cropped with background (:func:`pad_or_crop`), said once per file; labels are never
        interpolated. Anything else is refused."""
        (h, w), (fh, fw) = ids.shape, frame_size
        if (h, w) == (fh, fw):
            return ids
        if not (self.fit_annotations and sizes_close(ids.shape, frame_size)):
            apart = ", more than 1 % apart" if self.fit_annotations else ""
            raise UserError(f"{path}: annotation is {w}x{h} but its frame is {fw}x{fh}{apart}; {LABEL_MAP_ADVICE.format(fw, fh)}")
        if path not in self._said_fitted:
            print(f"warning: {path}: annotation is {w}x{h} but its frame is {fw}x{fh}; {fit_words(ids.shape, frame_size)}",
                  file=sys.stderr)
            self._said_fitted.add(path)
        return pad_or_crop(ids, frame_size)

    def validate_annotations(self) -> None:
        """Before any frame is segmented: every frame's header (size limit), and every annotation read and checked
        against its frame's size from the frame's header (modes, ids, sizes), so that a bad one fails at once."""
        check = getattr(self.frames, "check_headers", None)
        if check is not None:
            check()
        for index, path in sorted(self.annotation_files.items()):
            self.annotation_ids(path, self.frames.size(index))

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


LABEL_MAP_ADVICE = "pad or crop the annotation to {}x{} (never resize a label map with interpolation: it invents labels)"


def fit_tolerance(side: int) -> int:
    """The largest difference from a frame side that :meth:`VideoSource.fitted` pads or crops: 1 %, at least 1 px."""
    return max(1, side // 100)


def sizes_close(size: Sequence[int], frame_size: Sequence[int]) -> bool:
    """Whether an annotation of ``size`` (H, W) is within :func:`fit_tolerance` of its frame's on both sides."""
    return all(abs(int(a) - int(f)) <= fit_tolerance(int(f)) for a, f in zip(size, frame_size))


def pad_or_crop(ids: np.ndarray, frame_size: Sequence[int]) -> np.ndarray:
    """``ids`` brought to ``frame_size`` (H, W): background (0) added, or rows and columns dropped, at the right and
    bottom edges; every kept pixel keeps its label."""
    out = np.zeros((int(frame_size[0]), int(frame_size[1])), ids.dtype)
    h, w = min(ids.shape[0], out.shape[0]), min(ids.shape[1], out.shape[1])
    out[:h, :w] = ids[:h, :w]
    return out


def fit_words(size: Sequence[int], frame_size: Sequence[int]) -> str:
    """What :func:`pad_or_crop` does to an annotation of ``size``, for the warning line."""
    grew = size[0] < frame_size[0] or size[1] < frame_size[1]
    shrank = size[0] > frame_size[0] or size[1] > frame_size[1]
    how = " and ".join(word for word, did in (("padded with background", grew), ("cropped", shrank)) if did)
    edges = " and ".join(edge for edge, a, f in (("right", size[1], frame_size[1]), ("bottom", size[0], frame_size[0])) if a != f)
    return f"{how} at the {edges} edge{'s' if ' and ' in edges else ''} to {frame_size[1]}x{frame_size[0]}"


def check_sequence_folder(folder: Path, what: str = "sequence folder") -> list[Path]:
    """The JPEG/PNG frames of a folder, or a UserError naming it."""
    if not folder.is_dir():
        raise UserError(f"{folder}: {what} not found; check the dataset root and the sequence list")
    frames = list_images(folder)
    if not frames:
        raise UserError(f"{folder}: {what} holds no frames (.jpg/.png); re-extract the dataset")
    return check_unique_stems(frames)
