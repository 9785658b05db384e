"""Tests for the deterministic synthetic dataset generator."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from datasets import synthetic
from datasets.synthetic import AppearanceDrift, Distractor, Exit, HardEvents, LightingChange, ObjectStyle, Occlusion
from tests.helpers import assert_one_line_error, file_names, read_mask, run, tree
from util.palette import davis_palette

H, W = 32, 48


# --- palette


def test_davis_palette_is_the_voc_colour_map():
    palette = davis_palette()
    assert len(palette) == 768
    assert list(palette[:15]) == [0, 0, 0, 128, 0, 0, 0, 128, 0, 128, 128, 0, 0, 0, 128]
    assert list(palette[3 * 255 :]) == [224, 224, 192]


# --- renderer


def test_render_video_shapes_and_ids():
    rng = np.random.default_rng(3)
    frames, masks = synthetic.render_video(rng, synthetic.VideoSpec(5, H, W, 2, object_ids=[2, 7]))
    assert len(frames) == len(masks) == 5
    assert frames[0].shape == (H, W, 3) and frames[0].dtype == np.uint8
    assert masks[0].shape == (H, W) and masks[0].dtype == np.uint8
    assert set(np.unique(np.stack(masks))) <= {0, 2, 7}
    assert {2, 7} <= set(np.unique(masks[0]))


def test_objects_move():
    frames, masks = synthetic.render_video(np.random.default_rng(1), synthetic.VideoSpec(12, H, W, 2))
    assert not np.array_equal(masks[0], masks[-1])
    assert not np.array_equal(frames[0], frames[-1])


def test_objects_differ_from_background():
    frames, masks = synthetic.render_video(np.random.default_rng(5), synthetic.VideoSpec(1, 64, 96, 1))
    frame, mask = frames[0].astype(float), masks[0]
    inside, outside = frame[mask == 1].mean(0), frame[mask == 0].mean(0)
    assert np.abs(inside - outside).max() > 10


def test_later_object_occludes_earlier_one():
    rng = np.random.default_rng(0)
    below = synthetic.sample_object(rng, 4, H, W)
    above = synthetic.sample_object(rng, 4, H, W)
    above = replace(
        above, trajectory=replace(above.trajectory, center=below.trajectory.center)
    )
    background = synthetic.sample_background(rng, 4, H, W)
    _, alone = synthetic.render_frame(background, [below], [1], 0, H, W)
    image, both = synthetic.render_frame(background, [below, above], [1, 2], 0, H, W)
    alone_image, _ = synthetic.render_frame(background, [below], [1], 0, H, W)
    covered = (alone == 1) & (both == 2)
    assert covered.any()
    assert (both == 1).sum() < (alone == 1).sum()
    assert not np.allclose(image[covered], alone_image[covered])
    # Reversing the z-order shows the first object in full again.
    _, reversed_ = synthetic.render_frame(background, [above, below], [2, 1], 0, H, W)
    assert np.array_equal(reversed_ == 1, alone == 1)


def test_appear_at_and_leave_return():
    rng = np.random.default_rng(2)
    _, masks = synthetic.render_video(
        rng, synthetic.VideoSpec(12, H, W, 2, appear_at=[0, 4], leave_return=[True, False])
    )
    areas = np.array([[(m == i).sum() for i in (1, 2)] for m in masks])
    assert areas[:4, 1].sum() == 0 and areas[4, 1] > 0
    assert areas[0, 0] > 0 and areas[-1, 0] > 0
    assert (areas[1:-1, 0] == 0).any()


def test_render_video_rejects_bad_arguments():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError):
        synthetic.render_video(rng, synthetic.VideoSpec(0, H, W, 1))
    with pytest.raises(ValueError):
        synthetic.render_video(rng, synthetic.VideoSpec(3, 8, W, 1))
    with pytest.raises(ValueError):
        synthetic.render_video(rng, synthetic.VideoSpec(3, H, W, 1, appear_at=[3]))
    with pytest.raises(ValueError):
        synthetic.render_video(rng, synthetic.VideoSpec(3, H, W, 2, object_ids=[4, 4]))


# --- DAVIS


def test_davis2017_is_deterministic(tmp_path):
    args = {"num_videos": 2, "num_frames": 4, "height": H, "width": W, "max_objects": 2}
    synthetic.write_davis2017(tmp_path / "a", seed=0, **args)
    synthetic.write_davis2017(tmp_path / "b", seed=0, **args)
    synthetic.write_davis2017(tmp_path / "c", seed=1, **args)
    a, b, c = tree(tmp_path / "a"), tree(tmp_path / "b"), tree(tmp_path / "c")
    assert a == b
    assert a.keys() == c.keys()
    jpgs = [k for k in a if k.endswith(".jpg")]
    assert all(a[k] != c[k] for k in jpgs)


def test_video_content_does_not_depend_on_video_count(tmp_path):
    args = {"seed": 4, "num_frames": 3, "height": H, "width": W}
    synthetic.write_davis2017(tmp_path / "two", num_videos=2, **args)
    synthetic.write_davis2017(tmp_path / "three", num_videos=3, **args)
    seq = Path("2017/trainval/JPEGImages/480p/synth-001")
    assert tree(tmp_path / "two" / seq) == tree(tmp_path / "three" / seq)


def test_davis2017_layout(tmp_path):
    names = synthetic.write_davis2017(
        tmp_path, seed=0, num_videos=3, num_frames=4, height=H, width=W, max_objects=3
    )
    assert names == {"train": ["synth-000", "synth-002"], "val": ["synth-001"]}
    base = tmp_path / "2017" / "trainval"
    sets = base / "ImageSets" / "2017"
    assert (sets / "train.txt").read_text() == "synth-000\nsynth-002\n"
    assert (sets / "val.txt").read_text() == "synth-001\n"
    for seq in ("synth-000", "synth-001", "synth-002"):
        jpgs = file_names(base / "JPEGImages" / "480p" / seq)
        pngs = file_names(base / "Annotations" / "480p" / seq)
        assert jpgs == [f"{i:05d}.jpg" for i in range(4)]
        assert [p.replace(".png", ".jpg") for p in pngs] == jpgs
        image = Image.open(base / "JPEGImages" / "480p" / seq / "00000.jpg")
        assert image.format == "JPEG" and image.size == (W, H) and image.mode == "RGB"
        for png in pngs:
            mask = Image.open(base / "Annotations" / "480p" / seq / png)
            assert mask.mode == "P" and mask.size == (W, H)
            assert bytes(mask.getpalette()) == davis_palette()
            assert set(np.unique(np.array(mask))) <= {0, 1, 2, 3}
        first = read_mask(base / "Annotations" / "480p" / seq / "00000.png")
        assert first.max() >= 1


def test_davis2017_testdev_layout(tmp_path):
    names = synthetic.write_davis2017_testdev(
        tmp_path, seed=0, num_videos=2, num_frames=4, height=H, width=W
    )
    base = tmp_path / "2017" / "test-dev"
    assert (base / "ImageSets" / "2017" / "test-dev.txt").read_text().split() == names
    for seq in names:
        assert len(file_names(base / "JPEGImages" / "480p" / seq)) == 4
        assert file_names(base / "Annotations" / "480p" / seq) == ["00000.png"]
        assert Image.open(base / "Annotations" / "480p" / seq / "00000.png").mode == "P"


def test_davis2016_layout(tmp_path):
    names = synthetic.write_davis2016(
        tmp_path, seed=0, num_videos=2, num_frames=4, height=H, width=W
    )
    assert names == {"val": ["synth-000", "synth-001"]}
    listing = tmp_path / "2017" / "trainval" / "ImageSets" / "2016" / "val.txt"
    assert listing.read_text() == "synth-000\nsynth-001\n"
    for seq in names["val"]:
        annotations = tmp_path / "2016" / "Annotations" / "480p" / seq
        assert len(file_names(tmp_path / "2016" / "JPEGImages" / "480p" / seq)) == 4
        assert len(file_names(annotations)) == 4
        mask = Image.open(annotations / "00000.png")
        assert mask.mode == "L"
        assert set(np.unique(np.array(mask))) == {0, 255}


# --- YouTube-VOS


@pytest.fixture(scope="module")
def youtube_valid(tmp_path_factory):
    root = tmp_path_factory.mktemp("yt")
    names = synthetic.write_youtube(
        root, seed=0, split="valid", num_videos=4, num_frames=4, height=H, width=W
    )
    return root, names


def test_youtube_frames(youtube_valid):
    root, names = youtube_valid
    for vid in names:
        sparse = file_names(root / "valid" / "JPEGImages" / vid)
        dense = file_names(root / "all_frames" / "valid_all_frames" / "JPEGImages" / vid)
        assert sparse == ["00000.jpg", "00005.jpg", "00010.jpg", "00015.jpg"]
        assert dense == [f"{i:05d}.jpg" for i in range(20)]
        assert len(dense) == 5 * len(sparse)
        for name in sparse:
            assert (root / "valid" / "JPEGImages" / vid / name).read_bytes() == (
                root / "all_frames" / "valid_all_frames" / "JPEGImages" / vid / name
            ).read_bytes()


def test_youtube_annotations_only_on_first_appearance(youtube_valid):
    root, names = youtube_valid
    meta = json.loads((root / "valid" / "meta.json").read_text())
    assert sorted(meta["videos"]) == names
    late_entry = False
    for vid in names:
        objects = meta["videos"][vid]["objects"]
        first = {}
        for object_id, info in objects.items():
            first.setdefault(info["frames"][0], set()).add(int(object_id))
        annotations = root / "valid" / "Annotations" / vid
        assert file_names(annotations) == sorted(f"{f}.png" for f in first)
        for frame, new_ids in first.items():
            mask = Image.open(annotations / f"{frame}.png")
            assert mask.mode == "P" and bytes(mask.getpalette()) == davis_palette()
            assert set(np.unique(np.array(mask))) - {0} == new_ids
            late_entry |= frame != "00000"
    assert late_entry


def test_youtube_has_non_consecutive_ids(youtube_valid):
    root, names = youtube_valid
    meta = json.loads((root / "valid" / "meta.json").read_text())
    id_sets = [sorted(map(int, meta["videos"][v]["objects"])) for v in names]
    assert any(ids != list(range(1, len(ids) + 1)) for ids in id_sets)


def test_youtube_train_annotates_every_sparse_frame(tmp_path):
    names = synthetic.write_youtube(
        tmp_path, seed=0, split="train", num_videos=2, num_frames=3, height=H, width=W
    )
    meta = json.loads((tmp_path / "train" / "meta.json").read_text())
    for vid in names:
        jpgs = file_names(tmp_path / "train" / "JPEGImages" / vid)
        pngs = file_names(tmp_path / "train" / "Annotations" / vid)
        assert jpgs == ["00000.jpg", "00005.jpg", "00010.jpg"]
        assert [p.replace(".png", ".jpg") for p in pngs] == jpgs
        for object_id, info in meta["videos"][vid]["objects"].items():
            for frame in info["frames"]:
                assert int(object_id) in read_mask(
                    tmp_path / "train" / "Annotations" / vid / f"{frame}.png"
                )


# --- static


def test_static_layout(tmp_path):
    counts = synthetic.write_static(
        tmp_path, seed=0, num_images=2, height=H, width=W, num_classes=2
    )
    assert counts["fss"] == 4
    classes = file_names(tmp_path / "fss")
    assert len(classes) == 2
    assert file_names(tmp_path / "fss" / classes[0]) == ["1.jpg", "1.png", "2.jpg", "2.png"]
    for name in synthetic.STATIC_SETS:
        files = file_names(tmp_path / name)
        jpgs = [f for f in files if f.endswith(".jpg")]
        assert len(jpgs) == 2
        assert sorted(f.replace(".jpg", ".png") for f in jpgs) == [
            f for f in files if f.endswith(".png")
        ]
        mask = Image.open(tmp_path / name / jpgs[0].replace(".jpg", ".png"))
        assert mask.mode == "L" and set(np.unique(np.array(mask))) == {0, 255}
        scale = 2 if name in synthetic.HIGH_RES_SETS else 1
        assert mask.size == (W * scale, H * scale)


# --- CLI


def test_cli_writes_layout(tmp_path):
    """scripts/make_synthetic.py's smoke run: a real process."""
    out = tmp_path / "out"
    result = run(
        "scripts/make_synthetic.py",
        "--out",
        str(out),
        "--seed",
        "0",
        "--layout",
        "davis2016",
        "--videos",
        "1",
        "--frames",
        "2",
        "--height",
        str(H),
        "--width",
        str(W),
        "--max_objects",
        "1",
    )
    assert len(result.stdout.strip().splitlines()) == 1
    assert (out / "2016" / "Annotations" / "480p" / "synth-000" / "00001.png").is_file()


