"""Pixel agreement between two folders of label PNGs (one subfolder per sequence).

    python -m scripts.compare_masks A B [--json OUT]

Every PNG of A must exist in B with the same size and the other way round; the answer
is the share of pixels with the same label, per sequence and over all.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if not __package__:  # `python scripts/NAME.py`: the packages are in the repository root, not in scripts/
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from util import write_gate
from util.agreement import mask_agreement
from util.errors import exit_on_user_error


@exit_on_user_error
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("a", type=Path)
    p.add_argument("b", type=Path)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    result = mask_agreement(args.a, args.b)
    for seq, value in result["sequences"].items():
        print(f"{seq}: {100 * value:.4f} %")
    print(f"all: {100 * result['agreement']:.4f} % of {result['pixels']} pixels ({result['differing_pixels']} differ)")
    if args.json:
        write_gate.write_json(args.json, result, "--json", inputs=[args.a, args.b])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
