"""Deterministic synthetic video object segmentation data in the real folder layouts.

Tests and examples use this module instead of downloaded datasets. It renders
textured objects (ellipses, polygons, blobs filled with noise, stripes, checker
or gradient textures) that move, scale, rotate and occlude each other over a
panning textured background, and writes the result in the layouts of DAVIS 2016,
DAVIS 2017 (trainval and test-dev), YouTube-VOS (train and valid) and the static
image sets used for pre-training (FSS-1000, DUTS, ECSSD, BIG, HRSOD).

Optional hard events (``HardEvents``) add full occlusions by non-annotated
occluders, long exits from the frame, appearance drift, global lighting changes
and look-alike distractors; ``iter_video`` renders frame by frame so long videos
need not be held in memory. The SynthVOS benchmark (``scripts/make_synthvos.py``,
docs/SYNTHVOS.md) is built from these with the reserved ``SYNTHVOS_SEEDS``.

Everything is a function of the seed. Each video gets its own generator,
``np.random.default_rng([seed, tag, index])``, so a video's content does not
depend on how many videos are generated before it.
"""

from __future__ import annotations

import colorsys
import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType

import cv2
import numpy as np
from PIL import Image

from util.palette import davis_palette

TEXTURE_KINDS = ("noise", "stripes", "checker", "gradient")
SHAPE_KINDS = ("ellipse", "polygon", "blob")
MIN_SIZE = 16
MAX_OBJECT_ID = 255
JPEG_QUALITY = 95
YOUTUBE_STEP = 5
STATIC_SETS = ("DUTS-TR", "DUTS-TE", "ecssd", "BIG_small", "HRSOD_small")
HIGH_RES_SETS = ("BIG_small", "HRSOD_small")

# Seeds of the SynthVOS benchmark sets (scripts/make_synthvos.py). They are
# reserved for evaluation: training data must be generated with other seeds.
SYNTHVOS_SEEDS = MappingProxyType({"val": 2022, "long": 2023, "yv": 2024})

# Generator tags keep the streams of the different layouts apart.
_TAG_DAVIS2017 = 17
_TAG_DAVIS2016 = 16
_TAG_TESTDEV = 1701
_TAG_YOUTUBE = {"train": 1800, "valid": 1801, "test": 1802}
_TAG_FSS = 1000
_TAG_STATIC = 2000

_SHAPE_EXTENT = 0.46  # farthest shape pixel from the canvas centre, in canvas sizes
_MIN_VISIBLE_FRACTION = 0.4
_SAMPLE_TRIES = 20

Pose = tuple[float, float, float, float]  # centre x, centre y, scale, angle (degrees)


def assert_not_synthvos_seed(seed: int) -> None:
    """Raise ValueError if ``seed`` is one of the reserved SynthVOS seeds.

    Scripts that generate training data call this so that a model is never
    trained on the videos it is evaluated on.
    """
    reserved = {value: name for name, value in SYNTHVOS_SEEDS.items()}
    if int(seed) in reserved:
        raise ValueError(
            f"seed {seed} is reserved for the SynthVOS {reserved[int(seed)]!r} set; "
            f"use a seed other than {sorted(reserved)} for training data"
        )


@dataclass(frozen=True)
class ObjectStyle:
    """Optional fixed appearance of an object (e.g. a few-shot class)."""

    shape: str | None = None
    texture: str | None = None
    hue: float | None = None


# --------------------------------------------------------------------------- #
# Hard events (all frame numbers are absolute; ``target`` indexes the objects)
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class Occlusion:
    """A non-annotated occluder slides in, hides object ``target`` completely on
    frames ``[start, start + duration)`` (following it), then slides out.

    The occluder comes from outside the frame over ``approach`` frames, is drawn
    on top of everything and clears the masks under it (mask value 0).
    """

    target: int
    start: int
    duration: int
    approach: int = 8


@dataclass(frozen=True)
class Exit:
    """Object ``target`` leaves through its nearest frame edge and comes back.

    It starts leaving at ``start``, is fully out of view at least on frames
    ``[start + ramp, start + ramp + duration)`` and is back on its normal path
    from ``start + 2 * ramp + duration``.
    """

    target: int
    start: int
    duration: int
    ramp: int = 10


@dataclass(frozen=True)
class AppearanceDrift:
    """Object ``target``'s texture drifts from ``start`` to ``end``.

    Its hue turns by ``hue_shift`` (in turns of the colour wheel) and a second
    random texture is blended in up to weight ``texture_blend``; the change
    is linear in time and stays after ``end``.
    """

    target: int
    start: int
    end: int
    hue_shift: float = 0.2
    texture_blend: float = 0.0


@dataclass(frozen=True)
class LightingChange:
    """A global change of the whole frame (background and objects).

    Brightness (a gain) and contrast (around mid-grey) ramp linearly from 1 at
    ``start`` to ``brightness`` and ``contrast`` at ``end`` and stay there.
    With ``flicker`` > 0 the gain also jumps randomly by up to ``+-flicker``
    (relative) on each frame in ``[start, end)``. Changes compose by product.
    """

    start: int
    end: int
    brightness: float = 1.0
    contrast: float = 1.0
    flicker: float = 0.0


