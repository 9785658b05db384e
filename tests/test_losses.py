"""Training losses against hand-computed values."""

import math

import pytest
import torch

from model.losses import BootstrappedCE, LossComputer, bootstrap_fraction, mask_iou


def test_bootstrap_fraction_schedule():
    assert bootstrap_fraction(0) == 1.0
    assert bootstrap_fraction(19999) == 1.0
    assert bootstrap_fraction(20000) == pytest.approx(1.0)
    assert bootstrap_fraction(45000) == pytest.approx(0.15 + 0.85 * 0.5)
    assert bootstrap_fraction(70000) == pytest.approx(0.15)
    assert bootstrap_fraction(10**6) == 0.15


def _logits(class1_logits):
    """Two-class logits (1, 2, 1, N): class 0 at 0, class 1 at the given values."""
    d = torch.tensor(class1_logits, dtype=torch.float64)
    return torch.stack([torch.zeros_like(d), d])[None, :, None, :]


def test_bootstrapped_ce_hand_values():
    # target 0 everywhere: CE = log(1 + e^d) = ln 2, ln 4, ln 4/3, ln 8
    logits = _logits([0.0, math.log(3), -math.log(3), math.log(7)])
    target = torch.zeros(1, 1, 4, dtype=torch.long)
    plain, p = BootstrappedCE()(logits, target, it=0)
    assert p == 1.0
    assert plain.item() == pytest.approx(math.log(2 * 4 * (4 / 3) * 8) / 4)
    # custom warm-up: p = (100 - it) / 100 -> 0.5 at it 50: the hardest two pixels (ln 8, ln 4)
    half, p = BootstrappedCE(start_warm=0, end_warm=100, top_p=0.0)(logits, target, it=50)
    assert p == pytest.approx(0.5)
    assert half.item() == pytest.approx((math.log(8) + math.log(4)) / 2)
    # after end_warm with the official 15 %: 0.15 * 20 = 3 hardest pixels of 20
    logits20 = _logits([float(k) for k in range(20)])
    hardest, p = BootstrappedCE()(logits20, torch.zeros(1, 1, 20, dtype=torch.long), it=80000)
    expected = sum(math.log1p(math.exp(k)) for k in (17, 18, 19)) / 3
    assert p == 0.15 and hardest.item() == pytest.approx(expected)


def test_mask_iou_hand_values_and_empty_case():
    pred = torch.tensor([[1, 1], [0, 0]])
    gt = torch.tensor([[1, 0], [1, 0]])
    assert mask_iou(pred, gt).item() == pytest.approx(1 / 3)
    empty = torch.zeros(2, 2)
    assert mask_iou(empty, empty).item() == 1.0  # the official code gives 0 here
    assert mask_iou(empty, gt).item() == 0.0
    assert mask_iou(pred, empty).item() == 0.0


def _single_object_batch():
    gt = torch.zeros(1, 3, 1, 2, 2)
    gt[0, 1, 0] = torch.tensor([[1.0, 1.0], [0.0, 0.0]])  # frame 2 GT stays empty
    data = {"gt": gt, "cls_gt": gt[:, :, 0].long()}
    out = {
        "logits_1": torch.zeros(1, 2, 2, 2),
        "logits_2": torch.zeros(1, 2, 2, 2),
        "mask_1": torch.tensor([[[[0.9, 0.2], [0.7, 0.1]]]]),  # thresholded [[1,0],[1,0]]: IoU 1/3
        "mask_2": torch.full((1, 1, 2, 2), 0.1),  # empty prediction of an empty object: IoU 1
        "score_1": torch.tensor([[0.5]]),
        "score_2": torch.tensor([[0.75]]),
    }
    return data, out


