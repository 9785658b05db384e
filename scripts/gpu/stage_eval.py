"""Stage 3, ``eval``: ``eval_davis.py`` on the device and the CPU (FPS, memory, masks and memory decisions compared),
the official code on the same device, ``scripts/benchmark.py`` (docs/GPU_CHECK.md)."""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Any, Optional

from scripts.gpu.profiles import ROOT, SKIPPED_CPU
from scripts.gpu.runner import Check, Job, keep, measured, python, read_json, wait_data
from util.write_gate import write_text

DEFAULT_OFFICIAL = ROOT / ".official" / "qdmn-official.tar"  # written by benchmarks/gpu_check_prepare.sh
# A random official-layout network made confident: near-binary predictions (--pred_gain), a memory readout that
# dominates (--value_gain) and QAM scores near 1 (--qam_gain, --qam_bias), so that frames are admitted to the memory.
CONFIDENT_CHECKPOINT = ["--official", "--seed", "3", "--qam_activation", "relu", "--pred_gain", "30", "--value_gain", "10",
                        "--qam_gain", "0.1", "--qam_bias", "1"]  # fmt: skip

def subset_root(source: Path, dest: Path, count: int) -> list[str]:
    """A DAVIS 2017 root under ``dest`` holding the first ``count`` videos of ``source`` (symbolic links)."""
    trainval = source / "2017" / "trainval"
    names = [n for n in (trainval / "ImageSets" / "2017" / "val.txt").read_text().split() if n][:count]
    for kind in ("JPEGImages", "Annotations"):
        folder = dest / "2017" / "trainval" / kind / "480p"
        folder.mkdir(parents=True, exist_ok=True)
        for name in names:
            (folder / name).symlink_to(trainval / kind / "480p" / name)
    sets = dest / "2017" / "trainval" / "ImageSets" / "2017"
    sets.mkdir(parents=True, exist_ok=True)
    write_text(sets / "val.txt", "".join(f"{n}\n" for n in names), "--work")
    return names


def mask_agreement(first: Path, second: Path, videos: list[str]) -> dict[str, Any]:
    import numpy as np

    from util.image_io import load_mask

    total = equal = frames = 0
    for video in videos:
        for png in sorted((second / video).glob("*.png")):
            other = first / video / png.name
            if not other.is_file():
                raise RuntimeError(f"{other}: missing")
            a, b = load_mask(png), load_mask(other)
            total += a.size
            equal += int(np.count_nonzero(a == b)) if a.shape == b.shape else 0
            frames += 1
    return {"frames": frames, "pixels": total, "pixels_equal": equal, "share_equal": equal / total if total else None}


def eval_precision(output: str, device: str, amp: bool) -> str:
    if not amp:
        return "float32"
    if "--amp ignored" in output:
        return "float32 (--amp ignored: no native bfloat16)"
    return "float16" if device == "cuda" else "bfloat16"


