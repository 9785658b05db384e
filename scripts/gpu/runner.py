"""The GPU check's run: its context, its commands (each in its own process group, its log through the write gate),
a stage's time box and record, and the data generated in the background from the start (docs/GPU_CHECK.md)."""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Optional

from scripts.gpu.profiles import LOG, RESULTS_JSON, RESULTS_MD, ROOT, SKIPPED_CPU, Profile
from scripts.gpu.report import markdown
from util.write_gate import make_folder, write_text, writing

MAX_LOG_BYTES = 8 * 2**20
RESERVE_S = 8  # left at the end of the budget for the last results


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
