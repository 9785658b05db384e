"""J&F of folders of PNG masks (the official toolkit's files and reports): reading and checking the folders, scoring
their sequences (in parallel), the printed tables, the CSVs and the JSON. The measures and the official behaviour they
reproduce: :mod:`util.metrics`."""

from __future__ import annotations

import csv
import glob
import io
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from util import write_gate
from util.metrics import BOUND_TH, VOID_LABEL, EvaluationError, check_prediction_ids, evaluate_frames
from util.pool import map_ordered

GLOBAL_CSV = "global_results.csv"
PER_SEQUENCE_CSV = "per-sequence_results.csv"
GLOBAL_MEASURES = ("J&F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay")
PER_SEQUENCE_MEASURES = ("Sequence", "J-Mean", "F-Mean")
_READABLE_MODES = ("P", "L", "1", "I", "I;16")


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
        check_prediction_ids(mask, num_objects, str(path))
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
        results = map_ordered(_evaluate_sequence_folder, jobs, processes)
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
