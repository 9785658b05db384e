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

import csv
import glob
import io
import math
import os
import warnings
from collections.abc import Sequence
from multiprocessing import Pool
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from util import write_gate
from util.errors import UserError

VOID_LABEL = 255
BOUND_TH = 0.008
GLOBAL_CSV = "global_results.csv"
PER_SEQUENCE_CSV = "per-sequence_results.csv"
GLOBAL_MEASURES = ("J&F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay")
PER_SEQUENCE_MEASURES = ("Sequence", "J-Mean", "F-Mean")
_READABLE_MODES = ("P", "L", "1", "I", "I;16")
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


def _check_prediction_ids(pred_masks: np.ndarray, num_objects: int, where: str) -> None:
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
    _check_prediction_ids(pred_masks[1:-1], num_objects, "prediction")
    return evaluate_frames(gt_masks[1:-1], pred_masks[1:-1], num_objects, bound_th)


# ---------------------------------------------------------------------------
# Folders
# ---------------------------------------------------------------------------


def read_mask(path: str | os.PathLike) -> np.ndarray:
    """Read a PNG of object ids (palette, grayscale or 1-bit) as a 2-D integer array."""
    try:
        with Image.open(path) as img:
            img.load()
            mode = img.mode
            array = np.array(img)
    except FileNotFoundError:
        raise EvaluationError(f"{path}: file not found") from None
    except (OSError, SyntaxError, ValueError) as err:
        raise EvaluationError(f"{path}: cannot read PNG ({err}); re-export it as an indexed PNG") from None
    if mode not in _READABLE_MODES or array.ndim != 2:
        raise EvaluationError(f"{path}: PNG mode {mode!r} is not a mask of ids; save it in mode 'P' or 'L'")
    return array.astype(np.uint8) if array.dtype == bool else array


def _png_frames(seq_dir: Path) -> list[str]:
    """Sorted ``*.png`` names of a folder (``glob`` semantics, as the official loader)."""
    return sorted(os.path.basename(p) for p in glob.glob(os.path.join(glob.escape(str(seq_dir)), "*.png")))


def list_sequences(gt_dir: str | os.PathLike, sequences: Sequence[str] | None = None) -> list[str]:
    """Names of the sequence folders of ``gt_dir`` (all, or the requested ones, checked)."""
    root = Path(gt_dir)
    if not root.is_dir():
        raise EvaluationError(f"{root}: ground-truth folder not found; pass the folder holding one folder per sequence")
    found = sorted(p.name for p in root.iterdir() if p.is_dir())
    if sequences is None:
        if not found:
            raise EvaluationError(f"{root}: no sequence folders; pass e.g. a DAVIS Annotations/480p folder")
        return found
    missing = [s for s in sequences if s not in found]
    if missing:
        raise EvaluationError(f"{root / missing[0]}: requested sequence not found in the ground truth")
    return list(sequences)


def _check_sequence_files(gt_dir: Path, pred_dir: Path, seq: str) -> list[str]:
    """Check that the sequence has >= 3 GT frames and every evaluated frame is predicted."""
    return check_video_files(gt_dir / seq, pred_dir / seq, seq)


def check_video_files(gt_seq: Path, pred_seq: Path, name: str) -> list[str]:
    """The ground-truth PNG names of one video, checked: >= 3 of them, every evaluated one predicted."""
    frames = _png_frames(gt_seq)
    if len(frames) < 3:
        raise EvaluationError(f"{gt_seq}: {len(frames)} PNG frame(s); a sequence needs at least 3")
    if not pred_seq.is_dir():
        raise EvaluationError(f"{pred_seq}: sequence folder missing from the predictions; run inference on {name}")
    for frame in frames[1:-1]:
        if not (pred_seq / frame).is_file():
            raise EvaluationError(
                f"{pred_seq / frame}: predicted frame missing; every ground-truth frame but the first and last needs a prediction"
            )
    return frames


def check_ground_truth_names(gt_seq: Path, frame_stems: Sequence[str]) -> None:
    """Before inference: ``gt_seq`` holds >= 3 PNGs, each named like a frame of the video."""
    if not gt_seq.is_dir():
        raise EvaluationError(f"{gt_seq}: ground-truth folder not found; --gt takes a folder of PNG masks named like the frames")
    frames = _png_frames(gt_seq)
    if len(frames) < 3:
        raise EvaluationError(f"{gt_seq}: {len(frames)} PNG mask(s); J&F needs at least 3 (first and last are not scored)")
    known = set(frame_stems)
    stray = [f for f in frames if Path(f).stem not in known]
    if stray:
        raise EvaluationError(f"{gt_seq / stray[0]}: no frame of the video is named {Path(stray[0]).stem}; name each mask like its frame")


