"""SynthVOS, the fixed synthetic benchmark (datasets/synthetic/synthvos.py, scripts/make_synthvos.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from datasets import synthetic
from datasets.synthetic import synthvos as synthvos_plan
from tests.helpers import assert_one_line_error, file_names, read_mask, run, tree


def test_synthvos_plans_follow_the_definition():
    """The full-size plans (no rendering): sizes, objects and events per set."""
    seeds = synthetic.SYNTHVOS_SEEDS
    val = [synthvos_plan.plan_video("val", i, seeds["val"])[0] for i in range(20)]
    assert all(40 <= p.num_frames <= 80 and 1 <= len(p.object_ids) <= 3 for p in val)
    assert 0 < sum(bool(p.events) for p in val) < 20
    long = [synthvos_plan.plan_video("long", i, seeds["long"])[0] for i in range(6)]
    for plan in long:
        events = plan.events
        assert 600 <= plan.num_frames <= 800
        assert len(events.occlusions) == 2 and len(events.exits) == 1
        assert events.exits[0].duration >= 30  # tens of frames out of view
        assert events.drifts and events.distractors
        assert any(c.flicker for c in events.lighting) and any(c.brightness < 1 for c in events.lighting)
    yv = [synthvos_plan.plan_video("yv", i, seeds["yv"])[0] for i in range(10)]
    assert all(40 <= p.num_frames <= 60 and p.num_frames % 5 == 0 for p in yv)
    assert any(p.object_ids != tuple(range(1, len(p.object_ids) + 1)) for p in yv)
    assert any(max(p.appear_at) > 0 for p in yv)


TINY = ("--scale", "0.15", "--frames", "15", "--videos", "2")


@pytest.fixture
def make(cli):
    """``make(out, *args)``: scripts/make_synthvos.py's ``main`` in-process."""
    return lambda out, *args: cli("scripts.make_synthvos", "--out", out, *args)


@pytest.fixture(scope="module")
def synthvos(tmp_path_factory):
    """SynthVOS at a tiny size, written by the script as a real process with two worker processes (its smoke run)."""
    out = tmp_path_factory.mktemp("synthvos") / "out"
    result = run("scripts/make_synthvos.py", "--out", str(out), *TINY, "--workers", "2")
    return out, result.stdout


def test_synthvos_is_deterministic_and_independent_of_workers(synthvos, tmp_path, make):
    out, stdout = synthvos
    lines = stdout.strip().splitlines()
    assert [line.split(":")[0] for line in lines[:3]] == ["val", "long", "yv"]
    again = make(tmp_path / "again", *TINY, "--workers", "1")
    assert again.returncode == 0, again.stderr
    assert tree(out) == tree(tmp_path / "again")


def test_synthvos_davis_sets(synthvos):
    out, _ = synthvos
    for set_name in ("val", "long"):
        base = out / set_name / "2017" / "trainval"
        names = (base / "ImageSets" / "2017" / "val.txt").read_text().split()
        assert names == [f"synthvos-{set_name}-000", f"synthvos-{set_name}-001"]
        for name in names:
            jpgs = file_names(base / "JPEGImages" / "480p" / name)
            assert jpgs == [f"{t:05d}.jpg" for t in range(15)]
            pngs = file_names(base / "Annotations" / "480p" / name)
            assert [p.replace(".png", ".jpg") for p in pngs] == jpgs
            assert Image.open(base / "JPEGImages" / "480p" / name / jpgs[0]).size == (65, 36)
            assert read_mask(base / "Annotations" / "480p" / name / "00000.png").max() >= 1


