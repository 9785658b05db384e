"""A video to segment: frames read lazily, annotations, output names and sizes.

Every evaluation script turns its dataset layout into :class:`VideoSource` objects and
hands them to the one propagation loop (``util/eval_runner.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from util.errors import UserError
from util.image_io import list_images, load_mask, load_rgb, normalize_image

VOID_LABEL = 255  # DAVIS marks ambiguous pixels with 255; they are never an object


@dataclass
class Annotation:
    masks: torch.Tensor  # (n, H, W) float, one binary mask per new object
    object_ids: list[int]  # the labels they carry in the dataset


@dataclass
class VideoSource:
    name: str
    frames: list[Path]
    annotation_files: dict[int, Path]  # frame index -> annotation PNG
    output_names: list[str]  # file name of each frame's output mask
    output_size: Optional[tuple[int, int]] = None  # (H, W); None: the frame's own size
    single_object: bool = False  # DAVIS 2016: every non-zero label is the one object
    infer_size: Optional[int] = None  # resize frames to this shorter side for inference
    first_output: int = 0  # frames before this index are not written
    palette_from: Optional[Path] = None

    def __len__(self) -> int:
        return len(self.frames)

    def frame_size(self, index: int = 0) -> tuple[int, int]:
        with Image.open(self.frames[index]) as img:
            return img.height, img.width

    def read_frame(self, index: int) -> torch.Tensor:
        """ImageNet-normalised (3, H, W) frame, resized for inference if requested."""
        image = normalize_image(load_rgb(self.frames[index]))
        size = self.inference_size(image.shape[-2:])
        if size != tuple(image.shape[-2:]):
            image = F.interpolate(image[None], size=size, mode="bilinear", align_corners=False)[0]
        return image

    def inference_size(self, size: Sequence[int]) -> tuple[int, int]:
        h, w = int(size[0]), int(size[1])
        if self.infer_size is None or self.infer_size <= 0:
            return h, w
        scale = self.infer_size / min(h, w)
        return round(h * scale), round(w * scale)

    def read_annotation(self, index: int) -> Optional[Annotation]:
        """Objects annotated on this frame (void 255 excluded), as masks at the inference size."""
        path = self.annotation_files.get(index)
        if path is None:
            return None
        ids = load_mask(path)
        frame_size = self.frame_size(index)
        if ids.shape != frame_size:
            raise UserError(
                f"{path}: annotation is {ids.shape[1]}x{ids.shape[0]} but its frame {self.frames[index].name} is "
                f"{frame_size[1]}x{frame_size[0]}; resize the annotation to the frame size"
            )
        if self.single_object:  # DAVIS 2016 masks are 0/255: every non-zero label is the object
            ids = (ids > 0).astype(np.uint8)
        labels = [int(v) for v in np.unique(ids) if v != 0 and v != VOID_LABEL]
        masks = torch.from_numpy(np.stack([ids == v for v in labels]) if labels else np.zeros((0, *ids.shape), bool)).float()
        size = self.inference_size(ids.shape)
        if masks.shape[0] and size != tuple(ids.shape):
            masks = (F.interpolate(masks[None], size=size, mode="nearest")[0] > 0.5).float()
        return Annotation(masks, labels)


def check_sequence_folder(folder: Path, what: str = "sequence folder") -> list[Path]:
    """The JPEG/PNG frames of a folder, or a UserError naming it."""
    if not folder.is_dir():
        raise UserError(f"{folder}: {what} not found; check the dataset root and the sequence list")
    frames = list_images(folder)
    if not frames:
        raise UserError(f"{folder}: {what} holds no frames (.jpg/.png); re-extract the dataset")
    return frames
