"""train.py: Ctrl-C saves like SIGTERM, checkpoint write errors keep the previous checkpoint, bad flags are usage errors.

Tiny generated data (conftest.py's ``train_data``) and the ``lite`` model, as in ``tests/test_training.py``. Ctrl-C
goes to a real process; the rest calls ``train.main(argv)`` in-process.
"""

from __future__ import annotations

import errno
import os
import signal

import pytest
import torch

import model.checkpoint
import train
from datasets.synthetic import write_davis2017
from model.checkpoint import atomic_save, safe_load
from tests.helpers import COMMON, saved, signal_run, train_error, train_here, tree
from util.errors import EXIT_INTERRUPTED, UserError
from util.write_gate import RECORD_NAME


def test_ctrl_c_saves_a_checkpoint_and_exits_zero(train_data, tmp_path):
    args = ["--stage", "1", "--bl_root", str(train_data["bl"]), "-i", "100000", "--id", "ctrlc", *COMMON]
    returncode, output = signal_run(tmp_path, args, "It      1 ", signal.SIGINT)
    assert returncode == 0, output[-2000:]
    assert "Ctrl-C: saving a checkpoint" in output and "SIGINT: stopped at iteration" in output
    assert safe_load(saved(tmp_path, "*_checkpoint.pth"))["it"] >= 1


def test_a_second_ctrl_c_aborts_at_once():
    previous = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    try:
        stop = train.StopFlag()
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.requested and stop.signal_name == "SIGINT"
        with pytest.raises(SystemExit) as exc:
            os.kill(os.getpid(), signal.SIGINT)
        assert exc.value.code == EXIT_INTERRUPTED
    finally:
        signal.signal(signal.SIGINT, previous[0])
        signal.signal(signal.SIGTERM, previous[1])


@pytest.mark.parametrize("error", [OSError(errno.ENOSPC, "No space left on device"), PermissionError(errno.EACCES, "Permission denied")])
def test_checkpoint_write_error_is_one_line_and_keeps_the_previous_file(tmp_path, monkeypatch, error):
    path = tmp_path / "run_checkpoint.pth"
    atomic_save({"it": 1, "network": {"w": torch.ones(3)}}, path)
    before = path.read_bytes()

    def failing(obj, f, *args, **kwargs):
        f.write(b"partial bytes")
        raise error

    monkeypatch.setattr(model.checkpoint.torch, "save", failing)
    with pytest.raises(UserError, match=error.strerror) as exc:
        atomic_save({"it": 2}, path)
    assert str(path) in str(exc.value) and "\n" not in str(exc.value)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [RECORD_NAME, "run_checkpoint.pth"]  # no temporary file left


def test_full_disk_while_training_keeps_the_last_checkpoint(train_data, tmp_path, monkeypatch):
    real, saves = torch.save, []

    def full_after_first(obj, f, *args, **kwargs):
        saves.append(f)
        if len(saves) > 2:  # weights and checkpoint of iteration 1 are written; then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")
        real(obj, f, *args, **kwargs)

    monkeypatch.setattr(model.checkpoint.torch, "save", full_after_first)
    args = ["--stage", "0", "--static_root", str(train_data["static"]), "-i", "2", "--save_every", "1", "--id", "full", *COMMON]
    proc = train_here(tmp_path, *args, code=None)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1, proc.stderr[-2000:]
    assert "No space left on device" in errors[0] and "_2.pth" in errors[0] and "no file was created" in errors[0]
    assert safe_load(saved(tmp_path, "*_checkpoint.pth"))["it"] == 1


def test_numeric_training_flags_are_usage_errors(capsys):
    for flag, value in (("--lr", "nan"), ("--lr", "0"), ("--gamma", "inf"), ("-b", "0"), ("-i", "-1"), ("--steps", "-5"),
                        ("--num_workers", "-1"), ("--save_every", "0"), ("--stop_at", "0"), ("--seed", "-1"), ("--id", "../elsewhere")):
        with pytest.raises(SystemExit) as exc:
            train.main(["--stage", "0", flag, value])
        err = capsys.readouterr().err
        assert exc.value.code == 2 and f"argument {flag}" in err and "Traceback" not in err, err


def test_data_root_whose_videos_are_too_short_says_three_frames_are_needed(tmp_path):
    write_davis2017(tmp_path / "DAVIS", seed=1, num_videos=2, num_frames=2, height=32, width=48, splits=("train",))
    frames_before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    err = train_error("--stage", "2", "--davis_root", str(tmp_path / "DAVIS"), "--yv_root", str(tmp_path / "none"), "--no_subset",
                      "--device", "cpu", *COMMON)
    assert "2 video(s) have fewer than the 3 frames" in err
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == frames_before


def test_unavailable_training_device_is_one_line():
    for device in ("mps", "xpu", "cuda:7", "meta"):
        err = train_error("--stage", "0", "--device", device)
        assert f"--device {device}" in err or "cuda:7" in err, err


def test_resuming_non_finite_weights_is_refused_naming_the_tensor(tmp_path):
    path = tmp_path / "run_checkpoint.pth"
    network = {"conv.weight": torch.ones(2), "head.bias": torch.tensor([0.0, float("nan")])}
    torch.save({"it": 5, "network": network, "optimizer": {}, "scheduler": {}}, path)
    before = path.read_bytes()
    err = train_error("--stage", "0", "--load_model", str(path), "--device", "cpu")
    assert str(path) in err and "head.bias" in err and "NaN or infinite" in err
    assert path.read_bytes() == before


def test_two_runs_never_share_a_save_folder(train_data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(train, "run_id", lambda args: "Dec02_10.00.00_same")  # two starts in the same second
    (tmp_path / "saves" / "Dec02_10.00.00_same").mkdir(parents=True)
    (tmp_path / "saves" / "Dec02_10.00.00_same" / "Dec02_10.00.00_same_checkpoint.pth").write_bytes(b"the first run's")
    before = tree(tmp_path / "saves")
    err = train_error("--stage", "0", "--static_root", str(train_data["static"]), "-i", "1", "--id", "same", *COMMON)
    assert "saves/Dec02_10.00.00_same: already exists" in err and "--id" in err
    assert tree(tmp_path / "saves") == before
