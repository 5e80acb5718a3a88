"""Checks of user input at the adapters: actions."""

from __future__ import annotations

import math

import numpy as np


def check_actions(actions, num_envs: int, low: np.ndarray, high: np.ndarray,
                  batched: bool) -> np.ndarray:
    """Return actions as a (num_envs, nu) float64 array clipped to [low, high].

    Raises ValueError naming the expected shape, or the offending entries when
    an action holds NaN or infinite values; nothing is changed on error.
    """
    nu = low.shape[0]
    expected = (num_envs, nu) if batched else (nu,)
    if type(actions) is np.ndarray and actions.dtype == np.float64:
        arr = actions  # the common case: no conversion
    else:
        try:
            arr = np.asarray(actions, dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise ValueError(f"action must be numeric with shape {expected}: {err}") from None
    if arr.shape != expected:
        raise ValueError(f"action has shape {arr.shape}, expected {expected} "
                         f"(bounds low={low.tolist()}, high={high.tolist()})")
    # One reduction tells whether every entry is finite (a sum of finite values
    # can only overflow, which the exact check below then clears).
    if not math.isfinite(arr.sum()) and not np.isfinite(arr).all():
        bad = np.argwhere(~np.isfinite(arr)).tolist()
        raise ValueError(f"action contains NaN or infinite values at {bad}; "
                         f"allowed range [{low.min()}, {high.max()}]")
    return np.minimum(np.maximum(arr.reshape(num_envs, nu), low), high)
