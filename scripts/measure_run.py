"""Run a Python script as ``__main__`` with its own arguments and write what it used to a JSON file.

    python -m scripts.measure_run RESULT.json SCRIPT [ARGS...]

The script runs in this process, exactly as ``python SCRIPT ARGS...`` would run it; at its
end (whatever the exit) RESULT.json receives, through the write gate, its exit code, its wall
time, its peak resident memory, its peak CUDA memory (allocated and reserved, when it used
CUDA) and the scale of every ``GradScaler`` update (float16 loss scaling: the scale after
each optimiser step). Under
``torchrun`` each rank writes ``RESULT.rank<N>.json``. ``scripts/gpu_check.py`` measures
``train.py`` and ``eval_davis.py`` through it (docs/GPU_CHECK.md).
"""

from __future__ import annotations

import os
import resource
import runpy
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

if not __package__:  # `python scripts/NAME.py`: the packages are in the repository root, not in scripts/
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from util.errors import exit_on_user_error
from util.write_gate import write_json

USAGE = "usage: python -m scripts.measure_run RESULT.json SCRIPT [ARGS...]"


def result_path(path: str) -> Path:
    """``path``, with ``.rank<N>`` before the suffix when launched as one of several ranks."""
    out = Path(path)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        out = out.with_name(f"{out.stem}.rank{os.environ.get('RANK', '0')}{out.suffix}")
    return out


def record_scaler_scales(scales: list[float]) -> Callable[[], None]:
    """Append the scale after every ``GradScaler.update`` (one host sync per optimiser step); returns the undo."""
    import torch

    scaler_class = getattr(torch.amp, "GradScaler", None)
    if scaler_class is None:
        return lambda: None
    update = scaler_class.update

    def update_and_record(self, new_scale=None):
        update(self, new_scale)
        if self.is_enabled():
            scales.append(float(self.get_scale()))

    scaler_class.update = update_and_record

    def undo() -> None:
        scaler_class.update = update

    return undo


def cuda_peaks() -> Optional[dict[str, float]]:
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available() or not torch.cuda.is_initialized():
        return None
    device = torch.cuda.current_device()
    return {
        "peak_cuda_allocated_mib": torch.cuda.max_memory_allocated(device) / 2**20,
        "peak_cuda_reserved_mib": torch.cuda.max_memory_reserved(device) / 2**20,
        "cuda_device": torch.cuda.get_device_name(device),
    }


def run(script: str, args: list[str]) -> tuple[int, list[float]]:
    """Run ``script`` as ``__main__``; returns (exit code, scaler scales)."""
    scales: list[float] = []
    undo = record_scaler_scales(scales)
    argv, path = sys.argv, list(sys.path)
    sys.argv = [script, *args]
    sys.path.insert(0, str(Path(script).resolve().parent))  # as ``python SCRIPT`` does
    code = 0
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        if e.code is not None and not isinstance(e.code, int):
            print(e.code, file=sys.stderr)
    finally:
        undo()
        sys.argv, sys.path[:] = argv, path
    return code, scales


@exit_on_user_error
def main(argv: Optional[list[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] in (["-h"], ["--help"]):
        print(f"{USAGE}\n{__doc__}")
        return 0
    if len(argv) < 2:
        print(USAGE, file=sys.stderr)
        return 2
    out, script, args = result_path(argv[0]), argv[1], argv[2:]
    start = time.perf_counter()
    code, scales = 1, []
    try:
        code, scales = run(script, args)
    finally:
        record: dict[str, Any] = {
            "script": script,
            "exit_code": code,
            "seconds": time.perf_counter() - start,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "scaler_scales": scales,
            **(cuda_peaks() or {}),
        }
        write_json(out, record, "RESULT.json")
    return code


if __name__ == "__main__":
    sys.exit(main())
