"""Regimes: piecewise-constant physics that switches between episodes, unannounced.

rwrl's own challenge for continual learning (the setting of Continual World,
Wolczyk et al. 2021, with the tasks replaced by physical regimes of one
task): the physics stays in one regime for a number of episodes, then
switches to the next; the observation says nothing of it. ``info['regime']``
carries the index of each env's current regime, for the evaluators and for
agents that are told of the switches (never the observation).

A regime is a dict parameter -> value of the domain's perturbable
parameters (``TaskFacts.perturb_params``), in the parameter's own units
(absolute values, as ``perturb_spec``'s: a regime reads as the physics it
is, ``{"pole_length": 2.0}`` metres); a parameter that some regime names and
another does not takes its nominal value (``PerturbParam.start``, the
model's XML value) in the other.

Durations count episodes, per env: changes happen between episodes only, so
a count of episodes is exact whatever the time limit, the terminations and
the number of envs (a count of env steps would round to an episode
boundary, differently for each env). Episode e of an env (counted from its
last seeded reset) runs regime k where the cumulative durations
d_0 + ... + d_{k-1} <= e' < d_0 + ... + d_k, with e' = e mod sum(d) when
``cycle`` is on, else e' = min(e, sum(d) - 1) (the last regime stays).
So durations (2, 3, 2) give the episodes 0..8 the regimes
0 0 1 1 1 2 2 2 2, and with ``cycle`` 0 0 1 1 1 2 2 0 0.

``eval_regime`` k pins every episode to regime k (an evaluator measures each
regime with its own env; a single-regime reference run trains on one).

Spec: ``regime_spec`` (keys enable, regimes, episodes_per_regime, durations,
cycle, eval_regime): ``regimes`` a non-empty list (at most MAX_REGIMES) of
dicts, their values in each parameter's range and at least one parameter
named overall; exactly one of ``episodes_per_regime`` (an integer in [1,
MAX_EPISODES]) and ``durations`` (one such integer per regime); ``cycle`` a
bool (default False); ``eval_regime`` None or an integer in [0, K - 1]. A
parameter that ``perturb_spec`` (or a combined challenge) perturbs cannot be
in a regime: two challenges would set it.

A seeded reset restarts an env's schedule at episode 0 (so a seeded reset
is reproducible, as with ``perturb_spec``): seed the first reset only.

Example:
  >>> spec = RegimeSpec(("pole_length",), ((1.0,), (2.0,), (0.5,)), (2, 3, 2), cycle=True)
  >>> [spec.regime_of(e) for e in range(9)]
  [0, 0, 1, 1, 1, 2, 2, 0, 0]
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any, Mapping, Sequence

import numpy as np

from rwrl.challenges.challenge import EPISODE, Challenge, StageMakers
from rwrl.challenges.spec_checks import boolean, check_keys, integer, is_on, number, show
from rwrl.challenges.stage import Frame
from rwrl.tasks.facts import TaskFacts

#: most regimes in one schedule.
MAX_REGIMES = 1000
#: most episodes of one regime's period.
MAX_EPISODES = 10**6


class RegimeSchedule:
    """Set each env's regime's parameters on the task before its episode.

    A stage of the episode start: ``begin`` runs before the task's reset (the
    initial state is drawn on the regime's model); ``annotate`` writes
    ``info['regime']`` = (n,) int64 regime indices on every reset and step.

    Args:
      spec: a ``RegimeSpec``.
      num_envs: N.
    """

    name = "regime"

    def __init__(self, spec: "RegimeSpec", num_envs: int):
        self.spec = spec
        self.index = np.zeros(num_envs, np.int64)  #: regime of each env's current episode
        self._episodes = np.zeros(num_envs, np.int64)  #: episodes begun since the seed

    def begin(self, ids: np.ndarray, seeds: Sequence[int | None], task) -> None:
        """Start the next episode of envs ``ids`` in its regime; a seed restarts the schedule."""
        s = self.spec
        for env_id, seed in zip(ids, seeds):
            if seed is not None:
                self._episodes[env_id] = 0
            regime = s.regime_of(int(self._episodes[env_id]))
            self._episodes[env_id] += 1
            self.index[env_id] = regime
            for name, value in zip(s.params, s.values[regime]):
                if task.get_parameter(int(env_id), name) != value:  # a recompile only on change
                    task.set_parameter(int(env_id), name, value)

    def annotate(self, frame: Frame) -> None:
        """Write the regime of each env of the frame to ``info['regime']``."""
        frame.info["regime"] = (self.index if frame.ids is None else self.index[frame.ids]).copy()

    def state(self) -> dict[str, np.ndarray]:
        """Return copies of 'index' (each env's regime) and 'episodes' (begun since its seed), (N,)."""
        return {"index": self.index.copy(), "episodes": self._episodes.copy()}

    def restore(self, state: dict[str, np.ndarray]) -> None:
        """Put the schedules where ``state()`` saw them (the task restores its own models)."""
        self.index, self._episodes = np.array(state["index"]), np.array(state["episodes"])


# -- the spec ---------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class RegimeSpec:
    """A schedule of physical regimes.

    Attributes:
      params: the P parameters the regimes set, in the domain's order.
      values: (K, P): regime k's value of ``params[p]``, in the parameter's units.
      durations: (K,) episodes per regime period.
      cycle: after the last regime, start again at regime 0 (else stay in the last).
      eval_regime: None, or the regime every episode runs (a pinned env).
    """

    params: tuple[str, ...]
    values: tuple[tuple[float, ...], ...]
    durations: tuple[int, ...]
    cycle: bool = False
    eval_regime: int | None = None

    def regime_of(self, episode: int) -> int:
        """Return the regime of an env's ``episode`` (0, 1, ... since its seed)."""
        if self.eval_regime is not None:
            return self.eval_regime
        total = sum(self.durations)
        e = episode % total if self.cycle else min(episode, total - 1)
        ends = itertools.accumulate(self.durations)
        return next(k for k, end in enumerate(ends) if e < end)


_REGIME_KEYS = ("enable", "regimes", "episodes_per_regime", "durations", "cycle", "eval_regime")


def parse_regime(spec: Mapping, facts: TaskFacts) -> RegimeSpec | None:
    """Parse ``regime_spec``; the parameters are checked against ``facts.perturb_params``."""
    where = "regime_spec"
    spec = check_keys(where, spec, _REGIME_KEYS)
    if not is_on(where, spec):
        return None
    regimes = _regimes(where, spec.get("regimes"), facts)
    params = tuple(p for p in facts.perturb_params if any(p in r for r in regimes))
    if not params:
        raise ValueError(f"{where}['regimes'] names no parameter: give at least one of "
                         f"{list(facts.perturb_params)} (domain {facts.domain!r})")
    nominal = {p: float(facts.perturb_params[p].start) for p in params}
    values = tuple(tuple(r.get(p, nominal[p]) for p in params) for r in regimes)
    eval_regime = spec.get("eval_regime")
    if eval_regime is not None:
        eval_regime = integer(f"{where}['eval_regime']", eval_regime, 0, len(regimes) - 1)
    return RegimeSpec(params, values, _durations(where, spec, len(regimes)),
                      boolean(f"{where}['cycle']", spec.get("cycle", False)), eval_regime)


def _regimes(where: str, regimes: Any, facts: TaskFacts) -> list[dict[str, float]]:
    """Check ``regimes``: a non-empty list of dicts parameter -> value in its range."""
    field = f"{where}['regimes']"
    if isinstance(regimes, (str, bytes)) or not isinstance(regimes, Sequence) or not regimes:
        raise ValueError(f"{field} = {show(regimes)} is not allowed: give a non-empty list of "
                         f"dicts parameter -> value, parameters of {list(facts.perturb_params)}")
    if len(regimes) > MAX_REGIMES:
        raise ValueError(f"{field} lists {len(regimes)} regimes: allowed at most {MAX_REGIMES}")
    checked = []
    for k, regime in enumerate(regimes):
        regime = check_keys(f"{field}[{k}]", regime, tuple(facts.perturb_params))
        checked.append({name: number(f"{field}[{k}][{name!r}]", value,
                                     facts.perturb_params[name].min, facts.perturb_params[name].max)
                        for name, value in regime.items()})
    return checked


def _durations(where: str, spec: Mapping, count: int) -> tuple[int, ...]:
    """Return the K durations in episodes: ``episodes_per_regime`` or ``durations``, one given."""
    each, durations = spec.get("episodes_per_regime"), spec.get("durations")
    if (each is None) == (durations is None):
        raise ValueError(f"{where}: give exactly one of 'episodes_per_regime' (episodes of every "
                         f"regime) and 'durations' (episodes of each regime, a list of {count})")
    if each is not None:
        return (integer(f"{where}['episodes_per_regime']", each, 1, MAX_EPISODES),) * count
    field = f"{where}['durations']"
    if (isinstance(durations, (str, bytes)) or not isinstance(durations, Sequence)
            or len(durations) != count):
        raise ValueError(f"{field} = {show(durations)} is not allowed: give one integer in "
                         f"[1, {MAX_EPISODES}] per regime ({count})")
    return tuple(integer(f"{field}[{k}]", d, 1, MAX_EPISODES) for k, d in enumerate(durations))


def regime_stages(spec: RegimeSpec, task) -> StageMakers:
    """Return the ``RegimeSchedule`` of the episode start."""
    return {EPISODE: {"regime": lambda shape: RegimeSchedule(spec, task.num_envs)}}


CHALLENGE = Challenge("regime", parse_regime, regime_stages, parameters=lambda spec: spec.params)