def _read_stack(paths: list[Path], shape: tuple[int, ...] | None, what: str) -> np.ndarray:
    masks = []
    for path in paths:
        mask = read_mask(path)
        shape = mask.shape if shape is None else shape
        if mask.shape != shape:
            raise EvaluationError(
                f"{path}: {what} size {mask.shape[1]}x{mask.shape[0]} differs from the "
                f"ground truth {shape[1]}x{shape[0]}; save masks at the annotation resolution"
            )
        masks.append(mask)
    return np.stack(masks)


def _evaluate_sequence_folder(args: tuple[str, str, str, float]) -> tuple[str, dict[str, Any]]:
    """Pool worker: evaluate one sequence from its folders."""
    gt_root, pred_root, seq, bound_th = args
    return seq, evaluate_video_folders(Path(gt_root) / seq, Path(pred_root) / seq, seq, bound_th)


def evaluate_video_folders(gt_seq: Path, pred_seq: Path, name: str, bound_th: float = BOUND_TH) -> dict[str, Any]:
    """:func:`evaluate_frames` of one video from its ground-truth and prediction folders (PNGs matched by name)."""
    frames = check_video_files(gt_seq, pred_seq, name)
    gt = _read_stack([gt_seq / f for f in frames], None, "ground-truth")
    gt = np.where(gt == VOID_LABEL, 0, gt)
    num_objects = int(gt[0].max())
    pred_paths = [pred_seq / f for f in frames[1:-1]]
    pred = _read_stack(pred_paths, gt.shape[1:], "prediction")
    for path, mask in zip(pred_paths, pred):
        _check_prediction_ids(mask, num_objects, str(path))
    return evaluate_frames(gt[1:-1], pred, num_objects, bound_th)


def score_video(gt_seq: str | os.PathLike, pred_seq: str | os.PathLike, name: str) -> dict[str, Any]:
    """J&F of one video whose folders need not share a name: the :func:`evaluate_folders` result for it alone."""
    per_sequence = {name: evaluate_video_folders(Path(gt_seq), Path(pred_seq), name)}
    if not per_sequence[name]["objects"]:
        raise EvaluationError(f"{gt_seq}: no object in the first ground-truth frame")
    summary = _summarise(per_sequence)
    summary["sequences"] = per_sequence
    return summary


def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if len(values) else math.nan


