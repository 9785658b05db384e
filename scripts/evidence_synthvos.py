"""J&F of a model on SynthVOS val (DAVIS layout) and SynthVOS yv (YouTube layout),
against the "copy the first-frame mask" baseline.

DAVIS layout: the official DAVIS protocol (``util/metrics.py``). YouTube layout: each
object is scored on every frame after the one where it is first annotated (as the
YouTube-VOS server does), J&F averaged over objects; the baseline copies each object's
annotation forward.

    python -m scripts.evidence_synthvos --model saves/qdmn_lite_synth.pth --root data/SynthVOS --out docs/evidence
    python -m scripts.evidence_synthvos --model saves/qdmn_lite_synth.pth --root '' --heldout data/heldout --name heldout

``--heldout``: the same on clips of the held-out generator (``scripts/make_heldout.py``),
never trained on.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import numpy as np

if not __package__:  # `python scripts/NAME.py`: the packages are in the repository root, not in scripts/
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from datasets import layouts
from util import write_gate
from util.errors import exit_on_user_error, run_python
from util.image_io import list_images, load_mask, mask_palette, save_palette_png
from util.metrics import db_eval_boundary_batch, db_eval_iou_batch
from util.metrics_folders import run_jf

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


def davis_results(model: str, davis_2017: Path, work: Path, device: list[str]) -> tuple[dict[str, dict], int]:
    """J&F of the model and of the baseline on a DAVIS 2017 val layout; and the number of videos."""
    trainval = layouts.davis_folder(davis_2017, "val")
    names = layouts.davis_image_set(trainval, "2017", "val").read_text().split()
    run_python(["eval_davis.py", "--model", model, "--davis", str(davis_2017), "--output", str(work / "model"), "--overwrite", *device],
               ROOT)
    copy_first_davis(trainval, work / "copy", names)
    gt = layouts.davis_annotations(trainval)
    results = {name: run_jf(gt, work / folder, sequences=names, write_csv=False, verbose=False)["global"]
               for name, folder in (("model", "model"), ("copy first mask", "copy"))}
    return results, len(names)


def youtube_results(model: str, yv: Path, work: Path, device: list[str]) -> dict[str, dict]:
    """J&F of the model (native size) and of the baseline on a YouTube-VOS valid layout (every frame has ground truth)."""
    run_python(["eval_youtube.py", "--model", model, "--yv", str(yv), "--output", str(work / "model"), "--size", "-1", "--overwrite",
                *device], ROOT)
    copy_first_youtube(yv, work / "copy")
    return {name: youtube_jf(yv, work / folder) for name, folder in (("model", "model"), ("copy first mask", "copy"))}


def davis_rows(label: str, results: dict[str, dict], videos: int) -> list[str]:
    return [f"| {label} (DAVIS layout, {videos} videos) | {method} | {100 * g['J&F-Mean']:.1f} | {100 * g['J-Mean']:.1f} | "
            f"{100 * g['F-Mean']:.1f} |" for method, g in results.items()]


def youtube_rows(label: str, results: dict[str, dict]) -> list[str]:
    return [f"| {label} (YouTube layout, {g['objects']} objects) | {method} | {100 * g['J&F']:.1f} | {100 * g['J']:.1f} | "
            f"{100 * g['F']:.1f} |" for method, g in results.items()]


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--root", default="data/SynthVOS", help="SynthVOS root (scripts/make_synthvos.py); '' to leave it out")
    p.add_argument("--heldout", default=None,
                   help="also the held-out clips of scripts/make_heldout.py --out DIR")
    p.add_argument("--out", default="docs/evidence")
    p.add_argument("--name", default="synthvos", help="reports in --out: NAME.md and NAME.json")
    p.add_argument("--work", default="outputs/evidence_synthvos")
    p.add_argument("--device", default=None)
    args = p.parse_args(argv)
    work, out = Path(args.work), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    device = ["--device", args.device] if args.device else []
    lines = ["| set | method | J&F | J | F |", "|---|---|---:|---:|---:|"]
    report: dict[str, object] = {"model": args.model}
    sets = [("SynthVOS val", "SynthVOS yv", Path(args.root), "")] if args.root else []
    if args.heldout:
        sets.append(("held-out", "held-out", Path(args.heldout), "heldout_"))
    for davis_label, youtube_label, root, key in sets:
        davis_2017 = root / "val" / "2017" if key == "" else root / "2017"
        davis, videos = davis_results(args.model, davis_2017, work / f"{key}val", device)
        lines += davis_rows(davis_label, davis, videos)
        report[f"{key}davis"] = davis
        if (root / "yv").is_dir():
            youtube = youtube_results(args.model, root / "yv", work / f"{key}yv", device)
            lines += youtube_rows(youtube_label, youtube)
            report[f"{key}youtube"] = youtube
    table = "\n".join(lines) + "\n"
    write_gate.write_text(out / f"{args.name}.md", table, "--out")
    write_gate.write_json(out / f"{args.name}.json", report, "--out")
    print(table)


if __name__ == "__main__":
    main(sys.argv[1:])
