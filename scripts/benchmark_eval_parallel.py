#!/usr/bin/env python
"""Evaluation throughput with N processes × T threads on this machine: ``eval_davis.py`` as one
process with every thread against ``torchrun --nproc_per_node N`` with fewer threads each.

Generates a DAVIS 2017 val layout per configuration (random weights: speed does not depend
on them), runs the real command line for each layout in a fresh process group, and reports
the command's wall time (start-up and model loading included), its throughput, and the
in-loop throughput the run's summary reports (``--stats_json``).

    python -m scripts.benchmark_eval_parallel --configs lite,official --layouts 1x2,2x1 \\
        --json benchmarks/eval_parallel_cpu.json --markdown benchmarks/eval_parallel_cpu.md
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if not __package__:  # `python scripts/NAME.py`: the packages are in the repository root, not in scripts/
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from datasets.synthetic import write_davis2017
from util.errors import UserError, exit_on_user_error
from util.hardware import available_cpus, cpu_description
from util.profiling import write_report

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SIZES = {"lite": "240x432", "official": "480x864"}


def layout_arg(text: str) -> tuple[int, int]:
    processes, _, threads = text.partition("x")
    if not (processes.isdigit() and threads.isdigit() and int(processes) > 0 and int(threads) > 0):
        raise argparse.ArgumentTypeError(f"{text!r}: use PROCESSESxTHREADS, e.g. 2x1")
    return int(processes), int(threads)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--configs", default="lite,official", help="comma-separated model configurations")
    p.add_argument("--layouts", default="1x2,2x1", help="comma-separated PROCESSESxTHREADS")
    p.add_argument("--videos", type=int, default=4, help="generated videos (an even split over 2 processes)")
    p.add_argument("--frames", default="lite:30,official:8", help="frames per video, per configuration")
    p.add_argument("--sizes", default=",".join(f"{k}:{v}" for k, v in DEFAULT_SIZES.items()), help="HxW per configuration")
    p.add_argument("--json", default="benchmarks/eval_parallel_latest.json")
    p.add_argument("--markdown", default="benchmarks/eval_parallel_latest.md")
    return p.parse_args(argv)


def per_config(text: str, cast: type) -> dict[str, object]:
    return {name: cast(value) for name, value in (item.split(":", 1) for item in text.split(","))}


def make_data(root: Path, config: str, videos: int, frames: int, size: str) -> tuple[Path, Path]:
    height, width = (int(x) for x in size.split("x"))
    write_davis2017(root, seed=3, num_videos=videos, num_frames=frames, height=height, width=width, max_objects=2, splits=("val",))
    ckpt = root / f"{config}.pth"
    flags = ["--official"] if config == "official" else ["--config", config]
    subprocess.run([sys.executable, "-m", "scripts.make_random_checkpoint", "--out", str(ckpt), *flags], cwd=ROOT, check=True,
                   capture_output=True)
    return root / "2017", ckpt


def run_layout(davis: Path, ckpt: Path, out: Path, processes: int, threads: int) -> dict[str, object]:
    stats = out.with_suffix(".json")
    args = ["eval_davis.py", "--model", str(ckpt), "--davis", str(davis), "--output", str(out), "--device", "cpu",
            "--threads", str(threads), "--stats_json", str(stats)]
    launcher = [sys.executable] if processes == 1 else [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(processes)]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    start = time.perf_counter()
    proc = subprocess.run([*launcher, *args], cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise UserError(f"{processes}x{threads} failed: {(proc.stderr.strip().splitlines() or ['?'])[-1]}")
    summary = json.loads(stats.read_text())
    rss = [p["peak_rss_mib"] for p in summary["processes"]] if "processes" in summary else [summary["peak_rss_mib"]]
    frames = int(summary["frames"])
    return {
        "processes": processes,
        "threads": threads,
        "frames": frames,
        "command_seconds": wall,
        "command_fps": frames / wall,
        "loop_fps": summary["fps"],
        "peak_rss_mib_per_process": max(rss),
    }


def table(report: dict) -> str:
    lines = [
        f"Machine: {report['machine']}; {report['cpus']} CPUs available; {report['note']}",
        "",
        "| configuration | frames (HxW) | processes × threads | command wall (s) | frames/s, command | frames/s, in the loop "
        "| peak RSS per process (MiB) |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for r in report["runs"]:
        lines.append(f"| {r['config']} | {r['frames']} ({r['size']}) | {r['processes']} × {r['threads']} | {r['command_seconds']:.1f} | "
                     f"{r['command_fps']:.2f} | {r['loop_fps']:.2f} | {r['peak_rss_mib_per_process']:.0f} |")
    return "\n".join(lines) + "\n"


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    frames, sizes = per_config(args.frames, int), per_config(args.sizes, str)
    layouts = [layout_arg(x) for x in args.layouts.split(",")]
    runs = []
    with tempfile.TemporaryDirectory(prefix="qdmn_eval_parallel_") as tmp:
        for config in args.configs.split(","):
            davis, ckpt = make_data(Path(tmp) / config, config, args.videos, int(frames[config]), str(sizes[config]))
            for processes, threads in layouts:
                out = Path(tmp) / f"{config}_{processes}x{threads}"
                result = run_layout(davis, ckpt, out, processes, threads)
                runs.append({"config": config, "size": sizes[config], **result})
                print(f"{config} {processes}x{threads}: {result['command_fps']:.2f} frames/s", flush=True)
    report = {
        "machine": cpu_description(),
        "cpus": available_cpus(),
        "note": "random weights; one command per row, run one after another",
        "command": "python -m scripts.benchmark_eval_parallel " + " ".join(argv if argv is not None else sys.argv[1:]),
        "runs": runs,
    }
    write_report(report, args.json, table(report), args.markdown)


if __name__ == "__main__":
    main()
