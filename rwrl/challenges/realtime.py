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
number per batch step: one controller serves the whole batch.

Example:
  >>> rt = RealTime("simulated", budget=0.01, fallback="hold", latency=0.025,
  ...               control_timestep=0.01, max_missed=100)
  >>> rt.next_latency(), rt.missed(0.025)     # 15 ms late: two periods missed
  (0.025, 2)
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

_EPS = 1e-9  # seconds: float slack so that L - budget = k * dt misses exactly k


class RealTime:
    """Latency measurement and missed-period count of the real-time challenge.

    Args:
      mode: 'wallclock' or 'simulated'.
      budget: seconds an action may take.
      fallback: 'hold' or 'zero'.
      latency: simulated seconds per step (float, sequence or callable(step) -> float).
      control_timestep: dt, seconds.
      max_missed: cap on the periods one late action may miss.
    """

    def __init__(self, mode: str, budget: float, fallback: str, latency: Any,
                 control_timestep: float, max_missed: int):
        if mode not in ("wallclock", "simulated"):
            raise ValueError(f"realtime mode = {mode!r} is unknown: allowed "
                             "['wallclock', 'simulated']")
        if fallback not in ("hold", "zero"):
            raise ValueError(f"realtime fallback = {fallback!r} is unknown: allowed "
                             "['hold', 'zero']")
        if not budget >= 0:
            raise ValueError(f"realtime budget = {budget!r} is out of range: allowed >= 0")
        self.mode, self.budget, self.fallback = mode, float(budget), fallback
        self.latency = latency
        self.dt = float(control_timestep)
        self.max_missed = int(max_missed)
        self._count = 0
        self._observed_at = time.perf_counter()

    def observation_returned(self) -> None:
        """Start the wallclock timer (call when an observation leaves the env)."""
        self._observed_at = time.perf_counter()

    def next_latency(self) -> float:
        """Return this step's latency in seconds."""
        if self.mode == "wallclock":
            return time.perf_counter() - self._observed_at
        count, self._count = self._count, self._count + 1
        if callable(self.latency):
            return float(self.latency(count))
        if isinstance(self.latency, (tuple, list, np.ndarray)):
            return float(self.latency[count % len(self.latency)])
        return float(self.latency)

    def missed(self, latency: float) -> int:
        """Return the control periods that pass before an action of this latency lands."""
        late = latency - self.budget
        if late <= _EPS:
            return 0
        return min(math.ceil(late / self.dt - _EPS), self.max_missed)

    def fallback_action(self, previous: np.ndarray, low: np.ndarray,
                        high: np.ndarray) -> np.ndarray:
        """Return the (N, nu) action of a missed period."""
        if self.fallback == "hold":
            return previous
        return np.clip(np.zeros_like(previous), low, high)
