"""The memory claim: the quality-aware dynamic memory against three baselines.

Runs ``eval_davis.py`` once per memory policy on a long-video set and reports J&F,
peak memory frames, peak resident memory and FPS over the set, then per video: J&F,
frames the memory admitted and peak memory frames, and a plot of J&F over time for
every video. Policies: ``qdmn`` (the paper), ``every`` (every 5th frame, unbounded, as
STCN), ``fifo`` (the latest admitted frames at the same capacity), ``first_prev``
(annotated frame + previous frame only).

    python -m scripts.evidence_memory --model saves/qdmn_lite_synth.pth --davis data/SynthVOS/long/2017 --out docs/evidence

``--jobs N`` runs N policies at once, each with an equal share of this machine's CPUs
(``--threads``); their FPS are then measured side by side, not alone.

Each finished policy leaves ``<policy>_row.json`` in ``--work`` (its row, the model's
SHA-256 and the set). ``--reuse`` takes a policy's row from there instead of running it
again when the model and the set are the same, so policies run in separate processes
(one per core, or one per session) are reported together by a last call with all of them.
"""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

if not __package__:  # `python scripts/NAME.py`: the packages are in the repository root, not in scripts/
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from datasets import layouts
from evaluation.arguments import positive_int
from model.memory_policy import POLICIES
from util import write_gate
from util.download import sha256sum
from util.errors import exit_on_user_error, run_python
from util.hardware import available_cpus
from util.metrics import db_eval_boundary_batch, db_eval_iou_batch
from util.metrics_folders import read_mask

ROOT = Path(__file__).resolve().parents[1]


def run_policy(policy: str, args: argparse.Namespace, out: Path) -> dict:
    """Evaluate DAVIS 2017 val with one memory policy; J&F, speed and memory from the run's JSON files."""
    cmd = ["eval_davis.py", "--model", args.model, "--davis", args.davis, "--output", str(out / policy), "--memory_policy", policy,
           "--evaluate", "--json", str(out / f"{policy}.json"), "--stats_json", str(out / f"{policy}_stats.json"), "--overwrite"]
    if args.device:
        cmd += ["--device", args.device]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
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
        "per_video": {name: {"J&F": jf["sequences"][name]["J&F"], **video} for name, video in stats["per_video"].items()},
    }


def row_marker(work: Path, policy: str) -> Path:
    return work / f"{policy}_row.json"


def save_row(row: dict, args: argparse.Namespace, work: Path, model_sha256: str) -> None:
    """The marker of a finished policy run (written under a temporary name and renamed)."""
    payload = {"model_sha256": model_sha256, "davis": str(Path(args.davis).resolve()), "row": row}
    # the script's own cache in its --work folder (a marker is rewritten when stale): atomic, no ownership record
    write_gate.write_state(row_marker(work, row["policy"]), json.dumps(payload, indent=1), "--work")


def reusable_row(policy: str, args: argparse.Namespace, work: Path, model_sha256: str) -> dict | None:
    """The row of an earlier run of ``policy`` with the same model and set, if ``--work`` holds one."""
    marker = row_marker(work, policy)
    if not marker.is_file():
        return None
    try:
        saved = json.loads(marker.read_text())
    except (OSError, ValueError) as e:
        print(f"{marker}: unreadable ({e}); running {policy} again", flush=True)
        return None
    if not isinstance(saved, dict) or not isinstance(saved.get("row"), dict):
        print(f"{marker}: not a row marker of this script; running {policy} again", flush=True)
        return None
    if saved.get("model_sha256") != model_sha256 or saved.get("davis") != str(Path(args.davis).resolve()):
        return None
    return saved["row"]


def jf_over_time(gt_dir: Path, pred_dir: Path) -> np.ndarray:
    """Per-frame J&F (mean over objects) of one sequence, first and last frame excluded."""
    names = sorted(p.name for p in gt_dir.glob("*.png"))
    gt = np.stack([read_mask(gt_dir / n) for n in names])[1:-1]
    pred = np.stack([read_mask(pred_dir / n) for n in names])[1:-1]
    objects = range(1, int(read_mask(gt_dir / names[0]).max()) + 1)
    per_object = [(db_eval_iou_batch(gt == k, pred == k) + db_eval_boundary_batch(gt == k, pred == k)) / 2 for k in objects]
    return np.mean(per_object, axis=0)


