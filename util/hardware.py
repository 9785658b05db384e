"""What this machine can do: CPUs this process may use, native bfloat16, the mixed-precision type.

One place for these decisions, so that every entry point (evaluation, demo, benchmark,
training) answers them the same way.

bfloat16 on a CPU is only fast with native instructions (AVX-512 BF16 or AMX on x86,
the BF16 extension on Arm). Without them PyTorch emulates it: on an AVX2-only
AMD EPYC the portability report (issue 12) measured one 2048×2048 bfloat16 matmul at 76 s and ``demo.py --amp`` 6.6× slower
than float32. So ``--amp`` on such a CPU warns once and runs float32 unless forced.

``QDMN_NATIVE_BF16=0`` or ``=1`` overrides the detection (for tests, and for a CPU the
detection gets wrong).
"""

from __future__ import annotations

import os
import platform
import sys
from functools import lru_cache
from pathlib import Path
from typing import Optional

import torch

from util.errors import UserError

NATIVE_BF16_ENV = "QDMN_NATIVE_BF16"
X86_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask), not merely the machine's count."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def omp_threads() -> Optional[int]:
    """``OMP_NUM_THREADS`` when it is a positive integer, else None.

    The user's (or torchrun's, which sets 1 for several processes per node) choice of threads per process: it wins
    over the defaults computed from the CPUs, as it does for PyTorch itself; ``--threads`` wins over it.
    """
    try:
        value = int(os.environ.get("OMP_NUM_THREADS", ""))
    except ValueError:
        return None
    return value if value > 0 else None


def warn_threads(threads: Optional[int], flag: str = "--threads") -> None:
    """One warning line when ``threads`` exceeds the CPUs this process may use (the threads would take turns on them:
    ``--threads 64`` on 2 cores ran 80 times slower)."""
    cpus = available_cpus()
    if threads is not None and threads > cpus:
        print(f"warning: {flag} {threads} is more than the {cpus} CPU(s) this process may use; the threads would wait for "
              f"each other and run many times slower: use {flag} {cpus} or fewer", file=sys.stderr)


def set_threads(threads: Optional[int] = None) -> int:
    """Set torch's intra-op threads (default: ``OMP_NUM_THREADS``, else :func:`available_cpus`); return the number
    set. Given ``threads`` above the CPUs this process may use get a warning line (:func:`warn_threads`)."""
    warn_threads(threads)
    n = threads if threads is not None and threads > 0 else omp_threads() or available_cpus()
    torch.set_num_threads(n)
    return n


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """Instruction-set flags of the CPU from /proc/cpuinfo (Linux); empty elsewhere."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key = line.split(":", 1)[0].strip().lower()
        if key in ("flags", "features"):  # x86 / Arm
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def cpu_model() -> str:
    """The CPU model from /proc/cpuinfo, else what the platform module knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def torch_cpu_capability() -> str:
    """The vector instruction set PyTorch's CPU kernels use (``AVX2``, ``AVX512``, ...)."""
    try:
        return str(torch.backends.cpu.get_cpu_capability())
    except (AttributeError, RuntimeError):
        return "unknown"


def native_cpu_bfloat16() -> bool:
    """Whether bfloat16 runs natively (fast) on this CPU, as PyTorch is set to use it."""
    forced = os.environ.get(NATIVE_BF16_ENV)
    if forced in ("0", "1"):
        return forced == "1"
    flags = cpu_flags()
    if platform.machine().lower() in ("aarch64", "arm64"):
        return "bf16" in flags
    # ATEN_CPU_CAPABILITY=avx2 (or an older CPU) keeps PyTorch off the AVX-512 kernels.
    return any(f in flags for f in X86_BF16_FLAGS) and torch_cpu_capability().startswith("AVX512")


def cpu_description() -> str:
    """One line for benchmark reports: model, PyTorch's kernels, native bfloat16 or not."""
    bf16 = "native bfloat16" if native_cpu_bfloat16() else "no native bfloat16"
    return f"{cpu_model()} ({torch_cpu_capability()}, {bf16})"


_warned_amp_fallback = False


