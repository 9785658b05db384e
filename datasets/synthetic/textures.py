"""Procedural textures, shapes and backgrounds."""

from __future__ import annotations

import colorsys
import math

import cv2
import numpy as np

from datasets.synthetic.constants import _SHAPE_EXTENT, SHAPE_KINDS, TEXTURE_KINDS
from datasets.synthetic.scene import Background

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
