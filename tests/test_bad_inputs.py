"""Every row of the README's bad-input table: correct handling, or one clear line and exit 2."""

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from model.checkpoint import safe_load
from tests.test_eval_cli import assert_one_line_error, davis_with_lite_checkpoint, run
from util.errors import UserError
from util.palette import davis_palette

SEQ_FRAMES = 4


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return davis_with_lite_checkpoint(tmp_path_factory.mktemp("bad"), 9, 1, SEQ_FRAMES, 48, 64)


@pytest.fixture
def davis(base, tmp_path):
    root, ckpt = base
    shutil.copytree(root / "2017", tmp_path / "2017")
    trainval = tmp_path / "2017/trainval"
    name = (trainval / "ImageSets/2017/val.txt").read_text().split()[0]
    return trainval, name, ckpt, tmp_path


def evaluate(trainval: Path, ckpt: Path, out: Path, check: bool = False):
    return run("eval_davis.py", "--model", str(ckpt), "--davis", str(trainval.parent), "--output", str(out), check=check)


def save_p(path: Path, ids: np.ndarray) -> None:
    img = Image.fromarray(ids.astype(np.uint8))
    img.putpalette(davis_palette())
    img.save(path)


def test_missing_split_file(davis):
    trainval, _, ckpt, tmp = davis
    (trainval / "ImageSets/2017/val.txt").unlink()
    assert_one_line_error(evaluate(trainval, ckpt, tmp / "o"), "val.txt", "not found")


def test_missing_sequence_folder(davis):
    trainval, name, ckpt, tmp = davis
    shutil.rmtree(trainval / "JPEGImages/480p" / name)
    assert_one_line_error(evaluate(trainval, ckpt, tmp / "o"), name, "not found")


def test_missing_first_annotation(davis):
    trainval, name, ckpt, tmp = davis
    (trainval / "Annotations/480p" / name / "00000.png").unlink()
    assert_one_line_error(evaluate(trainval, ckpt, tmp / "o"), "00000.png", "first-frame annotation")


def test_annotation_of_the_wrong_size(davis):
    trainval, name, ckpt, tmp = davis
    save_p(trainval / "Annotations/480p" / name / "00000.png", np.ones((40, 64)))
    assert_one_line_error(evaluate(trainval, ckpt, tmp / "o"), "00000.png", "64x40", "resize")


def test_rgb_annotation_with_palette_colours_is_accepted(davis):
    trainval, name, ckpt, tmp = davis
    path = trainval / "Annotations/480p" / name / "00000.png"
    ids = np.array(Image.open(path))
    Image.open(path).convert("RGB").save(path)
    run("eval_davis.py", "--model", str(ckpt), "--davis", str(trainval.parent), "--output", str(tmp / "o"))
    assert np.array_equal(np.array(Image.open(tmp / "o" / name / "00000.png")), ids)


def test_rgb_annotation_with_foreign_colours_is_refused(davis):
    trainval, name, ckpt, tmp = davis
    path = trainval / "Annotations/480p" / name / "00000.png"
    rgb = np.zeros((48, 64, 3), np.uint8)
    rgb[10:20, 10:20] = (17, 200, 3)
    Image.fromarray(rgb).save(path)
    assert_one_line_error(evaluate(trainval, ckpt, tmp / "o"), "00000.png", "(17, 200, 3)", "palette")


def test_void_255_and_high_ids(davis):
    trainval, name, ckpt, tmp = davis
    ids = np.zeros((48, 64), np.uint8)
    ids[5:20, 5:20] = 254
    ids[25:40, 30:50] = 7
    ids[0:3, :] = 255  # void: never an object
    save_p(trainval / "Annotations/480p" / name / "00000.png", ids)
    run("eval_davis.py", "--model", str(ckpt), "--davis", str(trainval.parent), "--output", str(tmp / "o"))
    first = np.array(Image.open(tmp / "o" / name / "00000.png"))
    assert set(np.unique(first).tolist()) == {0, 7, 254}
    assert (first[0:3] == 0).all()
    for t in range(SEQ_FRAMES):
        assert set(np.unique(np.array(Image.open(tmp / "o" / name / f"{t:05d}.png"))).tolist()) <= {0, 7, 254}