def _summarise(per_sequence: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Global and per-object tables from per-sequence results (official aggregation)."""
    stats = {m: {"M": [], "R": [], "D": []} for m in ("J", "F")}
    per_object: dict[str, dict[str, float]] = {}
    seq_table: dict[str, dict[str, float]] = {}
    for seq, res in per_sequence.items():
        for i, obj in enumerate(res["objects"]):
            for m in ("J", "F"):
                for key in ("M", "R", "D"):
                    stats[m][key].append(float(res[m][key][i]))
            per_object[f"{seq}_{obj}"] = {"J": float(res["J"]["M"][i]), "F": float(res["F"]["M"][i])}
        j_seq, f_seq = _mean(res["J"]["M"]), _mean(res["F"]["M"])
        seq_table[seq] = {"J&F": (j_seq + f_seq) / 2, "J": j_seq, "F": f_seq}
    j, f = stats["J"], stats["F"]
    values = [(_mean(j["M"]) + _mean(f["M"])) / 2.0, _mean(j["M"]), _mean(j["R"]), _mean(j["D"])]
    values += [_mean(f["M"]), _mean(f["R"]), _mean(f["D"])]
    return {"global": dict(zip(GLOBAL_MEASURES, values)), "per_object": per_object, "per_sequence": seq_table}


def evaluate_folders(
    gt_dir: str | os.PathLike,
    pred_dir: str | os.PathLike,
    processes: int = 1,
    sequences: Sequence[str] | None = None,
    bound_th: float = BOUND_TH,
) -> dict[str, Any]:
    """Evaluate every sequence folder of ``gt_dir`` against ``pred_dir`` (one process per sequence).

    Returns ``{"global": {measure: value}, "per_object": {"<seq>_<obj>": {"J", "F"}},
    "per_sequence": {seq: {"J&F", "J", "F"}}, "sequences": {seq: evaluate_frames result}}``
    with values on the 0-1 scale.  Raises :class:`EvaluationError` on bad input,
    before anything is written.
    """
    gt_root, pred_root = Path(gt_dir), Path(pred_dir)
    if not pred_root.is_dir():
        raise EvaluationError(f"{pred_root}: prediction folder not found; pass the folder holding one folder per sequence")
    names = list_sequences(gt_root, sequences)
    for seq in names:  # cheap file checks first, so a typo fails before any computing
        _check_sequence_files(gt_root, pred_root, seq)
    jobs = [(str(gt_root), str(pred_root), seq, bound_th) for seq in names]
    processes = max(1, min(processes, len(jobs)))
    if processes == 1:
        results = [_evaluate_sequence_folder(job) for job in jobs]
    else:
        with Pool(processes) as pool:
            results = pool.map(_evaluate_sequence_folder, jobs, chunksize=1)
    per_sequence = dict(results)
    if not any(res["objects"] for res in per_sequence.values()):
        raise EvaluationError(f"{gt_root}: no objects in the first ground-truth frame of any sequence")
    summary = _summarise(per_sequence)
    summary["sequences"] = per_sequence
    return summary


# ---------------------------------------------------------------------------
# Reports
# ---------------------------------------------------------------------------


def _csv_float(value: float) -> str:
    """pandas ``to_csv(float_format="%.3f")`` formatting (NaN is written empty)."""
    return "" if math.isnan(value) else f"{value:.3f}"


def _csv_text(rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def csv_paths(csv_dir: str | os.PathLike) -> tuple[Path, Path]:
    out = Path(csv_dir)
    return out / GLOBAL_CSV, out / PER_SEQUENCE_CSV


def check_csv_destination(csv_dir: str | os.PathLike, gt_dir: str | os.PathLike, flag: str = "--csv_dir") -> None:
    """The two CSVs may be written in ``csv_dir``: not in the ground truth, not over a file of the user's."""
    for path in csv_paths(csv_dir):
        write_gate.check_target(path, flag, inputs=[gt_dir])


def write_csvs(results: dict[str, Any], csv_dir: str | os.PathLike, flag: str = "--csv_dir") -> tuple[Path, Path]:
    """Write ``global_results.csv`` and ``per-sequence_results.csv`` as the official toolkit (through the write gate)."""
    global_path, seq_path = csv_paths(csv_dir)
    global_rows = [list(GLOBAL_MEASURES), [_csv_float(results["global"][m]) for m in GLOBAL_MEASURES]]
    write_gate.write_text(global_path, _csv_text(global_rows), flag)
    rows = [[name, _csv_float(res["J"]), _csv_float(res["F"])] for name, res in results["per_object"].items()]
    write_gate.write_text(seq_path, _csv_text([list(PER_SEQUENCE_MEASURES), *rows]), flag)
    return global_path, seq_path


def _json_float(value: float) -> float | None:
    return None if math.isnan(value) else value


def write_json(results: dict[str, Any], json_path: str | os.PathLike) -> Path:
    """Write the global measures and per-sequence J&F/J/F (0-1 scale) as JSON (through the write gate)."""
    payload: dict[str, Any] = {m: _json_float(results["global"][m]) for m in GLOBAL_MEASURES}
    payload["sequences"] = {seq: {k: _json_float(v) for k, v in row.items()} for seq, row in results["per_sequence"].items()}
    return write_gate.write_json(json_path, payload, "--json", indent=2)


def _format_table(header: Sequence[str], rows: list[list[str]], left_first: bool = False) -> str:
    """Fixed-width table; numbers right-aligned, the first column optionally left-aligned."""
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(header)]

    def line(cells: Sequence[str]) -> str:
        return " ".join(c.ljust(w) if left_first and i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    return "\n".join([line(header)] + [line(row) for row in rows])


def format_report(results: dict[str, Any]) -> str:
    """Global and per-object tables, as printed by the official ``evaluation_method.py``."""
    global_row = [[f"{results['global'][m]:.6f}" for m in GLOBAL_MEASURES]]
    seq_rows = [[name, f"{r['J']:.6f}", f"{r['F']:.6f}"] for name, r in results["per_object"].items()]
    return (
        "--------------------------- Global results ---------------------------\n"
        f"{_format_table(GLOBAL_MEASURES, global_row)}\n\n"
        "---------- Per sequence results ----------\n"
        f"{_format_table(PER_SEQUENCE_MEASURES, seq_rows, left_first=True)}"
    )


def check_json_destination(path: Path, gt_dir: Path) -> None:
    """``--json`` may be written: outside the ground truth, not a folder, not over a file of the user's."""
    write_gate.check_target(path, "--json", inputs=[gt_dir])


def run_jf(
    gt_dir: str | os.PathLike,
    pred_dir: str | os.PathLike,
    *,
    processes: int = 1,
    sequences: Sequence[str] | None = None,
    csv_dir: str | os.PathLike | None = None,
    json_path: str | os.PathLike | None = None,
    write_csv: bool = True,
    verbose: bool = True,
) -> dict[str, Any]:
    """Evaluate, print the tables and write the CSVs (into ``csv_dir``, default ``pred_dir``) and JSON.

    Everything is computed before anything is written, so on
    :class:`EvaluationError` no file is created.  Returns the
    :func:`evaluate_folders` result.
    """
    if json_path is not None:
        check_json_destination(Path(json_path), Path(gt_dir))
    if write_csv:
        check_csv_destination(pred_dir if csv_dir is None else csv_dir, gt_dir)
    results = evaluate_folders(gt_dir, pred_dir, processes=processes, sequences=sequences)
    if verbose:
        print(format_report(results))
    if write_csv:
        written = write_csvs(results, pred_dir if csv_dir is None else csv_dir)
        if verbose:
            print(f"\nResults saved in {written[0]} and {written[1]}")
    if json_path is not None:
        write_json(results, json_path)
    return results
