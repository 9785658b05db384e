"""The memory claim: the quality-aware dynamic memory against three baselines.

Runs ``eval_davis.py`` once per memory policy on a long-video set and reports J&F,
peak memory frames, peak resident memory and FPS, plus a plot of J&F over time for one
sequence. Policies: ``qdmn`` (the paper), ``every`` (every 5th frame, unbounded, as
STCN), ``fifo`` (the latest admitted frames at the same capacity), ``first_prev``
(annotated frame + previous frame only).

    python -m scripts.evidence_memory --model saves/qdmn_lite_synth.pth --davis data/SynthVOS/long/2017 --out docs/evidence
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from datasets import layouts
from model.memory_policy import POLICIES
from util.errors import exit_on_user_error, run_python
from util.metrics import db_eval_boundary_batch, db_eval_iou_batch, read_mask

ROOT = Path(__file__).resolve().parents[1]


def run_policy(policy: str, args: argparse.Namespace, out: Path) -> dict:
    """Evaluate DAVIS 2017 val with one memory policy; J&F, speed and memory from the run's JSON files."""
    cmd = ["eval_davis.py", "--model", args.model, "--davis", args.davis, "--output", str(out / policy), "--memory_policy", policy,
           "--evaluate", "--json", str(out / f"{policy}.json"), "--stats_json", str(out / f"{policy}_stats.json"), "--overwrite"]
    if args.device:
        cmd += ["--device", args.device]
    run_python(cmd, ROOT)
    jf = json.loads((out / f"{policy}.json").read_text())
    stats = json.loads((out / f"{policy}_stats.json").read_text())
    return {
        "policy": policy,
        "J&F": jf["J&F-Mean"],
        "J": jf["J-Mean"],
        "F": jf["F-Mean"],
        "fps": stats["fps"],
        "peak_memory_frames": stats["peak_memory_frames"],
        "peak_rss_mib": stats["peak_rss_mib"],
    }


def jf_over_time(gt_dir: Path, pred_dir: Path) -> np.ndarray:
    """Per-frame J&F (mean over objects) of one sequence, first and last frame excluded."""
    names = sorted(p.name for p in gt_dir.glob("*.png"))
    gt = np.stack([read_mask(gt_dir / n) for n in names])[1:-1]
    pred = np.stack([read_mask(pred_dir / n) for n in names])[1:-1]
    objects = range(1, int(read_mask(gt_dir / names[0]).max()) + 1)
    per_object = [(db_eval_iou_batch(gt == k, pred == k) + db_eval_boundary_batch(gt == k, pred == k)) / 2 for k in objects]
    return np.mean(per_object, axis=0)


def plot(curves: dict[str, np.ndarray], path: Path, title: str, window: int = 15) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.5), dpi=120)
    kernel = np.ones(window) / window
    for policy, curve in curves.items():
        ax.plot(np.arange(1, len(curve) + 1)[window - 1 :], np.convolve(curve, kernel, mode="valid"), label=policy, linewidth=1.2)
    ax.set_xlabel("frame")
    ax.set_ylabel(f"J&F (moving mean of {window})")
    ax.set_ylim(0, 1)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--davis", required=True, help="DAVIS 2017 root of the long set")
    p.add_argument("--out", default="docs/evidence")
    p.add_argument("--work", default="outputs/evidence_memory", help="where the masks go")
    p.add_argument("--policies", default=",".join(POLICIES))
    p.add_argument("--plot_sequence", default=None, help="sequence for the J&F-over-time plot (default: the first)")
    p.add_argument("--device", default=None)
    args = p.parse_args(argv)
    work, out = Path(args.work), Path(args.out)
    work.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for policy in args.policies.split(","):
        print(f"policy {policy} ...", flush=True)
        rows.append(run_policy(policy, args, work))
        print(rows[-1], flush=True)
    trainval = layouts.davis_folder(args.davis, "val")
    gt_root = layouts.davis_annotations(trainval)
    names = layouts.davis_image_set(trainval, "2017", "val").read_text().split()
    sequence = args.plot_sequence or names[0]
    curves = {r["policy"]: jf_over_time(gt_root / sequence, work / r["policy"] / sequence) for r in rows}
    plot(curves, out / "memory_jf_over_time.png", f"J&F over time on {sequence} ({len(curves[rows[0]['policy']]) + 2} frames)")
    lines = ["| policy | J&F | J | F | peak memory frames | peak RSS (MiB) | FPS |", "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(
            f"| {r['policy']} | {100 * r['J&F']:.1f} | {100 * r['J']:.1f} | {100 * r['F']:.1f} | {r['peak_memory_frames']} | "
            f"{r['peak_rss_mib']:.0f} | {r['fps']:.2f} |"
        )
    table = "\n".join(lines) + "\n"
    (out / "memory.md").write_text(table)
    (out / "memory.json").write_text(json.dumps(rows, indent=1))
    print(table)


if __name__ == "__main__":
    main(sys.argv[1:])
