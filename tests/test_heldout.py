"""The held-out generator (datasets/heldout, scripts/make_heldout.py): independent of the training generator."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from datasets import heldout
from datasets.davis_test_dataset import davis2017_videos
from datasets.heldout.clip import _sprite_mask
from datasets.yv_test_dataset import youtube_videos
from tests.helpers import ROOT, assert_one_line_error, run, tree
from util.palette import davis_palette

TINY = ("--videos", "3", "--frames", "10", "--height", "64", "--width", "112", "--seed", "4", "--youtube")


@pytest.fixture
def make(cli):
    """``make(out, *args)``: scripts/make_heldout.py's ``main`` in-process."""
    return lambda out, *args: cli("scripts.make_heldout", "--out", out, *args)


@pytest.fixture(scope="module")
def held(tmp_path_factory):
    """The held-out set, written once by the script as a real process (its smoke run)."""
    out = tmp_path_factory.mktemp("heldout") / "out"
    result = run("scripts/make_heldout.py", "--out", str(out), *TINY)
    assert result.stdout.startswith("held-out: 3 videos, 30 frames")
    return out


def test_heldout_is_deterministic_from_its_seed(held, tmp_path, make):
    assert make(tmp_path / "again", *TINY).returncode == 0
    assert tree(held) == tree(tmp_path / "again")
    other = tmp_path / "other"
    heldout.write_heldout(other, 1, 2, 64, 112, seed=5)
    first = "2017/trainval/JPEGImages/480p/heldout-000/00000.jpg"
    assert (other / first).read_bytes() != (held / first).read_bytes()


def test_heldout_davis_layout_is_evaluable(held):
    davis = held / "2017" / "trainval"
    names = (davis / "ImageSets" / "2017" / "val.txt").read_text().split()
    assert names == ["heldout-000", "heldout-001", "heldout-002"]
    videos = davis2017_videos(held / "2017", "val")
    assert [v.name for v in videos] == names and all(len(v) == 10 for v in videos)
    manifest = json.loads((held / heldout.MANIFEST).read_text())
    for video, entry in zip(videos, manifest["videos"]):
        ids = {o["id"] for o in entry["objects"]}
        assert 1 <= len(ids) <= 3 and ids == set(range(1, len(ids) + 1))
        for t in (0, 9):
            png = Image.open(davis / "Annotations" / "480p" / video.name / f"{t:05d}.png")
            assert png.mode == "P" and bytes(png.getpalette()) == davis_palette()[: len(png.getpalette())]
            labels = np.array(png)
            assert labels.shape == (64, 112) and set(np.unique(labels)) <= ids | {0}
            if t == 0:
                assert set(np.unique(labels)) == ids | {0}  # every object on the first frame
        frame = np.asarray(Image.open(davis / "JPEGImages" / "480p" / video.name / "00000.jpg"))
        assert frame.shape == (64, 112, 3)


def test_heldout_youtube_layout(held):
    videos = youtube_videos(held / "yv", "valid", size=-1)
    assert [v.name for v in videos] == ["heldout-000", "heldout-001", "heldout-002"]
    meta = json.loads((held / "yv" / "valid" / "meta.json").read_text())
    for video in videos:
        assert list(video.annotation_files) == [0]
        ground_truth = held / "yv" / "valid_gt" / "Annotations" / video.name
        assert len(list(ground_truth.iterdir())) == 10
        first = np.array(Image.open(ground_truth / "00000.png"))
        assert set(meta["videos"][video.name]["objects"]) == {str(i) for i in np.unique(first) if i}
    sparse = sorted(p.name for p in (held / "yv" / "valid" / "JPEGImages" / "heldout-000").iterdir())
    assert sparse == ["00000.jpg", "00005.jpg"]


def test_heldout_has_small_objects():
    """Sprites cover 0.4-12 % of the frame where they start; many are small (under 3 %)."""
    areas = []
    for index in range(25):
        rng = heldout.clip_rng(9, index)
        clip = heldout.sample_clip(rng, 1, 240, 432)
        areas += [_sprite_mask(s, 0, 240, 432).mean() for s in clip.sprites if s.label]
    assert all(0.003 < a < 0.13 for a in areas), areas
    assert sum(a < 0.03 for a in areas) >= len(areas) // 3 and max(areas) > 0.04


def _imports(package: Path) -> set[str]:
    found = set()
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                found.add(node.module)
    return found


def test_heldout_shares_no_code_with_the_training_generator():
    assert not {m for m in _imports(ROOT / "datasets" / "heldout") if m.startswith("datasets.synthetic")}
    assert not {m for m in _imports(ROOT / "datasets" / "synthetic") if m.startswith("datasets.heldout")}
    contracts = (ROOT / "pyproject.toml").read_text().split("[[tool.importlinter.contracts]]")
    assert any(
        'type = "independence"' in c and 'modules = ["datasets.heldout", "datasets.synthetic"]' in c for c in contracts
    )
    code = "import sys, datasets.heldout; assert not [m for m in sys.modules if m.startswith('datasets.synthetic')]"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=False).returncode == 0


@pytest.mark.parametrize("args", [("--videos", "0"), ("--height", "16"), ("--seed", "-1"), ("--frames", "0")])
def test_heldout_rejects_bad_arguments(tmp_path, args, make):
    assert_one_line_error(make(tmp_path / "out", *args))


def test_heldout_refuses_foreign_folders(tmp_path, make):
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("x")
    small = ("--videos", "1", "--frames", "2", "--height", "32", "--width", "48")
    result = make(out, *small, "--overwrite")
    assert result.returncode == 2 and "did not write" in result.stderr
    (out / "mine.txt").unlink()
    assert make(out, *small).returncode == 0
    assert make(out, *small).returncode == 2
    assert make(out, *small, "--overwrite").returncode == 0


@pytest.mark.slow  # seconds: in .ci/run (-m ''), out of the default selection
def test_evidence_script_scores_the_model_and_the_baseline_on_held_out_clips(lite_checkpoint, tmp_path, make, cli):
    """scripts/evidence_synthvos.py --heldout: a row per layout and method, the baseline's J&F as the copied masks give it.
    The script runs in-process; it runs eval_davis.py and eval_youtube.py as processes."""
    data = tmp_path / "heldout"
    assert make(data, "--videos", "2", "--frames", "4", "--height", "48", "--width", "64", "--seed", "3", "--youtube").returncode == 0
    cli("scripts.evidence_synthvos", "--model", lite_checkpoint, "--root", "", "--heldout", data, "--out", tmp_path / "ev",
        "--name", "heldout", "--work", tmp_path / "work", "--device", "cpu", check=True)
    rows = [line for line in (tmp_path / "ev" / "heldout.md").read_text().splitlines() if line.startswith("| held-out")]
    assert [row.split(" | ")[1] for row in rows] == ["model", "copy first mask"] * 2
    report = json.loads((tmp_path / "ev" / "heldout.json").read_text())
    assert set(report) == {"model", "heldout_davis", "heldout_youtube"}
    assert 0 <= report["heldout_davis"]["copy first mask"]["J&F-Mean"] <= 1
