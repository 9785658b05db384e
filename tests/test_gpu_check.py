"""scripts/gpu_check.py (its modules in scripts/gpu/), the prepared GPU run, on the CPU: its dry run, its stages'
bookkeeping, the parts of the returned weights (scripts/join_parts.py) and the measuring wrapper (scripts/measure_run.py).
docs/GPU_CHECK.md."""

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import torch

from scripts import gpu_check, join_parts, measure_run
from scripts.gpu import profiles, report, runner, stage_train
from util.errors import UserError
from util.write_gate import RECORD_NAME, write_text

ROOT = Path(__file__).resolve().parents[1]
PROBE = "qdmn_gpu_check_probe"


def probe_wheel(folder: Path, version: str = "0.1") -> Path:
    """A minimal pure-Python wheel, standing in for the carried ones."""
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / f"{PROBE}-{version}-py3-none-any.whl"
    info = f"{PROBE}-{version}.dist-info"
    files = {
        f"{PROBE}/__init__.py": f"VERSION = {version!r}\n",
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {PROBE}\nVersion: {version}\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    with zipfile.ZipFile(wheel, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
        z.writestr(f"{info}/RECORD", "".join(f"{name},,\n" for name in [*files, f"{info}/RECORD"]))
    return wheel


def run_check(out: Path, work: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "scripts.gpu_check", "--device", "cpu", "--tiny", "--out", str(out), "--work", str(work), *args]
    env = {k: v for k, v in os.environ.items() if k != "OUT"}
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow  # seconds: in .ci/run (-m ''), out of the default selection
def test_dry_run_of_the_environment_stage(tmp_path):
    """The script as a process: results in the output folder, CUDA fields marked skipped, the wheels installed."""
    wheels = tmp_path / "wheels"
    probe_wheel(wheels, "0.1")
    newest = probe_wheel(wheels, "0.2")  # two versions: only the newest is installed
    out, work = tmp_path / "out", tmp_path / "work"
    proc = run_check(out, work, "--stages", "env", "--wheels", str(wheels), "--official_repo", "")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert sorted(p.name for p in out.iterdir()) == [RECORD_NAME, "gpu_check.json", "gpu_check.log", "gpu_check.md"]
    results = json.loads((out / "gpu_check.json").read_text())
    assert results["format"] == "qdmn-gpu-check" and results["device"] == "cpu" and results["tiny"] is True
    env = results["stages"]["env"]
    assert list(results["stages"]) == ["env"] and env["status"] == "ok"
    assert env["nvidia_smi"] == env["gpu"] == env["capability_line"] == "skipped (cpu)"
    assert env["versions"]["torch"] == torch.__version__ and env["versions"]["cuda_available"] is False
    assert env["wheels"]["wheels"] == [newest.name] and env["wheels"]["installed"] is True
    assert (work / "site" / PROBE / "__init__.py").read_text() == "VERSION = '0.2'\n"
    assert env["wheels"]["importable"] == {"progressbar": True, "git": True, "gdown": True}
    assert set(env["compile"]) == {
        "requested",
        "train.py accepts",
        "eval_davis.py accepts",
        "passed to train.py",
        "passed to eval_davis.py",
    }
    assert env["compile"]["requested"] is False and env["compile"]["passed to train.py"] is False
    assert results["checks"]["packages importable"]["passed"] is True
    assert env["runs"]["pip_install"]["status"] == env["runs"]["help_train"]["status"] == "ok"
    summary = (out / "gpu_check.md").read_text()
    assert "| env | ok |" in summary and "| packages importable | yes |" in summary
    assert "[help_eval_davis] ok" in (out / "gpu_check.log").read_text()


def check_for(tmp_path: Path, **overrides) -> runner.Check:
    args = argparse.Namespace(device="cpu", tiny=True, budget=60, compile=False, argv=[], stages=list(profiles.STAGES), **overrides)
    (tmp_path / "out").mkdir(exist_ok=True)
    return runner.Check(args, profiles.TINY, tmp_path / "out", tmp_path / "work")


def test_a_stage_that_fails_or_runs_out_of_time_is_recorded_and_the_next_one_runs(tmp_path):
    check = check_for(tmp_path)
    check.profile = profiles.Profile(**{**vars(profiles.TINY), "timeboxes": {"env": 6, "train": 30, "eval": 30}})

    def sleeps(c, record, deadline):
        runner.keep(record, "sleep", c.run("sleep", [sys.executable, "-c", "import time; time.sleep(60)"], deadline, grace=1))

    def fails(c, record, deadline):
        raise RuntimeError("no data")

    def works(c, record, deadline):
        runner.keep(record, "hello", c.run("hello", [sys.executable, "-c", "print('hello')"], deadline))

    start = time.monotonic()
    for name, body in (("env", sleeps), ("train", fails), ("eval", works)):
        runner.run_stage(check, name, body)
    assert time.monotonic() - start < 20  # the sleeping command was stopped at its time box
    stages = json.loads((tmp_path / "out" / "gpu_check.json").read_text())["stages"]
    assert stages["env"]["status"] == "timeout" and stages["env"]["runs"]["sleep"]["status"] == "timeout"
    assert stages["train"]["status"] == "failed" and stages["train"]["error"] == "RuntimeError: no data"
    assert stages["eval"]["status"] == "ok" and stages["eval"]["runs"]["hello"]["exit_code"] == 0
    assert "| env | timeout |" in (tmp_path / "out" / "gpu_check.md").read_text()
    logs = tmp_path / "work" / "logs"  # published under their names once the commands ended, the stopped one too
    assert sorted(p.name for p in logs.iterdir()) == [RECORD_NAME, "hello.log", "sleep.log"]
    assert (logs / "hello.log").read_text() == "hello\n"


def test_parse_training_reads_losses_times_and_precision():
    output = "\n".join(
        ["mixed precision: float16 autocast with loss scaling", "memory format: channels_last"]
        + [f"x - It {i:6d} [TRAIN] [total_loss   ]: {1.0 / i:.7f}\nx - It {i:6d} [TRAIN] [time         ]: {t}"
           for i, t in ((1, 9.0), (2, 0.5), (3, 0.5), (4, 0.25), (5, 0.25), (6, 0.25))]
    )  # fmt: skip
    fields = stage_train.parse_training(output)
    assert fields["precision"] == "float16 + GradScaler" and fields["memory_format"] == "channels_last"
    assert fields["loss_first"] == 1.0 and fields["loss_last"] == pytest.approx(1 / 6, abs=1e-6) and fields["losses_finite"]
    assert fields["timed_iterations"] == 4 and fields["its_per_s"] == 4.0  # the first 2 (of 6) iterations are warm-up
    assert stage_train.parse_training("warning: --amp ignored: ...")["precision"].startswith("float32 (--amp ignored")
    assert "compile_first_iteration_s" not in fields
    compiled = stage_train.parse_training(output + "\n--compile: the first iteration took 73.4 s (compiling)")
    assert compiled["compile_first_iteration_s"] == 73.4 and compiled["its_per_s"] == 4.0


def test_the_summary_says_whether_it_compiled_and_how_long_evaluation_compiled():
    compiling = {"requested": True, "train.py accepts": True, "eval_davis.py accepts": True, "passed to train.py": True,
                 "passed to eval_davis.py": True}
    runs = {"eval_fp32": {"device": "cuda", "status": "ok", "fps": 20.0, "frames": 117, "compile_seconds": 41.5},
            "eval_cpu_reference": {"device": "cpu", "status": "ok", "fps": 1.0, "frames": 39, "compile_seconds": 0.0}}
    results = {"command": "gpu_check --compile", "device": "cuda", "tiny": False, "git": "x", "started": "now", "budget_s": 540,
               "checks": {}, "stages": {"env": {"status": "ok", "compile": compiling}, "eval": {"status": "ok", "runs": runs}}}
    text = report.markdown(results)
    assert "- --compile: requested True; passed to train.py True, to eval_davis.py True" in text
    assert "| fp32 | cuda | ok | 20 | 117 | 41.5 |" in text and "| cpu_reference | cpu | ok | 1 | 39 | 0 |" in text


def test_the_output_folder_must_hold_only_this_scripts_files(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(SystemExit) as exit_info:
        gpu_check.main(["--device", "cpu", "--tiny", "--out", str(out), "--stages", "env"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"error: {out}: holds files this script did not write (notes.txt); choose an empty --out"
    ]
    assert (out / "notes.txt").read_text() == "mine"


def test_a_new_run_removes_only_the_files_its_record_shows_it_wrote(tmp_path):
    out = tmp_path / "out"
    write_text(out / "gpu_check.json", "{}")  # an earlier run's, recorded
    write_text(out / "qdmn_lite_gpu.pth.part3", "x")
    gpu_check.prepare_out(out)
    assert sorted(p.name for p in out.iterdir()) == [RECORD_NAME]
    (out / "gpu_check.md").write_text("the user's, with this script's name")
    with pytest.raises(UserError, match=r"holds files this script did not write \(gpu_check.md\)"):
        gpu_check.prepare_out(out)
    assert (out / "gpu_check.md").read_text() == "the user's, with this script's name"


def test_a_work_folder_inside_an_input_is_refused_before_the_outputs_are_touched(tmp_path, capsys):
    out, wheels = tmp_path / "out", tmp_path / "wheels"
    wheels.mkdir()
    write_text(out / "gpu_check.json", "{}")  # an earlier run's
    with pytest.raises(SystemExit) as exit_info:
        gpu_check.main(["--device", "cpu", "--tiny", "--out", str(out), "--stages", "env", "--wheels", str(wheels),
                        "--work", str(wheels / "work")])  # fmt: skip
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip() == (
        f"error: --work {wheels / 'work'} lies inside the input {wheels}; choose another --work, apart from the inputs"
    )
    assert (out / "gpu_check.json").read_text() == "{}" and not (wheels / "work").exists()


def test_weights_split_into_parts_join_back_with_their_checksums(tmp_path, capsys):
    source = tmp_path / "w.pth"
    data = os.urandom(5 * 2**20 + 123)
    source.write_bytes(data)
    back = tmp_path / "back"
    manifest = join_parts.split_file(source, back, 2 * 2**20, {"iteration": 7})
    assert [p["size"] for p in manifest["parts"]] == [2 * 2**20, 2 * 2**20, 2**20 + 123] and manifest["iteration"] == 7
    assert sorted(p.name for p in back.iterdir()) == [RECORD_NAME, "w.json", "w.pth.part0", "w.pth.part1", "w.pth.part2"]
    assert join_parts.split_file(source, back, 2 * 2**20, {"iteration": 8})["iteration"] == 8  # its own parts: replaced
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "w.pth.part1").write_bytes(b"mine")
    with pytest.raises(UserError, match="was not written by this project"):
        join_parts.split_file(source, mine, 2 * 2**20)
    assert (mine / "w.pth.part1").read_bytes() == b"mine" and not (mine / "w.json").exists()
    assert join_parts.main([str(back / "w.json"), "--out", str(tmp_path / "joined.pth")]) == 0
    assert (tmp_path / "joined.pth").read_bytes() == data
    assert f"SHA-256 {hashlib.sha256(data).hexdigest()} checked" in capsys.readouterr().out
    assert join_parts.main([str(back / "w.json"), "--out", str(tmp_path / "joined.pth")]) == 0  # the same file: nothing to do
    assert "already joined" in capsys.readouterr().out

    part = back / "w.pth.part1"
    part.write_bytes(b"x" + part.read_bytes()[1:])  # same size, other bytes
    with pytest.raises(SystemExit) as exit_info:
        join_parts.main([str(back / "w.json"), "--out", str(tmp_path / "again.pth")])
    assert exit_info.value.code == 2 and not (tmp_path / "again.pth").exists()
    assert (
        capsys.readouterr().err.strip()
        == f"error: {part}: SHA-256 differs from the manifest's; the part is damaged or from another run, fetch it again"
    )
    (tmp_path / "other.pth").write_bytes(b"someone else's")
    with pytest.raises(SystemExit):
        join_parts.main([str(back / "w.json"), "--out", str(tmp_path / "other.pth")])
    assert (tmp_path / "other.pth").read_bytes() == b"someone else's"
    assert "exists and is not this file" in capsys.readouterr().err
    damaged = back / "w.json"
    damaged.write_text(damaged.read_text().replace('"size": 5243003', '"size": "big"'))
    with pytest.raises(SystemExit) as exit_info:
        join_parts.main([str(damaged), "--out", str(tmp_path / "third.pth")])
    assert exit_info.value.code == 2
    assert (
        capsys.readouterr().err.strip()
        == f"error: {damaged}: the manifest has no file name, size and SHA-256; it is damaged, fetch it again"
    )


def test_measure_run_runs_a_script_as_main_and_records_its_exit(tmp_path):
    script = tmp_path / "job.py"
    script.write_text("import sys\nprint(sys.argv[1:])\nsys.exit(3)\n")
    result = tmp_path / "r.json"
    argv = list(sys.argv)
    assert measure_run.main([str(result), str(script), "a", "--b"]) == 3
    assert sys.argv == argv
    record = json.loads(result.read_text())
    assert record["exit_code"] == 3 and record["script"] == str(script) and record["scaler_scales"] == []
    assert record["peak_rss_mib"] > 10 and "peak_cuda_allocated_mib" not in record


def test_measure_run_records_the_grad_scaler_scale_and_restores_it(tmp_path):
    if not hasattr(torch.amp, "GradScaler"):
        pytest.skip("torch.amp.GradScaler needs PyTorch >= 2.3")
    scales: list[float] = []
    undo = measure_run.record_scaler_scales(scales)
    try:
        scaler = torch.amp.GradScaler("cpu", init_scale=8.0, growth_interval=1)
        weight = torch.nn.Parameter(torch.ones(2))
        optimizer = torch.optim.SGD([weight], lr=0.1)
        for _ in range(2):
            scaler.scale(weight.sum()).backward()
            scaler.step(optimizer)
            scaler.update()
    finally:
        undo()
    assert scales == [16.0, 32.0]
    assert torch.amp.GradScaler.update.__name__ == "update"


@pytest.mark.slow
def test_full_dry_run(tmp_path):
    """Every stage on the CPU at tiny sizes (minutes on a loaded 2-core machine), the weights joined back."""
    out, work = tmp_path / "out", tmp_path / "work"
    proc = run_check(out, work, "--wheels", str(tmp_path / "none"), timeout=1500)
    results = json.loads((out / "gpu_check.json").read_text())
    bad = {k: (v["status"], v.get("error")) for k, v in results["stages"].items() if v["status"] != "ok"}
    assert proc.returncode == 0 and not bad, f"{bad}\n{proc.stdout[-4000:]}"
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [RECORD_NAME, "gpu_check.json", "gpu_check.md", "gpu_check.log", "qdmn_lite_gpu.json", "qdmn_lite_gpu.pth.part0",
         "qdmn_lite_gpu.pth.part1"]
    )  # fmt: skip
    train = results["stages"]["train"]
    for name in ("lite_fp32", "lite_amp", "official_fp32", "official_amp"):
        run = train["runs"][f"train_{name}"]
        assert run["status"] == "ok" and run["losses_finite"] and run["its_per_s"] > 0 and run["peak_rss_mib"] > 0
        assert run["peak_cuda_allocated_mib"] == run["scaler_scale"] == "skipped (cpu)"
    assert train["resume"]["verdict"] == "bitwise" and train["resume"]["resumed_message"]
    assert train["runs"]["process_group"]["backend"] == "gloo"
    evaluation = results["stages"]["eval"]
    assert evaluation["device_vs_cpu"]["fp32"]["share_equal"] == 1.0 and evaluation["device_vs_cpu"]["fp32"]["decisions_equal"]
    assert evaluation["runs"]["eval_fp32"]["fps"] > 0 and evaluation["benchmark"]["fp32"]["frames"] > 0
    demo = results["stages"]["demo"]
    assert demo["weights"]["iteration"] == demo["plan"]["iterations"] == 2
    assert all(c["passed"] is not False for c in results["checks"].values()), results["checks"]
    assert join_parts.main([str(out / "qdmn_lite_gpu.json"), "--out", str(tmp_path / "demo.pth")]) == 0
    weights = torch.load(tmp_path / "demo.pth", weights_only=True)
    assert weights["format"] == "qdmn-weights" and weights["network"]["decoder.pred.weight"].dtype == torch.float16