@dataclass(frozen=True)
class Distractor:
    """A non-annotated look-alike of object ``target`` moving near it.

    It has the target's ``ObjectStyle`` (shape kind, texture kind and hue; one
    is sampled for the target when it has none), a similar size and the same
    kind of motion, about ``distance`` target radii away, and exists from
    ``appear_at``. It is drawn below the annotated objects.
    """

    target: int
    distance: float = 2.5
    appear_at: int = 0


@dataclass(frozen=True)
class HardEvents:
    """The hard events of one video (see ``render_video``'s ``events``)."""

    occlusions: tuple[Occlusion, ...] = ()
    exits: tuple[Exit, ...] = ()
    drifts: tuple[AppearanceDrift, ...] = ()
    lighting: tuple[LightingChange, ...] = ()
    distractors: tuple[Distractor, ...] = ()

    def __bool__(self) -> bool:
        return any(
            (self.occlusions, self.exits, self.drifts, self.lighting, self.distractors)
        )


def _plateau(x: int, hold: int, ramp: int) -> float:
    """0 -> 1 over ``ramp`` steps (smoothstep), 1 for ``hold``, then back to 0."""
    if x <= 0 or x >= 2 * ramp + hold:
        return 0.0
    if ramp <= x <= ramp + hold:
        return 1.0
    v = x / ramp if x < ramp else (2 * ramp + hold - x) / ramp
    return v * v * (3.0 - 2.0 * v)


@dataclass(frozen=True)
class Trajectory:
    """Smooth screen-space motion of one object.

    The centre wobbles sinusoidally around ``center`` (starting exactly there),
    the scale oscillates in log space, the angle turns at a constant speed, and
    an optional excursion ``exit_offset * sin(pi * u)`` (u: 0 -> 1 over the
    object's lifetime) carries the object out of the frame and back. With
    ``exit_window`` ``(start, frames_out, ramp)`` the excursion instead follows
    ``_plateau``: out over ``ramp`` frames from ``start``, out of view for
    ``frames_out`` frames, back over ``ramp`` frames.
    """

    center: tuple[float, float]
    amplitude: tuple[float, float]
    frequency: tuple[float, float]
    phase: tuple[float, float]
    scale: float
    scale_amplitude: float
    scale_frequency: float
    scale_phase: float
    angle: float
    angle_speed: float
    appear_at: int
    lifetime: int
    exit_offset: tuple[float, float] = (0.0, 0.0)
    exit_window: tuple[int, int, int] | None = None

    def pose(self, t: int) -> Pose | None:
        """Pose at frame ``t``, or None while the object has not appeared yet."""
        if t < self.appear_at:
            return None
        tau = t - self.appear_at
        if self.exit_window is None:
            u = tau / max(self.lifetime - 1, 1)
            excursion = math.sin(math.pi * u)
        else:
            start, frames_out, ramp = self.exit_window
            excursion = _plateau(t - start, frames_out, ramp)
        xy = []
        for axis in range(2):
            wobble = math.sin(self.frequency[axis] * tau + self.phase[axis])
            wobble -= math.sin(self.phase[axis])
            xy.append(
                self.center[axis]
                + self.amplitude[axis] * wobble
                + self.exit_offset[axis] * excursion
            )
        log_scale = math.sin(self.scale_frequency * tau + self.scale_phase)
        log_scale -= math.sin(self.scale_phase)
        scale = self.scale * math.exp(self.scale_amplitude * log_scale)
        return xy[0], xy[1], scale, self.angle + self.angle_speed * tau


@dataclass(frozen=True)
class PathTrajectory:
    """Explicit per-frame poses: ``poses[k]`` is the pose at ``appear_at + k``;
    the object does not exist before or after (used for occluders)."""

    appear_at: int
    poses: tuple[Pose, ...]

    def pose(self, t: int) -> Pose | None:
        """Pose at frame ``t``, or None outside the path."""
        k = t - self.appear_at
        return self.poses[k] if 0 <= k < len(self.poses) else None


@dataclass(frozen=True)
class SyntheticObject:
    """A textured shape on a square canvas plus its trajectory."""

    texture: np.ndarray  # S x S x 3 float32, values 0..255
    alpha: np.ndarray  # S x S float32, 0 or 1
    trajectory: Trajectory | PathTrajectory


@dataclass(frozen=True)
class Background:
    """A texture larger than the frame; the camera pans a frame-sized window."""

    texture: np.ndarray  # (H + 2 pad_y) x (W + 2 pad_x) x 3 float32
    pad: tuple[float, float]
    amplitude: tuple[float, float]
    frequency: tuple[float, float]
    phase: tuple[float, float]

    def view(self, t: int, height: int, width: int) -> np.ndarray:
        """The H x W x 3 float32 window the camera sees at frame ``t``."""
        offset = [
            self.pad[axis]
            + self.amplitude[axis]
            * math.sin(self.frequency[axis] * t + self.phase[axis])
            for axis in range(2)
        ]
        matrix = np.float32([[1, 0, -offset[0]], [0, 1, -offset[1]]])
        return cv2.warpAffine(
            self.texture,
            matrix,
            (width, height),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REFLECT,
        )


# --------------------------------------------------------------------------- #
# Procedural textures and shapes
# --------------------------------------------------------------------------- #