def eval_record(check: Check, measure: dict[str, Any], stats: dict[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "fps": stats.get("fps"),
        "frames": stats.get("frames"),
        "eval_seconds": stats.get("seconds"),
        "compile_seconds": stats.get("compile_seconds"),  # --compile: not in eval_seconds and fps
        "peak_memory_frames": stats.get("peak_memory_frames"),
        "peak_rss_mib": measure.get("peak_rss_mib"),
    }
    fields["peak_cuda_allocated_mib"] = measure.get("peak_cuda_allocated_mib") if check.cuda else SKIPPED_CPU
    fields["peak_cuda_reserved_mib"] = measure.get("peak_cuda_reserved_mib") if check.cuda else SKIPPED_CPU
    fields["decisions"] = {
        name: {"admitted": v.get("admitted"), "evicted": v.get("evicted")} for name, v in (stats.get("per_video") or {}).items()
    }
    return fields


def stage_eval(check: Check, record: dict[str, Any], deadline: float, jobs: dict[str, Job]) -> None:
    p, base, data = check.profile, check.work / "eval", check.work / "data"
    if not wait_data(check, record, jobs, ["eval"], deadline):
        raise RuntimeError("the evaluation videos could not be generated")
    base.mkdir(parents=True, exist_ok=True)
    subset = subset_root(data / "eval", data / "eval_cpu", p.cpu_videos)
    model = base / "confident_random.pth"
    from scripts import make_random_checkpoint

    try:
        make_random_checkpoint.main(["--out", str(model), *CONFIDENT_CHECKPOINT])
    except SystemExit as e:  # its one-line error is printed; the stage records the failure
        raise RuntimeError(f"make_random_checkpoint failed (exit {e.code})") from None
    record["data"] = {"videos": p.eval_videos, "frames_per_video": p.eval_frames, "size": list(p.eval_hw), "cpu_videos": subset}
    record["checkpoint"] = {"make_random_checkpoint": shlex.join(CONFIDENT_CHECKPOINT), "config": "official"}
    runs: dict[str, dict[str, Any]] = {}
    whole, part = data / "eval" / "2017", data / "eval_cpu" / "2017"
    plan = [("fp32", check.device, whole, [], {}), ("amp", check.device, whole, ["--amp"], {}), ("cpu_reference", "cpu", part, [], {})]
    if check.cuda:  # float32 without TF32 convolutions (PyTorch's default lets cuDNN use TF32): the numerics alone
        plan.append(("fp32_no_tf32", "cuda", part, [], {"NVIDIA_TF32_OVERRIDE": "0"}))
    for name, device, davis, extra, env in plan:
        result_file, stats_file = base / f"{name}.measure.json", base / f"{name}.stats.json"
        compile_flag = ["--compile"] if check.compile["eval"] and device != "cpu" else []
        args = ["--model", str(model), "--davis", str(davis), "--output", str(base / f"out_{name}"), "--device", device]
        args += ["--qam_activation", "relu", "--stats_json", str(stats_file), *extra, *compile_flag]
        run = check.wait(check.launch(f"eval_{name}", measured(result_file, "eval_davis.py", *args), env=check.env(**env)), deadline)
        runs[name] = keep(
            record,
            f"eval_{name}",
            run,
            device=device,
            precision=eval_precision(run["output"], device, bool(extra)),
            environment=env or None,
            **eval_record(check, read_json(result_file), read_json(stats_file)),
        )
        check.write_results()
    agreement = {}
    for name in ("fp32", "amp", "fp32_no_tf32"):
        if name in runs and runs[name]["status"] == "ok" and runs["cpu_reference"]["status"] == "ok":
            share = mask_agreement(base / f"out_{name}", base / "out_cpu_reference", subset)
            same = all(runs[name]["decisions"].get(v) == runs["cpu_reference"]["decisions"].get(v) for v in subset)
            agreement[name] = {
                **share,
                "decisions_equal": same,
                "decisions": {v: [runs[name]["decisions"].get(v), runs["cpu_reference"]["decisions"].get(v)] for v in subset},
            }
    record["device_vs_cpu"] = agreement
    for name, target in (("fp32", 0.999), ("amp", 0.995), ("fp32_no_tf32", 0.999)):
        found = agreement.get(name, {})
        share = found.get("share_equal")
        passed = share is not None and share >= target and found["decisions_equal"]
        goal = f">= {100 * target:.1f} % of pixels and the same memory decisions"
        if check.cuda:
            check.check(f"GPU masks = CPU masks, {name}", passed, share, goal)
        elif name in agreement:  # the CPU against itself: the comparison runs, it checks nothing about a GPU
            check.check(f"device masks = CPU masks, {name}", None, share, f"{SKIPPED_CPU}; on a GPU {goal}")
    official(check, record, deadline, model, runs)
    benchmark(check, record, deadline)


def official_repo(check: Check) -> Optional[Path]:
    value = check.args.official_repo
    if value is None:
        value = os.environ.get("QDMN_OFFICIAL_REPO") or (str(DEFAULT_OFFICIAL) if DEFAULT_OFFICIAL.exists() else "")
    return Path(value).expanduser() if value else None


def official(check: Check, record: dict[str, Any], deadline: float, model: Path, runs: dict[str, dict[str, Any]]) -> None:
    """The official code on the same device and videos: mask agreement and FPS (scripts/compare_official.py)."""
    repo = official_repo(check)
    if repo is None or not repo.exists():
        record["official"] = f"skipped (no official code: {repo or 'set --official_repo or run benchmarks/gpu_check_prepare.sh'})"
        return
    base = check.work / "eval" / "official"
    report = base / "report.json"
    cmd = python(
        "-m",
        "scripts.compare_official",
        "--official_repo",
        str(repo),
        "--model",
        str(model),
        "--davis",
        str(check.work / "data" / "eval" / "2017"),
        "--fix_eviction",
        "--device",
        check.device,
        "--work_dir",
        str(base),
        "--json",
        str(report),
        "--min_agreement",
        "0",
    )
    run = keep(record, "official", check.run("official", cmd, deadline))
    found = read_json(report)
    fps = found.get("fps") or {}
    official_fps = fps.get("official")
    ratio = {name: runs[name]["fps"] / official_fps for name in ("fp32", "amp") if official_fps and runs.get(name, {}).get("fps")}
    record["official"] = {
        "status": run["status"],
        "agreement_overall": found.get("overall"),
        "agreement_min": found.get("minimum"),
        "commit": (found.get("settings") or {}).get("commit"),
        "fps_official": official_fps,
        "fps_project_official_kernels": fps.get("project"),
        "fps_ratio_project_to_official": ratio,
    }
    check.check(
        f"official code on {check.device}: same masks",
        found.get("overall") is not None and found["overall"] >= 0.999,
        found.get("overall"),
        ">= 99.9 % of pixels",
    )
    check.check(f"FPS against the official code on {check.device}", bool(ratio) or None, ratio, "published (project fast path / official)")


def benchmark(check: Check, record: dict[str, Any], deadline: float) -> None:
    """scripts/benchmark.py (official configuration, 2 objects): FPS, stages, peak memory, FLOPs; float32 and --amp."""
    p, base, results = check.profile, check.work / "eval", {}
    h, w = map(str, p.eval_hw)
    for name, extra in (("fp32", []), ("amp", ["--amp"])):
        if check.left(deadline) < 20:
            results[name] = "skipped (stage time box)"
            continue
        out = base / f"benchmark_{name}.json"
        cmd = python(
            "-m",
            "scripts.benchmark",
            "--config",
            "official",
            "--height",
            h,
            "--width",
            w,
            "--objects",
            "2",
            "--frames",
            str(p.bench_frames),
            "--device",
            check.device,
            "--flop_frames",
            str(p.flop_frames),
            *extra,
            "--json",
            str(out),
            "--markdown",
            str(base / f"benchmark_{name}.md"),
        )
        keep(record, f"benchmark_{name}", check.run(f"benchmark_{name}", cmd, deadline))
        found = read_json(out).get("results") or [{}]
        results[name] = found[0]
    record["benchmark"] = results

