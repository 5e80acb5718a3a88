"""The checks every spec parser shares: keys, bools, bounded numbers, choices.

The spec dictionaries are those of the published suite (Dulac-Arnold et al.
2020, ``realworldrl_suite/environments/realworld_env.py``), plus rwrl's own.
Each challenge parses its own (``parse`` beside its stage) with these checks:

* an unknown key raises a ValueError naming the key and the keys allowed;
* a value out of range raises a ValueError naming the field, the value and
  the range (``noise_spec['dropped']['observations_prob'] = 1.5 is out of
  range: allowed [0.0, 1.0]``).

ValueError is the only error they raise, whatever the input. Integers may be
given as integral floats (``3.0``); bools, NaN, infinities, strings and
non-integral values are rejected. A message shows a value's short repr,
never pages of it.

A spec given as a non-empty dict is on unless it says ``'enable': False``
(the published suite needed ``'enable': True``; both spellings work).

Example:
  >>> integer("delay_spec['actions']", 3.0, 0, 1000)
  3
  >>> number("safety_spec['safety_coeff']", 1.5, 0.0, 1.0)
  Traceback (most recent call last):
  ...
  ValueError: safety_spec['safety_coeff'] = 1.5 is out of range: allowed [0.0, 1.0]
"""

from __future__ import annotations

import math
import numbers
import reprlib
from typing import Any, Mapping, Sequence

import numpy as np

#: largest standard deviation of gaussian noise and of a perturbation step; noise
#: of this size keeps every observation finite, in float32 too.
MAX_STD = 1e6

_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 60  # a message names the value, never pages of it
_REPR.maxlong = 40


def show(value: Any) -> str:
    """Return a short repr of ``value`` for a message."""
    return _REPR.repr(value)


def check_keys(where: str, spec: Any, allowed: Sequence[str]) -> dict:
    """Return ``spec`` as a dict, or raise naming an unknown key and the keys allowed."""
    if not isinstance(spec, Mapping):
        raise ValueError(f"{where} must be a dict, got {type(spec).__name__} {show(spec)}")
    unknown = [k for k in spec if not isinstance(k, str) or k not in allowed]
    if unknown:
        raise ValueError(f"{where}: unknown key {show(unknown[0])}; "
                         f"allowed keys: {sorted(allowed)}")
    return dict(spec)


def is_on(where: str, spec: Mapping) -> bool:
    """Return whether a checked spec dict is on: non-empty and not ``'enable': False``."""
    return bool(spec) and boolean(f"{where}['enable']", spec.get("enable", True))


def boolean(field: str, value: Any) -> bool:
    """Return ``value`` as a bool, or raise naming ``field``."""
    if not isinstance(value, (bool, np.bool_, numbers.Integral)) or value not in (0, 1):
        raise ValueError(f"{field} = {show(value)} is not a bool: allowed True or False")
    return bool(value)


def is_finite_real(value: Any) -> bool:
    """Return whether ``value`` is a finite real number and not a bool."""
    if not isinstance(value, numbers.Real) or isinstance(value, (bool, np.bool_)):
        return False
    if isinstance(value, (np.timedelta64, np.datetime64)):
        return False  # numpy registers timedelta64 as a signed integer
    if isinstance(value, numbers.Integral):
        return True  # math.isfinite overflows on ints beyond the float range
    try:
        return math.isfinite(value)
    except OverflowError:  # a Fraction beyond the float range
        return False


def number(field: str, value: Any, lo: float, hi: float) -> float:
    """Return ``value`` as a float in [lo, hi], or raise naming ``field`` and the range."""
    if not is_finite_real(value):
        raise ValueError(f"{field} = {show(value)} is not a finite number: "
                         f"allowed [{lo}, {hi}]")
    if not lo <= value <= hi:
        raise ValueError(f"{field} = {show(value)} is out of range: allowed [{lo}, {hi}]")
    return float(value)


def integer(field: str, value: Any, lo: int, hi: int) -> int:
    """Return ``value`` as an int in [lo, hi], or raise naming ``field`` and the range."""
    allowed = f"allowed integers in [{lo}, {hi}]"
    if not is_finite_real(value) or value != math.floor(value):
        raise ValueError(f"{field} = {show(value)} is not an integer: {allowed}")
    if not lo <= value <= hi:
        raise ValueError(f"{field} = {show(value)} is out of range: {allowed}")
    return int(value)


def choice(field: str, value: Any, allowed: Sequence[str]) -> str:
    """Return ``value`` if it is one of ``allowed``, or raise naming ``field`` and them."""
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{field} = {show(value)} is unknown: allowed {list(allowed)}")
    return value
