"""SynthVOS, the fixed synthetic VOS benchmark (docs/SYNTHVOS.md): plan, render and write its sets.

Video ``i`` of a set is a function of ``np.random.default_rng([seed, tag, i])``
only (tags: val 3100, long 3200, yv 3300), so videos are independent and are
generated in parallel (``make_video`` runs in a worker). The layouts are
``datasets/layouts.py``'s; ``scripts/make_synthvos.py`` is the command line.
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import multiprocessing.pool
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from datasets import layouts, synthetic
from datasets.synthetic import wide
from datasets.synthetic.files import _frame_name, _write_bytes, _write_list
from datasets.synthetic.writers import write_youtube_meta

SETS = ("val", "long", "yv")
TAGS = {"val": 3100, "long": 3200, "yv": 3300}
NUM_VIDEOS = {"val": 20, "long": 6, "yv": 10}
FRAME_RANGE = {"val": (40, 80), "long": (600, 800), "yv": (40, 60)}  # inclusive
HEIGHT, WIDTH = 240, 432
LONG_MOTION_FRAMES = 150  # long videos move on the time scale of a 150-frame one
MILD_EVENT_PROBABILITY = {"val": 0.3, "yv": 0.25}
MIN_TEST_FRAMES = 15
MANIFEST = "synthvos.json"
STEP = synthetic.YOUTUBE_STEP
STYLES = ("synthvos", "wide")
# The wide training preset (datasets/synthetic/wide.py) draws from its own streams.
WIDE_SETS = ("val", "yv")
WIDE_TAGS = {"val": 3400, "yv": 3500}
WIDE_OBJECTS = (1, 4)  # objects per DAVIS-layout video (inclusive)


@dataclass(frozen=True)
class Settings:
    """What a worker needs besides the video index (sizes may be overridden
    by the hidden test options ``--scale``, ``--frames``)."""

    out: Path
    height: int = HEIGHT
    width: int = WIDTH
    frames: int | None = None
    seed: int | None = None  # None: the reserved SynthVOS seed of each set
    style: str = "synthvos"  # "wide": the wide training preset (needs a seed)

    def seed_of(self, set_name: str) -> int:
        return synthetic.SYNTHVOS_SEEDS[set_name] if self.seed is None else self.seed


@dataclass(frozen=True)
class VideoPlan:
    """One video: size, objects and hard events (frame numbers absolute)."""

    name: str
    num_frames: int
    object_ids: tuple[int, ...]
    appear_at: tuple[int, ...]
    events: synthetic.HardEvents
    motion_frames: int | None = None


# --------------------------------------------------------------------------- #
# Planning: the benchmark definition
# --------------------------------------------------------------------------- #


def _uniform(rng: np.random.Generator, low: float, high: float) -> float:
    """A uniform draw rounded to 3 decimals, so the manifest states it exactly."""
    return round(float(rng.uniform(low, high)), 3)


def _integer(rng: np.random.Generator, low: int, high: int) -> int:
    """A uniform integer in [low, high] (just ``low`` when high < low)."""
    return low if high <= low else int(rng.integers(low, high + 1))


def _num_frames(rng: np.random.Generator, set_name: str, override: int | None) -> int:
    low, high = FRAME_RANGE[set_name]
    count = _integer(rng, low, high)
    if set_name == "yv":
        count = STEP * (count // STEP)
    if override is not None:
        count = override if set_name != "yv" else STEP * (override // STEP)
    return count


def _mild_target_event(
    rng: np.random.Generator, num_frames: int, appear: tuple[int, ...]
) -> tuple[list[synthetic.Occlusion], list[synthetic.Exit]]:
    """At most one short full occlusion or one short exit."""
    target = int(rng.integers(len(appear)))
    if rng.random() < 0.5:
        duration, approach = _integer(rng, 3, 6), 6
        start = _integer(rng, appear[target] + approach, num_frames - duration - approach)
        if start + duration + approach > num_frames:
            return [], []
        return [synthetic.Occlusion(target, start, duration, approach)], []
    duration, ramp = _integer(rng, 6, 12), 5
    start = _integer(rng, appear[target] + 5, num_frames - duration - 2 * ramp)
    if start + duration + 2 * ramp > num_frames:
        return [], []
    return [], [synthetic.Exit(target, start, duration, ramp)]


def _mild_events(
    rng: np.random.Generator, num_frames: int, appear: tuple[int, ...], probability: float
) -> synthetic.HardEvents:
    """val / yv: each kind of event with ``probability``, short and gentle."""
    count = len(appear)
    occlusions, exits, drifts, lighting, distractors = [], [], [], [], []
    if rng.random() < probability:
        occlusions, exits = _mild_target_event(rng, num_frames, appear)
    if rng.random() < probability:
        target = int(rng.integers(count))
        hue = _uniform(rng, 0.05, 0.12) * float(rng.choice([-1.0, 1.0]))
        drifts.append(
            synthetic.AppearanceDrift(target, appear[target], num_frames, hue, _uniform(rng, 0.0, 0.3))
        )
    if rng.random() < probability:
        start = _integer(rng, 0, num_frames // 2)
        end = min(num_frames, start + _integer(rng, 10, 20))
        lighting.append(
            synthetic.LightingChange(start, end, _uniform(rng, 0.75, 1.25), _uniform(rng, 0.85, 1.1))
        )
    if rng.random() < probability:
        target = int(rng.integers(count))
        distractors.append(synthetic.Distractor(target, _uniform(rng, 2.0, 3.5), appear[target]))
    return synthetic.HardEvents(
        tuple(occlusions), tuple(exits), tuple(drifts), tuple(lighting), tuple(distractors)
    )


def _long_target_events(
    rng: np.random.Generator, num_frames: int, count: int
) -> tuple[list[synthetic.Occlusion], list[synthetic.Exit]]:
    """Two full occlusions and one exit, in random order, each in its own third
    of the video between clean margins (so they never overlap in time)."""
    margin = max(1, num_frames // 12)
    bounds = np.linspace(margin, num_frames - margin, 4).astype(int)
    occlusions, exits = [], []
    for kind, lo, hi in zip(rng.permutation(["occlusion", "occlusion", "exit"]), bounds[:-1], bounds[1:]):
        length = int(hi - lo)
        target = int(rng.integers(count))
        if kind == "occlusion":
            approach = max(1, round(length * _uniform(rng, 0.06, 0.12)))
            duration = max(1, round(length * _uniform(rng, 0.08, 0.2)))
            window = 2 * approach + duration
        else:
            ramp = max(1, round(length * _uniform(rng, 0.06, 0.1)))
            duration = max(1, round(length * _uniform(rng, 0.2, 0.45)))
            window = 2 * ramp + duration
        if window > length:
            continue
        start = int(lo) + _integer(rng, 0, length - window)
        if kind == "occlusion":
            occlusions.append(synthetic.Occlusion(target, start + approach, duration, approach))
        else:
            exits.append(synthetic.Exit(target, start, duration, ramp))
    return occlusions, exits


def _long_lighting(rng: np.random.Generator, num_frames: int) -> list[synthetic.LightingChange]:
    """A dimming (with lower contrast), a later recovery, and a flicker burst."""
    changes = []
    length = max(1, round(num_frames * _uniform(rng, 0.05, 0.12)))
    dim_start = _integer(rng, num_frames // 5, num_frames // 2)
    dim_end = min(num_frames, dim_start + length)
    brightness, contrast = _uniform(rng, 0.45, 0.7), _uniform(rng, 0.7, 0.9)
    if dim_start < dim_end:
        changes.append(synthetic.LightingChange(dim_start, dim_end, brightness, contrast))
        back_start = min(num_frames - 1, dim_end + round(num_frames * _uniform(rng, 0.1, 0.25)))
        back_end = min(num_frames, back_start + length)
        if back_start < back_end:
            changes.append(
                synthetic.LightingChange(
                    back_start, back_end, round(1 / brightness, 3), round(1 / contrast, 3)
                )
            )
    flicker_length = max(2, round(num_frames * _uniform(rng, 0.03, 0.07)))
    flicker_start = _integer(rng, 0, num_frames - flicker_length)
    flicker_end = min(num_frames, flicker_start + flicker_length)
    changes.append(
        synthetic.LightingChange(flicker_start, flicker_end, flicker=_uniform(rng, 0.15, 0.3))
    )
    return changes


def _long_events(rng: np.random.Generator, num_frames: int, count: int) -> synthetic.HardEvents:
    occlusions, exits = _long_target_events(rng, num_frames, count)
    target = int(rng.integers(count))
    drift_start = _integer(rng, 0, num_frames // 3)
    drift_end = min(num_frames, drift_start + _integer(rng, num_frames // 3, num_frames // 2))
    drift_end = max(drift_end, drift_start + 1)
    hue = _uniform(rng, 0.15, 0.35) * float(rng.choice([-1.0, 1.0]))
    drift = synthetic.AppearanceDrift(target, drift_start, drift_end, hue, _uniform(rng, 0.4, 0.8))
    lighting = _long_lighting(rng, num_frames)
    distractors = [
        synthetic.Distractor(int(rng.integers(count)), _uniform(rng, 2.0, 3.5))
        for _ in range(_integer(rng, 1, 2))
    ]
    return synthetic.HardEvents(
        tuple(occlusions), tuple(exits), (drift,), tuple(lighting), tuple(distractors)
    )


def _youtube_objects(
    rng: np.random.Generator, index: int, num_frames: int
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Ids and first frames: odd videos have >= 2 objects and ids other than
    1..n; with >= 2 objects the last one enters mid-video on a sparse frame."""
    count = _integer(rng, 1, 3)
    if index % 2 == 1:
        count = max(count, 2)
    ids = list(range(1, count + 1))
    while index % 2 == 1 and ids == list(range(1, count + 1)):
        ids = sorted(int(i) for i in rng.choice(np.arange(1, 2 * count + 2), count, False))
    sparse = num_frames // STEP
    appear = [0] * count
    for k in range(1, count):
        if sparse >= 3 and (k == count - 1 or rng.random() < 0.3):
            appear[k] = STEP * _integer(rng, 1, sparse - 2)
    return tuple(ids), tuple(sorted(appear))