@pytest.mark.parametrize(
    "bad", [["--height", "0"], ["--videos", "-1"], ["--frames", "x"]]
)
def test_cli_rejects_bad_sizes(tmp_path, bad, cli):
    assert_one_line_error(cli("scripts.make_synthetic", "--out", tmp_path / "out", *bad))
    assert not (tmp_path / "out").exists()


def test_cli_rejects_file_as_output(tmp_path, cli):
    target = tmp_path / "file.txt"
    target.write_text("x")
    assert_one_line_error(cli("scripts.make_synthetic", "--out", target), "not a directory")


# --- hard events and lazy rendering

EH, EW = 48, 80


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _digest(frames, masks) -> str:
    digest = hashlib.sha256()
    for frame, mask in zip(frames, masks, strict=True):
        digest.update(frame.tobytes())
        digest.update(mask.tobytes())
    return digest.hexdigest()[:16]


def test_old_outputs_are_unchanged():
    """Digests recorded with the generator as it was before hard events and
    iter_video existed (numpy 2.4.6, OpenCV 5.0.0): default arguments must
    draw exactly the same numbers."""
    frames, masks = synthetic.render_video(
        _rng(3), synthetic.VideoSpec(6, H, W, 2, object_ids=[2, 7], leave_return=[True, False])
    )
    assert _digest(frames, masks) == "d612814d7366b2d5"
    style = ObjectStyle("blob", "checker", 0.3)
    frames, masks = synthetic.render_video(
        _rng(4), synthetic.VideoSpec(5, H, W, 2, appear_at=[0, 2], styles=[style, None], camera_motion=0.5)
    )
    assert _digest(frames, masks) == "ba82c9fe4415c72a"
    spec = synthetic.VideoSpec(6, H, W, 2, object_ids=[2, 7], leave_return=[True, False], events=HardEvents())
    empty = synthetic.render_video(_rng(3), spec)
    assert _digest(*empty) == "d612814d7366b2d5"


