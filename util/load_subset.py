"""The DAVIS and YouTube-VOS training videos of stage 2 (the official subset lists)."""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent


def load_subset(path: str | Path) -> set[str]:
    return {line.strip() for line in Path(path).read_text().splitlines() if line.strip()}


def load_sub_davis() -> set[str]:
    return load_subset(HERE / "davis_subset.txt")


def load_sub_yv() -> set[str]:
    return load_subset(HERE / "yv_subset.txt")
