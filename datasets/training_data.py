"""The training sets of each stage, and the max_jump curriculum of the official train.py."""

from __future__ import annotations

import os
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Protocol

from torch.utils.data import ConcatDataset, Dataset

from datasets.static_dataset import FLAT_LAYOUT, FSS_LAYOUT, StaticTransformDataset
from datasets.vos_dataset import NUM_FRAMES, VOSDataset, list_videos
from util.errors import UserError
from util.load_subset import load_sub_davis, load_sub_yv

# (folder, layout, repeats): BIG and HRSOD have better masks and are used 5x more.
STATIC_SETS = (
    ("fss", FSS_LAYOUT, 1),
    ("DUTS-TR", FLAT_LAYOUT, 1),
    ("DUTS-TE", FLAT_LAYOUT, 1),
    ("ecssd", FLAT_LAYOUT, 1),
    ("BIG_small", FLAT_LAYOUT, 5),
    ("HRSOD_small", FLAT_LAYOUT, 5),
)
DAVIS_REPEATS = 5  # DAVIS is small; it is repeated 5x against YouTube-VOS

# max_jump curriculum: the value in force from a fraction of the epochs on.
INITIAL_SKIP = 5
SKIP_VALUES = (10, 15, 20, 25, 10, 5)  # BL30K, and YouTube-VOS (divided by 5: its frames are every 5th)
DAVIS_SKIP = (10, 15, 25, 10, 5, 1)
SKIP_FRACTIONS = {1: (0.1, 0.2, 0.3, 0.4, 0.8, 1.0), 2: (0.1, 0.2, 0.3, 0.4, 0.7, 0.9, 1.0)}
YOUTUBE_FRAME_STEP = 5

Log = Callable[[str], None]


def skip_at(stage: int, epoch: int, total_epochs: int) -> tuple[int, int]:
    """(skip, DAVIS skip) in force at ``epoch``, exactly as the official train.py steps them.

    The official code moves to the next value at the first epoch >= round(fraction x
    total); the last fraction (1.0) is never reached.
    """
    thresholds = [round(total_epochs * f) for f in SKIP_FRACTIONS[stage]]
    passed = sum(epoch >= t for t in thresholds)
    if passed == 0:
        return INITIAL_SKIP, INITIAL_SKIP
    return SKIP_VALUES[passed - 1], DAVIS_SKIP[passed - 1]