ALL_EVENTS = HardEvents(
    occlusions=(Occlusion(target=0, start=4, duration=3, approach=2),),
    exits=(Exit(target=1, start=2, duration=4, ramp=2),),
    drifts=(AppearanceDrift(target=0, start=0, end=10, hue_shift=0.3, texture_blend=0.5),),
    lighting=(LightingChange(2, 6, brightness=0.6, contrast=0.8), LightingChange(6, 9, flicker=0.2)),
    distractors=(Distractor(target=0),),
)


@pytest.mark.parametrize("events", [None, ALL_EVENTS], ids=["plain", "events"])
def test_iter_video_equals_render_video(events):
    frames, masks = synthetic.render_video(_rng(5), synthetic.VideoSpec(10, EH, EW, 2, events=events, motion_frames=6))
    lazy = synthetic.iter_video(_rng(5), synthetic.VideoSpec(10, EH, EW, 2, events=events, motion_frames=6))
    assert isinstance(lazy, Iterator)
    pairs = list(lazy)
    assert len(pairs) == 10
    for (frame, mask), expected_frame, expected_mask in zip(pairs, frames, masks, strict=True):
        assert np.array_equal(frame, expected_frame) and np.array_equal(mask, expected_mask)


def test_iter_video_checks_arguments_when_called():
    with pytest.raises(ValueError):
        synthetic.iter_video(_rng(0), synthetic.VideoSpec(0, H, W, 1))


