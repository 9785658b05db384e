"""Train QDMN (stage 0 static images, 1 BL30K, 2 DAVIS + YouTube-VOS).

One process per device. Works under ``torchrun --nproc_per_node=N train.py ...``,
``python -m torch.distributed.launch --nproc_per_node=N train.py ...`` and plain
``python train.py ...`` (one device, no process group). See docs/TRAINING.md.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import inspect
import math
import os
import random
import signal
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader

from datasets.sampling import ResumableSampler, SeededDataset
from datasets.training_data import StageData, stage_data
from model.config import PRESETS, ModelConfig
from model.model import (
    QDMNTrainer,
    checkpoint_config,
    gather_rng_states,
    load_network_into,
    read_network_file,
    read_training_checkpoint,
    set_rng_state,
)
from model.network import QDMN
from model.resnet import find_imagenet_weights
from util.checkpoint import safe_load
from util.errors import EXIT_INTERRUPTED, UserError, exit_on_user_error
from util.hardware import amp_dtype, effective_amp, training_parallelism
from util.hyper_para import parse_args
from util.logger import TensorboardLogger

SAVE_ROOT = "saves"
LOG_ROOT = "log"


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


def resolve_env(args) -> DistEnv:
    """Rank and device from the launcher's environment (LOCAL_RANK, or the --local-rank flag)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", args.local_rank if args.local_rank is not None else 0))
    spec = args.device
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    if spec == "cuda":
        spec = f"cuda:{local_rank}"
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise UserError(f"--device {args.device}: not a device (use auto, cpu, cuda or cuda:N)") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"--device {args.device}: CUDA is not available here; use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UserError(f"{device}: only {torch.cuda.device_count()} CUDA device(s) visible to rank {rank}")
    elif device.type != "cpu":
        raise UserError(f"--device {args.device}: train.py runs on cpu or cuda (cuda:N); use one of them")
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


# --------------------------------------------------------------------------- model
def choose_config(args, resume: Optional[dict], resume_cfg: Optional[ModelConfig], network_cfg: Optional[ModelConfig]) -> ModelConfig:
    """The architecture: the checkpoint's when resuming, else the flags, else the loaded weights', else official."""
    single = args.stage == 0
    if resume is not None:
        cfg = resume_cfg
        if (
            args.model_config is not None
            and PRESETS[args.model_config].with_(qam_activation=cfg.qam_activation, single_object=cfg.single_object) != cfg
        ):
            raise UserError(f"{args.load_model}: the checkpoint is not --model_config {args.model_config}; resume without --model_config")
        if args.qam_activation is not None and args.qam_activation != cfg.qam_activation:
            raise UserError(f"{args.load_model}: the checkpoint uses QAM activation {cfg.qam_activation}; resume without --qam_activation")
        if cfg.single_object != single:
            raise UserError(f"{args.load_model}: a stage-{0 if cfg.single_object else '1/2'} checkpoint cannot resume stage {args.stage}")
        return cfg
    if args.model_config is not None:
        base = PRESETS[args.model_config]
    elif network_cfg is not None:
        base = network_cfg
    else:
        base = PRESETS["official"]
    activation = args.qam_activation or (network_cfg.qam_activation if network_cfg is not None else "sigmoid")
    return base.with_(qam_activation=activation, single_object=single)


def imagenet_init(net: QDMN, args, log) -> None:
    """ImageNet weights for both encoders when available locally; otherwise a warning."""
    try:
        path = find_imagenet_weights(net.config.backbone, args.imagenet_weights)
    except FileNotFoundError as e:
        if args.imagenet_weights is not None:
            raise UserError(str(e)) from None
        log(f"warning: {e}; training from scratch (random initialisation)")
        return
    net.load_imagenet(safe_load(path))
    log(f"ImageNet weights loaded from {path}")


