"""Tests of the DAVIS J&F evaluation (util/metrics.py, util/metrics_folders.py, scripts/evaluate_jf.py).

Exactness against the official davis2017-evaluation code was checked outside
the repository; these tests pin the protocol on hand-computed cases.
"""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from scripts import evaluate_jf
from tests.helpers import assert_one_line_error
from util import metrics as M
from util import metrics_folders

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = ["-m", "scripts.evaluate_jf"]


def square(shape: tuple[int, int], top: int, left: int, size: int) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    mask[top : top + size, left : left + size] = True
    return mask


# --------------------------------------------------------------------------- J


def test_iou_known_overlap() -> None:
    gt = square((4, 4), 0, 0, 2)
    pred = square((4, 4), 0, 1, 2)
    assert M.db_eval_iou(gt, pred) == pytest.approx(2 / 6)
    assert M.db_eval_iou(gt, gt) == 1.0


def test_iou_empty_cases() -> None:
    empty = np.zeros((3, 3), dtype=bool)
    assert M.db_eval_iou(empty, empty) == 1.0
    assert M.db_eval_iou(empty, square((3, 3), 0, 0, 1)) == 0.0
    assert M.db_eval_iou(square((3, 3), 0, 0, 1), empty) == 0.0


def test_iou_void_pixels_are_ignored() -> None:
    gt = square((4, 4), 0, 0, 2)
    pred = square((4, 4), 0, 0, 3)  # 9 pixels, 4 of them right
    void = ~square((4, 4), 0, 0, 2)
    assert M.db_eval_iou(gt, pred) == pytest.approx(4 / 9)
    assert M.db_eval_iou(gt, pred, void) == 1.0


# --------------------------------------------------------------------------- F


def test_disk_and_radius() -> None:
    assert M.disk(1).tolist() == [[0, 1, 0], [1, 1, 1], [0, 1, 0]]
    assert M.disk(2).tolist() == [
        [0, 0, 1, 0, 0],
        [0, 1, 1, 1, 0],
        [1, 1, 1, 1, 1],
        [0, 1, 1, 1, 0],
        [0, 0, 1, 0, 0],
    ]
    assert M.boundary_radius((480, 854)) == 8  # ceil(0.008 * 979.6)
    assert M.boundary_radius((10, 10)) == 1
    assert M.boundary_radius((10, 10), bound_th=3) == 3


def test_boundary_of_a_square() -> None:
    # A 3x3 square at rows/cols 1..3: its boundary is the 4x4 ring shifted half a pixel to the origin.
    expected = np.zeros((6, 6), dtype=bool)
    expected[0, 0:4] = expected[3, 0:4] = True
    expected[0:4, 0] = expected[0:4, 3] = True
    assert np.array_equal(M.seg_to_boundary(square((6, 6), 1, 1, 3)), expected)


def test_boundary_ignores_image_border() -> None:
    assert not M.seg_to_boundary(np.ones((5, 7), dtype=bool)).any()
    single = np.zeros((4, 4), dtype=bool)
    single[2, 2] = True
    assert set(zip(*np.nonzero(M.seg_to_boundary(single)))) == {(1, 1), (1, 2), (2, 1), (2, 2)}


def test_boundary_f_empty_cases() -> None:
    empty = np.zeros((10, 10), dtype=bool)
    obj = square((10, 10), 2, 2, 4)
    assert M.db_eval_boundary(empty, empty) == 1.0  # P = R = 1
    assert M.db_eval_boundary(obj, empty) == 0.0  # prediction empty: P = 1, R = 0
    assert M.db_eval_boundary(empty, obj) == 0.0  # ground truth empty: P = 0, R = 1
    assert M.db_eval_boundary(obj, obj) == 1.0


