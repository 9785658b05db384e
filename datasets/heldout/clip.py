"""One held-out clip: Fourier-contour and polygon sprites over a panning backdrop.

Written apart from ``datasets/synthetic`` (no shared code or parameters; the import
contract in pyproject.toml keeps it so). The look differs on purpose:

* sprites are contours (a Fourier series of the radius, or a star-convex polygon)
  rasterised per frame with sub-pixel ``fillPoly``, not warped canvases;
* their textures are evaluated analytically in the sprite's own coordinates (stripes,
  checks, concentric rings, bilinear value noise), lit from one side, with a dark
  rim inside the outline and a soft drop shadow on what lies below;
* the backdrop is fractal value noise, a tiled pattern or spectral 1/f noise, in
  its own palettes, panned at a constant velocity by sub-pixel crops
  (``getRectSubPix``);
* motion is a smooth random walk (Ornstein-Uhlenbeck velocity, bouncing off the
  frame's margins) of the centre, the angle and the log-radius;
* occlusion comes from sprites crossing and from a non-annotated foreground pole
  moving with parallax;
* the frame is softened (sigma 0.6), vignetted, its brightness breathes slowly,
  and it gets sensor noise.

Everything comes from ``clip_rng(seed, index)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

SMALL_AREA = (0.004, 0.03)  # share of the frame, small sprites
LARGE_AREA = (0.03, 0.12)  # share of the frame, larger ones
SMALL_SHARE = 0.6  # probability that a sprite is small
MAX_SPRITES = 3
PATTERNS = ("stripes", "checks", "rings", "value")
BACKDROPS = ("fractal", "tiles", "spectral")
_SUBPIXEL_BITS = 4


def clip_rng(seed: int, index: int) -> np.random.Generator:
    """The generator of clip ``index`` (a SeedSequence spawn key, not a key list)."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(entropy=int(seed), spawn_key=(int(index), 17))))


