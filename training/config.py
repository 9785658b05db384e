"""The training run's settings, fixed once: ``train.py`` builds a ``TrainConfig`` from its
arguments (``training/hyper_para.py``, stage defaults applied) and passes it, never the
argument namespace."""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, fields
from typing import Any, Optional


@dataclass(frozen=True)
class TrainConfig:
    """Every flag of ``train.py`` (see ``training/hyper_para.py`` for their meaning)."""

    benchmark: bool
    deterministic: bool
    static_root: str
    bl_root: str
    yv_root: str
    davis_root: str
    no_subset: bool
    size: int
    crop_width: Optional[int]
    num_workers: Optional[int]
    threads: Optional[int]
    stage: int
    batch_size: int
    iterations: int
    steps: tuple[int, ...]
    lr: float
    gamma: float
    seed: int
    amp: bool
    force_amp: bool
    memory_format: str
    train_bn: bool
    device: str
    model_config: Optional[str]
    qam_activation: Optional[str]
    imagenet_weights: Optional[str]
    mirror_init: bool
    load_network: Optional[str]
    load_model: Optional[str]
    id: str
    debug: bool
    save_every: int
    stop_at: Optional[int]
    local_rank: Optional[int]
    single_object: bool

    @classmethod
    def from_namespace(cls, args: argparse.Namespace) -> TrainConfig:
        """The parsed arguments, frozen (``steps`` as a tuple)."""
        values = {f.name: getattr(args, f.name) for f in fields(cls)}
        return cls(**{**values, "steps": tuple(values["steps"])})

    def hyperparameters(self) -> dict[str, Any]:
        """The flags as plain values (``steps`` a list), as checkpoints and logs record them."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}
