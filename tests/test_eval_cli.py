"""Integration: the real eval command lines on generated data with a random checkpoint.

One real process per entry point (the smoke runs); the other runs call ``main(argv)`` in-process (``cli``).
"""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.helpers import DAVIS_FRAMES, assert_one_line_error, run
from util.palette import davis_palette


@pytest.fixture(scope="module")
def bare_checkpoint(tmp_path_factory):
    """``bare_checkpoint(config)``: a random bare state dict in the released checkpoint's layout
    (``make_random_checkpoint.py --official --config CONFIG``), its configuration inferred from the shapes; made once."""
    from model.checkpoint import atomic_save
    from model.network import random_network

    folder = tmp_path_factory.mktemp("bare")

    def make(config: str) -> Path:
        path = folder / f"random_{config}.pth"
        if not path.is_file():
            atomic_save(random_network(config, 3, None).state_dict(), path)
        return path

    return make


def val_names(davis: Path) -> list[str]:
    return (davis / "2017/trainval/ImageSets/2017/val.txt").read_text().split()


def assert_davis_2017_masks(davis: Path, out: Path) -> None:
    for name in val_names(davis):
        gt_dir = davis / "2017/trainval/Annotations/480p" / name
        frames = sorted((davis / "2017/trainval/JPEGImages/480p" / name).iterdir())
        outputs = sorted((out / name).iterdir())
        assert [p.name for p in outputs] == [f"{i:05d}.png" for i in range(len(frames))]
        first_gt = np.array(Image.open(gt_dir / "00000.png"))
        labels = set(np.unique(first_gt).tolist())
        for path in outputs:
            img = Image.open(path)
            assert img.mode == "P" and img.size == (64, 48)
            assert bytes(img.getpalette()[:768]) == davis_palette()
            assert set(np.unique(np.array(img)).tolist()) <= labels
        # the annotated frame comes back exactly
        assert np.array_equal(np.array(Image.open(out / name / "00000.png")), first_gt)
    assert not list(out.glob(".*partial"))


@pytest.mark.parametrize("config", ["lite", pytest.param("official", marks=pytest.mark.slow)])
def test_eval_davis_2017(bare_checkpoint, davis, tmp_path, config):
    """The smoke run of eval_davis.py: a real process, a bare state dict (lite, or the official size: slow)."""
    out = tmp_path / "out"
    proc = run("eval_davis.py", "--model", str(bare_checkpoint(config)), "--davis", str(davis / "2017"), "--output", str(out),
               "--device", "cpu")
    assert "FPS" in proc.stdout
    assert_davis_2017_masks(davis, out)


def test_eval_davis_2017_variants_run(lite_checkpoint, davis, tmp_path, cli):
    for flags in (["--use_km"], ["--no_top"], ["--use_km", "--no_top", "--threshold", "0.5", "--capacity", "1", "--mem_freq", "1"]):
        out = tmp_path / "_".join(flags)
        cli("eval_davis", "--model", lite_checkpoint, "--davis", davis / "2017", "--output", out, *flags, check=True)
        assert len(list(out.glob("*/*.png"))) == DAVIS_FRAMES * len(val_names(davis))


def test_eval_davis_2016(lite_checkpoint, davis, tmp_path):
    """The smoke run of eval_davis_2016.py (a real process)."""
    out = tmp_path / "out16"
    run("eval_davis_2016.py", "--model", str(lite_checkpoint), "--davis", str(davis / "2016"), "--output", str(out))
    names = (davis / "2017/trainval/ImageSets/2016/val.txt").read_text().split()
    for name in names:
        outputs = sorted((out / name).iterdir())
        assert len(outputs) == DAVIS_FRAMES
        for path in outputs:
            img = Image.open(path)
            assert img.mode == "L" and img.size == (64, 48)
            assert set(np.unique(np.array(img)).tolist()) <= {0, 255}
        gt = np.array(Image.open(davis / "2016/Annotations/480p" / name / "00000.png"))
        assert np.array_equal(np.array(Image.open(out / name / "00000.png")), gt)


def test_missing_dataset_root(lite_checkpoint, tmp_path, cli):
    result = cli("eval_davis", "--model", lite_checkpoint, "--davis", tmp_path / "nope", "--output", tmp_path / "o")
    assert_one_line_error(result, str(tmp_path / "nope"))


def test_empty_sequence_folder(lite_checkpoint, davis, tmp_path, cli):
    root = tmp_path / "davis"
    shutil.copytree(davis / "2017", root / "2017")
    name = val_names(davis)[0]
    seq = root / "2017/trainval/JPEGImages/480p" / name
    shutil.rmtree(seq)
    seq.mkdir()
    out = tmp_path / "o"
    out.mkdir()
    (out / "keep.txt").write_text("earlier results")
    result = cli("eval_davis", "--model", lite_checkpoint, "--davis", root / "2017", "--output", out)
    assert_one_line_error(result, str(seq), "no frames")
    assert (out / "keep.txt").read_text() == "earlier results"


def test_missing_checkpoint(davis, tmp_path, cli):
    result = cli("eval_davis", "--model", tmp_path / "x.pth", "--davis", davis / "2017", "--output", tmp_path / "o")
    assert_one_line_error(result, "x.pth", "not found")


def test_eval_davis_evaluate_writes_jf(lite_checkpoint, davis, tmp_path, cli):
    out = tmp_path / "ev"
    result = cli("eval_davis", "--model", lite_checkpoint, "--davis", davis / "2017", "--output", out, "--evaluate",
                 "--json", tmp_path / "jf.json", check=True)
    assert "J&F-Mean" in result.stdout
    jf = json.loads((tmp_path / "jf.json").read_text())
    assert 0 <= jf["J&F-Mean"] <= 1 and set(jf["sequences"]) == set(val_names(davis))
    assert (out / "global_results.csv").is_file() and (out / "per-sequence_results.csv").is_file()