@dataclass(frozen=True)
class Pattern:
    """An analytic texture in sprite coordinates (unit: the sprite's radius)."""

    kind: str
    colour_a: np.ndarray  # RGB float32 0..255
    colour_b: np.ndarray
    frequency: float
    direction: float  # radians
    grid: np.ndarray  # value-noise lattice (used by "value")
    light: tuple[float, float]  # direction and strength of the side light

    def colours(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """RGB float32 colours at sprite coordinates ``u, v`` (arrays of one shape)."""
        c, s = math.cos(self.direction), math.sin(self.direction)
        a = u * c + v * s
        b = -u * s + v * c
        if self.kind == "stripes":
            weight = np.clip(0.5 + 1.5 * np.sin(2 * math.pi * self.frequency * a), 0.0, 1.0)
        elif self.kind == "checks":
            weight = (np.floor(self.frequency * a) + np.floor(self.frequency * b)) % 2
        elif self.kind == "rings":
            weight = 0.5 + 0.5 * np.cos(2 * math.pi * self.frequency * np.hypot(u, v))
        else:
            weight = _bilinear(self.grid, (u + 1.5) / 3.0, (v + 1.5) / 3.0)
        heading, strength = self.light
        shade = 1.0 + strength * (u * math.cos(heading) + v * math.sin(heading))
        rgb = self.colour_a + (self.colour_b - self.colour_a) * weight[..., None].astype(np.float32)
        return rgb * shade[..., None].astype(np.float32)


def _bilinear(grid: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Bilinear lookup of ``grid`` at fractional positions ``x, y`` in [0, 1] (clamped)."""
    n = grid.shape[0] - 1
    gx, gy = np.clip(x, 0.0, 1.0) * n, np.clip(y, 0.0, 1.0) * n
    x0, y0 = np.minimum(gx.astype(int), n - 1), np.minimum(gy.astype(int), n - 1)
    fx, fy = gx - x0, gy - y0
    top = grid[y0, x0] * (1 - fx) + grid[y0, x0 + 1] * fx
    bottom = grid[y0 + 1, x0] * (1 - fx) + grid[y0 + 1, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


@dataclass(frozen=True)
class Sprite:
    """A contour (unit radius) with a pattern and, per frame, x, y, radius (px), angle (rad)."""

    label: int  # mask id; 0 for a non-annotated occluder
    outline: np.ndarray  # K x 2, max radius 1
    pattern: Pattern
    track: np.ndarray  # T x 4
    rim: bool
    kind: str

    def polygon(self, t: int) -> np.ndarray:
        x, y, radius, angle = self.track[t]
        c, s = math.cos(angle), math.sin(angle)
        rotation = np.array([[c, -s], [s, c]])
        return self.outline @ rotation.T * radius + np.array([x, y])


@dataclass(frozen=True)
class Clip:
    """Everything needed to draw a held-out clip's frames."""

    height: int
    width: int
    backdrop: np.ndarray  # (H + 2 pad) x (W + 2 pad) x 3 float32
    pad: int
    pan: np.ndarray  # T x 2 crop centres in backdrop pixels
    sprites: tuple[Sprite, ...]  # drawing order; annotated ones and the pole
    shadow: tuple[float, float, float]  # dx, dy, darkness
    breathing: tuple[float, float, float]  # amplitude, period (frames), phase
    noise: float
    vignette: np.ndarray  # H x W x 1 float32
    backdrop_kind: str


# --------------------------------------------------------------------------- #
# Sampling
# --------------------------------------------------------------------------- #


def _palette_colour(rng: np.random.Generator, vivid: bool) -> np.ndarray:
    """A colour from HLS (not HSV): vivid for sprites, earthy for the backdrop."""
    hue = float(rng.random())
    lightness = float(rng.uniform(0.35, 0.7)) if vivid else float(rng.uniform(0.25, 0.6))
    saturation = float(rng.uniform(0.55, 0.95)) if vivid else float(rng.uniform(0.1, 0.4))
    hls = np.array([[[hue * 180.0, lightness * 255.0, saturation * 255.0]]], dtype=np.uint8)
    return cv2.cvtColor(hls, cv2.COLOR_HLS2RGB)[0, 0].astype(np.float32)


def _fourier_outline(rng: np.random.Generator) -> np.ndarray:
    theta = np.linspace(0.0, 2 * math.pi, 120, endpoint=False)
    radius = np.ones_like(theta)
    for k in range(2, 8):
        radius += float(rng.uniform(0.0, 0.45 / k)) * np.cos(k * theta + float(rng.uniform(0, 2 * math.pi)))
    radius = np.maximum(radius, 0.2)
    radius /= radius.max()
    return np.stack([radius * np.cos(theta), radius * np.sin(theta)], 1)


def _polygon_outline(rng: np.random.Generator) -> np.ndarray:
    corners = int(rng.integers(3, 8))
    theta = np.sort(rng.uniform(0.0, 2 * math.pi, corners))
    while np.diff(np.r_[theta, theta[0] + 2 * math.pi]).max() > 0.9 * math.pi:  # star-convex, not a sliver
        theta = np.sort(rng.uniform(0.0, 2 * math.pi, corners))
    radius = rng.uniform(0.55, 1.0, corners)
    radius /= radius.max()
    return np.stack([radius * np.cos(theta), radius * np.sin(theta)], 1)


def _unit_area(outline: np.ndarray) -> float:
    x, y = outline[:, 0], outline[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))))


def _pattern(rng: np.random.Generator) -> Pattern:
    kind = str(rng.choice(PATTERNS))
    first = _palette_colour(rng, True)
    second = _palette_colour(rng, bool(rng.random() < 0.5))
    return Pattern(
        kind=kind,
        colour_a=first,
        colour_b=second,
        frequency=float(rng.uniform(1.0, 4.0)),
        direction=float(rng.uniform(0.0, math.pi)),
        grid=rng.random((6, 6)).astype(np.float32),
        light=(float(rng.uniform(0.0, 2 * math.pi)), float(rng.uniform(0.05, 0.3))),
    )


def _random_walk(rng: np.random.Generator, frames: int, start: float, low: float, high: float,
                 sigma: float, damping: float = 0.92) -> np.ndarray:
    """A smooth 1-D walk: velocity v <- damping * v + N(0, sigma); bounces in [low, high]."""
    values = np.empty(frames)
    value, velocity = start, float(rng.normal(0.0, 3 * sigma))
    for t in range(frames):
        values[t] = value
        velocity = damping * velocity + float(rng.normal(0.0, sigma))
        value += velocity
        if value < low or value > high:
            velocity = -velocity
            value = min(max(value, low), high)
    return values


