"""Writing held-out clips in the DAVIS 2017 layout and, optionally, the YouTube-VOS valid layout.

``<out>/2017/trainval``: ``JPEGImages/480p/<clip>/00000.jpg...``, palette PNGs on every
frame in ``Annotations/480p/<clip>/``, ``ImageSets/2017/val.txt``.
``<out>/yv`` (``youtube=True``): every frame in ``all_frames/valid_all_frames/JPEGImages``,
every 5th in ``valid/JPEGImages``, the first frame's annotation in ``valid/Annotations``,
``valid/meta.json``, and every frame's mask in ``valid_gt/Annotations``.
``<out>/heldout.json`` records the settings and what each clip holds.
Folder names come from ``datasets/layouts.py``.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
from PIL import Image

from datasets import layouts
from datasets.heldout.clip import clip_rng, draw_frame, sample_clip
from util.palette import davis_palette

MANIFEST = "heldout.json"
YOUTUBE_FOLDER = "yv"
SPARSE_STEP = 5
JPEG_QUALITY = 92


def _jpeg(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


def _png(labels: np.ndarray) -> bytes:
    """A 'P' mode PNG holding the ids as palette indices (DAVIS palette)."""
    labels = np.ascontiguousarray(labels, dtype=np.uint8)
    image = Image.frombytes("P", (labels.shape[1], labels.shape[0]), labels.tobytes())
    image.putpalette(davis_palette())
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _put(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def clip_name(index: int) -> str:
    return f"heldout-{index:03d}"


def write_heldout(out: str | Path, videos: int, frames: int, height: int, width: int, seed: int,
                  youtube: bool = False) -> dict:
    """Write ``videos`` clips of ``frames`` frames; return the manifest (also written)."""
    if videos < 1 or frames < 1 or seed < 0:
        raise ValueError(f"need videos >= 1, frames >= 1 and seed >= 0, got {videos}, {frames}, {seed}")
    out = Path(out)
    davis = layouts.davis_folder(out / "2017", "val")
    yv = out / YOUTUBE_FOLDER
    entries, meta = [], {"videos": {}}
    for index in range(videos):
        name = clip_name(index)
        rng = clip_rng(seed, index)
        clip = sample_clip(rng, frames, height, width)
        labels = sorted(s.label for s in clip.sprites if s.label)
        areas: dict[int, list[float]] = {i: [] for i in labels}
        for t in range(frames):
            image, mask = draw_frame(clip, t, rng)
            jpeg, png = _jpeg(image), _png(mask)
            stem = f"{t:05d}"
            _put(layouts.davis_frames(davis, name) / f"{stem}.jpg", jpeg)
            _put(layouts.davis_annotations(davis, name) / f"{stem}.png", png)
            counts = np.bincount(mask.ravel(), minlength=256)
            for i in labels:
                areas[i].append(float(counts[i]) / mask.size)
            if youtube:
                _put(layouts.youtube_frames(yv, "valid", name=name) / f"{stem}.jpg", jpeg)
                _put(layouts.youtube_ground_truth(yv, "valid", name) / f"{stem}.png", png)
                if t % SPARSE_STEP == 0:
                    _put(layouts.youtube_frames(yv, "valid", sparse=True, name=name) / f"{stem}.jpg", jpeg)
                if t == 0:
                    _put(layouts.youtube_annotations(yv, "valid", name) / f"{stem}.png", png)
        meta["videos"][name] = {
            "objects": {
                str(i): {
                    "category": "heldout",
                    "frames": [f"{t:05d}" for t in range(0, frames, SPARSE_STEP) if areas[i][t] > 0],
                }
                for i in labels
            }
        }
        entries.append(
            {
                "name": name,
                "backdrop": clip.backdrop_kind,
                "pole": any(s.label == 0 for s in clip.sprites),
                "objects": [
                    {
                        "id": s.label,
                        "outline": s.kind,
                        "pattern": s.pattern.kind,
                        "area_first": round(areas[s.label][0], 5),
                        "area_mean": round(float(np.mean(areas[s.label])), 5),
                        "empty_frames": sum(a == 0 for a in areas[s.label]),
                    }
                    for s in sorted(clip.sprites, key=lambda s: s.label)
                    if s.label
                ],
            }
        )
    names = [e["name"] for e in entries]
    list_path = layouts.davis_image_set(davis, "2017", "val")
    list_path.parent.mkdir(parents=True, exist_ok=True)
    list_path.write_text("".join(f"{n}\n" for n in names))
    if youtube:
        path = layouts.youtube_meta(yv, "valid")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(meta, indent=1, sort_keys=True))
    manifest = {
        "generator": "datasets.heldout",
        "seed": seed,
        "height": height,
        "width": width,
        "frames": frames,
        "youtube": youtube,
        "videos": entries,
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest
