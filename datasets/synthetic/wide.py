"""The wide training preset: videos that vary in everything but the task.

SynthVOS's look is narrow on purpose (a fixed benchmark): saturated objects of 2-14 %
of the frame over a muted, panning texture. A model trained only on that learns the
look. ``WideLook`` lists much wider ranges, and ``sample_wide_scene`` draws a scene
from them:

* object area at first appearance log-uniform in 0.2-40 % of the frame (``area``);
* shapes: the package's ellipses, polygons and blobs, plus stars, rings (with a hole),
  thin bars and composites of several ellipses;
* object textures: flat, the package's noise / stripes / checker / gradient, and
  natural-image-like 1/f noise; vivid or muted (``muted_objects``), with shading;
* backgrounds: flat, textured (vivid or muted), 1/f noise, and 1/f noise cluttered
  with object-like shapes (mask 0);
* motion: a drift over up to ``travel`` frame diagonals plus a damped random walk,
  wobble, growth / shrinking, rotation; objects bounce off a box slightly larger
  than the frame, so they also leave it partly;
* camera: pan and zoom, applied to the background *and* the objects (the objects
  move in world coordinates), or a static camera;
* occlusion: objects crossing each other, non-annotated passers in front, and the
  package's hard events (``Occlusion``, ``Exit``, ``AppearanceDrift``,
  ``LightingChange``; ``Distractor`` becomes a look-alike copy of the target);
* sensor: Gaussian noise 0-6 and, sometimes, a slight defocus blur.

The defaults (``WIDE``) are the preset that ``scripts/make_synthvos.py --style wide``
writes; docs/SYNTHVOS.md describes it. Everything is drawn from the generator passed
in, so a video is a function of its generator's state.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from datasets.synthetic.constants import _SAMPLE_TRIES, _SHAPE_EXTENT, TEXTURE_KINDS, Pose
from datasets.synthetic.events import _alpha_radius, _drift_texture, _flicker, _occluder
from datasets.synthetic.objects import _visible_enough
from datasets.synthetic.render import _add_noise, _shift_hue, render_scene_frame
from datasets.synthetic.scene import HardEvents, PathTrajectory, Scene, SyntheticObject, VideoSpec, _plateau
from datasets.synthetic.textures import _hsv_colour, _smooth_noise, make_shape, make_texture
from datasets.synthetic.video import _check_events, _check_positive, _video_arguments

WIDE_SHAPES = ("ellipse", "polygon", "blob", "star", "ring", "thin", "composite")
WIDE_TEXTURES = ("flat", *TEXTURE_KINDS, "pink")
BACKGROUND_KINDS = ("flat", "textured", "pink", "clutter")


@dataclass(frozen=True)
class WideLook:
    """The ranges a wide scene is drawn from (``WIDE``: the training preset).

    Attributes:
        area: object area on its first frame, as a fraction of the frame
            (log-uniform between the two values).
        shapes, textures, backgrounds: the kinds drawn from (uniformly).
        muted_objects: probability that an object has muted colours (like a
            background) rather than vivid ones.
        travel: largest drift of an object over ``motion_frames``, in frame diagonals.
        wobble: largest wobble amplitude, in frame sizes.
        scale_change: largest log-scale change of an object (growth, shrinking, pulsing).
        spin: largest rotation over ``motion_frames``, in degrees.
        camera_pan: largest pan amplitude, in frame sizes (plus a drift of half that).
        camera_zoom: largest log-zoom amplitude.
        static_camera: probability of a camera that does not move.
        passers: most non-annotated objects crossing in front (0..passers).
        noise_std: range of the per-frame Gaussian pixel noise.
        blur: probability of a slight defocus blur (sigma 0.5-1.3 px).
        small_on_top: probability that objects are drawn from the largest to the
            smallest (else in their given order).
    """

    area: tuple[float, float] = (0.002, 0.40)
    shapes: tuple[str, ...] = WIDE_SHAPES
    textures: tuple[str, ...] = WIDE_TEXTURES
    backgrounds: tuple[str, ...] = BACKGROUND_KINDS
    muted_objects: float = 0.3
    travel: float = 1.0
    wobble: float = 0.15
    scale_change: float = 0.4
    spin: float = 270.0
    camera_pan: float = 0.2
    camera_zoom: float = 0.25
    static_camera: float = 0.2
    passers: int = 2
    noise_std: tuple[float, float] = (0.0, 6.0)
    blur: float = 0.25
    small_on_top: float = 0.7


WIDE = WideLook()


@dataclass(frozen=True)
class Camera:
    """Per frame, the view's offset from the world centre (pixels) and its zoom.

    A world point ``p`` is seen at ``centre + (p - centre - offset) * zoom``.
    """

    centre: tuple[float, float]
    offsets: tuple[tuple[float, float], ...]
    zooms: tuple[float, ...]

    def to_screen(self, t: int, x: float, y: float, scale: float) -> tuple[float, float, float]:
        (ox, oy), zoom = self.offsets[t], self.zooms[t]
        cx, cy = self.centre
        return cx + (x - cx - ox) * zoom, cy + (y - cy - oy) * zoom, scale * zoom

    def to_world(self, t: int, x: float, y: float) -> tuple[float, float]:
        (ox, oy), zoom = self.offsets[t], self.zooms[t]
        cx, cy = self.centre
        return cx + ox + (x - cx) / zoom, cy + oy + (y - cy) / zoom


@dataclass(frozen=True, eq=False)
class CameraBackground:
    """A world texture seen through a panning and zooming ``Camera``.

    It has ``Background``'s ``view``, so ``render_frame`` draws it unchanged. The
    texture's pixel ``pad + p`` is the world point ``p``.
    """

    texture: np.ndarray  # (H + 2 pad_y) x (W + 2 pad_x) x 3 float32
    pad: tuple[float, float]
    camera: Camera

    def view(self, t: int, height: int, width: int) -> np.ndarray:
        """The H x W x 3 float32 window the camera sees at frame ``t``."""
        (ox, oy), zoom = self.camera.offsets[t], self.camera.zooms[t]
        cx, cy = self.camera.centre
        matrix = np.float32(
            [
                [1.0 / zoom, 0.0, self.pad[0] + cx + ox - cx / zoom],
                [0.0, 1.0 / zoom, self.pad[1] + cy + oy - cy / zoom],
            ]
        )
        flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
        return cv2.warpAffine(self.texture, matrix, (width, height), flags=flags, borderMode=cv2.BORDER_REFLECT)


@dataclass(frozen=True, eq=False)
class WideScene:
    """A sampled wide scene, its sensor settings and what was drawn (``facts``)."""

    scene: Scene
    noise_std: float
    blur_sigma: float
    facts: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- #
# Colours, textures, shapes
# --------------------------------------------------------------------------- #


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(math.exp(rng.uniform(math.log(low), math.log(high))))


def _pink_field(rng: np.random.Generator, height: int, width: int, exponent: float) -> np.ndarray:
    """Zero-mean, unit-variance noise with a 1/f^exponent amplitude spectrum."""
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.rfftfreq(width)[None, :]
    radius = np.sqrt(fx * fx + fy * fy)
    radius[0, 0] = 1.0
    amplitude = radius ** (-exponent)
    amplitude[0, 0] = 0.0
    spectrum = amplitude * np.exp(2j * math.pi * rng.random(amplitude.shape))
    field_ = np.fft.irfft2(spectrum, s=(height, width))
    field_ -= field_.mean()
    return (field_ / max(float(field_.std()), 1e-9)).astype(np.float32)


def pink_texture(rng: np.random.Generator, height: int, width: int, saturated: bool) -> np.ndarray:
    """Natural-image-like colour noise (1/f amplitude spectrum, correlated channels)."""
    exponent = float(rng.uniform(1.4, 2.4))
    fields = np.stack([_pink_field(rng, height, width, exponent) for _ in range(3)], -1)
    base = _hsv_colour(float(rng.uniform()), float(rng.uniform(0.3, 0.9) if saturated else rng.uniform(0.0, 0.35)),
                       float(rng.uniform(0.3, 0.8)))
    luminance = np.ones(3, np.float32) / math.sqrt(3.0)
    mixing = np.stack([luminance, *rng.normal(0.0, 0.35 if saturated else 0.15, size=(2, 3))], 0).astype(np.float32)
    contrast = float(rng.uniform(20.0, 55.0))
    return np.clip(base + contrast * fields @ mixing, 0.0, 255.0).astype(np.float32)


def _shading(rng: np.random.Generator, height: int, width: int, strength: float) -> np.ndarray:
    """A multiplicative light falloff: a linear ramp plus soft blotches, mean about 1."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = float(rng.uniform(0.0, 2 * math.pi))
    ramp = (xx / max(width, 1) - 0.5) * math.cos(angle) + (yy / max(height, 1) - 0.5) * math.sin(angle)
    blotches = _smooth_noise(rng, height, width, max(height, width) / 2.0) - 0.5
    return (1.0 + strength * (ramp + 0.5 * blotches))[..., None].astype(np.float32)


def _flat_texture(rng: np.random.Generator, height: int, width: int, saturated: bool) -> np.ndarray:
    low, high = (0.5, 1.0) if saturated else (0.0, 0.3)
    colour = _hsv_colour(float(rng.uniform()), float(rng.uniform(low, high)), float(rng.uniform(0.2, 0.95)))
    grain = rng.normal(0.0, 2.0, size=(height, width, 1)).astype(np.float32)
    return np.clip(colour + grain, 0.0, 255.0).astype(np.float32)


def wide_texture(rng: np.random.Generator, kind: str, height: int, width: int, unit: float, saturated: bool) -> np.ndarray:
    """An H x W x 3 float32 texture of one of ``WIDE_TEXTURES``, shaded."""
    if kind == "flat":
        texture = _flat_texture(rng, height, width, saturated)
    elif kind == "pink":
        texture = pink_texture(rng, height, width, saturated)
    elif kind in TEXTURE_KINDS:
        texture = make_texture(rng, height, width, unit, kind, saturated)
    else:
        raise ValueError(f"unknown texture kind {kind!r}; expected one of {WIDE_TEXTURES}")
    shading = _shading(rng, height, width, float(rng.uniform(0.0, 0.5)))
    return np.clip(texture * shading, 0.0, 255.0).astype(np.float32)


def _fill(canvas: np.ndarray, points: np.ndarray) -> None:
    cv2.fillPoly(canvas, [np.round(points).astype(np.int32)], 1)


def wide_shape(rng: np.random.Generator, size: int, kind: str) -> np.ndarray:
    """Binary ``size`` x ``size`` float32 mask of one of ``WIDE_SHAPES``, centred,
    reaching at most ``0.46 * size`` from the centre."""
    if kind in ("ellipse", "polygon", "blob"):
        return make_shape(rng, size, kind)
    canvas = np.zeros((size, size), dtype=np.uint8)
    centre, extent = size / 2.0, _SHAPE_EXTENT * size
    if kind == "star":
        count = int(rng.integers(4, 11))
        angles = np.arange(2 * count) * math.pi / count + float(rng.uniform(0.0, 2 * math.pi))
        radii = np.where(np.arange(2 * count) % 2 == 0, 1.0, float(rng.uniform(0.3, 0.7))) * extent
        _fill(canvas, np.stack([centre + radii * np.cos(angles), centre + radii * np.sin(angles)], 1))
    elif kind == "ring":
        c = (round(centre), round(centre))
        outer = (round(extent), max(2, round(extent * float(rng.uniform(0.6, 1.0)))))
        angle = float(rng.uniform(0.0, 180.0))
        cv2.ellipse(canvas, c, outer, angle, 0, 360, 1, -1)
        ratio = float(rng.uniform(0.3, 0.6))
        inner = (max(1, round(outer[0] * ratio)), max(1, round(outer[1] * ratio)))
        cv2.ellipse(canvas, c, inner, angle, 0, 360, 0, -1)
    elif kind == "thin":
        ratio = float(rng.uniform(0.08, 0.3))
        angle = float(rng.uniform(0.0, math.pi))
        along = np.array([math.cos(angle), math.sin(angle)]) * extent
        across = np.array([-math.sin(angle), math.cos(angle)]) * extent * ratio
        corners = np.stack([along + across, along - across, -along - across, -along + across]) + centre
        _fill(canvas, corners)
    elif kind == "composite":
        for _ in range(int(rng.integers(2, 5))):
            radius = extent * float(rng.uniform(0.3, 0.55))
            offset = (extent - radius) * float(rng.uniform(0.0, 1.0))
            heading = float(rng.uniform(0.0, 2 * math.pi))
            c = (round(centre + offset * math.cos(heading)), round(centre + offset * math.sin(heading)))
            axes = (max(1, round(radius)), max(1, round(radius * float(rng.uniform(0.35, 1.0)))))
            cv2.ellipse(canvas, c, axes, float(rng.uniform(0.0, 180.0)), 0, 360, 1, -1)
    else:
        raise ValueError(f"unknown shape kind {kind!r}; expected one of {WIDE_SHAPES}")
    return canvas.astype(np.float32)


# --------------------------------------------------------------------------- #
# Background and camera
# --------------------------------------------------------------------------- #


def _sample_camera(rng: np.random.Generator, look: WideLook, num_frames: int, motion: int, height: int, width: int) -> tuple[Camera, dict]:
    t = np.arange(num_frames, dtype=np.float64)
    centre = (width / 2.0, height / 2.0)
    if rng.random() < look.static_camera:
        return Camera(centre, ((0.0, 0.0),) * num_frames, (1.0,) * num_frames), {"pan": 0.0, "zoom": 0.0}
    pan = float(rng.uniform(0.0, look.camera_pan))
    offsets = []
    for size in (width, height):
        amplitude = pan * size * float(rng.uniform(0.3, 1.0))
        omega = 2 * math.pi * float(rng.uniform(0.2, 1.0)) / motion
        phase = float(rng.uniform(0.0, 2 * math.pi))
        drift = 0.5 * pan * size * float(rng.uniform(-1.0, 1.0)) / motion
        offsets.append(amplitude * (np.sin(omega * t + phase) - math.sin(phase)) + drift * t)
    zoom_amplitude = float(rng.uniform(0.0, look.camera_zoom)) if rng.random() < 0.6 else 0.0
    omega = 2 * math.pi * float(rng.uniform(0.2, 0.8)) / motion
    phase = float(rng.uniform(0.0, 2 * math.pi))
    zooms = np.exp(zoom_amplitude * (np.sin(omega * t + phase) - math.sin(phase)))
    camera = Camera(centre, tuple(zip(offsets[0].tolist(), offsets[1].tolist())), tuple(zooms.tolist()))
    return camera, {"pan": round(pan, 3), "zoom": round(zoom_amplitude, 3)}


def _paste(canvas: np.ndarray, texture: np.ndarray, alpha: np.ndarray, x: int, y: int) -> None:
    """Alpha-blend ``texture`` (S x S) into ``canvas`` with its top-left corner at (x, y), clipped."""
    size = alpha.shape[0]
    x0, y0 = max(x, 0), max(y, 0)
    x1, y1 = min(x + size, canvas.shape[1]), min(y + size, canvas.shape[0])
    if x0 >= x1 or y0 >= y1:
        return
    a = alpha[y0 - y : y1 - y, x0 - x : x1 - x, None]
    canvas[y0:y1, x0:x1] = canvas[y0:y1, x0:x1] * (1.0 - a) + texture[y0 - y : y1 - y, x0 - x : x1 - x] * a


def _background_texture(rng: np.random.Generator, kind: str, height: int, width: int, frame_size: int) -> np.ndarray:
    unit = frame_size * float(rng.uniform(0.03, 0.2))
    if kind == "flat":
        texture = _flat_texture(rng, height, width, rng.random() < 0.3)
        return np.clip(texture * _shading(rng, height, width, float(rng.uniform(0.1, 0.5))), 0.0, 255.0)
    if kind == "textured":
        return wide_texture(rng, str(rng.choice(TEXTURE_KINDS)), height, width, unit, bool(rng.random() < 0.3))
    if kind not in ("pink", "clutter"):
        raise ValueError(f"unknown background kind {kind!r}; expected one of {BACKGROUND_KINDS}")
    texture = pink_texture(rng, height, width, bool(rng.random() < 0.4))
    if kind == "clutter":
        area = height * width
        for _ in range(int(rng.integers(5, 26))):
            target = _log_uniform(rng, 0.0005, 0.04) * area
            size = max(8, math.ceil(2.2 * math.sqrt(target)))
            alpha = wide_shape(rng, size, str(rng.choice(WIDE_SHAPES)))
            if rng.random() < 0.5:
                alpha = cv2.GaussianBlur(alpha, (0, 0), float(rng.uniform(0.5, 2.0)))
            fill = wide_texture(rng, str(rng.choice(WIDE_TEXTURES)), size, size, size * 0.2, bool(rng.random() < 0.5))
            x, y = int(rng.integers(-size // 2, width - size // 2)), int(rng.integers(-size // 2, height - size // 2))
            _paste(texture, fill, alpha, x, y)
    return texture


def _sample_background(rng: np.random.Generator, kind: str, camera: Camera, height: int, width: int) -> CameraBackground:
    """A world texture large enough for every view of the camera."""
    inverse = 1.0 / min(camera.zooms)
    pads = []
    for axis, size in enumerate((width, height)):
        reach = max(abs(o[axis]) for o in camera.offsets) + size / 2.0 * (inverse - 1.0)
        pads.append(math.ceil(reach) + 2)
    texture = _background_texture(rng, kind, height + 2 * pads[1], width + 2 * pads[0], min(height, width))
    return CameraBackground(texture.astype(np.float32), (float(pads[0]), float(pads[1])), camera)


# --------------------------------------------------------------------------- #
# Objects and their motion
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class _Body:
    """An object before it is placed: canvas alpha and texture, scale for its area."""

    alpha: np.ndarray
    texture: np.ndarray
    scale: float
    shape: str
    texture_kind: str
    area: float


def _sample_body(rng: np.random.Generator, look: WideLook, height: int, width: int, area: float | None = None,
                 shapes: Sequence[str] | None = None) -> _Body:
    area = _log_uniform(rng, *look.area) if area is None else area
    pixels = area * height * width
    shape = str(rng.choice(shapes or look.shapes))
    size = int(np.clip(math.ceil(2.4 * math.sqrt(pixels)), 24, 480))
    alpha = wide_shape(rng, size, shape)
    scale = math.sqrt(pixels / max(float(alpha.sum()), 1.0))
    kind = str(rng.choice(look.textures))
    unit = min(height, width) * float(rng.uniform(0.015, 0.1)) / scale
    texture = wide_texture(rng, kind, size, size, unit, bool(rng.random() >= look.muted_objects))
    return _Body(alpha, texture, scale, shape, kind, area)


@dataclass(frozen=True)
class _Motion:
    """World-space motion of one object from ``appear_at`` (see ``_world_path``)."""

    start: tuple[float, float]
    velocity: tuple[float, float]
    jitter: float
    wobble: tuple[float, float]
    omega: tuple[float, float]
    phase: tuple[float, float]
    scale_amplitude: float
    scale_omega: float
    scale_phase: float
    growth: float
    angle: float
    spin: float


def _sample_motion(rng: np.random.Generator, look: WideLook, start: tuple[float, float], motion: int,
                   height: int, width: int) -> _Motion:
    diagonal = math.hypot(height, width)
    speed = look.travel * diagonal * float(rng.uniform()) ** 1.5 / motion
    heading = float(rng.uniform(0.0, 2 * math.pi))
    wobble = float(rng.uniform(0.0, look.wobble))
    omega = tuple(2 * math.pi * rng.uniform(0.25, 1.5, size=2) / motion)
    return _Motion(
        start=start,
        velocity=(speed * math.cos(heading), speed * math.sin(heading)),
        jitter=float(rng.uniform(0.0, 0.3)) * diagonal / motion,
        wobble=(wobble * width * float(rng.uniform(0.3, 1.0)), wobble * height * float(rng.uniform(0.3, 1.0))),
        omega=(float(omega[0]), float(omega[1])),
        phase=(float(rng.uniform(0.0, 2 * math.pi)), float(rng.uniform(0.0, 2 * math.pi))),
        scale_amplitude=float(rng.uniform(0.0, look.scale_change)),
        scale_omega=2 * math.pi * float(rng.uniform(0.2, 1.0)) / motion,
        scale_phase=float(rng.uniform(0.0, 2 * math.pi)),
        growth=float(rng.uniform(-1.0, 1.0)) * look.scale_change / motion,
        angle=float(rng.uniform(0.0, 360.0)),
        spin=float(rng.uniform(-1.0, 1.0)) * look.spin / motion,
    )


def _reflect(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """Fold ``values`` into [low, high] as a ball bouncing off both walls."""
    span = max(high - low, 1e-6)
    folded = np.mod(values - low, 2 * span)
    return low + np.where(folded > span, 2 * span - folded, folded)


def _world_path(rng: np.random.Generator, m: _Motion, frames: int, height: int, width: int) -> np.ndarray:
    """``frames`` x 4 world poses (x, y, scale factor, angle) from the object's first frame.

    Drift plus a damped random walk of the velocity, wobble, log-scale pulsing and
    growth (clipped to +-0.8), constant spin; the centre bounces in a box 10 % larger
    than the frame.
    """
    tau = np.arange(frames, dtype=np.float64)
    kicks = rng.normal(0.0, m.jitter, size=(frames, 2))
    velocity = np.zeros((frames, 2))
    for k in range(1, frames):
        velocity[k] = 0.9 * velocity[k - 1] + kicks[k]
    xy = np.cumsum(velocity + np.array(m.velocity), axis=0) - np.array(m.velocity)
    for axis in range(2):
        xy[:, axis] += m.start[axis] + m.wobble[axis] * (np.sin(m.omega[axis] * tau + m.phase[axis]) - math.sin(m.phase[axis]))
    xy[:, 0] = _reflect(xy[:, 0], -0.05 * width, 1.05 * width)
    xy[:, 1] = _reflect(xy[:, 1], -0.05 * height, 1.05 * height)
    log_scale = m.scale_amplitude * (np.sin(m.scale_omega * tau + m.scale_phase) - math.sin(m.scale_phase)) + m.growth * tau
    return np.stack([xy[:, 0], xy[:, 1], np.exp(np.clip(log_scale, -0.8, 0.8)), m.angle + m.spin * tau], 1)


def _screen_poses(camera: Camera, world: np.ndarray, base_scale: float, appear_at: int) -> list[Pose]:
    poses = []
    for k, (x, y, factor, angle) in enumerate(world):
        sx, sy, scale = camera.to_screen(appear_at + k, float(x), float(y), base_scale * float(factor))
        poses.append((sx, sy, scale, float(angle)))
    return poses


def _with_exit(poses: list[Pose], alpha: np.ndarray, window: tuple[int, int, int], appear_at: int,
               height: int, width: int) -> list[Pose]:
    """Carry the object out through the frame edge nearest to it at the exit's start,
    keep it fully out for the window's hold and bring it back (``_plateau``)."""
    start, frames_out, ramp = window
    x, y = poses[start - appear_at][:2]
    distances = (x, width - x, y, height - y)
    edge = int(np.argmin(distances))
    axis, sign = (0 if edge < 2 else 1), (-1.0 if edge % 2 == 0 else 1.0)
    reach = _alpha_radius(alpha)
    moved = []
    for k, pose in enumerate(poses):
        weight = _plateau(appear_at + k - start, frames_out, ramp)
        if weight == 0.0:
            moved.append(pose)
            continue
        position = pose[axis]
        limit = 0.0 if sign < 0 else (width if axis == 0 else height)
        needed = abs(limit - position) + pose[2] * reach + 2.0
        shifted = list(pose)
        shifted[axis] = position + sign * weight * needed
        moved.append((shifted[0], shifted[1], shifted[2], shifted[3]))
    return moved


def _start_point(rng: np.random.Generator, body: _Body, height: int, width: int) -> tuple[float, float]:
    """A screen point where the object (at its first-frame size) fits, or the frame centre."""
    radius = body.scale * _alpha_radius(body.alpha)
    point = []
    for size in (width, height):
        low, high = min(radius, size / 2.0), max(size - radius, size / 2.0)
        point.append(float(rng.uniform(low, high)))
    return point[0], point[1]


def _visible(objects: Sequence[SyntheticObject], height: int, width: int) -> bool:
    """Every object shows at least 40 % of its in-frame area (and 2 pixels) where it appears."""
    return _visible_enough(objects, height, width, min_area=2)


def _place(rng: np.random.Generator, look: WideLook, body: _Body, camera: Camera, appear_at: int, num_frames: int,
           motion: int, height: int, width: int, start: tuple[float, float] | None = None) -> list[Pose]:
    start = _start_point(rng, body, height, width) if start is None else start
    zoom = camera.zooms[appear_at]
    world_start = camera.to_world(appear_at, *start)
    m = _sample_motion(rng, look, world_start, motion, height, width)
    world = _world_path(rng, m, num_frames - appear_at, height, width)
    return _screen_poses(camera, world, body.scale / zoom, appear_at)


def _sample_objects(rng: np.random.Generator, look: WideLook, camera: Camera, bodies: Sequence[_Body],
                    appear: Sequence[int], windows: Sequence[tuple[int, int, int] | None], num_frames: int,
                    motion: int, height: int, width: int) -> list[SyntheticObject]:
    """Placements (in drawing order), resampled (deterministically) until every object starts visible."""
    objects: list[SyntheticObject] = []
    for _ in range(_SAMPLE_TRIES):
        objects = []
        for body, appear_at, window in zip(bodies, appear, windows, strict=True):
            poses = _place(rng, look, body, camera, appear_at, num_frames, motion, height, width)
            if window is not None:
                poses = _with_exit(poses, body.alpha, window, appear_at, height, width)
            objects.append(SyntheticObject(body.texture, body.alpha, PathTrajectory(appear_at, tuple(poses))))
        if _visible(objects, height, width):
            break
    return objects


def _look_alike(rng: np.random.Generator, look: WideLook, target: SyntheticObject, body: _Body, distance: float,
                appear_at: int, camera: Camera, num_frames: int, motion: int, height: int, width: int) -> SyntheticObject:
    """A copy of the target (hue shifted by at most 0.04 turns, size x0.8-1.2) on its own path,
    starting ``distance`` target radii away."""
    texture = np.clip(_shift_hue(body.texture, float(rng.uniform(-0.04, 0.04))), 0.0, 255.0).astype(np.float32)
    pose = target.trajectory.pose(max(appear_at, target.trajectory.appear_at))
    radius = pose[2] * _alpha_radius(body.alpha)
    heading = float(rng.uniform(0.0, 2 * math.pi))
    start = (
        float(np.clip(pose[0] + distance * radius * math.cos(heading), 0.05 * width, 0.95 * width)),
        float(np.clip(pose[1] + distance * radius * math.sin(heading), 0.05 * height, 0.95 * height)),
    )
    copy = _Body(body.alpha, texture, pose[2] * float(rng.uniform(0.8, 1.2)), body.shape, body.texture_kind, body.area)
    poses = _place(rng, look, copy, camera, appear_at, num_frames, motion, height, width, start)
    return SyntheticObject(texture, body.alpha, PathTrajectory(appear_at, tuple(poses)))


def _passer(rng: np.random.Generator, look: WideLook, num_frames: int, height: int, width: int) -> SyntheticObject:
    """A non-annotated object crossing the frame in a straight line in front of everything."""
    body = _sample_body(rng, look, height, width, area=_log_uniform(rng, 0.01, 0.15))
    duration = max(2, round(num_frames * float(rng.uniform(0.15, 0.5))))
    appear_at = int(rng.integers(0, max(1, num_frames - duration)))
    radius = body.scale * _alpha_radius(body.alpha)
    heading = float(rng.uniform(0.0, 2 * math.pi))
    direction = np.array([math.cos(heading), math.sin(heading)])
    through = np.array([rng.uniform(0.2, 0.8) * width, rng.uniform(0.2, 0.8) * height])
    half = 0.5 * math.hypot(width, height) + radius
    angle, spin = float(rng.uniform(0.0, 360.0)), float(rng.uniform(-3.0, 3.0))
    poses = []
    for k in range(min(duration, num_frames - appear_at)):
        s = -1.0 + 2.0 * k / max(duration - 1, 1)
        x, y = through + direction * half * s
        poses.append((float(x), float(y), body.scale, angle + spin * k))
    return SyntheticObject(body.texture, body.alpha, PathTrajectory(appear_at, tuple(poses)))


# --------------------------------------------------------------------------- #
# Scene
# --------------------------------------------------------------------------- #


def sample_wide_scene(rng: np.random.Generator, spec: VideoSpec, look: WideLook = WIDE) -> WideScene:
    """Check ``spec`` and sample a scene in the wide style.

    Uses ``spec``'s size, objects (``appear_at``, ``object_ids``), ``events`` and
    ``motion_frames``; its ``styles``, ``noise_std`` and ``camera_motion`` are replaced
    by draws from ``look``, and ``leave_return`` is not supported (use an ``Exit``).
    A ``Distractor`` is a look-alike copy of its target on a path of its own.
    """
    num_frames, height, width = spec.num_frames, spec.height, spec.width
    if spec.leave_return is not None and any(spec.leave_return):
        raise ValueError("the wide style has no leave_return; use an Exit event")
    appear, leave, ids, _ = _video_arguments(
        num_frames, height, width, spec.num_objects, spec.appear_at, None, spec.object_ids, None
    )
    events = spec.events or HardEvents()
    _check_events(events, num_frames, appear, leave)
    if spec.motion_frames is not None:
        _check_positive(motion_frames=spec.motion_frames)
    motion = num_frames if spec.motion_frames is None else spec.motion_frames
    camera, camera_facts = _sample_camera(rng, look, num_frames, motion, height, width)
    background_kind = str(rng.choice(look.backgrounds))
    background = _sample_background(rng, background_kind, camera, height, width)
    windows: list[tuple[int, int, int] | None] = [None] * len(appear)
    for exit_ in events.exits:
        windows[exit_.target] = (exit_.start, exit_.duration, exit_.ramp)
    bodies = [_sample_body(rng, look, height, width) for _ in appear]
    # Drawing order (later on top): mostly the larger objects first, so that small
    # ones are not always buried; sometimes the given order.
    order = list(range(len(bodies)))
    if rng.random() < look.small_on_top:
        order.sort(key=lambda i: -bodies[i].area)
    placed = _sample_objects(
        rng, look, camera, [bodies[i] for i in order], [appear[i] for i in order], [windows[i] for i in order],
        num_frames, motion, height, width,
    )
    objects = [placed[order.index(i)] for i in range(len(order))]  # back in the spec's order
    drifts = tuple(
        (replace(d, target=order.index(d.target)), _drift_texture(rng, objects[d.target], d)) for d in events.drifts
    )
    distractors = tuple(
        _look_alike(rng, look, objects[d.target], bodies[d.target], d.distance, max(d.appear_at, appear[d.target]),
                    camera, num_frames, motion, height, width)
        for d in events.distractors
    )
    occluders = [_occluder(rng, objects[o.target], o, num_frames, height, width) for o in events.occlusions]
    passers = int(rng.integers(0, look.passers + 1))
    occluders += [_passer(rng, look, num_frames, height, width) for _ in range(passers)]
    lighting = tuple((change, _flicker(rng, change)) for change in events.lighting)
    noise_std = float(rng.uniform(*look.noise_std))
    blur_sigma = float(rng.uniform(0.5, 1.3)) if rng.random() < look.blur else 0.0
    scene = Scene(
        num_frames=num_frames, height=height, width=width, background=background,  # type: ignore[arg-type]
        objects=tuple(placed), object_ids=tuple(ids[i] for i in order), distractors=distractors, occluders=tuple(occluders),
        drifts=drifts, lighting=lighting,
    )
    facts = {
        "background": background_kind,
        "camera": camera_facts,
        "objects": [
            {"id": ids[i], "shape": bodies[i].shape, "texture": bodies[i].texture_kind, "area": round(bodies[i].area, 5)}
            for i in range(len(bodies))
        ],
        "drawing_order": [ids[i] for i in order],
        "passers": passers,
        "noise_std": round(noise_std, 3),
        "blur_sigma": round(blur_sigma, 3),
    }
    return WideScene(scene, noise_std, blur_sigma, facts)


def wide_frames(rng: np.random.Generator, wide: WideScene) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The scene's ``(frame, mask)`` pairs, one at a time (blur, then noise from ``rng``)."""
    for t in range(wide.scene.num_frames):
        image, mask = render_scene_frame(wide.scene, t)
        if wide.blur_sigma > 0:
            image = cv2.GaussianBlur(image, (0, 0), wide.blur_sigma)
        yield _add_noise(rng, image, wide.noise_std), mask


def iter_wide_video(rng: np.random.Generator, spec: VideoSpec, look: WideLook = WIDE) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``iter_video`` in the wide style: the scene is sampled now, frames when reached."""
    return wide_frames(rng, sample_wide_scene(rng, spec, look))


def render_wide_video(rng: np.random.Generator, spec: VideoSpec, look: WideLook = WIDE) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """``render_video`` in the wide style: lists of RGB uint8 frames and uint8 id masks."""
    frames, masks = [], []
    for frame, mask in iter_wide_video(rng, spec, look):
        frames.append(frame)
        masks.append(mask)
    return frames, masks
