"""Checks of values a user gives (a config field, a command-line option), written once.

Each raises a one-line ``ValueError`` naming the field, its value and what is allowed.

Example:
  >>> count("frames", 10)
  10
  >>> count("seeds", 0)
  Traceback (most recent call last):
  ...
  ValueError: seeds = 0 is not allowed: an integer >= 1
"""

from __future__ import annotations

from typing import Any

import numpy as np


def count(name: str, value: Any, low: int = 1, high: int | None = None) -> int:
    """Return ``value`` as an int if it is an integer (not a bool) in [low, high]; else a ValueError."""
    if (isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low
            or (high is not None and value > high)):
        bound = f"in [{low}, {high}]" if high is not None else f">= {low}"
        raise ValueError(f"{name} = {value!r} is not allowed: an integer {bound}")
    return int(value)


__all__ = ["count"]