@dataclass
class StageData:
    dataset: Dataset
    # (dataset, kind) with kind "bl", "youtube" or "davis", for the curriculum
    video_sets: list[tuple[VOSDataset, str]] = field(default_factory=list)

    def set_epoch(self, stage: int, epoch: int, total_epochs: int) -> tuple[int, int]:
        """Apply the curriculum for ``epoch``; returns the (skip, DAVIS skip) now in force."""
        if stage == 0:
            return 0, 0
        skip, davis_skip = skip_at(stage, epoch, total_epochs)
        for dataset, kind in self.video_sets:
            dataset.max_jump = {"bl": skip, "youtube": skip // YOUTUBE_FRAME_STEP, "davis": davis_skip}[kind]
        return skip, davis_skip


def too_short(*im_roots: Path) -> str:
    """' (N videos have fewer than the 3 frames ...)' when some video folders are too short to sample a clip, else ''."""
    short = 0
    for root in im_roots:
        if root.is_dir():
            for video in (p for p in root.iterdir() if p.is_dir()):
                short += sum(f.suffix.lower() in (".jpg", ".jpeg", ".png") for f in video.iterdir()) < NUM_FRAMES
    return f" ({short} video(s) have fewer than the {NUM_FRAMES} frames a training clip needs)" if short else ""


def static_data(root: str | os.PathLike, size: int, log: Log = print) -> StageData:
    root = Path(root).expanduser()
    found = [(name, StaticTransformDataset(root / name, layout, size), repeats) for name, layout, repeats in STATIC_SETS]
    if not any(len(dataset) for _, dataset, _ in found):
        names = ", ".join(name for name, _, _ in STATIC_SETS)
        raise UserError(
            f"{root}: no training images found (expected {names} with X.jpg + X.png, fss/<class>/k.jpg + k.png); check --static_root"
        )
    parts: list[Dataset] = []
    for name, dataset, repeats in found:
        if len(dataset) == 0:
            log(f"warning: no images in {root / name}; this set is skipped")
            continue
        log(f"{len(dataset)} images found in {root / name}")
        parts += [dataset] * repeats
    dataset = ConcatDataset(parts)
    log(f"Static dataset size: {len(dataset)}")
    return StageData(dataset)


def blender_data(root: str | os.PathLike, size: int, log: Log = print, width: Optional[int] = None) -> StageData:
    root = Path(root).expanduser()
    dataset = VOSDataset(root / "JPEGImages", root / "Annotations", INITIAL_SKIP, is_bl=True, size=size, width=width)
    if len(dataset) == 0:
        raise UserError(
            f"{root}: no BL30K videos found (expected JPEGImages/<video>/*.jpg and Annotations/<video>/*.png)"
            f"{too_short(root / 'JPEGImages')}; check --bl_root"
        )
    log(f"Blender dataset size: {len(dataset)}")
    return StageData(dataset, [(dataset, "bl")])


def youtube_root(root: str | os.PathLike) -> Path:
    """``<root>/train_480p`` when present (the official choice), else ``<root>/train``."""
    root = Path(root).expanduser()
    return root / "train_480p" if (root / "train_480p" / "JPEGImages").is_dir() else root / "train"


def _video_set(
    im_root: Path, gt_root: Path, subset: Optional[Collection[str]], subset_file: str, size: int, width: Optional[int] = None
) -> VOSDataset:
    dataset = VOSDataset(im_root, gt_root, INITIAL_SKIP, is_bl=False, subset=subset, size=size, width=width)
    if len(dataset) == 0 and subset is not None:
        found = len(list_videos(im_root)[0])
        if found:
            raise UserError(f"{im_root}: none of its {found} videos is listed in {subset_file}; pass --no_subset to train on all of them")
    return dataset


def vos_data(
    yv_root: str | os.PathLike,
    davis_root: str | os.PathLike,
    size: int,
    use_subset: bool = True,
    log: Log = print,
    width: Optional[int] = None,
) -> StageData:
    yv = youtube_root(yv_root)
    davis = Path(davis_root).expanduser() / "2017" / "trainval"
    yv_subset = load_sub_yv() if use_subset else None
    youtube_set = _video_set(yv / "JPEGImages", yv / "Annotations", yv_subset, "util/yv_subset.txt", size, width)
    davis_set = _video_set(
        davis / "JPEGImages" / "480p",
        davis / "Annotations" / "480p",
        load_sub_davis() if use_subset else None,
        "util/davis_subset.txt",
        size,
        width,
    )
    if len(youtube_set) == 0 and len(davis_set) == 0:
        short = too_short(yv / "JPEGImages", davis / "JPEGImages" / "480p")
        raise UserError(f"no training videos in {yv} nor in {davis}{short}; check --yv_root and --davis_root")
    for name, dataset, where in (("YouTube", youtube_set, yv), ("DAVIS", davis_set, davis)):
        if len(dataset) == 0:
            log(f"warning: no {name} training videos in {where}; training without them")
    parts: list[Dataset] = [davis_set] * DAVIS_REPEATS + [youtube_set]
    dataset = ConcatDataset([p for p in parts if len(p)])  # type: ignore[arg-type]
    log(f"YouTube dataset size: {len(youtube_set)}")
    log(f"DAVIS dataset size: {len(davis_set)}")
    log(f"Concat dataset size: {len(dataset)}")
    return StageData(dataset, [(youtube_set, "youtube"), (davis_set, "davis")])


class StageSettings(Protocol):
    """What ``stage_data`` reads of the training configuration (``training/config.py``)."""

    stage: int
    static_root: str
    bl_root: str
    yv_root: str
    davis_root: str
    size: int
    no_subset: bool
    crop_width: Optional[int]


def stage_data(settings: StageSettings, log: Log = print) -> StageData:
    """The training data of ``settings.stage`` (0 static, 1 BL30K, 2 DAVIS + YouTube-VOS)."""
    if settings.stage == 0:
        return static_data(settings.static_root, settings.size, log)
    if settings.stage == 1:
        return blender_data(settings.bl_root, settings.size, log, settings.crop_width)
    return vos_data(settings.yv_root, settings.davis_root, settings.size, not settings.no_subset, log, settings.crop_width)
