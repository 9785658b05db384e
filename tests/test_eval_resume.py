"""Interrupted evaluations: complete videos are kept, partial ones never look complete."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.test_eval_cli import ROOT, assert_one_line_error, davis_with_lite_checkpoint, run


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    return davis_with_lite_checkpoint(tmp_path_factory.mktemp("resume"), 5, 6, 6, 48, 64)


def tree(folder: Path) -> dict[str, bytes]:
    """Every file's bytes, without the run's bookkeeping in .qdmn/ (lock, completion records: they name the command)."""
    files = (p.relative_to(folder) for p in sorted(folder.rglob("*")) if p.is_file())
    return {str(p): (folder / p).read_bytes() for p in files if p.parts[0] != ".qdmn"}


def eval_args(root: Path, ckpt: Path, out: Path) -> list[str]:
    return ["eval_davis.py", "--model", str(ckpt), "--davis", str(root / "2017"), "--output", str(out), "--device", "cpu"]


def test_sigkill_then_rerun_gives_the_uninterrupted_result(setup, tmp_path):
    root, ckpt = setup
    reference = tmp_path / "reference"
    run(*eval_args(root, ckpt, reference))
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, *eval_args(root, ckpt, out)], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        complete = [p for p in out.glob("*") if p.is_dir() and not p.name.startswith(".")] if out.exists() else []
        if complete and list(out.glob(".*.partial/*.png")):
            break
        time.sleep(0.05)
    assert proc.poll() is None, "evaluation ended before it could be killed halfway"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    visible = {p.name for p in out.iterdir() if not p.name.startswith(".")}
    assert visible and len(visible) < 6
    for name in visible:  # every visible folder is complete
        assert len(list((out / name).glob("*.png"))) == 6
    rerun = run(*eval_args(root, ckpt, out))
    assert "skipping" in rerun.stdout
    assert tree(out) == tree(reference)


def test_overwrite_redoes_complete_videos(setup, tmp_path):
    root, ckpt = setup
    out = tmp_path / "out"
    run(*eval_args(root, ckpt, out))
    name = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))[0]
    (out / name / "00003.png").write_bytes(b"stale")
    assert "skipping" in run(*eval_args(root, ckpt, out)).stdout
    assert (out / name / "00003.png").read_bytes() == b"stale"
    run(*eval_args(root, ckpt, out), "--overwrite")
    assert (out / name / "00003.png").read_bytes().startswith(b"\x89PNG")


def test_unwritable_output(setup, tmp_path):
    root, ckpt = setup
    blocker = tmp_path / "file"
    blocker.write_text("x")
    proc = run(*eval_args(root, ckpt, blocker / "out"), check=False)
    assert_one_line_error(proc, str(blocker / "out"), "cannot be written")
