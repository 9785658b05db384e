"""demo.py: the README's main-job command, and its answers to bad input.

The README's command (48 frames of 432x240: slow) and the runs that need PyTorch started on AVX2 kernels are real
processes; the rest calls ``demo.main(argv)`` in-process on conftest.py's ``clip`` with the lite checkpoint.
"""

import subprocess
import sys

import cv2
import numpy as np
import pytest

from datasets.synthetic import VideoSpec, render_video
from tests.helpers import ROOT, assert_one_line_error, run, save_frames, save_mask

SHIPPED = ROOT / "saves" / "qdmn_lite_synth.pth"


@pytest.mark.slow
def test_demo_default_sample_with_the_shipped_model(tmp_path):
    """`python demo.py` as a new user runs it (in an empty folder, so the sample is generated)."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "demo.py"), "--model", str(SHIPPED)],
        cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = tmp_path / "outputs" / "demo"
    assert len(list((out / "sample").glob("*.png"))) == 48
    assert (out / "sample_overlay.mp4").stat().st_size > 0 and (out / "sample_preview.gif").stat().st_size > 0
    line = next(line for line in proc.stdout.splitlines() if line.startswith("J&F "))
    assert 0.0 <= float(line.split()[1]) <= 100.0


def test_demo_on_a_given_video_with_ground_truth(clip, lite_checkpoint, tmp_path, cli):
    root, ckpt = clip, lite_checkpoint
    proc = cli("demo", "--video", root / "frames", "--masks", root / "masks", "--gt", root / "gt" / "frames", "--model", ckpt,
               "--output", tmp_path, check=True)
    assert len(list((tmp_path / "frames").glob("*.png"))) == 4
    assert "J&F " in proc.stdout


def test_demo_ground_truth_folder_of_any_name_and_side_by_side_overlay(clip, lite_checkpoint, tmp_path, cli):
    root, ckpt = clip, lite_checkpoint
    truth = tmp_path / "truth"  # not named like the video
    truth.mkdir()
    for png in (root / "gt" / "frames").iterdir():
        (truth / png.name).write_bytes(png.read_bytes())
    proc = cli("demo", "--video", root / "frames", "--masks", root / "masks", "--gt", truth, "--model", ckpt,
               "--output", tmp_path / "o", check=True)
    assert f"against {truth}" in proc.stdout
    capture = cv2.VideoCapture(str(tmp_path / "o" / "frames_overlay.mp4"))
    assert capture.get(cv2.CAP_PROP_FRAME_WIDTH) == 2 * 64 + 4  # ground truth | prediction
    capture.release()


def test_demo_ground_truth_is_checked_before_inference(clip, lite_checkpoint, tmp_path, cli):
    root, ckpt = clip, lite_checkpoint
    stray = tmp_path / "truth"
    stray.mkdir()
    for t in range(3):
        save_mask(stray / f"frame{t}.png", np.zeros((48, 64), np.uint8))
    out = tmp_path / "o"
    proc = cli("demo", "--video", root / "frames", "--masks", root / "masks", "--gt", stray, "--model", ckpt, "--output", out)
    assert_one_line_error(proc, "frame0.png", "name each mask like its frame")
    assert not out.exists()  # refused before anything ran or was written


def test_demo_amp_without_native_bfloat16_runs_float32_with_one_warning(clip, lite_checkpoint, tmp_path):
    """As on an AVX2-only CPU (PyTorch kept off its AVX-512 kernels): --amp gives the float32 masks and one warning line.
    Real processes: PyTorch chooses its kernels when it starts."""
    root, ckpt = clip, lite_checkpoint
    video = ["--video", str(root / "frames"), "--masks", str(root / "masks"), "--model", str(ckpt)]
    avx2 = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}
    amp = run("demo.py", *video, "--amp", "--output", str(tmp_path / "amp"), env=avx2)
    run("demo.py", *video, "--output", str(tmp_path / "fp32"), env=avx2)
    warnings = [line for line in amp.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "--amp ignored" in warnings[0] and "AVX2" in warnings[0]
    for png in sorted((tmp_path / "fp32" / "frames").glob("*.png")):
        assert (tmp_path / "amp" / "frames" / png.name).read_bytes() == png.read_bytes()


def test_demo_bad_inputs(clip, lite_checkpoint, tmp_path, cli):
    root, ckpt = clip, lite_checkpoint

    def demo(*args):
        return cli("demo", *args)

    common = ["--model", str(ckpt), "--output", str(tmp_path / "o")]
    assert_one_line_error(demo("--video", str(root / "missing"), "--masks", str(root / "masks"), *common), "missing")
    assert_one_line_error(demo("--video", str(root / "frames"), *common), "--masks")
    video = ["--video", str(root / "frames"), "--masks", str(root / "masks")]
    assert_one_line_error(demo(*video, "--model", str(root / "nope.pth")), "nope.pth")
    not_a_checkpoint = tmp_path / "notes.pth"
    not_a_checkpoint.write_text("hello")
    proc = demo(*video, "--model", str(not_a_checkpoint), "--output", str(tmp_path / "o"))
    assert_one_line_error(proc, "notes.pth", "not a PyTorch checkpoint")
    small = tmp_path / "small_masks"
    small.mkdir()
    save_mask(small / "00000.png", np.ones((10, 10), np.uint8))
    assert_one_line_error(demo("--video", str(root / "frames"), "--masks", str(small), *common), "00000.png")
    broken = tmp_path / "broken"
    save_frames(broken, render_video(np.random.default_rng(5), VideoSpec(4, 48, 64, 2))[0])
    (broken / "00002.jpg").write_bytes(b"\xff\xd8\xff broken")
    assert_one_line_error(demo("--video", str(broken), "--masks", str(root / "masks"), *common), "00002.jpg")
    assert not (tmp_path / "o" / "broken").exists()  # the failed video is not left looking complete
