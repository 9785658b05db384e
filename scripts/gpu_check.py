"""One prepared run on one GPU: the CUDA paths checked and the demonstration model trained, each stage time-boxed.

    python -m scripts.gpu_check [--out DIR] [--budget 540] [--stages env,train,eval,demo]   # on the GPU machine
    python -m scripts.gpu_check --device cpu --tiny --out DIR                                # the dry run, here

Stages (docs/GPU_CHECK.md lists their time boxes, runs and result fields):

1. ``env``: nvidia-smi, torch/CUDA versions, a one-line capability table; installs the wheels
   carried in ``.whl/`` into a private folder put on ``PYTHONPATH``; detects ``--compile``.
2. ``train``: ``train.py --stage 2`` on generated data, lite and official configurations, float32
   and ``--amp``: it/s, peak CUDA memory, the GradScaler scale, the loss; exact resume with
   ``--amp`` (N = N/2 + N/2 against a rerun of N); torchrun with one rank; a process group (NCCL).
3. ``eval``: ``eval_davis.py`` on generated 480p videos, float32 and ``--amp``: FPS, peak memory;
   the device's masks and memory decisions against the CPU's on a confident random checkpoint;
   the official code on the same device (``scripts/compare_official.py``); ``scripts/benchmark.py``.
4. ``demo``: the demonstration model trained further in the time left, exported in float16 and
   split into parts of at most 15 MiB, every minute, so that a run cut off still returns weights.

Every output goes into one folder (``$OUT`` when set, else ``--out``): ``gpu_check.json`` (every
stage's results), ``gpu_check.md`` (the same, summarised), ``gpu_check.log`` (commands and the
end of their output) and the weights' parts with their manifest (``scripts/join_parts.py`` joins
them). A stage that fails or runs out of time is recorded and the next one runs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Optional

from scripts.join_parts import split_file
from util.errors import UserError, exit_on_user_error
from util.write_gate import RECORD_NAME, make_folder, protect_inputs, remove, write_text, writing, written_by_project

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("env", "train", "eval", "demo")
RESULTS_JSON, RESULTS_MD, LOG = "gpu_check.json", "gpu_check.md", "gpu_check.log"
DEMO_FILE = "qdmn_lite_gpu.pth"
SHIPPED = ROOT / "saves" / "qdmn_lite_synth.pth"
DEFAULT_OFFICIAL = ROOT / ".official" / "qdmn-official.tar"  # written by benchmarks/gpu_check_prepare.sh
PART_BYTES = 15 * 2**20  # a file that comes back from the GPU machine is at most 16 MiB
MAX_LOG_BYTES = 8 * 2**20
COMPILE_SCRIPTS = ("train.py", "eval_davis.py")  # given --compile where their --help lists it (issue 29)
WHEEL_MODULES = {"progressbar": "progressbar2", "git": "gitpython", "gdown": "gdown"}
# A random official-layout network made confident: near-binary predictions (--pred_gain), a memory readout that
# dominates (--value_gain) and QAM scores near 1 (--qam_gain, --qam_bias), so that frames are admitted to the memory.
CONFIDENT_CHECKPOINT = ["--official", "--seed", "3", "--qam_activation", "relu", "--pred_gain", "30", "--value_gain", "10",
                        "--qam_gain", "0.1", "--qam_bias", "1"]  # fmt: skip
SKIPPED_CPU = "skipped (cpu)"
RESERVE_S = 8  # left at the end of the budget for the last results


@dataclass(frozen=True)
class Profile:
    """Sizes and time boxes: the GPU run's, or the dry run's (``--tiny``)."""

    budget_s: int
    timeboxes: dict[str, int]  # the demo stage takes what is left
    train_hw: tuple[int, int]
    train_videos: int
    train_frames: int
    crop: int
    batch: int
    iterations: int
    resume_iterations: int  # even: the resumed run stops at half
    workers: Optional[int]  # train.py --num_workers (None: its default)
    eval_hw: tuple[int, int]
    eval_videos: int
    eval_frames: int
    cpu_videos: int  # of them, evaluated on the CPU too
    bench_frames: int  # 0: no scripts/benchmark.py run
    flop_frames: int
    demo_wide_videos: int
    demo_style_videos: int
    demo_scale: Optional[float]  # SynthVOS frames are 240x432; None keeps them
    demo_frames: Optional[int]
    demo_hw: tuple[int, int]
    demo_batch: int
    demo_export_every_s: float
    demo_rate_guess: float  # it/s at the demo's size when stage 2 measured nothing
    demo_iterations: Optional[int]  # None: as many as the time left allows
    demo_workers: Optional[int]  # data-loader processes (None: train.py's default)
    generator_workers: int


FULL = Profile(
    budget_s=540, timeboxes={"env": 45, "train": 170, "eval": 160},
    train_hw=(480, 864), train_videos=8, train_frames=8, crop=384, batch=8, iterations=20, resume_iterations=10, workers=None,
    eval_hw=(480, 864), eval_videos=3, eval_frames=40, cpu_videos=1, bench_frames=40, flop_frames=2,
    demo_wide_videos=150, demo_style_videos=100, demo_scale=None, demo_frames=None, demo_hw=(240, 432), demo_batch=16,
    demo_export_every_s=60, demo_rate_guess=4.0, demo_iterations=None, demo_workers=14, generator_workers=6,
)  # fmt: skip
TINY = Profile(
    budget_s=1800, timeboxes={"env": 180, "train": 600, "eval": 450, "demo": 400},
    train_hw=(64, 80), train_videos=3, train_frames=8, crop=64, batch=2, iterations=2, resume_iterations=2, workers=0,
    eval_hw=(96, 160), eval_videos=2, eval_frames=4, cpu_videos=1, bench_frames=3, flop_frames=0,
    demo_wide_videos=1, demo_style_videos=1, demo_scale=0.2, demo_frames=15, demo_hw=(48, 80), demo_batch=2,
    demo_export_every_s=0, demo_rate_guess=0.5, demo_iterations=2, demo_workers=0, generator_workers=1,
)  # fmt: skip


# ----------------------------------------------------------------------------- processes
@dataclass
class Job:
    """A command started in its own process group, its output in a log file."""

    name: str
    cmd: list[str]
    log: Path
    proc: subprocess.Popen
    log_open: contextlib.ExitStack  # the log's write through the gate, published by finish()
    started: float = field(default_factory=time.monotonic)

    def finish(self) -> None:
        """Publish the log under its name (once the command ended: the record holds what it wrote)."""
        self.log_open.close()

    def stop(self, grace: float) -> None:
        """SIGTERM to its whole group (train.py saves a checkpoint), SIGKILL after ``grace`` seconds."""
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                continue


class Check:
    """The run's context: options, sizes, folders, deadline, results and the processes it started."""

    def __init__(self, args: argparse.Namespace, profile: Profile, out: Path, work: Path) -> None:
        self.args, self.profile, self.out, self.work = args, profile, out, work
        self.device = args.device
        self.start = time.monotonic()
        self.deadline = self.start + (args.budget or profile.budget_s)
        self.pythonpath = [str(ROOT)]
        self.compile = {"train": False, "eval": False}
        self.jobs: list[Job] = []
        self.results: dict[str, Any] = {
            "format": "qdmn-gpu-check",
            "command": shlex.join([sys.executable, "-m", "scripts.gpu_check", *args.argv]),
            "device": self.device,
            "tiny": args.tiny,
            "budget_s": args.budget or profile.budget_s,
            "started": time.strftime("%Y-%m-%d %H:%M:%S %z"),
            "git": git_commit(),
            "stages": {},
            "checks": {},
        }
        self.log_lines: list[str] = []
        self.log_bytes = 0
        make_folder(work / "logs", "--work")

    # ------------------------------------------------------------------ time
    def left(self, deadline: Optional[float] = None) -> float:
        return min(self.deadline, deadline or math.inf) - time.monotonic()

    @property
    def cuda(self) -> bool:
        return self.device == "cuda"

    # ------------------------------------------------------------------ output
    def log(self, text: str) -> None:
        """Print ``text`` and add it to the log, rewritten whole through the gate (complete at every moment)."""
        print(text, flush=True)
        if self.log_bytes < MAX_LOG_BYTES:
            line = text.rstrip("\n") + "\n"
            self.log_lines.append(line)
            self.log_bytes += len(line.encode())
            write_text(self.out / LOG, "".join(self.log_lines), "--out")

    def write_results(self) -> None:
        self.results["elapsed_s"] = round(time.monotonic() - self.start, 1)
        write_text(self.out / RESULTS_JSON, json.dumps(self.results, indent=1, default=str) + "\n", "--out")
        write_text(self.out / RESULTS_MD, markdown(self.results), "--out")

    def check(self, name: str, passed: Optional[bool], value: Any, target: str) -> None:
        """A pass/fail line of the summary (``passed`` None: not measurable here, e.g. on the CPU)."""
        self.results["checks"][name] = {"passed": passed, "value": value, "target": target}

    # ------------------------------------------------------------------ subprocesses
    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([*self.pythonpath, *filter(None, [os.environ.get("PYTHONPATH")])])
        env["PYTHONUNBUFFERED"] = "1"
        env["TORCH_HOME"] = str(self.work / "torch_home")  # no ImageNet weights: the same random start everywhere
        env.update(extra)
        return env

    def launch(self, name: str, cmd: list[str], cwd: Path = ROOT, nice: bool = False, env: Optional[dict[str, str]] = None) -> Job:
        log = self.work / "logs" / f"{name}.log"
        cwd.mkdir(parents=True, exist_ok=True)
        if nice and shutil.which("nice"):
            cmd = ["nice", "-n", "10", *cmd]
        with contextlib.ExitStack() as log_open:
            f = log_open.enter_context(job_log(log))
            # its own process group (to stop it with its workers), in this session (it ends with the caller's)
            proc = subprocess.Popen(cmd, cwd=cwd, env=env or self.env(), stdout=f, stderr=subprocess.STDOUT, preexec_fn=os.setpgrp)
            job = Job(name, cmd, log, proc, log_open.pop_all())
        self.jobs.append(job)
        self.log(f"[{name}] started: {shlex.join(cmd)}")
        return job

    def wait(self, job: Job, deadline: float, grace: float = 20.0) -> dict[str, Any]:
        """Wait for ``job`` until ``deadline`` (then stop it); its record: status, exit code, seconds, command."""
        status = "ok"
        try:
            job.proc.wait(timeout=max(0.0, self.left(deadline)))
        except subprocess.TimeoutExpired:
            status = "timeout"
            job.stop(grace)
        job.finish()
        code = job.proc.returncode
        if status == "ok" and code != 0:
            status = "failed"
        seconds = time.monotonic() - job.started
        output = job.log.read_text(errors="replace") if job.log.exists() else ""
        tail = "\n".join(output.splitlines()[-40:])
        self.log(f"[{job.name}] {status} (exit {code}) after {seconds:.1f} s; last lines:\n{tail}\n")
        return {"status": status, "exit_code": code, "seconds": round(seconds, 2), "command": shlex.join(job.cmd), "output": output}

    def run(self, name: str, cmd: list[str], deadline: float, cwd: Path = ROOT, grace: float = 20.0) -> dict[str, Any]:
        return self.wait(self.launch(name, cmd, cwd), deadline, grace)

    def stop_all(self) -> None:
        for job in self.jobs:
            if job.proc.poll() is None:
                job.stop(5.0)
            job.finish()


