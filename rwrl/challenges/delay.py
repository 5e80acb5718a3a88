"""Delays: actions, observations and rewards lag by exactly d control steps.

Defined in Dulac-Arnold et al. (2020) (published
``delayed_buffer_item``): a FIFO of length d + 1 filled with d + 1 copies of
the first item of the episode, so that the output at step t is the input at
step max(0, t - d). One ring buffer of shape (d + 1, N, ...) serves the whole
batch: a write index moves round it, nothing is copied or rolled.

The first item of an observation stream is known at reset (the reset
observation: ``fill_at_reset=True``); that of actions and rewards arrives
with the first step.

The observation delay acts on the camera frames too when the env observes
pixels (the pixel path): a delay of d returns exactly the frame rendered d
steps before (the first frame of the episode until d steps have passed),
in step with the state observation. Its FIFO holds d + 1 uint8 frames per
env: (d + 1) x H x W x 3 bytes, 2.1 MB per env at d = 100 and 84 x 84.

Spec: ``delay_spec`` (keys enable, actions, observations, rewards), each a
delay in control steps, an integer in [0, MAX_DELAY_STEPS]. The largest
buffer a spec can ask for is the observation delay's: (MAX_DELAY_STEPS + 1) x
observation size x 8 bytes per env, about 0.6 MB per env for humanoid's.

Example:
  >>> delay = Delay(2, num_envs=1, shape=())
  >>> delay.reset(np.array([0]))
  >>> [float(delay(np.array([x]), Frame())[0]) for x in (1.0, 2.0, 3.0, 4.0)]
  [1.0, 1.0, 1.0, 2.0]
  >>> parse_delay({"actions": 3}, facts=None)
  DelaySpec(actions=3, observations=0, rewards=0)
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Mapping

import numpy as np

from rwrl.challenges.challenge import ACTIONS, OBSERVATIONS, PIXELS, REWARDS, Challenge, StageMakers
from rwrl.challenges.spec_checks import check_keys, integer, is_on
from rwrl.challenges.stage import Frame
from rwrl.tasks.facts import TaskFacts

#: most control steps of a delay: one default episode (the FIFO holds d + 1 items per env).
MAX_DELAY_STEPS = 1000


class Delay:
    """Delay a batched stream of (N, *shape) arrays by ``steps`` steps.

    Args:
      steps: d >= 0.
      num_envs: N.
      shape: per-env shape of an item.
      fill_at_reset: the FIFO of an env being reset is filled with the item
        the reset passes (observations); otherwise with its first step's item.
      name: the stage name.
      dtype: of the items (float64; uint8 for camera frames).
    """

    uniforms = normals = 0

    def __init__(self, steps: int, num_envs: int, shape: tuple[int, ...],
                 fill_at_reset: bool = False, name: str = "delay", dtype=np.float64):
        if int(steps) != steps or steps < 0:
            raise ValueError(f"delay steps = {steps!r} is out of range: allowed integers >= 0")
        self.name = name
        self.steps = int(steps)
        self.fill_at_reset = fill_at_reset
        self._buffer = np.zeros((self.steps + 1, num_envs) + tuple(shape), dtype)
        self._head = 0
        self._fresh = np.ones(num_envs, bool)
        self._any_fresh = True  # spares a reduction per step

    def reset(self, ids: np.ndarray) -> None:
        """Mark envs ``ids`` as fresh: their next item fills their FIFO."""
        self._fresh[ids] = True
        self._any_fresh = True

    def __call__(self, item: np.ndarray, frame: Frame) -> np.ndarray:
        """Push this step's (N, *shape) items; return those of d steps ago.

        At a reset (``frame.ids``) the items are those envs' first ones: they
        fill the FIFO when ``fill_at_reset``, and pass through unchanged.
        """
        if frame.ids is not None:
            if self.fill_at_reset:
                self._buffer[:, frame.ids] = item
                self._fresh[frame.ids] = False
            return np.array(item, copy=True)
        if self._any_fresh:  # an episode's first item fills the whole FIFO
            fresh = self._fresh
            self._buffer[:, fresh] = item[fresh]
            self._fresh[:] = False
            self._any_fresh = False
        self._buffer[self._head] = item
        self._head = (self._head + 1) % (self.steps + 1)
        return self._buffer[self._head].copy()

    def state(self) -> dict[str, np.ndarray]:
        """Return copies of the FIFO (d + 1, N, ...), its write index () and the fresh marks (N,)."""
        return {"buffer": self._buffer.copy(), "head": np.array(self._head, np.int64),
                "fresh": self._fresh.copy()}

    def restore(self, state: dict[str, np.ndarray]) -> None:
        """Put the FIFO where ``state()`` saw it."""
        self._buffer, self._head = np.array(state["buffer"]), int(state["head"])
        self._fresh = np.array(state["fresh"])
        self._any_fresh = bool(self._fresh.any())


@dataclasses.dataclass(frozen=True)
class DelaySpec:
    """Delays in control steps."""

    actions: int = 0
    observations: int = 0
    rewards: int = 0


def parse_delay(spec: Mapping, facts: TaskFacts) -> DelaySpec | None:
    """Parse ``delay_spec`` (keys enable, actions, observations, rewards)."""
    where = "delay_spec"
    spec = check_keys(where, spec, ("enable", "actions", "observations", "rewards"))
    if not is_on(where, spec):
        return None
    return DelaySpec(**{k: integer(f"{where}[{k!r}]", spec.get(k, 0), 0, MAX_DELAY_STEPS)
                        for k in ("actions", "observations", "rewards")})


def delay_stages(spec: DelaySpec, task) -> StageMakers:
    """Return a ``Delay`` for each stream with a delay; the observation FIFOs fill at reset.

    The observation delay delays the camera frames as well (uint8 FIFO).
    """
    steps = {ACTIONS: spec.actions, REWARDS: spec.rewards, OBSERVATIONS: spec.observations}
    stages = {path: {"delay": functools.partial(Delay, d, task.num_envs,
                                                fill_at_reset=path == OBSERVATIONS)}
              for path, d in steps.items() if d}
    if spec.observations:
        stages[PIXELS] = {"delay": functools.partial(Delay, spec.observations, task.num_envs,
                                                     fill_at_reset=True, dtype=np.uint8)}
    return stages


CHALLENGE = Challenge("delay", parse_delay, delay_stages)