def test_boundary_f_known_precision() -> None:
    # Prediction = GT square + a far single pixel: 12 of its 16 boundary pixels match (P = 3/4, R = 1).
    gt = square((10, 10), 1, 1, 3)
    pred = gt.copy()
    pred[8, 8] = True
    assert M.db_eval_boundary(gt, pred) == pytest.approx(2 * 0.75 / 1.75)
    assert M.db_eval_boundary(pred, gt) == pytest.approx(2 * 0.75 / 1.75)  # P = 1, R = 3/4
    assert M.db_eval_iou(gt, pred) == pytest.approx(9 / 10)
    far = square((10, 10), 6, 6, 3)  # boundaries more than r = 1 apart
    assert M.db_eval_boundary(gt, far) == 0.0


def _reference_f(gt: np.ndarray, pred: np.ndarray) -> float:
    """Independent per-frame F: scipy dilation instead of cv2, scalar case analysis."""
    footprint = M.disk(M.boundary_radius(gt.shape)).astype(bool)
    gt_b, pred_b = M.seg_to_boundary(gt), M.seg_to_boundary(pred)
    n_pred, n_gt = pred_b.sum(), gt_b.sum()
    if n_pred == 0 or n_gt == 0:
        return 1.0 if n_pred == n_gt else 0.0
    precision = (pred_b & ndimage.binary_dilation(gt_b, footprint)).sum() / n_pred
    recall = (gt_b & ndimage.binary_dilation(pred_b, footprint)).sum() / n_gt
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


@pytest.mark.parametrize("shape", [(6, 30, 40), (4, 130, 200), (3, 2, 3)])
def test_batch_equals_per_frame_loop(shape: tuple[int, int, int]) -> None:
    rng = np.random.default_rng(sum(shape))
    base = ndimage.gaussian_filter(rng.random(shape), (0, 1.5, 1.5)) > 0.5
    gt = base.copy()
    gt[-1, 0, 0] = True  # a GT boundary in the last frame
    pred = np.roll(base, 2, axis=2) ^ (rng.random(shape) < 0.02)
    gt[1] = False  # empty GT frame
    pred[-1] = False  # empty prediction frame
    f_batch = M.db_eval_boundary_batch(gt, pred)
    j_batch = M.db_eval_iou_batch(gt, pred)
    f_loop = [M.db_eval_boundary(g, p) for g, p in zip(gt, pred)]
    j_loop = [M.db_eval_iou(g, p) for g, p in zip(gt, pred)]
    assert np.array_equal(f_batch, f_loop)
    assert np.array_equal(j_batch, j_loop)
    assert np.allclose(f_batch, [_reference_f(g, p) for g, p in zip(gt, pred)], atol=1e-12, rtol=0)
    assert f_batch[1] == 0.0 and f_batch[-1] == 0.0


# ------------------------------------------------------------------ statistics


def test_statistics_known_numbers() -> None:
    mean, recall, decay = M.db_statistics(np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2]))
    # 8 frames: bins are frames 0-2, 2-4, 4-5, 5-7 -> decay = mean(.9,.8,.7) - mean(.4,.3,.2)
    assert (mean, recall, decay) == pytest.approx((0.55, 0.5, 0.5))
    assert M.db_statistics(np.array([1.0, 0.8, 0.6, 0.4, 0.2]))[2] == pytest.approx(0.9 - 0.3)
    assert M.db_statistics(np.array([0.7])) == pytest.approx((0.7, 1.0, 0.0))
    assert M.db_statistics(np.array([0.5, 0.51]))[1] == 0.5  # recall counts > 0.5 only


# -------------------------------------------------------------------- sequence


def _two_object_sequence() -> tuple[np.ndarray, np.ndarray]:
    """5 frames, objects 1 and 2; the prediction never has object 2 and is empty in frame 2."""
    gt = np.zeros((5, 12, 12), dtype=np.uint8)
    gt[:, 1:5, 1:5] = 1
    gt[:3, 7:10, 7:10] = 2  # object 2 leaves after frame 2
    gt[3, 0, 11] = 3  # an id not in the first frame: ignored
    pred = np.where(gt == 1, 1, 0).astype(np.uint8)
    pred[2] = 0
    pred[0] = pred[-1] = 9  # first and last predicted frames are never read
    return gt, pred


