"""Export network weights from a weights file or training checkpoint.

``--half`` stores float tensors in float16 (half the size; they are cast back to
float32 when loaded). ``--official`` writes a bare state dict, as the released QDMN
checkpoint is, loadable by the official code (``eval_davis.py``, ``eval_youtube.py``)::

    python -m scripts.export_weights saves/<run>/<run>_<it>.pth saves/QDMN_mine.pth --official

A bare state dict cannot say which QAM activation it was trained with, and the official
code always applies ReLU; so ``--official`` refuses weights whose QAM ends in a sigmoid
(this project's training default) unless ``--force`` is given, and refuses the ``lite``
backbone (the official network is ResNet-50 only). Weights files written without
``--official`` keep the activation, which this project's loaders read.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from model.config import ModelConfig
from util.checkpoint import TRAINING_KEYS, WEIGHTS_FORMAT, atomic_save, extract_weights, safe_load, trained_frame_size
from util.errors import UserError, exit_on_user_error


def weights_of(obj, path: Path) -> tuple[dict[str, torch.Tensor], ModelConfig]:
    """Weights and configuration of a weights file, or of a training checkpoint's network."""
    if isinstance(obj, dict) and TRAINING_KEYS <= set(obj):
        network = obj["network"]
        if "config" in obj:
            return dict(network), ModelConfig.from_dict(obj["config"])
        obj = network
    return extract_weights(obj, path)


def _training_frame_size(obj) -> dict:
    """``{"train_size": [h, w]}`` from a training checkpoint's hyperparameters (--size, --crop_width)."""
    hyper = obj.get("hyperparameters") if isinstance(obj, dict) else None
    size = hyper.get("size") if isinstance(hyper, dict) else None
    return {"train_size": [size, hyper.get("crop_width") or size]} if isinstance(size, int) else {}


def check_official(config: ModelConfig, force: bool) -> None:
    """Refuse (or, with ``force``, warn loudly about) what the official code cannot carry."""
    if config.backbone != "resnet50":
        raise UserError(f"--official: the {config.backbone} backbone does not fit the official network (ResNet-50 only)")
    if config.qam_activation != "relu":
        message = (
            f"the QAM of these weights ends in a {config.qam_activation}; the official code applies ReLU, so its quality "
            f"scores (and memory admissions) would be wrong. Export without --official for this project's scripts"
        )
        if not force:
            raise UserError(f"--official: {message}, or pass --force")
        print(f"WARNING: {message}; exported anyway (--force)", file=sys.stderr)


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("source", type=Path)
    parser.add_argument("target", type=Path)
    parser.add_argument("--half", action="store_true", help="store float tensors as float16")
    parser.add_argument("--official", action="store_true", help="bare state dict (official layout), for the official scripts")
    parser.add_argument("--force", action="store_true", help="with --official: export a non-ReLU QAM anyway (warned)")
    args = parser.parse_args(argv)
    source = safe_load(args.source)
    state, config = weights_of(source, args.source)
    if args.official:
        check_official(config, args.force)
    state = {k.removeprefix("module."): v for k, v in state.items()}
    if args.half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    payload = state if args.official else {"format": WEIGHTS_FORMAT, "network": state, "config": config.to_dict()}
    train_size = trained_frame_size(source) or trained_frame_size(_training_frame_size(source))
    if train_size is not None and not args.official:
        payload["train_size"] = list(train_size)
    atomic_save(payload, args.target)
    size = args.target.stat().st_size / 2**20
    print(f"wrote {args.target} ({size:.1f} MiB, {config.backbone}, qam {config.qam_activation})")


if __name__ == "__main__":
    main(sys.argv[1:])
