"""The evaluation scripts' shared flags: the one evaluation module that declares arguments (imports argparse)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import fields
from typing import Any, Optional, TypeVar

from evaluation.config import EvalConfig
from evaluation.distributed import MERGE
from model.config import QAM_ACTIVATIONS
from model.memory_policy import POLICIES, QUALITY_BASES, QUALITY_MEANS, ZERO_BASE_CHOICES, MemoryConfig
from model.network import DEFAULT_TOP_K
from util import arg_types
from util.image_io import DEFAULT_MAX_PIXELS

T = TypeVar("T")


def argument_type(check: Callable[[str], T]) -> Callable[[str], T]:
    """A validator of :mod:`util.arg_types` as a ``type=``: its one line becomes the parser's usage error."""
    return arg_types.argparse_type(check, argparse.ArgumentTypeError)


# the validators as ``type=`` for the entry scripts' own flags
positive_int = argument_type(arg_types.positive_int)
non_negative_int = argument_type(arg_types.non_negative_int)
positive_float = argument_type(arg_types.positive_float)
size_or_native = argument_type(arg_types.size_or_native)
plain_name = argument_type(arg_types.plain_name)
finite_float = argument_type(arg_types.finite_float())


def add_eval_args(
    parser: argparse.ArgumentParser,
    memory: MemoryConfig,
    default_model: str = "saves/QDMN.pth",
    default_output: Optional[str] = None,
    distributed: bool = True,
) -> None:
    """Flags every evaluation script shares (the official ones plus this project's); ``distributed``: ``--shard`` too."""
    parser.add_argument("--model", default=default_model, help="network weights (.pth)")
    parser.add_argument("--output", required=default_output is None, default=default_output, help="folder for the output masks")
    parser.add_argument("--device", default=None, help="cuda, cuda:1, cpu... (default: cuda when available)")
    parser.add_argument("--use_km", action="store_true", help="kernelised memory read (KMN Gaussian, sigma 5.6)")
    parser.add_argument("--no_top", action="store_true", help="full softmax instead of top-k")
    parser.add_argument("--top_k", type=positive_int, default=DEFAULT_TOP_K, help="affinities kept per query position")
    parser.add_argument("--mem_freq", type=positive_int, default=memory.mem_freq, help="minimum gap between admitted frames")
    parser.add_argument("--threshold", type=finite_float, default=memory.threshold, help="normalised quality needed for admission")
    parser.add_argument("--capacity", type=non_negative_int, default=memory.capacity, help="eviction starts above this many entries")
    parser.add_argument("--zero_base", choices=ZERO_BASE_CHOICES, default=memory.zero_base,
                        help="what to do when the base frame's QAM scores are all zero")
    parser.add_argument("--quality_mean", choices=QUALITY_MEANS, default=memory.quality_mean,
                        help="a frame's quality: the mean QAM score of all objects or of the non-zero ones")
    parser.add_argument("--quality_base", choices=QUALITY_BASES, default=memory.quality_base,
                        help="the quality is relative to the annotated or to the first propagated frame's")
    parser.add_argument("--qam_activation", choices=QAM_ACTIVATIONS, default=None,
                        help="override the QAM activation of a bare state dict (default: relu, as released)")
    parser.add_argument("--overwrite", action="store_true", help="redo videos whose output folder is already complete")
    parser.add_argument("--amp", action="store_true", help="mixed precision: float16 on CUDA, bfloat16 on a CPU with native bfloat16")
    parser.add_argument("--force_amp", action="store_true", help="with --amp: bfloat16 even on a CPU without native bfloat16 (slow)")
    parser.add_argument("--threads", type=positive_int, default=None, help="CPU threads (default: the CPUs this process may use)")
    parser.add_argument("--official_kernels", action="store_true", help="the official arithmetic (NCHW, dense top-k readout): slower")
    parser.add_argument("--compile", action="store_true", help="torch.compile the encoders, ASPP, decoder and QAM (cached on disk)")
    parser.add_argument("--stats_json", default=None, help="also write the run's summary as JSON to this file")
    parser.add_argument("--memory_policy", choices=POLICIES, default="qdmn",
                        help="qdmn (the paper); every / fifo / first_prev: baselines for comparison")
    parser.add_argument("--max_pixels", type=positive_int, default=DEFAULT_MAX_PIXELS,
                        help="largest frame or annotation in pixels (width x height), checked from file headers")
    if distributed:
        add_distributed_args(parser)
    parser.set_defaults(distributed=distributed, **({} if distributed else {"shard": None}))


SCRIPT_FIELDS = ("zip", "ground_truth")  # set by the script itself (eval_config's ``script``), not by add_eval_args


def eval_config(args: argparse.Namespace, **script: Any) -> EvalConfig:
    """The flags :func:`add_eval_args` declared, frozen, with what the script sets itself (``zip``, ``ground_truth``, or a
    flag it fixes, as the demo's ``overwrite``)."""
    values = {f.name: getattr(args, f.name) for f in fields(EvalConfig) if f.name not in SCRIPT_FIELDS}
    return EvalConfig(**{**values, **script})


def shard_arg(text: str) -> str:
    """``--shard``: ``I/N`` (0 <= I < N) or ``merge``."""
    if text == MERGE:
        return text
    index, _, count = text.partition("/")
    if not (index.isdigit() and count.isdigit() and 0 <= int(index) < int(count)):
        raise argparse.ArgumentTypeError(f"{text!r}: use I/N with 0 <= I < N (e.g. 0/4), or 'merge'")
    return f"{int(index)}/{int(count)}"


def add_distributed_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--shard",
        type=shard_arg,
        default=None,
        help="I/N: the I-th of N shares of the videos (array jobs), or 'merge'",
    )