def _wide_events(rng: np.random.Generator, num_frames: int, appear: tuple[int, ...]) -> synthetic.HardEvents:
    """The wide preset's events: wider and more frequent than ``_mild_events``.

    A full occlusion (3-20 frames, probability 0.35) in the first half and an exit
    (5-30 frames out, probability 0.3) in the second half, each of a random object;
    drift (0.03-0.25 turns, up to 60 % of a second texture, 0.3); a lighting ramp
    (x0.6-1.4, contrast x0.7-1.2, 0.4) with flicker (+-5-20 %) in a third of them;
    one or two look-alikes (0.35).
    """
    count, half = len(appear), num_frames // 2
    occlusions, exits, drifts, lighting, distractors = [], [], [], [], []
    if rng.random() < 0.35:
        target = int(rng.integers(count))
        duration, approach = _integer(rng, 3, 20), _integer(rng, 3, 10)
        start = _integer(rng, appear[target] + approach, half - duration)
        if start - approach >= appear[target] and start + duration + approach <= num_frames:
            occlusions.append(synthetic.Occlusion(target, start, duration, approach))
    if rng.random() < 0.3:
        target = int(rng.integers(count))
        duration, ramp = _integer(rng, 5, 30), _integer(rng, 3, 10)
        start = _integer(rng, max(half, appear[target] + 1), num_frames - duration - 2 * ramp)
        if start >= appear[target] and start + duration + 2 * ramp <= num_frames:
            exits.append(synthetic.Exit(target, start, duration, ramp))
    if rng.random() < 0.3:
        target = int(rng.integers(count))
        hue = _uniform(rng, 0.03, 0.25) * float(rng.choice([-1.0, 1.0]))
        drifts.append(synthetic.AppearanceDrift(target, appear[target], num_frames, hue, _uniform(rng, 0.0, 0.6)))
    if rng.random() < 0.4:
        start = _integer(rng, 0, num_frames // 2)
        end = min(num_frames, start + _integer(rng, 5, 30))
        flicker = _uniform(rng, 0.05, 0.2) if rng.random() < 1 / 3 else 0.0
        lighting.append(
            synthetic.LightingChange(start, end, _uniform(rng, 0.6, 1.4), _uniform(rng, 0.7, 1.2), flicker)
        )
    if rng.random() < 0.35:
        for _ in range(_integer(rng, 1, 2)):
            target = int(rng.integers(count))
            distractors.append(synthetic.Distractor(target, _uniform(rng, 1.5, 4.0), appear[target]))
    return synthetic.HardEvents(
        tuple(occlusions), tuple(exits), tuple(drifts), tuple(lighting), tuple(distractors)
    )


def _plan_wide(set_name: str, index: int, seed: int, frames: int | None) -> tuple[VideoPlan, np.random.Generator]:
    """A video of the wide training preset: the SynthVOS set's lengths and objects
    (YouTube-VOS ids and entries for ``yv``, 1-4 objects for ``val``), wide events."""
    if set_name not in WIDE_SETS:
        raise ValueError(f"the wide style has the sets {WIDE_SETS}, not {set_name!r}")
    rng = np.random.default_rng([seed, WIDE_TAGS[set_name], index])
    num_frames = _num_frames(rng, set_name, frames)
    name = f"wide{seed}-{set_name}-{index:03d}"
    if set_name == "yv":
        ids, appear = _youtube_objects(rng, index, num_frames)
    else:
        count = _integer(rng, *WIDE_OBJECTS)
        ids, appear = tuple(range(1, count + 1)), (0,) * count
    return VideoPlan(name, num_frames, ids, appear, _wide_events(rng, num_frames, appear)), rng


def plan_video(
    set_name: str, index: int, seed: int, frames: int | None = None, style: str = "synthvos"
) -> tuple[VideoPlan, np.random.Generator]:
    """The plan of video ``index`` and the generator, positioned to render it."""
    if style == "wide":
        return _plan_wide(set_name, index, seed, frames)
    if style != "synthvos":
        raise ValueError(f"unknown style {style!r}; expected one of {STYLES}")
    rng = np.random.default_rng([seed, TAGS[set_name], index])
    num_frames = _num_frames(rng, set_name, frames)
    prefix = "synthvos" if seed == synthetic.SYNTHVOS_SEEDS[set_name] else f"synthstyle{seed}"
    name = f"{prefix}-{set_name}-{index:03d}"
    if set_name == "yv":
        ids, appear = _youtube_objects(rng, index, num_frames)
        events = _mild_events(rng, num_frames, appear, MILD_EVENT_PROBABILITY["yv"])
        return VideoPlan(name, num_frames, ids, appear, events), rng
    count = _integer(rng, 1, 3) if set_name == "val" else 2 + index % 2
    ids, appear = tuple(range(1, count + 1)), (0,) * count
    if set_name == "val":
        events = _mild_events(rng, num_frames, appear, MILD_EVENT_PROBABILITY["val"])
        return VideoPlan(name, num_frames, ids, appear, events), rng
    events = _long_events(rng, num_frames, count)
    return VideoPlan(name, num_frames, ids, appear, events, LONG_MOTION_FRAMES), rng


def timeline(plan: VideoPlan) -> list[str]:
    """The plan's events in words, with object ids and inclusive frame ranges."""
    ids, last = plan.object_ids, plan.num_frames - 1
    lines = []
    for o in plan.events.occlusions:
        seen = (max(0, o.start - o.approach), min(last, o.start + o.duration + o.approach - 1))
        lines.append(
            f"occlusion: object {ids[o.target]} fully hidden on frames {o.start}-{o.start + o.duration - 1} "
            f"(occluder in the scene {seen[0]}-{seen[1]})"
        )
    for e in plan.events.exits:
        lines.append(
            f"exit: object {ids[e.target]} leaves on frames {e.start}-{e.start + e.ramp - 1}, is out of view "
            f"at least on {e.start + e.ramp}-{e.start + e.ramp + e.duration - 1}, back by {e.start + 2 * e.ramp + e.duration}"
        )
    for d in plan.events.drifts:
        lines.append(
            f"drift: object {ids[d.target]} hue {d.hue_shift:+.3f} turns, second texture up to "
            f"{d.texture_blend:.3f}, frames {d.start}-{d.end}"
        )
    for c in plan.events.lighting:
        if c.flicker:
            lines.append(f"lighting: flicker +-{c.flicker:.3f} on frames {c.start}-{c.end - 1}")
        if c.brightness != 1 or c.contrast != 1:
            lines.append(
                f"lighting: brightness x{c.brightness:.3f}, contrast x{c.contrast:.3f} ramped over frames {c.start}-{c.end}"
            )
    for x in plan.events.distractors:
        lines.append(f"distractor: look-alike of object {ids[x.target]} on frames {x.appear_at}-{last} (not annotated)")
    return lines


# --------------------------------------------------------------------------- #
# Writing one video (runs in a worker)
# --------------------------------------------------------------------------- #


class _Presence:
    """Per object, the frames where its ground-truth mask is empty."""

    def __init__(self, ids: Iterable[int]) -> None:
        self.ids = list(ids)
        self.empty: dict[int, list[int]] = {i: [] for i in self.ids}

    def add(self, t: int, mask: np.ndarray) -> None:
        areas = np.bincount(mask.ravel(), minlength=256)
        for i in self.ids:
            if areas[i] == 0:
                self.empty[i].append(t)

    def ranges(self, object_id: int, after: int) -> list[list[int]]:
        """Inclusive ``[first, last]`` runs of empty frames from ``after`` on."""
        runs: list[list[int]] = []
        for t in self.empty[object_id]:
            if t < after:
                continue
            if runs and runs[-1][1] == t - 1:
                runs[-1][1] = t
            else:
                runs.append([t, t])
        return runs


def _write_davis(root: Path, name: str, frames: Iterator[tuple[np.ndarray, np.ndarray]], presence: _Presence) -> dict:
    """Every frame and its full annotation; returns no meta entry (DAVIS has none)."""
    base = layouts.davis_folder(root / "2017", "val")
    for t, (frame, mask) in enumerate(frames):
        _write_bytes(layouts.davis_frames(base, name) / f"{_frame_name(t)}.jpg", synthetic.encode_jpeg(frame))
        synthetic.write_palette_png(layouts.davis_annotations(base, name) / f"{_frame_name(t)}.png", mask)
        presence.add(t, mask)
    return {}


def _write_youtube(root: Path, name: str, frames: Iterator[tuple[np.ndarray, np.ndarray]], presence: _Presence) -> dict:
    """All frames, every 5th frame, first-appearance annotations and full
    ground truth; returns the video's meta.json objects entry."""
    sparse_frames: dict[int, list[str]] = {i: [] for i in presence.ids}
    for t, (frame, mask) in enumerate(frames):
        data = synthetic.encode_jpeg(frame)
        _write_bytes(layouts.youtube_frames(root, "valid", name=name) / f"{_frame_name(t)}.jpg", data)
        synthetic.write_palette_png(layouts.youtube_ground_truth(root, "valid", name) / f"{_frame_name(t)}.png", mask)
        presence.add(t, mask)
        if t % STEP:
            continue
        _write_bytes(layouts.youtube_frames(root, "valid", sparse=True, name=name) / f"{_frame_name(t)}.jpg", data)
        visible = [i for i in presence.ids if (mask == i).any()]
        new = [i for i in visible if not sparse_frames[i]]
        for i in visible:
            sparse_frames[i].append(_frame_name(t))
        if new:
            first = np.where(np.isin(mask, new), mask, 0).astype(np.uint8)
            synthetic.write_palette_png(layouts.youtube_annotations(root, "valid", name) / f"{_frame_name(t)}.png", first)
    return {str(i): {"category": "synthetic", "frames": f} for i, f in sparse_frames.items() if f}


def make_video(job: tuple[str, int, Settings]) -> dict:
    """Render and write one video; return its manifest entry."""
    set_name, index, settings = job
    plan, rng = plan_video(set_name, index, settings.seed_of(set_name), settings.frames, settings.style)
    spec = synthetic.VideoSpec(plan.num_frames,
        settings.height,
        settings.width,
        len(plan.object_ids),
        appear_at=plan.appear_at,
        object_ids=plan.object_ids,
        events=plan.events,
        motion_frames=plan.motion_frames)
    look = None
    if settings.style == "wide":
        scene = wide.sample_wide_scene(rng, spec)
        frames, look = wide.wide_frames(rng, scene), scene.facts
    else:
        frames = synthetic.iter_video(rng, spec)
    presence = _Presence(plan.object_ids)
    writer = _write_youtube if set_name == "yv" else _write_davis
    meta_objects = writer(settings.out / set_name, plan.name, frames, presence)
    entry = {
        "name": plan.name,
        "num_frames": plan.num_frames,
        "motion_frames": plan.motion_frames,
        "objects": [
            {"id": i, "appear_at": a, "empty_mask_frames": presence.ranges(i, a)}
            for i, a in zip(plan.object_ids, plan.appear_at)
        ],
        "events": dataclasses.asdict(plan.events),
        "timeline": timeline(plan),
    }
    if look is not None:
        entry["look"] = look
    if set_name == "yv":
        entry["meta_objects"] = meta_objects
    return entry


def init_worker() -> None:
    cv2.setNumThreads(1)


# --------------------------------------------------------------------------- #
# Sets
# --------------------------------------------------------------------------- #


def _finish_set(root: Path, set_name: str, entries: list[dict], settings: Settings) -> None:
    """Write the sequence list (DAVIS) or meta.json (YouTube-VOS) and the manifest."""
    names = [entry["name"] for entry in entries]
    if set_name == "yv":
        meta = {"videos": {e["name"]: {"objects": e.pop("meta_objects")} for e in entries}}
        write_youtube_meta(root, "valid", meta)
    else:
        _write_list(layouts.davis_image_set(layouts.davis_folder(root / "2017", "val"), "2017", "val"), names)
    manifest = {
        "set": set_name,
        "seed": settings.seed_of(set_name),
        "tag": WIDE_TAGS[set_name] if settings.style == "wide" else TAGS[set_name],
        "height": settings.height,
        "width": settings.width,
        "videos": entries,
    }
    if settings.style != "synthvos":
        manifest = {"style": settings.style, **manifest}
    (root / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")


def _folder_size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def make_set(set_name: str, num_videos: int, settings: Settings, pool: multiprocessing.pool.Pool | None) -> str:
    """Generate one set; return its one-line summary."""
    start = time.perf_counter()
    jobs = [(set_name, index, settings) for index in range(num_videos)]
    entries = pool.map(make_video, jobs, chunksize=1) if pool else [make_video(job) for job in jobs]
    root = settings.out / set_name
    _finish_set(root, set_name, entries, settings)
    frames = sum(e["num_frames"] for e in entries)
    objects = sum(len(e["objects"]) for e in entries)
    return (
        f"{set_name}: {len(entries)} videos, {frames} frames, {objects} objects, "
        f"{settings.height}x{settings.width}, seed {settings.seed_of(set_name)}, "
        f"{_folder_size(root) / 1e6:.1f} MB in {root} ({time.perf_counter() - start:.1f}s)"
    )
