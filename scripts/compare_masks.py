"""Pixel agreement between two folders of label PNGs (one subfolder per sequence).

    python scripts/compare_masks.py A B [--json OUT]

Every PNG of A must exist in B with the same size and the other way round; the answer
is the share of pixels with the same label, per sequence and over all.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


from util.errors import UserError, exit_on_user_error  # noqa: E402
from util.image_io import load_mask  # noqa: E402


def _pngs(root: Path) -> set[str]:
    if not root.is_dir():
        raise UserError(f"{root}: folder not found")
    return {str(p.relative_to(root)) for p in root.glob("*/*.png") if not p.parent.name.startswith(".")}


def mask_agreement(a: Path, b: Path) -> dict:
    """``{"agreement": float, "pixels": int, "sequences": {name: agreement}}``."""
    names_a, names_b = _pngs(a), _pngs(b)
    if not names_a:
        raise UserError(f"{a}: no <sequence>/*.png masks")
    if names_a != names_b:
        only = sorted(names_a ^ names_b)[:3]
        raise UserError(f"{a} and {b} hold different masks (e.g. {only}); compare complete runs")
    same: dict[str, int] = {}
    total: dict[str, int] = {}
    for name in sorted(names_a):
        x, y = load_mask(a / name), load_mask(b / name)
        if x.shape != y.shape:
            raise UserError(f"{b / name}: size {y.shape} differs from {a / name} {x.shape}")
        seq = name.split("/")[0]
        same[seq] = same.get(seq, 0) + int((x == y).sum())
        total[seq] = total.get(seq, 0) + x.size
    pixels = sum(total.values())
    return {
        "agreement": sum(same.values()) / pixels,
        "pixels": pixels,
        "differing_pixels": pixels - sum(same.values()),
        "sequences": {s: same[s] / total[s] for s in total},
    }


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
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