def test_occluder_fully_hides_a_target_inside_the_frame():
    occlusion = Occlusion(target=0, start=6, duration=4, approach=3)
    scene = synthetic.sample_scene(_rng(0), synthetic.VideoSpec(14, EH, EW, 2, events=HardEvents(occlusions=(occlusion,))))
    without_target = replace(scene, objects=scene.objects[1:], object_ids=scene.object_ids[1:])
    assert len(scene.occluders) == 1
    for t in range(14):
        image, mask = synthetic.render_scene_frame(scene, t)
        _, unoccluded = synthetic.render_frame(scene.background, scene.objects, scene.object_ids, t, EH, EW)
        target = unoccluded == 1
        assert target.sum() > 20  # the target is inside the frame all along
        if 6 <= t < 10:
            assert not (mask == 1).any()
            assert set(np.unique(mask)) <= {0, 2}
            # Not a word of it shows in the image either.
            image_without, _ = synthetic.render_scene_frame(without_target, t)
            assert np.array_equal(image[target], image_without[target])
    for t in (0, 13):  # before and after, the occluder is out of the scene
        assert (synthetic.render_scene_frame(scene, t)[1] == 1).any()


def test_exit_keeps_an_object_out_for_tens_of_frames():
    exit_ = Exit(target=0, start=5, duration=30, ramp=4)
    _, masks = synthetic.render_video(_rng(1), synthetic.VideoSpec(48, EH, EW, 1, events=HardEvents(exits=(exit_,)), noise_std=0))
    areas = [int((m == 1).sum()) for m in masks]
    empty = {t for t, area in enumerate(areas) if area == 0}
    assert areas[0] > 0 and areas[-1] > 0  # in view, out, in view again
    assert set(range(9, 39)) <= empty
    assert max(empty) < 43


