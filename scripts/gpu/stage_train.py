"""Stage 2, ``train``: ``train.py --stage 2`` (lite and official, float32 and ``--amp``), exact resume with ``--amp``,
torchrun with one rank and a process group (docs/GPU_CHECK.md)."""

from __future__ import annotations

import math
import re
import statistics
from pathlib import Path
from typing import Any, Optional

from scripts.gpu.profiles import ROOT, SKIPPED_CPU
from scripts.gpu.runner import Check, Job, keep, measured, memory_fields, read_json, torchrun, wait_data


def train_args(check: Check) -> list[str]:
    """train.py's stage-2 flags common to stage 2's runs (``--model_config`` last, its value to follow)."""
    p, data = check.profile, check.work / "data"
    flags = f"--stage 2 --no_subset --size {p.crop} -b {p.batch} --device {check.device} --seed 0"
    return [*flags.split(), "--davis_root", str(data / "train_davis"), "--yv_root", str(data / "train_yv"), "--model_config"]


def train_flags(check: Check) -> list[str]:
    p = check.profile
    return [*(["--num_workers", str(p.workers)] if p.workers is not None else []), *(["--compile"] if check.compile["train"] else [])]


def training_precision(output: str) -> str:
    found = re.search(r"mixed precision: (\S+) autocast( with loss scaling)?", output)
    if found:
        return found.group(1) + (" + GradScaler" if found.group(2) else "")
    return "float32 (--amp ignored: no native bfloat16)" if "--amp ignored" in output else "float32"


