"""Delays: actions, observations and rewards lag by exactly d control steps.

Defined in Dulac-Arnold et al. (2020) (published
``delayed_buffer_item``): a FIFO of length d + 1 filled with d + 1 copies of
the first item of the episode, so that the output at step t is the input at
step max(0, t - d). One ring buffer of shape (d + 1, N, ...) serves the whole
batch: a write index moves round it, nothing is copied or rolled.

Example:
  >>> delay = Delay(2, num_envs=1, shape=())
  >>> delay.reset(np.array([0]))
  >>> [float(delay(np.array([x]))[0]) for x in (1.0, 2.0, 3.0, 4.0)]
  [1.0, 1.0, 1.0, 2.0]
"""

from __future__ import annotations

import numpy as np


class Delay:
    """Delay a batched stream of (N, *shape) arrays by ``steps`` steps.

    Args:
      steps: d >= 0.
      num_envs: N.
      shape: per-env shape of an item.
      dtype: item dtype.
    """

    def __init__(self, steps: int, num_envs: int, shape: tuple[int, ...],
                 dtype=np.float64):
        if int(steps) != steps or steps < 0:
            raise ValueError(f"delay steps = {steps!r} is out of range: allowed integers >= 0")
        self.steps = int(steps)
        self._buffer = np.zeros((self.steps + 1, num_envs) + tuple(shape), dtype)
        self._head = 0
        self._fresh = np.ones(num_envs, bool)
        self._any_fresh = True  # spares a reduction per step

    def reset(self, ids: np.ndarray, first: np.ndarray | None = None) -> np.ndarray | None:
        """Start envs ``ids`` afresh.

        Args:
          ids: the envs.
          first: their first item (observations, known at reset), or None if
            the first item comes with the next call (actions, rewards).

        Returns:
          A copy of ``first`` (the output at reset), or None.
        """
        if first is None:
            self._fresh[ids] = True
            self._any_fresh = True
            return None
        self._buffer[:, ids] = first
        self._fresh[ids] = False
        return np.array(first, copy=True)

    def __call__(self, item: np.ndarray) -> np.ndarray:
        """Push this step's (N, *shape) items; return those of d steps ago."""
        if self._any_fresh:  # an episode's first item fills the whole FIFO
            fresh = self._fresh
            self._buffer[:, fresh] = item[fresh]
            self._fresh[:] = False
            self._any_fresh = False
        self._buffer[self._head] = item
        self._head = (self._head + 1) % (self.steps + 1)
        return self._buffer[self._head].copy()
