"""Interrupted evaluations: complete videos are kept, partial ones never look complete.

The SIGKILL test kills a real process; the rest, and the runs before and after the kill, call ``eval_davis.main(argv)`` in-process.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import ROOT, assert_one_line_error, tree


@pytest.fixture(scope="module")
def six_videos(tmp_path_factory) -> Path:
    """A DAVIS root with 6 val videos of 6 frames (48x64): enough for a kill to land between two videos."""
    from datasets.synthetic import write_davis2017

    root = tmp_path_factory.mktemp("resume")
    write_davis2017(root, seed=5, num_videos=6, num_frames=6, height=48, width=64, max_objects=2, splits=("val",))
    return root


def eval_args(root: Path, ckpt: Path, out: Path) -> list[str]:
    return ["--model", str(ckpt), "--davis", str(root / "2017"), "--output", str(out), "--device", "cpu"]


def test_sigkill_then_rerun_gives_the_uninterrupted_result(six_videos, lite_checkpoint, tmp_path, cli):
    root, ckpt = six_videos, lite_checkpoint
    reference = tmp_path / "reference"
    cli("eval_davis", *eval_args(root, ckpt, reference), check=True)
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "eval_davis.py", *eval_args(root, ckpt, out)], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
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
    rerun = cli("eval_davis", *eval_args(root, ckpt, out), check=True)
    assert "skipping" in rerun.stdout
    assert tree(out, bookkeeping=False) == tree(reference, bookkeeping=False)


def test_overwrite_redoes_complete_videos(davis, lite_checkpoint, tmp_path, cli):
    root, ckpt = davis, lite_checkpoint
    out = tmp_path / "out"
    cli("eval_davis", *eval_args(root, ckpt, out), check=True)
    name = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))[0]
    (out / name / "00003.png").write_bytes(b"stale")
    assert "skipping" in cli("eval_davis", *eval_args(root, ckpt, out), check=True).stdout
    assert (out / name / "00003.png").read_bytes() == b"stale"
    cli("eval_davis", *eval_args(root, ckpt, out), "--overwrite", check=True)
    assert (out / name / "00003.png").read_bytes().startswith(b"\x89PNG")


def test_unwritable_output(davis, lite_checkpoint, tmp_path, cli):
    root, ckpt = davis, lite_checkpoint
    blocker = tmp_path / "file"
    blocker.write_text("x")
    proc = cli("eval_davis", *eval_args(root, ckpt, blocker / "out"))
    assert_one_line_error(proc, str(blocker / "out"), "cannot be written")
