"""Output safety: the user's files are never written over, deleted or scored against themselves.

Every test compares the user's files byte for byte before and after. Runs are in-process
(``main(argv)``, the ``cli`` fixture) on a copy of the shared DAVIS layout with the random ``lite`` checkpoint; one
runs as a real process (``--output .`` from another working folder).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.helpers import DAVIS_FRAMES, assert_one_line_error, tree
from util.output_safety import LOCK_NAME, STATE_DIR


@pytest.fixture
def davis_copy(davis, lite_checkpoint, tmp_path):
    """A copy of the shared DAVIS 2017 layout, its first video's name and the lite checkpoint."""
    shutil.copytree(davis / "2017", tmp_path / "2017")
    trainval = tmp_path / "2017/trainval"
    return trainval, val_names(trainval)[0], lite_checkpoint


def val_names(trainval: Path) -> list[str]:
    return (trainval / "ImageSets/2017/val.txt").read_text().split()


def davis_args(trainval: Path, ckpt: Path, out: Path, *extra: str) -> list[str]:
    return ["--model", str(ckpt), "--davis", str(trainval.parent), "--output", str(out), "--device", "cpu", *extra]


def test_output_that_is_contains_or_lies_inside_an_input_is_refused(davis_copy, cli):
    trainval, name, ckpt = davis_copy
    before = tree(trainval.parent.parent)
    annotations = trainval / "Annotations/480p"
    for out, relation in (
        (annotations, "contains"),  # the case: --output Annotations/480p replaced the ground truth
        (annotations / name, "is"),
        (trainval / "JPEGImages/480p" / name / "sub", "lies inside"),
        (ckpt.parent, "contains"),  # the checkpoint
    ):
        for extra in ((), ("--overwrite", "--evaluate")):
            result = cli("eval_davis", *davis_args(trainval, ckpt, out, *extra))
            assert_one_line_error(result, f"--output {out} {relation}")
    assert tree(trainval.parent.parent) == before


def test_generic_output_holding_the_video_is_refused(davis_copy, cli):
    trainval, name, ckpt = davis_copy
    frames, masks = trainval / "JPEGImages/480p" / name, trainval / "Annotations/480p" / name
    before = tree(trainval)
    result = cli("eval_generic", "--video", str(frames), "--masks", str(masks), "--model", str(ckpt),
                          "--output", str(frames.parent), "--overwrite", "--device", "cpu")
    assert_one_line_error(result, str(frames.parent), str(frames))
    assert tree(trainval) == before


def test_every_entry_point_refuses_an_output_inside_its_inputs(davis_copy, davis, youtube, cli):
    trainval, name, ckpt = davis_copy
    frames, masks = trainval / "JPEGImages/480p" / name, trainval / "Annotations/480p" / name
    before = tree(trainval), tree(youtube), tree(davis)
    yv_frames = next((youtube / "all_frames/valid_all_frames/JPEGImages").iterdir())
    d16_root = davis / "2016"
    common = ["--model", str(ckpt), "--device", "cpu"]
    cases = [
        ("demo", ["--video", str(frames), "--masks", str(masks), "--output", str(frames / "out"), *common], "lies inside"),
        ("eval_youtube", ["--yv", str(youtube), "--output", str(yv_frames.parent), *common], "contains"),
        ("eval_davis_2016", ["--davis", str(d16_root), "--output", str(d16_root), *common], "contains"),
    ]
    for entry, argv, relation in cases:
        result = cli(entry, *argv)
        assert_one_line_error(result, relation)
    assert (tree(trainval), tree(youtube), tree(davis)) == before


def test_name_must_be_a_plain_folder_name(davis_copy, tmp_path, cli):
    trainval, name, ckpt = davis_copy
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "thesis.txt").write_text("years of work")
    frames, masks = trainval / "JPEGImages/480p" / name, trainval / "Annotations/480p" / name
    for bad in (str(victim), ".", "..", "a/b", ".hidden"):
        result = cli("eval_generic", "--video", str(frames), "--masks", str(masks), "--model", str(ckpt),
                          "--output", str(tmp_path / "out"), "--name", bad, "--overwrite")
        assert result.returncode == 2
    assert tree(victim) == {"thesis.txt": b"years of work"}
    assert not (tmp_path / "out").exists()


def test_a_folder_without_a_record_is_never_replaced(davis_copy, tmp_path, cli):
    trainval, name, ckpt = davis_copy
    inputs = tree(trainval)
    out = tmp_path / "out"
    (out / name).mkdir(parents=True)
    (out / name / "00000.png").write_bytes(b"the user's own mask")
    (out / f".{name}.partial").mkdir()
    (out / f".{name}.partial" / "notes.txt").write_text("not ours")
    for extra in ((), ("--overwrite",)):
        result = cli("eval_davis", *davis_args(trainval, ckpt, out, *extra))
        assert_one_line_error(result, str(out / name), "not written by this project")
    (out / name / "00000.png").unlink()
    (out / name).rmdir()
    result = cli("eval_davis", *davis_args(trainval, ckpt, out))
    assert_one_line_error(result, f".{name}.partial", "not created by this project")
    assert {k: v for k, v in tree(out).items() if k != LOCK_NAME} == {f".{name}.partial/notes.txt": b"not ours"}
    assert not (out / name).exists() and tree(trainval) == inputs