def test_leave_return_is_long_in_long_videos():
    _, masks = synthetic.render_video(_rng(6), synthetic.VideoSpec(90, H, W, 1, leave_return=[True], noise_std=0))
    empty = [t for t, m in enumerate(masks) if not m.any()]
    assert len(empty) >= 30 and masks[0].any() and masks[-1].any()


def _frame_means(events, flicker_free_rng: int = 2) -> np.ndarray:
    frames, _ = synthetic.render_video(_rng(flicker_free_rng), synthetic.VideoSpec(12, EH, EW, 1, events=events, noise_std=0))
    return np.array([f.mean() for f in frames])


def test_lighting_ramp_and_flicker_change_the_frame_mean():
    plain = _frame_means(None)
    dimmed = _frame_means(HardEvents(lighting=(LightingChange(4, 8, brightness=0.5),)))
    assert np.allclose(dimmed[:5], plain[:5])
    assert np.allclose(dimmed[8:] / plain[8:], 0.5, atol=0.02)
    assert np.all(np.diff(dimmed[4:9]) < 0)
    flickering = _frame_means(HardEvents(lighting=(LightingChange(0, 12, flicker=0.3),)))
    assert np.std(flickering / plain) > 0.05


def test_appearance_drift_changes_the_target_gradually():
    drift = AppearanceDrift(target=0, start=2, end=10, hue_shift=0.5, texture_blend=0.5)
    scene = synthetic.sample_scene(_rng(3), synthetic.VideoSpec(12, EH, EW, 1, events=HardEvents(drifts=(drift,))))
    still = replace(scene, drifts=())
    changes = []
    for t in (2, 6, 11):
        image, mask = synthetic.render_scene_frame(scene, t)
        reference, reference_mask = synthetic.render_scene_frame(still, t)
        assert np.array_equal(mask, reference_mask)  # appearance only
        inside = mask == 1
        changes.append(float(np.abs(image[inside] - reference[inside]).mean()))
    assert changes[0] == 0.0 and 10 < changes[1] < changes[2]