def build_network(config: ModelConfig, args, env: DistEnv, resume: Optional[dict], network_state: Optional[dict], log) -> QDMN:
    net = QDMN(config, top_k=None)
    if resume is not None:
        load_network_into(net, resume["network"], args.load_model)
        log(f"Resuming {args.load_model} at iteration {resume['it']}")
    elif network_state is not None:
        load_network_into(net, network_state, args.load_network)
        log(f"Network weights loaded from {args.load_network}")
    else:
        imagenet_init(net, args, log)
        if args.mirror_init:
            net.mirror_memory_side()
            log("Memory side initialised as a copy of the query side (--mirror_init)")
    return net.to(env.device)


def weights_digest(net: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for name, tensor in sorted(net.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


def check_ranks_agree(net: torch.nn.Module, env: DistEnv) -> None:
    """Print this rank's weight digest; rank 0 warns when the ranks ended with different weights."""
    digest = weights_digest(net)
    print(f"rank {env.rank}: weights sha256 {digest}", flush=True)
    digests: list[Any] = [None] * env.world_size
    dist.all_gather_object(digests, digest)
    if env.is_main and len(set(digests)) > 1:
        warnings.warn(f"ranks ended with different weights: {digests}", stacklevel=1)


# --------------------------------------------------------------------------- data
def init_worker(worker_id: int, rank: int = 0) -> None:
    """Data-loader worker setup: ignore SIGTERM and Ctrl-C (the main process saves and stops) and seed per rank and worker."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    seed = (torch.initial_seed() + worker_id + rank * 100) % 2**31
    np.random.seed(seed)
    random.seed(seed)


def make_loader(dataset: SeededDataset, sampler: ResumableSampler, args, env: DistEnv) -> DataLoader:
    workers, _ = training_parallelism(env.device.type, args.num_workers, args.threads)
    return DataLoader(
        dataset,
        args.batch_size,
        sampler=sampler,
        num_workers=workers,
        worker_init_fn=functools.partial(init_worker, rank=env.rank),
        drop_last=True,
        pin_memory=env.device.type == "cuda",
    )


def data_state(epoch: int, batch_in_epoch: int, args, env: DistEnv, dataset_len: int) -> dict[str, int]:
    return {
        "epoch": epoch,
        "batch_in_epoch": batch_in_epoch,
        "batch_size": args.batch_size,
        "world_size": env.world_size,
        "seed": args.seed,
        "dataset_len": dataset_len,
    }


def resume_position(resume: Optional[dict], start_it: int, per_epoch: int, args, env: DistEnv, dataset_len: int, log) -> tuple[int, int]:
    """(epoch, batches already done in it) at which the data stream continues."""
    epoch, done = divmod(start_it, per_epoch)
    saved = (resume or {}).get("data_state")
    if resume is not None and saved is not None:
        now = data_state(epoch, done, args, env, dataset_len)
        differs = [k for k in ("batch_size", "world_size", "seed", "dataset_len") if saved.get(k) != now[k]]
        if differs:
            log(f"warning: {', '.join(differs)} changed since the checkpoint; the data order will not continue exactly")
    return epoch, done


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


# --------------------------------------------------------------------------- logging
def git_description() -> str:
    try:
        import git

        repo = git.Repo(Path(__file__).resolve().parent, search_parent_directories=True)
        dirty = " (uncommitted changes)" if repo.is_dirty() else ""
        return f"{repo.head.commit.hexsha}{dirty}"
    except Exception as e:  # no repository, no git, detached or empty history
        return f"unknown ({type(e).__name__})"


def make_progress(start: int, total: int):
    import progressbar

    widgets = [
        progressbar.Percentage(),
        " ",
        progressbar.SimpleProgress(),
        " ",
        progressbar.Bar(),
        " ",
        progressbar.AdaptiveTransferSpeed(unit="it"),
        " ",
        progressbar.AdaptiveETA(),
    ]
    return progressbar.ProgressBar(
        min_value=0, max_value=total, initial_value=start, widgets=widgets, redirect_stdout=True, poll_interval=1
    )


def hyperparameters(args) -> dict[str, Any]:
    return {k: v for k, v in vars(args).items() if isinstance(v, (str, int, float, bool, list, type(None)))}


# --------------------------------------------------------------------------- main
def load_inputs(args) -> tuple[Optional[dict], Optional[ModelConfig], Optional[dict], Optional[ModelConfig]]:
    """Read and check --load_model / --load_network before anything is started."""
    resume = resume_cfg = network_state = network_cfg = None
    for flag in ("load_model", "load_network"):
        path = getattr(args, flag)
        if path and not Path(path).is_file():
            raise UserError(f"{path}: file not found; check --{flag}")
    if args.load_model:
        resume = read_training_checkpoint(safe_load(args.load_model), args.load_model)
        resume_cfg = checkpoint_config(resume, args.load_model)
    if args.load_network:
        network_state, network_cfg = read_network_file(safe_load(args.load_network), args.load_network)
    return resume, resume_cfg, network_state, network_cfg


def run_id(args) -> Optional[str]:
    if args.id.upper() == "NULL":
        return None
    return f"{datetime.datetime.now().strftime('%b%d_%H.%M.%S')}_{args.id}"


def claim_save_folder(folder: Path) -> Path:
    """Create this run's save folder; one that exists (the same --id started in the same second) is never shared."""
    try:
        folder.mkdir(parents=True, exist_ok=False)
    except FileExistsError:
        raise UserError(f"{folder}: already exists (a run with this --id started in the same second?); choose another --id") from None
    except OSError as e:
        raise UserError(f"{folder}: cannot create the save folder ({e.strerror or e}); check the permissions of {SAVE_ROOT}/") from None
    return folder


def broadcast_run_id(long_id: Optional[str], env: DistEnv) -> Optional[str]:
    if not env.distributed:
        return long_id
    box = [long_id]
    dist.broadcast_object_list(box, src=0)
    return box[0]


@exit_on_user_error
def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    env = resolve_env(args)
    log = (lambda msg: print(msg, flush=True)) if env.is_main else (lambda msg: None)
    resume, resume_cfg, network_state, network_cfg = load_inputs(args)
    config = choose_config(args, resume, resume_cfg, network_cfg)
    data = stage_data(args, log)
    init_distributed(env)
    try:
        return train(args, env, config, data, resume, network_state, log)
    finally:
        if env.distributed and dist.is_initialized():
            dist.destroy_process_group()


def train(args, env: DistEnv, config: ModelConfig, data: StageData, resume, network_state, log) -> int:
    if args.benchmark:
        torch.backends.cudnn.benchmark = True
    # Tiny gradients (and Adam's squared averages) become denormal floats, which make CPU
    # arithmetic 10-20x slower; flushing them to zero changes nothing measurable.
    torch.set_flush_denormal(True)
    if args.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.deterministic = True
    workers, threads = training_parallelism(env.device.type, args.num_workers, args.threads)
    torch.set_num_threads(threads)
    log(f"I am rank {env.rank} in this world of size {env.world_size}, on {env.device} ({threads} threads, {workers} data workers)")

    long_id = broadcast_run_id(run_id(args), env)
    logger = save_path = None
    if env.is_main:
        logger = TensorboardLogger(args.id, long_id, LOG_ROOT)
        logger.log_string("hyperpara", str(hyperparameters(args)))
        logger.log_string("git", git_description())
        logger.log_string("model_config", str(config.to_dict()))
        if long_id is not None:
            save_path = claim_save_folder(Path(SAVE_ROOT) / long_id) / long_id
        else:
            log("warning: --id NULL: TensorBoard logging and saving are disabled")

    seed_everything(args.seed)  # identical initialisation on every rank
    net = build_network(config, args, env, resume, network_state, log)
    amp = amp_dtype(env.device) if effective_amp(env.device, args.amp, args.force_amp) else None
    if amp is not None:
        log(f"mixed precision: {str(amp).removeprefix('torch.')} autocast" + (" with loss scaling" if amp == torch.float16 else ""))
    trainer = QDMNTrainer(
        net, args.lr, args.steps, args.gamma, env.device, env.world_size, logger, save_path, args.debug, amp_dtype=amp
    )
    start_it = 0
    if resume is not None:
        trainer.load_training_state(resume, args.load_model)
        start_it = int(resume["it"])
    seed_everything(args.seed + 100 * env.rank)
    if resume is not None and "rng" in resume and len(resume["rng"]) == env.world_size:
        set_rng_state(resume["rng"][env.rank], env.device)

    sampler = ResumableSampler(data.dataset, env.world_size, env.rank, args.seed)
    per_epoch = sampler.num_samples // args.batch_size
    if per_epoch == 0:
        raise UserError(
            f"{len(data.dataset)} training samples give {sampler.num_samples} per process, fewer than the batch size {args.batch_size}"
        )
    total_epochs = math.ceil(args.iterations / per_epoch)
    log(f"Number of training epochs (the last epoch might not complete): {total_epochs}")
    epoch, done = resume_position(resume, start_it, per_epoch, args, env, len(data.dataset), log)
    if start_it >= args.iterations:
        log(f"nothing to do: the checkpoint is at iteration {start_it} and -i is {args.iterations}")
        return 0
    if args.stop_at is not None and args.stop_at <= start_it:
        raise UserError(f"--stop_at {args.stop_at} is not after the checkpoint's iteration {start_it}")

    stop = StopFlag()
    progress = make_progress(start_it, args.iterations) if env.is_main else None
    it, last_saved = start_it, None

    def save() -> None:
        nonlocal last_saved
        state = data_state(*divmod(it, per_epoch), args, env, len(data.dataset))
        rng = gather_rng_states(env.device, env.world_size)  # collective
        if env.is_main:
            trainer.save(it, trainer.state(it, state, rng, hyperparameters(args)))
        last_saved = it

    dataset = SeededDataset(data.dataset)
    watch = NonFiniteWatch()
    skip = None
    finished = stopped = False
    while not finished:
        new_skip = data.set_epoch(args.stage, epoch, total_epochs)
        if args.stage != 0 and new_skip != skip:
            if args.stage == 1:
                log(f"Epoch {epoch}: max_jump {new_skip[0]}")
            else:
                log(f"Epoch {epoch}: max_jump {new_skip[0]} (YouTube-VOS {new_skip[0] // 5} annotated frames), DAVIS {new_skip[1]}")
            skip = new_skip
        sampler.set_epoch(epoch)
        sampler.set_start(done * args.batch_size)
        done = 0
        for batch in make_loader(dataset, sampler, args, env):
            outcome = trainer.do_pass(batch, it)
            it += 1
            nonfinite = watch.record(outcome, batch, it, env)
            if nonfinite is not None:
                if progress is not None:
                    progress.finish(dirty=True)
                raise UserError(nonfinite_stop_message(nonfinite, trainer, last_saved))
            if progress is not None:
                progress.update(it)
            stopping = stop.agreed(env)
            if it % args.save_every == 0 or it >= args.iterations or stopping or it == args.stop_at:
                save()
            if stopping or it >= args.iterations or it == args.stop_at:
                finished, stopped = True, stopping
                break
        epoch += 1
    if progress is not None:
        progress.finish(dirty=stopped)
    if stopped:
        log(f"{stop.signal_name}: stopped at iteration {it}")
    elif args.stop_at is not None and it == args.stop_at and it < args.iterations:
        log(f"--stop_at: stopped at iteration {it}; resume with --load_model")
    if last_saved != it:
        save()
    if env.distributed:
        check_ranks_agree(net, env)
    if logger is not None:
        logger.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
