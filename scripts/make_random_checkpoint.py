"""Write a seeded, randomly initialised QDMN checkpoint (for tests and smoke runs).

Its masks are meaningless: it only exercises the pipeline. ``--official`` writes a bare
state dict in the released checkpoint's layout (as the official code would load it).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from model.config import PRESETS, QAM_ACTIVATIONS  # noqa: E402
from model.network import QDMN  # noqa: E402
from util.checkpoint import atomic_save, weights_payload  # noqa: E402
from util.errors import UserError, exit_on_user_error  # noqa: E402


def random_network(config_name: str = "official", seed: int = 0, qam_activation: str | None = None) -> QDMN:
    """A QDMN with deterministic random weights and non-trivial batch-norm statistics."""
    config = PRESETS[config_name]
    if qam_activation:
        config = config.with_(qam_activation=qam_activation)
    torch.manual_seed(seed)
    network = QDMN(config)
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, buf in network.named_buffers():
            if name.endswith("running_mean"):
                buf.copy_(torch.randn(buf.shape, generator=generator) * 0.1)
            elif name.endswith("running_var"):
                buf.copy_(1 + torch.rand(buf.shape, generator=generator))
    return network


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--config", choices=sorted(PRESETS), default="official")
    parser.add_argument("--qam_activation", choices=QAM_ACTIVATIONS, default=None)
    parser.add_argument("--official", action="store_true", help="bare state dict, as the released checkpoint")
    args = parser.parse_args(argv)
    out = Path(args.out)
    if out.is_dir():
        raise UserError(f"{out}: is a folder; --out takes a file name such as saves/random.pth")
    network = random_network(args.config, args.seed, args.qam_activation)
    payload = network.state_dict() if args.official else weights_payload(network, network.config)
    atomic_save(payload, out)
    print(f"wrote {out} ({args.config}, seed {args.seed}, qam {network.config.qam_activation})")


if __name__ == "__main__":
    main(sys.argv[1:])
