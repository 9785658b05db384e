"""Output safety: the user's files are never written over, deleted or scored against themselves.

Every test compares the user's files byte for byte before and after. Runs are in-process
(``main(argv)``) on a 1-video, 3-frame DAVIS set with a random ``lite`` checkpoint.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import eval_davis
import eval_generic
from tests.test_eval_cli import ROOT, davis_with_lite_checkpoint, run
from util.output_safety import LOCK_NAME, STATE_DIR


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return davis_with_lite_checkpoint(tmp_path_factory.mktemp("safety"), 4, 1, 3, 32, 48)


@pytest.fixture
def davis(base, tmp_path):
    root, ckpt = base
    shutil.copytree(root / "2017", tmp_path / "2017")
    trainval = tmp_path / "2017/trainval"
    name = (trainval / "ImageSets/2017/val.txt").read_text().split()[0]
    return trainval, name, ckpt


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def call(main, *argv: str, capsys) -> tuple[int, list[str], str]:
    """Run a script's ``main`` in-process (for refusals: they stop before the progress bar): (exit code, stderr lines, stdout)."""
    try:
        main(list(argv))
        code = 0
    except SystemExit as e:
        code = int(e.code or 0)
    out, err = capsys.readouterr()
    return code, [line for line in err.splitlines() if line.strip()], out


def davis_args(trainval: Path, ckpt: Path, out: Path, *extra: str) -> list[str]:
    return ["--model", str(ckpt), "--davis", str(trainval.parent), "--output", str(out), "--device", "cpu", *extra]


def assert_refused(code: int, lines: list[str], *needles: str) -> None:
    assert code == 2 and len(lines) == 1, lines
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_output_that_is_contains_or_lies_inside_an_input_is_refused(davis, capsys):
    trainval, name, ckpt = davis
    before = tree(trainval.parent.parent)
    annotations = trainval / "Annotations/480p"
    for out, relation in (
        (annotations, "contains"),  # the case: --output Annotations/480p replaced the ground truth
        (annotations / name, "is"),
        (trainval / "JPEGImages/480p" / name / "sub", "lies inside"),
        (ckpt.parent, "contains"),  # the checkpoint
    ):
        for extra in ((), ("--overwrite", "--evaluate")):
            code, lines, _ = call(eval_davis.main, *davis_args(trainval, ckpt, out, *extra), capsys=capsys)
            assert_refused(code, lines, f"--output {out} {relation}")
    assert tree(trainval.parent.parent) == before


def test_generic_output_holding_the_video_is_refused(davis, capsys):
    trainval, name, ckpt = davis
    frames, masks = trainval / "JPEGImages/480p" / name, trainval / "Annotations/480p" / name
    before = tree(trainval)
    code, lines, _ = call(eval_generic.main, "--video", str(frames), "--masks", str(masks), "--model", str(ckpt),
                          "--output", str(frames.parent), "--overwrite", "--device", "cpu", capsys=capsys)
    assert_refused(code, lines, str(frames.parent), str(frames))
    assert tree(trainval) == before


def test_every_entry_point_refuses_an_output_inside_its_inputs(davis, tmp_path, capsys):
    import demo
    import eval_davis_2016
    import eval_youtube
    from datasets.synthetic import write_davis2016, write_youtube

    trainval, name, ckpt = davis
    frames, masks = trainval / "JPEGImages/480p" / name, trainval / "Annotations/480p" / name
    write_youtube(tmp_path / "yv", seed=1, split="valid", num_videos=1, num_frames=3, height=32, width=48)
    write_davis2016(tmp_path / "d16", seed=1, num_videos=1, num_frames=3, height=32, width=48)
    before = tree(tmp_path)
    yv_frames = next((tmp_path / "yv/all_frames/valid_all_frames/JPEGImages").iterdir())
    d16_root = tmp_path / "d16/2016"
    common = ["--model", str(ckpt), "--device", "cpu"]
    cases = [
        (demo.main, ["--video", str(frames), "--masks", str(masks), "--output", str(frames / "out"), *common], "lies inside"),
        (eval_youtube.main, ["--yv", str(tmp_path / "yv"), "--output", str(yv_frames.parent), *common], "contains"),
        (eval_davis_2016.main, ["--davis", str(d16_root), "--output", str(d16_root), *common], "contains"),
    ]
    for main, argv, relation in cases:
        code, lines, _ = call(main, *argv, capsys=capsys)
        assert_refused(code, lines, relation)
    assert tree(tmp_path) == before


def test_name_must_be_a_plain_folder_name(davis, tmp_path, capsys):
    trainval, name, ckpt = davis
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "thesis.txt").write_text("years of work")
    frames, masks = trainval / "JPEGImages/480p" / name, trainval / "Annotations/480p" / name
    for bad in (str(victim), ".", "..", "a/b", ".hidden"):
        code, _, _ = call(eval_generic.main, "--video", str(frames), "--masks", str(masks), "--model", str(ckpt),
                          "--output", str(tmp_path / "out"), "--name", bad, "--overwrite", capsys=capsys)
        assert code == 2
    assert tree(victim) == {"thesis.txt": b"years of work"}
    assert not (tmp_path / "out").exists()


def test_a_folder_without_a_record_is_never_replaced(davis, tmp_path, capsys):
    trainval, name, ckpt = davis
    inputs = tree(trainval)
    out = tmp_path / "out"
    (out / name).mkdir(parents=True)
    (out / name / "00000.png").write_bytes(b"the user's own mask")
    (out / f".{name}.partial").mkdir()
    (out / f".{name}.partial" / "notes.txt").write_text("not ours")
    for extra in ((), ("--overwrite",)):
        code, lines, _ = call(eval_davis.main, *davis_args(trainval, ckpt, out, *extra), capsys=capsys)
        assert_refused(code, lines, str(out / name), "not written by this project")
    (out / name / "00000.png").unlink()
    (out / name).rmdir()
    code, lines, _ = call(eval_davis.main, *davis_args(trainval, ckpt, out), capsys=capsys)
    assert_refused(code, lines, f".{name}.partial", "not created by this project")
    assert {k: v for k, v in tree(out).items() if k != LOCK_NAME} == {f".{name}.partial/notes.txt": b"not ours"}
    assert not (out / name).exists() and tree(trainval) == inputs


