"""Three-frame training clips from video datasets (DAVIS, YouTube-VOS, BL30K).

For each video: pick three frames (each 1..max_jump after the previous, time reversed
with probability 0.5), augment them (one transform shared by the clip, one per frame),
then pick a target object present in the first picked frame and, when there is one, a
second object. A clip in which no object is usable gets up to five new draws; after
five failures the sample is returned with empty masks (the official behaviour), which
trains the network to predict background.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from datasets.transforms import DEFAULT_SIZE, apply, apply_shared, random_seed, to_tensor, video_pair_transform, video_sequence_transform
from util.image_io import load_mask, load_rgb

NUM_FRAMES = 3
MAX_TRIALS = 5
# BL30K object filter, in pixels of a 384x384 crop (scaled with the crop area).
BL_MIN_AREA = 10 * 10
BL_GOOD_AREA = 30 * 30
BL_SMALL_AREA = 20 * 20


def list_videos(im_root: str | os.PathLike, subset: Optional[Collection[str]] = None) -> tuple[list[str], dict[str, list[str]]]:
    """Videos (sorted) of ``im_root`` with at least three frames, optionally restricted to ``subset``."""
    im_root = Path(im_root)
    if not im_root.is_dir():
        return [], {}
    videos, frames = [], {}
    for video in sorted(p.name for p in im_root.iterdir() if p.is_dir()):
        if subset is not None and video not in subset:
            continue
        names = sorted(f.name for f in (im_root / video).iterdir() if f.suffix.lower() in (".jpg", ".jpeg", ".png"))
        if len(names) < NUM_FRAMES:
            continue
        videos.append(video)
        frames[video] = names
    return videos, frames


def sample_frame_indices(num_frames: int, max_jump: int) -> list[int]:
    """Three frame indices as the official code draws them (including its clipping near the end)."""
    jump = min(num_frames, max_jump)
    start = int(torch.randint(num_frames - jump + 1, (1,)))
    f1 = start + int(torch.randint(1, jump + 1, (1,)))
    f1 = min(f1, num_frames - jump, num_frames - 1)
    f2 = f1 + int(torch.randint(1, jump + 1, (1,)))
    f2 = min(f2, num_frames - jump // 2, num_frames - 1)
    indices = [start, f1, f2]
    if torch.rand(1).item() < 0.5:
        indices = indices[::-1]
    return indices


def usable_labels(masks: list[np.ndarray], blender: bool, area_scale: float) -> np.ndarray:
    """Object ids of the first frame; for BL30K only objects large enough.

    A BL30K object must cover more than 10x10 pixels in the first frame, and either more
    than 30x30 or stay below 20x20 in the other two (a small object that is really a
    large one mostly cropped away is rejected).
    """
    labels = np.unique(masks[0])
    labels = labels[labels != 0]
    if not blender:
        return labels
    good = []
    for label in labels:
        area = (masks[0] == label).sum()
        if area <= BL_MIN_AREA * area_scale:
            continue
        if area > BL_GOOD_AREA * area_scale or max((m == label).sum() for m in masks[1:]) < BL_SMALL_AREA * area_scale:
            good.append(label)
    return np.array(good, dtype=np.uint8)


def choose(labels: np.ndarray) -> int:
    return int(labels[int(torch.randint(len(labels), (1,)))])


class VOSDataset(Dataset):
    """Clips with a target and an optional second object.

    Sample: ``rgb (3,3,S,S)``, ``gt (3,1,S,S)`` (target), ``sec_gt (3,1,S,S)``,
    ``cls_gt (3,S,S)`` (0 background, 1 target, 2 second), ``selector (2,)`` (1, 1 if
    the second object exists else 0), ``info`` (name, frames).
    """

    def __init__(
        self,
        im_root: str | os.PathLike,
        gt_root: str | os.PathLike,
        max_jump: int,
        is_bl: bool = False,
        subset: Optional[Collection[str]] = None,
        size: int = DEFAULT_SIZE,
        width: Optional[int] = None,
    ):
        self.im_root = Path(im_root)
        self.gt_root = Path(gt_root)
        self.max_jump = max_jump
        self.is_bl = is_bl
        self.size = size
        self.width = width or size  # crops are size x width (square officially)
        self.videos, self.frames = list_videos(im_root, subset)
        self.sequence_transform = video_sequence_transform(size, is_bl, self.width)
        self.pair_transform = video_pair_transform()

    def __len__(self) -> int:
        return len(self.videos)

    def _load_clip(self, video: str, indices: list[int]) -> tuple[list[torch.Tensor], list[np.ndarray], list[str]]:
        sequence_seed = random_seed()
        images, masks, names = [], [], []
        for index in indices:
            stem = Path(self.frames[video][index]).stem
            image = Image.fromarray(load_rgb(self.im_root / video / f"{stem}.jpg"))
            mask = load_mask(self.gt_root / video / f"{stem}.png")
            image, mask = apply_shared(self.sequence_transform, sequence_seed, image, mask)
            image, mask = apply(self.pair_transform, image, mask)
            images.append(to_tensor(image))
            masks.append(mask)
            names.append(f"{stem}.jpg")
        return images, masks, names

    def __getitem__(self, idx: int) -> dict:
        video = self.videos[idx]
        area_scale = self.size * self.width / DEFAULT_SIZE**2
        target, second = -1, None
        for _ in range(MAX_TRIALS):
            indices = sample_frame_indices(len(self.frames[video]), self.max_jump)
            images, masks, names = self._load_clip(video, indices)
            labels = usable_labels(masks, self.is_bl, area_scale)
            if len(labels):
                target = choose(labels)
                rest = labels[labels != target]
                second = choose(rest) if len(rest) else None
                break
        return self._sample(video, images, masks, names, target, second)

    def _sample(
        self, video: str, images: list[torch.Tensor], masks: list[np.ndarray], names: list[str], target: int, second: Optional[int]
    ) -> dict:
        stacked = torch.from_numpy(np.stack(masks, 0).astype(np.int64))
        gt = (stacked == target).float().unsqueeze(1)
        sec_gt = (stacked == second).float().unsqueeze(1) if second is not None else torch.zeros_like(gt)
        cls_gt = torch.zeros_like(stacked)
        cls_gt[gt[:, 0] > 0.5] = 1
        cls_gt[sec_gt[:, 0] > 0.5] = 2
        return {
            "rgb": torch.stack(images, 0),
            "gt": gt,
            "sec_gt": sec_gt,
            "cls_gt": cls_gt,
            "selector": torch.tensor([1.0, 1.0 if second is not None else 0.0]),
            "info": {"name": video, "frames": names},
        }
