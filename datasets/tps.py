"""Random thin-plate-spline (TPS) warps of an image and its mask.

Static-image pre-training warps a third of the frames with a TPS through 12 random
control points, each displaced by N(0, 0.02) of the image size (as in STCN/QDMN). The
spline is fitted with :class:`scipy.interpolate.RBFInterpolator` (thin-plate kernel and
an affine part) from the *displaced* points back to the original ones, so evaluating it
on the output pixel grid gives, for every output pixel, where to sample the input
(backward mapping, as ``cv2.remap`` wants). Image and mask use the same map; the mask
is sampled with nearest neighbour, so it keeps exactly its input values.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from scipy.interpolate import RBFInterpolator

NUM_CONTROL_POINTS = 12
DEFAULT_SCALE = 0.02


def random_control_points(n: int = NUM_CONTROL_POINTS, scale: float = DEFAULT_SCALE, generator: torch.Generator | None = None):
    """Source points uniform in [0, 1]², destinations displaced by N(0, scale); (n, 2) x/y each.

    Randomness comes from torch (the global generator unless one is given), like every
    other augmentation of the training data, so a sample is a function of its seed.
    """
    src = torch.rand(n, 2, generator=generator, dtype=torch.float64)
    dst = src + torch.randn(n, 2, generator=generator, dtype=torch.float64) * scale
    return src.numpy(), dst.numpy()


def tps_remap(height: int, width: int, src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """cv2.remap maps (float32 H×W each) of the TPS moving ``src`` onto ``dst`` (normalised x/y)."""
    size = np.array([width, height], dtype=np.float64)
    spline = RBFInterpolator(dst * size, src * size, kernel="thin_plate_spline")
    ys, xs = np.mgrid[0:height, 0:width]
    grid = np.stack([xs.ravel(), ys.ravel()], 1).astype(np.float64)
    mapped = spline(grid).astype(np.float32)
    return mapped[:, 0].reshape(height, width), mapped[:, 1].reshape(height, width)


def warp_pair(image: np.ndarray, mask: np.ndarray, src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Warp an (H, W, 3) image bilinearly and its (H, W) mask with nearest neighbour."""
    if image.shape[:2] != mask.shape[:2]:
        raise ValueError(f"image {image.shape[:2]} and mask {mask.shape[:2]} differ in size")
    map_x, map_y = tps_remap(mask.shape[0], mask.shape[1], src, dst)
    warped_image = cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    warped_mask = cv2.remap(mask, map_x, map_y, cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return warped_image, warped_mask


def random_tps_warp(image: np.ndarray, mask: np.ndarray, scale: float = DEFAULT_SCALE, n: int = NUM_CONTROL_POINTS):
    """The same random TPS warp applied to an image and its mask (uint8 arrays)."""
    src, dst = random_control_points(n, scale)
    return warp_pair(image, mask, src, dst)
