"""Pseudo-videos from static images with masks (stage 0 pre-training).

Each sample is three differently augmented copies of one image and its mask
(single object). Two layouts, as in the official code:

* method 0, FSS-1000: ``root/<class>/<k>.jpg`` + ``root/<class>/<k>.png``;
* method 1, everything else: ``root/X.jpg`` + ``root/X.png``.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from datasets.tps import random_tps_warp
from datasets.transforms import (
    DEFAULT_SIZE,
    apply,
    apply_shared,
    random_seed,
    static_pair_transform,
    static_sequence_transform,
    to_tensor,
)
from util.image_io import load_rgb, open_image

FSS_LAYOUT, FLAT_LAYOUT = 0, 1
TPS_PROBABILITY = 0.33  # TPS is slow; the official code uses it on a third of the frames
NUM_FRAMES = 3


def read_static_mask(path: str | os.PathLike) -> np.ndarray:
    """A static set's mask as (H, W) uint8 0/1, read as the official code reads it: any PIL
    mode (1-bit, palette, L, RGB, RGBA...) through ``convert("L")``, then > 127.

    (The official code binarises after the augmentations, at 0.5 of 255; here before them,
    so that masks are never interpolated.) A mask with non-zero values that all fall at or
    below 127 in grey (e.g. a palette 0/1 mask whose colour 1 is dark) becomes empty, as
    officially; that is warned about.
    """
    with open_image(path, upright=False) as img:  # as stored, like its image (below)
        gray = np.array(img.convert("L"))
    mask = (gray > 127).astype(np.uint8)
    if not mask.any() and gray.any():
        warnings.warn(f"{path}: no pixel above 127 after convert('L') (max {int(gray.max())}); the object is empty", stacklevel=2)
    return mask


def list_static_images(root: str | os.PathLike, method: int) -> list[Path]:
    """Sorted ``.jpg`` files that have a ``.png`` mask beside them."""
    root = Path(root)
    if not root.is_dir():
        return []
    folders = sorted(p for p in root.iterdir() if p.is_dir()) if method == FSS_LAYOUT else [root]
    images = []
    for folder in folders:
        images += sorted(p for p in folder.iterdir() if p.suffix.lower() == ".jpg" and p.with_suffix(".png").is_file())
    return images


class StaticTransformDataset(Dataset):
    """Three augmented frames of one static image: ``rgb (3,3,S,S)``, ``gt (3,1,S,S)``, ``cls_gt (3,S,S)``."""

    def __init__(
        self, root: str | os.PathLike, method: int = FSS_LAYOUT, size: int = DEFAULT_SIZE, tps_probability: float = TPS_PROBABILITY
    ):
        self.root = Path(root)
        self.method = method
        self.size = size
        self.tps_probability = tps_probability
        self.images = list_static_images(root, method)
        self.sequence_transform = static_sequence_transform()
        self.pair_transform = static_pair_transform(size)

    def __len__(self) -> int:
        return len(self.images)

    def _frame(self, image: Image.Image, mask: np.ndarray, sequence_seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        frame, frame_mask = apply_shared(self.sequence_transform, sequence_seed, image, mask)
        frame, frame_mask = apply(self.pair_transform, frame, frame_mask)
        if torch.rand(1).item() < self.tps_probability:
            warped, frame_mask = random_tps_warp(np.asarray(frame), frame_mask)
            frame = Image.fromarray(warped)
        return to_tensor(frame), torch.from_numpy(frame_mask.astype(np.float32)).unsqueeze(0)

    def __getitem__(self, idx: int) -> dict:
        path = self.images[idx]
        image = Image.fromarray(load_rgb(path, upright=False))  # as stored: the masks are drawn on the stored pixels
        mask = read_static_mask(path.with_suffix(".png"))
        sequence_seed = random_seed()
        frames, masks = zip(*(self._frame(image, mask, sequence_seed) for _ in range(NUM_FRAMES)))
        gt = torch.stack(masks, 0)
        return {
            "rgb": torch.stack(frames, 0),
            "gt": gt,
            "cls_gt": (gt[:, 0] > 0.5).long(),
            "info": {"name": str(path)},
        }
