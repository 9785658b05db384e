#!/usr/bin/env python
"""Training speed: iterations per second and peak memory, float32 against --amp, per part.

Runs the real stage-2 training step (``QDMNTrainer.do_pass``: 3-frame clips, two objects,
the bootstrapped CE + QAM loss, Adam) on the real data pipeline (``VOSDataset`` with the
stage-2 augmentation) over a generated DAVIS-layout set of 480p videos, each measurement
in a fresh process (peak memory of that run alone). Parts: data loading (waiting for the
next batch), forward (clip forward and losses), backward, optimizer.

    python -m scripts.benchmark_train --configs lite,official --batch 2 --size 384 --iterations 6 \\
        --json benchmarks/train_cpu.json --markdown benchmarks/train_cpu.md

``--amp`` variants run with bfloat16 on a CPU only where it is native (otherwise they are
reported as skipped: emulated bfloat16 would only measure the emulation; ``--force_amp``
runs them anyway), float16 with loss scaling on CUDA.

``--compile`` adds two runs of ``train.py --compile`` to each eager one: the first with an
empty inductor cache, the second with the cache it left. Their first (warm-up) iteration
less a timed one is the compile time: the first call's, and a cache-warm start's.
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
from typing import Optional

import torch

if not __package__:  # `python scripts/NAME.py`: the packages are in the repository root, not in scripts/
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from model.compile import CACHE_ENV
from model.config import PRESETS
from util.errors import UserError, exit_on_user_error
from util.profiling import write_report

ROOT = Path(__file__).resolve().parents[1]

PARTS = ("data loading", "forward", "backward", "optimizer")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--configs", default="lite,official", help="comma-separated model configurations")
    p.add_argument("--batch", type=int, default=8, help="clips per iteration (official: 8 per GPU; use 1-2 on a CPU)")
    p.add_argument("--size", type=int, default=384, help="crop size (stage-2 recipe: 384)")
    p.add_argument("--iterations", type=int, default=6, help="timed iterations, after --warmup")
    p.add_argument("--warmup", type=int, default=2, help="untimed iterations first")
    p.add_argument("--precisions", default="float32,amp", help="float32, amp or both")
    p.add_argument("--memory_formats", default="auto",
                   help="comma-separated layouts: auto, channels_last, contiguous (train.py --memory_format)")
    p.add_argument("--device", default=None, help="cpu, cuda... (default: cuda when available)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: the CPUs this process may use)")
    p.add_argument("--data_height", type=int, default=480, help="height of the generated videos (480p, as DAVIS)")
    p.add_argument("--data_width", type=int, default=864, help="width of the generated videos")
    p.add_argument("--workers", type=int, default=0, help="data-loader workers (0: load in the training process)")
    p.add_argument("--compile", action="store_true", help="also measure --compile: a cold-cache run and a warm-cache run")
    p.add_argument("--force_amp", action="store_true", help="run the amp variants even on a CPU without native bfloat16")
    p.add_argument("--json", default="benchmarks/train_latest.json")
    p.add_argument("--markdown", default="benchmarks/train_latest.md")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)  # internal: data folder
    p.add_argument("--config", default=None, help=argparse.SUPPRESS)  # internal: one configuration
    p.add_argument("--amp", action="store_true", help=argparse.SUPPRESS)  # internal: one precision
    p.add_argument("--memory_format", default="auto", help=argparse.SUPPRESS)  # internal: one layout
    p.add_argument("--child_compile", action="store_true", help=argparse.SUPPRESS)  # internal: this child compiles
    return p.parse_args(argv)


def write_data(root: Path, height: int, width: int) -> Path:
    """Six generated videos in the DAVIS 2017 layout (480p by default: the stage-2 recipe crops 384 out of 480p frames)."""
    from datasets.synthetic import write_davis2017

    write_davis2017(root, seed=11, num_videos=6, num_frames=8, height=height, width=width, max_objects=2)
    return root


def measure(data: Path, args: argparse.Namespace) -> dict:
    """Child process: time ``args.iterations`` training steps of one configuration and precision."""
    from torch.utils.data import DataLoader

    from datasets.sampling import ResumableSampler, SeededDataset
    from datasets.training_data import vos_data
    from model.model import QDMNTrainer, use_channels_last
    from model.network import QDMN
    from util.hardware import amp_dtype, cpu_description, resolve_device, set_threads
    from util.profiling import StageTimer, peak_rss_mib

    threads = set_threads(args.threads)
    device = resolve_device(args.device)
    torch.manual_seed(0)
    net = QDMN(PRESETS[args.config], top_k=None).to(device)
    amp = amp_dtype(device) if args.amp else None
    channels_last = use_channels_last(args.memory_format, amp is not None)
    trainer = QDMNTrainer(net, 2e-5, [10**6], 0.1, device, amp_dtype=amp, channels_last=channels_last, compile=args.child_compile)
    timer = StageTimer(device)
    stages = vos_data(data / "YouTube", data, args.size, use_subset=False, log=lambda _: None)
    sampler = ResumableSampler(stages.dataset, 1, 0, seed=0)
    loader = DataLoader(SeededDataset(stages.dataset), args.batch, sampler=sampler, num_workers=args.workers, drop_last=True)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    batches, it, start = iter(loader), 0, 0.0
    total = args.warmup + args.iterations
    first_iteration = 0.0
    while it < total:
        began = time.perf_counter()
        if it == args.warmup:
            timer.seconds.clear()
            trainer.part = timer.section
            start = time.perf_counter()
        with timer.section("data loading"):
            try:
                batch = next(batches)
            except StopIteration:
                sampler.set_epoch(it)
                batches = iter(loader)
                batch = next(batches)
        trainer.do_pass(batch, it)
        if it == 0:
            first_iteration = time.perf_counter() - began  # with --compile: compiling the step
        it += 1
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    wall = time.perf_counter() - start
    return {
        "config": args.config,
        "precision": str(amp).removeprefix("torch.") if amp else "float32",
        "memory_format": "channels_last" if channels_last else "contiguous",
        "batch": args.batch,
        "size": args.size,
        "iterations": args.iterations,
        "compile": args.child_compile,
        "first_iteration_s": first_iteration,
        "seconds": wall,
        "it_per_s": args.iterations / wall,
        "parts_s_per_it": {part: timer.seconds.get(part, 0.0) / args.iterations for part in PARTS},
        "peak_rss_mib": peak_rss_mib(),
        "peak_cuda_mib": torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_description(),
        "threads": threads,
        "load_average_1min": os.getloadavg()[0],
    }


def run_child(data: Path, args: argparse.Namespace, config: str, amp: bool, memory_format: str, cache: Optional[Path] = None) -> dict:
    """One measurement in a fresh process; ``cache``: with --compile, this inductor cache."""
    argv = [sys.executable, "-m", "scripts.benchmark_train", "--child", str(data), "--config", config, "--memory_format", memory_format]
    argv += ["--batch", str(args.batch), "--size", str(args.size)]
    argv += ["--iterations", str(args.iterations), "--warmup", str(args.warmup), "--workers", str(args.workers)]
    argv += ["--amp"] if amp else []
    argv += ["--child_compile"] if cache is not None else []
    argv += ["--device", args.device] if args.device else []
    argv += ["--threads", str(args.threads)] if args.threads else []
    env = {**os.environ, CACHE_ENV: str(cache)} if cache is not None else None
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark child failed ({config}, amp={amp}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def markdown(results: list[dict], skipped: list[str]) -> str:
    first = results[0] if results else {}
    lines = [f"**Training step, {first.get('device', '?')} ({first.get('device_name', '?')}, {first.get('threads', '?')} threads)**", ""]
    lines.append("| config | precision | layout | batch | crop | it/s | speed-up | peak RSS (MiB) | peak CUDA (MiB) | "
                 + " | ".join(f"{p} (s/it)" for p in PARTS) + " |")
    lines.append("|---|---|---|---:|---:|---:|---:|---:|---:|" + "---:|" * len(PARTS))
    # the speed-up is against float32 in the official code's layout (contiguous) when measured, else any float32 row
    base: dict[str, float] = {}
    for r in sorted(results, key=lambda r: r.get("memory_format") != "contiguous"):
        if r["precision"] == "float32":
            base.setdefault(r["config"], r["it_per_s"])
    for r in results:
        speedup = f"{r['it_per_s'] / base[r['config']]:.2f}×" if r["config"] in base else "–"
        cuda = f"{r['peak_cuda_mib']:.0f}" if r.get("peak_cuda_mib") else "–"
        parts = " | ".join(f"{r['parts_s_per_it'][p]:.3f}" for p in PARTS)
        lines.append(f"| {r['config']} | {r['precision']} | {r.get('memory_format', 'contiguous')} | {r['batch']} | {r['size']} | "
                     f"{r['it_per_s']:.3f} | {speedup} | "
                     f"{r['peak_rss_mib']:.0f} | {cuda} | {parts} |")
    lines += ["", *[f"* {s}" for s in skipped]] if skipped else []
    compiled = [r for r in results if "compiled_warm" in r]
    if compiled:
        lines += ["", "--compile (it/s leaves compiling out; compile seconds: the first iteration less a timed one, with an empty "
                  "inductor cache and with the cache it left):", "",
                  "| config | precision | layout | eager it/s | compiled it/s | compiled / eager | first-call compile (s) | "
                  "cache-warm start (s) |", "|---|---|---|---:|---:|---:|---:|---:|"]
        for r in compiled:
            warm, cold = r["compiled_warm"], r["compiled_cold"]
            lines.append(f"| {r['config']} | {r['precision']} | {r.get('memory_format', 'contiguous')} | {r['it_per_s']:.3f} | "
                         f"{warm['it_per_s']:.3f} | {warm['it_per_s'] / r['it_per_s']:.2f}× | {compile_seconds(cold):.1f} | "
                         f"{compile_seconds(warm):.1f} |")
    loads = [x["load_average_1min"] for r in results for x in (r, r.get("compiled_cold"), r.get("compiled_warm"))
             if x and "load_average_1min" in x]
    if loads:
        lines += ["", f"Load average (1 min) at the end of each run: {min(loads):.1f} to {max(loads):.1f}, on {os.cpu_count()} CPUs."]
    return "\n".join(lines) + "\n"


def compile_seconds(result: dict) -> float:
    """The first (warm-up) iteration less a timed one: what compiling the step cost."""
    return max(0.0, result["first_iteration_s"] - result["seconds"] / result["iterations"])


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.child:
        print(json.dumps(measure(Path(args.child), args)))
        return
    configs = [c for c in args.configs.split(",") if c]
    precisions = [p for p in args.precisions.split(",") if p]
    formats = [f for f in args.memory_formats.split(",") if f]
    if not formats or any(f not in ("auto", "channels_last", "contiguous") for f in formats):
        raise UserError("--memory_formats: auto, channels_last, contiguous")
    if not configs or any(c not in PRESETS for c in configs):
        raise UserError(f"--configs: choose from {sorted(PRESETS)}")
    if not precisions or any(p not in ("float32", "amp") for p in precisions):
        raise UserError("--precisions: float32, amp or both")
    if args.compile and args.warmup < 1:
        raise UserError("--compile needs --warmup 1 or more: the first iteration compiles")
    if args.batch < 1 or args.iterations < 1 or args.size < 32 or args.size % 16 or min(args.data_height, args.data_width) < args.size:
        raise UserError("--batch and --iterations must be >= 1, --size a multiple of 16 of at least 32, the videos at least --size")
    from util.hardware import native_cpu_bfloat16, resolve_device, torch_cpu_capability

    device = resolve_device(args.device)
    results, skipped = [], []
    with tempfile.TemporaryDirectory() as tmp:
        data = write_data(Path(tmp) / "data", args.data_height, args.data_width)
        for config in configs:
            for precision in precisions:
                amp = precision == "amp"
                if amp and device.type == "cpu" and not native_cpu_bfloat16() and not args.force_amp:
                    skipped.append(f"{config} --amp: skipped, this CPU has no native bfloat16 ({torch_cpu_capability()}); "
                                   "train.py --amp runs float32 here")
                    continue
                for memory_format in formats:
                    print(f"measuring {config} {precision} {memory_format} ...", file=sys.stderr)
                    result = run_child(data, args, config, amp, memory_format)
                    if args.compile:
                        cache = Path(tmp) / f"inductor_{config}_{precision}_{memory_format}"  # empty, then warm
                        print("  compiled, empty inductor cache ...", file=sys.stderr)
                        result["compiled_cold"] = run_child(data, args, config, amp, memory_format, cache)
                        print("  compiled, warm inductor cache ...", file=sys.stderr)
                        result["compiled_warm"] = run_child(data, args, config, amp, memory_format, cache)
                    results.append(result)
    internal = ("child", "config", "amp", "memory_format", "child_compile")
    report = {"args": {k: v for k, v in vars(args).items() if k not in internal}, "results": results,
              "skipped": skipped, "torch": torch.__version__}
    table = markdown(results, skipped)
    write_report(report, args.json, table, args.markdown)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main(sys.argv[1:])
