"""YouTube-VOS and generic-video evaluation, on generated data (conftest.py's ``youtube`` layout, the lite checkpoint).

eval_youtube.py and eval_generic.py each run once as a real process (their smoke runs); the rest in-process.
"""

import zipfile
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image

from datasets.synthetic import VideoSpec, render_video
from datasets.video_source import VideoSource
from engine.core import InferenceCore
from model.memory_policy import MemoryConfig
from model.network import random_network
from tests.helpers import assert_one_line_error, run, save_frames, save_mask


def test_eval_youtube(lite_checkpoint, youtube, tmp_path):
    out = tmp_path / "yv_out"
    run("eval_youtube.py", "--model", str(lite_checkpoint), "--yv", str(youtube), "--output", str(out), "--size", "64", "--zip")
    for video in sorted((youtube / "all_frames/valid_all_frames/JPEGImages").iterdir()):
        annotations = sorted((youtube / "valid/Annotations" / video.name).glob("*.png"))
        first = annotations[0].stem
        frame_stems = [p.stem for p in sorted(video.glob("*.jpg"))]
        expected = [s + ".png" for s in frame_stems if s >= first]
        assert sorted(p.name for p in (out / video.name).iterdir()) == expected
        ids = set()
        for a in annotations:
            ids |= set(np.unique(np.array(Image.open(a))).tolist())
        for path in (out / video.name).iterdir():
            img = Image.open(path)
            assert img.mode == "P" and img.size == (80, 48)
            assert set(np.unique(np.array(img)).tolist()) <= ids
        # the annotated objects come back on their annotated frames, with original ids
        for a in annotations:
            gt = np.array(Image.open(a))
            pred = np.array(Image.open(out / video.name / a.name))
            for obj in set(np.unique(gt).tolist()) - {0}:
                assert ((pred == obj) == (gt == obj)).mean() > 0.99
    late = out / "late"
    assert sorted(p.name for p in late.iterdir())[0] == "00005.png"
    with zipfile.ZipFile(out.with_suffix(".zip")) as archive:
        names = archive.namelist()
    assert "Annotations/late/00005.png" in names and "Annotations/late/00006.png" not in names
    assert all(n.startswith("Annotations/") and n.count("/") == 2 for n in names)
    assert len([n for n in names if "/late/" in n]) == 3  # sparse frames 5, 10, 15


def test_youtube_resize_follows_torchvision():
    video = VideoSource("v", frames=None, annotation_files={}, infer_size=480)  # type: ignore[arg-type]
    assert video.inference_size((720, 1280)) == (480, 853)
    assert video.inference_size((1280, 720)) == (853, 480)
    assert video.inference_size((480, 910)) == (480, 910)
    assert VideoSource("v", frames=None, annotation_files={}).inference_size((33, 50)) == (33, 50)  # type: ignore[arg-type]


def test_generic_default_size_never_upscales_and_caps_at_480():
    video = VideoSource("v", frames=None, annotation_files={}, max_short_side=480)  # type: ignore[arg-type]
    assert video.inference_size((240, 432)) == (240, 432)  # the demonstration model's own frames stay native
    assert video.inference_size((48, 64)) == (48, 64)
    assert video.inference_size((1080, 1920)) == (480, 853)
    assert video.inference_size((1920, 1080)) == (853, 480)
    exact = VideoSource("v", frames=None, annotation_files={}, infer_size=480, max_short_side=480)  # type: ignore[arg-type]
    assert exact.inference_size((240, 432)) == (480, 864)  # an explicit --size may upscale, as the official code


