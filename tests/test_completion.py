"""Complete means complete for this input: a video's completion record carries the fingerprint of what its masks
were made from (evaluation/fingerprint.py), and a rerun, the zip and J&F use only videos whose record matches.

Runs are in-process (``main(argv)``) on tiny generated videos with a random ``lite`` checkpoint.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest

import eval_davis
import eval_generic
from datasets.synthetic import write_davis2017, write_davis2017_testdev
from model.network import DEFAULT_TOP_K
from tests.helpers import assert_refused, call, tree
from util.output_safety import STATE_DIR


@pytest.fixture(scope="module")
def lite(tmp_path_factory) -> Path:
    from scripts.make_random_checkpoint import main as make_checkpoint

    path = tmp_path_factory.mktemp("lite") / "lite.pth"
    make_checkpoint(["--out", str(path), "--config", "lite", "--qam_activation", "sigmoid"])
    return path


def add_frames(folder: Path, count: int) -> None:
    """``count`` more frames at the end of a frame folder (copies of its last frame)."""
    frames = sorted(folder.glob("*.jpg"))
    for i in range(count):
        shutil.copyfile(frames[-1], folder / f"{len(frames) + i:05d}.jpg")


def record(out: Path, name: str) -> dict:
    return json.loads((out / STATE_DIR / f"{name}.json").read_text())


def test_testdev_zip_rerun_after_frames_were_added_never_zips_stale_masks(tmp_path, lite, capsys):
    name = write_davis2017_testdev(tmp_path / "DAVIS", seed=5, num_videos=1, num_frames=5, height=32, width=48, max_objects=2)[0]
    out = tmp_path / "O"
    argv = ["--davis", str(tmp_path / "DAVIS/2017"), "--split", "testdev", "--zip", "--model", str(lite), "--output", str(out),
            "--device", "cpu"]
    assert call(eval_davis.main, *argv, capsys=capsys)[0] == 0
    archive = tmp_path / "O.zip"
    assert len(zipfile.ZipFile(archive).namelist()) == 5 and record(out, name)["inputs"]["frames"]["count"] == 5
    first_zip, first_masks = archive.read_bytes(), tree(out / name)

    add_frames(tmp_path / "DAVIS/2017/test-dev/JPEGImages/480p" / name, 3)
    code, lines, stdout = call(eval_davis.main, *argv, capsys=capsys)
    assert_refused(code, lines, str(out / name), "frames 5 -> 8", "--output", "--overwrite")
    assert "skipping" not in stdout and archive.read_bytes() == first_zip and tree(out / name) == first_masks  # stopped before inference

    assert call(eval_davis.main, *argv, "--overwrite", capsys=capsys)[0] == 0
    assert sorted(zipfile.ZipFile(archive).namelist()) == [f"Annotations/{name}/{i:05d}.png" for i in range(8)]
    assert record(out, name)["inputs"]["frames"]["count"] == 8
    code, _, stdout = call(eval_davis.main, *argv, capsys=capsys)  # the same input again: skipped, zipped again
    assert code == 0 and "skipping 1 complete video" in stdout


def test_a_second_clip_with_the_same_folder_name_is_never_scored_with_the_first_clips_masks(tmp_path, lite, capsys):
    for clip, seed in (("clip", 1), ("clipC", 2)):
        write_davis2017(tmp_path / clip / "D", seed=seed, num_videos=1, num_frames=4, height=32, width=48, splits=("val",))
        src = tmp_path / clip / "D/2017/trainval"
        video = next((src / "JPEGImages/480p").iterdir()).name
        shutil.copytree(src / "JPEGImages/480p" / video, tmp_path / clip / "frames")
        (tmp_path / clip / "masks").mkdir()
        shutil.copyfile(src / "Annotations/480p" / video / "00000.png", tmp_path / clip / "masks/00000.png")
        shutil.copytree(src / "Annotations/480p" / video, tmp_path / clip / "gt")
    out = tmp_path / "O"
    common = ["--model", str(lite), "--output", str(out), "--device", "cpu"]
    assert call(eval_generic.main, "--video", str(tmp_path / "clip/frames"), "--masks", str(tmp_path / "clip/masks"), *common,
                capsys=capsys)[0] == 0
    first = tree(out / "frames")
    second = ["--video", str(tmp_path / "clipC/frames"), "--masks", str(tmp_path / "clipC/masks"), "--gt", str(tmp_path / "clipC/gt"),
              *common, "--overlay"]
    code, lines, stdout = call(eval_generic.main, *second, capsys=capsys)
    assert_refused(code, lines, str(out / "frames"), "another input", "--overwrite")
    assert "J&F" not in stdout and not (out / "frames_overlay.mp4").exists() and tree(out / "frames") == first

    code, _, stdout = call(eval_generic.main, *second, "--overwrite", capsys=capsys)
    assert code == 0 and "J&F" in stdout and (out / "frames_overlay.mp4").is_file()
    assert tree(out / "frames") != first  # clipC's own masks
    assert record(out, "frames")["inputs"]["annotations"] != {}


def test_changed_annotations_settings_or_model_stop_the_rerun_naming_the_change(tmp_path, lite, capsys):
    from scripts.make_random_checkpoint import main as make_checkpoint

    write_davis2017(tmp_path / "D", seed=4, num_videos=1, num_frames=3, height=32, width=48, splits=("val",))
    name = next((tmp_path / "D/2017/trainval/JPEGImages/480p").iterdir()).name
    frames, masks = tmp_path / "D/2017/trainval/JPEGImages/480p" / name, tmp_path / "masks"
    masks.mkdir()
    shutil.copyfile(tmp_path / "D/2017/trainval/Annotations/480p" / name / "00000.png", masks / "00000.png")
    out = tmp_path / "O"
    argv = ["--video", str(frames), "--masks", str(masks), "--output", str(out), "--device", "cpu"]
    assert call(eval_generic.main, *argv, "--model", str(lite), capsys=capsys)[0] == 0
    other = tmp_path / "other.pth"
    make_checkpoint(["--out", str(other), "--config", "lite", "--qam_activation", "sigmoid", "--seed", "9"])
    for extra, needle in ((["--model", str(other)], "another model file"),
                          (["--model", str(lite), "--mem_freq", "2"], "mem_freq 5 -> 2"),
                          (["--model", str(lite), "--no_top"], f"top_k {DEFAULT_TOP_K} -> None"),
                          (["--model", str(lite), "--official_kernels"], "official_kernels False -> True"),
                          (["--model", str(lite), "--size", "64"], "infer_size None -> 64")):
        code, lines, _ = call(eval_generic.main, *argv, *extra, capsys=capsys)
        assert_refused(code, lines, str(out / name), needle)
    shutil.copyfile(tmp_path / "D/2017/trainval/Annotations/480p" / name / "00001.png", masks / "00000.png")
    code, lines, _ = call(eval_generic.main, *argv, "--model", str(lite), capsys=capsys)
    assert_refused(code, lines, "annotation 00000.png changed")
    # threads and device are not part of it: the same input with other threads is skipped
    shutil.copyfile(tmp_path / "D/2017/trainval/Annotations/480p" / name / "00000.png", masks / "00000.png")
    code, _, stdout = call(eval_generic.main, *argv, "--model", str(lite), "--threads", "1", capsys=capsys)
    assert code == 0 and "skipping 1 complete video" in stdout


def test_a_record_without_a_fingerprint_counts_as_not_matching(tmp_path, lite, capsys):
    write_davis2017(tmp_path / "D", seed=6, num_videos=1, num_frames=3, height=32, width=48, splits=("val",))
    name = next((tmp_path / "D/2017/trainval/JPEGImages/480p").iterdir()).name
    out = tmp_path / "O"
    argv = ["--davis", str(tmp_path / "D/2017"), "--model", str(lite), "--output", str(out), "--device", "cpu"]
    assert call(eval_davis.main, *argv, capsys=capsys)[0] == 0
    path = out / STATE_DIR / f"{name}.json"
    old = {k: v for k, v in json.loads(path.read_text()).items() if k != "inputs"}  # as an earlier version wrote it
    path.write_text(json.dumps(old))
    code, lines, _ = call(eval_davis.main, *argv, capsys=capsys)
    assert_refused(code, lines, str(out / name), "earlier version")
    assert call(eval_davis.main, *argv, "--overwrite", capsys=capsys)[0] == 0
    assert "inputs" in record(out, name)


def test_shards_and_their_merge_stop_on_another_input(tmp_path, lite, capsys):
    names = write_davis2017(tmp_path / "D", seed=7, num_videos=2, num_frames=3, height=32, width=48, splits=("val",))["val"]
    out = tmp_path / "O"
    argv = ["--davis", str(tmp_path / "D/2017"), "--model", str(lite), "--output", str(out), "--device", "cpu", "--zip"]
    for shard in ("0/2", "1/2"):
        assert call(eval_davis.main, *argv, "--shard", shard, capsys=capsys)[0] == 0
    archive = tmp_path / "O.zip"
    before = archive.read_bytes()
    add_frames(tmp_path / "D/2017/trainval/JPEGImages/480p" / names[1], 2)
    shutil.copyfile(tmp_path / "D/2017/trainval/Annotations/480p" / names[1] / "00002.png",
                    tmp_path / "D/2017/trainval/Annotations/480p" / names[1] / "00003.png")
    for shard in ("0/2", "1/2", "merge"):
        code, lines, _ = call(eval_davis.main, *argv, "--shard", shard, capsys=capsys)
        assert_refused(code, lines, str(out / names[1]), "frames 3 -> 5")
    assert archive.read_bytes() == before
    for shard in ("0/2", "1/2"):
        assert call(eval_davis.main, *argv, "--shard", shard, "--overwrite", capsys=capsys)[0] == 0
    members = zipfile.ZipFile(archive).namelist()
    assert sum(m.startswith(f"Annotations/{names[1]}/") for m in members) == 5
