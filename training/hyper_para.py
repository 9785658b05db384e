"""Command line of train.py: the official flags, per-stage defaults, and this project's additions."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Optional

from model.config import PRESETS, QAM_ACTIVATIONS
from model.model import MEMORY_FORMATS
from util import arg_types

# stage: (batch size per GPU, iterations, LR decay steps) of the official code (2 GPUs).
STAGE_DEFAULTS: dict[int, tuple[int, int, list[int]]] = {
    0: (14, 160000, [250000]),
    1: (8, 250000, [450000]),
    2: (8, 150000, [70000]),
}
DEFAULT_SEED = 14159265
DEFAULT_SAVE_EVERY = 50000


def argument_type(check):
    return arg_types.argparse_type(check, argparse.ArgumentTypeError)


positive_int = argument_type(arg_types.positive_int)
non_negative_int = argument_type(arg_types.non_negative_int)
positive_float = argument_type(arg_types.positive_float)
plain_name = argument_type(arg_types.plain_name)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description="Train QDMN: stage 0 static images, 1 BL30K, 2 DAVIS + YouTube-VOS. "
        "Launch with torchrun / python -m torch.distributed.launch --nproc_per_node=N for N GPUs, or plain python for one device."
    )
    p.add_argument("--benchmark", action="store_true", help="enable cudnn.benchmark (faster on fixed input sizes)")
    p.add_argument("--deterministic", action="store_true", help="use deterministic algorithms only (slower on GPU)")

    data = p.add_argument_group("data")
    data.add_argument(
        "--static_root", default="data/static", help="static image sets (fss, DUTS-TR, DUTS-TE, ecssd, BIG_small, HRSOD_small)"
    )
    data.add_argument("--bl_root", default="data/BL30K", help="BL30K root with JPEGImages/ and Annotations/")
    data.add_argument("--yv_root", default="data/YouTube", help="YouTube-VOS root (uses train_480p/, else train/)")
    data.add_argument("--davis_root", default="data/DAVIS", help="DAVIS root (uses 2017/trainval/)")
    data.add_argument("--no_subset", action="store_true", help="stage 2: train on every video found, not only the official subset lists")
    data.add_argument("--size", type=int, default=384, help="training crop size in pixels (a multiple of 16)")
    data.add_argument(
        "--crop_width",
        type=int,
        default=None,
        help="stages 1/2: crops of --size x this width (a multiple of 16) instead of square, e.g. to match the evaluation frames' shape",
    )
    data.add_argument("--num_workers", type=non_negative_int, default=None,
                      help="data-loader processes per rank (default: CUDA min(8, CPUs per rank); CPU a quarter of them, 0 below 4)")
    data.add_argument("--threads", type=positive_int, default=None,
                      help="intra-op CPU threads per rank (default: CUDA min(4, CPUs per rank); CPU the CPUs per rank not used by workers)")

    train = p.add_argument_group("training")
    train.add_argument("--stage", type=int, default=0, choices=(0, 1, 2), help="0 static images, 1 BL30K, 2 DAVIS + YouTube-VOS")
    train.add_argument("-b", "--batch_size", type=positive_int, default=None, help="batch size per GPU (default per stage: 14 / 8 / 8)")
    train.add_argument("-i", "--iterations", type=positive_int, default=None,
                       help="iterations (default per stage: 160000 / 250000 / 150000)")
    train.add_argument(
        "--steps", type=positive_int, nargs="*", default=None, help="LR decay iterations (default per stage: 250000 / 450000 / 70000)"
    )
    train.add_argument("--lr", type=positive_float, default=2e-5, help="initial learning rate")
    train.add_argument("--gamma", type=positive_float, default=0.1, help="LR := LR * gamma at every decay step")
    train.add_argument("--seed", type=non_negative_int, default=DEFAULT_SEED,
                       help="seed of the data order, augmentation and initialisation")
    train.add_argument("--amp", action="store_true",
                       help="mixed precision: float16 + loss scaling on CUDA; bfloat16 on a CPU with native bfloat16 (else float32)")
    train.add_argument("--force_amp", action="store_true", help="with --amp: bfloat16 even on a CPU without native bfloat16 (slow)")
    train.add_argument("--memory_format", choices=MEMORY_FORMATS, default="auto",
                       help="layout of the network's tensors: channels_last (NHWC) or contiguous (NCHW, the official code's); "
                       "auto: channels_last with --amp, where it was measured 1.45-1.76x faster (docs/TRAINING.md), else contiguous")
    train.add_argument("--train_bn", action="store_true",
                       help="batch norm learns its statistics (batch statistics in training, running averages saved) instead of "
                       "keeping them frozen as the official code does; for training from random weights, whose frozen statistics "
                       "are mean 0 and variance 1, i.e. no normalisation (README, deviations)")
    train.add_argument("--device", default="auto", help="auto (cuda:LOCAL_RANK when CUDA is available, else cpu), cpu, cuda or cuda:N")

    model = p.add_argument_group("model")
    model.add_argument(
        "--model_config", choices=sorted(PRESETS), default=None, help="architecture (default: that of the loaded weights, else official)"
    )
    model.add_argument(
        "--qam_activation",
        choices=QAM_ACTIVATIONS,
        default=None,
        help="QAM output activation (default: that of the loaded weights, else sigmoid; the released model uses relu)",
    )
    model.add_argument(
        "--imagenet_weights", default=None, help="torchvision ResNet weights file (default: the torch hub cache; never downloads)"
    )
    model.add_argument(
        "--mirror_init",
        action="store_true",
        help="from scratch: start the memory side (mask encoder, kv_m_f16) as a copy of the query side",
    )

    load = p.add_argument_group("loading")
    load.add_argument("--load_network", help="start from these network weights only (a stage-0 network loads into stages 1/2)")
    load.add_argument("--load_model", help="resume exactly from a training checkpoint <id>_checkpoint.pth")

    log = p.add_argument_group("logging and saving")
    log.add_argument("--id", type=plain_name, default="NULL", help="experiment id; NULL disables TensorBoard logging and saving")
    log.add_argument("--debug", action="store_true", help="log every iteration")
    log.add_argument(
        "--save_every", type=positive_int, default=DEFAULT_SAVE_EVERY,
        help="write weights and a checkpoint every N iterations (and at the end)"
    )
    log.add_argument(
        "--stop_at", type=positive_int, default=None,
        help="save and exit after this iteration, keeping the schedule of -i (for time-limited jobs)"
    )

    # set by torch.distributed.launch: --local-rank (PyTorch >= 2.0) or --local_rank (older)
    p.add_argument("--local_rank", "--local-rank", dest="local_rank", type=int, default=None, help=argparse.SUPPRESS)
    return p


def apply_stage_defaults(args: argparse.Namespace) -> argparse.Namespace:
    batch, iterations, steps = STAGE_DEFAULTS[args.stage]
    args.batch_size = batch if args.batch_size is None else args.batch_size
    args.iterations = iterations if args.iterations is None else args.iterations
    args.steps = list(steps) if args.steps is None else args.steps
    args.single_object = args.stage == 0
    return args


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = build_parser()
    args = apply_stage_defaults(parser.parse_args(argv))
    problems = []
    if args.batch_size < 1:
        problems.append("-b must be >= 1")
    if args.iterations < 1:
        problems.append("-i must be >= 1")
    for flag, value in (("--size", args.size), ("--crop_width", args.crop_width)):
        if value is not None and (value < 16 or value % 16):
            problems.append(f"{flag} must be a positive multiple of 16")
    if args.mirror_init and (args.load_network or args.load_model):
        problems.append("--mirror_init initialises a network from scratch; drop it with --load_network or --load_model")
    if args.crop_width is not None and args.stage == 0:
        problems.append("--crop_width applies to the video stages 1 and 2; stage 0 crops static images square")
    if args.save_every < 1:
        problems.append("--save_every must be >= 1")
    if args.seed < 0:
        problems.append("--seed must be >= 0")
    if args.load_model and args.load_network:
        problems.append("--load_model resumes a run; do not combine it with --load_network")
    if problems:
        parser.error("; ".join(problems))
    return args
