"""Real-time inference: the system does not wait for a late controller.

rwrl's own challenge (the published suite lacks it; docs/challenges.md). The
control loop ticks every control period dt, and the actuators latch a command
``budget`` seconds after each tick's observation (budget <= dt in practice).
An action that arrives within the budget is latched at once. One that
arrives after latency L > budget misses every latch before it:

    missed = min(ceil((L - budget) / dt), max_missed)

control periods run first with the fallback action (``hold``: the previous
executed action; ``zero``: zeros, clipped to the bounds), then the late
action is applied for one period. The agent sees only the last period's
observation and reward.

Latency sources: ``wallclock`` measures the seconds from the end of the
previous ``reset``/``step`` (observation returned) to the start of this
``step`` (action received); ``simulated`` takes them from the spec (a float,
a sequence indexed by the step count since the env was built and cycled, or
a callable of that count), so runs are deterministic. The latency is one
number per batch step: one controller serves the whole batch. It is taken
and checked (a real, finite number >= 0) before anything else of the step
happens, so a bad value moves no state.

The stage sits at the end of the action path and runs the physics
(``advance``); ``Immediate`` is the same interface without the challenge.
The missed periods never run an env past its time limit.

Example:
  >>> rt = RealTime("simulated", budget=0.01, fallback="hold", latency=0.025,
  ...               control_timestep=0.01, max_missed=100, num_envs=1, action_size=1)
  >>> rt.latency(), rt.missed(0.025)     # 15 ms late: two periods missed
  (0.025, 2)
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from rwrl.challenges.specs import checked_latency
from rwrl.challenges.stage import Frame

_EPS = 1e-9  # seconds: float slack so that L - budget = k * dt misses exactly k


class Immediate:
    """No real-time challenge: every action lands at once (the ``RealTime`` interface)."""

    def reset(self, ids: np.ndarray) -> None:
        """Nothing to clear."""

    def latency(self) -> float:
        return 0.0

    def advance(self, task, action: np.ndarray, latency: float):
        """Step the task once with ``action``."""
        return task.step(action)

    def annotate(self, frame: Frame) -> None:
        """Add nothing to ``info``."""

    def observation_returned(self) -> None:
        """Nothing to time."""


class RealTime:
    """Latency measurement and missed periods of the real-time challenge.

    Args:
      mode: 'wallclock' or 'simulated'.
      budget: seconds an action may take.
      fallback: 'hold' or 'zero'.
      latency: simulated seconds per step (float, sequence or callable(step) -> float).
      control_timestep: dt, seconds.
      max_missed: cap on the periods one late action may miss.
      num_envs, action_size: N and nu, for the last executed actions.

    ``info['realtime']``: {'latency': (n,) s, 'missed': (n,) periods}, 0 at a reset.
    """

    def __init__(self, mode: str, budget: float, fallback: str, latency: Any,
                 control_timestep: float, max_missed: int, num_envs: int, action_size: int):
        if mode not in ("wallclock", "simulated"):
            raise ValueError(f"realtime mode = {mode!r} is unknown: allowed "
                             "['wallclock', 'simulated']")
        if fallback not in ("hold", "zero"):
            raise ValueError(f"realtime fallback = {fallback!r} is unknown: allowed "
                             "['hold', 'zero']")
        if not budget >= 0:
            raise ValueError(f"realtime budget = {budget!r} is out of range: allowed >= 0")
        self.mode, self.budget, self.fallback = mode, float(budget), fallback
        self.source = latency
        self.dt = float(control_timestep)
        self.max_missed = int(max_missed)
        self._count = 0
        self._observed_at = time.perf_counter()
        self._executed = np.zeros((num_envs, action_size))
        self._last = (0.0, 0)  # this step's latency and missed periods

    def reset(self, ids: np.ndarray) -> None:
        """Envs ``ids`` start with no executed action (a held fallback is 0)."""
        self._executed[ids] = 0.0

    def observation_returned(self) -> None:
        """Start the wallclock timer (call when an observation leaves the env)."""
        self._observed_at = time.perf_counter()

    def latency(self) -> float:
        """Return this step's latency in seconds (checked; the count moves only then)."""
        if self.mode == "wallclock":
            return time.perf_counter() - self._observed_at
        count = self._count
        if callable(self.source):
            value = checked_latency(self.source(count), count)
        elif isinstance(self.source, (tuple, list, np.ndarray)):
            value = float(self.source[count % len(self.source)])
        else:
            value = float(self.source)
        self._count = count + 1
        return value

    def missed(self, latency: float) -> int:
        """Return the control periods that pass before an action of this latency lands."""
        late = latency - self.budget
        if late <= _EPS:
            return 0
        return min(math.ceil(late / self.dt - _EPS), self.max_missed)

    def fallback_action(self, low: np.ndarray, high: np.ndarray) -> np.ndarray:
        """Return the (N, nu) action of a missed period."""
        if self.fallback == "hold":
            return self._executed
        return np.clip(np.zeros_like(self._executed), low, high)

    def advance(self, task, action: np.ndarray, latency: float):
        """Run the missed periods on the fallback, then ``action``; return the last step.

        A divergence during a missed period still ends that env's episode.
        """
        # the physical time limit still ends every episode
        room = task.time_limit - 1 - int(task.elapsed_steps.max())
        missed = max(0, min(self.missed(latency), room))
        diverged = None
        for _ in range(missed):
            fallback = self.fallback_action(task.action_low, task.action_high)
            info = task.step(fallback)[3]
            diverged = info["diverged"] if diverged is None else diverged | info["diverged"]
            self._executed = fallback
        obs, reward, truncated, info = task.step(action)
        self._executed = action
        if diverged is not None and diverged.any():
            info["diverged"] = info["diverged"] | diverged
            truncated = truncated | diverged
        self._last = (latency, missed)
        return obs, reward, truncated, info

    def annotate(self, frame: Frame) -> None:
        """Write ``info['realtime']`` of this step (zeros at a reset)."""
        n = len(frame.info["cost"])
        latency, missed = (0.0, 0) if frame.ids is not None else self._last
        frame.info["realtime"] = {"latency": np.full(n, latency),
                                  "missed": np.full(n, missed, np.int64)}