def test_synthvos_manifest_matches_the_ground_truth(synthvos):
    out, _ = synthvos
    manifest = json.loads((out / "long" / "synthvos.json").read_text())
    assert manifest["seed"] == 2023
    checked = 0
    for video in manifest["videos"]:
        annotations = out / "long" / "2017" / "trainval" / "Annotations" / "480p" / video["name"]
        ids = [o["id"] for o in video["objects"]]
        for occlusion in video["events"]["occlusions"]:
            for t in range(occlusion["start"], occlusion["start"] + occlusion["duration"]):
                assert ids[occlusion["target"]] not in read_mask(annotations / f"{t:05d}.png")
                checked += 1
        for obj in video["objects"]:
            for first, last in obj["empty_mask_frames"]:
                assert obj["id"] not in read_mask(annotations / f"{first:05d}.png")
                assert obj["id"] not in read_mask(annotations / f"{last:05d}.png")
    assert checked > 0


def test_synthvos_youtube_set(synthvos):
    out, _ = synthvos
    root = out / "yv"
    meta = json.loads((root / "valid" / "meta.json").read_text())
    assert sorted(meta["videos"]) == ["synthvos-yv-000", "synthvos-yv-001"]
    id_sets, late = [], False
    for vid, info in meta["videos"].items():
        sparse = file_names(root / "valid" / "JPEGImages" / vid)
        assert sparse == ["00000.jpg", "00005.jpg", "00010.jpg"]
        assert file_names(root / "all_frames" / "valid_all_frames" / "JPEGImages" / vid) == [f"{t:05d}.jpg" for t in range(15)]
        gt = [read_mask(root / "valid_gt" / "Annotations" / vid / f"{t:05d}.png") for t in range(15)]
        first = {}
        for object_id, entry in info["objects"].items():
            first.setdefault(entry["frames"][0], set()).add(int(object_id))
            assert all(int(object_id) in gt[int(f)] for f in entry["frames"])
        assert file_names(root / "valid" / "Annotations" / vid) == sorted(f"{f}.png" for f in first)
        for frame, new_ids in first.items():
            annotation = read_mask(root / "valid" / "Annotations" / vid / f"{frame}.png")
            assert set(np.unique(annotation)) - {0} == new_ids
            assert np.array_equal(annotation > 0, np.isin(gt[int(frame)], list(new_ids)))
            late |= frame != "00000"
        id_sets.append(sorted(int(i) for i in info["objects"]))
    assert late
    assert any(ids != list(range(1, len(ids) + 1)) for ids in id_sets)


@pytest.mark.parametrize(
    "bad", [["--sets", "val,foo"], ["--workers", "0"], ["--scale", "0"], ["--frames", "3"], ["--sets", ""], ["--seed", "2023"]]
)
def test_synthvos_rejects_bad_arguments(tmp_path, bad, make):
    assert_one_line_error(make(tmp_path / "out", *bad))
    assert not (tmp_path / "out").exists()


def test_synthvos_refuses_to_mix_with_existing_files(tmp_path, make):
    out = tmp_path / "out"
    (out / "val").mkdir(parents=True)
    (out / "val" / "mine.txt").write_text("x")
    args = ("--sets", "val", "--scale", "0.1", "--frames", "15", "--videos", "1", "--workers", "1")
    result = make(out, *args, "--overwrite")
    assert result.returncode == 2 and "did not write" in result.stderr
    (out / "val" / "mine.txt").unlink()
    assert make(out, *args).returncode == 0
    assert make(out, *args).returncode == 2
    assert make(out, *args, "--overwrite").returncode == 0


def test_synthvos_style_training_data_from_another_seed(synthvos, tmp_path, make):
    out = tmp_path / "train"
    result = make(out, "--sets", "val", "--seed", "500", "--scale", "0.15", "--frames", "15", "--videos", "2", "--workers", "1")
    assert result.returncode == 0, result.stderr
    names = sorted(p.name for p in (out / "val/2017/trainval/JPEGImages/480p").iterdir())
    assert names == ["synthstyle500-val-000", "synthstyle500-val-001"]
    assert json.loads((out / "val" / "synthvos.json").read_text())["seed"] == 500
    reserved = synthvos[0] / "val/2017/trainval/JPEGImages/480p/synthvos-val-000/00000.jpg"
    assert (out / "val/2017/trainval/JPEGImages/480p/synthstyle500-val-000/00000.jpg").read_bytes() != reserved.read_bytes()
