"""A lean, batched ``tolerance``: dm_control's numbers in fewer operations.

dm_control.utils.rewards.tolerance evaluates the sigmoid on every element and
selects with ``np.where``; here the distance outside the bounds is clamped at
zero instead (every sigmoid is 1 at zero distance, so in-bounds values are
exactly 1.0), and the common gaussian case folds its constants into one
coefficient. Results agree with dm_control's to a few ulps
(tests/domains/test_rewards.py) at a fraction of the cost, which matters
because rewards are computed on every step of every env.
"""

from __future__ import annotations

import functools

import numpy as np

_ZERO_ALLOWED = ("cosine", "linear", "quadratic")


@functools.lru_cache(maxsize=None)
def _scale(sigmoid: str, value_at_1: float) -> float:
    """Return the sigmoid's input scale such that sigmoid(1) = value_at_1."""
    low_ok = 0 <= value_at_1 if sigmoid in _ZERO_ALLOWED else 0 < value_at_1
    if not (low_ok and value_at_1 < 1):
        raise ValueError(f"value_at_margin={value_at_1} out of range for sigmoid {sigmoid!r}: "
                         f"allowed {'[0, 1)' if sigmoid in _ZERO_ALLOWED else '(0, 1)'}")
    scales = {
        "gaussian": lambda v: np.sqrt(-2 * np.log(v)),
        "hyperbolic": lambda v: np.arccosh(1 / v),
        "long_tail": lambda v: np.sqrt(1 / v - 1),
        "reciprocal": lambda v: 1 / v - 1,
        "cosine": lambda v: np.arccos(2 * v - 1) / np.pi,
        "linear": lambda v: 1 - v,
        "quadratic": lambda v: np.sqrt(1 - v),
        "tanh_squared": lambda v: np.arctanh(np.sqrt(1 - v)),
    }
    if sigmoid not in scales:
        raise ValueError(f"unknown sigmoid {sigmoid!r}: allowed {sorted(scales)}")
    return scales[sigmoid](value_at_1)


def _sigmoid(x: np.ndarray, scale: float, sigmoid: str) -> np.ndarray:
    """Evaluate a sigmoid at distances x >= 0 (1 at x = 0)."""
    if sigmoid == "gaussian":
        return np.exp(-0.5 * (x * scale) ** 2)
    if sigmoid == "hyperbolic":
        with np.errstate(over="ignore"):  # cosh overflows to inf far out: the value is 0
            return 1 / np.cosh(x * scale)
    if sigmoid == "long_tail":
        return 1 / ((x * scale) ** 2 + 1)
    if sigmoid == "reciprocal":
        return 1 / (abs(x) * scale + 1)
    scaled = x * scale
    if sigmoid == "cosine":
        with np.errstate(invalid="ignore"):
            return np.where(abs(scaled) < 1, (1 + np.cos(np.pi * scaled)) / 2, 0.0)
    # distances are >= 0, so dm_control's where(|s| < 1, f(s), 0) is max(f(s), 0)
    if sigmoid == "linear":
        return np.maximum(1 - scaled, 0.0)
    if sigmoid == "quadratic":
        return np.maximum(1 - scaled ** 2, 0.0)
    return 1 - np.tanh(scaled) ** 2  # tanh_squared


def tolerance(x, bounds=(0.0, 0.0), margin: float = 0.0, sigmoid: str = "gaussian",
              value_at_margin: float = 0.1) -> np.ndarray:
    """Return 1 where x lies in [lower, upper], decaying with distance outside.

    Args:
      x: array of any shape.
      bounds: inclusive (lower, upper); may be infinite.
      margin: distance at which the value is ``value_at_margin``; 0 gives a
        hard 0/1 indicator.
      sigmoid: 'gaussian', 'hyperbolic', 'long_tail', 'reciprocal', 'cosine',
        'linear', 'quadratic' or 'tanh_squared'.
      value_at_margin: the value at distance ``margin``.

    Returns:
      float64 array of x's shape with values in [0, 1].
    """
    lower, upper = bounds
    if lower > upper:
        raise ValueError(f"bounds: lower {lower} must be <= upper {upper}")
    if margin < 0:
        raise ValueError(f"margin must be non-negative, got {margin}")
    x = np.asarray(x, dtype=np.float64)
    if margin == 0:
        return ((lower <= x) & (x <= upper)).astype(np.float64)
    scale = _scale(sigmoid, float(value_at_margin))
    if lower == upper == 0:
        distance = np.abs(x)  # margin folded into the scale below
    else:
        distance = np.maximum(np.maximum(lower - x, x - upper), 0.0)
    if sigmoid == "gaussian":
        return np.exp(np.square(distance) * (-0.5 * (scale / margin) ** 2))
    return _sigmoid(distance, scale / margin, sigmoid)
