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


def topk_weights(aff: torch.Tensor, top_k: int, gauss: Optional[torch.Tensor] = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``top_k`` largest softmax weights over the memory axis (dim 1) and their cells.

    Without a kernel the weights are ``exp(a - max)`` over the top-k affinities,
    renormalised. With a kernel the Gaussian-weighted ``exp(a - max)`` is ranked
    instead (as in the official code). ``top_k`` larger than N keeps everything.
    Returns weights and indices, both (B, k, HW).
    """
    k = min(top_k, aff.shape[1])
    if gauss is None:
        values, indices = torch.topk(aff, k=k, dim=1)
        weights = torch.exp(values - values[:, :1])
    else:
        maxes = aff.max(dim=1, keepdim=True)[0]
        weights, indices = torch.topk(torch.exp(aff - maxes) * gauss, k=k, dim=1)
    return weights / weights.sum(dim=1, keepdim=True), indices


def topk_softmax(aff: torch.Tensor, top_k: int, gauss: Optional[torch.Tensor] = None) -> torch.Tensor:
    """The official dense form: top-k weights scattered into a zero (B, N, HW) matrix."""
    weights, indices = topk_weights(aff, top_k, gauss)
    return torch.zeros_like(aff).scatter_(1, indices, weights)


# Query positions whose gathered values (k x CV each) are combined in one batch.
GATHER_CHUNK = 1024


def sparse_readout(mv: torch.Tensor, weights: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """``bmm(mv, topk_softmax(...))`` without the dense matrix: (B, CV, HW).

    Each query position gathers the values of its k memory cells and weights them:
    2·k·CV multiply-adds per position instead of 2·N·CV, and no (N, HW) scatter. The
    same products are summed (k non-zero terms instead of N terms with zeros), so the
    result equals the dense readout up to float summation order.
    """
    b, cv, _ = mv.shape
    hw = indices.shape[2]
    out = mv.new_empty((b, hw, cv))
    values = mv.transpose(1, 2)  # (B, N, CV) view
    for i in range(b):
        for start in range(0, hw, GATHER_CHUNK):
            idx = indices[i, :, start : start + GATHER_CHUNK].t()  # (hw', k)
            gathered = values[i].index_select(0, idx.reshape(-1)).view(*idx.shape, cv)  # (hw', k, CV)
            w = weights[i, :, start : start + GATHER_CHUNK].t().unsqueeze(1).to(gathered.dtype)  # (hw', 1, k)
            out[i, start : start + GATHER_CHUNK] = torch.bmm(w, gathered).squeeze(1)
    return out.transpose(1, 2)


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
    dense: bool = False,
) -> torch.Tensor:
    """Weighted sum of memory values for every query position: (B, CV, HW).

    ``invalid`` (B, N) marks memory cells an object must not read (cells memorised
    before the object first appeared); they get affinity -inf. With top-k the values
    are gathered (:func:`sparse_readout`); ``dense=True`` is the official
    scatter-then-bmm form, kept as the reference the fast path is tested against.
    """
    aff = affinity(mk, qk)
    if invalid is not None:
        aff = aff.masked_fill(invalid.unsqueeze(2), float("-inf"))
    gauss = gaussian_kernel(aff, *query_hw, km_sigma) if km_sigma is not None else None
    if top_k is None:
        return torch.bmm(mv, full_softmax(aff, gauss))
    if dense:
        return torch.bmm(mv, topk_softmax(aff, top_k, gauss))
    return sparse_readout(mv, *topk_weights(aff, top_k, gauss))
