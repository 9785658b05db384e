"""Every row of the README's bad-input table: correct handling, or one clear line and exit 2.

eval_davis.py's ``main(argv)`` runs in-process (``cli``) on a copy of the shared DAVIS layout with the lite checkpoint.
"""

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from model.checkpoint import safe_load
from tests.helpers import DAVIS_FRAMES, assert_one_line_error
from util.errors import UserError
from util.palette import davis_palette

SEQ_FRAMES = DAVIS_FRAMES


@pytest.fixture
def davis_copy(davis, lite_checkpoint, tmp_path):
    """A copy of the shared DAVIS 2017 layout (to damage), its first video's name and the lite checkpoint."""
    shutil.copytree(davis / "2017", tmp_path / "2017")
    trainval = tmp_path / "2017/trainval"
    name = (trainval / "ImageSets/2017/val.txt").read_text().split()[0]
    return trainval, name, lite_checkpoint, tmp_path


@pytest.fixture
def evaluate(cli):
    """``evaluate(trainval, ckpt, out, check=False)``: eval_davis.py in-process."""

    def run(trainval: Path, ckpt: Path, out: Path, check: bool = False):
        return cli("eval_davis", "--model", ckpt, "--davis", trainval.parent, "--output", out, check=check)

    return run


def save_p(path: Path, ids: np.ndarray) -> None:
    img = Image.fromarray(ids.astype(np.uint8))
    img.putpalette(davis_palette())
    img.save(path)


def test_missing_split_file(davis_copy, evaluate):
    trainval, _, ckpt, tmp = davis_copy
    (trainval / "ImageSets/2017/val.txt").unlink()
    assert_one_line_error(evaluate(trainval, ckpt, tmp / "o"), "val.txt", "not found")


def test_missing_sequence_folder(davis_copy, evaluate):
    trainval, name, ckpt, tmp = davis_copy
    shutil.rmtree(trainval / "JPEGImages/480p" / name)
    assert_one_line_error(evaluate(trainval, ckpt, tmp / "o"), name, "not found")


def test_missing_first_annotation(davis_copy, evaluate):
    trainval, name, ckpt, tmp = davis_copy
    (trainval / "Annotations/480p" / name / "00000.png").unlink()
    assert_one_line_error(evaluate(trainval, ckpt, tmp / "o"), "00000.png", "first-frame annotation")


def test_annotation_of_the_wrong_size(davis_copy, evaluate):
    trainval, name, ckpt, tmp = davis_copy
    save_p(trainval / "Annotations/480p" / name / "00000.png", np.ones((40, 64)))
    assert_one_line_error(evaluate(trainval, ckpt, tmp / "o"), "00000.png", "64x40", "resize")


def test_rgb_annotation_with_palette_colours_is_accepted(davis_copy, evaluate):
    trainval, name, ckpt, tmp = davis_copy
    path = trainval / "Annotations/480p" / name / "00000.png"
    ids = np.array(Image.open(path))
    Image.open(path).convert("RGB").save(path)
    evaluate(trainval, ckpt, tmp / "o", check=True)
    assert np.array_equal(np.array(Image.open(tmp / "o" / name / "00000.png")), ids)


def test_rgb_annotation_with_foreign_colours_is_refused(davis_copy, evaluate):
    trainval, name, ckpt, tmp = davis_copy
    path = trainval / "Annotations/480p" / name / "00000.png"
    rgb = np.zeros((48, 64, 3), np.uint8)
    rgb[10:20, 10:20] = (17, 200, 3)
    Image.fromarray(rgb).save(path)
    assert_one_line_error(evaluate(trainval, ckpt, tmp / "o"), "00000.png", "(17, 200, 3)", "palette")


def test_void_255_and_high_ids(davis_copy, evaluate):
    trainval, name, ckpt, tmp = davis_copy
    ids = np.zeros((48, 64), np.uint8)
    ids[5:20, 5:20] = 254
    ids[25:40, 30:50] = 7
    ids[0:3, :] = 255  # void: never an object
    save_p(trainval / "Annotations/480p" / name / "00000.png", ids)
    evaluate(trainval, ckpt, tmp / "o", check=True)
    first = np.array(Image.open(tmp / "o" / name / "00000.png"))
    assert set(np.unique(first).tolist()) == {0, 7, 254}
    assert (first[0:3] == 0).all()
    for t in range(SEQ_FRAMES):
        assert set(np.unique(np.array(Image.open(tmp / "o" / name / f"{t:05d}.png"))).tolist()) <= {0, 7, 254}


