"""Checks of user input at the adapters: actions and seeds."""

from __future__ import annotations

import numpy as np


def check_actions(actions, num_envs: int, low: np.ndarray, high: np.ndarray,
                  batched: bool) -> np.ndarray:
    """Return actions as a (num_envs, nu) float64 array clipped to [low, high].

    Raises ValueError naming the expected shape, or the offending entries when
    an action holds NaN or infinite values; nothing is changed on error.
    """
    nu = low.shape[0]
    expected = (num_envs, nu) if batched else (nu,)
    try:
        arr = np.asarray(actions, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"action must be numeric with shape {expected}: {err}") from None
    if arr.shape != expected:
        raise ValueError(f"action has shape {arr.shape}, expected {expected} "
                         f"(bounds low={low.tolist()}, high={high.tolist()})")
    if not np.isfinite(arr).all():
        bad = np.argwhere(~np.isfinite(arr)).tolist()
        raise ValueError(f"action contains NaN or infinite values at {bad}; "
                         f"allowed range [{low.min()}, {high.max()}]")
    return np.clip(arr.reshape(num_envs, nu), low, high)