def _hsv_colour(hue: float, saturation: float, value: float) -> np.ndarray:
    rgb = colorsys.hsv_to_rgb(hue % 1.0, saturation, value)
    return np.asarray(rgb, dtype=np.float32) * 255.0


def _colour_pair(
    rng: np.random.Generator, saturated: bool, hue: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Two contrasting colours: vivid for objects, muted for the background."""
    hue = float(rng.uniform()) if hue is None else hue
    hue2 = hue + float(rng.uniform(0.08, 0.3)) * float(rng.choice([-1.0, 1.0]))
    low, high = (0.6, 1.0) if saturated else (0.0, 0.3)
    sat = rng.uniform(low, high, size=2)
    value = float(rng.uniform(0.5, 0.95) if saturated else rng.uniform(0.3, 0.7))
    value2 = value + float(rng.uniform(0.15, 0.35)) * float(rng.choice([-1.0, 1.0]))
    value2 = float(np.clip(value2, 0.1, 1.0))
    return _hsv_colour(hue, sat[0], value), _hsv_colour(hue2, sat[1], value2)


def _smooth_noise(
    rng: np.random.Generator, height: int, width: int, cell: float
) -> np.ndarray:
    """Value noise in [0, 1] with features about ``cell`` pixels wide."""
    grid_h = max(2, math.ceil(height / cell) + 1)
    grid_w = max(2, math.ceil(width / cell) + 1)
    grid = rng.random((grid_h, grid_w), dtype=np.float32)
    noise = cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)
    noise -= noise.min()
    return noise / max(float(noise.max()), 1e-6)


def _rotated_coords(
    rng: np.random.Generator, height: int, width: int
) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    theta = float(rng.uniform(0.0, math.pi))
    u = xx * math.cos(theta) + yy * math.sin(theta)
    v = -xx * math.sin(theta) + yy * math.cos(theta)
    return u, v


def _pattern(
    rng: np.random.Generator, kind: str, height: int, width: int, unit: float
) -> np.ndarray:
    """A single-channel pattern in [0, 1]; ``unit`` sets the feature size."""
    if kind == "noise":
        return _smooth_noise(rng, height, width, unit * float(rng.uniform(0.8, 2.5)))
    u, v = _rotated_coords(rng, height, width)
    if kind == "stripes":
        period = unit * float(rng.uniform(0.6, 1.6))
        wave = 0.5 + 0.5 * np.sin(2 * math.pi * u / period + float(rng.uniform(0, 6.3)))
        sharpness = float(rng.uniform(1.0, 4.0))
        return np.clip((wave - 0.5) * sharpness + 0.5, 0.0, 1.0)
    if kind == "checker":
        cell = unit * float(rng.uniform(0.4, 1.0))
        return ((np.floor(u / cell) + np.floor(v / cell)) % 2).astype(np.float32)
    if kind == "gradient":
        ramp = (u - u.min()) / max(float(u.max() - u.min()), 1e-6)
        return np.clip(
            ramp + 0.25 * (_smooth_noise(rng, height, width, unit) - 0.5), 0, 1
        )
    raise ValueError(f"unknown texture kind {kind!r}; expected one of {TEXTURE_KINDS}")


def make_texture(
    rng: np.random.Generator,
    height: int,
    width: int,
    unit: float,
    kind: str | None = None,
    saturated: bool = True,
    hue: float | None = None,
) -> np.ndarray:
    """Procedural H x W x 3 float32 texture (values 0..255).

    ``kind`` is one of TEXTURE_KINDS (random when None); ``unit`` is the
    feature size in pixels. Saturated textures are used for objects and muted
    ones for the background, so objects stand out by colour and texture.
    """
    kind = str(rng.choice(TEXTURE_KINDS)) if kind is None else kind
    colour1, colour2 = _colour_pair(rng, saturated, hue)
    weight = _pattern(rng, kind, height, width, unit)[..., None]
    texture = colour1 * (1.0 - weight) + colour2 * weight
    grain = rng.normal(0.0, 4.0, size=(height, width, 1)).astype(np.float32)
    return np.clip(texture + grain, 0.0, 255.0).astype(np.float32)


def make_shape(
    rng: np.random.Generator, size: int, kind: str | None = None
) -> np.ndarray:
    """Binary ``size`` x ``size`` float32 mask of an ellipse, polygon or blob.

    The shape is centred and reaches at most ``0.46 * size`` from the centre.
    """
    kind = str(rng.choice(SHAPE_KINDS)) if kind is None else kind
    canvas = np.zeros((size, size), dtype=np.uint8)
    centre = size / 2.0
    extent = _SHAPE_EXTENT * size
    if kind == "ellipse":
        axes = (round(extent), max(1, round(extent * float(rng.uniform(0.45, 1.0)))))
        angle = float(rng.uniform(0.0, 180.0))
        cv2.ellipse(canvas, (round(centre), round(centre)), axes, angle, 0, 360, 1, -1)
        return canvas.astype(np.float32)
    if kind == "polygon":
        count = int(rng.integers(3, 9))
        step = 2 * math.pi / count
        angles = np.arange(count) * step + rng.uniform(-0.3, 0.3, count) * step
        angles += float(rng.uniform(0.0, 2 * math.pi))
        radii = extent * rng.uniform(0.55, 1.0, count)
    elif kind == "blob":
        angles = np.linspace(0.0, 2 * math.pi, 72, endpoint=False)
        radii = np.ones_like(angles)
        for harmonic in range(2, 6):
            weight = float(rng.uniform(0.0, 0.3 / harmonic))
            radii += weight * np.cos(harmonic * angles + float(rng.uniform(0, 6.3)))
        radii = extent * radii / radii.max()
    else:
        raise ValueError(f"unknown shape kind {kind!r}; expected one of {SHAPE_KINDS}")
    points = np.stack(
        [centre + radii * np.cos(angles), centre + radii * np.sin(angles)], 1
    )
    cv2.fillPoly(canvas, [np.round(points).astype(np.int32)], 1)
    return canvas.astype(np.float32)


# --------------------------------------------------------------------------- #
# Scene sampling and rendering
# --------------------------------------------------------------------------- #


def sample_background(
    rng: np.random.Generator,
    num_frames: int,
    height: int,
    width: int,
    camera_motion: float = 1.0,
) -> Background:
    """A muted, shaded background texture and a smooth camera pan over it."""
    pad = (math.ceil(0.2 * width), math.ceil(0.2 * height))
    big_h, big_w = height + 2 * pad[1], width + 2 * pad[0]
    unit = min(height, width) * float(rng.uniform(0.06, 0.15))
    texture = make_texture(rng, big_h, big_w, unit, saturated=False)
    shading = 0.7 + 0.6 * _smooth_noise(rng, big_h, big_w, min(big_h, big_w) / 2.0)
    texture = np.clip(texture * shading[..., None], 0.0, 255.0).astype(np.float32)
    cycles = rng.uniform(0.2, 0.6, size=2)
    return Background(
        texture=texture,
        pad=(float(pad[0]), float(pad[1])),
        amplitude=(0.9 * pad[0] * camera_motion, 0.9 * pad[1] * camera_motion),
        frequency=tuple(2 * math.pi * cycles / max(num_frames, 1)),
        phase=tuple(rng.uniform(0.0, 2 * math.pi, size=2)),
    )


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


def _warp_matrix(size: int, pose: Pose) -> np.ndarray:
    centre_x, centre_y, scale, angle = pose
    half = size / 2.0
    matrix = cv2.getRotationMatrix2D((half, half), angle, scale)
    matrix[0, 2] += centre_x - half
    matrix[1, 2] += centre_y - half
    return matrix


def _object_alpha(
    obj: SyntheticObject, t: int, height: int, width: int
) -> np.ndarray | None:
    """Soft coverage of ``obj`` in the frame at ``t`` (None before it appears)."""
    pose = obj.trajectory.pose(t)
    if pose is None:
        return None
    matrix = _warp_matrix(obj.alpha.shape[0], pose)
    return cv2.warpAffine(
        obj.alpha,
        matrix,
        (width, height),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )


def render_frame(
    background: Background,
    objects: Sequence[SyntheticObject],
    object_ids: Sequence[int],
    t: int,
    height: int,
    width: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Composite frame ``t`` without noise.

    Objects are drawn in list order, so a later object covers earlier ones in
    both the image and the mask. Returns the H x W x 3 float32 image and the
    H x W uint8 mask holding ``object_ids`` (0 is background).
    """
    image = background.view(t, height, width)
    mask = np.zeros((height, width), dtype=np.uint8)
    for obj, object_id in zip(objects, object_ids, strict=True):
        alpha = _object_alpha(obj, t, height, width)
        if alpha is None or not alpha.any():
            continue
        matrix = _warp_matrix(obj.alpha.shape[0], obj.trajectory.pose(t))
        texture = cv2.warpAffine(
            obj.texture,
            matrix,
            (width, height),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REFLECT,
        )
        # Soft edges in the image, hard labels in the mask.
        image = image * (1.0 - alpha[..., None]) + texture * alpha[..., None]
        mask[alpha > 0.5] = object_id
    return image, mask


def _visible_enough(
    objects: Sequence[SyntheticObject], height: int, width: int
) -> bool:
    """Whether every object is clearly visible on the frame where it appears."""
    min_area = max(4.0, 0.002 * height * width)
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


def _add_noise(
    rng: np.random.Generator, image: np.ndarray, noise_std: float
) -> np.ndarray:
    gain = 1.0 + float(rng.normal(0.0, 0.02))
    noise = rng.normal(0.0, noise_std, size=image.shape) if noise_std > 0 else 0.0
    return np.clip(np.rint(image * gain + noise), 0, 255).astype(np.uint8)


def _per_object(
    values: Sequence | None, default: object, count: int, name: str
) -> list:
    if values is None:
        return [default] * count
    values = list(values)
    if len(values) != count:
        raise ValueError(f"{name} has {len(values)} entries for {count} objects")
    return values


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if int(value) < 1:
            raise ValueError(f"{name} must be positive, got {value}")


def _check_frame_size(height: int, width: int) -> None:
    if min(height, width) < MIN_SIZE:
        raise ValueError(
            f"height and width must be at least {MIN_SIZE}, got {height}x{width}"
        )


def _video_arguments(
    num_frames: int,
    height: int,
    width: int,
    num_objects: int,
    appear_at: Sequence[int] | None,
    leave_return: Sequence[bool] | None,
    object_ids: Sequence[int] | None,
    styles: Sequence[ObjectStyle | None] | None,
) -> tuple[list[int], list[bool], list[int], list[ObjectStyle | None]]:
    """Check ``render_video``'s per-object arguments and fill in defaults."""
    _check_positive(num_frames=num_frames)
    _check_frame_size(height, width)
    if num_objects < 0:
        raise ValueError(f"num_objects must be >= 0, got {num_objects}")
    appear = [int(a) for a in _per_object(appear_at, 0, num_objects, "appear_at")]
    leave = _per_object(leave_return, False, num_objects, "leave_return")
    ids = _per_object(object_ids, None, num_objects, "object_ids")
    if object_ids is None:
        ids = list(range(1, num_objects + 1))
    style_list = _per_object(styles, None, num_objects, "styles")
    if any(not 0 <= a < num_frames for a in appear):
        raise ValueError(
            f"appear_at values must lie in [0, {num_frames}), got {appear}"
        )
    if len(set(ids)) != len(ids) or any(not 1 <= i <= MAX_OBJECT_ID for i in ids):
        raise ValueError(f"object_ids must be unique values in 1..255, got {ids}")
    return appear, leave, ids, style_list


# --------------------------------------------------------------------------- #
# Hard events: checks and sampling
# --------------------------------------------------------------------------- #


def _check_target(kind: str, target: int, count: int) -> None:
    if not 0 <= target < count:
        raise ValueError(f"{kind} target {target} is not an object index (0..{count - 1})")


def _check_window(kind: str, start: int, end: int, num_frames: int) -> None:
    if not 0 <= start < end <= num_frames:
        raise ValueError(
            f"{kind} frames [{start}, {end}) must be non-empty and lie in [0, {num_frames}]"
        )


def _check_target_window(
    kind: str, target: int, start: int, end: int, appear: Sequence[int], num_frames: int
) -> None:
    """Target-specific events happen while the target exists."""
    _check_target(kind, target, len(appear))
    if start < appear[target] or end > num_frames:
        raise ValueError(
            f"{kind} frames [{start}, {end}) must lie within object {target}'s "
            f"frames [{appear[target]}, {num_frames})"
        )


def _check_events(
    events: HardEvents, num_frames: int, appear: Sequence[int], leave: Sequence[bool]
) -> None:
    count = len(appear)
    for occlusion in events.occlusions:
        _check_positive(duration=occlusion.duration, approach=occlusion.approach)
        end = occlusion.start + occlusion.duration
        _check_target_window(
            "occlusion", occlusion.target, occlusion.start, end, appear, num_frames
        )
    leaving = {i for i in range(count) if leave[i]}
    for exit_ in events.exits:
        _check_positive(duration=exit_.duration, ramp=exit_.ramp)
        end = exit_.start + 2 * exit_.ramp + exit_.duration
        _check_target_window("exit", exit_.target, exit_.start, end, appear, num_frames)
        if exit_.target in leaving:
            raise ValueError(
                f"object {exit_.target} already leaves the frame (leave_return or another exit)"
            )
        leaving.add(exit_.target)
    for drift in events.drifts:
        _check_target("drift", drift.target, count)
        _check_window("drift", drift.start, drift.end, num_frames)
        if not 0.0 <= drift.texture_blend <= 1.0:
            raise ValueError(f"texture_blend must lie in [0, 1], got {drift.texture_blend}")
    for change in events.lighting:
        _check_window("lighting", change.start, change.end, num_frames)
        if change.brightness <= 0 or change.contrast <= 0 or not 0 <= change.flicker < 1:
            raise ValueError(
                "lighting needs brightness > 0, contrast > 0 and 0 <= flicker < 1, "
                f"got {change}"
            )
    for distractor in events.distractors:
        _check_target("distractor", distractor.target, count)
        if not 0 <= distractor.appear_at < num_frames or distractor.distance < 0:
            raise ValueError(
                f"distractor needs appear_at in [0, {num_frames}) and distance >= 0, got {distractor}"
            )


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


@dataclass(frozen=True, eq=False)
class Scene:
    """A sampled video: background, annotated objects and hard events.

    Frames are drawn in the order background, distractors (mask 0), objects
    (their ids, later ones on top), occluders (mask 0, on top of everything).
    """

    num_frames: int
    height: int
    width: int
    background: Background
    objects: tuple[SyntheticObject, ...]
    object_ids: tuple[int, ...]
    distractors: tuple[SyntheticObject, ...] = ()
    occluders: tuple[SyntheticObject, ...] = ()
    drifts: tuple[tuple[AppearanceDrift, np.ndarray | None], ...] = ()
    lighting: tuple[tuple[LightingChange, np.ndarray | None], ...] = ()


def sample_scene(
    rng: np.random.Generator,
    num_frames: int,
    height: int,
    width: int,
    num_objects: int,
    *,
    appear_at: Sequence[int] | None = None,
    leave_return: Sequence[bool] | None = None,
    object_ids: Sequence[int] | None = None,
    styles: Sequence[ObjectStyle | None] | None = None,
    camera_motion: float = 1.0,
    events: HardEvents | None = None,
    motion_frames: int | None = None,
) -> Scene:
    """Check the arguments and sample a scene (see ``render_video``).

    Without ``events`` and ``motion_frames`` this draws exactly what earlier
    versions drew, so existing videos stay the same.
    """
    appear, leave, ids, style_list = _video_arguments(
        num_frames, height, width, num_objects, appear_at, leave_return, object_ids, styles
    )
    events = events or HardEvents()
    _check_events(events, num_frames, appear, leave)
    if motion_frames is not None:
        _check_positive(motion_frames=motion_frames)
    motion = num_frames if motion_frames is None else motion_frames
    background = sample_background(rng, motion, height, width, camera_motion)
    style_list = _styles_for_distractors(rng, style_list, events.distractors)
    windows = _exit_windows(events.exits, num_objects)
    objects = _sample_objects(
        rng, num_frames, height, width, appear, leave, style_list, windows, motion_frames
    )
    drifts = tuple((d, _drift_texture(rng, objects[d.target], d)) for d in events.drifts)
    distractors = tuple(
        _distractor(rng, objects[d.target], style_list[d.target], d, num_frames, height, width, motion_frames)
        for d in events.distractors
    )
    occluders = tuple(
        _occluder(rng, objects[o.target], o, num_frames, height, width) for o in events.occlusions
    )
    lighting = tuple((change, _flicker(rng, change)) for change in events.lighting)
    return Scene(
        num_frames=num_frames,
        height=height,
        width=width,
        background=background,
        objects=tuple(objects),
        object_ids=tuple(ids),
        distractors=distractors,
        occluders=occluders,
        drifts=drifts,
        lighting=lighting,
    )


def _ramp(t: int, start: int, end: int) -> float:
    """0 up to ``start``, linear to 1 at ``end``, 1 after."""
    return min(max((t - start) / (end - start), 0.0), 1.0)


def _shift_hue(texture: np.ndarray, turns: float) -> np.ndarray:
    hsv = cv2.cvtColor(texture / np.float32(255.0), cv2.COLOR_RGB2HSV)
    hsv[..., 0] = (hsv[..., 0] + 360.0 * turns) % 360.0
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB) * np.float32(255.0)