def git_commit() -> str:
    try:
        proc = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown (no git)"
    if proc.returncode != 0:
        return "unknown (not a git checkout)"
    return proc.stdout.strip() + (" (uncommitted changes)" if dirty.stdout.strip() else "")


@contextlib.contextmanager
def job_log(path: Path) -> Iterator[IO[str]]:
    """A command's log through the gate: under a temporary name while the command runs, then renamed to ``path``."""
    with writing(path, "--work") as tmp, open(tmp, "x") as f:
        yield f


def python(*args: str) -> list[str]:
    return [sys.executable, *args]


def measured(result: Path, script: str, *args: str) -> list[str]:
    """``python SCRIPT ARGS`` through scripts/measure_run.py (peak memory, GradScaler scales into ``result``)."""
    return python("-m", "scripts.measure_run", str(result), str(ROOT / script), *args)


def torchrun(*args: str) -> list[str]:
    return python("-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1", *args)


def read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


# ----------------------------------------------------------------------------- stages
def run_stage(check: Check, name: str, body: Callable[[Check, dict[str, Any], float], None]) -> None:
    record: dict[str, Any] = {"status": "running", "runs": {}}
    check.results["stages"][name] = record
    box = check.profile.timeboxes.get(name)
    left = check.left() - RESERVE_S
    box_s = min(box, left) if box is not None else left
    record["timebox_s"] = round(box_s, 1)
    if box_s < 5:
        record["status"] = "skipped (no time left in the budget)"
        check.write_results()
        return
    check.log(f"== stage {name}: time box {box_s:.0f} s")
    start = time.monotonic()
    try:
        body(check, record, start + box_s)
    except Exception as e:  # noqa: BLE001 - recorded; the next stage runs
        record["error"] = f"{type(e).__name__}: {e}"
        record["traceback"] = traceback.format_exc()[-3000:]
        check.log(f"stage {name} failed: {record['error']}")
    record["seconds"] = round(time.monotonic() - start, 1)
    record["status"] = stage_status(record)
    check.log(f"== stage {name}: {record['status']} after {record['seconds']} s")
    check.write_results()


def stage_status(record: dict[str, Any]) -> str:
    statuses = [r.get("status", "") for r in record["runs"].values()]
    if "timeout" in statuses:
        return "timeout"
    if record.get("error") or "failed" in statuses:
        return "failed"
    return "ok"