def test_complete_means_recorded_rerun_skips_and_overwrite_redoes(davis_copy, tmp_path, cli):
    trainval, name, ckpt = davis_copy
    out = tmp_path / "out"
    cli("eval_davis", *davis_args(trainval, ckpt, out), check=True)
    record = json.loads((out / STATE_DIR / f"{name}.json").read_text())
    assert record["frames"] == DAVIS_FRAMES and record["complete"] is True and "--davis" in record["command"]
    masks = tree(out / name)
    assert sorted(masks) == [f"{t:05d}.png" for t in range(DAVIS_FRAMES)]  # nothing but the masks in a video folder
    videos = len(val_names(trainval))
    assert f"skipping {videos} complete video" in cli("eval_davis", *davis_args(trainval, ckpt, out), check=True).stdout
    cli("eval_davis", *davis_args(trainval, ckpt, out, "--overwrite"), check=True)
    assert tree(out / name) == masks
    # a published folder whose record is gone is no longer ours: refused, kept
    (out / STATE_DIR / f"{name}.json").unlink()
    result = cli("eval_davis", *davis_args(trainval, ckpt, out, "--overwrite"))
    assert_one_line_error(result, str(out / name), "not written by this project")
    assert tree(out / name) == masks


def test_a_second_run_on_a_locked_output_exits_2_naming_the_holder(davis_copy, tmp_path, cli):
    trainval, name, ckpt = davis_copy
    out = tmp_path / "out"
    (out / STATE_DIR).mkdir(parents=True)
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import fcntl, os, sys, time; f = open(sys.argv[1], 'a+'); fcntl.flock(f, fcntl.LOCK_EX); "
         "f.write(f'pid {os.getpid()} on testhost'); f.flush(); print('held', flush=True); time.sleep(60)",
         str(out / LOCK_NAME)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        result = cli("eval_davis", *davis_args(trainval, ckpt, out))
        assert_one_line_error(result, str(out), f"pid {holder.pid} on testhost")
        assert [str(p.relative_to(out)) for p in out.rglob("*")] == [STATE_DIR, LOCK_NAME]  # nothing else written
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    cli("eval_davis", *davis_args(trainval, ckpt, out), check=True)
    assert (out / STATE_DIR / f"{name}.json").is_file()


def test_zip_names_keep_the_full_folder_name_and_never_replace_a_foreign_archive(davis_copy, tmp_path, cli):
    trainval, name, ckpt = davis_copy
    for version in ("run.v1", "run.v2"):
        cli("eval_davis", *davis_args(trainval, ckpt, tmp_path / version, "--zip"), check=True)
    v1, v2 = tmp_path / "run.v1.zip", tmp_path / "run.v2.zip"
    members = [f"Annotations/{video}/{t:05d}.png" for video in val_names(trainval) for t in range(DAVIS_FRAMES)]
    assert zipfile.ZipFile(v1).namelist() == zipfile.ZipFile(v2).namelist() == members
    assert not (tmp_path / "run.zip").exists()
    # the same command again replaces its own archive
    cli("eval_davis", *davis_args(trainval, ckpt, tmp_path / "run.v1", "--zip"), check=True)
    # an archive not written from this folder (or not by this project) stays
    foreign = tmp_path / "run.v3.zip"
    foreign.write_bytes(b"someone's archive")
    result = cli("eval_davis", *davis_args(trainval, ckpt, tmp_path / "run.v3", "--zip"))
    assert_one_line_error(result, str(foreign), "left alone")
    assert foreign.read_bytes() == b"someone's archive"
    v2.rename(foreign.with_name("moved.zip"))
    shutil.copy(foreign.with_name("moved.zip"), foreign)  # written by this project, but from run.v2
    before = foreign.read_bytes()
    result = cli("eval_davis", *davis_args(trainval, ckpt, tmp_path / "run.v3", "--zip"))
    assert_one_line_error(result, str(foreign))
    assert foreign.read_bytes() == before


def test_output_dot_with_zip_is_one_archive_beside_the_folder(davis_copy, tmp_path, cli):
    trainval, name, ckpt = davis_copy
    work = tmp_path / "work"
    work.mkdir()
    before = tree(trainval)
    result = cli("eval_davis", *davis_args(trainval, ckpt, Path("."), "--zip"), cwd=work)
    assert result.returncode == 0, result.stderr
    assert zipfile.ZipFile(tmp_path / "work.zip").namelist()[0] == f"Annotations/{name}/00000.png"
    assert tree(trainval) == before


def test_demo_sample_folder_with_foreign_files_is_not_deleted(tmp_path):
    import demo
    from util.errors import UserError

    root = tmp_path / "demo_sample"
    (root / "frames").mkdir(parents=True)
    (root / "my_notes.txt").write_text("mine")
    before = tree(root)
    with pytest.raises(UserError, match="my_notes.txt"):
        demo.ensure_sample(root)
    assert tree(root) == before


def test_overlays_and_csvs_never_replace_the_users_files(davis_copy, tmp_path, cli):
    trainval, name, ckpt = davis_copy
    frames, masks = trainval / "JPEGImages/480p" / name, trainval / "Annotations/480p" / name
    out = tmp_path / "out"
    out.mkdir()
    (out / f"{name}_overlay.mp4").write_bytes(b"the user's video")
    (out / "global_results.csv").write_text("the user's scores")
    before = tree(out)
    generic = ["--video", str(frames), "--masks", str(masks), "--model", str(ckpt), "--output", str(out), "--device", "cpu"]
    result = cli("eval_generic", *generic, "--overlay")
    assert_one_line_error(result, str(out / f"{name}_overlay.mp4"), "not written by this project")
    result = cli("eval_davis", *davis_args(trainval, ckpt, out, "--evaluate"))
    assert_one_line_error(result, str(out / "global_results.csv"))
    assert tree(out) == before
    # files this project wrote are replaced on the next run
    again = tmp_path / "again"
    for _ in range(2):
        cli("eval_generic", *generic[:6], "--output", again, "--device", "cpu", "--overlay", check=True)
    assert (again / f"{name}_overlay.mp4").stat().st_size > 0