def parse_training(output: str) -> dict[str, Any]:
    """Losses, iteration times and precision from train.py's console (``--debug`` prints every iteration)."""
    losses = [float(v) for v in re.findall(r"\[total_loss\s*\]: (\S+)", output)]
    times = [float(v) for v in re.findall(r"\[time\s*\]: (\S+)", output)]
    fields: dict[str, Any] = {
        "losses": losses,
        "loss_first": losses[0] if losses else None,
        "loss_last": losses[-1] if losses else None,
        "losses_finite": bool(losses) and all(math.isfinite(v) for v in losses),
        "precision": training_precision(output),
        "memory_format": (re.findall(r"memory format: (\S+)", output) or ["?"])[-1],
    }
    compiling = re.search(r"--compile: the first iteration took (\S+) s", output)
    if compiling:
        fields["compile_first_iteration_s"] = float(compiling.group(1))
    warm = times[min(3, len(times) // 3) :] if len(times) > 1 else times
    if warm:
        fields["iteration_s_median"] = statistics.median(warm)
        fields["its_per_s"] = 1.0 / fields["iteration_s_median"] if fields["iteration_s_median"] > 0 else None
        fields["timed_iterations"] = len(warm)
    return fields


def stage_train(check: Check, record: dict[str, Any], deadline: float, jobs: dict[str, Job]) -> None:
    p, base = check.profile, check.work / "train"
    if not wait_data(check, record, jobs, ["train_davis", "train_yv"], deadline):
        raise RuntimeError("the training data could not be generated")
    common = train_args(check)
    measurements: dict[str, Any] = {}
    for config in ("lite", "official"):
        for precision in ("fp32", "amp"):
            name = f"{config}_{precision}"
            result_file = base / f"{name}.measure.json"
            cmd = measured(
                result_file,
                "train.py",
                *common,
                config,
                "-i",
                str(p.iterations),
                "--id",
                "NULL",
                "--debug",
                *(["--amp"] if precision == "amp" else []),
                *train_flags(check),
            )
            run = check.run(f"train_{name}", cmd, deadline, cwd=base / name)
            fields = {**parse_training(run["output"]), **memory_fields(check, read_json(result_file))}
            measurements[name] = keep(record, f"train_{name}", run, iterations=p.iterations, **fields)
            check.write_results()
    good = [m for m in measurements.values() if m["status"] == "ok" and m["losses_finite"]]
    check.check(
        f"training on {check.device} (lite/official, float32/--amp)",
        len(good) == 4,
        {k: round(v.get("its_per_s") or 0, 2) for k, v in measurements.items()},
        "4 runs with finite losses (it/s shown)",
    )
    resume_and_torchrun(check, record, deadline, common)


def weights_file(folder: Path, iteration: int) -> Optional[Path]:
    found = sorted(folder.glob(f"saves/*/*_{iteration}.pth"))
    return found[-1] if found else None


def compare_weights(a: Path, b: Path) -> dict[str, Any]:
    import torch

    from model.checkpoint import safe_load

    first, second = safe_load(a)["network"], safe_load(b)["network"]
    differing, max_abs = 0, 0.0
    for key, value in first.items():
        other = second[key]
        if not torch.equal(value, other):
            differing += 1
            if value.is_floating_point():
                max_abs = max(max_abs, float((value.double() - other.double()).abs().max()))
    return {"tensors": len(first), "tensors_differing": differing, "bitwise": differing == 0, "max_abs_diff": max_abs}


def resume_and_torchrun(check: Check, record: dict[str, Any], deadline: float, common: list[str]) -> None:
    """N = N/2 + N/2 with --amp against a run of N and a rerun of N (run-to-run tolerance); torchrun; process group."""
    p, base = check.profile, check.work / "train"
    n, half = p.resume_iterations, p.resume_iterations // 2
    lite_amp = [*common, "lite", "-i", str(n), "--amp", *train_flags(check)]
    jobs = {
        "full": check.launch("resume_full", measured(base / "full.measure.json", "train.py", *lite_amp, "--id", "full"), base / "full"),
        "again": check.launch(
            "resume_again", measured(base / "again.measure.json", "train.py", *lite_amp, "--id", "again"), base / "again"
        ),
        "half": check.launch(
            "resume_half",
            measured(base / "half.measure.json", "train.py", *lite_amp, "--id", "half", "--stop_at", str(half)),
            base / "half",
        ),
        "torchrun": check.launch(
            "torchrun_train",
            torchrun(
                "-m",
                "scripts.measure_run",
                str(base / "torchrun.measure.json"),
                str(ROOT / "train.py"),
                *common,
                "lite",
                "-i",
                str(p.iterations // 2 or 1),
                "--id",
                "NULL",
                "--amp",
                *train_flags(check),
            ),
            base / "torchrun",
        ),
        "probe": check.launch(
            "process_group", torchrun("-m", "scripts.distributed_probe", str(base / "probe.json"), "--device", check.device), base / "probe"
        ),
    }
    runs = {name: keep(record, job.name, check.wait(job, deadline)) for name, job in jobs.items()}
    torchrun_output = jobs["torchrun"].log.read_text(errors="replace")
    placed = re.findall(r"I am rank (\d+) in this world of size (\d+), on (\S+)", torchrun_output)
    runs["torchrun"]["placement"] = " ".join(placed[-1]) if placed else None
    expected_device = "cuda:0" if check.cuda else "cpu"
    check.check(
        "torchrun --nproc_per_node 1 train.py",
        runs["torchrun"]["status"] == "ok" and bool(placed) and placed[-1][2] == expected_device,
        placed[-1][2] if placed else None,
        f"rank 0 on {expected_device}",
    )
    probe = read_json(base / "probe.json")
    runs["probe"].update({k: v for k, v in probe.items() if k != "all_gather"})
    backend = "nccl" if check.cuda else "gloo"
    check.check(
        f"process group ({backend}) under torchrun",
        probe.get("backend") == backend and probe.get("all_reduce_ok") is True,
        probe.get("nccl_version", probe.get("backend")),
        f"{backend} all_reduce, all_gather_object, broadcast, barrier",
    )
    for name in ("full", "again", "half", "torchrun"):
        runs[name].update(memory_fields(check, read_json(base / f"{name}.measure.json")))
    checkpoint = sorted((base / "half").glob("saves/*/*_checkpoint.pth"))
    if runs["half"]["status"] != "ok" or not checkpoint:
        raise RuntimeError("the run to N/2 left no checkpoint to resume from")
    rest = check.run(
        "resume_rest",
        measured(base / "rest.measure.json", "train.py", *lite_amp, "--id", "rest", "--load_model", str(checkpoint[-1])),
        deadline,
        cwd=base / "rest",
    )
    resumed_exactly = "Resuming" in rest["output"] and "not continue exactly" not in rest["output"]
    rest_record = keep(record, "resume_rest", rest, **memory_fields(check, read_json(base / "rest.measure.json")))
    files = {name: weights_file(base / name, n) for name in ("full", "again", "rest")}
    if any(f is None for f in files.values()):
        raise RuntimeError(f"weights at iteration {n} missing: {[k for k, v in files.items() if v is None]}")
    resume = compare_weights(files["full"], files["rest"])
    rerun = compare_weights(files["full"], files["again"])
    full_scales = read_json(base / "full.measure.json").get("scaler_scales") or []
    rest_scales = read_json(base / "rest.measure.json").get("scaler_scales") or []
    if resume["bitwise"]:
        verdict, passed = "bitwise", True
    elif resume["max_abs_diff"] <= rerun["max_abs_diff"]:
        verdict, passed = f"within the run-to-run tolerance (max |diff| {resume['max_abs_diff']:.3g} <= {rerun['max_abs_diff']:.3g})", True
    else:
        verdict, passed = f"differs beyond the run-to-run tolerance ({resume['max_abs_diff']:.3g} > {rerun['max_abs_diff']:.3g})", False
    record["resume"] = {
        "iterations": n,
        "stopped_at": half,
        "precision": parse_training(rest["output"])["precision"],
        "resume_vs_full": resume,
        "rerun_vs_full": rerun,
        "verdict": verdict,
        "resumed_message": resumed_exactly,
        "scaler_scales_full_second_half": full_scales[half:] if check.cuda else SKIPPED_CPU,
        "scaler_scales_resumed": rest_scales if check.cuda else SKIPPED_CPU,
    }
    rest_record["verdict"] = verdict
    check.check(
        "exact resume with --amp (N = N/2 + N/2)",
        passed and resumed_exactly,
        verdict,
        "bitwise, or within the difference between two uninterrupted runs",
    )

