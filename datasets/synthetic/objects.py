"""Sampling annotated objects (shape, texture, trajectory) that start visible."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from datasets.synthetic.constants import _MIN_VISIBLE_FRACTION, _SAMPLE_TRIES, _SHAPE_EXTENT, MIN_SIZE
from datasets.synthetic.render import _object_alpha
from datasets.synthetic.scene import ObjectStyle, SyntheticObject, Trajectory
from datasets.synthetic.textures import make_shape, make_texture


def _exit_offset(
    center: tuple[float, float],
    amplitude: tuple[float, float],
    reach: float,
    height: int,
    width: int,
) -> tuple[float, float]:
    """Offset that carries the object fully out through the nearest frame edge.

    The object is out of view at least while ``sin(pi * u) > 1 / 1.2``, i.e.
    for the middle third of its lifetime (usually longer).
    """
    distances = (center[0], width - center[0], center[1], height - center[1])
    edge = int(np.argmin(distances))
    axis = 0 if edge < 2 else 1
    sign = -1.0 if edge % 2 == 0 else 1.0
    length = 1.2 * (distances[edge] + 2 * amplitude[axis] + reach + 1.0)
    return (sign * length, 0.0) if axis == 0 else (0.0, sign * length)


def sample_object(
    rng: np.random.Generator,
    num_frames: int,
    height: int,
    width: int,
    *,
    appear_at: int = 0,
    leave_return: bool = False,
    style: ObjectStyle | None = None,
    exit_window: tuple[int, int, int] | None = None,
    motion_frames: int | None = None,
) -> SyntheticObject:
    """A random textured object and its trajectory within an H x W frame.

    The object starts (at ``appear_at``) well inside the frame. With
    ``leave_return`` it leaves the frame mid-life and comes back; with
    ``exit_window`` ``(start, frames_out, ramp)`` it does so at those frames
    (see ``Exit``). Its motion (wobble, scale, rotation) has the time scale of
    ``motion_frames`` frames (default: ``num_frames``), so long videos can keep
    short-video dynamics.
    """
    if leave_return and exit_window is not None:
        raise ValueError("leave_return and exit_window are exclusive")
    period = max(num_frames if motion_frames is None else motion_frames, 1)
    style = style or ObjectStyle()
    radius = min(height, width) * float(rng.uniform(0.12, 0.28))
    size = max(MIN_SIZE, math.ceil(1.5 * radius / _SHAPE_EXTENT))
    alpha = make_shape(rng, size, style.shape)
    unit = min(height, width) * float(rng.uniform(0.03, 0.09)) * size / radius
    texture = make_texture(rng, size, size, unit, style.texture, True, style.hue)
    center = (
        float(rng.uniform(0.25, 0.75)) * width,
        float(rng.uniform(0.25, 0.75)) * height,
    )
    amplitude = (
        float(rng.uniform(0.05, 0.2)) * width,
        float(rng.uniform(0.05, 0.2)) * height,
    )
    cycles = rng.uniform(0.25, 0.8, size=3)
    scale_amplitude = float(rng.uniform(0.1, 0.3))
    scale = radius / (_SHAPE_EXTENT * size)
    reach = radius * math.exp(2 * scale_amplitude)
    exit_offset = (0.0, 0.0)
    if leave_return or exit_window is not None:
        exit_offset = _exit_offset(center, amplitude, reach, height, width)
    return SyntheticObject(
        texture=texture,
        alpha=alpha,
        trajectory=Trajectory(
            center=center,
            amplitude=amplitude,
            frequency=tuple(2 * math.pi * cycles[:2] / period),
            phase=tuple(rng.uniform(0.0, 2 * math.pi, size=2)),
            scale=scale,
            scale_amplitude=scale_amplitude,
            scale_frequency=2 * math.pi * float(cycles[2]) / period,
            scale_phase=float(rng.uniform(0.0, 2 * math.pi)),
            angle=float(rng.uniform(0.0, 360.0)),
            angle_speed=float(rng.uniform(-60.0, 60.0)) / period,
            appear_at=appear_at,
            lifetime=num_frames - appear_at,
            exit_offset=exit_offset,
            exit_window=exit_window,
        ),
    )


def _visible_enough(
    objects: Sequence[SyntheticObject], height: int, width: int, min_area: float | None = None
) -> bool:
    """Whether every object is clearly visible on the frame where it appears: at least ``min_area`` pixels
    (default: 0.2 % of the frame, at least 4) of which a share is not covered by the objects above it."""
    min_area = max(4.0, 0.002 * height * width) if min_area is None else min_area
    for index, obj in enumerate(objects):
        t = obj.trajectory.appear_at
        own = _object_alpha(obj, t, height, width) > 0.5
        area = int(own.sum())
        if area < min_area:
            return False
        covered = np.zeros_like(own)
        for above in objects[index + 1 :]:
            alpha = _object_alpha(above, t, height, width)
            if alpha is not None:
                covered |= alpha > 0.5
        if (own & ~covered).sum() < _MIN_VISIBLE_FRACTION * area:
            return False
    return True


def _sample_objects(
    rng: np.random.Generator,
    num_frames: int,
    height: int,
    width: int,
    appear_at: Sequence[int],
    leave_return: Sequence[bool],
    styles: Sequence[ObjectStyle | None],
    exit_windows: Sequence[tuple[int, int, int] | None] | None = None,
    motion_frames: int | None = None,
) -> list[SyntheticObject]:
    """Sample objects, resampling (deterministically) until none starts hidden."""
    objects: list[SyntheticObject] = []
    windows = [None] * len(styles) if exit_windows is None else exit_windows
    for _ in range(_SAMPLE_TRIES):
        objects = [
            sample_object(
                rng,
                num_frames,
                height,
                width,
                appear_at=int(appear),
                leave_return=bool(leave),
                style=style,
                exit_window=window,
                motion_frames=motion_frames,
            )
            for appear, leave, style, window in zip(
                appear_at, leave_return, styles, windows, strict=True
            )
        ]
        if _visible_enough(objects, height, width):
            break
    return objects