def test_single_object_total_loss():
    data, out = _single_object_batch()
    losses = LossComputer().compute(data, out, it=0)
    assert losses["seg_loss_1"].item() == pytest.approx(math.log(2))
    assert losses["qam_loss_1"].item() == pytest.approx((0.5 - 1 / 3) ** 2)
    assert losses["qam_loss_2"].item() == pytest.approx((0.75 - 1.0) ** 2)
    assert losses["total_loss"].item() == pytest.approx(2 * math.log(2) + 1 / 36 + 1 / 16)
    assert losses["loss_1"].item() + losses["loss_2"].item() == pytest.approx(losses["total_loss"].item())


def _two_object_batch(second_exists: bool):
    b, h, w = 1, 2, 2
    gt = torch.zeros(b, 3, 1, h, w)
    sec = torch.zeros(b, 3, 1, h, w)
    gt[0, 1:, 0, 0, 0] = 1  # object 1: top-left pixel
    if second_exists:
        sec[0, 1:, 0, 1, 1] = 1  # object 2: bottom-right pixel
    cls_gt = torch.zeros(b, 3, h, w, dtype=torch.long)
    cls_gt[gt[:, :, 0] > 0.5] = 1
    cls_gt[sec[:, :, 0] > 0.5] = 2
    data = {"gt": gt, "sec_gt": sec, "cls_gt": cls_gt, "selector": torch.tensor([[1.0, 1.0 if second_exists else 0.0]])}
    prob = torch.zeros(b, 2, h, w)
    prob[0, 0, 0, 0] = 0.9  # object 1 exact: IoU 1
    prob[0, 0, 0, 1] = 0.9  # ... plus one wrong pixel: IoU 1/2
    if second_exists:
        prob[0, 1, 1, 1] = 0.9  # object 2 exact: IoU 1
    logits = torch.zeros(b, 3, h, w)
    logits[:, 2] = 10.0  # a large third channel: only counts when the second object exists
    out = {f"logits_{t}": logits for t in (1, 2)}
    out |= {f"mask_{t}": prob for t in (1, 2)}
    out |= {f"score_{t}": torch.tensor([[0.5, 1.0]]) for t in (1, 2)}
    return data, out


def test_two_objects_scores_supervised_separately():
    data, out = _two_object_batch(second_exists=True)
    losses = LossComputer().compute(data, out, it=0)
    # IoUs (1/2, 1) against scores (0.5, 1.0): each object exact, loss 0. The mean of the
    # scores (0.75) against the mean IoU (0.75) would also be 0; swap the scores:
    assert losses["qam_loss_1"].item() == pytest.approx(0.0)
    out = {**out, "score_1": torch.tensor([[1.0, 0.5]])}
    losses = LossComputer().compute(data, out, it=0)
    assert losses["qam_loss_1"].item() == pytest.approx(((1.0 - 0.5) ** 2 + (0.5 - 1.0) ** 2) / 2)
    # 3-channel CE with logits (0, 0, 10): background / object-1 pixels cost log(2 + e^10)
    # and the object-2 pixel costs log(2 + e^10) - 10
    ce = math.log(2 + math.exp(10))
    assert losses["seg_loss_1"].item() == pytest.approx((3 * ce + ce - 10) / 4)


def test_missing_second_object_is_ignored():
    data, out = _two_object_batch(second_exists=False)
    out = {**out, "score_1": torch.tensor([[0.5, 0.0]])}
    losses = LossComputer().compute(data, out, it=0)
    # only object 1 (IoU 1/2, score 0.5) is supervised; CE over [bg, object 1] only
    assert losses["qam_loss_1"].item() == pytest.approx(0.0)
    assert losses["seg_loss_1"].item() == pytest.approx(math.log(2))


def test_batch_mean():
    data, out = _single_object_batch()
    data2 = {k: torch.cat([v, v]) for k, v in data.items()}
    out2 = {k: torch.cat([v, v]) for k, v in out.items()}
    out2["score_1"] = torch.tensor([[0.5], [1 / 3]])  # second item exact
    losses = LossComputer().compute(data2, out2, it=0)
    assert losses["qam_loss_1"].item() == pytest.approx((0.5 - 1 / 3) ** 2 / 2)
    assert losses["hide_iou/i"].item() == 2 and losses["hide_iou/u"].item() == 6
