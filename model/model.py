"""Training wrapper: the three-frame clip forward, loss, optimiser, logging and checkpoints.

:class:`ClipForward` is the whole forward pass of one training iteration as a single
module, so that DistributedDataParallel sees exactly one forward per backward.
:class:`QDMNTrainer` owns the optimiser, the LR schedule, the logging window and the
checkpoint files. The network runs in eval mode: batch-norm statistics stay frozen in
every stage (their affine parameters still learn), as in the official code, which starts
from ImageNet statistics. ``train_bn`` (``train.py --train_bn``) lets batch norm learn
its statistics instead, for training from random weights, whose frozen statistics would
stay at mean 0 and variance 1, i.e. no normalisation at all.
"""

from __future__ import annotations

import contextlib
import inspect
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

from model.aggregate import aggregate_logits
from model.checkpoint import (
    TRAINING_FORMAT,
    atomic_save,
    check_state_dict,
    weights_payload,
)
from model.compile import CompileRecord, LazyCompiled, prepare_compiler
from model.losses import START_WARM, LossComputer, iou_hooks
from model.network import QDMN, QueryFeatures
from util.errors import UserError
from util.image_saver import pool_pairs
from util.log_integrator import Integrator
from util.logger import TensorboardLogger

MEMORY_FORMATS = ("auto", "channels_last", "contiguous")


def use_channels_last(memory_format: str, amp: bool) -> bool:
    """Whether training runs channels_last: as asked, or (``auto``) with mixed precision, where oneDNN and Tensor
    Cores gain most from it (measured on the CPU: 1.45x lite, 1.76x official with bfloat16; 1.1x in float32)."""
    if memory_format not in MEMORY_FORMATS:
        raise ValueError(f"memory format {memory_format!r}: one of {', '.join(MEMORY_FORMATS)}")
    return memory_format == "channels_last" or (memory_format == "auto" and amp)


WEIGHT_DECAY = 1e-7
REPORT_INTERVAL = 100
IMAGE_INTERVAL = 800


# --------------------------------------------------------------------------- forward
def _flat(x: torch.Tensor) -> torch.Tensor:
    return x.flatten(2)


def _repeat_query(q: QueryFeatures, n: int) -> QueryFeatures:
    """The query features of B clips repeated for n objects (object-major: n*B)."""
    if n == 1:
        return q
    return QueryFeatures(*(torch.cat([t] * n, 0) for t in (q.f16, q.f8, q.f4, q.key, q.value)))


def _objects_to_channels(x: torch.Tensor, n: int) -> torch.Tensor:
    """(n*B, 1, H, W) object-major -> (B, n, H, W)."""
    return x.view(n, -1, *x.shape[-2:]).transpose(0, 1)


def _channels_to_objects(x: torch.Tensor) -> torch.Tensor:
    """(B, n, H, W) -> (n*B, 1, H, W) object-major."""
    return x.transpose(0, 1).reshape(-1, 1, *x.shape[-2:])


def _others(masks: torch.Tensor) -> torch.Tensor:
    """For two objects in channels (B, 2, H, W): each object's "other" mask, object-major."""
    return _channels_to_objects(masks.flip(1))


class ClipForward(nn.Module):
    """Segment frames 1 and 2 of a clip from the ground truth of frame 0 (docs/METHOD.md §3).

    Frame 0 is memorised with its ground truth; frame 1 is segmented (prior: GT of
    frame 0), memorised with its predicted probabilities and scored by the QAM; frame 2
    is segmented from the memory of frames 0 and 1 (prior: the detached prediction of
    frame 1) and scored. With two objects, each object has its own memory, encoded with
    the other object as the "other" mask; objects ride in the batch dimension.

    Returns, for t = 1, 2: ``logits_t`` (B, 1+K, H, W) aggregated logits, ``mask_t``
    (B, K, H, W) object probabilities after soft aggregation, ``score_t`` (B, K).
    """

    def __init__(self, net: QDMN):
        super().__init__()
        self.net = net

    def forward(self, rgb: torch.Tensor, gt: torch.Tensor, sec_gt: Optional[torch.Tensor] = None, selector: Optional[torch.Tensor] = None):
        if self.net.config.single_object:
            masks0, selector = gt[:, 0], None
        else:
            masks0 = torch.cat([gt[:, 0], sec_gt[:, 0]], 1)  # (B, 2, H, W)
        n = masks0.shape[1]
        key0, value0, _ = self._memorize(rgb[:, 0], masks0)
        keys, values = [key0], [value0]
        out: dict[str, torch.Tensor] = {}
        prior = masks0
        for t in (1, 2):
            q = _repeat_query(self.net.query(rgb[:, t], prior.detach().max(1, keepdim=True)[0]), n)
            readout = self.net.read(torch.cat(keys, 2), torch.cat(values, 2), q)
            obj_logits = _objects_to_channels(self.net.decode(readout, q), n)
            prob = torch.sigmoid(obj_logits)
            if selector is not None:
                prob = prob * selector[:, :, None, None]
            logits = aggregate_logits(prob, dim=1)
            prob = F.softmax(logits, dim=1)[:, 1:]
            key, value, score = self._memorize(rgb[:, t], prob)
            out[f"logits_{t}"], out[f"mask_{t}"], out[f"score_{t}"] = logits, prob, score
            if t == 1:
                keys.append(key)
                values.append(value)
            prior = prob
        return out

    def _memorize(self, image: torch.Tensor, masks: torch.Tensor):
        """Masks (B, n, H, W) -> keys (n*B, CK, hw), values (n*B, CV, hw), scores (B, n)."""
        n = masks.shape[1]
        if n == 1:
            key, value, score = self.net.encode_memory(image, masks)
        else:
            images = torch.cat([image] * n, 0)
            key, value, score = self.net.encode_memory(images, _channels_to_objects(masks), _others(masks))
        return _flat(key), _flat(value), score.view(n, -1).transpose(0, 1)