def test_sequence_missing_object_and_empty_frames() -> None:
    gt, pred = _two_object_sequence()
    res = M.evaluate_sequence(gt, pred)
    assert res["objects"] == [1, 2]
    # evaluated frames 1, 2, 3
    assert res["J"]["per_frame"].tolist() == [[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]]
    assert res["F"]["per_frame"].tolist() == [[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]]
    assert res["J"]["M"].tolist() == pytest.approx([2 / 3, 1 / 3])
    assert res["J"]["R"].tolist() == pytest.approx([2 / 3, 1 / 3])
    # 3 frames: bins are frames 0-1, 1, 1-2, 2 -> decay = mean(frames 0, 1) - frame 2
    assert res["J"]["D"].tolist() == pytest.approx([0.5 - 1.0, 0.0 - 1.0])


def test_sequence_void_is_background() -> None:
    gt, pred = _two_object_sequence()
    gt[1, 5, 1:5] = 255  # void just below object 1 ...
    pred[1, 5, 1:5] = 1  # ... predicted as object 1 counts as a false positive
    res = M.evaluate_sequence(gt, pred)
    assert res["J"]["per_frame"][0, 0] == pytest.approx(16 / 20)


def test_sequence_object_count_from_first_frame() -> None:
    gt, pred = _two_object_sequence()
    gt[0, gt[0] == 2] = 255  # void does not count: only object 1 now
    assert M.evaluate_sequence(gt, pred)["objects"] == [1]
    pred[2, 0, 0] = 2  # a predicted id above N in an evaluated frame
    with pytest.raises(M.EvaluationError, match="object id 2"):
        M.evaluate_sequence(gt, pred)


# ---------------------------------------------------------------- vos-benchmark


def test_agrees_with_vos_benchmark() -> None:
    """vos-benchmark counts objects seen in the evaluated frames; equal when all are in frame 1."""
    evaluator_module = pytest.importorskip("vos_benchmark.evaluator")
    rng = np.random.default_rng(0)
    gt = np.zeros((7, 40, 60), dtype=np.uint8)
    for t in range(7):
        gt[t, 5 + t : 20 + t, 5:25] = 1
        gt[t, 22:35, 30 + 2 * t : 45 + 2 * t] = 2
        gt[t, 1:4, 50:58] = 3 if t < 5 else 0  # object 3 disappears
    pred = np.roll(gt, 1, axis=1)
    pred[rng.random(pred.shape) < 0.03] = 0
    pred[3][pred[3] == 2] = 0  # object 2 missed in one frame
    evaluator = evaluator_module.Evaluator()
    for t in range(1, 6):
        evaluator.feed_frame(pred[t], gt[t])
    vos_j, vos_f = evaluator.conclude()
    res = M.evaluate_sequence(gt, pred)
    for i, obj in enumerate(res["objects"]):
        assert res["J"]["M"][i] * 100 == pytest.approx(vos_j[obj], abs=1e-9)
        assert res["F"]["M"][i] * 100 == pytest.approx(vos_f[obj], abs=1e-9)


# ---------------------------------------------------------------------- folders


def _save(mask: np.ndarray, path: Path, palette: bool) -> None:
    img = Image.fromarray(mask.astype(np.uint8))
    if palette:
        img.putpalette([c for i in range(256) for c in (i, 255 - i, (7 * i) % 256)])
    img.save(path)


def _write_pair(root: Path) -> tuple[Path, Path]:
    gt_root, pred_root = root / "gt", root / "pred"
    gt, pred = _two_object_sequence()
    pred[0] = pred[-1] = 0
    for name, (g, p) in {"alpha": (gt, pred), "beta": (gt[:, :, ::-1], gt[:, :, ::-1])}.items():
        (gt_root / name).mkdir(parents=True)
        (pred_root / name).mkdir(parents=True)
        for t in range(len(g)):
            _save(g[t], gt_root / name / f"{t:05d}.png", palette=True)
            _save(np.where(p[t] == 3, 0, p[t]), pred_root / name / f"{t:05d}.png", palette=t % 2 == 0)
    return gt_root, pred_root


