"""Hard events: occluders, distractors, exits, appearance drift and lighting flicker."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

import cv2
import numpy as np

from datasets.synthetic.constants import _SHAPE_EXTENT, MIN_SIZE, SHAPE_KINDS, TEXTURE_KINDS
from datasets.synthetic.objects import sample_object
from datasets.synthetic.scene import (
    AppearanceDrift,
    Distractor,
    Exit,
    LightingChange,
    ObjectStyle,
    Occlusion,
    PathTrajectory,
    SyntheticObject,
)
from datasets.synthetic.textures import make_texture


def _complete_style(rng: np.random.Generator, style: ObjectStyle | None) -> ObjectStyle:
    """Fill in the unset parts of ``style`` at random."""
    style = style or ObjectStyle()
    return ObjectStyle(
        shape=style.shape or str(rng.choice(SHAPE_KINDS)),
        texture=style.texture or str(rng.choice(TEXTURE_KINDS)),
        hue=float(rng.uniform()) if style.hue is None else style.hue,
    )


def _styles_for_distractors(
    rng: np.random.Generator,
    styles: Sequence[ObjectStyle | None],
    distractors: Sequence[Distractor],
) -> list[ObjectStyle | None]:
    """Fix a full style for every object that has a look-alike distractor."""
    styles = list(styles)
    for index in sorted({d.target for d in distractors}):
        styles[index] = _complete_style(rng, styles[index])
    return styles


def _exit_windows(
    exits: Sequence[Exit], count: int
) -> list[tuple[int, int, int] | None]:
    windows: list[tuple[int, int, int] | None] = [None] * count
    for exit_ in exits:
        windows[exit_.target] = (exit_.start, exit_.duration, exit_.ramp)
    return windows


def _alpha_radius(alpha: np.ndarray) -> float:
    """Farthest covered canvas pixel from the canvas centre (the point a pose
    places), plus one pixel for the bilinear footprint."""
    ys, xs = np.nonzero(alpha > 0)
    if len(xs) == 0:
        return 1.0
    half = alpha.shape[0] / 2.0
    return float(np.sqrt((xs - half) ** 2 + (ys - half) ** 2).max()) + 1.0


def _inner_radius(alpha: np.ndarray) -> float:
    """Distance from the canvas centre to the nearest uncovered canvas pixel."""
    distance = cv2.distanceTransform((alpha > 0).astype(np.uint8), cv2.DIST_L2, 5)
    centre = alpha.shape[0] // 2
    return float(distance[centre, centre])


def _object_radius(obj: SyntheticObject, t: int) -> float:
    """Radius in frame pixels of the disc around the object's centre that
    contains every pixel it covers at ``t``."""
    return obj.trajectory.pose(t)[2] * _alpha_radius(obj.alpha)


def _distance_to_leave(
    point: np.ndarray, direction: np.ndarray, height: int, width: int, margin: float
) -> float:
    """How far ``point`` moves along ``direction`` until it is ``margin`` pixels
    outside the frame."""
    distances = []
    for axis, limit in ((0, width), (1, height)):
        step = float(direction[axis])
        if abs(step) > 1e-9:
            bound = limit + margin if step > 0 else -margin
            distances.append((bound - float(point[axis])) / step)
    return max(0.0, min(distances))


def _occluder_centres(
    target: SyntheticObject,
    spec: Occlusion,
    heading: float,
    outer: float,
    num_frames: int,
    height: int,
    width: int,
) -> list[tuple[float, float]]:
    """Occluder centres from ``start - approach``: in from outside the frame,
    exactly on the target's centre during the occlusion, out the other side."""
    end = spec.start + spec.duration

    def centre(t: int) -> np.ndarray:
        return np.array(target.trajectory.pose(min(max(t, spec.start), end - 1))[:2])

    direction = np.array([math.cos(heading), math.sin(heading)])
    first, last = centre(spec.start), centre(end - 1)
    entry = first + direction * _distance_to_leave(first, direction, height, width, outer)
    leave = last - direction * _distance_to_leave(last, -direction, height, width, outer)
    centres = []
    for t in range(max(0, spec.start - spec.approach), min(num_frames, end + spec.approach)):
        here = centre(t)
        if t < spec.start:
            s = (t - spec.start + spec.approach) / spec.approach
            here = entry + (here - entry) * s
        elif t >= end:
            s = (t - end + 1) / spec.approach
            here = here + (leave - here) * s
        centres.append((float(here[0]), float(here[1])))
    return centres


