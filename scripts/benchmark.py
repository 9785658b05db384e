"""Benchmark the evaluation pipeline on a generated video: speed, stages, memory, FLOPs.

Each measurement runs in a fresh child process, so peak resident memory belongs to
that run alone. The parent generates the video (written to disk, then streamed back by
the pipeline exactly as in evaluation), runs the children and writes a JSON file and a
markdown table.

``--compile`` adds two runs of ``--compile`` (docs/COMPILE.md) to each eager one: the first
with an empty inductor cache (its compile seconds: the first call's), the second with the
cache it left (compile seconds: a cache-warm start; its FPS is the compiled FPS). FPS
always leaves compiling out. ``--official_repo`` also runs the official code
(``eval_davis.py`` of a clone of yongliu20/QDMN, on the CPU as ``scripts/compare_official.py``
runs it) on the same video with the same weights and threads, for a side-by-side table.

Examples::

    # full-size speed on this machine
    python -m scripts.benchmark --height 480 --width 864 --objects 2 --frames 20
    # memory against video length (streaming keeps it flat)
    python -m scripts.benchmark --config lite --height 64 --width 112 --lengths 100,2000
    # eager, compiled and the official code side by side (one thread, bfloat16 where native)
    python -m scripts.benchmark --config official --height 240 --width 432 --frames 12 --threads 1 --amp --compile \
        --official_repo ~/src/QDMN
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

import numpy as np
import torch

if not __package__:  # `python scripts/NAME.py`: the packages are in the repository root, not in scripts/
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from model.compile import CACHE_ENV
from model.config import PRESETS
from util.errors import UserError, exit_on_user_error
from util.profiling import write_report

ROOT = Path(__file__).resolve().parents[1]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", choices=sorted(PRESETS), default="official", help="model configuration (random weights)")
    p.add_argument("--height", type=int, default=480)
    p.add_argument("--width", type=int, default=864)
    p.add_argument("--objects", type=int, default=2)
    p.add_argument("--frames", type=int, default=20, help="video length (ignored with --lengths)")
    p.add_argument("--lengths", default=None, help="comma-separated lengths to compare peak memory, e.g. 100,2000")
    p.add_argument("--device", default=None, help="cpu, cuda... (default: cuda when available)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: the CPUs this process may use)")
    p.add_argument("--amp", action="store_true", help="mixed precision (float16 on CUDA; bfloat16 on a CPU with native bfloat16)")
    p.add_argument("--force_amp", action="store_true", help="with --amp: bfloat16 even on a CPU without native bfloat16")
    p.add_argument("--official_kernels", action="store_true", help="NCHW and the dense top-k readout (the straightforward path)")
    p.add_argument("--compile", action="store_true", help="also measure --compile: a cold-cache run and a warm-cache run")
    p.add_argument("--official_repo", type=Path, default=None, help="also run the official code (a yongliu20/QDMN clone); official config")
    p.add_argument("--flop_frames", type=int, default=3, help="frames whose FLOPs are counted (0: skip)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default="benchmarks/latest.json", help="where to write the results")
    p.add_argument("--markdown", default="benchmarks/latest.md", help="where to write the table")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)  # internal: data folder to measure
    p.add_argument("--child_compile", action="store_true", help=argparse.SUPPRESS)  # internal: this child compiles
    return p.parse_args(argv)


# ----------------------------------------------------------------------------- data
VIDEO = "bench"


def frames_folder(root: Path) -> Path:
    return root / "trainval" / "JPEGImages" / "480p" / VIDEO


def annotation(root: Path) -> Path:
    return root / "trainval" / "Annotations" / "480p" / VIDEO / "00000.png"


def write_video(root: Path, frames: int, height: int, width: int, objects: int, seed: int) -> Path:
    """A generated video in the DAVIS 2017 val layout (frames + first annotation) under ``root``."""
    from datasets.synthetic import VideoSpec, render_video
    from util.image_io import save_palette_png

    rng = np.random.default_rng(seed)
    clip = min(frames, 200)  # render at most 200 distinct frames, then play them back and forth
    images, masks = render_video(rng, VideoSpec(clip, height, width, objects))
    folder = frames_folder(root)
    folder.mkdir(parents=True)
    import cv2

    for t in range(frames):
        k = t % (2 * clip - 1) if clip > 1 else 0
        k = k if k < clip else 2 * clip - 1 - k
        cv2.imwrite(str(folder / f"{t:05d}.jpg"), cv2.cvtColor(images[k], cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
    annotation(root).parent.mkdir(parents=True)
    save_palette_png(annotation(root), masks[0])
    imsets = root / "trainval" / "ImageSets" / "2017"
    imsets.mkdir(parents=True)
    (imsets / "val.txt").write_text(f"{VIDEO}\n")
    return root


# ----------------------------------------------------------------------------- child
def measure(data: Path, args: argparse.Namespace) -> dict:
    """Run the real evaluation loop on ``data``; return timings and memory (child process)."""
    from datasets.video_source import ImageFolderFrames, VideoSource
    from evaluation.masks import PALETTE_PNG
    from evaluation.propagation import prepare_network
    from evaluation.runner import run_evaluation
    from model.memory_policy import DAVIS_MEMORY
    from model.network import random_network
    from util.hardware import amp_dtype, cpu_model, effective_amp, native_cpu_bfloat16, resolve_device, set_threads, torch_cpu_capability
    from util.image_io import list_images
    from util.profiling import StageTimer, measure_matmul_gflops, peak_rss_mib

    set_threads(args.threads)
    device = resolve_device(args.device)
    amp = effective_amp(device, args.amp, args.force_amp)  # the precision this run uses
    network = prepare_network(random_network(args.config, args.seed, "sigmoid"), device, args.official_kernels, amp, args.child_compile)
    timer = StageTimer(device)
    timer.instrument(network)

    frames = ImageFolderFrames(list_images(frames_folder(data)))
    video = VideoSource(VIDEO, frames, {0: annotation(data)}, numbered_outputs=True)
    original_items = video.items

    def timed_items():
        items = original_items()
        while True:
            start = time.perf_counter()
            try:
                item = next(items)
            except StopIteration:
                return
            timer.seconds["reading frames"] += time.perf_counter() - start
            yield item

    video.items = timed_items  # type: ignore[method-assign]
    mask_format = dataclasses.replace(PALETTE_PNG, write=timer.wrap(PALETTE_PNG.write, "writing masks", sync=False))
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    with tempfile.TemporaryDirectory() as out, torch.inference_mode():
        start = time.perf_counter()
        stats = run_evaluation(network, DAVIS_MEMORY, [video], Path(out), device, mask_format, amp=amp)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        wall = time.perf_counter() - start - stats.compile_seconds  # compiling is reported apart
    result = {
        "frames": stats.frames,
        "seconds": wall,
        "fps": stats.frames / wall,
        "compile": args.child_compile,
        "compile_seconds": stats.compile_seconds,
        "stages_s_per_frame": {k: v / stats.frames for k, v in sorted(timer.seconds.items())},
        "peak_rss_mib": peak_rss_mib(),
        "peak_cuda_mib": torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model(),
        "cpu_capability": torch_cpu_capability(),
        "native_bfloat16": native_cpu_bfloat16(),
        "threads": torch.get_num_threads(),
        "precision": str(amp_dtype(device) if amp else torch.float32).removeprefix("torch."),
        "kernels": "official" if args.official_kernels else "fast",
        "load_average_1min": os.getloadavg()[0],  # other processes on the machine: quiet when below 1 or so
    }
    if args.flop_frames > 0:
        result["gflop_per_frame"] = count_gflops(network, video, device, args.flop_frames, amp)
        dtype = amp_dtype(device) if amp else torch.float32
        # Emulated bfloat16 (no native instructions) takes ~76 s per 2048^2 matmul: measure a small one there.
        emulated = device.type == "cpu" and dtype == torch.bfloat16 and not native_cpu_bfloat16()
        result["matmul_peak_gflops"] = measure_matmul_gflops(device, dtype, n=256 if emulated else 2048)
        result["matmul_size"] = 256 if emulated else 2048
        achieved = result["gflop_per_frame"] * result["fps"]
        result["achieved_gflops"] = achieved
        result["share_of_matmul_peak"] = achieved / result["matmul_peak_gflops"]
    return result


def count_gflops(network, video, device: torch.device, frames: int, amp: bool = False) -> float:
    """Mean GFLOP of a propagated frame over the first ``frames`` frames after the annotation."""
    from torch.utils.flop_counter import FlopCounterMode

    from engine.core import InferenceCore
    from model.memory_policy import DAVIS_MEMORY

    core = InferenceCore(network, DAVIS_MEMORY, device, amp=amp)
    items = video.items()
    first = next(items)
    core.step(first.image, first.annotation.masks, first.annotation.object_ids, frame=0)
    total, counted = 0, 0
    for item in items:
        if counted == frames:
            break
        with FlopCounterMode(display=False) as counter:
            core.step(item.image, frame=item.index)
        total += counter.get_total_flops()
        counted += 1
    return total / max(counted, 1) / 1e9


# ----------------------------------------------------------------------------- parent
def run_child(data: Path, args: argparse.Namespace, cache: Optional[Path] = None) -> dict:
    """One measurement in a fresh process; ``cache``: compiled, with this inductor cache (FLOPs are the eager run's)."""
    argv = [sys.executable, "-m", "scripts.benchmark", "--child", str(data), "--config", args.config, "--seed", str(args.seed)]
    argv += ["--flop_frames", str(args.flop_frames if cache is None else 0)]
    flags = (("--amp", args.amp), ("--force_amp", args.force_amp), ("--official_kernels", args.official_kernels),
             ("--child_compile", cache is not None))
    argv += [flag for flag, on in flags if on]
    if args.device:
        argv += ["--device", args.device]
    if args.threads:
        argv += ["--threads", str(args.threads)]
    env = {**os.environ, CACHE_ENV: str(cache)} if cache is not None else None
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark child failed:\n{proc.stderr[-3000:]}")
    for line in proc.stderr.splitlines():
        if line.startswith("warning:"):
            print(line, file=sys.stderr)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_official(data: Path, args: argparse.Namespace, work: Path) -> dict:
    """The official ``eval_davis.py`` on the benchmark's video with the same random weights and threads, on the CPU
    (the copy and shims of ``scripts/compare_official.py``; its QAM patched to the weights' sigmoid); its own FPS line."""
    from evaluation.official import OFFICIAL_HEAD, SITECUSTOMIZE, copy_official, patch_official
    from model.network import random_network
    from util.hardware import available_cpus

    copy, shims, weights = work / "official_copy", work / "shims", work / "weights.pth"
    if not copy.exists():
        work.mkdir(parents=True)
        commit = copy_official(args.official_repo.expanduser(), copy, OFFICIAL_HEAD)
        patch_official(copy, None, None, None, "sigmoid", fix_eviction=False)
        shims.mkdir()
        (shims / "sitecustomize.py").write_text(SITECUSTOMIZE)
        torch.save(random_network(args.config, args.seed, "sigmoid").state_dict(), weights)
        (work / "commit").write_text(commit)
    threads = str(args.threads or available_cpus())
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(shims), str(copy)]), "CUDA_VISIBLE_DEVICES": "",
           "QDMN_COMPARE_PALETTE": str(annotation(data)), "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
    argv = [sys.executable, "eval_davis.py", "--model", str(weights), "--davis", str(data), "--output", str(work / f"out_{data.name}")]
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=copy, env=env)
    found = re.search(r"^FPS:\s+(\S+)", proc.stdout, re.M)
    if proc.returncode != 0 or found is None:
        raise RuntimeError(f"official run failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    frames = re.search(r"^Total processed frames:\s+(\d+)", proc.stdout, re.M)
    return {"fps": float(found.group(1)), "frames": int(frames.group(1)) if frames else None, "threads": int(threads),
            "commit": (work / "commit").read_text(), "precision": "float32"}


def whole_video_estimate_mib(frames: int, height: int, width: int, objects: int) -> float:
    """Memory a design holding the whole video needs: float frames + probabilities (as the official code)."""
    h, w = height + (-height) % 16, width + (-width) % 16
    return frames * (3 + objects + 1) * h * w * 4 / 2**20


def markdown(results: list[dict], args: argparse.Namespace) -> str:
    head = f"{args.config} model, {args.height}x{args.width}, {args.objects} objects, device {results[0]['device']}"
    first = results[0]
    bf16 = "native" if first["native_bfloat16"] else "no native"
    cpu = f", {first['cpu_capability']}, {bf16} bfloat16" if first["device"] == "cpu" else ""
    head += f" ({first['device_name']}{cpu}, {first['threads']} threads), {first['precision']}, {first['kernels']} kernels"
    lines = [f"**{head}**", ""]
    loads = [r[k]["load_average_1min"] if k else r["load_average_1min"] for r in results for k in ("", "compiled_cold", "compiled_warm")
             if (not k or k in r) and "load_average_1min" in (r[k] if k else r)]
    if loads:
        lines += [f"Load average (1 min) at the end of each run: {min(loads):.1f} to {max(loads):.1f}, on {os.cpu_count()} CPUs "
                  "(above the threads used: other processes shared the machine).", ""]
    lines.append("| frames | FPS | peak RSS (MiB) | peak CUDA (MiB) | GFLOP/frame | achieved GFLOP/s | matmul peak GFLOP/s | share |")
    lines.append("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        cuda = f"{r['peak_cuda_mib']:.0f}" if r.get("peak_cuda_mib") else "–"
        gf = r.get("gflop_per_frame")
        flops = (
            f"{gf:.1f} | {r['achieved_gflops']:.1f} | {r['matmul_peak_gflops']:.1f} | {100 * r['share_of_matmul_peak']:.0f} %"
            if gf
            else "– | – | – | –"
        )
        lines.append(f"| {r['frames']} | {r['fps']:.3f} | {r['peak_rss_mib']:.0f} | {cuda} | {flops} |")
    lines += ["", "Seconds per frame by stage (reading and writing run in background threads, overlapping compute):", ""]
    stages = sorted({s for r in results for s in r["stages_s_per_frame"]})
    lines.append("| frames | " + " | ".join(stages) + " |")
    lines.append("|---:|" + "---:|" * len(stages))
    for r in results:
        lines.append(f"| {r['frames']} | " + " | ".join(f"{r['stages_s_per_frame'].get(s, 0):.4f}" for s in stages) + " |")
    if any("compiled_warm" in r or "official" in r for r in results):
        lines += side_by_side(results, args)
    if len(results) > 1:
        a, b = results[0], results[-1]
        estimate = whole_video_estimate_mib(b["frames"], args.height, args.width, args.objects)
        lines += [
            "",
            f"Peak RSS ratio {b['frames']} / {a['frames']} frames: **{b['peak_rss_mib'] / a['peak_rss_mib']:.3f}**. "
            f"A design holding the whole video (float frames + probabilities, as the official code) would need about "
            f"{estimate:.0f} MiB more at {b['frames']} frames.",
        ]
    return "\n".join(lines) + "\n"


def side_by_side(results: list[dict], args: argparse.Namespace) -> list[str]:
    """The eager, compiled and official FPS of each length (compiling left out), and the compile seconds."""
    def number(value: Optional[float], digits: int = 3) -> str:
        return "–" if value is None else f"{value:.{digits}f}"

    def ratio(a: Optional[float], b: Optional[float]) -> str:
        return "–" if a is None or b is None else f"{a / b:.2f}×"

    lines = ["", "Side by side (FPS leaves compiling out; compile seconds: the first call's with an empty inductor cache, "
             "and a later start with the cache it left):", "",
             "| frames | official code FPS | eager FPS | compiled FPS | compiled / eager | eager / official | compiled / official "
             "| first-call compile (s) | cache-warm start (s) |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        official = r.get("official", {}).get("fps")
        compiled = r.get("compiled_warm", {}).get("fps")
        cold, warm = r.get("compiled_cold", {}).get("compile_seconds"), r.get("compiled_warm", {}).get("compile_seconds")
        lines.append(f"| {r['frames']} | {number(official)} | {r['fps']:.3f} | {number(compiled)} | {ratio(compiled, r['fps'])} | "
                     f"{ratio(r['fps'], official)} | {ratio(compiled, official)} | {number(cold, 1)} | {number(warm, 1)} |")
    if args.amp and results[0]["precision"] == "float32" and results[0]["device"] == "cpu":
        lines += ["", "--amp was asked, but this CPU has no native bfloat16: every run of this table is float32 "
                  "(--force_amp runs emulated bfloat16)."]
    if any("official" in r for r in results):
        o = next(r["official"] for r in results if "official" in r)
        lines += ["", f"Official code: yongliu20/QDMN {o['commit'][:7]}, float32, {o['threads']} thread(s), its own FPS line "
                  "(propagation and upsampling; the frames are loaded before it starts)."]
    return lines


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.child:
        print(json.dumps(measure(Path(args.child), args)))
        return
    lengths = [int(x) for x in args.lengths.split(",")] if args.lengths else [args.frames]
    if min(lengths) < 2 or min(args.height, args.width) < 16 or args.objects < 1:
        raise UserError("need at least 2 frames, 16x16 pixels and 1 object")
    if args.official_repo is not None and (args.config != "official" or args.official_kernels):
        raise UserError("--official_repo: the official code has the official configuration only; use --config official "
                        "without --official_kernels")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in lengths:
            data = write_video(Path(tmp) / f"len{n}", n, args.height, args.width, args.objects, args.seed)
            print(f"measuring {n} frames at {args.height}x{args.width} ...", file=sys.stderr)
            result = run_child(data, args)
            if args.compile:
                cache = Path(tmp) / f"inductor{n}"  # empty: the first run compiles from scratch, the second finds its cache
                print("  compiled, empty inductor cache ...", file=sys.stderr)
                result["compiled_cold"] = run_child(data, args, cache)
                print("  compiled, warm inductor cache ...", file=sys.stderr)
                result["compiled_warm"] = run_child(data, args, cache)
            if args.official_repo is not None:
                print("  the official code ...", file=sys.stderr)
                result["official"] = run_official(data, args, Path(tmp) / "official")
            results.append(result)
    report = {"args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items() if not k.startswith("child")},
              "results": results, "torch": torch.__version__}
    table = markdown(results, args)
    write_report(report, args.json, table, args.markdown)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main(sys.argv[1:])