def _sprite(rng: np.random.Generator, label: int, frames: int, height: int, width: int) -> Sprite:
    small = rng.random() < SMALL_SHARE
    low, high = SMALL_AREA if small else LARGE_AREA
    area = math.exp(rng.uniform(math.log(low), math.log(high))) * height * width
    kind = "fourier" if rng.random() < 0.55 else "polygon"
    outline = _fourier_outline(rng) if kind == "fourier" else _polygon_outline(rng)
    base = math.sqrt(area / _unit_area(outline))
    margin = 0.08
    scale = min(height, width)
    x = _random_walk(rng, frames, float(rng.uniform(0.2, 0.8)) * width, margin * width, (1 - margin) * width, 0.012 * scale)
    y = _random_walk(rng, frames, float(rng.uniform(0.2, 0.8)) * height, margin * height, (1 - margin) * height, 0.012 * scale)
    log_radius = _random_walk(rng, frames, 0.0, -0.25, 0.25, 0.004)
    angle = _random_walk(rng, frames, float(rng.uniform(0.0, 2 * math.pi)), -1e9, 1e9, 0.006)
    track = np.stack([x, y, base * np.exp(log_radius), angle], 1)
    return Sprite(label, outline, _pattern(rng), track, bool(rng.random() < 0.7), kind)


def _pole(rng: np.random.Generator, frames: int, height: int, width: int, pan: np.ndarray) -> Sprite:
    """A long bar across the frame, moving with 1.6x the backdrop's pan (parallax)."""
    thickness = float(rng.uniform(0.03, 0.08)) * width
    length = 1.5 * math.hypot(height, width)
    outline = np.array([[-1.0, -thickness / length], [1.0, -thickness / length], [1.0, thickness / length],
                        [-1.0, thickness / length]])
    tilt = math.pi / 2 + float(rng.uniform(-0.4, 0.4))
    drift = -(pan - pan[0]) * 1.6
    x0 = float(rng.uniform(0.15, 0.85)) * width
    sweep = float(rng.choice([-1.0, 1.0])) * float(rng.uniform(0.0, 0.6)) * width / max(frames - 1, 1)
    t = np.arange(frames)
    track = np.stack([x0 + sweep * t + drift[:, 0], height / 2.0 + drift[:, 1], np.full(frames, length / 2.0),
                      np.full(frames, tilt)], 1)
    pattern = _pattern(rng)
    return Sprite(0, outline, pattern, track, True, "pole")