def _drifted(
    obj: SyntheticObject, drift: AppearanceDrift, second: np.ndarray | None, t: int
) -> SyntheticObject:
    """``obj`` with its texture as it has drifted by frame ``t``."""
    weight = _ramp(t, drift.start, drift.end)
    if weight == 0.0:
        return obj
    texture = obj.texture
    if second is not None:
        blend = np.float32(drift.texture_blend * weight)
        texture = texture * (np.float32(1.0) - blend) + second * blend
    if drift.hue_shift:
        texture = _shift_hue(texture, drift.hue_shift * weight)
    return replace(obj, texture=np.clip(texture, 0.0, 255.0).astype(np.float32))


def lighting_at(
    lighting: Sequence[tuple[LightingChange, np.ndarray | None]], t: int
) -> tuple[float, float]:
    """The global ``(gain, contrast)`` at frame ``t`` (both 1 without changes)."""
    gain, contrast = 1.0, 1.0
    for change, flicker in lighting:
        weight = _ramp(t, change.start, change.end)
        gain *= 1.0 + (change.brightness - 1.0) * weight
        contrast *= 1.0 + (change.contrast - 1.0) * weight
        if flicker is not None and change.start <= t < change.end:
            gain *= 1.0 + change.flicker * float(flicker[t - change.start])
    return gain, contrast


