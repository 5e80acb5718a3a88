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

Spec: ``realtime_spec`` (keys enable, mode, budget (required), fallback,
latency, max_missed); budget and latencies in [0, MAX_SECONDS] seconds,
max_missed an integer in [0, MAX_MISSED]; a latency callable's values are
checked as they come (``checked_latency``).

Example:
  >>> rt = RealTime("simulated", budget=0.01, fallback="hold", latency=0.025,
  ...               control_timestep=0.01, max_missed=100, num_envs=1, action_size=1)
  >>> rt.latency(), rt.missed(0.025)     # 15 ms late: two periods missed
  (0.025, 2)
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any, Callable, Mapping

import numpy as np

from rwrl.challenges.challenge import PHYSICS, Challenge, StageMakers
from rwrl.challenges.spec_checks import (check_keys, choice, integer, is_finite_real, is_on,
                                          number, show)
from rwrl.challenges.stage import Frame, Stateless
from rwrl.tasks.facts import TaskFacts

_EPS = 1e-9  # seconds: float slack so that L - budget = k * dt misses exactly k
#: most control periods one late action may miss (each runs one physics step).
MAX_MISSED = 1000
#: largest real-time budget and simulated latency, seconds (an hour: longer
#: latencies miss max_missed periods all the same).
MAX_SECONDS = 3600.0


class Immediate(Stateless):
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

    name = "realtime"

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

    def state(self) -> dict[str, np.ndarray]:
        """Return copies of the simulated latencies' step count () and the executed actions (N, nu).

        A wallclock latency is measured, not state: a restored env times its
        next step from the restore.
        """
        return {"count": np.array(self._count, np.int64), "executed": self._executed.copy()}

    def restore(self, state: dict[str, np.ndarray]) -> None:
        """Put the count and the executed actions where ``state()`` saw them."""
        self._count, self._executed = int(state["count"]), np.array(state["executed"])
        self._observed_at = time.perf_counter()


# -- the spec ---------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class RealtimeSpec:
    """The real-time inference challenge (rwrl's own; docs/challenges.md)."""

    mode: str
    budget: float
    fallback: str = "hold"
    #: simulated mode: seconds per step (float, sequence, or callable(step_index) -> float).
    latency: Any = 0.0
    #: most control periods that one late action may miss (bounds a stalled controller).
    max_missed: int = 100


def parse_realtime(spec: Mapping, facts: TaskFacts) -> RealtimeSpec | None:
    """Parse ``realtime_spec`` (keys enable, mode, budget, fallback, latency, max_missed)."""
    where = "realtime_spec"
    spec = check_keys(where, spec,
                      ("enable", "mode", "budget", "fallback", "latency", "max_missed"))
    if not is_on(where, spec):
        return None
    mode = choice(f"{where}['mode']", spec.get("mode", "simulated"), ("wallclock", "simulated"))
    if mode == "wallclock" and "latency" in spec:
        raise ValueError(f"{where}['latency'] is only allowed in 'simulated' mode "
                         "(wallclock mode measures the latency)")
    if "budget" not in spec:
        raise ValueError(f"{where}['budget'] is required: the deadline in seconds, "
                         f"allowed [0.0, {MAX_SECONDS}]")
    return RealtimeSpec(mode=mode,
                        budget=number(f"{where}['budget']", spec["budget"], 0.0, MAX_SECONDS),
                        fallback=choice(f"{where}['fallback']", spec.get("fallback", "hold"),
                                        ("hold", "zero")),
                        latency=_parse_latency(spec.get("latency", 0.0)),
                        max_missed=integer(f"{where}['max_missed']",
                                           spec.get("max_missed", 100), 0, MAX_MISSED))


_LATENCY = "realtime_spec['latency']"


def _parse_latency(value: Any) -> float | tuple[float, ...] | Callable:
    """Return a latency as a float, a non-empty tuple of floats, or the callable given."""
    if callable(value):
        return value  # its values are checked as they come (``checked_latency``)
    if is_finite_real(value):
        return number(_LATENCY, value, 0.0, MAX_SECONDS)
    if isinstance(value, (list, tuple)) or (isinstance(value, np.ndarray) and value.ndim == 1):
        if len(value) == 0:
            raise ValueError(f"{_LATENCY} is an empty sequence: give at least one latency "
                             f"in [0.0, {MAX_SECONDS}] seconds")
        return tuple(number(f"{_LATENCY}[{i}]", v, 0.0, MAX_SECONDS)
                     for i, v in enumerate(value))
    raise ValueError(f"{_LATENCY} = {show(value)} is not allowed: give seconds in "
                     f"[0.0, {MAX_SECONDS}], a list of them, or a callable(step) -> seconds")


def checked_latency(value: Any, step: int) -> float:
    """Return the latency a ``realtime_spec['latency']`` callable returned, as seconds.

    Call it before any state moves, so a bad value leaves the env as it was.

    Args:
      value: what the callable returned for ``step``.
      step: the step count passed to the callable.

    Raises:
      ValueError: naming the call and the value, when it is not a real number in
        [0, MAX_SECONDS].

    Example:
      >>> checked_latency(0.02, 3)
      0.02
    """
    return number(f"{_LATENCY}({step})", value, 0.0, MAX_SECONDS)


def realtime_stages(spec: RealtimeSpec, task) -> StageMakers:
    """Return the ``RealTime`` stage, which runs the physics."""
    return {PHYSICS: {"realtime": lambda shape: RealTime(
        spec.mode, spec.budget, spec.fallback, spec.latency, task.control_timestep,
        spec.max_missed, task.num_envs, shape[0])}}


CHALLENGE = Challenge("realtime", parse_realtime, realtime_stages)