def _spy_styles(monkeypatch) -> list:
    styles = []
    original = synthetic.sample_object

    def spy(*args, **kwargs):
        styles.append(kwargs.get("style"))
        return original(*args, **kwargs)

    for module in (synthetic.objects, synthetic.events):  # where objects and distractors are sampled
        monkeypatch.setattr(module, "sample_object", spy)
    return styles


@pytest.mark.parametrize("given", [None, ObjectStyle("ellipse", "stripes", 0.6)])
def test_distractor_has_the_target_style_but_mask_zero(monkeypatch, given):
    styles = _spy_styles(monkeypatch)
    scene = synthetic.sample_scene(
        _rng(4), synthetic.VideoSpec(6, EH, EW, 2, styles=[None, given], events=HardEvents(distractors=(Distractor(target=1),)))
    )
    # Sampling order: ... object 0, object 1 (last try), then the distractor.
    assert styles[-3] is None
    assert styles[-1] == styles[-2] and None not in (styles[-1].shape, styles[-1].texture, styles[-1].hue)
    if given is not None:
        assert styles[-1] == given
    distractor = scene.distractors[0]
    image, mask = synthetic.render_scene_frame(scene, 0)
    _, own = synthetic.render_frame(scene.background, [distractor], [9], 0, EH, EW)
    _, targets = synthetic.render_frame(scene.background, scene.objects, scene.object_ids, 0, EH, EW)
    visible = (own == 9) & (targets == 0)
    assert visible.sum() > 20
    assert not mask[visible].any()
    background = scene.background.view(0, EH, EW)
    assert np.abs(image[visible] - background[visible]).mean() > 10


@pytest.mark.parametrize(
    "events",
    [
        HardEvents(occlusions=(Occlusion(target=2, start=1, duration=2),)),
        HardEvents(occlusions=(Occlusion(target=0, start=9, duration=2),)),
        HardEvents(exits=(Exit(target=0, start=1, duration=2, ramp=1), Exit(target=0, start=5, duration=1, ramp=1))),
        HardEvents(drifts=(AppearanceDrift(target=0, start=4, end=4),)),
        HardEvents(lighting=(LightingChange(0, 5, brightness=0.0),)),
        HardEvents(distractors=(Distractor(target=0, appear_at=10),)),
    ],
)
def test_bad_events_are_rejected(events):
    with pytest.raises(ValueError):
        synthetic.render_video(_rng(0), synthetic.VideoSpec(10, H, W, 2, events=events))


def test_exit_and_leave_return_are_exclusive():
    with pytest.raises(ValueError):
        synthetic.render_video(
            _rng(0), synthetic.VideoSpec(10, H, W, 1, leave_return=[True], events=HardEvents(exits=(Exit(0, 1, 2, 1),)))
        )


def test_synthvos_seeds_are_reserved():
    assert dict(synthetic.SYNTHVOS_SEEDS) == {"val": 2022, "long": 2023, "yv": 2024}
    for seed in synthetic.SYNTHVOS_SEEDS.values():
        with pytest.raises(ValueError, match="reserved"):
            synthetic.assert_not_synthvos_seed(seed)
    synthetic.assert_not_synthvos_seed(0)
