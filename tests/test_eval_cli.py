"""Integration: the real eval command lines on generated data with a random checkpoint."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from datasets.synthetic import write_davis2016, write_davis2017
from util.palette import davis_palette

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str, check: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run a script of the repository (``scripts/x.py`` as ``-m scripts.x``); ``env`` adds to (or overrides) the environment."""
    if args and args[0].startswith("scripts/") and args[0].endswith(".py"):
        args = ("-m", args[0][: -len(".py")].replace("/", "."), *args[1:])
    full_env = {**os.environ, **env} if env else None
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=600, env=full_env)
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def davis_with_lite_checkpoint(root: Path, seed: int, num_videos: int, num_frames: int, height: int, width: int) -> tuple[Path, Path]:
    """A generated DAVIS 2017 val layout under ``root`` and a random lite checkpoint (sigmoid QAM) beside it."""
    write_davis2017(root, seed=seed, num_videos=num_videos, num_frames=num_frames, height=height, width=width, max_objects=2,
                    splits=("val",))
    ckpt = root / "lite.pth"
    run("scripts/make_random_checkpoint.py", "--out", str(ckpt), "--config", "lite", "--qam_activation", "sigmoid")
    return root, ckpt


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ckpt") / "random_official.pth"
    run("scripts/make_random_checkpoint.py", "--out", str(path), "--official", "--seed", "3")
    return path


@pytest.fixture(scope="module")
def davis(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("davis")
    write_davis2017(root, seed=1, num_videos=4, num_frames=5, height=48, width=72, max_objects=3)
    write_davis2016(root, seed=2, num_videos=1, num_frames=4, height=48, width=72)
    return root


def val_names(davis: Path) -> list[str]:
    return (davis / "2017/trainval/ImageSets/2017/val.txt").read_text().split()


def test_eval_davis_2017(checkpoint, davis, tmp_path):
    out = tmp_path / "out"
    proc = run("eval_davis.py", "--model", str(checkpoint), "--davis", str(davis / "2017"), "--output", str(out), "--device", "cpu")
    assert "FPS" in proc.stdout
    for name in val_names(davis):
        gt_dir = davis / "2017/trainval/Annotations/480p" / name
        frames = sorted((davis / "2017/trainval/JPEGImages/480p" / name).iterdir())
        outputs = sorted((out / name).iterdir())
        assert [p.name for p in outputs] == [f"{i:05d}.png" for i in range(len(frames))]
        first_gt = np.array(Image.open(gt_dir / "00000.png"))
        labels = set(np.unique(first_gt).tolist())
        for path in outputs:
            img = Image.open(path)
            assert img.mode == "P" and img.size == (72, 48)
            assert bytes(img.getpalette()[:768]) == davis_palette()
            assert set(np.unique(np.array(img)).tolist()) <= labels
        # the annotated frame comes back exactly
        assert np.array_equal(np.array(Image.open(out / name / "00000.png")), first_gt)
    assert not list(out.glob(".*partial"))


def test_eval_davis_2017_variants_run(checkpoint, davis, tmp_path):
    for flags in (["--use_km"], ["--no_top"], ["--use_km", "--no_top", "--threshold", "0.5", "--capacity", "1", "--mem_freq", "1"]):
        out = tmp_path / "_".join(flags)
        run("eval_davis.py", "--model", str(checkpoint), "--davis", str(davis / "2017"), "--output", str(out), *flags)
        assert len(list(out.glob("*/*.png"))) == 5 * len(val_names(davis))


def test_eval_davis_2016(checkpoint, davis, tmp_path):
    out = tmp_path / "out16"
    run("eval_davis_2016.py", "--model", str(checkpoint), "--davis", str(davis / "2016"), "--output", str(out))
    names = (davis / "2017/trainval/ImageSets/2016/val.txt").read_text().split()
    for name in names:
        outputs = sorted((out / name).iterdir())
        assert len(outputs) == 4
        for path in outputs:
            img = Image.open(path)
            assert img.mode == "L" and img.size == (72, 48)
            assert set(np.unique(np.array(img)).tolist()) <= {0, 255}
        gt = np.array(Image.open(davis / "2016/Annotations/480p" / name / "00000.png"))
        assert np.array_equal(np.array(Image.open(out / name / "00000.png")), gt)


def assert_one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    for needle in needles:
        assert needle in lines[0]


def test_missing_dataset_root(checkpoint, tmp_path):
    proc = run("eval_davis.py", "--model", str(checkpoint), "--davis", str(tmp_path / "nope"), "--output", str(tmp_path / "o"), check=False)
    assert_one_line_error(proc, str(tmp_path / "nope"))


def test_empty_sequence_folder(checkpoint, davis, tmp_path):
    import shutil

    root = tmp_path / "davis"
    shutil.copytree(davis / "2017", root / "2017")
    name = val_names(davis)[0]
    seq = root / "2017/trainval/JPEGImages/480p" / name
    shutil.rmtree(seq)
    seq.mkdir()
    out = tmp_path / "o"
    out.mkdir()
    (out / "keep.txt").write_text("earlier results")
    proc = run("eval_davis.py", "--model", str(checkpoint), "--davis", str(root / "2017"), "--output", str(out), check=False)
    assert_one_line_error(proc, str(seq), "no frames")
    assert (out / "keep.txt").read_text() == "earlier results"


def test_missing_checkpoint(davis, tmp_path):
    proc = run(
        "eval_davis.py", "--model", str(tmp_path / "x.pth"), "--davis", str(davis / "2017"), "--output", str(tmp_path / "o"), check=False
    )
    assert_one_line_error(proc, "x.pth", "not found")


def test_eval_davis_evaluate_writes_jf(checkpoint, davis, tmp_path):
    import json

    out = tmp_path / "ev"
    proc = run(
        "eval_davis.py",
        "--model",
        str(checkpoint),
        "--davis",
        str(davis / "2017"),
        "--output",
        str(out),
        "--evaluate",
        "--json",
        str(tmp_path / "jf.json"),
    )
    assert "J&F-Mean" in proc.stdout
    result = json.loads((tmp_path / "jf.json").read_text())
    assert 0 <= result["J&F-Mean"] <= 1 and set(result["sequences"]) == set(val_names(davis))
    assert (out / "global_results.csv").is_file() and (out / "per-sequence_results.csv").is_file()
