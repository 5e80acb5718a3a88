"""Checks of user input at the adapters: actions.

An action is accepted as an array of real numbers: floats of any width and
integers (signed or unsigned), in any array-like a numpy array can be made
from (a list, a float, a JAX or torch array). Rejected with a ValueError,
before anything in the env moves:

* non-real dtypes: strings (even ``"0.5"``), bytes, complex numbers (their
  imaginary part would be dropped silently), objects (``None``, ``Decimal``,
  mixed lists), datetimes;
* bools: an actuator command is a magnitude, and True/False (a mask passed by
  mistake) would be read as 1/0 without notice;
* a wrong shape, and NaN or infinite entries.
"""

from __future__ import annotations

import math

import numpy as np

#: dtype kinds accepted as actions: float, signed and unsigned integers.
_REAL_KINDS = "fiu"


def check_actions(actions, num_envs: int, low: np.ndarray, high: np.ndarray,
                  batched: bool) -> np.ndarray:
    """Return actions as a (num_envs, nu) float64 array clipped to [low, high].

    Raises ValueError naming the expected shape and dtype, the shape or dtype
    given, or the offending entries when an action holds NaN or infinite
    values; nothing is changed on error.
    """
    nu = low.shape[0]
    expected = (num_envs, nu) if batched else (nu,)
    if type(actions) is np.ndarray and actions.dtype == np.float64:
        arr = actions  # the common case: no conversion
    else:
        arr = _real_array(actions, expected)
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


def _real_array(actions, expected: tuple[int, ...]) -> np.ndarray:
    """Return ``actions`` as a float64 array, or raise if it does not hold real numbers."""
    want = f"action must be numeric (a float or int dtype, not bool) with shape {expected}"
    try:
        arr = np.asarray(actions)
    except (TypeError, ValueError, OverflowError) as err:  # ragged lists, odd objects
        raise ValueError(f"{want}: {err}") from None
    if arr.dtype.kind not in _REAL_KINDS:
        raise ValueError(f"{want}: got dtype {arr.dtype}, shape {arr.shape}")
    return arr.astype(np.float64, copy=False)
