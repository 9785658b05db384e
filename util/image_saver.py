"""Image grids of training clips for TensorBoard: frames, ground truth and predictions."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torchvision.utils import make_grid

from util.image_io import IMAGENET_MEAN, IMAGENET_STD

MAX_ROWS = 4
THUMBNAIL = 160


def _thumb(x: torch.Tensor, size: int) -> torch.Tensor:
    """(C, H, W) in [0, 1] -> (3, size, size)."""
    x = x.detach().float().cpu()
    x = F.interpolate(x[None], size=(size, size), mode="nearest")[0]
    return x.expand(3, -1, -1).clamp(0, 1)


def pool_pairs(data: dict, out: dict, single_object: bool, size: int = THUMBNAIL) -> torch.Tensor:
    """One row per clip (at most 4): RGB x3 | GT x3 | prediction (frames 1, 2) [| second object GT x3 | prediction].

    Returns a (3, H, W) float image in [0, 1].
    """
    rgb = data["rgb"][:MAX_ROWS].detach().cpu() * IMAGENET_STD + IMAGENET_MEAN
    blank = torch.zeros(1, 1, 1)
    objects = [("gt", 0)] if single_object else [("gt", 0), ("sec_gt", 1)]
    tiles = []
    for b in range(rgb.shape[0]):
        row = [_thumb(rgb[b, t], size) for t in range(3)]
        for key, k in objects:
            row += [_thumb(data[key][b, t], size) for t in range(3)]
            row += [_thumb(blank, size)] + [_thumb(out[f"mask_{t}"][b, k : k + 1], size) for t in (1, 2)]
        tiles += row
    return make_grid(torch.stack(tiles), nrow=len(tiles) // rgb.shape[0], padding=2, pad_value=1.0)
