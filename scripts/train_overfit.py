"""Show that training works: overfit the lite model on a handful of generated clips.

The clips are rendered with :mod:`datasets.synthetic` (two textured objects moving over a
textured background, frames 0, 3 and 6 of each video) and kept fixed (no augmentation),
so the only question is whether the forward pass, the losses and the optimiser learn.
The real training step (:class:`model.model.QDMNTrainer`, the clip forward of stages
1/2 or 0, bootstrapped CE + QAM loss, Adam) is used from a random initialisation.
At the end the IoU of the thresholded predictions of frames 1 and 2 with the ground
truth is measured on the same clips.

    python -m scripts.train_overfit                 # lite, 6 clips, 64 px, 500 iterations
    python -m scripts.train_overfit --stage 0       # single-object model
    python -m scripts.train_overfit --compare_amp docs/evidence/overfit_amp.png   # float32 and --amp, side by side
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

if not __package__:  # `python scripts/NAME.py`: the packages are in the repository root, not in scripts/
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from datasets.synthetic import VideoSpec, assert_not_synthvos_seed, render_video
from model.config import PRESETS
from model.losses import object_ious
from model.model import MEMORY_FORMATS, QDMNTrainer, use_channels_last
from model.network import QDMN
from util import write_gate
from util.hardware import set_threads
from util.image_io import normalize_image

FRAMES = (0, 3, 6)


def visible_clip(rng: np.random.Generator, size: int, objects: int, min_area: float):
    """Frames and masks of a rendered clip in which every object covers >= ``min_area`` of each frame, else None."""
    frames, masks = render_video(rng, VideoSpec(max(FRAMES) + 1, size, size, objects))
    if all((masks[t] == k).mean() >= min_area for t in FRAMES for k in range(1, objects + 1)):
        return [frames[t] for t in FRAMES], [masks[t] for t in FRAMES]
    return None


def make_clips(count: int, size: int, seed: int, single_object: bool, min_area: float = 0.02) -> dict[str, torch.Tensor]:
    """A batch of ``count`` fixed clips in the layout of the training datasets.

    Clips where an object is (almost) hidden in one of the frames are skipped: nothing
    can segment an object that is not visible, and the point here is learning.
    """
    objects = 1 if single_object else 2
    rgb, gt, sec = [], [], []
    index = 0
    while len(rgb) < count:
        clip = visible_clip(np.random.default_rng([seed, index]), size, objects, min_area)
        index += 1
        if clip is None:
            continue
        frames, masks = clip
        rgb.append(torch.stack([normalize_image(f) for f in frames]))
        gt.append(torch.stack([torch.from_numpy(m == 1).float()[None] for m in masks]))
        sec.append(torch.stack([torch.from_numpy(m == 2).float()[None] for m in masks]))
    data = {"rgb": torch.stack(rgb), "gt": torch.stack(gt)}
    cls_gt = (data["gt"][:, :, 0] > 0.5).long()
    if not single_object:
        data["sec_gt"] = torch.stack(sec)
        data["selector"] = torch.ones(count, 2)
        cls_gt[data["sec_gt"][:, :, 0] > 0.5] = 2
    data["cls_gt"] = cls_gt
    return data


def evaluate(trainer: QDMNTrainer, data: dict[str, torch.Tensor]) -> dict[str, float]:
    """Mean IoU (objects that exist, frames 1 and 2) and mean |QAM score - IoU|."""
    with torch.no_grad():
        out = trainer.module(data["rgb"], data["gt"], data.get("sec_gt"), data.get("selector"))
    gt = data["gt"] if "sec_gt" not in data else torch.cat([data["gt"], data["sec_gt"]], 2)
    valid = data.get("selector", torch.ones(gt.shape[0], 1)) > 0.5
    ious, errors = [], []
    for t in (1, 2):
        iou = object_ious(out[f"mask_{t}"], gt[:, t])
        ious.append(iou[valid])
        errors.append((out[f"score_{t}"] - iou).abs()[valid])
    ious_all = torch.cat(ious)
    return {"iou": ious_all.mean().item(), "min_iou": ious_all.min().item(), "qam_err": torch.cat(errors).mean().item()}


def overfit(args: argparse.Namespace, amp_dtype: torch.dtype | None, label: str) -> tuple[dict[str, float], list[float]]:
    """Train from the seed's initialisation; return the final evaluation and the loss of every iteration."""
    torch.manual_seed(args.seed)
    single = args.stage == 0
    config = PRESETS[args.model_config].with_(qam_activation="sigmoid", single_object=single)
    data = make_clips(args.clips, args.size, args.seed, single)
    channels_last = use_channels_last(args.memory_format, amp_dtype is not None)
    trainer = QDMNTrainer(QDMN(config, top_k=None), args.lr, args.steps, 0.1, torch.device("cpu"), amp_dtype=amp_dtype,
                          channels_last=channels_last)
    trainer.report_interval = trainer.image_interval = 10**9
    start = time.time()
    print(f"[{label}] before: {evaluate(trainer, data)}", flush=True)
    curve = []
    for it in range(args.iterations):
        pick = [(it * args.batch_size + k) % args.clips for k in range(args.batch_size)]
        losses = trainer.do_pass({k: v[pick] for k, v in data.items()}, it).losses
        curve.append(losses["total_loss"].item())
        if (it + 1) % 50 == 0:
            print(f"[{label}] it {it + 1}: loss {curve[-1]:.4f}  {evaluate(trainer, data)}  {time.time() - start:.0f} s", flush=True)
    result = evaluate(trainer, data)
    print(
        f"[{label}] final: mean IoU {result['iou']:.4f} (min {result['min_iou']:.4f}), QAM |score - IoU| {result['qam_err']:.4f}, "
        f"{args.iterations} iterations, {time.time() - start:.0f} s",
        flush=True,
    )
    return result, curve


