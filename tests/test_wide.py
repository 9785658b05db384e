"""The wide training preset (datasets/synthetic/wide.py, scripts/make_synthvos.py --style wide)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from datasets import synthetic
from datasets.synthetic import wide
from datasets.synthetic.render import _object_alpha
from datasets.vos_dataset import VOSDataset
from datasets.yv_test_dataset import youtube_videos
from tests.helpers import assert_one_line_error, call_main, tree
from util.palette import davis_palette


def test_wide_video_is_a_function_of_the_seed():
    spec = synthetic.VideoSpec(6, 48, 80, 2)
    first = wide.render_wide_video(np.random.default_rng([5, 1]), spec)
    again = wide.render_wide_video(np.random.default_rng([5, 1]), spec)
    other = wide.render_wide_video(np.random.default_rng([5, 2]), spec)
    assert all(np.array_equal(a, b) for a, b in zip(first[0] + first[1], again[0] + again[1]))
    assert not np.array_equal(first[0][0], other[0][0])
    assert first[0][0].shape == (48, 80, 3) and first[0][0].dtype == np.uint8
    assert set(np.unique(first[1][0])) <= {0, 1, 2}


def test_wide_preset_spans_its_ranges():
    """Object area on the first frame reaches both ends of 0.2-40 %; every kind is drawn."""
    areas, kinds = [], {"background": set(), "shape": set(), "texture": set()}
    zooms, pans = [], []
    for index in range(70):
        rng = np.random.default_rng([11, index])
        scene = wide.sample_wide_scene(rng, synthetic.VideoSpec(1, 60, 108, 1))
        obj = scene.scene.objects[0]
        areas.append(float((_object_alpha(obj, 0, 60, 108) > 0.5).mean()))
        kinds["background"].add(scene.facts["background"])
        kinds["shape"].add(scene.facts["objects"][0]["shape"])
        kinds["texture"].add(scene.facts["objects"][0]["texture"])
        zooms.append(scene.facts["camera"]["zoom"])
        pans.append(scene.facts["camera"]["pan"])
    assert min(areas) < 0.004 and max(areas) > 0.3, (min(areas), max(areas))
    assert all(0.0012 < a < 0.42 for a in areas)
    assert sum(a < 0.01 for a in areas) >= 7 and sum(a > 0.1 for a in areas) >= 7
    assert kinds == {
        "background": set(wide.BACKGROUND_KINDS),
        "shape": set(wide.WIDE_SHAPES),
        "texture": set(wide.WIDE_TEXTURES),
    }
    assert 0 in zooms and max(zooms) > 0.15 and 0 in pans and max(pans) > 0.15


def test_wide_events_happen():
    """A full occlusion empties the target's mask; an exit takes it out of view and back."""
    events = synthetic.HardEvents(
        occlusions=(synthetic.Occlusion(0, 8, 4, 4),), exits=(synthetic.Exit(1, 4, 6, 3),)
    )
    spec = synthetic.VideoSpec(20, 64, 112, 2, events=events)
    _, masks = wide.render_wide_video(np.random.default_rng(3), spec)
    assert (masks[0] == 1).any() and (masks[0] == 2).any()
    assert all(not (masks[t] == 1).any() for t in range(8, 12))
    assert all(not (masks[t] == 2).any() for t in range(7, 13))
    assert (masks[19] == 2).any()
    with pytest.raises(ValueError, match="leave_return"):
        wide.sample_wide_scene(np.random.default_rng(0), synthetic.VideoSpec(4, 32, 32, 1, leave_return=[True]))


TINY = ("--style", "wide", "--seed", "7", "--scale", "0.2", "--frames", "15", "--videos", "2", "--workers", "1")


@pytest.fixture
def make(cli):
    """``make(out, *args)``: scripts/make_synthvos.py's ``main`` in-process."""
    return lambda out, *args: cli("scripts.make_synthvos", "--out", out, *args)


@pytest.fixture(scope="module")
def wide_sets(tmp_path_factory):
    out = tmp_path_factory.mktemp("wide") / "out"
    call_main("scripts.make_synthvos", ["--out", str(out), *TINY], check=True)
    return out


def test_wide_sets_are_deterministic(wide_sets, tmp_path, make):
    assert make(tmp_path / "again", *TINY).returncode == 0
    assert tree(wide_sets) == tree(tmp_path / "again")


def test_wide_sets_are_training_layouts(wide_sets):
    davis = wide_sets / "val" / "2017" / "trainval"
    names = (davis / "ImageSets" / "2017" / "val.txt").read_text().split()
    assert names == ["wide7-val-000", "wide7-val-001"]
    manifest = json.loads((wide_sets / "val" / "synthvos.json").read_text())
    assert manifest["style"] == "wide" and manifest["seed"] == 7 and manifest["tag"] == 3400
    for entry in manifest["videos"]:
        ids = {o["id"] for o in entry["objects"]}
        first = Image.open(davis / "Annotations" / "480p" / entry["name"] / "00000.png")
        assert first.mode == "P" and bytes(first.getpalette()[:48]) == davis_palette()[:48]
        assert set(np.unique(np.array(first))) - {0} == ids  # every object is on frame 0
        assert {o["id"] for o in entry["look"]["objects"]} == ids
    dataset = VOSDataset(davis / "JPEGImages" / "480p", davis / "Annotations" / "480p", max_jump=3, size=32)
    assert len(dataset) == 2 and dataset[0]["rgb"].shape == (3, 3, 32, 32)
    videos = youtube_videos(wide_sets / "yv", "valid", size=-1)
    assert [v.name for v in videos] == ["wide7-yv-000", "wide7-yv-001"]
    ground_truth = wide_sets / "yv" / "valid_gt" / "Annotations" / "wide7-yv-000"
    assert len(list(ground_truth.iterdir())) == 15


@pytest.mark.parametrize(
    "args",
    [("--style", "wide"), ("--style", "wide", "--seed", "7", "--sets", "long"), ("--style", "wide", "--seed", "2022")],
)
def test_wide_rejects_bad_arguments(tmp_path, args, make):
    assert_one_line_error(make(tmp_path / "out", *args))
