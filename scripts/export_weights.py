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

if not __package__:  # `python scripts/NAME.py`: the packages are in the repository root, not in scripts/
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from model.checkpoint import atomic_save, export_payload, safe_load
from util.errors import exit_on_user_error
from util.write_gate import check_target, protect_inputs


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("source", type=Path, metavar="SOURCE", help="weights file or training checkpoint (.pth)")
    parser.add_argument("target", type=Path, metavar="TARGET", help="file to write (.pth)")
    parser.add_argument("--half", action="store_true", help="store float tensors as float16")
    parser.add_argument("--official", action="store_true", help="bare state dict (official layout), for the official scripts")
    parser.add_argument("--force", action="store_true", help="with --official: export a non-ReLU QAM anyway (warned)")
    args = parser.parse_args(argv)
    protect_inputs([args.source])
    check_target(args.target, "TARGET")  # before loading: a file of the user's (or the source) is never replaced
    source = safe_load(args.source, "SOURCE")
    payload, config = export_payload(source, args.source, args.official, args.half, args.force)
    atomic_save(payload, args.target, "TARGET")
    size = args.target.stat().st_size / 2**20
    print(f"wrote {args.target} ({size:.1f} MiB, {config.backbone}, qam {config.qam_activation})")


if __name__ == "__main__":
    main(sys.argv[1:])