# --------------------------------------------------------------------------- weights
def expand_single_object(state: dict[str, torch.Tensor], net: QDMN) -> dict[str, torch.Tensor]:
    """Give a stage-0 (4-channel) mask encoder the 5th input channel of the two-object model.

    The new channel (the "other objects" mask) is initialised orthogonally, as in the
    official ``load_network``.
    """
    name = "mask_rgb_encoder.conv1.weight"
    src, own = state.get(name), net.state_dict()[name]
    if src is None or src.shape[1] != 4 or own.shape[1] != 5:
        return state
    pad = torch.zeros(src.shape[0], 1, *src.shape[2:], dtype=src.dtype)
    nn.init.orthogonal_(pad)
    return {**state, name: torch.cat([src, pad], 1)}


# --------------------------------------------------------------------------- trainer
@dataclass
class StepOutcome:
    """What :meth:`QDMNTrainer.do_pass` did: ``skipped`` is None when the weights were
    updated, else "loss" or "gradient" (the one that was not finite)."""

    losses: dict[str, torch.Tensor]
    skipped: Optional[str] = None
    local_loss_finite: bool = True


class QDMNTrainer:
    """Optimiser, schedule, loss, logging and checkpoints around a :class:`QDMN` network.

    ``net`` must already hold its initial weights and live on ``device``. With
    ``world_size > 1`` the clip forward is wrapped in DistributedDataParallel (every
    parameter is used in every iteration, so ``find_unused_parameters`` stays off).
    """

    def __init__(
        self,
        net: QDMN,
        lr: float,
        steps: list[int],
        gamma: float,
        device: torch.device,
        world_size: int = 1,
        logger: Optional[TensorboardLogger] = None,
        save_path: Optional[str | Path] = None,
        debug: bool = False,
        start_warm: int = START_WARM,
        amp_dtype: Optional[torch.dtype] = None,
        channels_last: bool = False,
        train_bn: bool = False,
        compile: bool = False,
    ):
        self.net = net
        self.train_bn = train_bn
        self.batch_norms = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        if channels_last:  # parameters change layout in place, before the optimiser and DDP see them
            net.to(memory_format=torch.channels_last)
        # Mixed precision: autocast in the forward pass; losses, the QAM's target IoU and the
        # optimiser stay float32. float16 needs loss scaling (its range is small), bfloat16 does not.
        self.amp_dtype = amp_dtype
        self.scaler = _grad_scaler(device, enabled=amp_dtype == torch.float16)
        # Timing hook for scripts/benchmark_train.py: part(name) -> context manager around each part.
        self.part: Callable[[str], contextlib.AbstractContextManager] = lambda name: contextlib.nullcontext()
        self.config = net.config
        self.device = device
        self.world_size = world_size
        self.logger = logger
        self.save_path = Path(save_path) if save_path is not None else None
        self.module = ClipForward(net)
        self.model: nn.Module = self.module
        if world_size > 1:
            device_ids = [device.index] if device.type == "cuda" else None
            self.model = DistributedDataParallel(self.module, device_ids=device_ids, find_unused_parameters=False, **_no_buffer_sync())
        # --compile: the clip forward (and so its backward) compiled at the first step; the network and its
        # state-dict keys are untouched (model/compile.py).
        self.compile_record = CompileRecord(prepare_compiler()) if compile else None
        self.clip_forward: Callable[..., dict[str, torch.Tensor]] = (
            LazyCompiled("the training step", self.model, self.compile_record) if self.compile_record is not None else self.model
        )
        self.optimizer = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=lr, weight_decay=WEIGHT_DECAY)
        self.scheduler = torch.optim.lr_scheduler.MultiStepLR(self.optimizer, steps, gamma)
        self.loss_computer = LossComputer(start_warm=start_warm)
        self.integrator = Integrator(logger, distributed=world_size > 1, hooks=(iou_hooks,))
        self.report_interval = 1 if debug else REPORT_INTERVAL
        self.image_interval = 1 if debug else IMAGE_INTERVAL
        self.last_time = time.time()
        self.train()

    def train(self) -> QDMNTrainer:
        """Training mode: the network stays in eval mode (frozen batch norm), its batch norms
        excepted with ``train_bn`` (batch statistics, running averages updated)."""
        self.model.eval()
        if self.train_bn:
            for bn in self.batch_norms:
                bn.train()
        return self

    def _batch_norm_statistics(self) -> list[torch.Tensor]:
        return [b for bn in self.batch_norms for b in bn.buffers()]

    def _settle_batch_norm_statistics(self, before: Optional[list[torch.Tensor]], skipped: Optional[str]) -> None:
        """With ``train_bn``: a skipped step leaves the running statistics as they were (a
        non-finite forward would poison them); otherwise the ranks average them, so every
        rank holds the same network and the saved statistics reflect every rank's data."""
        if before is None:
            return
        buffers = self._batch_norm_statistics()
        if skipped is not None:
            for buffer, old in zip(buffers, before):
                buffer.copy_(old)
        elif self.world_size > 1:  # one collective for all of them, not one per buffer
            statistics = [b for b in buffers if b.is_floating_point()]
            flat = torch.cat([b.reshape(-1) for b in statistics])
            dist.all_reduce(flat)
            flat.div_(self.world_size)
            for buffer, mean in zip(statistics, flat.split([b.numel() for b in statistics])):
                buffer.copy_(mean.view_as(buffer))

    # ------------------------------------------------------------------ one iteration
    def to_device(self, data: dict[str, Any]) -> dict[str, Any]:
        non_blocking = self.device.type == "cuda"
        return {k: v.to(self.device, non_blocking=non_blocking) if isinstance(v, torch.Tensor) else v for k, v in data.items()}

    def do_pass(self, data: dict[str, Any], it: int) -> StepOutcome:
        """One optimisation step on a batch; ``it`` = steps done before it (0-based).

        A non-finite loss (on any rank) or gradient skips the update: the weights and the
        optimiser moments stay as they were, the iteration still counts (the learning-rate
        schedule and the data order stay aligned with the iteration number, so resuming
        stays exact). Every rank takes the same decision, so DDP never waits for a rank
        that skipped its backward pass.
        """
        before = [b.clone() for b in self._batch_norm_statistics()] if self.train_bn else None
        with self.part("forward"):
            data = self.to_device(data)
            with self._autocast():
                out = self.clip_forward(data["rgb"], data["gt"], data.get("sec_gt"), data.get("selector"))
            out = {k: v.float() if isinstance(v, torch.Tensor) and v.is_floating_point() else v for k, v in out.items()}
            losses = self.loss_computer.compute(data, out, it)
            self.optimizer.zero_grad(set_to_none=True)
            local_finite = bool(torch.isfinite(losses["total_loss"]).item())
        skipped = None
        if not self._all_ranks(local_finite):
            skipped = "loss"
        elif self.scaler.is_enabled():
            # Infinite gradients are the scaler's business: it skips that step and lowers the
            # scale, which is part of float16 training, not a non-finite failure.
            with self.part("backward"):
                self.scaler.scale(losses["total_loss"]).backward()
            self.integrator.add_dict(losses)
            with self.part("optimizer"):
                self.scaler.step(self.optimizer)
                self.scaler.update()
        else:
            with self.part("backward"):
                losses["total_loss"].backward()
                finite = self._all_ranks(self._gradients_finite())
            if not finite:
                skipped = "gradient"
                self.optimizer.zero_grad(set_to_none=True)
            else:
                self.integrator.add_dict(losses)
                with self.part("optimizer"):
                    self.optimizer.step()
        self._settle_batch_norm_statistics(before, skipped)
        self.scheduler.step()
        self._log(data, out, it + 1)
        return StepOutcome(losses, skipped, local_finite)

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def _gradients_finite(self) -> bool:
        grads = [p.grad for p in self.net.parameters() if p.grad is not None]
        return bool(torch.isfinite(torch.stack([torch.linalg.vector_norm(g) for g in grads])).all().item()) if grads else True

    def _all_ranks(self, ok: bool) -> bool:
        """``ok`` on every rank (collective when distributed)."""
        if self.world_size == 1:
            return ok
        flag = torch.tensor([1.0 if ok else 0.0], device=self.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MIN)
        return bool(flag.item())

    def _log(self, data: dict[str, Any], out: dict[str, torch.Tensor], done: int) -> None:
        if done % self.image_interval == 0 and self.logger is not None and self.logger.writer is not None:
            self.logger.log_image("train/pairs", pool_pairs(data, out, self.config.single_object), done)
        if done % self.report_interval == 0:
            self.integrator.finalize("train", done)  # collective
            if self.logger is not None:
                self.logger.log_scalar("train/lr", self.scheduler.get_last_lr()[0], done)
                self.logger.log_metrics("train", "time", (time.time() - self.last_time) / self.report_interval, done)
            self.last_time = time.time()

    # ------------------------------------------------------------------ checkpoints
    def state(self, it: int, data_state: dict[str, Any], rng: list[dict[str, Any]], hyperparameters: dict[str, Any]) -> dict[str, Any]:
        return {
            "format": TRAINING_FORMAT,
            "it": it,
            "network": {k: v.detach().cpu() for k, v in self.net.state_dict().items()},
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),  # empty unless float16 loss scaling runs
            "config": self.config.to_dict(),
            "data_state": data_state,
            "rng": rng,
            "hyperparameters": hyperparameters,
        }

    def save(self, it: int, checkpoint: dict[str, Any]) -> Optional[tuple[Path, Path]]:
        """Write ``<save_path>_<it>.pth`` (weights + config) and ``<save_path>_checkpoint.pth``."""
        if self.save_path is None:
            print("Saving has been disabled.", flush=True)
            return None
        weights = Path(f"{self.save_path}_{it}.pth")
        hyper = checkpoint.get("hyperparameters") or {}
        size = hyper.get("size")
        train_size = (size, hyper.get("crop_width") or size) if isinstance(size, int) else None
        atomic_save(weights_payload(self.net, self.config, train_size), weights)
        print(f"Model saved to {weights}.", flush=True)
        path = Path(f"{self.save_path}_checkpoint.pth")
        atomic_save(checkpoint, path)
        print(f"Checkpoint saved to {path}.", flush=True)
        return weights, path

    def load_training_state(self, checkpoint: dict[str, Any], path: str | Path) -> None:
        """Optimiser and scheduler of a training checkpoint (the network is loaded before)."""
        optimizer = checkpoint["optimizer"]
        params = [p for group in self.optimizer.param_groups for p in group["params"]]
        for index, entry in optimizer.get("state", {}).items():
            exp_avg = entry.get("exp_avg")
            if index >= len(params) or (exp_avg is not None and exp_avg.shape != params[index].shape):
                raise UserError(f"{path}: optimiser state does not fit this network (parameter {index}); it was saved by different code")
        self.optimizer.load_state_dict(optimizer)
        self.scheduler.load_state_dict(checkpoint["scheduler"])
        if self.scaler.is_enabled() and checkpoint.get("scaler"):
            self.scaler.load_state_dict(checkpoint["scaler"])


def _grad_scaler(device: torch.device, enabled: bool) -> torch.amp.GradScaler:
    """Loss scaling for float16 (``torch.amp.GradScaler`` from PyTorch 2.3, ``torch.cuda.amp`` before)."""
    if hasattr(torch.amp, "GradScaler"):
        return torch.amp.GradScaler(device.type, enabled=enabled)
    return torch.cuda.amp.GradScaler(enabled=enabled)


def _no_buffer_sync() -> dict[str, bool]:
    """Batch-norm buffers are frozen, so DDP need not broadcast them every forward.

    They are still made identical once when DDP starts. Newer PyTorch spells this
    ``forward_sync_buffers=False`` (``broadcast_buffers`` is deprecated there).
    """
    if "forward_sync_buffers" in inspect.signature(DistributedDataParallel.__init__).parameters:
        return {"forward_sync_buffers": False}
    return {"broadcast_buffers": False}


def load_network_into(net: QDMN, state: dict[str, torch.Tensor], path: str | Path) -> None:
    """Strictly load weights (a stage-0 mask encoder is widened for two objects)."""
    check_state_dict(net, expand_single_object(state, net), path)
