"""Validators of flag values (``type=`` of the argument parsers): a bad value is :class:`InvalidValue`, one line.

Shared by both sides' argument declarations (``evaluation/arguments.py``, ``training/hyper_para.py``) and the entry
scripts. This module does not import argparse: the module that declares the flags owns argparse and adapts a
validator with :func:`argparse_type`, so that the parser prints the line as its usage error (exit 2).
Imports nothing of the project.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Optional, TypeVar

T = TypeVar("T")


class InvalidValue(ValueError):
    """A flag value out of range or of the wrong kind; the message is the whole line."""


def argparse_type(check: Callable[[str], T], error: type[Exception]) -> Callable[[str], T]:
    """``check`` raising ``error`` (argparse.ArgumentTypeError, passed by the declaring module) for an :class:`InvalidValue`."""

    def parse(text: str) -> T:
        try:
            return check(text)
        except InvalidValue as e:
            raise error(str(e)) from None

    parse.__name__ = getattr(check, "__name__", repr(check))  # argparse names the type by it in other errors
    return parse


def _parse(kind: type, text: str) -> float | int:
    try:
        return kind(text)
    except ValueError:
        raise InvalidValue(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None


def int_at_least(low: int) -> Callable[[str], int]:
    """An integer >= ``low``."""

    def check(text: str) -> int:
        value = int(_parse(int, text))
        if value < low:
            raise InvalidValue(f"{value} must be >= {low}")
        return value

    check.__name__ = f"integer >= {low}"
    return check


def finite_float(low: Optional[float] = None, high: Optional[float] = None, low_open: bool = False) -> Callable[[str], float]:
    """A finite float in [low, high] (``low_open``: strictly above ``low``)."""

    def check(text: str) -> float:
        value = float(_parse(float, text))
        if not math.isfinite(value):
            raise InvalidValue(f"{text} must be a finite number")
        if low is not None and (value <= low if low_open else value < low):
            raise InvalidValue(f"{value:g} must be {'>' if low_open else '>='} {low:g}")
        if high is not None and value > high:
            raise InvalidValue(f"{value:g} must be <= {high:g}")
        return value

    check.__name__ = "finite number"
    return check


MIN_SIZE = 16  # the network's output stride: a smaller shorter side leaves no feature map


def size_or_native(text: str) -> int:
    """An inference size: -1 keeps the native size, otherwise at least :data:`MIN_SIZE` pixels."""
    value = int(_parse(int, text))
    if value != -1 and value < MIN_SIZE:
        raise InvalidValue(f"{value} must be -1 (native size) or at least {MIN_SIZE} pixels")
    return value


def is_plain_name(text: str) -> bool:
    """A plain folder name: no path separator, not '.', '..', empty or hidden."""
    return bool(text) and text not in (".", "..") and not any(c in text for c in "/\\\0") and not text.startswith(".")


def plain_name(text: str) -> str:
    """A plain folder name (:func:`is_plain_name`)."""
    if not is_plain_name(text):
        raise InvalidValue(f"{text!r} must be a plain folder name (no '/', not '.' or '..', not starting with '.')")
    return text


positive_int = int_at_least(1)
non_negative_int = int_at_least(0)
positive_float = finite_float(0.0, low_open=True)