def test_no_object_in_first_annotation(davis_copy, evaluate):
    trainval, name, ckpt, tmp = davis_copy
    save_p(trainval / "Annotations/480p" / name / "00000.png", np.zeros((48, 64)))
    evaluate(trainval, ckpt, tmp / "o", check=True)
    outputs = sorted((tmp / "o" / name).iterdir())
    assert len(outputs) == SEQ_FRAMES and all(not np.array(Image.open(p)).any() for p in outputs)


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_corrupt_frame_mid_sequence(davis_copy, evaluate, damage):
    trainval, name, ckpt, tmp = davis_copy
    frame = trainval / "JPEGImages/480p" / name / "00002.jpg"
    data = frame.read_bytes()
    frame.write_bytes(data[: len(data) // 3] if damage == "truncated" else b"\x00" * 100)
    out = tmp / "o"
    assert_one_line_error(evaluate(trainval, ckpt, out), "00002.jpg", "cannot decode")
    assert not (out / name).exists()  # nothing that looks complete


def test_one_frame_video(davis_copy, evaluate):
    trainval, name, ckpt, tmp = davis_copy
    for path in sorted((trainval / "JPEGImages/480p" / name).iterdir())[1:]:
        path.unlink()
    evaluate(trainval, ckpt, tmp / "o", check=True)
    assert [p.name for p in (tmp / "o" / name).iterdir()] == ["00000.png"]


def test_frames_of_different_sizes(davis_copy, evaluate):
    trainval, name, ckpt, tmp = davis_copy
    frame = trainval / "JPEGImages/480p" / name / "00002.jpg"
    Image.open(frame).resize((80, 60)).save(frame)
    evaluate(trainval, ckpt, tmp / "o", check=True)
    with Image.open(tmp / "o" / name / "00002.png") as resized, Image.open(tmp / "o" / name / "00003.png") as kept:
        assert resized.size == (80, 60) and kept.size == (64, 48)


def test_empty_folder_as_dataset_root(davis_copy, evaluate):
    _, _, ckpt, tmp = davis_copy
    (tmp / "empty").mkdir()
    proc = evaluate(tmp / "empty" / "trainval", ckpt, tmp / "o")
    assert_one_line_error(proc, "empty")


# ------------------------------------------------------------------ checkpoints
class _Payload:
    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_malicious_checkpoint_is_refused_without_running_it(davis, tmp_path, evaluate):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pth"
    torch.save({"mask_rgb_encoder.conv1.weight": _Payload(str(marker))}, evil)
    assert not marker.exists()
    proc = evaluate(davis / "2017/trainval", evil, tmp_path / "o")
    assert_one_line_error(proc, "evil.pth", "refused")
    assert not marker.exists()
    with pytest.raises(UserError, match="refused"):
        safe_load(evil)
    assert not marker.exists()


def test_truncated_checkpoint(davis, lite_checkpoint, tmp_path, evaluate):
    bad = tmp_path / "cut.pth"
    bad.write_bytes(lite_checkpoint.read_bytes()[:5000])
    proc = evaluate(davis / "2017/trainval", bad, tmp_path / "o")
    assert_one_line_error(proc, "cut.pth", "truncated")


def test_stcn_checkpoint_is_recognised(davis, tmp_path, evaluate):
    stcn = tmp_path / "stcn.pth"
    torch.save({"key_encoder.conv1.weight": torch.zeros(1), "value_encoder.conv1.weight": torch.zeros(1)}, stcn)
    proc = evaluate(davis / "2017/trainval", stcn, tmp_path / "o")
    assert_one_line_error(proc, "stcn.pth", "STCN")


def test_training_checkpoint_where_weights_expected(davis, lite_checkpoint, tmp_path, evaluate):
    train_ckpt = tmp_path / "x_checkpoint.pth"
    torch.save({"it": 5, "network": {}, "optimizer": {}, "scheduler": {}}, train_ckpt)
    proc = evaluate(davis / "2017/trainval", train_ckpt, tmp_path / "o")
    assert_one_line_error(proc, "training checkpoint", "weights")


def test_weights_of_another_shape(davis, lite_checkpoint, tmp_path, evaluate):
    state = safe_load(lite_checkpoint)
    state["network"]["score.fc2.weight"] = torch.zeros(2, 3)
    bad = tmp_path / "shape.pth"
    torch.save(state, bad)
    proc = evaluate(davis / "2017/trainval", bad, tmp_path / "o")
    assert_one_line_error(proc, "shape.pth", "wrong shape", "score.fc2.weight")
