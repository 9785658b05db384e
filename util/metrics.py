"""DAVIS semi-supervised J&F evaluation, vectorised over frames.

Numerically identical (to float64 rounding) to the official toolkit
``davisvideochallenge/davis2017-evaluation``; the behaviour it reproduces,
including its quirks, is:

* Frames of a sequence are the ``*.png`` files of its ground-truth folder in
  sorted order; the first and the last frame are not evaluated, and only the
  predicted masks of the evaluated frames are read (the predicted first and last
  frame may be absent).
* The void label 255 is set to background in the ground truth *before* anything
  else, and void pixels are **not** excluded from J or F (the official
  semi-supervised path passes ``void_pixels=None``).
* Objects are ``1..N`` with ``N`` the largest id of the first ground-truth frame
  (after void removal); ground-truth ids above ``N`` in later frames are ignored.
* An object absent from every predicted frame scores as an empty prediction (the
  official code pads the predictions with zeros).  A predicted id above ``N`` in
  an evaluated frame aborts the official evaluation; here it raises
  :class:`EvaluationError`.  So do a missing sequence folder, a missing
  predicted frame, an unreadable PNG and a size mismatch (the official code
  aborts or crashes on these).
* J is the IoU, 1 when both masks are empty.  F is the boundary F-measure of
  the official ``f_measure``: boundaries from ``_seg2bmap``, tolerance
  ``ceil(0.008 * image diagonal)`` pixels, matching by ``cv2.dilate`` with the
  ``skimage.morphology.disk`` structuring element (rebuilt here with numpy).
* Per object: mean, recall (share of frames > 0.5) and decay as in the official
  ``db_statistics``, including its ``uint8`` bin indices (which wrap for more
  than 256 evaluated frames).
* Global J&F-Mean is the mean of the object-averaged J-Mean and F-Mean.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from util.errors import UserError

VOID_LABEL = 255
BOUND_TH = 0.008
# Frames per cv2 call: bounds the memory of the (T, H, W) temporaries per object.
_FRAME_CHUNK = 32


class EvaluationError(UserError, ValueError):
    """Bad evaluation input; the message is one line naming the offending path (CLI exit code 2)."""


# ---------------------------------------------------------------------------
# Per-frame metrics
# ---------------------------------------------------------------------------


def disk(radius: float) -> np.ndarray:
    """Disk structuring element, identical to ``skimage.morphology.disk(radius)``."""
    axis = np.arange(-radius, radius + 1)
    x, y = np.meshgrid(axis, axis)
    return ((x**2 + y**2) <= radius**2).astype(np.uint8)


def boundary_radius(shape: Sequence[int], bound_th: float = BOUND_TH) -> float:
    """Match tolerance in pixels: ``bound_th`` itself if >= 1, else a share of the diagonal."""
    if bound_th >= 1:
        return bound_th
    return float(np.ceil(bound_th * np.linalg.norm(tuple(shape[-2:]))))


def seg_to_boundary(seg: np.ndarray) -> np.ndarray:
    """One-pixel boundary map of a mask (official ``_seg2bmap``) over the last two axes.

    A pixel is a boundary pixel when it differs from its east, south or
    south-east neighbour (outside the image counts as background); the last row
    only looks east, the last column only south, and the bottom-right pixel is
    never a boundary.
    """
    seg = np.asarray(seg).astype(bool)
    east = np.zeros_like(seg)
    south = np.zeros_like(seg)
    south_east = np.zeros_like(seg)
    east[..., :, :-1] = seg[..., :, 1:]
    south[..., :-1, :] = seg[..., 1:, :]
    south_east[..., :-1, :-1] = seg[..., 1:, 1:]
    bmap = (seg ^ east) | (seg ^ south) | (seg ^ south_east)
    bmap[..., -1, :] = seg[..., -1, :] ^ east[..., -1, :]
    bmap[..., :, -1] = seg[..., :, -1] ^ south[..., :, -1]
    bmap[..., -1, -1] = False
    return bmap


def dilate_stack(masks: np.ndarray, radius: float) -> np.ndarray:
    """Dilate every (H, W) frame of a (T, H, W) stack by ``disk(radius)`` in one cv2 call.

    The frames are stacked vertically with zero rows in between, as many as the
    kernel reaches, so no frame spills into its neighbour; pixels outside the
    image count as background, as in ``cv2.dilate`` on a single frame.
    """
    kernel = disk(radius)
    frames, height, width = masks.shape
    if frames == 0 or height == 0 or width == 0:
        return np.zeros(masks.shape, dtype=bool)
    gap = kernel.shape[0] - 1
    tall = np.zeros((frames, height + gap, width), dtype=np.uint8)
    tall[:, :height] = masks
    dilated = cv2.dilate(tall.reshape(frames * (height + gap), width), kernel)
    return dilated.reshape(frames, height + gap, width)[:, :height].astype(bool)


def _remove_void(mask: np.ndarray, void: np.ndarray | None) -> np.ndarray:
    mask = np.asarray(mask).astype(bool)
    return mask if void is None else mask & ~np.asarray(void).astype(bool)


def db_eval_iou_batch(gt: np.ndarray, pred: np.ndarray, void: np.ndarray | None = None) -> np.ndarray:
    """Jaccard index of each frame of (T, H, W) stacks; 1 where both masks are empty."""
    gt, pred = np.asarray(gt).astype(bool), np.asarray(pred).astype(bool)
    if gt.shape != pred.shape:
        raise ValueError(f"ground truth {gt.shape} and prediction {pred.shape} differ in shape")
    keep = np.ones(gt.shape, dtype=bool) if void is None else ~np.asarray(void).astype(bool)
    inters = np.sum(gt & pred & keep, axis=(-2, -1))
    union = np.sum((gt | pred) & keep, axis=(-2, -1))
    with np.errstate(divide="ignore", invalid="ignore"):
        jaccard = np.asarray(inters / union, dtype=np.float64)
    jaccard[union == 0] = 1.0
    return jaccard


def db_eval_iou(gt: np.ndarray, pred: np.ndarray, void: np.ndarray | None = None) -> float:
    """Jaccard index of one (H, W) frame; 1 when both masks are empty."""
    return float(db_eval_iou_batch(gt[None], pred[None], None if void is None else void[None])[0])


def _f_from_counts(n_pred: np.ndarray, n_gt: np.ndarray, pred_match: np.ndarray, gt_match: np.ndarray) -> np.ndarray:
    """Boundary F-measure from boundary pixel counts, with the official empty-boundary cases."""
    n_pred, n_gt = np.asarray(n_pred), np.asarray(n_gt)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio_p = pred_match / n_pred.astype(np.float64)
        ratio_r = gt_match / n_gt.astype(np.float64)
        precision = np.where(n_pred == 0, 1.0, np.where(n_gt == 0, 0.0, ratio_p))
        recall = np.where(n_gt == 0, 1.0, np.where(n_pred == 0, 0.0, ratio_r))
        total = precision + recall
        f_measure = np.where(total == 0, 0.0, 2 * precision * recall / total)
    return np.asarray(f_measure, dtype=np.float64)


def db_eval_boundary_batch(gt: np.ndarray, pred: np.ndarray, bound_th: float = BOUND_TH, *, void: np.ndarray | None = None) -> np.ndarray:
    """Boundary F-measure of each frame of (T, H, W) stacks, vectorised over frames."""
    gt, pred = _remove_void(gt, void), _remove_void(pred, void)
    if gt.shape != pred.shape or gt.ndim != 3:
        raise ValueError(f"expected two equal (T, H, W) stacks, got {gt.shape} and {pred.shape}")
    radius = boundary_radius(gt.shape, bound_th)
    pred_b, gt_b = seg_to_boundary(pred), seg_to_boundary(gt)
    pred_match = np.sum(pred_b & dilate_stack(gt_b, radius), axis=(-2, -1))
    gt_match = np.sum(gt_b & dilate_stack(pred_b, radius), axis=(-2, -1))
    return _f_from_counts(pred_b.sum(axis=(-2, -1)), gt_b.sum(axis=(-2, -1)), pred_match, gt_match)


def db_eval_boundary(gt: np.ndarray, pred: np.ndarray, bound_th: float = BOUND_TH, *, void: np.ndarray | None = None) -> float:
    """Boundary F-measure of one (H, W) frame, computed frame by frame like the official ``f_measure``."""
    gt, pred = _remove_void(gt, void), _remove_void(pred, void)
    if gt.shape != pred.shape or gt.ndim != 2:
        raise ValueError(f"expected two equal (H, W) masks, got {gt.shape} and {pred.shape}")
    kernel = disk(boundary_radius(gt.shape, bound_th))
    pred_b, gt_b = seg_to_boundary(pred), seg_to_boundary(gt)
    pred_match = np.sum(pred_b & cv2.dilate(gt_b.astype(np.uint8), kernel).astype(bool))
    gt_match = np.sum(gt_b & cv2.dilate(pred_b.astype(np.uint8), kernel).astype(bool))
    return float(_f_from_counts(pred_b.sum(), gt_b.sum(), pred_match, gt_match))


def db_statistics(per_frame: np.ndarray) -> tuple[float, float, float]:
    """Mean, recall (share > 0.5) and decay of per-frame values, as the official ``db_statistics``.

    Decay is the mean of the first of 4 overlapping bins minus the mean of the
    last; the bin edges are the official rounded ``linspace`` cast to ``uint8``.
    """
    values = np.asarray(per_frame, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        mean = np.nanmean(values)
        recall = np.nanmean(values > 0.5)
        ids = (np.round(np.linspace(1, len(values), 5) + 1e-10) - 1).astype(np.uint8)
        bins = [values[ids[i] : ids[i + 1] + 1] for i in range(4)]
        decay = np.nanmean(bins[0]) - np.nanmean(bins[3])
    return float(mean), float(recall), float(decay)


# ---------------------------------------------------------------------------
# Sequences
# ---------------------------------------------------------------------------


def _object_stats(per_frame: np.ndarray) -> dict[str, Any]:
    stats = np.array([db_statistics(row) for row in per_frame]).reshape(-1, 3)
    return {"per_frame": per_frame, "M": stats[:, 0], "R": stats[:, 1], "D": stats[:, 2]}


def evaluate_frames(gt_masks: np.ndarray, pred_masks: np.ndarray, num_objects: int, bound_th: float = BOUND_TH) -> dict[str, Any]:
    """J and F of objects ``1..num_objects`` on already selected frames (no frame is skipped).

    ``gt_masks`` must already have the void label removed.  Returns
    ``{"objects": [1..N], "J": {...}, "F": {...}}`` where each metric holds the
    ``(N, T)`` array ``per_frame`` and the per-object ``M``, ``R``, ``D``.
    """
    frames = gt_masks.shape[0]
    j_res = np.zeros((num_objects, frames))
    f_res = np.zeros((num_objects, frames))
    for k in range(num_objects):
        for start in range(0, frames, _FRAME_CHUNK):
            part = slice(start, start + _FRAME_CHUNK)
            gt_k, pred_k = gt_masks[part] == k + 1, pred_masks[part] == k + 1
            j_res[k, part] = db_eval_iou_batch(gt_k, pred_k)
            f_res[k, part] = db_eval_boundary_batch(gt_k, pred_k, bound_th)
    return {"objects": list(range(1, num_objects + 1)), "J": _object_stats(j_res), "F": _object_stats(f_res)}


def check_prediction_ids(pred_masks: np.ndarray, num_objects: int, where: str) -> None:
    top = int(pred_masks.max()) if pred_masks.size else 0
    if top > num_objects:
        raise EvaluationError(
            f"{where}: predicted object id {top} but the first ground-truth frame has only "
            f"{num_objects} object(s); write ids 1..{num_objects} only"
        )


def evaluate_sequence(gt_masks: np.ndarray, pred_masks: np.ndarray, bound_th: float = BOUND_TH) -> dict[str, Any]:
    """Evaluate one sequence given as (T, H, W) id maps (all T frames, first and last included).

    The first and last frames are skipped (the predicted ones are never looked
    at), 255 in the ground truth is background, and the objects are
    ``1..max(gt_masks[0])``.  See :func:`evaluate_frames` for the result.
    """
    gt_masks, pred_masks = np.asarray(gt_masks), np.asarray(pred_masks)
    if gt_masks.ndim != 3 or gt_masks.shape != pred_masks.shape:
        raise EvaluationError(f"expected equal (T, H, W) stacks, got {gt_masks.shape} and {pred_masks.shape}")
    if gt_masks.shape[0] < 3:
        raise EvaluationError(f"a sequence needs at least 3 frames, got {gt_masks.shape[0]}")
    gt_masks = np.where(gt_masks == VOID_LABEL, 0, gt_masks)
    num_objects = int(gt_masks[0].max())
    check_prediction_ids(pred_masks[1:-1], num_objects, "prediction")
    return evaluate_frames(gt_masks[1:-1], pred_masks[1:-1], num_objects, bound_th)
