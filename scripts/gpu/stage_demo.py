"""Stage 4, ``demo``: the demonstration model trained further in the time left, exported in float16 and split into
the output folder every minute, so that a run cut off still returns weights (docs/GPU_CHECK.md)."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any, Optional

from scripts.gpu.profiles import DEMO_FILE
from scripts.gpu.runner import Check, Job, keep, measured, memory_fields, read_json, wait_data
from scripts.join_parts import split_file


def link_training_layout(data: Path, dest: Path) -> dict[str, int]:
    """One DAVIS root and one YouTube-VOS train root (symbolic links) over the wide and SynthVOS-style sets."""
    davis = dest / "davis" / "2017" / "trainval"
    youtube = dest / "youtube" / "train"
    counts = {"davis_videos": 0, "youtube_videos": 0}
    for source in ("wide", "synthstyle"):
        val = data / source / "val" / "2017" / "trainval"
        for kind in ("JPEGImages", "Annotations"):
            (davis / kind / "480p").mkdir(parents=True, exist_ok=True)
            for video in sorted((val / kind / "480p").iterdir()) if (val / kind / "480p").is_dir() else []:
                (davis / kind / "480p" / video.name).symlink_to(video)
                counts["davis_videos"] += kind == "JPEGImages"
        yv = data / source / "yv"
        pairs = (("JPEGImages", yv / "all_frames" / "valid_all_frames" / "JPEGImages"), ("Annotations", yv / "valid_gt" / "Annotations"))
        for kind, folder in pairs:
            (youtube / kind).mkdir(parents=True, exist_ok=True)
            for video in sorted(folder.iterdir()) if folder.is_dir() else []:
                (youtube / kind / video.name).symlink_to(video)
                counts["youtube_videos"] += kind == "JPEGImages"
    return counts


def demo_rate(check: Check) -> tuple[float, str]:
    """Iterations per second expected at the demo's size: stage 2's lite --amp rate scaled by pixels x batch."""
    p = check.profile
    measured_rate = ((check.results["stages"].get("train") or {}).get("runs") or {}).get("train_lite_amp", {}).get("its_per_s")
    if not measured_rate:
        return p.demo_rate_guess, f"guess ({p.demo_rate_guess} it/s: stage 2 measured nothing)"
    scale = (p.crop * p.crop * p.batch) / (p.demo_hw[0] * p.demo_hw[1] * p.demo_batch)
    return measured_rate * scale, f"stage 2 lite --amp {measured_rate:.2f} it/s x {scale:.3f} (pixels x batch)"


def newest_weights(folder: Path, run_id: str) -> tuple[int, Optional[Path]]:
    best: tuple[int, Optional[Path]] = (0, None)
    for path in folder.glob(f"saves/*/*_{run_id}_*.pth"):
        tail = path.stem.rsplit("_", 1)[-1]
        if tail.isdigit() and int(tail) > best[0]:
            best = (int(tail), path)
    return best


def export_demo(check: Check, record: dict[str, Any], iteration: int, source: Path) -> None:
    """float16 weights of ``source``, split into parts beside their manifest in the output folder."""
    from scripts import export_weights

    target = check.work / "demo" / "export" / DEMO_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        export_weights.main([str(source), str(target), "--half"])
    except SystemExit as e:
        raise RuntimeError(f"export of {source} failed (exit {e.code})") from None
    extra = {"iteration": iteration, "init": str(record["init"]), "elapsed_s": round(time.monotonic() - check.start, 1)}
    manifest = split_file(target, check.out, check.args.part_mib * 2**20, extra)
    record["exports"].append({"iteration": iteration, "elapsed_s": extra["elapsed_s"], "sha256": manifest["sha256"]})
    record["weights"] = {k: v for k, v in manifest.items() if k != "format"}
    check.log(f"[demo] iteration {iteration} exported: {DEMO_FILE} in {len(manifest['parts'])} parts, SHA-256 {manifest['sha256']}")
    check.write_results()


def stage_demo(check: Check, record: dict[str, Any], deadline: float, jobs: dict[str, Job]) -> None:
    p, base, data = check.profile, check.work / "demo", check.work / "data"
    record["init"] = check.args.demo_init
    record["exports"] = []
    reserve = 30.0 if not check.args.tiny else 10.0  # the save on SIGTERM and the last export
    if not wait_data(check, record, jobs, ["demo_wide", "demo_style"], deadline - reserve):
        raise RuntimeError("the demonstration model's training data could not be generated")
    record["data"] = link_training_layout(data, base / "data")
    rate, source = demo_rate(check)
    train_s = check.left(deadline) - reserve
    startup = 20.0 if not check.args.tiny else 0.0
    iterations = p.demo_iterations or max(2, int(rate * max(0.0, train_s - startup) * 0.9))
    save_every = max(1, int(rate * p.demo_export_every_s))
    record["plan"] = {
        "rate_estimate_its_per_s": rate,
        "rate_source": source,
        "iterations": iterations,
        "lr_decay_at": int(0.8 * iterations),
        "save_every": save_every,
        "training_seconds": round(train_s, 1),
    }
    result_file = base / "demo.measure.json"
    h, w = p.demo_hw
    flags = f"--stage 2 --amp --size {h} --crop_width {w} -b {p.demo_batch} -i {iterations} --steps {max(1, int(0.8 * iterations))} "
    flags += f"--lr 1e-4 --no_subset --save_every {save_every} --seed 5 --id demo_gpu --device {check.device}"
    workers = ["--num_workers", str(p.demo_workers)] if p.demo_workers is not None else []
    paths = ["--load_network", str(check.args.demo_init), "--davis_root", str(base / "data" / "davis"), "--yv_root",
             str(base / "data" / "youtube")]  # fmt: skip
    compile_flag = ["--compile"] if check.compile["train"] else []
    cmd = measured(result_file, "train.py", *flags.split(), *paths, *workers, *compile_flag)
    job = check.launch("demo_train", cmd, base)
    train_deadline = time.monotonic() + train_s
    exported, last_export = 0, time.monotonic()
    while job.proc.poll() is None and check.left(train_deadline) > 0:
        time.sleep(0.2 if check.args.tiny else 2.0)
        it, path = newest_weights(base, "demo_gpu")
        if path is not None and it > exported and time.monotonic() - last_export >= p.demo_export_every_s:
            export_demo(check, record, it, path)
            exported, last_export = it, time.monotonic()
    run = check.wait(job, train_deadline, grace=reserve - 5)
    if run["status"] == "timeout" and "stopped at iteration" in run["output"]:
        run["status"] = "ok (stopped at the time box)"
    it, path = newest_weights(base, "demo_gpu")
    if path is not None and it > exported:
        export_demo(check, record, it, path)
    saves = sorted(base.glob("saves/*/*_demo_gpu_*.pth"), key=lambda f: f.stat().st_mtime)
    saves = [s for s in saves if s.stem.rsplit("_", 1)[-1].isdigit()]
    rate_found = None
    if len(saves) > 1:
        its = [int(s.stem.rsplit("_", 1)[-1]) for s in (saves[0], saves[-1])]
        seconds = saves[-1].stat().st_mtime - saves[0].stat().st_mtime
        rate_found = (its[1] - its[0]) / seconds if seconds > 0 else None
    losses = [float(v) for v in re.findall(r"\[total_loss\s*\]: (\S+)", run["output"])]
    keep(
        record,
        "demo_train",
        run,
        iterations_done=it,
        its_per_s_between_saves=rate_found,
        losses_every_100=losses,
        **memory_fields(check, read_json(result_file)),
    )
    check.check(
        "demonstration model returned",
        bool(record["exports"]) or None,
        record.get("weights", {}).get("iteration"),
        "float16 weights in parts, joined by scripts/join_parts.py",
    )

