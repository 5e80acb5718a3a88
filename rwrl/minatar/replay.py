"""The replay of a MinAtar run: one-step transitions of boolean frames, in a ring.

MinAtar's DQN (Young and Tian 2019, ``examples/dqn.py``) keeps the last
100,000 transitions (s, a, r, s', terminal) and samples 32 of them per
update. Frames are 10x10xC booleans, so they are stored as numpy ``bool``
(1 byte a cell: Seaquest's 100,000 transitions take 2 x 100 MB), not as the
float32 rows of ``rwrl.agents.replay.NStepReplay`` (four times that), and
actions as integers. Transitions are one-step: ``discount_t`` is gamma, or 0
when the game ended on that step (MinAtar has no time limit, so there is no
truncated transition to bootstrap).

Sampling: ``sample`` draws uniformly with replacement (MinAtar draws a batch
without replacement, ``random.sample``; with 100,000 stored the two differ in
one batch of 32 with probability about 0.5 %); ``sample_distinct`` draws
without replacement, for LS-DQN's large batch (the whole buffer when it asks
for all of it).

Saving, as ``NStepReplay``: the transitions are numbered in the order they were
written (``written``); ``export_rows(first)`` returns those from ``first`` on, so
each checkpoint adds only the rows written since the previous one;
``position_state`` is the rest (ring position and layout).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

_STORED = ("obs_tm1", "action_tm1", "reward_t", "discount_t", "obs_t")


class FrameTransition(NamedTuple):
    """A batch of one-step transitions, leading axis B.

    Attributes:
      obs_tm1: (B, 10, 10, C) bool, the frame the action was taken in.
      action_tm1: (B,) int32, the action's index.
      reward_t: (B,) float32, the reward of that step.
      discount_t: (B,) float32, gamma; 0 when the game ended on that step.
      obs_t: (B, 10, 10, C) bool, the next frame (unused after a game over).
    """

    obs_tm1: np.ndarray
    action_tm1: np.ndarray
    reward_t: np.ndarray
    discount_t: np.ndarray
    obs_t: np.ndarray


class FrameReplay:
    """Ring buffer of the last ``capacity`` one-step transitions of one env.

    Args:
      capacity: the most transitions kept; the oldest are overwritten.
      frame_shape: (10, 10, C), the observation's shape.
      gamma: the per-step discount stored with each transition.
    """

    def __init__(self, capacity: int, frame_shape: tuple[int, ...], gamma: float):
        if int(capacity) != capacity or capacity < 1:
            raise ValueError(f"capacity={capacity!r}: must be an integer >= 1")
        self.capacity, self.frame_shape, self.gamma = int(capacity), tuple(frame_shape), float(gamma)
        self._obs_tm1 = np.zeros((self.capacity, *self.frame_shape), bool)
        self._action_tm1 = np.zeros(self.capacity, np.int32)
        self._reward_t = np.zeros(self.capacity, np.float32)
        self._discount_t = np.zeros(self.capacity, np.float32)
        self._obs_t = np.zeros((self.capacity, *self.frame_shape), bool)
        self._written = 0

    def __len__(self) -> int:
        return min(self._written, self.capacity)

    @property
    def written(self) -> int:
        """Transitions written since the buffer was made; the ring holds the last ``len(self)``."""
        return self._written

    def add(self, obs_tm1: np.ndarray, action_tm1: int, reward_t: float, terminated: bool,
            obs_t: np.ndarray) -> None:
        """Store one step: the frame, the action taken in it, its reward, game over, the next frame."""
        i = self._written % self.capacity
        self._obs_tm1[i] = obs_tm1
        self._action_tm1[i] = action_tm1
        self._reward_t[i] = reward_t
        self._discount_t[i] = 0.0 if terminated else self.gamma
        self._obs_t[i] = obs_t
        self._written += 1

    def sample(self, rng: np.random.Generator, batch_size: int) -> FrameTransition:
        """Return ``batch_size`` transitions drawn uniformly with replacement."""
        if len(self) == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        return self._gather(rng.integers(0, len(self), size=batch_size))

    def sample_distinct(self, rng: np.random.Generator, count: int) -> FrameTransition:
        """Return ``count`` distinct transitions in random order (all of them when count = len)."""
        if not 1 <= count <= len(self):
            raise ValueError(f"count={count}: the buffer holds {len(self)} transitions")
        return self._gather(rng.permutation(len(self))[:count])

    def _gather(self, index: np.ndarray) -> FrameTransition:
        return FrameTransition(*(getattr(self, f"_{name}")[index] for name in _STORED))

    def position_state(self) -> dict[str, np.ndarray]:
        """Return the layout and ring position (everything but the transitions)."""
        return {"shape": np.array([self.capacity, *self.frame_shape]), "gamma": np.array(self.gamma),
                "written": np.array(self._written)}

    def load_position_state(self, d: dict[str, np.ndarray]) -> None:
        """Restore ``position_state``'s arrays; the transitions come back with ``import_rows``.

        Raises:
          ValueError: ``d`` lacks an array or belongs to another layout.
        """
        missing = [k for k in ("shape", "gamma", "written") if k not in d]
        if missing:
            raise ValueError(f"replay state is missing {missing}")
        expected = [self.capacity, *self.frame_shape]
        if list(np.asarray(d["shape"])) != expected or float(d["gamma"]) != self.gamma:
            raise ValueError(f"replay state has (capacity, *frame_shape), gamma = "
                             f"{list(np.asarray(d['shape']))}, {float(d['gamma'])}; this buffer has "
                             f"{expected}, {self.gamma}")
        self._written = int(d["written"])

    def export_rows(self, first: int) -> dict[str, np.ndarray]:
        """Return copies of the transitions written from the ``first``-th on, oldest first.

        Raises:
          ValueError: the ring no longer holds transition ``first`` (or it is in the future).
        """
        oldest = self._written - len(self)
        if not oldest <= first <= self._written:
            raise ValueError(f"first={first}: the buffer holds transitions {oldest} to {self._written - 1}")
        index = np.arange(first, self._written) % self.capacity
        return {name: getattr(self, f"_{name}")[index] for name in _STORED}

    def import_rows(self, first: int, rows: dict[str, np.ndarray]) -> int:
        """Put back ``export_rows(first)``'s arrays; return how many of them the ring holds.

        Call it after ``load_position_state``; rows older than the ring's oldest are skipped.

        Raises:
          ValueError: an array is missing or has another shape.
        """
        count = len(rows["reward_t"]) if "reward_t" in rows else -1
        for name in _STORED:
            shape = (count, *getattr(self, f"_{name}").shape[1:])
            if name not in rows or np.shape(rows[name]) != shape:
                raise ValueError(f"replay rows {name}: expected shape {shape}, got "
                                 f"{np.shape(rows[name]) if name in rows else 'none'}")
        start, end = max(first, self._written - len(self)), min(first + count, self._written)
        index = np.arange(start, end) % self.capacity
        for name in _STORED:
            getattr(self, f"_{name}")[index] = np.asarray(rows[name])[start - first:end - first]
        return max(end - start, 0)


__all__ = ["FrameReplay", "FrameTransition"]