def render_scene_frame(scene: Scene, t: int) -> tuple[np.ndarray, np.ndarray]:
    """Frame ``t`` of ``scene`` without noise (as ``render_frame`` returns it)."""
    objects = list(scene.objects)
    for drift, second in scene.drifts:
        objects[drift.target] = _drifted(objects[drift.target], drift, second, t)
    layers = [*scene.distractors, *objects, *scene.occluders]
    ids = [0] * len(scene.distractors) + list(scene.object_ids) + [0] * len(scene.occluders)
    image, mask = render_frame(scene.background, layers, ids, t, scene.height, scene.width)
    if scene.lighting:
        gain, contrast = lighting_at(scene.lighting, t)
        image = (image * np.float32(gain) - np.float32(127.5)) * np.float32(contrast)
        image += np.float32(127.5)
    return image, mask


def _noisy_frames(
    rng: np.random.Generator, scene: Scene, noise_std: float
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    for t in range(scene.num_frames):
        image, mask = render_scene_frame(scene, t)
        yield _add_noise(rng, image, noise_std), mask


def iter_video(
    rng: np.random.Generator,
    num_frames: int,
    height: int,
    width: int,
    num_objects: int,
    *,
    appear_at: Sequence[int] | None = None,
    leave_return: Sequence[bool] | None = None,
    object_ids: Sequence[int] | None = None,
    styles: Sequence[ObjectStyle | None] | None = None,
    noise_std: float = 3.0,
    camera_motion: float = 1.0,
    events: HardEvents | None = None,
    motion_frames: int | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``render_video``, one ``(frame, mask)`` at a time.

    The arguments are checked and the scene is sampled when this is called;
    each frame is rendered (and its noise drawn from ``rng``) only when the
    iterator reaches it, so memory does not grow with the video length. For
    the same ``rng`` state and arguments it yields ``render_video``'s frames,
    provided ``rng`` is not used elsewhere meanwhile.
    """
    scene = sample_scene(
        rng,
        num_frames,
        height,
        width,
        num_objects,
        appear_at=appear_at,
        leave_return=leave_return,
        object_ids=object_ids,
        styles=styles,
        camera_motion=camera_motion,
        events=events,
        motion_frames=motion_frames,
    )
    return _noisy_frames(rng, scene, noise_std)


def render_video(
    rng: np.random.Generator,
    num_frames: int,
    height: int,
    width: int,
    num_objects: int,
    *,
    appear_at: Sequence[int] | None = None,
    leave_return: Sequence[bool] | None = None,
    object_ids: Sequence[int] | None = None,
    styles: Sequence[ObjectStyle | None] | None = None,
    noise_std: float = 3.0,
    camera_motion: float = 1.0,
    events: HardEvents | None = None,
    motion_frames: int | None = None,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Render a synthetic video and its masks.

    Args:
        rng: source of all randomness (the video is a function of its state).
        num_frames, height, width: video size; height and width at least 16.
        num_objects: number of objects (0 gives a background-only video).
        appear_at: per object, the first frame where it exists; it is not
            visible before. Objects are drawn in list order (later on top).
        leave_return: per object, whether it leaves the frame mid-life and
            comes back.
        object_ids: per object, its mask value (1..255, unique); default
            1..num_objects.
        styles: per object, an optional fixed shape/texture/hue.
        noise_std: standard deviation of the per-frame Gaussian pixel noise.
        camera_motion: scale of the background pan (0: static camera).
        events: optional hard events (occlusions, exits, appearance drift,
            lighting changes, distractors); their targets index the objects.
        motion_frames: time scale of object and camera motion in frames
            (default ``num_frames``); e.g. 150 keeps a 700-frame video moving.

    Returns:
        ``(frames, masks)``: lists of H x W x 3 uint8 RGB images and H x W
        uint8 masks holding the object ids (0 is background, distractors and
        occluders). ``iter_video`` yields the same pairs lazily.
    """
    frames, masks = [], []
    for frame, mask in iter_video(
        rng,
        num_frames,
        height,
        width,
        num_objects,
        appear_at=appear_at,
        leave_return=leave_return,
        object_ids=object_ids,
        styles=styles,
        noise_std=noise_std,
        camera_motion=camera_motion,
        events=events,
        motion_frames=motion_frames,
    ):
        frames.append(frame)
        masks.append(mask)
    return frames, masks


# --------------------------------------------------------------------------- #
# File writing helpers
# --------------------------------------------------------------------------- #


def _video_rng(seed: int, tag: int, *index: int) -> np.random.Generator:
    return np.random.default_rng([seed, tag, *index])


def _jpeg_bytes(image: np.ndarray) -> bytes:
    ok, encoded = cv2.imencode(
        ".jpg",
        cv2.cvtColor(image, cv2.COLOR_RGB2BGR),
        [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY],
    )
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return encoded.tobytes()


def _write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _write_jpeg(path: Path, image: np.ndarray) -> None:
    _write_bytes(path, _jpeg_bytes(image))


def _write_palette_png(path: Path, mask: np.ndarray) -> None:
    """Save an id mask as a 'P' mode PNG with the DAVIS palette."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(np.ascontiguousarray(mask, dtype=np.uint8))
    image.putpalette(davis_palette())
    image.save(path)


def encode_jpeg(image: np.ndarray) -> bytes:
    """JPEG bytes of an RGB uint8 image, as every layout here writes them."""
    return _jpeg_bytes(image)


def write_palette_png(path: str | Path, mask: np.ndarray) -> None:
    """Save an id mask as a DAVIS-palette 'P' PNG, creating parent folders."""
    _write_palette_png(Path(path), mask)


def _write_binary_png(path: Path, mask: np.ndarray) -> None:
    """Save a mask as an 'L' mode PNG with values 0 (background) and 255."""
    path.parent.mkdir(parents=True, exist_ok=True)
    binary = np.where(mask > 0, 255, 0).astype(np.uint8)
    Image.fromarray(binary).save(path)


def _write_list(path: Path, names: Sequence[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{name}\n" for name in names))


def _frame_name(index: int) -> str:
    return f"{index:05d}"


def _check_seed(seed: int) -> None:
    if int(seed) < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")


def _check_common(seed: int, height: int, width: int, **positive: int) -> None:
    _check_seed(seed)
    _check_positive(**positive)
    _check_frame_size(height, width)


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
    return render_video(rng, num_frames, height, width, count, leave_return=leave)


def _write_davis_sequence(
    image_dir: Path,
    annotation_dir: Path,
    frames: Sequence[np.ndarray],
    masks: Sequence[np.ndarray],
    annotated: Sequence[int],
    binary: bool = False,
) -> None:
    for t, frame in enumerate(frames):
        _write_jpeg(image_dir / f"{_frame_name(t)}.jpg", frame)
    writer = _write_binary_png if binary else _write_palette_png
    for t in annotated:
        writer(annotation_dir / f"{_frame_name(t)}.png", masks[t])


# --------------------------------------------------------------------------- #
# Dataset layouts
# --------------------------------------------------------------------------- #


def write_davis2017(
    root: str | Path,
    seed: int = 0,
    num_videos: int = 4,
    num_frames: int = 12,
    height: int = 96,
    width: int = 160,
    max_objects: int = 3,
    splits: Sequence[str] = ("train", "val"),
    prefix: str = "synth",
    leave_share: float = 0.15,
) -> dict[str, list[str]]:
    """Write a DAVIS 2017 trainval tree under ``root/2017/trainval``.

    ``JPEGImages/480p/<seq>/00000.jpg``, palette PNGs in
    ``Annotations/480p/<seq>/00000.png`` on every frame, and
    ``ImageSets/2017/<split>.txt``. Video ``i`` is named ``<prefix>-<i:03d>``
    and goes to ``splits[i % len(splits)]``. Returns the names per split.
    """
    _check_common(
        seed,
        height,
        width,
        num_videos=num_videos,
        num_frames=num_frames,
        max_objects=max_objects,
    )
    if not splits:
        raise ValueError("splits must not be empty")
    base = Path(root) / "2017" / "trainval"
    names: dict[str, list[str]] = {split: [] for split in splits}
    for index in range(num_videos):
        name = f"{prefix}-{index:03d}"
        frames, masks = _davis_video(
            seed, _TAG_DAVIS2017, index, num_frames, height, width, max_objects, leave_share
        )
        _write_davis_sequence(
            base / "JPEGImages" / "480p" / name,
            base / "Annotations" / "480p" / name,
            frames,
            masks,
            range(num_frames),
        )
        names[splits[index % len(splits)]].append(name)
    for split, split_names in names.items():
        _write_list(base / "ImageSets" / "2017" / f"{split}.txt", split_names)
    return names


def write_davis2017_testdev(
    root: str | Path,
    seed: int = 0,
    num_videos: int = 2,
    num_frames: int = 12,
    height: int = 96,
    width: int = 160,
    max_objects: int = 3,
    prefix: str = "synth-td",
) -> list[str]:
    """Write a DAVIS 2017 test-dev tree under ``root/2017/test-dev``.

    Only the first frame is annotated; the list is
    ``ImageSets/2017/test-dev.txt``. Returns the sequence names.
    """
    _check_common(
        seed,
        height,
        width,
        num_videos=num_videos,
        num_frames=num_frames,
        max_objects=max_objects,
    )
    base = Path(root) / "2017" / "test-dev"
    names = []
    for index in range(num_videos):
        name = f"{prefix}-{index:03d}"
        frames, masks = _davis_video(
            seed, _TAG_TESTDEV, index, num_frames, height, width, max_objects
        )
        _write_davis_sequence(
            base / "JPEGImages" / "480p" / name,
            base / "Annotations" / "480p" / name,
            frames,
            masks,
            [0],
        )
        names.append(name)
    _write_list(base / "ImageSets" / "2017" / "test-dev.txt", names)
    return names


def write_davis2016(
    root: str | Path,
    seed: int = 0,
    num_videos: int = 2,
    num_frames: int = 12,
    height: int = 96,
    width: int = 160,
    splits: Sequence[str] = ("val",),
    prefix: str = "synth",
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
        frames, masks = render_video(rng, num_frames, height, width, 1)
        _write_davis_sequence(
            base / "JPEGImages" / "480p" / name,
            base / "Annotations" / "480p" / name,
            frames,
            masks,
            range(num_frames),
            binary=True,
        )
        names[splits[index % len(splits)]].append(name)
    list_dir = Path(root) / "2017" / "trainval" / "ImageSets" / "2016"
    for split, split_names in names.items():
        _write_list(list_dir / f"{split}.txt", split_names)
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
        num_sparse * YOUTUBE_STEP,
        height,
        width,
        count,
        appear_at=appear,
        leave_return=leave,
        object_ids=ids,
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
    _check_common(
        seed,
        height,
        width,
        num_videos=num_videos,
        num_frames=num_frames,
        max_objects=max_objects,
    )
    tag = _TAG_YOUTUBE.get(split, 1803 + sum(split.encode()))
    base = Path(root)
    all_frames_dir = base / "all_frames" / f"{split}_all_frames" / "JPEGImages"
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
            _write_bytes(all_frames_dir / name / f"{_frame_name(t)}.jpg", data)
            if t % YOUTUBE_STEP == 0:
                _write_bytes(
                    base / split / "JPEGImages" / name / f"{_frame_name(t)}.jpg", data
                )
        annotations, objects = _youtube_annotations(
            masks, ids, sparse, split == "train"
        )
        for t, mask in annotations.items():
            _write_palette_png(
                base / split / "Annotations" / name / f"{_frame_name(t)}.png", mask
            )
        meta["videos"][name] = {"objects": objects}
        names.append(name)
    (base / split).mkdir(parents=True, exist_ok=True)
    (base / split / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True))
    return names


def _static_image(
    rng: np.random.Generator, height: int, width: int, style: ObjectStyle | None = None
) -> tuple[np.ndarray, np.ndarray]:
    frames, masks = render_video(
        rng, 1, height, width, 1, styles=[style], camera_motion=0.0
    )
    return frames[0], masks[0]


def write_static(
    root: str | Path,
    seed: int = 0,
    num_images: int = 4,
    height: int = 96,
    width: int = 160,
    num_classes: int = 3,
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
