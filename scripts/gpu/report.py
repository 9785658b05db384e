"""``gpu_check.md``: the results of ``gpu_check.json`` summarised (capability line, stages, checks, tables)."""

from __future__ import annotations

from typing import Any, Optional

from scripts.gpu.profiles import STAGES


def cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if value is None:
        return "–"
    return str(value).replace("|", "/").replace("\n", " ")


def percent(share: Optional[float]) -> str:
    return "–" if share is None else f"{100 * share:.4f} %"


def markdown(results: dict[str, Any]) -> str:
    stages = results["stages"]
    env = stages.get("env") or {}
    lines = [
        "# GPU check",
        "",
        f"- command: `{results['command']}`",
        f"- device: {results['device']}" + (" (dry run, --tiny)" if results["tiny"] else ""),
        f"- git: {results['git']}",
        f"- started {results['started']}, {results.get('elapsed_s')} s of a {results['budget_s']} s budget",
        "",
    ]
    if isinstance(env.get("capability_line"), str) and env["capability_line"].startswith("|"):
        lines += [
            "| device | compute capability | bfloat16 | float16 | memory | SMs |",
            "|---|---|---|---|---|---|",
            env["capability_line"],
            "",
        ]
    versions = env.get("versions") or {}
    if versions:
        lines += [
            f"- torch {versions.get('torch')}, CUDA {versions.get('cuda')}, cuDNN {versions.get('cudnn')}, "
            f"NCCL {versions.get('nccl', '–')}, Python {versions.get('python')}, CPU {versions.get('cpu')} ({versions.get('cpus')})",
            "",
        ]
    compiling = env.get("compile")
    if isinstance(compiling, dict):
        lines += [
            f"- --compile: requested {compiling.get('requested')}; passed to train.py {compiling.get('passed to train.py')}, "
            f"to eval_davis.py {compiling.get('passed to eval_davis.py')} (docs/COMPILE.md)",
            "",
        ]
    lines += ["## Stages", "", "| stage | status | seconds | time box (s) |", "|---|---|---:|---:|"]
    for name in STAGES:
        if name in stages:
            s = stages[name]
            lines.append(f"| {name} | {cell(s.get('status'))} | {cell(s.get('seconds'))} | {cell(s.get('timebox_s'))} |")
    lines += ["", "## Checks", "", "| check | passed | value | target |", "|---|---|---|---|"]
    for name, c in results["checks"].items():
        passed = {True: "yes", False: "**NO**", None: "–"}[c["passed"]]
        lines.append(f"| {cell(name)} | {passed} | {cell(c['value'])} | {cell(c['target'])} |")
    train = (stages.get("train") or {}).get("runs") or {}
    rows = [(k.removeprefix("train_"), v) for k, v in train.items() if k.startswith("train_")]
    if rows:
        lines += [
            "",
            "## Training (train.py --stage 2)",
            "",
            "| run | status | precision | it/s | loss first → last | peak CUDA MiB | GradScaler scale |",
            "|---|---|---|---:|---|---:|---:|",
        ]
        for name, r in rows:
            lines.append(
                f"| {name} | {cell(r.get('status'))} | {cell(r.get('precision'))} | {cell(r.get('its_per_s'))} | "
                f"{cell(r.get('loss_first'))} → {cell(r.get('loss_last'))} | {cell(r.get('peak_cuda_allocated_mib'))} | "
                f"{cell(r.get('scaler_scale'))} |"
            )
    resume = (stages.get("train") or {}).get("resume")
    if resume:
        lines += [
            "",
            f"Resume ({resume['precision']}, {resume['iterations']} = {resume['stopped_at']} + "
            f"{resume['iterations'] - resume['stopped_at']} iterations): **{resume['verdict']}**; resumed vs uninterrupted: "
            f"{resume['resume_vs_full']['tensors_differing']} of {resume['resume_vs_full']['tensors']} tensors differ; "
            f"rerun vs uninterrupted: {resume['rerun_vs_full']['tensors_differing']}.",
        ]
    ev = stages.get("eval") or {}
    eval_runs = {k.removeprefix("eval_"): v for k, v in (ev.get("runs") or {}).items() if k.startswith("eval_")}
    if eval_runs:
        lines += [
            "",
            "## Evaluation (eval_davis.py)",
            "",
            "| run | device | status | FPS | frames | compile s | peak CUDA MiB | peak RSS MiB |",
            "|---|---|---|---:|---:|---:|---:|---:|",
        ]
        for name, r in eval_runs.items():
            lines.append(
                f"| {name} | {cell(r.get('device'))} | {cell(r.get('status'))} | {cell(r.get('fps'))} | {cell(r.get('frames'))} | "
                f"{cell(r.get('compile_seconds'))} | {cell(r.get('peak_cuda_allocated_mib'))} | {cell(r.get('peak_rss_mib'))} |"
            )
        for name, a in (ev.get("device_vs_cpu") or {}).items():
            lines.append(
                f"\n{name} against the CPU: {percent(a.get('share_equal'))} of {a.get('pixels')} pixels equal "
                f"({a.get('frames')} frames), memory decisions equal: {a.get('decisions_equal')}."
            )
        off = ev.get("official")
        if isinstance(off, dict):
            lines += [
                "",
                f"Official code ({cell(off.get('commit'))}) on the same device: agreement {percent(off.get('agreement_overall'))}, "
                f"FPS official {cell(off.get('fps_official'))}, "
                f"project with --official_kernels {cell(off.get('fps_project_official_kernels'))}, "
                f"ratio project/official {cell(off.get('fps_ratio_project_to_official'))}.",
            ]
        elif off:
            lines += ["", f"Official code: {off}."]
        for name, b in (ev.get("benchmark") or {}).items():
            if isinstance(b, dict) and b:
                lines.append(
                    f"\nscripts/benchmark.py {name}: {cell(b.get('fps'))} FPS over {b.get('frames')} frames, peak CUDA "
                    f"{cell(b.get('peak_cuda_mib'))} MiB, {cell(b.get('gflop_per_frame'))} GFLOP/frame."
                )
    demo = stages.get("demo") or {}
    if demo.get("plan"):
        weights = demo.get("weights") or {}
        run = (demo.get("runs") or {}).get("demo_train", {})
        lines += [
            "",
            "## Demonstration model",
            "",
            f"- from {demo.get('init')}, data {demo.get('data')}",
            f"- plan: {demo['plan']}",
            f"- run: {cell(run.get('status'))}, {cell(run.get('iterations_done'))} iterations, "
            f"{cell(run.get('its_per_s_between_saves'))} it/s, peak CUDA {cell(run.get('peak_cuda_allocated_mib'))} MiB",
            f"- returned: {weights.get('file')} at iteration {weights.get('iteration')}, {weights.get('size')} bytes in "
            f"{len(weights.get('parts') or [])} parts, SHA-256 {weights.get('sha256')}",
            "- join here: `python -m scripts.join_parts <folder>/qdmn_lite_gpu.json --out saves/qdmn_lite_gpu.pth`",
        ]
    for name in STAGES:
        error = (stages.get(name) or {}).get("error")
        if error:
            lines += ["", f"**{name} failed**: {cell(error)}"]
    return "\n".join(lines) + "\n"