def keep(record: dict[str, Any], name: str, run: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """Record a run (its output goes to the log, not the JSON)."""
    run = {k: v for k, v in run.items() if k != "output"}
    run.update(fields)
    record["runs"][name] = run
    return run


# ----------------------------------------------------------------------------- 0: data, in the background
def start_data(check: Check, stages: list[str]) -> dict[str, Job]:
    """Generate every stage's data in background processes (the demo's with lower priority)."""
    p, data, jobs = check.profile, check.work / "data", {}
    synth = python("-m", "scripts.make_synthetic", "--max_objects", "3")

    def videos(name: str, layout: str, seed: int, count: int, frames: int, hw: tuple[int, int]) -> Job:
        size = f"--seed {seed} --videos {count} --frames {frames} --height {hw[0]} --width {hw[1]}".split()
        return check.launch(f"data_{name}", [*synth, "--out", str(data / name), *layout.split(), *size])

    if "train" in stages:
        jobs["train_davis"] = videos("train_davis", "--layout davis2017", 0, p.train_videos, p.train_frames, p.train_hw)
        jobs["train_yv"] = videos("train_yv", "--layout youtube --split train", 0, p.train_videos, max(2, p.train_frames // 2), p.train_hw)
    if "eval" in stages:
        jobs["eval"] = videos("eval", "--layout davis2017", 1, p.eval_videos, p.eval_frames, p.eval_hw)
    if "demo" in stages:
        synthvos = python("-m", "scripts.make_synthvos", "--sets", "val,yv", "--workers", str(p.generator_workers))
        small = [*(["--scale", str(p.demo_scale)] if p.demo_scale else []), *(["--frames", str(p.demo_frames)] if p.demo_frames else [])]
        jobs["demo_wide"] = check.launch(
            "data_demo_wide",
            [*synthvos, "--out", str(data / "wide"), "--style", "wide", "--seed", "600", "--videos", str(p.demo_wide_videos), *small],
            nice=True,
        )
        jobs["demo_style"] = check.launch(
            "data_demo_style",
            [*synthvos, "--out", str(data / "synthstyle"), "--seed", "500", "--videos", str(p.demo_style_videos), *small],
            nice=True,
        )
    return jobs


def wait_data(check: Check, record: dict[str, Any], jobs: dict[str, Job], names: list[str], deadline: float) -> bool:
    ok = True
    for name in names:
        job = jobs[name]
        result = keep(record, f"data_{name}", check.wait(job, deadline, grace=2.0))
        ok = ok and result["status"] == "ok"
    return ok


# ----------------------------------------------------------------------------- 1: environment
ENV_PROBE = r"""
import json, platform, sys
import torch
from util.hardware import available_cpus, cpu_description
info = {"python": platform.python_version(), "executable": sys.executable, "torch": torch.__version__,
        "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(), "cuda_available": torch.cuda.is_available(),
        "cpu": cpu_description(), "cpus": available_cpus()}
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    info["gpu"] = {"name": p.name, "capability": f"{p.major}.{p.minor}", "bf16": torch.cuda.is_bf16_supported(),
                   "fp16": (p.major, p.minor) >= (5, 3), "memory_gib": round(p.total_memory / 2**30, 1),
                   "multiprocessors": p.multi_processor_count, "count": torch.cuda.device_count()}
    try:
        v = torch.cuda.nccl.version()
        info["nccl"] = ".".join(map(str, v)) if isinstance(v, tuple) else str(v)
    except Exception as e:
        info["nccl"] = f"unknown ({type(e).__name__})"
print(json.dumps(info))
"""
MODULE_PROBE = "import importlib.util, json; print(json.dumps({m: importlib.util.find_spec(m) is not None for m in %r}))"


def stage_env(check: Check, record: dict[str, Any], deadline: float) -> None:
    if check.cuda:
        smi = check.run("nvidia_smi", ["nvidia-smi"], deadline) if shutil.which("nvidia-smi") else {"status": "failed", "output": ""}
        record["nvidia_smi"] = smi.get("output") or "nvidia-smi not found"
        keep(record, "nvidia_smi", smi)
    else:
        record["nvidia_smi"] = SKIPPED_CPU
    probe = check.launch("env_probe", python("-c", ENV_PROBE))  # these three import torch: side by side
    helps = {script: check.launch(f"help_{Path(script).stem}", python(str(ROOT / script), "--help")) for script in COMPILE_SCRIPTS}
    install_wheels(check, record, deadline)
    result = check.wait(probe, deadline)
    found = re.findall(r"^\{.*\}$", result["output"], re.M)
    versions = json.loads(found[-1]) if found else {}
    if not versions and result["status"] == "ok":
        result["status"] = "failed"
    keep(record, "env_probe", result)
    record["versions"] = {k: v for k, v in versions.items() if k != "gpu"}
    gpu = versions.get("gpu")
    record["gpu"] = gpu if gpu else SKIPPED_CPU
    record["capability_line"] = capability_line(gpu) if gpu else SKIPPED_CPU
    if check.cuda:
        check.check("CUDA available", bool(versions.get("cuda_available")), record["capability_line"], "torch sees the GPU")
    detect_compile(check, record, deadline, helps)


def capability_line(gpu: dict[str, Any]) -> str:
    yes = {True: "yes", False: "no"}
    return (
        f"| {gpu['name']} | compute {gpu['capability']} | bf16 {yes[bool(gpu['bf16'])]} | fp16 {yes[bool(gpu['fp16'])]} | "
        f"{gpu['memory_gib']} GiB | {gpu['multiprocessors']} SMs |"
    )


def newest_wheels(folder: Path) -> list[Path]:
    """One wheel per distribution (the highest version): two versions of one would stop pip's whole install."""
    from packaging.utils import canonicalize_name, parse_wheel_filename
    from packaging.version import Version

    best: dict[str, tuple[Version, Path]] = {}
    for wheel in sorted(folder.glob("*.whl")):
        try:
            name, version, _, _ = parse_wheel_filename(wheel.name)
        except ValueError:
            continue
        key = canonicalize_name(name)
        if key not in best or version > best[key][0]:
            best[key] = (version, wheel)
    return [path for _, path in sorted(best.values(), key=lambda v: v[1].name)]


def install_wheels(check: Check, record: dict[str, Any], deadline: float) -> None:
    """Install the carried wheels into a private folder, put on every later command's PYTHONPATH."""
    folder = Path(check.args.wheels)
    wheels = newest_wheels(folder) if folder.is_dir() else []
    info: dict[str, Any] = {"folder": str(folder), "wheels": [w.name for w in wheels]}
    if wheels:
        site = check.work / "site"
        options = "--no-index --no-deps --no-compile --no-cache-dir --upgrade --disable-pip-version-check --quiet".split()
        cmd = python("-m", "pip", "install", *options, "--target", str(site), *map(str, wheels))
        result = keep(record, "pip_install", check.run("pip_install", cmd, deadline))
        if result["status"] == "ok":
            check.pythonpath.append(str(site))
            sys.path.append(str(site))
        info["installed"] = result["status"] == "ok"
        info["site"] = str(site)
    else:
        info["installed"] = f"no wheels in {folder}"
    probe = check.run("module_probe", python("-c", MODULE_PROBE % (list(WHEEL_MODULES),)), deadline)
    keep(record, "module_probe", probe)
    found = re.findall(r"^\{.*\}$", probe["output"], re.M)
    modules = json.loads(found[-1]) if found else {}
    info["importable"] = modules
    record["wheels"] = info
    missing = [WHEEL_MODULES[m] for m, ok in modules.items() if not ok]
    check.check("packages importable", bool(modules) and not missing, missing or "all", ", ".join(WHEEL_MODULES.values()))


def detect_compile(check: Check, record: dict[str, Any], deadline: float, helps: dict[str, Job]) -> None:
    """Whether train.py and eval_davis.py accept ``--compile`` (read from their --help, which also shows they start)."""
    accepts = {}
    for script, job in helps.items():
        result = check.wait(job, deadline)
        keep(record, job.name, result)
        accepts[script] = result["status"] == "ok" and re.search(r"(^|\s)--compile\b", result["output"]) is not None
    check.compile = {"train": check.args.compile and accepts["train.py"], "eval": check.args.compile and accepts["eval_davis.py"]}
    record["compile"] = {
        "requested": check.args.compile,
        "train.py accepts": accepts["train.py"],
        "eval_davis.py accepts": accepts["eval_davis.py"],
        "passed to train.py": check.compile["train"],
        "passed to eval_davis.py": check.compile["eval"],
    }


# ----------------------------------------------------------------------------- 2: training
def train_args(check: Check) -> list[str]:
    """train.py's stage-2 flags common to stage 2's runs (``--model_config`` last, its value to follow)."""
    p, data = check.profile, check.work / "data"
    flags = f"--stage 2 --no_subset --size {p.crop} -b {p.batch} --device {check.device} --seed 0"
    return [*flags.split(), "--davis_root", str(data / "train_davis"), "--yv_root", str(data / "train_yv"), "--model_config"]


def train_flags(check: Check) -> list[str]:
    p = check.profile
    return [*(["--num_workers", str(p.workers)] if p.workers is not None else []), *(["--compile"] if check.compile["train"] else [])]


def training_precision(output: str) -> str:
    found = re.search(r"mixed precision: (\S+) autocast( with loss scaling)?", output)
    if found:
        return found.group(1) + (" + GradScaler" if found.group(2) else "")
    return "float32 (--amp ignored: no native bfloat16)" if "--amp ignored" in output else "float32"


def parse_training(output: str) -> dict[str, Any]:
    """Losses, iteration times and precision from train.py's console (``--debug`` prints every iteration)."""
    losses = [float(v) for v in re.findall(r"\[total_loss\s*\]: (\S+)", output)]
    times = [float(v) for v in re.findall(r"\[time\s*\]: (\S+)", output)]
    fields: dict[str, Any] = {
        "losses": losses,
        "loss_first": losses[0] if losses else None,
        "loss_last": losses[-1] if losses else None,
        "losses_finite": bool(losses) and all(math.isfinite(v) for v in losses),
        "precision": training_precision(output),
        "memory_format": (re.findall(r"memory format: (\S+)", output) or ["?"])[-1],
    }
    warm = times[min(3, len(times) // 3) :] if len(times) > 1 else times
    if warm:
        fields["iteration_s_median"] = statistics.median(warm)
        fields["its_per_s"] = 1.0 / fields["iteration_s_median"] if fields["iteration_s_median"] > 0 else None
        fields["timed_iterations"] = len(warm)
    return fields


def memory_fields(check: Check, measure: dict[str, Any]) -> dict[str, Any]:
    scales = measure.get("scaler_scales") or []
    fields: dict[str, Any] = {"peak_rss_mib": measure.get("peak_rss_mib")}
    if check.cuda:
        fields["peak_cuda_allocated_mib"] = measure.get("peak_cuda_allocated_mib")
        fields["peak_cuda_reserved_mib"] = measure.get("peak_cuda_reserved_mib")
        fields["scaler_scale"] = scales[-1] if scales else "none (no float16 loss scaling)"
        fields["scaler_scale_drops"] = sum(b < a for a, b in zip(scales, scales[1:]))  # steps skipped for overflow (after the 1st)
    else:
        fields["peak_cuda_allocated_mib"] = fields["scaler_scale"] = SKIPPED_CPU
    return fields


def stage_train(check: Check, record: dict[str, Any], deadline: float, jobs: dict[str, Job]) -> None:
    p, base = check.profile, check.work / "train"
    if not wait_data(check, record, jobs, ["train_davis", "train_yv"], deadline):
        raise RuntimeError("the training data could not be generated")
    common = train_args(check)
    measurements: dict[str, Any] = {}
    for config in ("lite", "official"):
        for precision in ("fp32", "amp"):
            name = f"{config}_{precision}"
            result_file = base / f"{name}.measure.json"
            cmd = measured(
                result_file,
                "train.py",
                *common,
                config,
                "-i",
                str(p.iterations),
                "--id",
                "NULL",
                "--debug",
                *(["--amp"] if precision == "amp" else []),
                *train_flags(check),
            )
            run = check.run(f"train_{name}", cmd, deadline, cwd=base / name)
            fields = {**parse_training(run["output"]), **memory_fields(check, read_json(result_file))}
            measurements[name] = keep(record, f"train_{name}", run, iterations=p.iterations, **fields)
            check.write_results()
    good = [m for m in measurements.values() if m["status"] == "ok" and m["losses_finite"]]
    check.check(
        f"training on {check.device} (lite/official, float32/--amp)",
        len(good) == 4,
        {k: round(v.get("its_per_s") or 0, 2) for k, v in measurements.items()},
        "4 runs with finite losses (it/s shown)",
    )
    resume_and_torchrun(check, record, deadline, common)


def weights_file(folder: Path, iteration: int) -> Optional[Path]:
    found = sorted(folder.glob(f"saves/*/*_{iteration}.pth"))
    return found[-1] if found else None


def compare_weights(a: Path, b: Path) -> dict[str, Any]:
    import torch

    from model.checkpoint import safe_load

    first, second = safe_load(a)["network"], safe_load(b)["network"]
    differing, max_abs = 0, 0.0
    for key, value in first.items():
        other = second[key]
        if not torch.equal(value, other):
            differing += 1
            if value.is_floating_point():
                max_abs = max(max_abs, float((value.double() - other.double()).abs().max()))
    return {"tensors": len(first), "tensors_differing": differing, "bitwise": differing == 0, "max_abs_diff": max_abs}


def resume_and_torchrun(check: Check, record: dict[str, Any], deadline: float, common: list[str]) -> None:
    """N = N/2 + N/2 with --amp against a run of N and a rerun of N (run-to-run tolerance); torchrun; process group."""
    p, base = check.profile, check.work / "train"
    n, half = p.resume_iterations, p.resume_iterations // 2
    lite_amp = [*common, "lite", "-i", str(n), "--amp", *train_flags(check)]
    jobs = {
        "full": check.launch("resume_full", measured(base / "full.measure.json", "train.py", *lite_amp, "--id", "full"), base / "full"),
        "again": check.launch(
            "resume_again", measured(base / "again.measure.json", "train.py", *lite_amp, "--id", "again"), base / "again"
        ),
        "half": check.launch(
            "resume_half",
            measured(base / "half.measure.json", "train.py", *lite_amp, "--id", "half", "--stop_at", str(half)),
            base / "half",
        ),
        "torchrun": check.launch(
            "torchrun_train",
            torchrun(
                "-m",
                "scripts.measure_run",
                str(base / "torchrun.measure.json"),
                str(ROOT / "train.py"),
                *common,
                "lite",
                "-i",
                str(p.iterations // 2 or 1),
                "--id",
                "NULL",
                "--amp",
                *train_flags(check),
            ),
            base / "torchrun",
        ),
        "probe": check.launch(
            "process_group", torchrun("-m", "scripts.distributed_probe", str(base / "probe.json"), "--device", check.device), base / "probe"
        ),
    }
    runs = {name: keep(record, job.name, check.wait(job, deadline)) for name, job in jobs.items()}
    torchrun_output = jobs["torchrun"].log.read_text(errors="replace")
    placed = re.findall(r"I am rank (\d+) in this world of size (\d+), on (\S+)", torchrun_output)
    runs["torchrun"]["placement"] = " ".join(placed[-1]) if placed else None
    expected_device = "cuda:0" if check.cuda else "cpu"
    check.check(
        "torchrun --nproc_per_node 1 train.py",
        runs["torchrun"]["status"] == "ok" and bool(placed) and placed[-1][2] == expected_device,
        placed[-1][2] if placed else None,
        f"rank 0 on {expected_device}",
    )
    probe = read_json(base / "probe.json")
    runs["probe"].update({k: v for k, v in probe.items() if k != "all_gather"})
    backend = "nccl" if check.cuda else "gloo"
    check.check(
        f"process group ({backend}) under torchrun",
        probe.get("backend") == backend and probe.get("all_reduce_ok") is True,
        probe.get("nccl_version", probe.get("backend")),
        f"{backend} all_reduce, all_gather_object, broadcast, barrier",
    )
    for name in ("full", "again", "half", "torchrun"):
        runs[name].update(memory_fields(check, read_json(base / f"{name}.measure.json")))
    checkpoint = sorted((base / "half").glob("saves/*/*_checkpoint.pth"))
    if runs["half"]["status"] != "ok" or not checkpoint:
        raise RuntimeError("the run to N/2 left no checkpoint to resume from")
    rest = check.run(
        "resume_rest",
        measured(base / "rest.measure.json", "train.py", *lite_amp, "--id", "rest", "--load_model", str(checkpoint[-1])),
        deadline,
        cwd=base / "rest",
    )
    resumed_exactly = "Resuming" in rest["output"] and "not continue exactly" not in rest["output"]
    rest_record = keep(record, "resume_rest", rest, **memory_fields(check, read_json(base / "rest.measure.json")))
    files = {name: weights_file(base / name, n) for name in ("full", "again", "rest")}
    if any(f is None for f in files.values()):
        raise RuntimeError(f"weights at iteration {n} missing: {[k for k, v in files.items() if v is None]}")
    resume = compare_weights(files["full"], files["rest"])
    rerun = compare_weights(files["full"], files["again"])
    full_scales = read_json(base / "full.measure.json").get("scaler_scales") or []
    rest_scales = read_json(base / "rest.measure.json").get("scaler_scales") or []
    if resume["bitwise"]:
        verdict, passed = "bitwise", True
    elif resume["max_abs_diff"] <= rerun["max_abs_diff"]:
        verdict, passed = f"within the run-to-run tolerance (max |diff| {resume['max_abs_diff']:.3g} <= {rerun['max_abs_diff']:.3g})", True
    else:
        verdict, passed = f"differs beyond the run-to-run tolerance ({resume['max_abs_diff']:.3g} > {rerun['max_abs_diff']:.3g})", False
    record["resume"] = {
        "iterations": n,
        "stopped_at": half,
        "precision": parse_training(rest["output"])["precision"],
        "resume_vs_full": resume,
        "rerun_vs_full": rerun,
        "verdict": verdict,
        "resumed_message": resumed_exactly,
        "scaler_scales_full_second_half": full_scales[half:] if check.cuda else SKIPPED_CPU,
        "scaler_scales_resumed": rest_scales if check.cuda else SKIPPED_CPU,
    }
    rest_record["verdict"] = verdict
    check.check(
        "exact resume with --amp (N = N/2 + N/2)",
        passed and resumed_exactly,
        verdict,
        "bitwise, or within the difference between two uninterrupted runs",
    )


# ----------------------------------------------------------------------------- 3: evaluation
def subset_root(source: Path, dest: Path, count: int) -> list[str]:
    """A DAVIS 2017 root under ``dest`` holding the first ``count`` videos of ``source`` (symbolic links)."""
    trainval = source / "2017" / "trainval"
    names = [n for n in (trainval / "ImageSets" / "2017" / "val.txt").read_text().split() if n][:count]
    for kind in ("JPEGImages", "Annotations"):
        folder = dest / "2017" / "trainval" / kind / "480p"
        folder.mkdir(parents=True, exist_ok=True)
        for name in names:
            (folder / name).symlink_to(trainval / kind / "480p" / name)
    sets = dest / "2017" / "trainval" / "ImageSets" / "2017"
    sets.mkdir(parents=True, exist_ok=True)
    write_text(sets / "val.txt", "".join(f"{n}\n" for n in names), "--work")
    return names


def mask_agreement(first: Path, second: Path, videos: list[str]) -> dict[str, Any]:
    import numpy as np

    from util.image_io import load_mask

    total = equal = frames = 0
    for video in videos:
        for png in sorted((second / video).glob("*.png")):
            other = first / video / png.name
            if not other.is_file():
                raise RuntimeError(f"{other}: missing")
            a, b = load_mask(png), load_mask(other)
            total += a.size
            equal += int(np.count_nonzero(a == b)) if a.shape == b.shape else 0
            frames += 1
    return {"frames": frames, "pixels": total, "pixels_equal": equal, "share_equal": equal / total if total else None}


def eval_precision(output: str, device: str, amp: bool) -> str:
    if not amp:
        return "float32"
    if "--amp ignored" in output:
        return "float32 (--amp ignored: no native bfloat16)"
    return "float16" if device == "cuda" else "bfloat16"


def eval_record(check: Check, measure: dict[str, Any], stats: dict[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "fps": stats.get("fps"),
        "frames": stats.get("frames"),
        "eval_seconds": stats.get("seconds"),
        "peak_memory_frames": stats.get("peak_memory_frames"),
        "peak_rss_mib": measure.get("peak_rss_mib"),
    }
    fields["peak_cuda_allocated_mib"] = measure.get("peak_cuda_allocated_mib") if check.cuda else SKIPPED_CPU
    fields["peak_cuda_reserved_mib"] = measure.get("peak_cuda_reserved_mib") if check.cuda else SKIPPED_CPU
    fields["decisions"] = {
        name: {"admitted": v.get("admitted"), "evicted": v.get("evicted")} for name, v in (stats.get("per_video") or {}).items()
    }
    return fields


def stage_eval(check: Check, record: dict[str, Any], deadline: float, jobs: dict[str, Job]) -> None:
    p, base, data = check.profile, check.work / "eval", check.work / "data"
    if not wait_data(check, record, jobs, ["eval"], deadline):
        raise RuntimeError("the evaluation videos could not be generated")
    base.mkdir(parents=True, exist_ok=True)
    subset = subset_root(data / "eval", data / "eval_cpu", p.cpu_videos)
    model = base / "confident_random.pth"
    from scripts import make_random_checkpoint

    try:
        make_random_checkpoint.main(["--out", str(model), *CONFIDENT_CHECKPOINT])
    except SystemExit as e:  # its one-line error is printed; the stage records the failure
        raise RuntimeError(f"make_random_checkpoint failed (exit {e.code})") from None
    record["data"] = {"videos": p.eval_videos, "frames_per_video": p.eval_frames, "size": list(p.eval_hw), "cpu_videos": subset}
    record["checkpoint"] = {"make_random_checkpoint": shlex.join(CONFIDENT_CHECKPOINT), "config": "official"}
    runs: dict[str, dict[str, Any]] = {}
    whole, part = data / "eval" / "2017", data / "eval_cpu" / "2017"
    plan = [("fp32", check.device, whole, [], {}), ("amp", check.device, whole, ["--amp"], {}), ("cpu_reference", "cpu", part, [], {})]
    if check.cuda:  # float32 without TF32 convolutions (PyTorch's default lets cuDNN use TF32): the numerics alone
        plan.append(("fp32_no_tf32", "cuda", part, [], {"NVIDIA_TF32_OVERRIDE": "0"}))
    for name, device, davis, extra, env in plan:
        result_file, stats_file = base / f"{name}.measure.json", base / f"{name}.stats.json"
        compile_flag = ["--compile"] if check.compile["eval"] and device != "cpu" else []
        args = ["--model", str(model), "--davis", str(davis), "--output", str(base / f"out_{name}"), "--device", device]
        args += ["--qam_activation", "relu", "--stats_json", str(stats_file), *extra, *compile_flag]
        run = check.wait(check.launch(f"eval_{name}", measured(result_file, "eval_davis.py", *args), env=check.env(**env)), deadline)
        runs[name] = keep(
            record,
            f"eval_{name}",
            run,
            device=device,
            precision=eval_precision(run["output"], device, bool(extra)),
            environment=env or None,
            **eval_record(check, read_json(result_file), read_json(stats_file)),
        )
        check.write_results()
    agreement = {}
    for name in ("fp32", "amp", "fp32_no_tf32"):
        if name in runs and runs[name]["status"] == "ok" and runs["cpu_reference"]["status"] == "ok":
            share = mask_agreement(base / f"out_{name}", base / "out_cpu_reference", subset)
            same = all(runs[name]["decisions"].get(v) == runs["cpu_reference"]["decisions"].get(v) for v in subset)
            agreement[name] = {
                **share,
                "decisions_equal": same,
                "decisions": {v: [runs[name]["decisions"].get(v), runs["cpu_reference"]["decisions"].get(v)] for v in subset},
            }
    record["device_vs_cpu"] = agreement
    for name, target in (("fp32", 0.999), ("amp", 0.995), ("fp32_no_tf32", 0.999)):
        found = agreement.get(name, {})
        share = found.get("share_equal")
        passed = share is not None and share >= target and found["decisions_equal"]
        goal = f">= {100 * target:.1f} % of pixels and the same memory decisions"
        if check.cuda:
            check.check(f"GPU masks = CPU masks, {name}", passed, share, goal)
        elif name in agreement:  # the CPU against itself: the comparison runs, it checks nothing about a GPU
            check.check(f"device masks = CPU masks, {name}", None, share, f"{SKIPPED_CPU}; on a GPU {goal}")
    official(check, record, deadline, model, runs)
    benchmark(check, record, deadline)


def official_repo(check: Check) -> Optional[Path]:
    value = check.args.official_repo
    if value is None:
        value = os.environ.get("QDMN_OFFICIAL_REPO") or (str(DEFAULT_OFFICIAL) if DEFAULT_OFFICIAL.exists() else "")
    return Path(value).expanduser() if value else None


def official(check: Check, record: dict[str, Any], deadline: float, model: Path, runs: dict[str, dict[str, Any]]) -> None:
    """The official code on the same device and videos: mask agreement and FPS (scripts/compare_official.py)."""
    repo = official_repo(check)
    if repo is None or not repo.exists():
        record["official"] = f"skipped (no official code: {repo or 'set --official_repo or run benchmarks/gpu_check_prepare.sh'})"
        return
    base = check.work / "eval" / "official"
    report = base / "report.json"
    cmd = python(
        "-m",
        "scripts.compare_official",
        "--official_repo",
        str(repo),
        "--model",
        str(model),
        "--davis",
        str(check.work / "data" / "eval" / "2017"),
        "--fix_eviction",
        "--device",
        check.device,
        "--work_dir",
        str(base),
        "--json",
        str(report),
        "--min_agreement",
        "0",
    )
    run = keep(record, "official", check.run("official", cmd, deadline))
    found = read_json(report)
    fps = found.get("fps") or {}
    official_fps = fps.get("official")
    ratio = {name: runs[name]["fps"] / official_fps for name in ("fp32", "amp") if official_fps and runs.get(name, {}).get("fps")}
    record["official"] = {
        "status": run["status"],
        "agreement_overall": found.get("overall"),
        "agreement_min": found.get("minimum"),
        "commit": (found.get("settings") or {}).get("commit"),
        "fps_official": official_fps,
        "fps_project_official_kernels": fps.get("project"),
        "fps_ratio_project_to_official": ratio,
    }
    check.check(
        f"official code on {check.device}: same masks",
        found.get("overall") is not None and found["overall"] >= 0.999,
        found.get("overall"),
        ">= 99.9 % of pixels",
    )
    check.check(f"FPS against the official code on {check.device}", bool(ratio) or None, ratio, "published (project fast path / official)")


def benchmark(check: Check, record: dict[str, Any], deadline: float) -> None:
    """scripts/benchmark.py (official configuration, 2 objects): FPS, stages, peak memory, FLOPs; float32 and --amp."""
    p, base, results = check.profile, check.work / "eval", {}
    h, w = map(str, p.eval_hw)
    for name, extra in (("fp32", []), ("amp", ["--amp"])):
        if check.left(deadline) < 20:
            results[name] = "skipped (stage time box)"
            continue
        out = base / f"benchmark_{name}.json"
        cmd = python(
            "-m",
            "scripts.benchmark",
            "--config",
            "official",
            "--height",
            h,
            "--width",
            w,
            "--objects",
            "2",
            "--frames",
            str(p.bench_frames),
            "--device",
            check.device,
            "--flop_frames",
            str(p.flop_frames),
            *extra,
            "--json",
            str(out),
            "--markdown",
            str(base / f"benchmark_{name}.md"),
        )
        keep(record, f"benchmark_{name}", check.run(f"benchmark_{name}", cmd, deadline))
        found = read_json(out).get("results") or [{}]
        results[name] = found[0]
    record["benchmark"] = results


# ----------------------------------------------------------------------------- 4: the demonstration model
def link_training_layout(data: Path, dest: Path) -> dict[str, int]:
    """One DAVIS root and one YouTube-VOS train root (symbolic links) over the wide and SynthVOS-style sets."""
    davis = dest / "davis" / "2017" / "trainval"
    youtube = dest / "youtube" / "train"
    counts = {"davis_videos": 0, "youtube_videos": 0}
    for source in ("wide", "synthstyle"):
        val = data / source / "val" / "2017" / "trainval"
        for kind in ("JPEGImages", "Annotations"):
            (davis / kind / "480p").mkdir(parents=True, exist_ok=True)
            for video in sorted((val / kind / "480p").iterdir()) if (val / kind / "480p").is_dir() else []:
                (davis / kind / "480p" / video.name).symlink_to(video)
                counts["davis_videos"] += kind == "JPEGImages"
        yv = data / source / "yv"
        pairs = (("JPEGImages", yv / "all_frames" / "valid_all_frames" / "JPEGImages"), ("Annotations", yv / "valid_gt" / "Annotations"))
        for kind, folder in pairs:
            (youtube / kind).mkdir(parents=True, exist_ok=True)
            for video in sorted(folder.iterdir()) if folder.is_dir() else []:
                (youtube / kind / video.name).symlink_to(video)
                counts["youtube_videos"] += kind == "JPEGImages"
    return counts


def demo_rate(check: Check) -> tuple[float, str]:
    """Iterations per second expected at the demo's size: stage 2's lite --amp rate scaled by pixels x batch."""
    p = check.profile
    measured_rate = ((check.results["stages"].get("train") or {}).get("runs") or {}).get("train_lite_amp", {}).get("its_per_s")
    if not measured_rate:
        return p.demo_rate_guess, f"guess ({p.demo_rate_guess} it/s: stage 2 measured nothing)"
    scale = (p.crop * p.crop * p.batch) / (p.demo_hw[0] * p.demo_hw[1] * p.demo_batch)
    return measured_rate * scale, f"stage 2 lite --amp {measured_rate:.2f} it/s x {scale:.3f} (pixels x batch)"


def newest_weights(folder: Path, run_id: str) -> tuple[int, Optional[Path]]:
    best: tuple[int, Optional[Path]] = (0, None)
    for path in folder.glob(f"saves/*/*_{run_id}_*.pth"):
        tail = path.stem.rsplit("_", 1)[-1]
        if tail.isdigit() and int(tail) > best[0]:
            best = (int(tail), path)
    return best


def export_demo(check: Check, record: dict[str, Any], iteration: int, source: Path) -> None:
    """float16 weights of ``source``, split into parts beside their manifest in the output folder."""
    from scripts import export_weights

    target = check.work / "demo" / "export" / DEMO_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        export_weights.main([str(source), str(target), "--half"])
    except SystemExit as e:
        raise RuntimeError(f"export of {source} failed (exit {e.code})") from None
    extra = {"iteration": iteration, "init": str(record["init"]), "elapsed_s": round(time.monotonic() - check.start, 1)}
    manifest = split_file(target, check.out, check.args.part_mib * 2**20, extra)
    record["exports"].append({"iteration": iteration, "elapsed_s": extra["elapsed_s"], "sha256": manifest["sha256"]})
    record["weights"] = {k: v for k, v in manifest.items() if k != "format"}
    check.log(f"[demo] iteration {iteration} exported: {DEMO_FILE} in {len(manifest['parts'])} parts, SHA-256 {manifest['sha256']}")
    check.write_results()


def stage_demo(check: Check, record: dict[str, Any], deadline: float, jobs: dict[str, Job]) -> None:
    p, base, data = check.profile, check.work / "demo", check.work / "data"
    record["init"] = check.args.demo_init
    record["exports"] = []
    reserve = 30.0 if not check.args.tiny else 10.0  # the save on SIGTERM and the last export
    if not wait_data(check, record, jobs, ["demo_wide", "demo_style"], deadline - reserve):
        raise RuntimeError("the demonstration model's training data could not be generated")
    record["data"] = link_training_layout(data, base / "data")
    rate, source = demo_rate(check)
    train_s = check.left(deadline) - reserve
    startup = 20.0 if not check.args.tiny else 0.0
    iterations = p.demo_iterations or max(2, int(rate * max(0.0, train_s - startup) * 0.9))
    save_every = max(1, int(rate * p.demo_export_every_s))
    record["plan"] = {
        "rate_estimate_its_per_s": rate,
        "rate_source": source,
        "iterations": iterations,
        "lr_decay_at": int(0.8 * iterations),
        "save_every": save_every,
        "training_seconds": round(train_s, 1),
    }
    result_file = base / "demo.measure.json"
    h, w = p.demo_hw
    flags = f"--stage 2 --amp --size {h} --crop_width {w} -b {p.demo_batch} -i {iterations} --steps {max(1, int(0.8 * iterations))} "
    flags += f"--lr 1e-4 --no_subset --save_every {save_every} --seed 5 --id demo_gpu --device {check.device}"
    workers = ["--num_workers", str(p.demo_workers)] if p.demo_workers is not None else []
    paths = ["--load_network", str(check.args.demo_init), "--davis_root", str(base / "data" / "davis"), "--yv_root",
             str(base / "data" / "youtube")]  # fmt: skip
    compile_flag = ["--compile"] if check.compile["train"] else []
    cmd = measured(result_file, "train.py", *flags.split(), *paths, *workers, *compile_flag)
    job = check.launch("demo_train", cmd, base)
    train_deadline = time.monotonic() + train_s
    exported, last_export = 0, time.monotonic()
    while job.proc.poll() is None and check.left(train_deadline) > 0:
        time.sleep(0.2 if check.args.tiny else 2.0)
        it, path = newest_weights(base, "demo_gpu")
        if path is not None and it > exported and time.monotonic() - last_export >= p.demo_export_every_s:
            export_demo(check, record, it, path)
            exported, last_export = it, time.monotonic()
    run = check.wait(job, train_deadline, grace=reserve - 5)
    if run["status"] == "timeout" and "stopped at iteration" in run["output"]:
        run["status"] = "ok (stopped at the time box)"
    it, path = newest_weights(base, "demo_gpu")
    if path is not None and it > exported:
        export_demo(check, record, it, path)
    saves = sorted(base.glob("saves/*/*_demo_gpu_*.pth"), key=lambda f: f.stat().st_mtime)
    saves = [s for s in saves if s.stem.rsplit("_", 1)[-1].isdigit()]
    rate_found = None
    if len(saves) > 1:
        its = [int(s.stem.rsplit("_", 1)[-1]) for s in (saves[0], saves[-1])]
        seconds = saves[-1].stat().st_mtime - saves[0].stat().st_mtime
        rate_found = (its[1] - its[0]) / seconds if seconds > 0 else None
    losses = [float(v) for v in re.findall(r"\[total_loss\s*\]: (\S+)", run["output"])]
    keep(
        record,
        "demo_train",
        run,
        iterations_done=it,
        its_per_s_between_saves=rate_found,
        losses_every_100=losses,
        **memory_fields(check, read_json(result_file)),
    )
    check.check(
        "demonstration model returned",
        bool(record["exports"]) or None,
        record.get("weights", {}).get("iteration"),
        "float16 weights in parts, joined by scripts/join_parts.py",
    )


# ----------------------------------------------------------------------------- summary
def cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if value is None:
        return "–"
    return str(value).replace("|", "/").replace("\n", " ")


def percent(share: Optional[float]) -> str:
    return "–" if share is None else f"{100 * share:.4f} %"


def markdown(results: dict[str, Any]) -> str:
    stages = results["stages"]
    env = stages.get("env") or {}
    lines = [
        "# GPU check",
        "",
        f"- command: `{results['command']}`",
        f"- device: {results['device']}" + (" (dry run, --tiny)" if results["tiny"] else ""),
        f"- git: {results['git']}",
        f"- started {results['started']}, {results.get('elapsed_s')} s of a {results['budget_s']} s budget",
        "",
    ]
    if isinstance(env.get("capability_line"), str) and env["capability_line"].startswith("|"):
        lines += [
            "| device | compute capability | bfloat16 | float16 | memory | SMs |",
            "|---|---|---|---|---|---|",
            env["capability_line"],
            "",
        ]
    versions = env.get("versions") or {}
    if versions:
        lines += [
            f"- torch {versions.get('torch')}, CUDA {versions.get('cuda')}, cuDNN {versions.get('cudnn')}, "
            f"NCCL {versions.get('nccl', '–')}, Python {versions.get('python')}, CPU {versions.get('cpu')} ({versions.get('cpus')})",
            "",
        ]
    lines += ["## Stages", "", "| stage | status | seconds | time box (s) |", "|---|---|---:|---:|"]
    for name in STAGES:
        if name in stages:
            s = stages[name]
            lines.append(f"| {name} | {cell(s.get('status'))} | {cell(s.get('seconds'))} | {cell(s.get('timebox_s'))} |")
    lines += ["", "## Checks", "", "| check | passed | value | target |", "|---|---|---|---|"]
    for name, c in results["checks"].items():
        passed = {True: "yes", False: "**NO**", None: "–"}[c["passed"]]
        lines.append(f"| {cell(name)} | {passed} | {cell(c['value'])} | {cell(c['target'])} |")
    train = (stages.get("train") or {}).get("runs") or {}
    rows = [(k.removeprefix("train_"), v) for k, v in train.items() if k.startswith("train_")]
    if rows:
        lines += [
            "",
            "## Training (train.py --stage 2)",
            "",
            "| run | status | precision | it/s | loss first → last | peak CUDA MiB | GradScaler scale |",
            "|---|---|---|---:|---|---:|---:|",
        ]
        for name, r in rows:
            lines.append(
                f"| {name} | {cell(r.get('status'))} | {cell(r.get('precision'))} | {cell(r.get('its_per_s'))} | "
                f"{cell(r.get('loss_first'))} → {cell(r.get('loss_last'))} | {cell(r.get('peak_cuda_allocated_mib'))} | "
                f"{cell(r.get('scaler_scale'))} |"
            )
    resume = (stages.get("train") or {}).get("resume")
    if resume:
        lines += [
            "",
            f"Resume ({resume['precision']}, {resume['iterations']} = {resume['stopped_at']} + "
            f"{resume['iterations'] - resume['stopped_at']} iterations): **{resume['verdict']}**; resumed vs uninterrupted: "
            f"{resume['resume_vs_full']['tensors_differing']} of {resume['resume_vs_full']['tensors']} tensors differ; "
            f"rerun vs uninterrupted: {resume['rerun_vs_full']['tensors_differing']}.",
        ]
    ev = stages.get("eval") or {}
    eval_runs = {k.removeprefix("eval_"): v for k, v in (ev.get("runs") or {}).items() if k.startswith("eval_")}
    if eval_runs:
        lines += [
            "",
            "## Evaluation (eval_davis.py)",
            "",
            "| run | device | status | FPS | frames | peak CUDA MiB | peak RSS MiB |",
            "|---|---|---|---:|---:|---:|---:|",
        ]
        for name, r in eval_runs.items():
            lines.append(
                f"| {name} | {cell(r.get('device'))} | {cell(r.get('status'))} | {cell(r.get('fps'))} | {cell(r.get('frames'))} | "
                f"{cell(r.get('peak_cuda_allocated_mib'))} | {cell(r.get('peak_rss_mib'))} |"
            )
        for name, a in (ev.get("device_vs_cpu") or {}).items():
            lines.append(
                f"\n{name} against the CPU: {percent(a.get('share_equal'))} of {a.get('pixels')} pixels equal "
                f"({a.get('frames')} frames), memory decisions equal: {a.get('decisions_equal')}."
            )
        off = ev.get("official")
        if isinstance(off, dict):
            lines += [
                "",
                f"Official code ({cell(off.get('commit'))}) on the same device: agreement {percent(off.get('agreement_overall'))}, "
                f"FPS official {cell(off.get('fps_official'))}, "
                f"project with --official_kernels {cell(off.get('fps_project_official_kernels'))}, "
                f"ratio project/official {cell(off.get('fps_ratio_project_to_official'))}.",
            ]
        elif off:
            lines += ["", f"Official code: {off}."]
        for name, b in (ev.get("benchmark") or {}).items():
            if isinstance(b, dict) and b:
                lines.append(
                    f"\nscripts/benchmark.py {name}: {cell(b.get('fps'))} FPS over {b.get('frames')} frames, peak CUDA "
                    f"{cell(b.get('peak_cuda_mib'))} MiB, {cell(b.get('gflop_per_frame'))} GFLOP/frame."
                )
    demo = stages.get("demo") or {}
    if demo.get("plan"):
        weights = demo.get("weights") or {}
        run = (demo.get("runs") or {}).get("demo_train", {})
        lines += [
            "",
            "## Demonstration model",
            "",
            f"- from {demo.get('init')}, data {demo.get('data')}",
            f"- plan: {demo['plan']}",
            f"- run: {cell(run.get('status'))}, {cell(run.get('iterations_done'))} iterations, "
            f"{cell(run.get('its_per_s_between_saves'))} it/s, peak CUDA {cell(run.get('peak_cuda_allocated_mib'))} MiB",
            f"- returned: {weights.get('file')} at iteration {weights.get('iteration')}, {weights.get('size')} bytes in "
            f"{len(weights.get('parts') or [])} parts, SHA-256 {weights.get('sha256')}",
            "- join here: `python -m scripts.join_parts <folder>/qdmn_lite_gpu.json --out saves/qdmn_lite_gpu.pth`",
        ]
    for name in STAGES:
        error = (stages.get(name) or {}).get("error")
        if error:
            lines += ["", f"**{name} failed**: {cell(error)}"]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- main
def parse_args(argv: Optional[list[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=os.environ.get("OUT") or None, help="output folder (default: $OUT)")
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda", help="cuda on the GPU machine; cpu for the dry run")
    parser.add_argument("--tiny", action="store_true", help="tiny sizes and 1-2 iterations: the dry run")
    parser.add_argument("--stages", default=",".join(STAGES), help="comma-separated subset of env,train,eval,demo (env always runs)")
    parser.add_argument("--budget", type=int, default=None, help="seconds for the whole run (default 540; --tiny 1800)")
    parser.add_argument("--compile", action="store_true", help="pass --compile to train.py and eval_davis.py where their --help lists it")
    parser.add_argument("--wheels", type=Path, default=ROOT / ".whl", help="folder of wheels to install first")
    parser.add_argument(
        "--official_repo",
        default=None,
        help="official code for the comparison (default: $QDMN_OFFICIAL_REPO, else .official/qdmn-official.tar; '' skips it)",
    )
    parser.add_argument("--demo_init", type=Path, default=SHIPPED, help="weights the demonstration model continues from")
    parser.add_argument("--part_mib", type=int, default=PART_BYTES // 2**20, help="largest part of the returned weights, in MiB")
    parser.add_argument("--work", type=Path, default=None, help="folder for data, checkpoints and logs (default: a temporary one, removed)")
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        parser.error(f"--stages: unknown {unknown}; choose from {','.join(STAGES)}")
    args.stages = [s for s in STAGES if s in stages or s == "env"]
    if args.out is None:
        parser.error("--out is required when $OUT is not set")
    if args.budget is not None and args.budget < 30:
        parser.error("--budget must be at least 30 seconds")
    if not 1 <= args.part_mib <= 16:
        parser.error("--part_mib must be 1-16 (a returned file is at most 16 MiB)")
    return args


OUR_FILES = re.compile(
    rf"^({re.escape(RESULTS_JSON)}|{re.escape(RESULTS_MD)}|{re.escape(LOG)}|"
    rf"{re.escape(DEMO_FILE)}\.part\d+|{re.escape(Path(DEMO_FILE).stem)}\.json)$"
)


def prepare_out(out: Path) -> None:
    """The output folder: new, empty, or holding only this script's files (which a new run removes).

    A file is this script's when it has one of its names and the folder's write record shows
    this project wrote it, unchanged since (util/write_gate.py); anything else stops the run."""
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: not a folder; --out takes a folder")
    make_folder(out, "--out")
    names = sorted(p.name for p in out.iterdir() if p.name != RECORD_NAME)
    ours = [n for n in names if OUR_FILES.match(n) and written_by_project(out / n)]
    foreign = [n for n in names if n not in ours]
    if foreign:
        raise UserError(f"{out}: holds files this script did not write ({', '.join(foreign[:3])}); choose an empty --out")
    for name in ours:
        remove(out / name, "--out")


def stop_on_signal(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


@exit_on_user_error
def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    protect_inputs([p for p in (args.demo_init if "demo" in args.stages else None, args.wheels, args.official_repo) if p])
    if args.demo_init and "demo" in args.stages and not Path(args.demo_init).is_file():
        raise UserError(f"{args.demo_init}: weights not found; check --demo_init")
    if args.work is not None and args.work.exists() and (not args.work.is_dir() or any(args.work.iterdir())):
        raise UserError(f"{args.work}: not an empty folder; --work takes a new or empty folder")
    prepare_out(args.out)
    work = args.work or Path(tempfile.mkdtemp(prefix="qdmn_gpu_check_"))
    check = Check(args, TINY if args.tiny else FULL, args.out, work)
    check.log(
        f"gpu_check: device {args.device}{' (tiny)' if args.tiny else ''}, stages {','.join(args.stages)}, "
        f"budget {check.results['budget_s']} s, work {work}"
    )
    signal.signal(signal.SIGTERM, stop_on_signal)  # stop the commands started, record what was done
    try:
        jobs = start_data(check, args.stages)
        bodies = {
            "env": stage_env,
            "train": lambda c, r, d: stage_train(c, r, d, jobs),
            "eval": lambda c, r, d: stage_eval(c, r, d, jobs),
            "demo": lambda c, r, d: stage_demo(c, r, d, jobs),
        }
        for name in args.stages:
            run_stage(check, name, bodies[name])
    finally:
        check.stop_all()
        check.write_results()
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    failed = [c for c, v in check.results["checks"].items() if v["passed"] is False]
    bad = [s for s, v in check.results["stages"].items() if v["status"] != "ok"]
    check.log(
        f"gpu_check done in {check.results['elapsed_s']} s: stages not ok {bad or 'none'}, checks failed {failed or 'none'}; "
        f"results in {args.out}"
    )
    return 0 if not failed and not bad else 1


if __name__ == "__main__":
    sys.exit(main())
