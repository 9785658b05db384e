"""Pixel agreement between two folders of label PNGs (one subfolder per sequence)."""

from __future__ import annotations

from pathlib import Path

from util.errors import UserError
from util.image_io import load_mask


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
