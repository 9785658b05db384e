"""J&F of a model on SynthVOS val (DAVIS layout) and SynthVOS yv (YouTube layout),
against the "copy the first-frame mask" baseline.

DAVIS layout: the official DAVIS protocol (``util/metrics.py``). YouTube layout: each
object is scored on every frame after the one where it is first annotated (as the
YouTube-VOS server does), J&F averaged over objects; the baseline copies each object's
annotation forward.

    python -m scripts.evidence_synthvos --model saves/qdmn_lite_synth.pth --root data/SynthVOS --out docs/evidence
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np

from datasets import layouts
from util.errors import exit_on_user_error, run_python
from util.image_io import list_images, load_mask, mask_palette, save_palette_png
from util.metrics import db_eval_boundary_batch, db_eval_iou_batch, run_jf

ROOT = Path(__file__).resolve().parents[1]


def copy_first_davis(trainval: Path, out: Path, names: list[str]) -> None:
    for name in names:
        first = layouts.davis_annotations(trainval, name) / "00000.png"
        frames = list_images(layouts.davis_frames(trainval, name))
        (out / name).mkdir(parents=True, exist_ok=True)
        for t in range(len(frames)):
            shutil.copyfile(first, out / name / f"{t:05d}.png")


def copy_first_youtube(yv: Path, out: Path) -> None:
    frame_root = layouts.youtube_frames(yv, "valid")
    for video in sorted(p for p in frame_root.iterdir() if p.is_dir()):
        annotations = {p.stem: load_mask(p) for p in list_images(layouts.youtube_annotations(yv, "valid", video.name))}
        palette = mask_palette(next(iter(sorted(layouts.youtube_annotations(yv, "valid", video.name).glob("*.png")))))
        current = None
        (out / video.name).mkdir(parents=True, exist_ok=True)
        for frame in list_images(video):
            if frame.stem in annotations:
                new = annotations[frame.stem]
                current = new.copy() if current is None else np.where(new > 0, new, current)
            if current is not None:
                save_palette_png(out / video.name / f"{frame.stem}.png", current, palette)


def youtube_jf(yv: Path, pred_root: Path) -> dict[str, float]:
    """Mean over objects of J and F on the frames after each object's first annotation."""
    gt_root = layouts.youtube_ground_truth(yv, "valid")
    js, fs = [], []
    for video in sorted(p.name for p in gt_root.iterdir()):
        first_seen: dict[int, str] = {}
        for ann in list_images(layouts.youtube_annotations(yv, "valid", video)):
            for obj in np.unique(load_mask(ann)):
                if obj and int(obj) not in first_seen:
                    first_seen[int(obj)] = ann.stem
        gt_frames = list_images(gt_root / video)
        for obj, start in first_seen.items():
            frames = [p for p in gt_frames if p.stem > start]
            if not frames:
                continue
            gt = np.stack([load_mask(p) == obj for p in frames])
            pred_paths = [pred_root / video / f"{p.stem}.png" for p in frames]
            pred = np.stack([load_mask(p) == obj if p.is_file() else np.zeros_like(gt[0]) for p in pred_paths])
            js.append(float(db_eval_iou_batch(gt, pred).mean()))
            fs.append(float(db_eval_boundary_batch(gt, pred).mean()))
    j, f = float(np.mean(js)), float(np.mean(fs))
    return {"J&F": (j + f) / 2, "J": j, "F": f, "objects": len(js)}


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--root", default="data/SynthVOS")
    p.add_argument("--out", default="docs/evidence")
    p.add_argument("--work", default="outputs/evidence_synthvos")
    p.add_argument("--device", default=None)
    args = p.parse_args(argv)
    root, work, out = Path(args.root), Path(args.work), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    device = ["--device", args.device] if args.device else []
    trainval = layouts.davis_folder(root / "val" / "2017", "val")
    names = layouts.davis_image_set(trainval, "2017", "val").read_text().split()
    gt = layouts.davis_annotations(trainval)

    run_python(
        [
            "eval_davis.py",
            "--model",
            args.model,
            "--davis",
            str(root / "val" / "2017"),
            "--output",
            str(work / "val_model"),
            "--overwrite",
            *device,
        ],
        ROOT,
    )
    copy_first_davis(trainval, work / "val_copy", names)
    davis = {
        name: run_jf(gt, work / folder, sequences=names, write_csv=False, verbose=False)["global"]
        for name, folder in (("model", "val_model"), ("copy first mask", "val_copy"))
    }
    yv = root / "yv"
    run_python(
        [
            "eval_youtube.py",
            "--model",
            args.model,
            "--yv",
            str(yv),
            "--output",
            str(work / "yv_model"),
            "--size",
            "-1",
            "--overwrite",
            *device,
        ],
        ROOT,
    )
    copy_first_youtube(yv, work / "yv_copy")
    youtube = {name: youtube_jf(yv, work / folder) for name, folder in (("model", "yv_model"), ("copy first mask", "yv_copy"))}

    lines = ["| set | method | J&F | J | F |", "|---|---|---:|---:|---:|"]
    for method, g in davis.items():
        lines.append(
            f"| SynthVOS val (DAVIS layout, {len(names)} videos) | {method} | {100 * g['J&F-Mean']:.1f} | "
            f"{100 * g['J-Mean']:.1f} | {100 * g['F-Mean']:.1f} |"
        )
    for method, g in youtube.items():
        lines.append(
            f"| SynthVOS yv (YouTube layout, {g['objects']} objects) | {method} | {100 * g['J&F']:.1f} | "
            f"{100 * g['J']:.1f} | {100 * g['F']:.1f} |"
        )
    table = "\n".join(lines) + "\n"
    (out / "synthvos.md").write_text(table)
    (out / "synthvos.json").write_text(json.dumps({"davis": davis, "youtube": youtube, "model": args.model}, indent=1))
    print(table)


if __name__ == "__main__":
    main(sys.argv[1:])