def test_no_object_in_first_annotation(davis):
    trainval, name, ckpt, tmp = davis
    save_p(trainval / "Annotations/480p" / name / "00000.png", np.zeros((48, 64)))
    run("eval_davis.py", "--model", str(ckpt), "--davis", str(trainval.parent), "--output", str(tmp / "o"))
    outputs = sorted((tmp / "o" / name).iterdir())
    assert len(outputs) == SEQ_FRAMES and all(not np.array(Image.open(p)).any() for p in outputs)


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_corrupt_frame_mid_sequence(davis, damage):
    trainval, name, ckpt, tmp = davis
    frame = trainval / "JPEGImages/480p" / name / "00002.jpg"
    data = frame.read_bytes()
    frame.write_bytes(data[: len(data) // 3] if damage == "truncated" else b"\x00" * 100)
    out = tmp / "o"
    assert_one_line_error(evaluate(trainval, ckpt, out), "00002.jpg", "cannot decode")
    assert not (out / name).exists()  # nothing that looks complete


def test_one_frame_video(davis):
    trainval, name, ckpt, tmp = davis
    for path in sorted((trainval / "JPEGImages/480p" / name).iterdir())[1:]:
        path.unlink()
    run("eval_davis.py", "--model", str(ckpt), "--davis", str(trainval.parent), "--output", str(tmp / "o"))
    assert [p.name for p in (tmp / "o" / name).iterdir()] == ["00000.png"]


def test_frames_of_different_sizes(davis):
    trainval, name, ckpt, tmp = davis
    frame = trainval / "JPEGImages/480p" / name / "00002.jpg"
    Image.open(frame).resize((80, 60)).save(frame)
    run("eval_davis.py", "--model", str(ckpt), "--davis", str(trainval.parent), "--output", str(tmp / "o"))
    assert Image.open(tmp / "o" / name / "00002.png").size == (80, 60)
    assert Image.open(tmp / "o" / name / "00003.png").size == (64, 48)


def test_empty_folder_as_dataset_root(davis):
    _, _, ckpt, tmp = davis
    (tmp / "empty").mkdir()
    proc = run("eval_davis.py", "--model", str(ckpt), "--davis", str(tmp / "empty"), "--output", str(tmp / "o"), check=False)
    assert_one_line_error(proc, "empty")


# ------------------------------------------------------------------ checkpoints
class _Payload:
    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_malicious_checkpoint_is_refused_without_running_it(base, tmp_path):
    root, _ = base
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pth"
    torch.save({"mask_rgb_encoder.conv1.weight": _Payload(str(marker))}, evil)
    assert not marker.exists()
    proc = run("eval_davis.py", "--model", str(evil), "--davis", str(root / "2017"), "--output", str(tmp_path / "o"), check=False)
    assert_one_line_error(proc, "evil.pth", "refused")
    assert not marker.exists()
    with pytest.raises(UserError, match="refused"):
        safe_load(evil)
    assert not marker.exists()


def test_truncated_checkpoint(base, tmp_path):
    root, ckpt = base
    bad = tmp_path / "cut.pth"
    bad.write_bytes(ckpt.read_bytes()[:5000])
    proc = run("eval_davis.py", "--model", str(bad), "--davis", str(root / "2017"), "--output", str(tmp_path / "o"), check=False)
    assert_one_line_error(proc, "cut.pth", "truncated")


def test_stcn_checkpoint_is_recognised(base, tmp_path):
    root, _ = base
    stcn = tmp_path / "stcn.pth"
    torch.save({"key_encoder.conv1.weight": torch.zeros(1), "value_encoder.conv1.weight": torch.zeros(1)}, stcn)
    proc = run("eval_davis.py", "--model", str(stcn), "--davis", str(root / "2017"), "--output", str(tmp_path / "o"), check=False)
    assert_one_line_error(proc, "stcn.pth", "STCN")


def test_training_checkpoint_where_weights_expected(base, tmp_path):
    root, ckpt = base
    train_ckpt = tmp_path / "x_checkpoint.pth"
    torch.save({"it": 5, "network": {}, "optimizer": {}, "scheduler": {}}, train_ckpt)
    proc = run("eval_davis.py", "--model", str(train_ckpt), "--davis", str(root / "2017"), "--output", str(tmp_path / "o"), check=False)
    assert_one_line_error(proc, "training checkpoint", "weights")


def test_weights_of_another_shape(base, tmp_path):
    root, ckpt = base
    state = safe_load(ckpt)
    state["network"]["score.fc2.weight"] = torch.zeros(2, 3)
    bad = tmp_path / "shape.pth"
    torch.save(state, bad)
    proc = run("eval_davis.py", "--model", str(bad), "--davis", str(root / "2017"), "--output", str(tmp_path / "o"), check=False)
    assert_one_line_error(proc, "shape.pth", "wrong shape", "score.fc2.weight")
