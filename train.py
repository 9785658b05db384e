"""Train QDMN (stage 0 static images, 1 BL30K, 2 DAVIS + YouTube-VOS).

One process per device. Works under ``torchrun --nproc_per_node=N train.py ...``,
``python -m torch.distributed.launch --nproc_per_node=N train.py ...`` and plain
``python train.py ...`` (one device, no process group). See docs/TRAINING.md.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import hashlib
import math
import random
import signal
import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader

from datasets.sampling import ResumableSampler, SeededDataset
from datasets.training_data import StageData, stage_data
from model.checkpoint import check_checkpoint_path, checkpoint_config, read_network_file, read_training_checkpoint, safe_load
from model.config import PRESETS, ModelConfig
from model.model import QDMNTrainer, load_network_into, use_channels_last
from model.network import QDMN
from model.resnet import find_imagenet_weights
from training.config import TrainConfig
from training.hyper_para import parse_config
from training.memory_budget import check_training_fits
from training.runtime import (
    DistEnv,
    NonFiniteWatch,
    StopFlag,
    gather_rng_states,
    init_distributed,
    nonfinite_stop_message,
    resolve_env,
    seed_everything,
    set_rng_state,
)
from util.errors import UserError, exit_on_user_error
from util.hardware import amp_dtype, effective_amp, ranks_on_this_node, training_parallelism, warn_threads
from util.logger import TensorboardLogger

SAVE_ROOT = "saves"
LOG_ROOT = "log"


# --------------------------------------------------------------------------- model
def choose_config(
    opts: TrainConfig, resume: Optional[dict], resume_cfg: Optional[ModelConfig], network_cfg: Optional[ModelConfig]
) -> ModelConfig:
    """The architecture: the checkpoint's when resuming, else the flags, else the loaded weights', else official."""
    single = opts.stage == 0
    if resume is not None:
        cfg = resume_cfg
        if (
            opts.model_config is not None
            and PRESETS[opts.model_config].with_(qam_activation=cfg.qam_activation, single_object=cfg.single_object) != cfg
        ):
            raise UserError(f"{opts.load_model}: the checkpoint is not --model_config {opts.model_config}; resume without --model_config")
        if opts.qam_activation is not None and opts.qam_activation != cfg.qam_activation:
            raise UserError(f"{opts.load_model}: the checkpoint uses QAM activation {cfg.qam_activation}; resume without --qam_activation")
        if cfg.single_object != single:
            raise UserError(f"{opts.load_model}: a stage-{0 if cfg.single_object else '1/2'} checkpoint cannot resume stage {opts.stage}")
        return cfg
    if opts.model_config is not None:
        base = PRESETS[opts.model_config]
    elif network_cfg is not None:
        base = network_cfg
    else:
        base = PRESETS["official"]
    activation = opts.qam_activation or (network_cfg.qam_activation if network_cfg is not None else "sigmoid")
    return base.with_(qam_activation=activation, single_object=single)


def imagenet_init(net: QDMN, opts: TrainConfig, log) -> None:
    """ImageNet weights for both encoders when available locally; otherwise a warning."""
    try:
        path = find_imagenet_weights(net.config.backbone, opts.imagenet_weights)
    except FileNotFoundError as e:
        if opts.imagenet_weights is not None:
            raise UserError(str(e)) from None
        log(f"warning: {e}; training from scratch (random initialisation)")
        return
    net.load_imagenet(safe_load(path, "--imagenet_weights"))
    log(f"ImageNet weights loaded from {path}")


def init_network(config: ModelConfig, opts: TrainConfig, env: DistEnv, resume: Optional[dict], network_state: Optional[dict], log) -> QDMN:
    net = QDMN(config, top_k=None)
    if resume is not None:
        load_network_into(net, resume["network"], opts.load_model)
        log(f"Resuming {opts.load_model} at iteration {resume['it']}")
    elif network_state is not None:
        load_network_into(net, network_state, opts.load_network)
        log(f"Network weights loaded from {opts.load_network}")
    else:
        imagenet_init(net, opts, log)
        if opts.mirror_init:
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


def make_loader(dataset: SeededDataset, sampler: ResumableSampler, opts: TrainConfig, env: DistEnv) -> DataLoader:
    workers, _ = training_parallelism(env.device.type, opts.num_workers, opts.threads)
    return DataLoader(
        dataset,
        opts.batch_size,
        sampler=sampler,
        num_workers=workers,
        worker_init_fn=functools.partial(init_worker, rank=env.rank),
        drop_last=True,
        pin_memory=env.device.type == "cuda",
    )


def data_state(epoch: int, batch_in_epoch: int, opts: TrainConfig, env: DistEnv, dataset_len: int) -> dict[str, int]:
    return {
        "epoch": epoch,
        "batch_in_epoch": batch_in_epoch,
        "batch_size": opts.batch_size,
        "world_size": env.world_size,
        "seed": opts.seed,
        "dataset_len": dataset_len,
    }


def resume_position(
    resume: Optional[dict], start_it: int, per_epoch: int, opts: TrainConfig, env: DistEnv, dataset_len: int, log
) -> tuple[int, int]:
    """(epoch, batches already done in it) at which the data stream continues."""
    epoch, done = divmod(start_it, per_epoch)
    saved = (resume or {}).get("data_state")
    if resume is not None and saved is not None:
        now = data_state(epoch, done, opts, env, dataset_len)
        differs = [k for k in ("batch_size", "world_size", "seed", "dataset_len") if saved.get(k) != now[k]]
        if differs:
            log(f"warning: {', '.join(differs)} changed since the checkpoint; the data order will not continue exactly")
    return epoch, done


def warn_changed_training_flags(resume: Optional[dict], opts: TrainConfig, log) -> None:
    """A resumed run that trains differently from its checkpoint says so (e.g. --train_bn forgotten on resume)."""
    saved = (resume or {}).get("hyperparameters")
    if saved is None:
        return
    with_ = {True: "with", False: "without"}
    for flag in ("amp", "train_bn"):
        before, now = bool(saved.get(flag, False)), getattr(opts, flag)
        if before != now:
            log(f"warning: the checkpoint was trained {with_[before]} --{flag}, this run {with_[now]} it")


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
    return progressbar.ProgressBar(  # fd: the current stderr (the default is the one found when progressbar was imported)
        min_value=0, max_value=total, initial_value=start, widgets=widgets, redirect_stdout=True, poll_interval=1, fd=sys.stderr
    )


def hyperparameters(opts: TrainConfig) -> dict[str, Any]:
    return opts.hyperparameters()


# --------------------------------------------------------------------------- main
def load_inputs(opts: TrainConfig) -> tuple[Optional[dict], Optional[ModelConfig], Optional[dict], Optional[ModelConfig]]:
    """Read and check --load_model / --load_network before anything is started."""
    resume = resume_cfg = network_state = network_cfg = None
    for flag in ("load_model", "load_network"):
        path = getattr(opts, flag)
        if path:
            check_checkpoint_path(Path(path), f"--{flag}")
    if opts.load_model:
        resume = read_training_checkpoint(safe_load(opts.load_model, "--load_model"), opts.load_model)
        resume_cfg = checkpoint_config(resume, opts.load_model)
    if opts.load_network:
        network_state, network_cfg = read_network_file(safe_load(opts.load_network, "--load_network"), opts.load_network)
    return resume, resume_cfg, network_state, network_cfg


def run_id(opts: TrainConfig) -> Optional[str]:
    if opts.id.upper() == "NULL":
        return None
    return f"{datetime.datetime.now().strftime('%b%d_%H.%M.%S')}_{opts.id}"


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
    opts = parse_config(argv)
    env = resolve_env(opts)
    log = (lambda msg: print(msg, flush=True)) if env.is_main else (lambda msg: None)
    resume, resume_cfg, network_state, network_cfg = load_inputs(opts)
    config = choose_config(opts, resume, resume_cfg, network_cfg)
    data = stage_data(opts, log)
    check_training_fits(config, opts.batch_size, opts.size, opts.crop_width if opts.stage != 0 else None, env.device, data.dataset,
                        ranks_on_this_node())
    init_distributed(env)
    try:
        return train(opts, env, config, data, resume, network_state, log)
    finally:
        if env.distributed and dist.is_initialized():
            dist.destroy_process_group()


def train(opts: TrainConfig, env: DistEnv, config: ModelConfig, data: StageData, resume, network_state, log) -> int:
    if opts.benchmark:
        torch.backends.cudnn.benchmark = True
    # Tiny gradients (and Adam's squared averages) become denormal floats, which make CPU
    # arithmetic 10-20x slower; flushing them to zero changes nothing measurable.
    torch.set_flush_denormal(True)
    if opts.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.deterministic = True
    workers, threads = training_parallelism(env.device.type, opts.num_workers, opts.threads)
    warn_threads(opts.threads)
    torch.set_num_threads(threads)
    log(f"I am rank {env.rank} in this world of size {env.world_size}, on {env.device} ({threads} threads, {workers} data workers)")

    long_id = broadcast_run_id(run_id(opts), env)
    logger = save_path = None
    if env.is_main:
        logger = TensorboardLogger(opts.id, long_id, LOG_ROOT)
        logger.log_string("hyperpara", str(hyperparameters(opts)))
        logger.log_string("git", git_description())
        logger.log_string("model_config", str(config.to_dict()))
        if long_id is not None:
            save_path = claim_save_folder(Path(SAVE_ROOT) / long_id) / long_id
        else:
            log("warning: --id NULL: TensorBoard logging and saving are disabled")
    try:
        return train_from(opts, env, config, data, resume, network_state, log, logger, save_path)
    except BaseException:
        if save_path is not None:
            remove_if_empty(save_path.parent)  # a run that saved nothing leaves no folder behind
        raise
    finally:
        if logger is not None:
            logger.close()  # its writer thread ends with the run, however it ends (an in-process caller goes on)


@contextlib.contextmanager
def finished_on_error(progress) -> Iterator[None]:
    """Finish ``progress`` when the body fails, so that its redirection of the output ends with it."""
    try:
        yield
    except BaseException:
        if progress is not None:
            progress.finish(dirty=True)
        raise


def remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()  # only an empty folder: this run's, made by claim_save_folder
    except OSError:
        pass


def train_from(opts: TrainConfig, env: DistEnv, config: ModelConfig, data: StageData, resume, network_state, log, logger,
               save_path: Optional[Path]) -> int:
    """:func:`train` once the run's save folder is claimed."""

    seed_everything(opts.seed)  # identical initialisation on every rank
    net = init_network(config, opts, env, resume, network_state, log)
    amp = amp_dtype(env.device) if effective_amp(env.device, opts.amp, opts.force_amp) else None
    if amp is not None:
        log(f"mixed precision: {str(amp).removeprefix('torch.')} autocast" + (" with loss scaling" if amp == torch.float16 else ""))
    channels_last = use_channels_last(opts.memory_format, amp is not None)
    log(f"memory format: {'channels_last' if channels_last else 'contiguous (NCHW)'}")
    trainer = QDMNTrainer(
        net, opts.lr, opts.steps, opts.gamma, env.device, env.world_size, logger, save_path, opts.debug, amp_dtype=amp,
        channels_last=channels_last, train_bn=opts.train_bn, compile=opts.compile,
    )
    if trainer.compile_record is not None:
        log(f"--compile: the first iteration compiles the training step (cache: {trainer.compile_record.cache})")
    if opts.train_bn:
        log("batch norm learns its statistics (--train_bn)")
    start_it = 0
    if resume is not None:
        trainer.load_training_state(resume, opts.load_model)
        start_it = int(resume["it"])
    seed_everything(opts.seed + 100 * env.rank)
    if resume is not None and "rng" in resume and len(resume["rng"]) == env.world_size:
        set_rng_state(resume["rng"][env.rank], env.device)

    sampler = ResumableSampler(data.dataset, env.world_size, env.rank, opts.seed)
    per_epoch = sampler.num_samples // opts.batch_size
    if per_epoch == 0:
        raise UserError(
            f"{len(data.dataset)} training samples give {sampler.num_samples} per process, fewer than the batch size {opts.batch_size}"
        )
    total_epochs = math.ceil(opts.iterations / per_epoch)
    log(f"Number of training epochs (the last epoch might not complete): {total_epochs}")
    epoch, done = resume_position(resume, start_it, per_epoch, opts, env, len(data.dataset), log)
    warn_changed_training_flags(resume, opts, log)
    if start_it >= opts.iterations:
        log(f"nothing to do: the checkpoint is at iteration {start_it} and -i is {opts.iterations}")
        return 0
    if opts.stop_at is not None and opts.stop_at <= start_it:
        raise UserError(f"--stop_at {opts.stop_at} is not after the checkpoint's iteration {start_it}")

    stop = StopFlag()
    progress = make_progress(start_it, opts.iterations) if env.is_main else None
    it, last_saved = start_it, None

    def save() -> None:
        nonlocal last_saved
        state = data_state(*divmod(it, per_epoch), opts, env, len(data.dataset))
        rng = gather_rng_states(env.device, env.world_size)  # collective
        if env.is_main:
            trainer.save(it, trainer.state(it, state, rng, hyperparameters(opts)))
        last_saved = it

    dataset = SeededDataset(data.dataset)
    watch = NonFiniteWatch()
    skip = None
    finished = stopped = False
    with finished_on_error(progress):  # a failure (a full disk at a save) leaves no bar redirecting the output
        while not finished:
            new_skip = data.set_epoch(opts.stage, epoch, total_epochs)
            if opts.stage != 0 and new_skip != skip:
                if opts.stage == 1:
                    log(f"Epoch {epoch}: max_jump {new_skip[0]}")
                else:
                    log(f"Epoch {epoch}: max_jump {new_skip[0]} (YouTube-VOS {new_skip[0] // 5} annotated frames), DAVIS {new_skip[1]}")
                skip = new_skip
            sampler.set_epoch(epoch)
            sampler.set_start(done * opts.batch_size)
            done = 0
            for batch in make_loader(dataset, sampler, opts, env):
                first = time.perf_counter() if trainer.compile_record is not None and it == start_it else None
                outcome = trainer.do_pass(batch, it)
                if first is not None:
                    log(f"--compile: the first iteration took {time.perf_counter() - first:.1f} s (compiling)")
                it += 1
                nonfinite = watch.record(outcome, batch, it, env)
                if nonfinite is not None:
                    raise UserError(nonfinite_stop_message(nonfinite, trainer, last_saved))
                if progress is not None:
                    progress.update(it)
                stopping = stop.agreed(env)
                if it % opts.save_every == 0 or it >= opts.iterations or stopping or it == opts.stop_at:
                    save()
                if stopping or it >= opts.iterations or it == opts.stop_at:
                    finished, stopped = True, stopping
                    break
            epoch += 1
    if progress is not None:
        progress.finish(dirty=stopped)
    if stopped:
        log(f"{stop.signal_name}: stopped at iteration {it}")
    elif opts.stop_at is not None and it == opts.stop_at and it < opts.iterations:
        log(f"--stop_at: stopped at iteration {it}; resume with --load_model")
    if last_saved != it:
        save()
    if env.distributed:
        check_ranks_agree(net, env)
    return 0


if __name__ == "__main__":
    sys.exit(main())
