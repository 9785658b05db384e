"""Command line of train.py: the parser built from :class:`~training.config.TrainConfig`'s flags, and the per-stage defaults;
the one training module that imports argparse."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import fields
from typing import Any, Optional

from training.config import Flag, TrainConfig
from util import arg_types

# stage: (batch size per GPU, iterations, LR decay steps) of the official code (2 GPUs).
STAGE_DEFAULTS: dict[int, tuple[int, int, list[int]]] = {
    0: (14, 160000, [250000]),
    1: (8, 250000, [450000]),
    2: (8, 150000, [70000]),
}


def argument_type(check: Callable[[str], Any]) -> Callable[[str], Any]:
    """A validator of :mod:`util.arg_types` as a ``type=``: its one line becomes the parser's usage error."""
    return arg_types.argparse_type(check, argparse.ArgumentTypeError)


def build_parser() -> argparse.ArgumentParser:
    """train.py's parser: one flag per :class:`TrainConfig` field that declares one, in its group."""
    p = argparse.ArgumentParser(
        description="Train QDMN: stage 0 static images, 1 BL30K, 2 DAVIS + YouTube-VOS. "
        "Launch with torchrun / python -m torch.distributed.launch --nproc_per_node=N for N GPUs, or plain python for one device."
    )
    groups: dict[Optional[str], Any] = {None: p}
    for f in fields(TrainConfig):
        declared: Optional[Flag] = f.metadata.get("flag")
        if declared is None:
            continue
        if declared.group not in groups:
            groups[declared.group] = p.add_argument_group(declared.group)
        options = dict(declared.options)
        if "type" in options:
            options["type"] = argument_type(options["type"])
        names = declared.names or (f"--{f.name}",)
        groups[declared.group].add_argument(*names, dest=f.name, help=argparse.SUPPRESS if declared.hidden else declared.help, **options)
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


def parse_config(argv: Optional[Sequence[str]] = None) -> TrainConfig:
    """The command line, checked, with the stage defaults applied, frozen (``steps`` as a tuple)."""
    args = parse_args(argv)
    values = {f.name: getattr(args, f.name) for f in fields(TrainConfig)}
    return TrainConfig(**{**values, "steps": tuple(values["steps"])})
