"""Averages training values over a logging window, across ranks, then logs them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Optional

import torch
import torch.distributed as dist

from util.logger import TensorboardLogger

Hook = Callable[[dict[str, float]], dict[str, float]]


class Integrator:
    """Sums detached values (no device sync per iteration) and averages them at ``finalize``.

    ``finalize`` is collective when distributed: every rank must call it at the same
    iteration. Keys starting with ``hide_`` are not logged but are visible to the hooks
    (e.g. intersection and union counters from which the window IoU is computed).
    """

    def __init__(self, logger: Optional[TensorboardLogger], distributed: bool = False, hooks: tuple[Hook, ...] = ()):
        self.logger = logger
        self.distributed = distributed
        self.hooks = list(hooks)
        self.reset()

    def reset(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.count = 0

    def add_dict(self, values: dict[str, torch.Tensor | float]) -> None:
        for key, value in values.items():
            value = value.detach().float() if isinstance(value, torch.Tensor) else torch.tensor(float(value))
            self.sums[key] = self.sums[key] + value if key in self.sums else value.clone()
        self.count += 1

    def averages(self) -> dict[str, float]:
        """Window means, averaged over ranks (collective when distributed)."""
        if not self.sums:
            return {}
        keys = sorted(self.sums)
        device = next(iter(self.sums.values())).device
        stacked = torch.stack([self.sums[k].to(device) for k in keys]) / max(self.count, 1)
        if self.distributed:
            dist.all_reduce(stacked)
            stacked /= dist.get_world_size()
        values = dict(zip(keys, stacked.tolist()))
        for hook in self.hooks:
            values.update(hook(values))
        return values

    def finalize(self, prefix: str, step: int) -> dict[str, float]:
        values = self.averages()
        if self.logger is not None:
            for key, value in values.items():
                if not key.startswith("hide"):
                    self.logger.log_metrics(prefix, key, value, step)
        self.reset()
        return values
