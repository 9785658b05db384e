"""What a video is made of: object styles, hard events, trajectories, objects, background, scene."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from datasets.synthetic.constants import Pose


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
class _TargetWindow:
    """An event on object ``target`` from frame ``start`` for ``duration`` frames."""

    target: int
    start: int
    duration: int


@dataclass(frozen=True)
class Occlusion(_TargetWindow):
    """A non-annotated occluder slides in, hides object ``target`` completely on
    frames ``[start, start + duration)`` (following it), then slides out.

    The occluder comes from outside the frame over ``approach`` frames, is drawn
    on top of everything and clears the masks under it (mask value 0).
    """

    approach: int = 8


@dataclass(frozen=True)
class Exit(_TargetWindow):
    """Object ``target`` leaves through its nearest frame edge and comes back.

    It starts leaving at ``start``, is fully out of view at least on frames
    ``[start + ramp, start + ramp + duration)`` and is back on its normal path
    from ``start + 2 * ramp + duration``.
    """

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
        return cv2.warpAffine(self.texture, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


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


@dataclass(frozen=True)
class VideoSpec:
    """What a synthetic video is made of (``sample_scene``, ``iter_video``, ``render_video``).

    Attributes:
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
    """

    num_frames: int
    height: int
    width: int
    num_objects: int
    appear_at: Sequence[int] | None = None
    leave_return: Sequence[bool] | None = None
    object_ids: Sequence[int] | None = None
    styles: Sequence[ObjectStyle | None] | None = None
    noise_std: float = 3.0
    camera_motion: float = 1.0
    events: HardEvents | None = None
    motion_frames: int | None = None
