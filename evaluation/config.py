"""An evaluation run's settings, fixed once: each eval script builds an :class:`EvalConfig` from its arguments
(:func:`evaluation.arguments.eval_config`) and passes it down, never the argument namespace."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from model.memory_policy import MemoryConfig
from util.errors import UserError


@dataclass(frozen=True)
class EvalConfig:
    """Every flag of :func:`evaluation.arguments.add_eval_args` (docs/EVALUATION.md), and what a script adds to them."""

    model: str
    output: str
    device: Optional[str]
    use_km: bool
    no_top: bool
    top_k: int
    mem_freq: int
    threshold: float
    capacity: int
    zero_base: str
    quality_mean: str
    quality_base: str
    qam_activation: Optional[str]
    overwrite: bool
    amp: bool  # as asked; the precision a run uses is util.hardware.effective_amp(device, amp, force_amp)
    force_amp: bool
    threads: Optional[int]
    official_kernels: bool
    compile: bool  # --compile: torch.compile the fixed-shape parts (model/compile.py)
    stats_json: Optional[str]
    memory_policy: str
    max_pixels: int  # largest frame or annotation (width x height), checked from headers before decoding
    shard: Optional[str]  # --shard (None: torchrun's ranks, or one process)
    distributed: bool  # False: the script runs in one process whatever the launcher (no --shard: the demo)
    zip: bool = False  # the script's finish writes <output>.zip: checked before the work
    ground_truth: Optional[str] = None  # --gt: an input the output must not be written into


def memory_config(config: EvalConfig) -> MemoryConfig:
    try:
        return MemoryConfig(
            mem_freq=config.mem_freq,
            threshold=config.threshold,
            capacity=config.capacity,
            zero_base=config.zero_base,
            policy=config.memory_policy,
            quality_mean=config.quality_mean,
            quality_base=config.quality_base,
        )
    except ValueError as e:
        raise UserError(str(e)) from None
