"""Checking numbers that come from people: finite, whole where they must be, and within a range.

A web form or an API client can send 1e300, NaN, 2**70, "12" or a list where a count is expected; each
must become one clear line naming the setting, never an OverflowError deep inside training.
"""

from __future__ import annotations

import math
from typing import Any, Optional

from .errors import Pix2PixError

SEED_MAX = 2 ** 32 - 1  # torch and numpy both take seeds of this size


def _number(name: str, value: Any) -> float | int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Pix2PixError(f"{name} must be a number, got {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise Pix2PixError(f"{name} must be a finite number, got {value}")
    return value


def bounded_int(name: str, value: Any, low: int, high: Optional[int] = None) -> int:
    """`value` as an int in [low, high] (high None: no upper bound); whole floats (3.0, as JSON clients send) are
    accepted."""
    value = _number(name, value)
    bounds = f"between {low:,} and {high:,}" if high is not None else f"at least {low:,}"
    outside = value < low or (high is not None and value > high)  # a float compared before int(): int(1e300) is long
    if isinstance(value, float):
        if not value.is_integer():
            raise Pix2PixError(f"{name} must be a whole number, got {value}")
        if outside:
            raise Pix2PixError(f"{name} must be {bounds}, got {value:.6g}")
        value = int(value)
    if outside:
        shown = f"{value:,}" if abs(value) < 10 ** 15 else f"about 10^{len(str(abs(value))) - 1}"
        raise Pix2PixError(f"{name} must be {bounds}, got {shown}")
    return value


def bounded_float(name: str, value: Any, low: float, high: float, low_open: bool = False) -> float:
    """`value` as a finite float in [low, high] (or (low, high] with `low_open`)."""
    value = float(_number(name, value)) if not isinstance(value, int) or abs(value) < 10 ** 300 else math.inf
    if not math.isfinite(value) or value > high or value < low or (low_open and value == low):
        bracket = "(" if low_open else "["
        raise Pix2PixError(f"{name} must be in {bracket}{low:g}, {high:g}], got {value:.6g}")
    return value


def seed_value(value: Any, name: str = "seed") -> int:
    """A random seed from a form or an API call: empty means 0."""
    return 0 if value is None or value == "" else bounded_int(name, value, 0, SEED_MAX)
