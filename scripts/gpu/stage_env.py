"""Stage 1, ``env``: nvidia-smi, versions and the capability line; the carried wheels installed; ``--compile`` detected."""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path
from typing import Any

from scripts.gpu.profiles import ROOT, SKIPPED_CPU
from scripts.gpu.runner import Check, Job, keep, python

COMPILE_SCRIPTS = ("train.py", "eval_davis.py")  # given --compile where their --help lists it (issue 29)
WHEEL_MODULES = {"progressbar": "progressbar2", "git": "gitpython", "gdown": "gdown"}
ENV_PROBE = r"""
import json, platform, sys
import torch
from util.hardware import available_cpus, cpu_description
info = {"python": platform.python_version(), "executable": sys.executable, "torch": torch.__version__,
        "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(), "cuda_available": torch.cuda.is_available(),
        "cpu": cpu_description(), "cpus": available_cpus()}
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    info["gpu"] = {"name": p.name, "capability": f"{p.major}.{p.minor}", "bf16": torch.cuda.is_bf16_supported(),
                   "fp16": (p.major, p.minor) >= (5, 3), "memory_gib": round(p.total_memory / 2**30, 1),
                   "multiprocessors": p.multi_processor_count, "count": torch.cuda.device_count()}
    try:
        v = torch.cuda.nccl.version()
        info["nccl"] = ".".join(map(str, v)) if isinstance(v, tuple) else str(v)
    except Exception as e:
        info["nccl"] = f"unknown ({type(e).__name__})"
print(json.dumps(info))
"""
MODULE_PROBE = "import importlib.util, json; print(json.dumps({m: importlib.util.find_spec(m) is not None for m in %r}))"


def stage_env(check: Check, record: dict[str, Any], deadline: float) -> None:
    if check.cuda:
        smi = check.run("nvidia_smi", ["nvidia-smi"], deadline) if shutil.which("nvidia-smi") else {"status": "failed", "output": ""}
        record["nvidia_smi"] = smi.get("output") or "nvidia-smi not found"
        keep(record, "nvidia_smi", smi)
    else:
        record["nvidia_smi"] = SKIPPED_CPU
    probe = check.launch("env_probe", python("-c", ENV_PROBE))  # these three import torch: side by side
    helps = {script: check.launch(f"help_{Path(script).stem}", python(str(ROOT / script), "--help")) for script in COMPILE_SCRIPTS}
    install_wheels(check, record, deadline)
    result = check.wait(probe, deadline)
    found = re.findall(r"^\{.*\}$", result["output"], re.M)
    versions = json.loads(found[-1]) if found else {}
    if not versions and result["status"] == "ok":
        result["status"] = "failed"
    keep(record, "env_probe", result)
    record["versions"] = {k: v for k, v in versions.items() if k != "gpu"}
    gpu = versions.get("gpu")
    record["gpu"] = gpu if gpu else SKIPPED_CPU
    record["capability_line"] = capability_line(gpu) if gpu else SKIPPED_CPU
    if check.cuda:
        check.check("CUDA available", bool(versions.get("cuda_available")), record["capability_line"], "torch sees the GPU")
    detect_compile(check, record, deadline, helps)


def capability_line(gpu: dict[str, Any]) -> str:
    yes = {True: "yes", False: "no"}
    return (
        f"| {gpu['name']} | compute {gpu['capability']} | bf16 {yes[bool(gpu['bf16'])]} | fp16 {yes[bool(gpu['fp16'])]} | "
        f"{gpu['memory_gib']} GiB | {gpu['multiprocessors']} SMs |"
    )


def newest_wheels(folder: Path) -> list[Path]:
    """One wheel per distribution (the highest version): two versions of one would stop pip's whole install."""
    from packaging.utils import canonicalize_name, parse_wheel_filename
    from packaging.version import Version

    best: dict[str, tuple[Version, Path]] = {}
    for wheel in sorted(folder.glob("*.whl")):
        try:
            name, version, _, _ = parse_wheel_filename(wheel.name)
        except ValueError:
            continue
        key = canonicalize_name(name)
        if key not in best or version > best[key][0]:
            best[key] = (version, wheel)
    return [path for _, path in sorted(best.values(), key=lambda v: v[1].name)]


def install_wheels(check: Check, record: dict[str, Any], deadline: float) -> None:
    """Install the carried wheels into a private folder, put on every later command's PYTHONPATH."""
    folder = Path(check.args.wheels)
    wheels = newest_wheels(folder) if folder.is_dir() else []
    info: dict[str, Any] = {"folder": str(folder), "wheels": [w.name for w in wheels]}
    if wheels:
        site = check.work / "site"
        options = "--no-index --no-deps --no-compile --no-cache-dir --upgrade --disable-pip-version-check --quiet".split()
        cmd = python("-m", "pip", "install", *options, "--target", str(site), *map(str, wheels))
        result = keep(record, "pip_install", check.run("pip_install", cmd, deadline))
        if result["status"] == "ok":
            check.pythonpath.append(str(site))
            sys.path.append(str(site))
        info["installed"] = result["status"] == "ok"
        info["site"] = str(site)
    else:
        info["installed"] = f"no wheels in {folder}"
    probe = check.run("module_probe", python("-c", MODULE_PROBE % (list(WHEEL_MODULES),)), deadline)
    keep(record, "module_probe", probe)
    found = re.findall(r"^\{.*\}$", probe["output"], re.M)
    modules = json.loads(found[-1]) if found else {}
    info["importable"] = modules
    record["wheels"] = info
    missing = [WHEEL_MODULES[m] for m, ok in modules.items() if not ok]
    check.check("packages importable", bool(modules) and not missing, missing or "all", ", ".join(WHEEL_MODULES.values()))


def detect_compile(check: Check, record: dict[str, Any], deadline: float, helps: dict[str, Job]) -> None:
    """Whether train.py and eval_davis.py accept ``--compile`` (read from their --help, which also shows they start)."""
    accepts = {}
    for script, job in helps.items():
        result = check.wait(job, deadline)
        keep(record, job.name, result)
        accepts[script] = result["status"] == "ok" and re.search(r"(^|\s)--compile\b", result["output"]) is not None
    check.compile = {"train": check.args.compile and accepts["train.py"], "eval": check.args.compile and accepts["eval_davis.py"]}
    record["compile"] = {
        "requested": check.args.compile,
        "train.py accepts": accepts["train.py"],
        "eval_davis.py accepts": accepts["eval_davis.py"],
        "passed to train.py": check.compile["train"],
        "passed to eval_davis.py": check.compile["eval"],
    }