def test_late_object_with_evictions_keeps_memory_bounded(youtube):
    """Second object at frame 10, at least 3 evictions, annotated frames never evicted."""
    torch.manual_seed(0)
    network = random_network("lite", seed=5, qam_activation="sigmoid").eval()
    config = MemoryConfig(mem_freq=1, threshold=-1.0, capacity=3)
    from datasets.yv_test_dataset import youtube_videos

    video = next(v for v in youtube_videos(youtube, size=-1) if v.name == "late")
    core = InferenceCore(network, config)
    seen_permanent = set()
    for item in video.items():
        if item.index < video.first_annotated:
            continue
        ann = item.annotation
        prob = core.step(item.image, ann.masks, ann.object_ids, frame=item.index) if ann else core.step(item.image, frame=item.index)
        assert prob.shape[0] == core.num_objects + 1
        assert len(core.policy.entries) <= config.max_entries
        seen_permanent |= set(core.policy.permanent)
        assert seen_permanent <= set(core.store)  # annotated frames are never evicted
    evicted = [d.evicted for _, d in core.decisions if d.evicted is not None]
    assert len(evicted) >= 3 and not set(evicted) & {5, 10}
    assert core.object_ids == [3, 6] and core.policy.permanent == [5, 10]


def make_generic_video(tmp_path: Path) -> tuple[list[np.ndarray], list[np.ndarray]]:
    return render_video(np.random.default_rng(3), VideoSpec(8, 48, 64, 2, appear_at=[0, 3]))


def test_eval_generic_folder_with_overlay(lite_checkpoint, tmp_path):
    frames, masks = make_generic_video(tmp_path)
    save_frames(tmp_path / "frames", frames, ext=".png")
    save_mask(tmp_path / "masks/00000.png", np.where(masks[0] == 1, 1, 0).astype(np.uint8))
    save_mask(tmp_path / "masks/00003.png", np.where(masks[3] == 2, 2, 0).astype(np.uint8))
    out = tmp_path / "out"
    run("eval_generic.py", "--model", str(lite_checkpoint), "--video", str(tmp_path / "frames"), "--masks", str(tmp_path / "masks"),
        "--output", str(out), "--size", "-1", "--overlay")
    outputs = sorted((out / "frames").iterdir())
    assert [p.name for p in outputs] == [f"{t:05d}.png" for t in range(8)]
    assert all(Image.open(p).mode == "P" and Image.open(p).size == (64, 48) for p in outputs)
    capture = cv2.VideoCapture(str(out / "frames_overlay.mp4"))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 8
    ok, first = capture.read()
    assert ok and first.shape == (48, 64, 3)
    gif = Image.open(out / "frames_preview.gif")
    assert gif.n_frames == 8


def test_eval_generic_mp4(lite_checkpoint, tmp_path, cli):
    frames, masks = make_generic_video(tmp_path)
    writer = cv2.VideoWriter(str(tmp_path / "clip.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10, (64, 48))
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    save_mask(tmp_path / "masks/00000.png", masks[0])
    out = tmp_path / "out"
    cli("eval_generic", "--model", lite_checkpoint, "--video", tmp_path / "clip.mp4", "--masks", tmp_path / "masks", "--output", out,
        "--size", "32", check=True)
    outputs = sorted((out / "clip").iterdir())
    assert [p.name for p in outputs] == [f"{t:05d}.png" for t in range(8)]
    assert Image.open(outputs[-1]).size == (64, 48)


def test_eval_generic_undecodable_video(lite_checkpoint, tmp_path, cli):
    (tmp_path / "bad.mp4").write_bytes(b"not a video at all")
    save_mask(tmp_path / "masks/00000.png", np.zeros((4, 4), np.uint8))
    proc = cli("eval_generic", "--model", lite_checkpoint, "--video", tmp_path / "bad.mp4", "--masks", tmp_path / "masks",
               "--output", tmp_path / "o")
    assert_one_line_error(proc, "bad.mp4", "cannot decode")


def test_eval_youtube_missing_all_frames(lite_checkpoint, youtube, tmp_path, cli):
    proc = cli("eval_youtube", "--model", lite_checkpoint, "--yv", youtube, "--split", "test", "--output", tmp_path / "o")
    assert_one_line_error(proc, "all_frames", "--sparse")
