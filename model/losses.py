"""Training losses: bootstrapped cross-entropy on the aggregated logits, and the QAM loss.

Per sample and frame (frames 1 and 2 of the clip):

* bootstrapped CE over [background, object 1 (, object 2)]: plain CE before
  ``start_warm``, then the mean over the hardest ``p`` of the pixels, ``p`` falling
  linearly from 100 % at ``start_warm`` to 15 % at ``end_warm`` (as the official code,
  per sample; a sample without a second object uses the first two channels only);
* QAM loss: squared error between each object's predicted quality and the IoU of its
  thresholded (> 0.5) predicted mask with the ground truth, averaged over the objects
  that exist.

The loss of a frame is the mean over the batch of their sum; the total is the sum over
the two frames. Two defects of the official code are fixed (see docs/TRAINING.md): an
empty prediction of an empty object scores IoU 1, not 0; and with two objects each
score is supervised by its own IoU instead of the mean score by the mean IoU.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Optional

import torch
import torch.nn.functional as F

START_WARM = 20000
END_WARM = 70000
TOP_P = 0.15
NUM_FRAMES = 3


def bootstrap_fraction(it: int, start_warm: int = START_WARM, end_warm: int = END_WARM, top_p: float = TOP_P) -> float:
    """Share of the pixels (the hardest ones) kept by the bootstrapped CE at iteration ``it``."""
    if it < start_warm:
        return 1.0
    if it > end_warm:
        return top_p
    return top_p + (1 - top_p) * (end_warm - it) / (end_warm - start_warm)


class BootstrappedCE(torch.nn.Module):
    def __init__(self, start_warm: int = START_WARM, end_warm: int = END_WARM, top_p: float = TOP_P):
        super().__init__()
        self.start_warm, self.end_warm, self.top_p = start_warm, end_warm, top_p

    def forward(self, logits: torch.Tensor, target: torch.Tensor, it: int) -> tuple[torch.Tensor, float]:
        """Logits (B, C, H, W), target (B, H, W) -> (loss, fraction of pixels kept)."""
        if it < self.start_warm:
            return F.cross_entropy(logits, target), 1.0
        raw = F.cross_entropy(logits, target, reduction="none").view(-1)
        p = bootstrap_fraction(it, self.start_warm, self.end_warm, self.top_p)
        kept, _ = torch.topk(raw, int(raw.numel() * p), sorted=False)
        return kept.mean(), p


def mask_iou(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """IoU of binary masks over the last two dims; 1 when both are empty."""
    pred, gt = pred.bool(), gt.bool()
    inter = (pred & gt).flatten(-2).sum(-1).float()
    union = (pred | gt).flatten(-2).sum(-1).float()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))


def object_ious(prob: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Probabilities (B, K, H, W) and GT (B, K, H, W) -> IoU of the thresholded masks (B, K), no grad."""
    with torch.no_grad():
        return mask_iou(prob > 0.5, gt > 0.5)


def iou_hooks(values: dict[str, float]) -> dict[str, float]:
    """Window IoUs (sum of intersections over sum of unions, +1 smoothed) from the hidden counters."""
    out = {"iou/iou": (values["hide_iou/i"] + 1) / (values["hide_iou/u"] + 1)}
    if "hide_iou/sec_i" in values:
        out["iou/sec_iou"] = (values["hide_iou/sec_i"] + 1) / (values["hide_iou/sec_u"] + 1)
    return out


class LossComputer:
    def __init__(self, start_warm: int = START_WARM, end_warm: int = END_WARM, top_p: float = TOP_P):
        self.bce = BootstrappedCE(start_warm, end_warm, top_p)

    def compute(self, data: dict[str, torch.Tensor], out: dict[str, torch.Tensor], it: int) -> dict[str, torch.Tensor]:
        """``data``: the batch (gt, cls_gt, [sec_gt, selector]); ``out``: the clip forward.

        ``out`` holds, for frames i = 1, 2: ``logits_i`` (B, 1+K, H, W) aggregated logits,
        ``mask_i`` (B, K, H, W) object probabilities and ``score_i`` (B, K) QAM scores.
        """
        losses: dict[str, torch.Tensor] = defaultdict(lambda: torch.zeros((), device=data["gt"].device))
        selector: Optional[torch.Tensor] = data.get("selector")
        gt_all = data["gt"] if selector is None else torch.cat([data["gt"], data["sec_gt"]], 2)  # (B, T, K, H, W)
        batch = gt_all.shape[0]
        valid = torch.ones(batch, gt_all.shape[2], device=gt_all.device) if selector is None else (selector > 0.5).float()
        for i in range(1, NUM_FRAMES):
            logits, prob, score = out[f"logits_{i}"], out[f"mask_{i}"], out[f"score_{i}"]
            iou = object_ious(prob, gt_all[:, i])
            seg, qam, p = self._frame_losses(logits, data["cls_gt"][:, i], score, iou, valid, it)
            losses[f"seg_loss_{i}"] = seg
            losses[f"qam_loss_{i}"] = qam
            losses[f"loss_{i}"] = seg + qam
            losses["total_loss"] = losses["total_loss"] + seg + qam
            losses["p"] = losses["p"] + p / (NUM_FRAMES - 1)
            losses["qam/abs_err"] = losses["qam/abs_err"] + _masked_mean((score.detach() - iou).abs(), valid) / (NUM_FRAMES - 1)
            losses["qam/score"] = losses["qam/score"] + _masked_mean(score.detach(), valid) / (NUM_FRAMES - 1)
            self._iou_counters(losses, prob, gt_all[:, i], selector is not None)
        return dict(losses)

    def _frame_losses(self, logits, cls_gt, score, iou, valid, it: int) -> tuple[torch.Tensor, torch.Tensor, float]:
        """Mean over the batch of the per-sample CE and QAM losses, and the bootstrap fraction."""
        batch = logits.shape[0]
        seg = qam = logits.new_zeros(())
        p = 1.0
        # background + the objects that exist (a missing second object's channel is dropped)
        channels = (1 + valid.sum(1)).long().tolist()
        for j in range(batch):
            loss, p = self.bce(logits[j : j + 1, : channels[j]], cls_gt[j : j + 1], it)
            seg = seg + loss / batch
            qam = qam + _masked_mean((score[j] - iou[j]) ** 2, valid[j]) / batch
        return seg, qam, p

    @staticmethod
    def _iou_counters(losses, prob: torch.Tensor, gt: torch.Tensor, two_objects: bool) -> None:
        with torch.no_grad():
            pred, target = prob > 0.5, gt > 0.5
            names = [("hide_iou/i", "hide_iou/u")] + ([("hide_iou/sec_i", "hide_iou/sec_u")] if two_objects else [])
            for k, (i_name, u_name) in enumerate(names):
                losses[i_name] = losses[i_name] + (pred[:, k] & target[:, k]).sum().float()
                losses[u_name] = losses[u_name] + (pred[:, k] | target[:, k]).sum().float()


def _masked_mean(x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    return (x * valid).sum() / valid.sum().clamp(min=1)
