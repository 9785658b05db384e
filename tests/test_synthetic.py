"""Tests for the deterministic synthetic dataset generator."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from datasets import synthetic
from util.palette import davis_palette

ROOT = Path(__file__).resolve().parent.parent
H, W = 32, 48


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _mask(path: Path) -> np.ndarray:
    return np.array(Image.open(path))


# --- palette


def test_davis_palette_is_the_voc_colour_map():
    palette = davis_palette()
    assert len(palette) == 768
    assert list(palette[:15]) == [0, 0, 0, 128, 0, 0, 0, 128, 0, 128, 128, 0, 0, 0, 128]
    assert list(palette[3 * 255 :]) == [224, 224, 192]


# --- renderer


def test_render_video_shapes_and_ids():
    rng = np.random.default_rng(3)
    frames, masks = synthetic.render_video(rng, 5, H, W, 2, object_ids=[2, 7])
    assert len(frames) == len(masks) == 5
    assert frames[0].shape == (H, W, 3) and frames[0].dtype == np.uint8
    assert masks[0].shape == (H, W) and masks[0].dtype == np.uint8
    assert set(np.unique(np.stack(masks))) <= {0, 2, 7}
    assert {2, 7} <= set(np.unique(masks[0]))


def test_objects_move():
    frames, masks = synthetic.render_video(np.random.default_rng(1), 12, H, W, 2)
    assert not np.array_equal(masks[0], masks[-1])
    assert not np.array_equal(frames[0], frames[-1])


def test_objects_differ_from_background():
    frames, masks = synthetic.render_video(np.random.default_rng(5), 1, 64, 96, 1)
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
        rng, 12, H, W, 2, appear_at=[0, 4], leave_return=[True, False]
    )
    areas = np.array([[(m == i).sum() for i in (1, 2)] for m in masks])
    assert areas[:4, 1].sum() == 0 and areas[4, 1] > 0
    assert areas[0, 0] > 0 and areas[-1, 0] > 0
    assert (areas[1:-1, 0] == 0).any()


def test_render_video_rejects_bad_arguments():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError):
        synthetic.render_video(rng, 0, H, W, 1)
    with pytest.raises(ValueError):
        synthetic.render_video(rng, 3, 8, W, 1)
    with pytest.raises(ValueError):
        synthetic.render_video(rng, 3, H, W, 1, appear_at=[3])
    with pytest.raises(ValueError):
        synthetic.render_video(rng, 3, H, W, 2, object_ids=[4, 4])


# --- DAVIS


def test_davis2017_is_deterministic(tmp_path):
    args = {"num_videos": 2, "num_frames": 4, "height": H, "width": W, "max_objects": 2}
    synthetic.write_davis2017(tmp_path / "a", seed=0, **args)
    synthetic.write_davis2017(tmp_path / "b", seed=0, **args)
    synthetic.write_davis2017(tmp_path / "c", seed=1, **args)
    a, b, c = _files(tmp_path / "a"), _files(tmp_path / "b"), _files(tmp_path / "c")
    assert a == b
    assert a.keys() == c.keys()
    jpgs = [k for k in a if k.endswith(".jpg")]
    assert all(a[k] != c[k] for k in jpgs)


def test_video_content_does_not_depend_on_video_count(tmp_path):
    args = {"seed": 4, "num_frames": 3, "height": H, "width": W}
    synthetic.write_davis2017(tmp_path / "two", num_videos=2, **args)
    synthetic.write_davis2017(tmp_path / "three", num_videos=3, **args)
    seq = Path("2017/trainval/JPEGImages/480p/synth-001")
    assert _files(tmp_path / "two" / seq) == _files(tmp_path / "three" / seq)


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
        jpgs = _names(base / "JPEGImages" / "480p" / seq)
        pngs = _names(base / "Annotations" / "480p" / seq)
        assert jpgs == [f"{i:05d}.jpg" for i in range(4)]
        assert [p.replace(".png", ".jpg") for p in pngs] == jpgs
        image = Image.open(base / "JPEGImages" / "480p" / seq / "00000.jpg")
        assert image.format == "JPEG" and image.size == (W, H) and image.mode == "RGB"
        for png in pngs:
            mask = Image.open(base / "Annotations" / "480p" / seq / png)
            assert mask.mode == "P" and mask.size == (W, H)
            assert bytes(mask.getpalette()) == davis_palette()
            assert set(np.unique(np.array(mask))) <= {0, 1, 2, 3}
        first = _mask(base / "Annotations" / "480p" / seq / "00000.png")
        assert first.max() >= 1


def test_davis2017_testdev_layout(tmp_path):
    names = synthetic.write_davis2017_testdev(
        tmp_path, seed=0, num_videos=2, num_frames=4, height=H, width=W
    )
    base = tmp_path / "2017" / "test-dev"
    assert (base / "ImageSets" / "2017" / "test-dev.txt").read_text().split() == names
    for seq in names:
        assert len(_names(base / "JPEGImages" / "480p" / seq)) == 4
        assert _names(base / "Annotations" / "480p" / seq) == ["00000.png"]
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
        assert len(_names(tmp_path / "2016" / "JPEGImages" / "480p" / seq)) == 4
        assert len(_names(annotations)) == 4
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
        sparse = _names(root / "valid" / "JPEGImages" / vid)
        dense = _names(root / "all_frames" / "valid_all_frames" / "JPEGImages" / vid)
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
        assert _names(annotations) == sorted(f"{f}.png" for f in first)
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
        jpgs = _names(tmp_path / "train" / "JPEGImages" / vid)
        pngs = _names(tmp_path / "train" / "Annotations" / vid)
        assert jpgs == ["00000.jpg", "00005.jpg", "00010.jpg"]
        assert [p.replace(".png", ".jpg") for p in pngs] == jpgs
        for object_id, info in meta["videos"][vid]["objects"].items():
            for frame in info["frames"]:
                assert int(object_id) in _mask(
                    tmp_path / "train" / "Annotations" / vid / f"{frame}.png"
                )


# --- static


def test_static_layout(tmp_path):
    counts = synthetic.write_static(
        tmp_path, seed=0, num_images=2, height=H, width=W, num_classes=2
    )
    assert counts["fss"] == 4
    classes = _names(tmp_path / "fss")
    assert len(classes) == 2
    assert _names(tmp_path / "fss" / classes[0]) == ["1.jpg", "1.png", "2.jpg", "2.png"]
    for name in synthetic.STATIC_SETS:
        files = _names(tmp_path / name)
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


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "scripts/make_synthetic.py", *args],
        cwd=ROOT,
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_writes_layout(tmp_path):
    out = tmp_path / "out"
    result = _cli(
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
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.strip().splitlines()) == 1
    assert (out / "2016" / "Annotations" / "480p" / "synth-000" / "00001.png").is_file()


@pytest.mark.parametrize(
    "bad", [["--height", "0"], ["--videos", "-1"], ["--frames", "x"]]
)
def test_cli_rejects_bad_sizes(tmp_path, bad):
    result = _cli("--out", str(tmp_path / "out"), *bad)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_cli_rejects_file_as_output(tmp_path):
    target = tmp_path / "file.txt"
    target.write_text("x")
    result = _cli("--out", str(target))
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "not a directory" in result.stderr