def _occluder_shape(rng: np.random.Generator, size: int) -> np.ndarray:
    """A nearly round ellipse, so that hiding a target needs no huge occluder."""
    canvas = np.zeros((size, size), dtype=np.uint8)
    extent = _SHAPE_EXTENT * size
    axes = (round(extent), max(1, round(extent * float(rng.uniform(0.75, 1.0)))))
    centre = (round(size / 2.0), round(size / 2.0))
    cv2.ellipse(canvas, centre, axes, float(rng.uniform(0.0, 180.0)), 0, 360, 1, -1)
    return canvas.astype(np.float32)


def _occluder(
    rng: np.random.Generator,
    target: SyntheticObject,
    spec: Occlusion,
    num_frames: int,
    height: int,
    width: int,
) -> SyntheticObject:
    """An object whose fully opaque core covers ``target`` during the occlusion.

    The core (pixels whose bilinear footprint is inside the shape) is scaled to
    exceed the target's largest radius in the window by two pixels.
    """
    window = range(spec.start, spec.start + spec.duration)
    reach = max(_object_radius(target, t) for t in window) + 2.0
    size = max(MIN_SIZE, math.ceil(reach / (0.75 * _SHAPE_EXTENT)) + 4)
    alpha = _occluder_shape(rng, size)
    scale = reach / max(_inner_radius(alpha) - 1.5, 1.0)
    unit = min(height, width) * float(rng.uniform(0.03, 0.09)) / scale
    texture = make_texture(rng, size, size, unit)
    heading = float(rng.uniform(0.0, 2 * math.pi))
    angle, spin = float(rng.uniform(0.0, 360.0)), float(rng.uniform(-2.0, 2.0))
    outer = scale * _alpha_radius(alpha)
    centres = _occluder_centres(target, spec, heading, outer, num_frames, height, width)
    poses = tuple((x, y, scale, angle + spin * k) for k, (x, y) in enumerate(centres))
    path = PathTrajectory(appear_at=max(0, spec.start - spec.approach), poses=poses)
    return SyntheticObject(texture=texture, alpha=alpha, trajectory=path)


def _distractor(
    rng: np.random.Generator,
    target: SyntheticObject,
    style: ObjectStyle,
    spec: Distractor,
    num_frames: int,
    height: int,
    width: int,
    motion_frames: int | None,
) -> SyntheticObject:
    """A look-alike with the target's style and size, wobbling like the target
    (with shifted phases) around a point ``spec.distance`` radii from it."""
    obj = sample_object(
        rng,
        num_frames,
        height,
        width,
        appear_at=spec.appear_at,
        style=style,
        motion_frames=motion_frames,
    )
    ref = target.trajectory
    radius = ref.scale * _SHAPE_EXTENT * target.alpha.shape[0]
    scale = radius * float(rng.uniform(0.8, 1.2)) / (_SHAPE_EXTENT * obj.alpha.shape[0])
    heading = float(rng.uniform(0.0, 2 * math.pi))
    centre = (
        float(np.clip(ref.center[0] + spec.distance * radius * math.cos(heading), 0.15 * width, 0.85 * width)),
        float(np.clip(ref.center[1] + spec.distance * radius * math.sin(heading), 0.15 * height, 0.85 * height)),
    )
    phase = tuple(p + float(rng.uniform(-0.6, 0.6)) for p in ref.phase)
    trajectory = replace(
        obj.trajectory,
        center=centre,
        amplitude=ref.amplitude,
        frequency=ref.frequency,
        phase=phase,
        scale=scale,
    )
    return replace(obj, trajectory=trajectory)


def _drift_texture(
    rng: np.random.Generator, target: SyntheticObject, spec: AppearanceDrift
) -> np.ndarray | None:
    """The second texture a drift blends in (None when it blends none)."""
    if spec.texture_blend <= 0:
        return None
    size = target.texture.shape[0]
    return make_texture(rng, size, size, size * float(rng.uniform(0.05, 0.15)))


def _flicker(rng: np.random.Generator, change: LightingChange) -> np.ndarray | None:
    if change.flicker <= 0:
        return None
    return rng.uniform(-1.0, 1.0, change.end - change.start)


# --------------------------------------------------------------------------- #
# Scenes: everything a video needs, rendered one frame at a time
# --------------------------------------------------------------------------- #
