"""Inputs that used to give a wrong result silently or a traceback: now exact, or one line and exit 2.

Tiny clips (conftest.py's ``clip``, 4 frames of 48x64) and the random ``lite`` checkpoint. The commands run
in-process (``main(argv)``, the ``cli`` fixture). Every test that involves the user's files compares them byte for
byte before and after.
"""

from __future__ import annotations

import errno
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

import evaluation.masks
from datasets.synthetic import VideoSpec, render_video
from datasets.video_source import ImageFolderFrames, VideoSource
from evaluation.masks import write_mask, write_palette
from model.checkpoint import atomic_save, safe_load
from tests.helpers import assert_one_line_error, error_lines, read_mask, save_frames, save_mask, tree
from util.errors import UserError
from util.image_io import load_mask


@pytest.fixture
def hostile(clip, lite_checkpoint):
    """conftest.py's clip folder, its first mask's ids and the lite checkpoint."""
    return clip, read_mask(clip / "masks" / "00000.png"), lite_checkpoint


def generic(video: Path, masks: Path, ckpt: Path, out: Path, *extra: str) -> list[str]:
    return ["--video", str(video), "--masks", str(masks), "--model", str(ckpt), "--output", str(out), "--device", "cpu", *extra]


def save_gray(path: Path, values: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(values).save(path)


# ----------------------------------------------------------------- annotations
def test_16bit_masks_map_exactly_or_name_the_id(hostile, tmp_path, cli):
    root, ids, ckpt = hostile
    exact = tmp_path / "exact.png"
    save_gray(exact, np.array([[0, 3], [200, 255]], dtype=np.uint16))
    with Image.open(exact) as image:
        assert image.mode.startswith("I")
    assert load_mask(exact).tolist() == [[0, 3], [200, 255]]
    for big in (256, 65535):  # were cast: 256 -> 0 (background), 65535 -> 255 (void)
        masks = tmp_path / f"m{big}"
        save_gray(masks / "00000.png", np.where(ids > 0, big, 0).astype(np.uint16))
        before = tree(masks)
        proc = cli("eval_generic", *generic(root / "frames", masks, ckpt, tmp_path / "out"))
        assert_one_line_error(proc, str(masks / "00000.png"), f"mask id {big} ")
        assert tree(masks) == before and not (tmp_path / "out" / "frames").exists()


def test_jpeg_masks_are_refused(hostile, tmp_path, cli):
    root, ids, ckpt = hostile
    masks = tmp_path / "masks"
    masks.mkdir()
    Image.fromarray(np.where(ids > 0, 255, 0).astype(np.uint8)).save(masks / "00000.jpg", quality=75)
    before = tree(masks)
    proc = cli("eval_generic", *generic(root / "frames", masks, ckpt, tmp_path / "out"))
    assert_one_line_error(proc, str(masks / "00000.jpg"), "lossy", "PNG")
    assert tree(masks) == before and not (tmp_path / "out" / "frames").exists()


def test_grayscale_0_255_mask_is_one_object_in_generic_mode(hostile, tmp_path, cli):
    root, ids, ckpt = hostile
    masks = tmp_path / "masks"
    save_gray(masks / "00000.png", np.where(ids > 0, 255, 0).astype(np.uint8))  # mode L, not a palette
    before = tree(masks)
    proc = cli("eval_generic", *generic(root / "frames", masks, ckpt, tmp_path / "out", "--size", "-1"))
    said = [line for line in proc.stdout.splitlines() if "one object" in line]
    assert len(said) == 1 and "00000.png" in said[0] and "0/255" in said[0]
    first = np.array(Image.open(tmp_path / "out" / "frames" / "00000.png"))
    assert np.array_equal(first, (ids > 0).astype(np.uint8))  # was all background (255 = void)
    assert tree(masks) == before


def test_grayscale_0_1_and_palette_masks_in_generic_mode():
    frames = ImageFolderFrames([Path("00000.jpg")])
    video = VideoSource("v", frames, {}, gray_binary_is_one_object=True)
    ones = np.zeros((4, 4), np.uint8)
    ones[1:3, 1:3] = 1
    assert np.array_equal(video.gray_binary_as_one_object(Path("missing.png"), ones), ones)
    several = ones * 2
    several[0, 0] = 1
    assert np.array_equal(video.gray_binary_as_one_object(Path("missing.png"), several), several)  # 0/1/2: ids, kept


# ----------------------------------------------------------------- frames and video files
def test_same_stem_frames_are_refused(hostile, tmp_path, cli):
    root, ids, ckpt = hostile
    frames = tmp_path / "frames"
    save_frames(frames, render_video(np.random.default_rng(1), VideoSpec(3, 32, 48, 1))[0])
    Image.open(frames / "00001.jpg").save(frames / "00001.png")
    before = tree(frames)
    result = cli("eval_generic", *generic(frames, root / "masks", ckpt, tmp_path / "out"))
    assert_one_line_error(result, str(frames / "00001.jpg"), str(frames / "00001.png"))
    assert tree(frames) == before


def test_extreme_shape_is_refused_with_the_size_to_use(hostile, tmp_path, cli):
    root, _, ckpt = hostile
    images, ids = render_video(np.random.default_rng(2), VideoSpec(2, 16, 300, 1))
    thin = [im[:2] for im in images]  # 2 x 300 frames: --size 480 would ask for 480 x 72000
    save_frames(tmp_path / "frames", thin, ext=".png")
    save_mask(tmp_path / "masks" / "00000.png", ids[0][:2])
    proc = cli("eval_generic", *generic(tmp_path / "frames", tmp_path / "masks", ckpt, tmp_path / "out", "--size", "480"))
    assert_one_line_error(proc, str(tmp_path / "frames" / "00000.png"), "300x2 frame", "72000x480", "--size")
    assert not (tmp_path / "out" / "frames").exists()


def test_video_file_shorter_than_its_header_is_an_error(hostile, tmp_path, cli):
    root, ids, ckpt = hostile
    avi = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(avi), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))  # the clip's mask is 64x48
    for image in render_video(np.random.default_rng(3), VideoSpec(6, 48, 64, 1))[0]:
        writer.write(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    writer.release()
    avi.write_bytes(avi.read_bytes()[: int(avi.stat().st_size * 0.7)])  # the header still announces 6 frames
    capture = cv2.VideoCapture(str(avi))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 6
    decoded = 0
    while capture.read()[0]:
        decoded += 1
    capture.release()
    assert 0 < decoded < 6
    before = avi.read_bytes()
    proc = cli("eval_generic", *generic(avi, root / "masks", ckpt, tmp_path / "out"))
    assert_one_line_error(proc, str(avi), "announces 6 frames", f"only {decoded} decode")
    assert avi.read_bytes() == before
    assert not (tmp_path / "out" / "clip").exists()  # nothing published


# ----------------------------------------------------------------- weights
def test_non_finite_weights_are_refused_naming_the_tensor(hostile, tmp_path, cli):
    root, _, ckpt = hostile
    payload = safe_load(ckpt)
    name = sorted(k for k, v in payload["network"].items() if v.is_floating_point())[3]
    for bad in (float("nan"), float("inf")):
        broken = dict(payload, network=dict(payload["network"]))
        tensor = broken["network"][name].clone()
        tensor.view(-1)[0] = bad
        broken["network"][name] = tensor
        path = tmp_path / f"broken_{bad}.pth"
        atomic_save(broken, path)
        before = path.read_bytes()
        result = cli("eval_generic", *generic(root / "frames", root / "masks", path, tmp_path / "out"))
        assert_one_line_error(result, str(path), name, "NaN or infinite")
        assert path.read_bytes() == before


def test_weights_file_with_missing_or_malformed_config(hostile, tmp_path, cli):
    root, _, ckpt = hostile
    payload = safe_load(ckpt)
    for label, config in (("missing", None), ("text", "lite"), ("field", {**payload["config"], "key_dim": "64"}),
                          ("backbone", {**payload["config"], "backbone": "vgg"}), ("dims", {**payload["config"], "decoder_dims": 5})):
        broken = {k: v for k, v in payload.items() if k != "config"}
        if config is not None:
            broken["config"] = config
        path = tmp_path / f"{label}.pth"
        torch.save(broken, path)
        before = path.read_bytes()
        result = cli("eval_generic", *generic(root / "frames", root / "masks", path, tmp_path / "out"))
        assert_one_line_error(result, str(path), "'config'")
        assert path.read_bytes() == before


# ----------------------------------------------------------------- arguments and devices
@pytest.mark.parametrize("flag,value", [("--top_k", "0"), ("--threshold", "nan"), ("--threshold", "inf"), ("--capacity", "-1"),
                                        ("--mem_freq", "0"), ("--mem_freq", "-3"), ("--fps", "nan"), ("--fps", "0"), ("--top_k", "x"),
                                        ("--size", "0"), ("--size", "-5"), ("--threads", "0")])
def test_numeric_flags_are_checked_by_the_argument_builders(hostile, tmp_path, cli, flag, value):
    root, _, ckpt = hostile
    before = tree(root)
    result = cli("eval_generic", *generic(root / "frames", root / "masks", ckpt, tmp_path / "out"), flag, value)
    lines = error_lines(result)
    assert result.returncode == 2 and any(f"argument {flag}" in line and "Traceback" not in line for line in lines), lines
    assert not (tmp_path / "out").exists() and tree(root) == before


@pytest.mark.parametrize("device", ["mps", "xpu", "cuda:7", "tpu"])
def test_unavailable_device_is_one_line(hostile, tmp_path, cli, device):
    root, _, ckpt = hostile
    before = tree(root)
    result = cli("eval_generic", *generic(root / "frames", root / "masks", ckpt, tmp_path / "out"), "--device", device)
    assert_one_line_error(result, f"--device {device}")
    assert tree(root) == before


# ----------------------------------------------------------------- writing
def test_full_disk_while_writing_masks_is_one_line_and_publishes_nothing(hostile, tmp_path, cli, monkeypatch):
    root, _, ckpt = hostile

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(evaluation.masks, "save_palette_png", full)
    out = tmp_path / "out"
    before = tree(root)
    proc = cli("eval_generic", *generic(root / "frames", root / "masks", ckpt, out))
    assert_one_line_error(proc, "00000.png", "No space left on device")
    assert not (out / "frames").exists() and tree(root) == before


def test_permission_error_writing_a_mask_is_a_user_error(tmp_path):
    def denied(path, ids, video):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    with pytest.raises(UserError, match="Permission denied"):
        write_mask(denied, tmp_path / "00000.png", np.zeros((2, 2), np.uint8), None)
    write_mask(write_palette, tmp_path / "ok.png", np.ones((2, 2), np.uint8), VideoSource("v", ImageFolderFrames([]), {}))
    assert load_mask(tmp_path / "ok.png").tolist() == [[1, 1], [1, 1]]


def test_evaluate_jf_json_naming_a_folder_an_input_or_a_non_json_file(tmp_path, cli):
    gt, pred = tmp_path / "gt" / "seq", tmp_path / "pred" / "seq"
    for folder in (gt, pred):
        for t in range(3):
            save_mask(folder / f"{t:05d}.png", np.eye(4, dtype=np.uint8))
    target = tmp_path / "results"
    target.mkdir()
    before = tree(tmp_path)
    proc = cli("scripts.evaluate_jf", gt.parent, pred.parent, "--json", target, "--processes", "1")
    assert_one_line_error(proc, str(target), "is a folder")
    assert tree(tmp_path) == before and list(target.iterdir()) == [] and not (pred.parent / "global_results.csv").exists()
    precious = tmp_path / "model.pth"
    precious.write_bytes(b"weights")
    for target, needle in ((precious, "not written by this project"), (gt / "jf.json", "lies inside the input")):
        before = tree(tmp_path)
        proc = cli("scripts.evaluate_jf", gt.parent, pred.parent, "--json", target, "--processes", "1")
        assert_one_line_error(proc, str(target), needle)
        assert tree(tmp_path) == before
    proc = cli("scripts.evaluate_jf", gt.parent, pred.parent, "--processes", "0")
    assert proc.returncode == 2 and "argument --processes" in proc.stderr and "Traceback" not in proc.stderr

