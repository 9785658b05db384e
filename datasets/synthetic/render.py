"""Rendering: objects composited over the background, lighting, drift and noise."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace

import cv2
import numpy as np

from datasets.synthetic.constants import Pose
from datasets.synthetic.scene import AppearanceDrift, Background, LightingChange, Scene, SyntheticObject


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
    return cv2.warpAffine(obj.alpha, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


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


def _add_noise(
    rng: np.random.Generator, image: np.ndarray, noise_std: float
) -> np.ndarray:
    gain = 1.0 + float(rng.normal(0.0, 0.02))
    noise = rng.normal(0.0, noise_std, size=image.shape) if noise_std > 0 else 0.0
    return np.clip(np.rint(image * gain + noise), 0, 255).astype(np.uint8)


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