def plot_curves(curves: dict[str, list[float]], results: dict[str, dict[str, float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(curves), figsize=(5 * len(curves), 3.6), sharey=True)
    for ax, (label, curve) in zip(np.atleast_1d(axes), curves.items()):
        ax.plot(np.arange(1, len(curve) + 1), curve, lw=0.8)
        ax.set_yscale("log")
        ax.set_title(f"{label}: final IoU {results[label]['iou']:.3f}")
        ax.set_xlabel("iteration")
    np.atleast_1d(axes)[0].set_ylabel("total loss")
    fig.tight_layout()
    with write_gate.writing(path, "--compare_amp") as tmp:
        fig.savefig(tmp, dpi=110)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--stage", type=int, default=2, choices=(0, 2), help="0: single-object model; 2: two objects per clip")
    p.add_argument("--model_config", default="lite", choices=sorted(PRESETS))
    p.add_argument("--clips", type=int, default=6)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--iterations", type=int, default=500)
    p.add_argument("--batch_size", type=int, default=3)
    p.add_argument("--lr", type=float, default=1e-4, help="initial learning rate")
    p.add_argument("--steps", type=int, nargs="*", default=[350], help="LR decay (x0.1) iterations, as --steps of train.py")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--target", type=float, default=0.9, help="exit 1 when the final mean IoU is below this")
    p.add_argument("--amp", action="store_true", help="bfloat16 autocast, as train.py --amp on a CPU")
    p.add_argument("--memory_format", choices=MEMORY_FORMATS, default="auto", help="as train.py: auto is channels_last with --amp")
    p.add_argument("--compare_amp", type=Path, default=None,
                   help="train in float32 and with --amp from one start; plot both losses into this PNG")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: the CPUs this process may use)")
    args = p.parse_args(argv)
    assert_not_synthvos_seed(args.seed)  # never train on the evaluation benchmark's videos
    set_threads(args.threads)
    torch.set_flush_denormal(True)  # denormal floats make CPU training 10-20x slower

    runs = {"float32": None, "bfloat16 (--amp)": torch.bfloat16} if args.compare_amp else {
        "bfloat16 (--amp)" if args.amp else "float32": torch.bfloat16 if args.amp else None}
    results, curves = {}, {}
    for label, dtype in runs.items():
        results[label], curves[label] = overfit(args, dtype, label)
    if args.compare_amp:
        plot_curves(curves, results, args.compare_amp)
        summary = {"results": results, "curves": curves, "args": {k: str(v) for k, v in vars(args).items()}}
        write_gate.write_json(args.compare_amp.with_suffix(".json"), summary, "--compare_amp")
        gap = abs(results["float32"]["iou"] - results["bfloat16 (--amp)"]["iou"])
        print(f"final mean IoU: float32 {results['float32']['iou']:.4f}, --amp {results['bfloat16 (--amp)']['iou']:.4f}, "
              f"difference {gap:.4f}; plot {args.compare_amp}")
    return 0 if all(r["iou"] >= args.target for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
