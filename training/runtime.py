"""The training runtime: processes (rank, device, distributed start), the stop flag
(SIGTERM, Ctrl-C), the non-finite watch and the generator states saved in checkpoints.

``train.py`` is the training loop; it uses these, ``model/model.py`` (the trainer) and
``datasets/``.
"""

from __future__ import annotations

import inspect
import random
import signal
import sys
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import torch
import torch.distributed as dist

from model.model import QDMNTrainer
from training.config import TrainConfig
from util.errors import EXIT_INTERRUPTED, UserError
from util.hardware import launcher_ranks, rank_device


# --------------------------------------------------------------------------- processes
@dataclass
class DistEnv:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def resolve_env(opts: TrainConfig) -> DistEnv:
    """Rank and device from the launcher's environment (LOCAL_RANK, or the --local-rank flag)."""
    rank, world_size, local_rank = launcher_ranks(opts.local_rank)
    device = rank_device(None if opts.device == "auto" else opts.device, local_rank)  # each rank its own GPU
    if device.type not in ("cpu", "cuda"):
        raise UserError(f"--device {opts.device}: train.py runs on cpu or cuda (cuda:N); use one of them")
    return DistEnv(rank, world_size, local_rank, device)


def init_distributed(env: DistEnv) -> None:
    if env.device.type == "cuda":
        torch.cuda.set_device(env.device)
    if env.distributed:
        backend = "nccl" if env.device.type == "cuda" else "gloo"
        kwargs: dict[str, Any] = {}
        if env.device.type == "cuda" and "device_id" in inspect.signature(dist.init_process_group).parameters:
            kwargs["device_id"] = env.device  # binds NCCL to this rank's GPU (PyTorch >= 2.3)
        dist.init_process_group(backend=backend, init_method="env://", rank=env.rank, world_size=env.world_size, **kwargs)


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


class StopFlag:
    """Set by SIGTERM or a first Ctrl-C (SIGINT); checked (and agreed between ranks) after every iteration.

    Either way the run saves a checkpoint and exits 0; a second Ctrl-C aborts at once
    (exit 130), leaving the last saved checkpoint as it was.
    """

    def __init__(self) -> None:
        self.requested = False
        self.signal_name = ""
        signal.signal(signal.SIGTERM, self._handle)
        signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum, frame) -> None:
        if signum == signal.SIGINT and self.requested:
            print("second Ctrl-C: aborted without saving; the last saved checkpoint is intact", file=sys.stderr, flush=True)
            raise SystemExit(EXIT_INTERRUPTED)
        if signum == signal.SIGINT:
            print("Ctrl-C: saving a checkpoint after this iteration, then stopping (Ctrl-C again aborts without saving)",
                  file=sys.stderr, flush=True)
        self.requested = True
        self.signal_name = self.signal_name or signal.Signals(signum).name

    def agreed(self, env: DistEnv) -> bool:
        if not env.distributed:
            return self.requested
        flag = torch.tensor([float(self.requested)], device=env.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())


# --------------------------------------------------------------------------- generator states
def rng_state(device: torch.device) -> dict[str, Any]:
    """torch, CUDA, numpy and Python generator states, as tensors and plain values (weights_only-safe)."""
    np_state = np.random.get_state()
    py_state = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "gauss": [int(np_state[3]), float(np_state[4])],
        },
        "python": {"version": py_state[0], "state": torch.tensor(py_state[1], dtype=torch.int64), "gauss": py_state[2]},
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    np_state = state["numpy"]
    np.random.set_state(("MT19937", np_state["keys"].numpy().astype(np.uint32), np_state["pos"], *np_state["gauss"]))
    py_state = state["python"]
    random.setstate((py_state["version"], tuple(py_state["state"].tolist()), py_state["gauss"]))
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def gather_rng_states(device: torch.device, world_size: int) -> list[dict[str, Any]]:
    """Every rank's generator states, indexed by rank (collective when distributed)."""
    mine = rng_state(device)
    if world_size == 1:
        return [mine]
    states: list[Any] = [None] * world_size
    dist.all_gather_object(states, {k: _to_cpu(v) for k, v in mine.items()})
    return states


def _to_cpu(x: Any) -> Any:
    if isinstance(x, torch.Tensor):
        return x.cpu()
    if isinstance(x, dict):
        return {k: _to_cpu(v) for k, v in x.items()}
    return x


# --------------------------------------------------------------------------- non-finite losses
MAX_NONFINITE_IN_A_ROW = 10


def sample_names(batch: dict[str, Any]) -> str:
    names = batch.get("info", {}).get("name", [])
    return ", ".join(str(n) for n in names) if isinstance(names, (list, tuple)) else str(names)


class NonFiniteWatch:
    """Counts skipped updates in a row; warns for each, naming this rank's samples."""

    def __init__(self, limit: int = MAX_NONFINITE_IN_A_ROW) -> None:
        self.limit = limit
        self.in_a_row = 0
        self.first = 0

    def record(self, outcome, batch: dict[str, Any], it: int, env: DistEnv) -> Optional[str]:
        """None while training may go on; else a description of the run of failures."""
        if outcome.skipped is None:
            self.in_a_row = 0
            return None
        self.in_a_row += 1
        self.first = it if self.in_a_row == 1 else self.first
        value = float(outcome.losses["total_loss"].detach())
        where = f"rank {env.rank}: " if env.distributed else ""
        if not outcome.local_loss_finite or (outcome.skipped == "gradient" and env.is_main):
            print(
                f"warning: {where}iteration {it}: non-finite {outcome.skipped} (total_loss {value}) on samples "
                f"[{sample_names(batch)}]; update skipped ({self.in_a_row} in a row)",
                flush=True,
            )
        if self.in_a_row < self.limit:
            return None
        return f"{self.limit} non-finite losses or gradients in a row (iterations {self.first}-{it}, last on [{sample_names(batch)}])"


def nonfinite_stop_message(what: str, trainer: QDMNTrainer, last_saved: Optional[int]) -> str:
    if trainer.save_path is None or last_saved is None:
        kept = "no checkpoint was written by this run"
    else:
        kept = f"the last checkpoint {trainer.save_path}_checkpoint.pth (iteration {last_saved}) is intact"
    return f"training stopped: {what}; {kept}; resume from it with --load_model and a lower --lr, or check those samples"
