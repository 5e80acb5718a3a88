"""Pieces every batched bandit shares: per-instance seeds, block random streams, checks.

Shape convention (all of ``rwrl.bandits``): N independent instances in a batch, K arms;
per-round arrays are (N,), per-arm arrays (N, K).

Seeding contract: a batch reset with an int seed s gives instance i the seed
``spawn_seeds(s, N)[i]``; a list of N seeds is used as given. So instance i of a batch
reset with s behaves exactly as a batch of one reset with ``[spawn_seeds(s, N)[i]]``.

Example:
  >>> stream = BlockRandom(instance_seeds(0, 3), "noise", (2,), "normal")
  >>> stream.next().shape
  (3, 2)
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Sequence

import numpy as np

from rwrl.core.seeding import check_seed, env_rng, fresh_seed, spawn_seeds

#: rows drawn per instance at a time: fixed, so an instance's numbers never depend on N.
BLOCK_ROWS = 1024


def instance_seeds(seed, num_instances: int) -> list[int]:
    """Return one seed per instance: spawned from an int, a list taken as given, None fresh.

    Raises a ValueError naming the seed that is not a non-negative int, or a list whose
    length is not ``num_instances``.
    """
    if seed is None:
        return spawn_seeds(fresh_seed(), num_instances)
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, (bool, np.bool_)):
        return spawn_seeds(check_seed(seed), num_instances)
    if isinstance(seed, (str, bytes)) or not isinstance(seed, (Sequence, np.ndarray)):
        raise ValueError(f"seed = {seed!r} is not allowed: give a non-negative int, a list of "
                         f"num_instances={num_instances} of them, or None")
    if len(seed) != num_instances:
        raise ValueError(f"seed list has {len(seed)} entries: allowed exactly "
                         f"num_instances={num_instances}")
    return [check_seed(s, f"seed[{i}]") for i, s in enumerate(seed)]


class BlockRandom:
    """Draw one (N, *shape) array per call from N per-instance streams, a block at a time.

    Instance i reads its own ``env_rng(seeds[i], stream)`` generator, BLOCK_ROWS rows at
    a time, so the Python loop over instances runs once per BLOCK_ROWS calls and
    instance i's numbers are the same in any batch.

    Args:
      seeds: one non-negative int per instance.
      stream: the consumer's name ("noise", "policy/ties", ...).
      shape: per-instance shape of one draw.
      kind: "normal" (standard normal) or "uniform" (U[0, 1)).
    """

    def __init__(self, seeds: Sequence[int], stream: str, shape: tuple[int, ...] = (),
                 kind: str = "normal"):
        if kind not in ("normal", "uniform"):
            raise ValueError(f"kind = {kind!r} is not allowed: 'normal' or 'uniform'")
        self._rngs = [env_rng(int(s), stream) for s in seeds]
        self._shape = (BLOCK_ROWS,) + tuple(shape)
        self._kind = kind
        self._block = np.empty((BLOCK_ROWS, len(self._rngs)) + tuple(shape))
        self._row = BLOCK_ROWS  # empty: the first call fills the block

    def next(self) -> np.ndarray:
        """Return the next (N, *shape) draw (a view into the block: do not write to it)."""
        if self._row == BLOCK_ROWS:
            for i, rng in enumerate(self._rngs):
                draw = rng.standard_normal if self._kind == "normal" else rng.random
                self._block[:, i] = draw(self._shape)
            self._row = 0
        self._row += 1
        return self._block[self._row - 1]


def argmax_random_ties(values: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
    """Return each row's argmax, a tie broken uniformly at random.

    Args:
      values: (N, K) scores; +inf allowed (an arm to pull first), NaN not.
      uniforms: (N, K) U[0, 1) draws, the instance's own.

    Returns:
      (N,) int64 arm indices.
    """
    best = values >= values.max(axis=1, keepdims=True)
    return np.argmax(np.where(best, uniforms, -1.0), axis=1)


def check_finite(name: str, value, low: float = -math.inf, high: float = math.inf,
                 low_open: bool = False, high_open: bool = False) -> float:
    """Return ``value`` as a float, or raise a ValueError naming it and the allowed range."""
    lo, hi = ("(" if low_open else "["), (")" if high_open else "]")
    allowed = f"a finite number in {lo}{low}, {high}{hi}"
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} = {value!r} is not allowed: {allowed}") from None
    inside = ((number > low if low_open else number >= low)
              and (number < high if high_open else number <= high))
    if not math.isfinite(number) or not inside:
        raise ValueError(f"{name} = {value!r} is not allowed: {allowed}")
    return number


def make_from(kind: str, registry: dict, name: str, **params):
    """Return ``registry[name](**params)``; a ValueError lists the allowed names or params.

    Args:
      kind: what the registry holds ("env", "policy"), for the message.
      registry: name -> factory.
      name: the member's name.
      **params: keyword arguments of the factory.
    """
    if name not in registry:
        raise ValueError(f"unknown {kind} {name!r}: allowed {', '.join(sorted(registry))}")
    factory = registry[name]
    bound = factory.keywords if isinstance(factory, functools.partial) else {}
    allowed = [p.name for p in inspect.signature(factory).parameters.values()
               if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in bound]
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ValueError(f"{kind} {name!r} takes no parameter {unknown[0]!r}: allowed "
                         f"{', '.join(allowed)}")
    return factory(**params)


def check_count(name: str, value, low: int = 1) -> int:
    """Return ``value`` as an int >= low, or raise a ValueError naming it."""
    if (isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer, float))
            or not math.isfinite(value) or int(value) != value or value < low):
        raise ValueError(f"{name} = {value!r} is not allowed: an integer >= {low}")
    return int(value)
