"""TensorBoard and console logging of training (rank 0 only)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import numpy as np
import torch


def fix_width(x: float) -> str:
    return f"{x:0.9f}"[:9]


class TensorboardLogger:
    """Scalars, images and text under ``<log_root>/<long_id>``; ``long_id=None`` disables TensorBoard."""

    def __init__(self, short_id: str, long_id: Optional[str], log_root: str | os.PathLike = "log"):
        self.short_id = "DEBUG" if short_id.upper() == "NULL" else short_id
        self.writer = None
        if long_id is not None:
            from torch.utils.tensorboard import SummaryWriter

            self.log_dir = Path(log_root) / long_id
            self.writer = SummaryWriter(str(self.log_dir))

    def log_scalar(self, tag: str, x: float, step: int) -> None:
        if self.writer is not None:
            self.writer.add_scalar(tag, x, step)

    def log_metrics(self, l1_tag: str, l2_tag: str, value: float, step: int) -> None:
        """Print one aligned console line and log the scalar ``l1_tag/l2_tag``."""
        print(f"{self.short_id} - It {step:6d} [{l1_tag.upper():5s}] [{l2_tag:13s}]: {fix_width(value)}", flush=True)
        self.log_scalar(f"{l1_tag}/{l2_tag}", value, step)

    def log_image(self, tag: str, image: torch.Tensor | np.ndarray, step: int) -> None:
        """``image``: (3, H, W) float in [0, 1] or uint8."""
        if self.writer is not None:
            self.writer.add_image(tag, image, step)

    def log_string(self, tag: str, text: str) -> None:
        print(tag, text, flush=True)
        if self.writer is not None:
            self.writer.add_text(tag, text)

    def flush(self) -> None:
        if self.writer is not None:
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