def plot(curves: dict[str, dict[str, np.ndarray]], path: Path, window: int = 15) -> None:
    """J&F over time, one panel per video (``curves[video][policy]``), moving mean of ``window`` frames."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = min(3, len(curves))
    rows = (len(curves) + columns - 1) // columns
    fig, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 2.6 * rows), dpi=110, squeeze=False)
    kernel = np.ones(window) / window
    for ax, (video, by_policy) in zip(axes.flat, curves.items()):
        for policy, curve in by_policy.items():
            smooth = np.convolve(curve, kernel, mode="valid") if len(curve) >= window else curve
            ax.plot(np.arange(len(curve) - len(smooth) + 1, len(curve) + 1), smooth, label=policy, linewidth=1.0)
        ax.set_title(f"{video} ({len(next(iter(by_policy.values()))) + 2} frames)", fontsize=8)
        ax.set_ylim(0, 1)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(curves):]:
        ax.axis("off")
    axes.flat[0].set_ylabel(f"J&F (moving mean of {window})", fontsize=8)
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    with write_gate.writing(path, "--out") as tmp:
        fig.savefig(tmp)
    plt.close(fig)


def per_video_table(rows: list[dict]) -> str:
    """J&F, admitted frames and peak memory frames of every video under every policy."""
    policies = [r["policy"] for r in rows]
    header = "| video | frames | " + " | ".join(f"{p}: J&F / admitted / peak memory" for p in policies) + " |"
    lines = [header, "|---|---:|" + "---:|" * len(policies)]
    for video in rows[0]["per_video"]:
        cells = [f"{100 * r['per_video'][video]['J&F']:.1f} / {r['per_video'][video]['admitted']} / "
                 f"{r['per_video'][video]['peak_memory_frames']}" for r in rows]
        lines.append(f"| {video} | {rows[0]['per_video'][video]['frames']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--davis", required=True, help="DAVIS 2017 root of the long set")
    p.add_argument("--out", default="docs/evidence")
    p.add_argument("--work", default="outputs/evidence_memory", help="where the masks go")
    p.add_argument("--policies", default=",".join(POLICIES))
    p.add_argument("--device", default=None)
    p.add_argument("--jobs", type=positive_int, default=1, help="policies evaluated at once, each on an equal share of the CPUs")
    p.add_argument("--reuse", action="store_true",
                   help="reuse a policy's row from an earlier run in --work (same model and set)")
    args = p.parse_args(argv)
    args.threads = max(1, available_cpus() // args.jobs) if args.jobs > 1 else None
    work, out = Path(args.work), Path(args.out)
    work.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    model_sha256 = sha256sum(args.model)

    def run_one(policy: str) -> dict:
        row = reusable_row(policy, args, work, model_sha256) if args.reuse else None
        if row is not None:
            print(f"policy {policy}: reusing {row_marker(work, policy)}", flush=True)
            return row
        print(f"policy {policy} ...", flush=True)
        row = run_policy(policy, args, work)
        save_row(row, args, work, model_sha256)
        print({k: v for k, v in row.items() if k != "per_video"}, flush=True)
        return row

    with ThreadPoolExecutor(args.jobs) as pool:
        rows = list(pool.map(run_one, args.policies.split(",")))
    trainval = layouts.davis_folder(args.davis, "val")
    gt_root = layouts.davis_annotations(trainval)
    names = layouts.davis_image_set(trainval, "2017", "val").read_text().split()
    curves = {name: {r["policy"]: jf_over_time(gt_root / name, work / r["policy"] / name) for r in rows} for name in names}
    plot(curves, out / "memory_jf_over_time.png")
    lines = ["| policy | J&F | J | F | peak memory frames | peak RSS (MiB) | FPS |", "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(
            f"| {r['policy']} | {100 * r['J&F']:.1f} | {100 * r['J']:.1f} | {100 * r['F']:.1f} | {r['peak_memory_frames']} | "
            f"{r['peak_rss_mib']:.0f} | {r['fps']:.2f} |"
        )
    lines += ["", per_video_table(rows)]
    table = "\n".join(lines) + "\n"
    write_gate.write_text(out / "memory.md", table, "--out")
    write_gate.write_json(out / "memory.json", rows, "--out")
    print(table)


if __name__ == "__main__":
    main(sys.argv[1:])
