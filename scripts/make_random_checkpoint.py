"""Write a seeded, randomly initialised QDMN checkpoint (for tests and smoke runs).

Its masks are meaningless: it only exercises the pipeline. ``--official`` writes a bare
state dict in the released checkpoint's layout (as the official code would load it).

``--qam_bias`` sets the QAM's last bias (``score.fc2.bias``); with a ReLU QAM a negative
bias makes the scores of some object-frames exactly 0, as the released checkpoint's
scores are for lost objects. ``--qam_zero_share P --calibrate_davis ROOT`` chooses that
bias so that about a share P of the object-frames memorised while evaluating the DAVIS
2017 val videos under ROOT score 0 (measured with this project's engine, printed).
A random network's scores hardly depend on the mask, so all objects of a frame score 0
together. ``--image_gain 0`` zeroes the image input weights of the memory encoder's
``conv1`` (``--mask_gain`` scales its object-mask weights), so that an object's memory
features, and so its score, depend only on its own mask and the other objects' masks:
then frames where some objects score 0 and others do not become common.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional

import torch

if not __package__:  # `python scripts/NAME.py`: the packages are in the repository root, not in scripts/
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from model.checkpoint import atomic_save, weights_payload
from model.config import PRESETS, QAM_ACTIVATIONS
from model.network import QDMN, random_network
from util.errors import UserError, exit_on_user_error


def fc2_outputs(network: QDMN, davis_root: Path) -> list[float]:
    """QAM pre-activations (``score.fc2`` outputs) of every object-frame memorised while
    evaluating the DAVIS 2017 val videos under ``davis_root`` (CPU, official arithmetic)."""
    from datasets.davis_test_dataset import davis_sequences
    from evaluation.propagation import propagate
    from model.memory_policy import DAVIS_MEMORY

    outputs: list[float] = []
    hook = network.score.fc2.register_forward_hook(lambda _m, _i, out: outputs.extend(out.flatten().tolist()))
    try:
        network.eval()
        for video in davis_sequences(davis_root / "trainval", "2017/val.txt"):
            for _ in propagate(network, DAVIS_MEMORY, video, torch.device("cpu")):
                pass
    finally:
        hook.remove()
    return outputs


def calibrate_qam_bias(network: QDMN, davis_root: Path, share: float) -> tuple[float, float]:
    """Set ``score.fc2.bias`` so that about ``share`` of the object-frames score exactly 0 under a
    ReLU QAM; returns (bias, share measured in a second run with that bias)."""
    with torch.no_grad():
        network.score.fc2.bias.zero_()
        z = torch.tensor(fc2_outputs(network, davis_root))
        bias = -float(torch.quantile(z, share)) if share > 0 else 0.0
        network.score.fc2.bias.fill_(bias)
        measured = torch.tensor(fc2_outputs(network, davis_root))
    return bias, float((measured <= 0).float().mean())


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--config", choices=sorted(PRESETS), default="official")
    parser.add_argument("--qam_activation", choices=QAM_ACTIVATIONS, default=None)
    parser.add_argument("--official", action="store_true", help="bare state dict, as the released checkpoint")
    parser.add_argument("--mask_gain", type=float, default=1.0, help="scale the object-mask channel of mask_rgb_encoder.conv1")
    parser.add_argument("--image_gain", type=float, default=1.0, help="scale the image channels of mask_rgb_encoder.conv1")
    parser.add_argument("--pred_gain", type=float, default=1.0, help="scale decoder.pred (large: near-binary masks, objects can vanish)")
    parser.add_argument("--pred_shift", type=float, default=0.0, help="add to decoder.pred.bias before --pred_gain (larger objects)")
    parser.add_argument("--value_gain", type=float, default=1.0, help="scale kv_m_f16.val_proj (memory readout vs query value)")
    parser.add_argument("--qam_gain", type=float, default=1.0, help="scale score.fc2.weight (negative: reverse the score order)")
    parser.add_argument("--qam_bias", type=float, default=None, help="set score.fc2.bias (ReLU QAM: negative gives zero scores)")
    parser.add_argument("--qam_zero_share", type=float, default=None, help="choose the bias so that this share of object-frames scores 0")
    parser.add_argument("--calibrate_davis", type=Path, default=None, help="DAVIS 2017 root whose val videos calibrate --qam_zero_share")
    args = parser.parse_args(argv)
    if (args.qam_zero_share is None) != (args.calibrate_davis is None):
        raise UserError("--qam_zero_share and --calibrate_davis go together")
    if args.qam_zero_share is not None and not 0 <= args.qam_zero_share < 1:
        raise UserError(f"--qam_zero_share must be in [0, 1), not {args.qam_zero_share}")
    if args.qam_zero_share is not None and args.qam_bias is not None:
        raise UserError("--qam_bias and --qam_zero_share are exclusive")
    out = Path(args.out)
    if out.is_dir():
        raise UserError(f"{out}: is a folder; --out takes a file name such as saves/random.pth")
    network = random_network(args.config, args.seed, args.qam_activation)
    with torch.no_grad():
        network.mask_rgb_encoder.conv1.weight[:, 3] *= args.mask_gain  # channels: image (3), object mask, others
        network.mask_rgb_encoder.conv1.weight[:, :3] *= args.image_gain
        network.decoder.pred.weight *= args.pred_gain
        network.decoder.pred.bias.add_(args.pred_shift).mul_(args.pred_gain)
        network.score.fc2.weight *= args.qam_gain
        network.kv_m_f16.val_proj.weight *= args.value_gain
        network.kv_m_f16.val_proj.bias *= args.value_gain
    set_qam_bias(network, args.qam_bias, args.qam_zero_share, args.calibrate_davis)
    payload = network.state_dict() if args.official else weights_payload(network, network.config)
    atomic_save(payload, out)
    bias = float(network.score.fc2.bias.detach())
    print(f"wrote {out} ({args.config}, seed {args.seed}, qam {network.config.qam_activation}, score.fc2.bias {bias:.6g})")


def set_qam_bias(network: QDMN, bias: Optional[float], zero_share: Optional[float], davis: Optional[Path]) -> None:
    """Apply ``--qam_bias`` or the ``--qam_zero_share`` calibration (nothing when neither is given)."""
    if bias is not None:
        with torch.no_grad():
            network.score.fc2.bias.fill_(bias)
    elif zero_share is not None and davis is not None:
        if network.config.qam_activation != "relu":
            raise UserError("--qam_zero_share needs a ReLU QAM (a sigmoid never gives exactly 0)")
        if not (davis / "trainval" / "ImageSets" / "2017" / "val.txt").is_file():
            raise UserError(f"--calibrate_davis {davis}: no trainval/ImageSets/2017/val.txt; pass a DAVIS 2017 root")
        chosen, measured = calibrate_qam_bias(network, davis, zero_share)
        print(f"calibrated score.fc2.bias {chosen:.6g}: {100 * measured:.1f}% of object-frames score 0 (asked {100 * zero_share:.1f}%)")


if __name__ == "__main__":
    main(sys.argv[1:])
