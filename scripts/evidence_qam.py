"""Does the QAM predict mask quality? Correlation of its scores with the true IoU.

For every propagated frame that the engine memorises, the QAM scores each object's
predicted mask; this script compares each score with the IoU of that object's
thresholded (> 0.5) prediction against the ground truth, over a DAVIS-layout set with
full annotations, and reports Pearson and Spearman correlations and a scatter plot.

    python -m scripts.evidence_qam --model saves/qdmn_lite_synth.pth --davis data/SynthVOS/val/2017 --out docs/evidence
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

if not __package__:  # `python scripts/NAME.py`: the packages are in the repository root, not in scripts/
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from datasets.davis_test_dataset import davis2017_videos
from engine.core import InferenceCore
from evaluation.arguments import add_eval_args, eval_config
from evaluation.config import memory_config
from evaluation.propagation import build_network
from model.memory_policy import DAVIS_MEMORY
from util import write_gate
from util.errors import exit_on_user_error
from util.hardware import resolve_device
from util.image_io import load_mask


def object_ious(prob: torch.Tensor, gt: np.ndarray, labels: list[int]) -> list[float]:
    """IoU of each object's thresholded probability with its ground truth (1 when both empty)."""
    ious = []
    for channel, label in enumerate(labels, start=1):
        pred = (prob[channel] > 0.5).cpu().numpy()
        true = gt == label
        union = np.logical_or(pred, true).sum()
        ious.append(1.0 if union == 0 else float(np.logical_and(pred, true).sum() / union))
    return ious


def collect(network, device, videos, memory) -> tuple[list[float], list[float]]:
    scores, ious = [], []
    for video in videos:
        core = InferenceCore(network, memory, device, record_scores=True)
        frame_ious: dict[int, list[float]] = {}
        gt_dir = video.annotation_files[0].parent
        for item in video.items():
            ann = item.annotation
            prob = core.step(item.image, ann.masks, ann.object_ids, frame=item.index) if ann else core.step(item.image, frame=item.index)
            if ann is None:
                frame_ious[item.index] = object_ious(prob, load_mask(gt_dir / f"{item.index:05d}.png"), core.object_ids)
        for frame, object_scores in core.score_log or []:
            scores += object_scores
            ious += frame_ious[frame]
    return scores, ious


def scatter(scores: list[float], ious: list[float], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5), dpi=120)
    ax.scatter(ious, scores, s=4, alpha=0.35)
    ax.plot([0, 1], [0, 1], "k--", linewidth=0.8)
    ax.set_xlabel("true IoU of the predicted mask")
    ax.set_ylabel("QAM score")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, max(1.02, max(scores) * 1.02))
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    with write_gate.writing(path, "--out") as tmp:
        fig.savefig(tmp)
    plt.close(fig)


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--davis", required=True, help="DAVIS 2017 root with trainval/ and full annotations")
    p.add_argument("--out", default="docs/evidence")
    add_eval_args(p, DAVIS_MEMORY, default_output="unused")
    args = p.parse_args(argv)
    config = eval_config(args)
    from scipy.stats import pearsonr, spearmanr

    device = resolve_device(args.device)
    network = build_network(config, device, config.amp)
    videos = davis2017_videos(args.davis, "val")
    scores, ious = collect(network, device, videos, memory_config(config))
    pearson, spearman = float(pearsonr(scores, ious)[0]), float(spearmanr(scores, ious)[0])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    title = f"QAM vs IoU on {len(videos)} videos, {len(scores)} object-frames: Pearson {pearson:.3f}, Spearman {spearman:.3f}"
    scatter(scores, ious, out / "qam_scatter.png", title.replace(": ", ":\n", 1))  # two lines fit the plot
    result = {"pearson": pearson, "spearman": spearman, "pairs": len(scores), "videos": len(videos), "model": args.model}
    write_gate.write_json(out / "qam.json", result, "--out")
    print(title)
    print(f"wrote {out / 'qam_scatter.png'} and {out / 'qam.json'}")


if __name__ == "__main__":
    main(sys.argv[1:])
