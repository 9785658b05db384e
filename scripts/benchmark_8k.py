"""Peak memory and time of ``eval_generic.py`` on a generated 8K clip (7680x4320, 2 objects) with the shipped lite model.

The clip (JPEG frames and the first frame's palette PNG) is generated in a temporary
folder: rendered at 1/8 of the size, then scaled up (the mask with nearest-neighbour).
``eval_generic.py`` runs on it in a child process, as a user would run it; its peak
resident memory is the child's maximum RSS (``getrusage``). Writes a JSON file and a
markdown table::

    OMP_NUM_THREADS=1 python -m scripts.benchmark_8k --frames 4 \\
        --json benchmarks/eval_8k_lite.json --markdown benchmarks/eval_8k_lite.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

if not __package__:  # `python scripts/NAME.py`: the packages are in the repository root, not in scripts/
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from util.arg_types import positive_int
from util.errors import UserError, exit_on_user_error
from util.hardware import cpu_description
from util.profiling import write_report

ROOT = Path(__file__).resolve().parents[1]
SCALE = 8  # the clip is rendered at 1/SCALE of its size, then scaled up


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--width", type=positive_int, default=7680, help="frame width")
    p.add_argument("--height", type=positive_int, default=4320, help="frame height")
    p.add_argument("--frames", type=positive_int, default=4, help="clip length")
    p.add_argument("--objects", type=positive_int, default=2, help="objects in the first frame's mask")
    p.add_argument("--model", default="saves/qdmn_lite_synth.pth", help="weights for eval_generic.py")
    p.add_argument("--threads", type=positive_int, default=1, help="eval_generic.py --threads")
    p.add_argument("--seed", type=int, default=0, help="seed of the generated clip")
    p.add_argument("--json", default="benchmarks/latest_8k.json", help="where to write the results")
    p.add_argument("--markdown", default="benchmarks/latest_8k.md", help="where to write the table")
    return p.parse_args(argv)


def write_clip(root: Path, args: argparse.Namespace) -> tuple[Path, Path]:
    """Frames (JPEG, quality 90) and the first frame's mask of a generated clip at ``--width`` x ``--height``."""
    import cv2

    from datasets.synthetic import VideoSpec, render_video
    from util.image_io import save_palette_png

    small = VideoSpec(args.frames, max(32, args.height // SCALE), max(32, args.width // SCALE), args.objects)
    images, ids = render_video(np.random.default_rng(args.seed), small)
    frames, masks = root / "frames", root / "masks"
    frames.mkdir(parents=True)
    masks.mkdir()
    size = (args.width, args.height)
    for t, image in enumerate(images):
        big = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
        cv2.imwrite(str(frames / f"{t:05d}.jpg"), cv2.cvtColor(big, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
    save_palette_png(masks / "00000.png", cv2.resize(ids[0], size, interpolation=cv2.INTER_NEAREST))
    return frames, masks


def run_eval(frames: Path, masks: Path, work: Path, args: argparse.Namespace) -> dict:
    """``eval_generic.py`` in a child process; its wall time, its peak RSS and its ``--stats_json``."""
    stats = work / "stats.json"
    cmd = [sys.executable, "eval_generic.py", "--video", str(frames), "--masks", str(masks), "--model", str(args.model),
           "--output", str(work / "out"), "--device", "cpu", "--threads", str(args.threads), "--stats_json", str(stats)]
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    load = max(load_before, os.getloadavg()[0])  # other work on the machine (this run adds about --threads)
    if proc.returncode != 0:
        raise UserError(f"eval_generic.py failed ({proc.returncode}): {(proc.stderr.strip().splitlines() or ['?'])[-1]}")
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # the only child waited for
    return {"wall_seconds": seconds, "peak_rss_mib": peak_kib / 1024, "load_average": load, "cpus": os.cpu_count(),
            "eval_stats": json.loads(stats.read_text())}


def markdown(result: dict) -> str:
    r = result["results"]
    return (
        f"**eval_generic.py on a generated {r['width']}x{r['height']} clip, {r['frames']} frames, {r['objects']} objects, "
        f"{Path(r['model']).name}, CPU ({result['cpu']}, {r['threads']} thread)**\n\n"
        "| frames | size | wall time (s) | segmenting (s/frame) | peak RSS (MiB) |\n|---:|---|---:|---:|---:|\n"
        f"| {r['frames']} | {r['width']}x{r['height']} | {r['wall_seconds']:.1f} | "
        f"{r['eval_stats']['seconds'] / max(1, r['eval_stats']['frames']):.2f} | {r['peak_rss_mib']:.0f} |\n\n"
        f"Load average {r['load_average']:.1f} on {r['cpus']} CPUs during the run"
        f"{': the machine was shared, the times are not speed figures' if r['load_average'] > r['threads'] + 0.5 else ''}. "
        "Peak RSS: the child's maximum resident set size (getrusage).\n\n"
        f"Command: `{result['command']}`\n"
    )


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if not Path(args.model).is_file():
        raise UserError(f"{args.model}: model not found; pass --model with a .pth file")
    with tempfile.TemporaryDirectory(prefix="qdmn-8k-") as tmp:
        frames, masks = write_clip(Path(tmp), args)
        measured = run_eval(frames, masks, Path(tmp), args)
    result = {
        "command": "OMP_NUM_THREADS=" + os.environ.get("OMP_NUM_THREADS", "") + " python -m scripts.benchmark_8k "
                   + " ".join(argv if argv is not None else sys.argv[1:]),
        "cpu": cpu_description(),
        "machine": platform.machine(),
        "results": {"width": args.width, "height": args.height, "frames": args.frames, "objects": args.objects,
                    "model": args.model, "threads": args.threads, **measured},
    }
    write_report(result, args.json, markdown(result), args.markdown)


if __name__ == "__main__":
    main(sys.argv[1:])