def test_read_mask_modes(tmp_path: Path) -> None:
    ids = np.array([[0, 1], [2, 255]], dtype=np.uint8)
    _save(ids, tmp_path / "p.png", palette=True)
    _save(ids, tmp_path / "l.png", palette=False)
    Image.fromarray(np.stack([ids] * 3, axis=-1)).save(tmp_path / "rgb.png")
    assert np.array_equal(metrics_folders.read_mask(tmp_path / "p.png"), ids)
    assert np.array_equal(metrics_folders.read_mask(tmp_path / "l.png"), ids)
    with pytest.raises(M.EvaluationError, match="rgb.png"):
        metrics_folders.read_mask(tmp_path / "rgb.png")


def test_cli_writes_official_csvs_and_json(tmp_path: Path) -> None:
    """scripts/evaluate_jf.py's smoke run: a real process (two worker processes)."""
    gt_root, pred_root = _write_pair(tmp_path)
    out_json, csv_dir = tmp_path / "out" / "jf.json", tmp_path / "csv"
    cmd = [sys.executable, *SCRIPT, str(gt_root), str(pred_root), "--json", str(out_json)]
    proc = subprocess.run([*cmd, "--csv_dir", str(csv_dir), "--processes", "2"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "J&F-Mean" in proc.stdout and "alpha_2" in proc.stdout

    rows = list(csv.reader(open(csv_dir / "global_results.csv", newline="")))
    assert rows[0] == ["J&F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay"]
    assert len(rows) == 2 and all(re.fullmatch(r"-?\d+\.\d{3}", v) for v in rows[1])
    text = (csv_dir / "per-sequence_results.csv").read_text()
    assert text == "Sequence,J-Mean,F-Mean\nalpha_1,0.667,0.667\nalpha_2,0.333,0.333\nbeta_1,1.000,1.000\nbeta_2,1.000,1.000\n"

    data = json.loads(out_json.read_text())
    assert set(data) == {"J&F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay", "sequences"}
    assert data["J-Mean"] == pytest.approx((2 / 3 + 1 / 3 + 2) / 4)
    assert data["sequences"]["alpha"] == pytest.approx({"J&F": 0.5, "J": 0.5, "F": 0.5})
    assert set(data["sequences"]) == {"alpha", "beta"}


def test_cli_missing_folder_exits_2(tmp_path: Path, cli) -> None:
    gt_root, _ = _write_pair(tmp_path)
    missing = tmp_path / "nope"
    proc = cli("scripts.evaluate_jf", gt_root, missing, "--json", tmp_path / "j.json")
    assert_one_line_error(proc, str(missing))
    assert not (tmp_path / "j.json").exists()


def _break_missing_sequence(pred_root: Path) -> Path:
    for f in (pred_root / "beta").iterdir():
        f.unlink()
    (pred_root / "beta").rmdir()
    return pred_root / "beta"


def _break_missing_frame(pred_root: Path) -> Path:
    (pred_root / "beta" / "00002.png").unlink()
    return pred_root / "beta" / "00002.png"


def _break_corrupt_png(pred_root: Path) -> Path:
    (pred_root / "alpha" / "00001.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    return pred_root / "alpha" / "00001.png"


def _break_size(pred_root: Path) -> Path:
    Image.fromarray(np.zeros((5, 5), dtype=np.uint8)).save(pred_root / "beta" / "00003.png")
    return pred_root / "beta" / "00003.png"


@pytest.mark.parametrize("breaker", [_break_missing_sequence, _break_missing_frame, _break_corrupt_png, _break_size])
def test_cli_bad_input_exits_2_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture, breaker) -> None:
    gt_root, pred_root = _write_pair(tmp_path)
    culprit = breaker(pred_root)
    before = sorted(p for p in tmp_path.rglob("*"))
    code = evaluate_jf.main([str(gt_root), str(pred_root), "--json", str(tmp_path / "j.json"), "--processes", "1"])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and str(culprit) in err
    assert sorted(p for p in tmp_path.rglob("*")) == before
