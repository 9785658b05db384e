"""Property-based fuzzing: the mask reader, the label mapping and the J&F metric.

Whatever the shapes, ids and dtypes, each either answers or raises a clear error (a
UserError with a message), never crashes otherwise.
"""

import io
import tempfile
from pathlib import Path

import numpy as np
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from evaluation.propagation import probabilities_to_labels
from util.errors import UserError
from util.image_io import load_mask
from util.metrics import EvaluationError, db_eval_boundary, db_eval_iou, evaluate_sequence
from util.palette import davis_palette

FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
shapes = st.tuples(st.integers(1, 24), st.integers(1, 24))


@FUZZ
@given(data=st.data(), mode=st.sampled_from(["P", "L", "RGB", "1", "I;16", "RGBA", "garbage"]))
def test_mask_reader_answers_or_explains(data, mode):
    h, w = data.draw(shapes)
    ids = data.draw(arrays(np.uint8, (h, w), elements=st.integers(0, 255)))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.png"
        if mode == "garbage":
            path.write_bytes(data.draw(st.binary(max_size=64)))
        elif mode == "P":
            img = Image.fromarray(ids)
            img.putpalette(davis_palette())
            img.save(path)
        elif mode == "RGB" or mode == "RGBA":
            palette = np.frombuffer(davis_palette(), np.uint8).reshape(256, 3)
            rgb = palette[ids] if data.draw(st.booleans()) else data.draw(arrays(np.uint8, (h, w, 3)))
            Image.fromarray(rgb).convert(mode).save(path)
        else:
            Image.fromarray(ids).convert(mode).save(path)
        try:
            out = load_mask(path)
        except UserError as e:
            assert str(path) in str(e)
            return
    assert out.shape == (h, w) and out.dtype == np.uint8
    if mode in ("P", "L"):
        assert np.array_equal(out, ids)


@FUZZ
@given(data=st.data())
def test_label_mapping_keeps_original_ids(data):
    k = data.draw(st.integers(0, 5))
    labels = data.draw(st.lists(st.integers(1, 254), min_size=k, max_size=k, unique=True))
    h, w = data.draw(shapes)
    out_h, out_w = data.draw(shapes)
    prob = torch.softmax(torch.from_numpy(data.draw(arrays(np.float32, (k + 1, h, w), elements=st.floats(-5, 5, width=32)))), 0)
    table = torch.tensor([0, *labels], dtype=torch.uint8)
    out = probabilities_to_labels(prob, (out_h, out_w), table)
    assert out.shape == (out_h, out_w) and out.dtype == torch.uint8
    assert set(out.unique().tolist()) <= {0, *labels}
    if (out_h, out_w) == (h, w):
        assert torch.equal(out, table[prob.argmax(0)])


@FUZZ
@given(data=st.data(), dtype=st.sampled_from([np.uint8, np.int32, np.int64, np.bool_]))
def test_metric_answers_or_explains(data, dtype):
    t = data.draw(st.integers(0, 6))
    h, w = data.draw(shapes)
    high = 1 if dtype == np.bool_ else 4
    gt = data.draw(arrays(np.uint8, (t, h, w), elements=st.integers(0, high))).astype(dtype)
    pred = data.draw(arrays(np.uint8, (t, h, w), elements=st.integers(0, high))).astype(dtype)
    try:
        result = evaluate_sequence(gt, pred)
    except EvaluationError as e:
        assert str(e)
        return
    for measure in ("J", "F"):
        values = np.asarray(result[measure]["M"], dtype=float)
        assert np.all((values >= 0) & (values <= 1))


@FUZZ
@given(data=st.data())
def test_single_frame_measures_are_bounded(data):
    h, w = data.draw(shapes)
    gt = data.draw(arrays(np.bool_, (h, w)))
    pred = data.draw(arrays(np.bool_, (h, w)))
    j, f = db_eval_iou(gt, pred), db_eval_boundary(gt, pred)
    assert 0 <= j <= 1 and 0 <= f <= 1
    assert db_eval_iou(gt, gt) == 1 and db_eval_boundary(gt, gt) == 1


def test_png_bytes_roundtrip():
    buf = io.BytesIO()
    Image.fromarray(np.zeros((2, 2), np.uint8)).save(buf, format="PNG")
    assert buf.getvalue().startswith(b"\x89PNG")


@settings(max_examples=60, deadline=None)
@given(blob=st.one_of(st.binary(max_size=300), st.text(max_size=100).map(str.encode)), cut=st.integers(min_value=0, max_value=4000))
def test_checkpoint_reader_answers_or_explains(blob, cut):
    """Random bytes, text, or a real checkpoint cut short: a UserError naming the file, never a traceback."""
    from model.checkpoint import safe_load

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "random.pth"
        real = io.BytesIO()
        torch.save({"w": torch.arange(50.0)}, real)
        for content in (blob, real.getvalue()[:cut]):
            path.write_bytes(content)
            try:
                safe_load(path)
            except UserError as e:
                assert str(path) in str(e) and "\n" not in str(e)
