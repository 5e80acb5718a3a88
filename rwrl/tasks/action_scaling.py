"""Agents act in [-1, 1]; tasks take actions within their bounds: the map, written once.

The affine map sends -1 to ``low`` and 1 to ``high`` per action dimension. Every
suite task's bounds are [-1, 1] already, where the map is the identity (and
``unit_mapper`` returns the actions unchanged, not a copy).

Example:
  >>> import numpy as np
  >>> low, high = np.array([0.0, -2.0]), np.array([1.0, 2.0])
  >>> from_unit(np.array([[-1.0, 0.5]]), low, high)
  array([[0., 1.]])
  >>> to_unit(np.array([[0.0, 1.0]]), low, high)
  array([[-1. ,  0.5]])
  >>> half_range(low, high)
  array([0.5, 2. ])
"""

from __future__ import annotations

from typing import Callable

import numpy as np


def from_unit(actions: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Return (B, A) actions in [-1, 1] mapped onto [low, high] (each (A,))."""
    return low + (actions + 1.0) * half_range(low, high)


def to_unit(actions: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Return (B, A) actions in [low, high] mapped onto [-1, 1]: the inverse of :func:`from_unit`."""
    return (actions - low) / half_range(low, high) - 1.0


def half_range(low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Return (high - low) / 2: one unit of the [-1, 1] scale in action units."""
    return 0.5 * (high - low)


def is_unit_box(low: np.ndarray, high: np.ndarray) -> bool:
    """Return whether the bounds are [-1, 1] in every dimension."""
    return bool(np.all(np.asarray(low) == -1) and np.all(np.asarray(high) == 1))


def unit_mapper(low: np.ndarray, high: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """Return the map of [-1, 1] actions onto [low, high] (the identity on unit bounds)."""
    low, high = np.asarray(low), np.asarray(high)
    if is_unit_box(low, high):
        return lambda actions: actions
    return lambda actions: from_unit(actions, low, high)
