"""Sampling a scene from a ``VideoSpec`` and rendering it as a whole or frame by frame."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from datasets.synthetic.constants import MAX_OBJECT_ID, MIN_SIZE
from datasets.synthetic.events import _distractor, _drift_texture, _exit_windows, _flicker, _occluder, _styles_for_distractors
from datasets.synthetic.objects import _sample_objects
from datasets.synthetic.render import _noisy_frames
from datasets.synthetic.scene import HardEvents, ObjectStyle, Scene, VideoSpec
from datasets.synthetic.textures import sample_background


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


def sample_scene(rng: np.random.Generator, spec: VideoSpec) -> Scene:
    """Check ``spec`` and sample its scene (``spec.noise_std`` is not used here).

    Without ``events`` and ``motion_frames`` this draws exactly what earlier
    versions drew, so existing videos stay the same.
    """
    num_frames, height, width, num_objects = spec.num_frames, spec.height, spec.width, spec.num_objects
    appear, leave, ids, style_list = _video_arguments(
        num_frames, height, width, num_objects, spec.appear_at, spec.leave_return, spec.object_ids, spec.styles
    )
    events = spec.events or HardEvents()
    _check_events(events, num_frames, appear, leave)
    motion_frames = spec.motion_frames
    if motion_frames is not None:
        _check_positive(motion_frames=motion_frames)
    motion = num_frames if motion_frames is None else motion_frames
    background = sample_background(rng, motion, height, width, spec.camera_motion)
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


def iter_video(rng: np.random.Generator, spec: VideoSpec) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``render_video``, one ``(frame, mask)`` at a time.

    ``spec`` is checked and the scene is sampled when this is called;
    each frame is rendered (and its noise drawn from ``rng``) only when the
    iterator reaches it, so memory does not grow with the video length. For
    the same ``rng`` state and ``spec`` it yields ``render_video``'s frames,
    provided ``rng`` is not used elsewhere meanwhile.
    """
    scene = sample_scene(rng, spec)
    return _noisy_frames(rng, scene, spec.noise_std)


def render_video(rng: np.random.Generator, spec: VideoSpec) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Render a synthetic video and its masks (``spec``: see ``VideoSpec``).

    ``rng`` is the source of all randomness (the video is a function of its state).
    Returns ``(frames, masks)``: lists of H x W x 3 uint8 RGB images and H x W
    uint8 masks holding the object ids (0 is background, distractors and
    occluders). ``iter_video`` yields the same pairs lazily.
    """
    frames, masks = [], []
    for frame, mask in iter_video(rng, spec):
        frames.append(frame)
        masks.append(mask)
    return frames, masks
