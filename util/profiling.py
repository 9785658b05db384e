"""Per-stage timing of the network, and peak memory readings, for benchmarks."""

from __future__ import annotations

import contextlib
import functools
import json
import resource
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator

import torch

from util import write_gate

# Network methods that make up one frame, and the stage each belongs to.
NETWORK_STAGES = {
    "encode_query": "query encoder",
    "enhance_query": "query encoder",
    "memorize": "memorise",
    "read": "memory read",
    "decode": "ASPP + decoder",
}


class StageTimer:
    """Accumulates wall time per named stage; thread-safe; syncs CUDA around each call."""

    def __init__(self, device: torch.device):
        self.device = device
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._lock = threading.Lock()

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def wrap(self, fn: Callable, stage: str, sync: bool = True) -> Callable:
        @functools.wraps(fn)
        def timed(*args, **kwargs):
            if sync:
                self._sync()
            start = time.perf_counter()
            out = fn(*args, **kwargs)
            if sync:
                self._sync()
            with self._lock:
                self.seconds[stage] += time.perf_counter() - start
                self.calls[stage] += 1
            return out

        return timed

    @contextlib.contextmanager
    def section(self, stage: str) -> Iterator[None]:
        """Time a block as ``stage`` (CUDA synchronised before and after)."""
        self._sync()
        start = time.perf_counter()
        try:
            yield
        finally:
            self._sync()
            with self._lock:
                self.seconds[stage] += time.perf_counter() - start
                self.calls[stage] += 1

    def instrument(self, network: torch.nn.Module) -> None:
        """Time the network's per-frame methods (on this instance only)."""
        for name, stage in NETWORK_STAGES.items():
            setattr(network, name, self.wrap(getattr(network, name), stage))


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def measure_matmul_gflops(device: torch.device, dtype: torch.dtype = torch.float32, n: int = 2048, repeats: int = 5) -> float:
    """Achieved GFLOP/s of an n x n matmul on this device: the machine's practical peak."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(2):
        a @ b
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def write_report(report: dict, json_path: str, table: str, markdown_path: str) -> None:
    """Write a benchmark's JSON report and markdown table (folders created), then print the table."""
    write_gate.write_text(json_path, json.dumps(report, indent=1), "--json")
    write_gate.write_text(markdown_path, table, "--markdown")
    print(table)
