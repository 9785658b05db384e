"""Export network weights from a weights file or training checkpoint.

``--half`` stores float tensors in float16 (half the size; they are cast back to
float32 when loaded). ``--official`` writes a bare state dict, as the released QDMN
checkpoint is, loadable by the official code (the configuration is then inferred from
the shapes, the QAM activation is not stored).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from model.config import ModelConfig  # noqa: E402
from util.checkpoint import TRAINING_KEYS, WEIGHTS_FORMAT, atomic_save, extract_weights, safe_load, trained_frame_size  # noqa: E402
from util.errors import exit_on_user_error  # noqa: E402


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


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("source", type=Path)
    parser.add_argument("target", type=Path)
    parser.add_argument("--half", action="store_true", help="store float tensors as float16")
    parser.add_argument("--official", action="store_true", help="bare state dict (official layout)")
    args = parser.parse_args(argv)
    source = safe_load(args.source)
    state, config = weights_of(source, args.source)
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
