"""Soft aggregation of independent per-object probabilities (STM / STCN)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

EPS = 1e-7


def aggregate_logits(prob: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """Object probabilities -> logits of [background, objects] along ``dim``.

    Background is ``prod(1 - p_i)``; everything is clamped to [1e-7, 1 - 1e-7] and
    turned into ``log(p / (1 - p))``.
    """
    background = torch.prod(1 - prob, dim=dim, keepdim=True)
    new_prob = torch.cat([background, prob], dim).clamp(EPS, 1 - EPS)
    return torch.log(new_prob / (1 - new_prob))


def aggregate_wbg(prob: torch.Tensor, keep_bg: bool = True, dim: int = 0) -> torch.Tensor:
    """Softmax over the aggregated logits; with ``keep_bg`` the background comes first."""
    out = F.softmax(aggregate_logits(prob, dim), dim=dim)
    return out if keep_bg else out.narrow(dim, 1, out.shape[dim] - 1)
