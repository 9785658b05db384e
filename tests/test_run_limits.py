"""Runs that cannot fit are refused before they start, and the weak cases answer in one line:
training memory (``--size``), a full disk during training's save, ``--threads`` above the CPUs,
two first runs of the demo at once. In-process through ``main(argv)`` unless the process is the point.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import demo
import train
from datasets.synthetic import write_davis2017, write_static
from model.checkpoint import safe_load
from model.config import PRESETS
from tests.helpers import progress_on_this_stdout, tree
from training.memory_budget import largest_fitting_size, step_bytes

ROOT = Path(__file__).resolve().parent.parent
TINY = ["--model_config", "lite", "--num_workers", "0", "--debug", "--device", "cpu"]


@pytest.fixture(scope="module")
def frames(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("limits")
    write_davis2017(root / "DAVIS", seed=0, num_videos=2, num_frames=4, height=96, width=128, max_objects=2, splits=("train",))
    write_static(root / "static", seed=0, num_images=2, height=64, width=80, num_classes=2)
    return {"davis": root / "DAVIS", "static": root / "static"}


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))  # no ImageNet weights
    return tmp_path


def train_main(capsys, *argv: str) -> tuple[int, list[str], str]:
    try:
        with progress_on_this_stdout():
            train.main(list(argv))
        code = 0
    except SystemExit as e:
        code = int(e.code or 0)
    finally:
        torch.set_flush_denormal(False)  # train() sets it for the process
    out, err = capsys.readouterr()
    return code, [line for line in err.splitlines() if line.strip()], out


def test_size_4096_on_96x128_frames_is_refused_before_training(frames, workdir, capsys):
    code, lines, out = train_main(capsys, "--stage", "2", "--davis_root", str(frames["davis"]), "--yv_root", str(workdir / "none"),
                                  "--no_subset", "--size", "4096", "-i", "1", "--id", "big", *TINY)
    assert code == 2 and len(lines) == 1, lines
    line = lines[0]
    assert line.startswith("error: --size 4096") and "128x96 frames" in line and "GiB" in line and "use --size" in line, line
    assert not (workdir / "saves").exists() and "I am rank" not in out  # nothing started, no empty save folder


def test_the_estimate_follows_the_measurements_and_the_advice_fits():
    lite, official = PRESETS["lite"], PRESETS["official"]
    # measured peak RSS (MiB), float32, one thread: scripts/benchmark_train, see training/memory_budget.py
    measurements = ((lite, 1, 128, 1066), (lite, 2, 128, 1145), (lite, 1, 384, 1798), (lite, 2, 384, 2618), (lite, 8, 384, 7037),
                    (official, 1, 128, 3213), (official, 2, 128, 3559), (official, 2, 384, 8200))
    for config, batch, size, measured in measurements:
        estimate = step_bytes(config, batch, size, size) / 2**20
        assert 0.8 * measured <= estimate <= 1.25 * measured, (config.backbone, batch, size, estimate, measured)
    budget = 4 * 2**30
    size = largest_fitting_size(lite, 8, 1.0, budget)
    assert size % 16 == 0 and step_bytes(lite, 8, size, size) <= budget < step_bytes(lite, 8, size + 16, size + 16)


def test_a_run_that_fails_before_saving_leaves_no_save_folder(frames, workdir, capsys, monkeypatch):
    def nothing_to_train(*args, **kwargs):
        from util.errors import UserError

        raise UserError("stopped for the test")

    monkeypatch.setattr(train, "train_from", nothing_to_train)
    code, lines, _ = train_main(capsys, "--stage", "0", "--static_root", str(frames["static"]), "--size", "64", "-b", "2", "-i", "1",
                                "--id", "empty", *TINY)
    assert code == 2 and lines == ["error: stopped for the test"]
    assert not list((workdir / "saves").iterdir())


def test_a_full_disk_during_trainings_save_is_one_line_and_keeps_the_last_checkpoint(frames, workdir, capsys, monkeypatch):
    real, calls = torch.save, []

    def full_at_the_second_save(obj, f, *args, **kwargs):
        calls.append(f)
        if len(calls) > 2:  # iteration 1's weights and checkpoint are written; then the disk is full
            real(obj, f)  # a partial file...
            raise RuntimeError("[enforce fail at inline_container.cc:672] . PytorchStreamWriter failed writing file data/9: "
                               "file write failed")
        real(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", full_at_the_second_save)
    code, lines, _ = train_main(capsys, "--stage", "0", "--static_root", str(frames["static"]), "--size", "64", "-b", "2", "-i", "2",
                                "--save_every", "1", "--id", "full", *TINY)
    monkeypatch.undo()
    errors = [line for line in lines if line.startswith("error:")]
    assert code == 2 and len(errors) == 1, lines
    assert "_2.pth: cannot write" in errors[0] and "disk is probably full" in errors[0] and "free disk space" in errors[0]
    checkpoint = next((workdir / "saves").glob("*/*_checkpoint.pth"))
    assert safe_load(checkpoint)["it"] == 1
    assert not [p for p in checkpoint.parent.iterdir() if ".tmp" in p.name]


def test_threads_above_the_cpus_warn_once_in_training(frames, workdir, capsys, monkeypatch):
    import util.hardware

    monkeypatch.setattr(util.hardware, "available_cpus", lambda: 1)
    code, lines, _ = train_main(capsys, "--stage", "0", "--static_root", str(frames["static"]), "--size", "64", "-b", "2", "-i", "1",
                                "--threads", "2", "--id", "threads", *TINY)
    warnings = [line for line in lines if "--threads" in line]
    assert code == 0 and len(warnings) == 1 and warnings[0].startswith("warning: --threads 2 is more than the 1 CPU(s)"), lines


SAMPLE = "import sys, demo; from pathlib import Path; demo.ensure_sample(Path(sys.argv[1])); print('ok')"


def test_two_first_demo_runs_at_once_share_one_whole_sample(tmp_path):
    root = tmp_path / "data" / "demo_sample"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, "-c", SAMPLE, str(root)], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs) and all(out.strip() == "ok" for out, _ in results), results
    reference = tmp_path / "reference"
    demo.ensure_sample(reference)
    assert tree(root) == tree(reference)
    assert sorted(p.name for p in root.parent.iterdir()) == [".demo_sample.lock", "demo_sample"]  # no staging folder left


def test_a_demo_sample_that_fails_midway_leaves_nothing_half_written(tmp_path, monkeypatch):
    from util.errors import UserError

    root = tmp_path / "demo_sample"
    written = []

    def full_disk(path, ids, palette=None):
        written.append(path)
        if len(written) > 3:
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(demo, "save_palette_png", full_disk)
    with pytest.raises(UserError, match="No space left on device"):
        demo.ensure_sample(root)
    assert not root.exists() and [p.name for p in tmp_path.iterdir()] == [".demo_sample.lock"]
    monkeypatch.undo()
    frames, masks, gt = demo.ensure_sample(root)
    assert len(list(frames.glob("*.jpg"))) == demo.SAMPLE_FRAMES and (masks / "00000.png").is_file()