def _fractal(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    total = np.zeros((height, width), np.float32)
    for octave in range(5):
        cells = 3 * 2 ** octave
        grid = rng.random((cells + 1, cells + 1)).astype(np.float32)
        total += cv2.resize(grid, (width, height), interpolation=cv2.INTER_LINEAR) / 2 ** octave
    total -= total.min()
    return total / max(float(total.max()), 1e-6)


def _spectral(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    spectrum = np.fft.fft2(rng.normal(size=(height, width)))
    ky, kx = np.meshgrid(np.fft.fftfreq(height), np.fft.fftfreq(width), indexing="ij")
    falloff = np.maximum(np.hypot(kx, ky), 1.0 / max(height, width)) ** -float(rng.uniform(0.9, 1.3))
    field = np.real(np.fft.ifft2(spectrum * falloff)).astype(np.float32)
    field -= field.min()
    return field / max(float(field.max()), 1e-6)


def _tiles(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    period = float(rng.uniform(0.04, 0.15)) * min(height, width)
    turn = float(rng.uniform(0.0, math.pi))
    a = (xx * math.cos(turn) + yy * math.sin(turn)) / period
    b = (-xx * math.sin(turn) + yy * math.cos(turn)) / period
    if rng.random() < 0.5:
        field = ((np.floor(a) + np.floor(b)) % 2) * 0.6 + 0.2
    else:
        field = 0.5 + 0.4 * np.sin(2 * math.pi * a) * np.sin(2 * math.pi * b)
    return field + 0.15 * _fractal(rng, height, width)


def _backdrop(rng: np.random.Generator, kind: str, height: int, width: int) -> np.ndarray:
    field = {"fractal": _fractal, "tiles": _tiles, "spectral": _spectral}[kind](rng, height, width)
    low, high = _palette_colour(rng, False), _palette_colour(rng, False)
    tint = _palette_colour(rng, bool(rng.random() < 0.3))
    detail = _fractal(rng, height, width)[..., None]
    rgb = low + (high - low) * field[..., None] + (tint - 127.0) * 0.2 * detail
    return np.clip(rgb, 0.0, 255.0).astype(np.float32)


def sample_clip(rng: np.random.Generator, frames: int, height: int, width: int) -> Clip:
    """Draw a clip: 1-3 sprites (labels 1..n) visible on frame 0, a backdrop and its pan."""
    if frames < 1 or min(height, width) < 32:
        raise ValueError(f"a held-out clip needs at least 1 frame and 32x32 pixels, got {frames} at {height}x{width}")
    kind = str(rng.choice(BACKDROPS))
    speed = float(rng.uniform(0.2, 1.6)) * min(height, width) / 240.0
    heading = float(rng.uniform(0.0, 2 * math.pi))
    pad = math.ceil(speed * frames) + 4
    backdrop = _backdrop(rng, kind, height + 2 * pad, width + 2 * pad)
    steps = np.arange(frames)[:, None] * speed * np.array([math.cos(heading), math.sin(heading)])
    pan = np.array([pad + width / 2.0, pad + height / 2.0]) + steps
    count = int(rng.integers(1, MAX_SPRITES + 1))
    sprites: list[Sprite] = []
    for _ in range(50):
        sprites = [_sprite(rng, label, frames, height, width) for label in range(1, count + 1)]
        rng.shuffle(sprites)  # drawing order independent of the labels
        if _first_frame_visible(sprites, height, width):
            break
    order: list[Sprite] = list(sprites)
    if rng.random() < 0.5:
        order.insert(len(order), _pole(rng, frames, height, width, pan))
    shadow = (float(rng.uniform(-0.02, 0.02)) * width, float(rng.uniform(0.005, 0.025)) * width, float(rng.uniform(0.2, 0.45)))
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    distance = np.hypot((xx - width / 2) / (width / 2), (yy - height / 2) / (height / 2))
    vignette = (1.0 - float(rng.uniform(0.05, 0.25)) * distance**2)[..., None].astype(np.float32)
    breathing = (float(rng.uniform(0.0, 0.1)), float(rng.uniform(20.0, 60.0)), float(rng.uniform(0.0, 2 * math.pi)))
    return Clip(height, width, backdrop, pad, pan, tuple(order), shadow, breathing, float(rng.uniform(1.5, 4.5)),
                vignette, kind)


def _sprite_mask(sprite: Sprite, t: int, height: int, width: int) -> np.ndarray:
    mask = np.zeros((height, width), np.uint8)
    points = np.round(sprite.polygon(t) * (1 << _SUBPIXEL_BITS)).astype(np.int32)
    cv2.fillPoly(mask, [points], 1, lineType=cv2.LINE_8, shift=_SUBPIXEL_BITS)
    return mask.astype(bool)


def _first_frame_visible(sprites: list[Sprite], height: int, width: int) -> bool:
    """Each sprite shows half its in-frame area (at least 12 pixels) on frame 0."""
    masks = [_sprite_mask(s, 0, height, width) for s in sprites]
    for index, own in enumerate(masks):
        covered = np.zeros_like(own)
        for above in masks[index + 1 :]:
            covered |= above
        if (own & ~covered).sum() < max(12, 0.5 * own.sum()):
            return False
    return True


# --------------------------------------------------------------------------- #
# Drawing
# --------------------------------------------------------------------------- #


def draw_frame(clip: Clip, t: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Frame ``t`` (H x W x 3 uint8 RGB) and its id mask (H x W uint8); ``rng`` draws the noise."""
    height, width = clip.height, clip.width
    image = cv2.getRectSubPix(clip.backdrop, (width, height), (float(clip.pan[t, 0]), float(clip.pan[t, 1])))
    labels = np.zeros((height, width), np.uint8)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    dx, dy, darkness = clip.shadow
    for sprite in clip.sprites:
        inside = _sprite_mask(sprite, t, height, width)
        if not inside.any():
            continue
        shade = cv2.GaussianBlur(inside.astype(np.float32), (0, 0), 2.5)
        shade = cv2.warpAffine(shade, np.float32([[1, 0, dx], [0, 1, dy]]), (width, height))
        image *= (1.0 - darkness * shade)[..., None]
        x, y, radius, angle = sprite.track[t]
        c, s = math.cos(angle), math.sin(angle)
        rows, cols = np.nonzero(inside)
        rel_x, rel_y = xx[rows, cols] - x, yy[rows, cols] - y
        u, v = (rel_x * c + rel_y * s) / radius, (-rel_x * s + rel_y * c) / radius
        colours = sprite.pattern.colours(u, v)
        if sprite.rim:
            edge = inside & ~cv2.erode(inside.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
            colours[edge[rows, cols]] *= 0.45
        image[rows, cols] = colours
        labels[inside] = sprite.label
    image = cv2.GaussianBlur(image, (0, 0), 0.6)
    amplitude, period, phase = clip.breathing
    image *= clip.vignette * (1.0 + amplitude * math.sin(2 * math.pi * t / period + phase))
    image += rng.normal(0.0, clip.noise, size=image.shape).astype(np.float32)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8), labels