def amp_dtype(device: torch.device) -> torch.dtype:
    """The mixed-precision type: float16 on CUDA, bfloat16 elsewhere."""
    return torch.float16 if device.type == "cuda" else torch.bfloat16


def effective_amp(device: torch.device, amp: bool, force: bool = False) -> bool:
    """Whether mixed precision really runs: on a CPU without native bfloat16 only when forced.

    Prints one warning line per process when ``--amp`` is dropped.
    """
    global _warned_amp_fallback
    if not amp or device.type != "cpu" or force or native_cpu_bfloat16():
        return amp
    if not _warned_amp_fallback:
        _warned_amp_fallback = True
        print(
            f"warning: --amp ignored: this CPU has no native bfloat16 (PyTorch kernels {torch_cpu_capability()}; it needs AVX-512 BF16 "
            "or AMX), where bfloat16 runs several times slower than float32; running float32 (--force_amp uses bfloat16 anyway)",
            file=sys.stderr,
        )
    return False


def ranks_on_this_node() -> int:
    """Processes a launcher started on this machine (torchrun's LOCAL_WORLD_SIZE, else WORLD_SIZE, else 1)."""
    for name in ("LOCAL_WORLD_SIZE", "WORLD_SIZE"):
        value = os.environ.get(name, "")
        if value.isdigit() and int(value) > 0:
            return int(value)
    return 1


def cpu_share() -> int:
    """An equal share of the CPUs this process may use for each process a launcher started on this machine."""
    return max(1, available_cpus() // ranks_on_this_node())


def launcher_ranks(local_rank: Optional[int] = None) -> tuple[int, int, int]:
    """(rank, world size, local rank) from a launcher's environment (torchrun); (0, 1, 0) for a plain process."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    return rank, world_size, int(os.environ.get("LOCAL_RANK", local_rank if local_rank is not None else 0))


def rank_device(name: Optional[str], local_rank: int) -> torch.device:
    """:func:`resolve_device`, where an unnumbered CUDA device means this rank's own GPU (``cuda:LOCAL_RANK``)."""
    device = resolve_device(name)
    if device.type == "cuda" and device.index is None:
        device = torch.device(f"cuda:{local_rank}")
        check_device_available(device, f"{name or 'cuda'} (rank-local cuda:{local_rank})")
    return device


def training_parallelism(device_type: str, workers: Optional[int] = None, threads: Optional[int] = None) -> tuple[int, int]:
    """(data-loader workers, intra-op threads) per training process, sharing this node's CPUs without oversubscribing.

    Each rank gets an equal share of the CPUs this process may use. On CUDA the network runs
    on the GPU, so the share goes to data loading (at most 8 workers, as the official code)
    and a few threads suffice. On the CPU the network needs the cores: workers only when
    there are CPUs to spare (a quarter of the share), the rest become threads. Given values win, and
    ``OMP_NUM_THREADS`` sets the threads when they are not given.
    """
    share = cpu_share()
    threads = threads if threads is not None else omp_threads()
    if device_type == "cuda":
        workers = min(8, share) if workers is None else workers
        threads = min(4, share) if threads is None else threads
    else:
        workers = (share // 4 if share >= 4 else 0) if workers is None else workers
        threads = max(1, share - workers) if threads is None else threads
    return workers, threads


def resolve_device(name: Optional[str]) -> torch.device:
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"--device {name}: not a device name; use cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {name}: CUDA is not available on this machine; use --device cpu")
    check_device_available(device, name)
    return device


def check_device_available(device: torch.device, name: str) -> None:
    """A UserError unless ``device`` exists here (cuda:7 on a 1-GPU machine, mps or xpu without the backend)."""
    if device.type == "cpu":
        return
    backend = {"cuda": torch.cuda, "mps": getattr(torch.backends, "mps", None), "xpu": getattr(torch, "xpu", None)}.get(device.type)
    if backend is None or not backend.is_available():
        raise UserError(f"--device {name}: the {device.type} backend is not available on this machine; use --device cpu")
    count = torch.cuda.device_count()
    if device.type == "cuda" and device.index is not None and device.index >= count:
        raise UserError(f"--device {name}: this machine has {count} CUDA device(s) (cuda:0..cuda:{count - 1})")
