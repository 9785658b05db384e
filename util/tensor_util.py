"""Padding helpers shared by training and inference."""

from __future__ import annotations

import torch
import torch.nn.functional as F

Pad = tuple[int, int, int, int]  # left, right, top, bottom (F.pad order)


def pad_divide_by(x: torch.Tensor, d: int) -> tuple[torch.Tensor, Pad]:
    """Zero-pad the last two dims to multiples of ``d``, split evenly (extra on the far side)."""
    h, w = x.shape[-2:]
    new_h = h + (-h) % d
    new_w = w + (-w) % d
    lh, lw = (new_h - h) // 2, (new_w - w) // 2
    pad = (lw, new_w - w - lw, lh, new_h - h - lh)
    return F.pad(x, pad), pad


def unpad(x: torch.Tensor, pad: Pad) -> torch.Tensor:
    """Undo :func:`pad_divide_by` on the last two dims."""
    lw, uw, lh, uh = pad
    h, w = x.shape[-2:]
    return x[..., lh : h - uh, lw : w - uw]
