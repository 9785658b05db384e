"""Show that training works: overfit the lite model on a handful of generated clips.

The clips are rendered with :mod:`datasets.synthetic` (two textured objects moving over a
textured background, frames 0, 3 and 6 of each video) and kept fixed (no augmentation),
so the only question is whether the forward pass, the losses and the optimiser learn.
The real training step (:class:`model.model.QDMNTrainer`, the clip forward of stages
1/2 or 0, bootstrapped CE + QAM loss, Adam) is used from a random initialisation.
At the end the IoU of the thresholded predictions of frames 1 and 2 with the ground
truth is measured on the same clips.

    python scripts/train_overfit.py                 # lite, 6 clips, 64 px, 500 iterations
    python scripts/train_overfit.py --stage 0       # single-object model
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from datasets.synthetic import assert_not_synthvos_seed, render_video  # noqa: E402
from model.config import PRESETS  # noqa: E402
from model.losses import object_ious  # noqa: E402
from model.model import QDMNTrainer  # noqa: E402
from model.network import QDMN  # noqa: E402
from util.image_io import normalize_image  # noqa: E402

FRAMES = (0, 3, 6)


def visible_clip(rng: np.random.Generator, size: int, objects: int, min_area: float):
    """Frames and masks of a rendered clip in which every object covers >= ``min_area`` of each frame, else None."""
    frames, masks = render_video(rng, max(FRAMES) + 1, size, size, objects)
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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--stage", type=int, default=2, choices=(0, 2), help="0: single-object model; 2: two objects per clip")
    p.add_argument("--model_config", default="lite", choices=sorted(PRESETS))
    p.add_argument("--clips", type=int, default=6)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--iterations", type=int, default=500)
    p.add_argument("--batch_size", type=int, default=3)
    p.add_argument("--lr", type=float, default=1e-4, help="higher than the real 2e-5: a random initialisation and few iterations")
    p.add_argument("--steps", type=int, nargs="*", default=[350], help="LR decay (x0.1) iterations, as --steps of train.py")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--target", type=float, default=0.9, help="exit 1 when the final mean IoU is below this")
    args = p.parse_args(argv)
    assert_not_synthvos_seed(args.seed)  # never train on the evaluation benchmark's videos

    torch.manual_seed(args.seed)
    torch.set_flush_denormal(True)  # denormal floats make CPU training 10-20x slower
    single = args.stage == 0
    config = PRESETS[args.model_config].with_(qam_activation="sigmoid", single_object=single)
    data = make_clips(args.clips, args.size, args.seed, single)
    trainer = QDMNTrainer(QDMN(config, top_k=None), args.lr, args.steps, 0.1, torch.device("cpu"))
    trainer.report_interval = trainer.image_interval = 10**9
    start = time.time()
    print(f"before: {evaluate(trainer, data)}", flush=True)
    for it in range(args.iterations):
        pick = [(it * args.batch_size + k) % args.clips for k in range(args.batch_size)]
        losses = trainer.do_pass({k: v[pick] for k, v in data.items()}, it).losses
        if (it + 1) % 50 == 0:
            print(
                f"it {it + 1}: loss {losses['total_loss'].item():.4f}  {evaluate(trainer, data)}  {time.time() - start:.0f} s", flush=True
            )
    result = evaluate(trainer, data)
    elapsed = time.time() - start
    print(
        f"final: mean IoU {result['iou']:.4f} (min {result['min_iou']:.4f}), QAM |score - IoU| {result['qam_err']:.4f}, "
        f"{args.iterations} iterations, {elapsed:.0f} s",
        flush=True,
    )
    return 0 if result["iou"] >= args.target else 1


if __name__ == "__main__":
    sys.exit(main())