def test_complete_means_recorded_rerun_skips_and_overwrite_redoes(davis, tmp_path, capsys):
    trainval, name, ckpt = davis
    out = tmp_path / "out"
    run("eval_davis.py", *davis_args(trainval, ckpt, out))
    record = json.loads((out / STATE_DIR / f"{name}.json").read_text())
    assert record["frames"] == 3 and record["complete"] is True and "--davis" in record["command"]
    masks = tree(out / name)
    assert sorted(masks) == ["00000.png", "00001.png", "00002.png"]  # nothing but the masks in a video folder
    assert "skipping 1 complete video" in run("eval_davis.py", *davis_args(trainval, ckpt, out)).stdout
    run("eval_davis.py", *davis_args(trainval, ckpt, out, "--overwrite"))
    assert tree(out / name) == masks
    # a published folder whose record is gone is no longer ours: refused, kept
    (out / STATE_DIR / f"{name}.json").unlink()
    code, lines, _ = call(eval_davis.main, *davis_args(trainval, ckpt, out, "--overwrite"), capsys=capsys)
    assert_refused(code, lines, str(out / name), "not written by this project")
    assert tree(out / name) == masks


def test_a_second_run_on_a_locked_output_exits_2_naming_the_holder(davis, tmp_path, capsys):
    trainval, name, ckpt = davis
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
        code, lines, _ = call(eval_davis.main, *davis_args(trainval, ckpt, out), capsys=capsys)
        assert_refused(code, lines, str(out), f"pid {holder.pid} on testhost")
        assert [str(p.relative_to(out)) for p in out.rglob("*")] == [STATE_DIR, LOCK_NAME]  # nothing else written
    finally:
        holder.kill()
        holder.wait()
    run("eval_davis.py", *davis_args(trainval, ckpt, out))
    assert (out / STATE_DIR / f"{name}.json").is_file()


def test_zip_names_keep_the_full_folder_name_and_never_replace_a_foreign_archive(davis, tmp_path, capsys):
    trainval, name, ckpt = davis
    for version in ("run.v1", "run.v2"):
        run("eval_davis.py", *davis_args(trainval, ckpt, tmp_path / version, "--zip"))
    v1, v2 = tmp_path / "run.v1.zip", tmp_path / "run.v2.zip"
    assert zipfile.ZipFile(v1).namelist() == zipfile.ZipFile(v2).namelist() == [f"Annotations/{name}/{i:05d}.png" for i in range(3)]
    assert not (tmp_path / "run.zip").exists()
    # the same command again replaces its own archive
    run("eval_davis.py", *davis_args(trainval, ckpt, tmp_path / "run.v1", "--zip"))
    # an archive not written from this folder (or not by this project) stays
    foreign = tmp_path / "run.v3.zip"
    foreign.write_bytes(b"someone's archive")
    code, lines, _ = call(eval_davis.main, *davis_args(trainval, ckpt, tmp_path / "run.v3", "--zip"), capsys=capsys)
    assert_refused(code, lines, str(foreign), "left alone")
    assert foreign.read_bytes() == b"someone's archive"
    v2.rename(foreign.with_name("moved.zip"))
    shutil.copy(foreign.with_name("moved.zip"), foreign)  # written by this project, but from run.v2
    before = foreign.read_bytes()
    code, lines, _ = call(eval_davis.main, *davis_args(trainval, ckpt, tmp_path / "run.v3", "--zip"), capsys=capsys)
    assert_refused(code, lines, str(foreign))
    assert foreign.read_bytes() == before


def test_output_dot_with_zip_is_one_archive_beside_the_folder(davis, tmp_path):
    trainval, name, ckpt = davis
    work = tmp_path / "work"
    work.mkdir()
    before = tree(trainval)
    proc = subprocess.run([sys.executable, str(ROOT / "eval_davis.py"), *davis_args(trainval, ckpt, Path("."), "--zip")],
                          cwd=work, capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
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


def test_overlays_and_csvs_never_replace_the_users_files(davis, tmp_path, capsys):
    trainval, name, ckpt = davis
    frames, masks = trainval / "JPEGImages/480p" / name, trainval / "Annotations/480p" / name
    out = tmp_path / "out"
    out.mkdir()
    (out / f"{name}_overlay.mp4").write_bytes(b"the user's video")
    (out / "global_results.csv").write_text("the user's scores")
    before = tree(out)
    generic = ["--video", str(frames), "--masks", str(masks), "--model", str(ckpt), "--output", str(out), "--device", "cpu"]
    code, lines, _ = call(eval_generic.main, *generic, "--overlay", capsys=capsys)
    assert_refused(code, lines, str(out / f"{name}_overlay.mp4"), "not written by this project")
    code, lines, _ = call(eval_davis.main, *davis_args(trainval, ckpt, out, "--evaluate"), capsys=capsys)
    assert_refused(code, lines, str(out / "global_results.csv"))
    assert tree(out) == before
    # files this project wrote are replaced on the next run
    again = tmp_path / "again"
    for _ in range(2):
        run("eval_generic.py", *generic[:6], "--output", str(again), "--device", "cpu", "--overlay")
    assert (again / f"{name}_overlay.mp4").stat().st_size > 0
