"""The dataset layouts: DAVIS 2016/2017, YouTube-VOS and the static image sets."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from datasets import layouts
from datasets.synthetic.constants import (
    _TAG_DAVIS2016,
    _TAG_DAVIS2017,
    _TAG_FSS,
    _TAG_STATIC,
    _TAG_TESTDEV,
    _TAG_YOUTUBE,
    HIGH_RES_SETS,
    SHAPE_KINDS,
    STATIC_SETS,
    TEXTURE_KINDS,
    YOUTUBE_STEP,
)
from datasets.synthetic.files import (
    _check_common,
    _frame_name,
    _jpeg_bytes,
    _video_rng,
    _write_binary_png,
    _write_bytes,
    _write_jpeg,
    _write_list,
    _write_palette_png,
)
from datasets.synthetic.scene import ObjectStyle, VideoSpec
from datasets.synthetic.video import render_video


def _davis_video(
    seed: int,
    tag: int,
    index: int,
    num_frames: int,
    height: int,
    width: int,
    max_objects: int,
    leave_share: float = 0.15,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """A DAVIS-like video: all objects present in frame 0; each leaves and returns with
    probability ``leave_share``."""
    rng = _video_rng(seed, tag, index)
    count = int(rng.integers(1, max_objects + 1))
    leave = [bool(rng.random() < leave_share) for _ in range(count)]
    return render_video(rng, VideoSpec(num_frames, height, width, count, leave_return=leave))


def _write_davis_sequence(
    base: Path,
    name: str,
    frames: Sequence[np.ndarray],
    masks: Sequence[np.ndarray],
    annotated: Sequence[int],
    binary: bool = False,
) -> None:
    """Frames in ``<base>/JPEGImages/480p/<name>``, the ``annotated`` masks in ``<base>/Annotations/480p/<name>``."""
    image_dir, annotation_dir = layouts.davis_frames(base, name), layouts.davis_annotations(base, name)
    for t, frame in enumerate(frames):
        _write_jpeg(image_dir / f"{_frame_name(t)}.jpg", frame)
    writer = _write_binary_png if binary else _write_palette_png
    for t in annotated:
        writer(annotation_dir / f"{_frame_name(t)}.png", masks[t])


# --------------------------------------------------------------------------- #
# Dataset layouts
# --------------------------------------------------------------------------- #


def write_davis2017(
    root: str | Path, seed: int = 0, num_videos: int = 4, num_frames: int = 12, height: int = 96, width: int = 160,
    max_objects: int = 3, splits: Sequence[str] = ("train", "val"), prefix: str = "synth", leave_share: float = 0.15,
) -> dict[str, list[str]]:
    """Write a DAVIS 2017 trainval tree under ``root/2017/trainval``.

    ``JPEGImages/480p/<seq>/00000.jpg``, palette PNGs in
    ``Annotations/480p/<seq>/00000.png`` on every frame, and
    ``ImageSets/2017/<split>.txt``. Video ``i`` is named ``<prefix>-<i:03d>``
    and goes to ``splits[i % len(splits)]``. Returns the names per split.
    """
    _check_common(seed, height, width, num_videos=num_videos, num_frames=num_frames, max_objects=max_objects)
    if not splits:
        raise ValueError("splits must not be empty")
    base = layouts.davis_folder(Path(root) / "2017", "val")
    names: dict[str, list[str]] = {split: [] for split in splits}
    for index in range(num_videos):
        name = f"{prefix}-{index:03d}"
        frames, masks = _davis_video(
            seed, _TAG_DAVIS2017, index, num_frames, height, width, max_objects, leave_share
        )
        _write_davis_sequence(base, name, frames, masks, range(num_frames))
        names[splits[index % len(splits)]].append(name)
    for split, split_names in names.items():
        _write_list(layouts.davis_image_set(base, "2017", split), split_names)
    return names


def write_davis2017_testdev(
    root: str | Path, seed: int = 0, num_videos: int = 2, num_frames: int = 12, height: int = 96, width: int = 160,
    max_objects: int = 3, prefix: str = "synth-td",
) -> list[str]:
    """Write a DAVIS 2017 test-dev tree under ``root/2017/test-dev``.

    Only the first frame is annotated; the list is
    ``ImageSets/2017/test-dev.txt``. Returns the sequence names.
    """
    _check_common(seed, height, width, num_videos=num_videos, num_frames=num_frames, max_objects=max_objects)
    base = layouts.davis_folder(Path(root) / "2017", "testdev")
    names = []
    for index in range(num_videos):
        name = f"{prefix}-{index:03d}"
        frames, masks = _davis_video(
            seed, _TAG_TESTDEV, index, num_frames, height, width, max_objects
        )
        _write_davis_sequence(base, name, frames, masks, [0])
        names.append(name)
    _write_list(layouts.davis_image_set(base, "2017", "testdev"), names)
    return names


def write_davis2016(
    root: str | Path, seed: int = 0, num_videos: int = 2, num_frames: int = 12, height: int = 96, width: int = 160,
    splits: Sequence[str] = ("val",), prefix: str = "synth",
) -> dict[str, list[str]]:
    """Write a single-object DAVIS 2016 tree under ``root/2016``.

    ``JPEGImages/480p/<seq>/*.jpg`` and 'L' mode 0/255 PNGs in
    ``Annotations/480p/<seq>/*.png`` on every frame. The sequence lists go to
    ``root/2017/trainval/ImageSets/2016/<split>.txt``, where the DAVIS 2016
    evaluation reads them. Returns the names per split.
    """
    _check_common(seed, height, width, num_videos=num_videos, num_frames=num_frames)
    if not splits:
        raise ValueError("splits must not be empty")
    base = Path(root) / "2016"
    names: dict[str, list[str]] = {split: [] for split in splits}
    for index in range(num_videos):
        name = f"{prefix}-{index:03d}"
        rng = _video_rng(seed, _TAG_DAVIS2016, index)
        frames, masks = render_video(rng, VideoSpec(num_frames, height, width, 1))
        _write_davis_sequence(base, name, frames, masks, range(num_frames), binary=True)
        names[splits[index % len(splits)]].append(name)
    for split, split_names in names.items():
        _write_list(layouts.davis2016_image_set(base, split).resolve(), split_names)
    return names


def _youtube_ids(rng: np.random.Generator, count: int, sparse: bool) -> list[int]:
    """Object ids: 1..count, or (``sparse``) a set that is not 1..count."""
    consecutive = list(range(1, count + 1))
    if not sparse:
        return consecutive
    while True:
        ids = sorted(
            int(i) for i in rng.choice(np.arange(1, 2 * count + 2), count, False)
        )
        if ids != consecutive:
            return ids


def _youtube_appearances(
    rng: np.random.Generator, count: int, num_sparse: int
) -> list[int]:
    """First frames (multiples of 5, ascending): the first object is there from
    the start; with two or more objects the last always enters mid-video and
    the others do so with probability 0.3 (needs at least 3 sparse frames)."""
    appear = [0] * count
    if num_sparse < 3:
        return appear
    for index in range(1, count):
        if index == count - 1 or rng.random() < 0.3:
            appear[index] = YOUTUBE_STEP * int(rng.integers(1, num_sparse - 1))
    return sorted(appear)


def _youtube_video(
    seed: int,
    tag: int,
    index: int,
    num_sparse: int,
    height: int,
    width: int,
    max_objects: int,
) -> tuple[list[np.ndarray], list[np.ndarray], list[int]]:
    """Odd-indexed videos have at least two objects and non-consecutive ids."""
    rng = _video_rng(seed, tag, index)
    count = int(rng.integers(1, max_objects + 1))
    sparse_ids = index % 2 == 1
    if sparse_ids and max_objects >= 2:
        count = max(count, 2)
    ids = _youtube_ids(rng, count, sparse_ids)
    appear = _youtube_appearances(rng, count, num_sparse)
    leave = [bool(rng.random() < 0.15) for _ in range(count)]
    frames, masks = render_video(
        rng,
        VideoSpec(num_sparse * YOUTUBE_STEP,
        height,
        width,
        count,
        appear_at=appear,
        leave_return=leave,
        object_ids=ids),
    )
    return frames, masks, ids


def _youtube_annotations(
    masks: Sequence[np.ndarray], ids: Sequence[int], sparse: Sequence[int], train: bool
) -> tuple[dict[int, np.ndarray], dict[str, dict]]:
    """Annotation masks per frame index and the meta.json objects entry.

    Training annotates every sparse frame with all objects; validation
    annotates an object only on the sparse frame where it first appears, and
    that PNG holds only the objects appearing there.
    """
    present = {i: [t for t in sparse if (masks[t] == i).any()] for i in ids}
    present = {i: frames for i, frames in present.items() if frames}
    objects = {
        str(i): {"category": "synthetic", "frames": [_frame_name(t) for t in frames]}
        for i, frames in present.items()
    }
    if train:
        return {t: masks[t] for t in sparse}, objects
    first: dict[int, list[int]] = {}
    for object_id, frames in present.items():
        first.setdefault(frames[0], []).append(object_id)
    annotations = {
        t: np.where(np.isin(masks[t], new_ids), masks[t], 0).astype(np.uint8)
        for t, new_ids in sorted(first.items())
    }
    return annotations, objects


def write_youtube(
    root: str | Path,
    seed: int = 0,
    split: str = "valid",
    num_videos: int = 3,
    num_frames: int = 6,
    height: int = 96,
    width: int = 160,
    max_objects: int = 3,
    prefix: str = "ytsynth",
) -> list[str]:
    """Write a YouTube-VOS split under ``root``.

    Each video has ``num_frames`` sparse frames (every 5th: 00000, 00005, ...)
    in ``<split>/JPEGImages/<vid>/`` and all ``5 * num_frames`` frames in
    ``all_frames/<split>_all_frames/JPEGImages/<vid>/``. For ``train`` every
    sparse frame has a palette PNG in ``<split>/Annotations/<vid>/``; for other
    splits (``valid``) only the frames where objects first appear do, holding
    only those objects. Some videos have non-consecutive ids and objects
    entering mid-video. ``<split>/meta.json`` lists, per object, the sparse
    frames where it is visible. Returns the video names.
    """
    _check_common(seed, height, width, num_videos=num_videos, num_frames=num_frames, max_objects=max_objects)
    tag = _TAG_YOUTUBE.get(split, 1803 + sum(split.encode()))
    base = Path(root)
    meta: dict[str, dict] = {"videos": {}}
    names = []
    for index in range(num_videos):
        name = f"{prefix}-{index:03d}"
        frames, masks, ids = _youtube_video(
            seed, tag, index, num_frames, height, width, max_objects
        )
        sparse = list(range(0, len(frames), YOUTUBE_STEP))
        for t, frame in enumerate(frames):
            data = _jpeg_bytes(frame)
            _write_bytes(layouts.youtube_frames(base, split, name=name) / f"{_frame_name(t)}.jpg", data)
            if t % YOUTUBE_STEP == 0:
                _write_bytes(
                    layouts.youtube_frames(base, split, sparse=True, name=name) / f"{_frame_name(t)}.jpg", data
                )
        annotations, objects = _youtube_annotations(
            masks, ids, sparse, split == "train"
        )
        for t, mask in annotations.items():
            _write_palette_png(
                layouts.youtube_annotations(base, split, name) / f"{_frame_name(t)}.png", mask
            )
        meta["videos"][name] = {"objects": objects}
        names.append(name)
    write_youtube_meta(base, split, meta)
    return names


def write_youtube_meta(root: str | Path, split: str, meta: dict) -> None:
    """``<root>/<split>/meta.json``, as the YouTube-VOS evaluation reads it."""
    path = layouts.youtube_meta(root, split)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(meta, indent=1, sort_keys=True))


def _static_image(
    rng: np.random.Generator, height: int, width: int, style: ObjectStyle | None = None
) -> tuple[np.ndarray, np.ndarray]:
    frames, masks = render_video(
        rng, VideoSpec(1, height, width, 1, styles=[style], camera_motion=0.0)
    )
    return frames[0], masks[0]


def write_static(
    root: str | Path, seed: int = 0, num_images: int = 4, height: int = 96, width: int = 160, num_classes: int = 3
) -> dict[str, int]:
    """Write the static image sets used for pre-training.

    FSS-1000 style ``root/fss/<class>/<k>.jpg`` + ``<k>.png`` (k = 1..num_images;
    objects of one class share shape kind, texture kind and hue), and
    ``X.jpg`` + ``X.png`` pairs in ``root/{DUTS-TR,DUTS-TE,ecssd,BIG_small,
    HRSOD_small}`` (the last two at twice the size, like their high-resolution
    originals). Masks are 'L' PNGs with values 0/255. Returns images per set.
    """
    _check_common(seed, height, width, num_images=num_images, num_classes=num_classes)
    base = Path(root)
    counts: dict[str, int] = {}
    for class_index in range(num_classes):
        class_rng = _video_rng(seed, _TAG_FSS, class_index)
        style = ObjectStyle(
            shape=str(class_rng.choice(SHAPE_KINDS)),
            texture=str(class_rng.choice(TEXTURE_KINDS)),
            hue=float(class_rng.uniform()),
        )
        class_dir = base / "fss" / f"synth_class_{class_index:03d}"
        for k in range(1, num_images + 1):
            rng = _video_rng(seed, _TAG_FSS, class_index, k)
            image, mask = _static_image(rng, height, width, style)
            _write_jpeg(class_dir / f"{k}.jpg", image)
            _write_binary_png(class_dir / f"{k}.png", mask)
    counts["fss"] = num_classes * num_images
    for set_index, name in enumerate(STATIC_SETS):
        factor = 2 if name in HIGH_RES_SETS else 1
        for k in range(num_images):
            rng = _video_rng(seed, _TAG_STATIC, set_index, k)
            image, mask = _static_image(rng, height * factor, width * factor)
            stem = f"synth_{k:04d}"
            _write_jpeg(base / name / f"{stem}.jpg", image)
            _write_binary_png(base / name / f"{stem}.png", mask)
        counts[name] = num_images
    return counts
