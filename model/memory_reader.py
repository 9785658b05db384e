"""Space-time memory read: affinity, top-k softmax and the kernelised (KMN) variant.

Shapes: memory keys ``mk`` (B, CK, N) with N = T*H*W memory cells, memory values ``mv``
(B, CV, N), query key ``qk`` (B or 1, CK, HW). The readout is (B, CV, HW).
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F


def affinity(mk: torch.Tensor, qk: torch.Tensor) -> torch.Tensor:
    """Scaled dot product ``mkᵀ qk / sqrt(CK)``: (B, N, HW)."""
    ck = mk.shape[1]
    qk = (qk / math.sqrt(ck)).expand(mk.shape[0], -1, -1)
    return torch.bmm(mk.transpose(1, 2), qk)


def gaussian_kernel(aff: torch.Tensor, height: int, width: int, sigma: float) -> torch.Tensor:
    """KMN kernel: for each memory cell, a Gaussian centred on its best-matching query cell.

    Returns (B, N, HW) weights ``exp(-d² / 2σ²)`` with d the distance, in feature cells,
    between a query position and the memory cell's argmax position.
    """
    best = aff.argmax(dim=2)  # (B, N): best query position of each memory cell
    by = torch.div(best, width, rounding_mode="floor").unsqueeze(2).to(aff.dtype)
    bx = (best % width).unsqueeze(2).to(aff.dtype)
    ys = torch.arange(height, device=aff.device, dtype=aff.dtype).repeat_interleave(width).view(1, 1, -1)
    xs = torch.arange(width, device=aff.device, dtype=aff.dtype).repeat(height).view(1, 1, -1)
    return torch.exp(-((ys - by) ** 2 + (xs - bx) ** 2) / (2 * sigma**2))


def topk_softmax(aff: torch.Tensor, top_k: int, gauss: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Softmax over the memory axis (dim 1) keeping only the ``top_k`` largest weights.

    Without a kernel this is ``exp(a - max)`` over the top-k affinities, renormalised,
    zero elsewhere. With a kernel the Gaussian-weighted ``exp(a - max)`` is ranked
    instead (as in the official code). ``top_k`` larger than N keeps everything.
    """
    k = min(top_k, aff.shape[1])
    if gauss is None:
        values, indices = torch.topk(aff, k=k, dim=1)
        weights = torch.exp(values - values[:, :1])
    else:
        maxes = aff.max(dim=1, keepdim=True)[0]
        weights, indices = torch.topk(torch.exp(aff - maxes) * gauss, k=k, dim=1)
    weights = weights / weights.sum(dim=1, keepdim=True)
    return torch.zeros_like(aff).scatter_(1, indices, weights)


def full_softmax(aff: torch.Tensor, gauss: Optional[torch.Tensor] = None) -> torch.Tensor:
    if gauss is None:
        return F.softmax(aff, dim=1)
    weights = torch.exp(aff - aff.max(dim=1, keepdim=True)[0]) * gauss
    return weights / weights.sum(dim=1, keepdim=True)


def read_memory(
    mk: torch.Tensor,
    mv: torch.Tensor,
    qk: torch.Tensor,
    query_hw: tuple[int, int],
    top_k: Optional[int] = None,
    km_sigma: Optional[float] = None,
    invalid: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """Weighted sum of memory values for every query position: (B, CV, HW).

    ``invalid`` (B, N) marks memory cells an object must not read (cells memorised
    before the object first appeared); they get affinity -inf.
    """
    aff = affinity(mk, qk)
    if invalid is not None:
        aff = aff.masked_fill(invalid.unsqueeze(2), float("-inf"))
    gauss = gaussian_kernel(aff, *query_hw, km_sigma) if km_sigma is not None else None
    weights = full_softmax(aff, gauss) if top_k is None else topk_softmax(aff, top_k, gauss)
    return torch.bmm(mv, weights)
