"""Perturbations: a physical parameter that changes between episodes.

Defined in Dulac-Arnold et al. (2020) and the published
``realworld_env.Base._generate_parameter`` (RWRL_REFERENCE.md, Schedulers).
At the first reset and every ``period`` resets after it, each env's value x
takes one scheduler step (delta ~ N(0, std), result clipped to [min, max]):

* ``constant``: x stays at ``start``.
* ``random_walk``: x += delta.   ``drift_pos``: x += |delta|.   ``drift_neg``: x -= |delta|.
* ``cyclic_pos`` / ``cyclic_neg``: drift; back to ``start`` on reaching max / min.
* ``uniform``: x ~ U[min, max]; with ``values`` (rwrl's own key), x is one
  of those values, each equally likely (domain randomization over a
  discrete set, e.g. the uncertainty set of robust MPO).
* ``saw_wave``: drift in one direction, reversing at each bound (the
  published code does not accumulate: a defect, fixed here).

The draws come from each env's own generator (``env_rng(seed, 'perturb')``),
so env i of a vector env follows the sequence of a single env with its seed.

Spec: ``perturb_spec`` (keys enable, param, scheduler, period, start, min,
max, std, values); defaults are the domain's (``TaskFacts.perturb_params``,
RWRL_REFERENCE.md table). ``min``, ``max``, ``start`` and ``values`` lie in
the parameter's range, ``std`` in [0, MAX_STD], ``period`` is an integer in
[1, MAX_PERIOD]; ``values`` (a non-empty list) only with scheduler 'uniform'.

Example:
  >>> rng = np.random.default_rng(0)
  >>> x, sign = step_scheduler("drift_pos", 1.0, 1.0, rng, start=1.0, lo=0.3, hi=3.0, std=0.3)
  >>> x > 1.0
  True
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Sequence

import numpy as np

from rwrl.challenges.challenge import EPISODE, Challenge, StageMakers
from rwrl.challenges.spec_checks import MAX_STD, check_keys, choice, integer, is_on, number, show
from rwrl.challenges.stage import Frame
from rwrl.core.seeding import env_rng, fresh_seed, generators_array, generators_from_array
from rwrl.tasks.facts import TaskFacts

#: most resets between two perturbation scheduler steps.
MAX_PERIOD = 10**6

#: the eight schedulers (RWRL_REFERENCE.md, Schedulers).
SCHEDULERS = ("constant", "random_walk", "drift_pos", "drift_neg", "cyclic_pos",
              "cyclic_neg", "uniform", "saw_wave")


def step_scheduler(name: str, x: float, sign: float, rng: np.random.Generator, *,
                   start: float, lo: float, hi: float, std: float,
                   values: Sequence[float] | None = None) -> tuple[float, float]:
    """Return the next (value, saw-wave direction) of scheduler ``name``.

    ``values``: the discrete set that ``uniform`` draws from (None: the range).
    """
    drift = abs(rng.normal(0.0, std)) if std > 0 else 0.0
    if name == "constant":
        x = start
    elif name == "random_walk":
        x = x + (rng.normal(0.0, std) if std > 0 else 0.0)
    elif name == "drift_pos":
        x = x + drift
    elif name == "drift_neg":
        x = x - drift
    elif name == "cyclic_pos":
        x = start if x + drift >= hi else x + drift
    elif name == "cyclic_neg":
        x = start if x - drift <= lo else x - drift
    elif name == "uniform":
        x = values[rng.integers(len(values))] if values else rng.uniform(lo, hi)
    elif name == "saw_wave":
        x = x + sign * drift
        if x >= hi or x <= lo:
            sign = -sign
    else:
        raise ValueError(f"scheduler = {name!r} is unknown: allowed {list(SCHEDULERS)}")
    return float(min(max(x, lo), hi)), sign


class Perturbation:
    """Step one parameter's scheduler per env at reset and set it on the task.

    A stage of the episode start: ``begin`` runs before the task's reset, so
    that the initial state is drawn on the perturbed model; ``annotate``
    writes ``info['perturbation']`` = {param: (n,) value} on every reset and step.

    Args:
      spec: a ``PerturbSpec`` (param, scheduler, period, start, min, max, std).
      num_envs: N.
    """

    name = "perturbation"

    def __init__(self, spec, num_envs: int):
        self.spec = spec
        self.values = np.full(num_envs, float(spec.start))
        self._applied = np.full(num_envs, np.nan)
        self._sign = np.ones(num_envs)
        self._episodes = np.zeros(num_envs, np.int64)
        self._rngs: list[np.random.Generator | None] = [None] * num_envs

    def begin(self, ids: np.ndarray, seeds: Sequence[int | None], task) -> None:
        """Advance the schedule of envs ``ids`` and set it on ``task`` before their episode.

        A seed restarts that env's schedule at ``start`` (so a seeded reset is
        reproducible); None continues it.
        """
        s = self.spec
        for env_id, seed in zip(ids, seeds):
            if seed is not None or self._rngs[env_id] is None:
                self._rngs[env_id] = env_rng(fresh_seed() if seed is None else seed, "perturb")
                self.values[env_id], self._sign[env_id], self._episodes[env_id] = s.start, 1.0, 0
            if self._episodes[env_id] % s.period == 0:
                self.values[env_id], self._sign[env_id] = step_scheduler(
                    s.scheduler, self.values[env_id], self._sign[env_id], self._rngs[env_id],
                    start=s.start, lo=s.min, hi=s.max, std=s.std, values=s.values)
            self._episodes[env_id] += 1
            if self.values[env_id] != self._applied[env_id]:
                task.set_parameter(int(env_id), s.param, float(self.values[env_id]))
                self._applied[env_id] = self.values[env_id]

    def annotate(self, frame: Frame) -> None:
        """Write the parameter's value of each env of the frame to ``info['perturbation']``."""
        values = self.values if frame.ids is None else self.values[frame.ids]
        frame.info["perturbation"] = {self.spec.param: values.copy()}

    def state(self) -> dict[str, np.ndarray]:
        """Return copies of each env's schedule and generator.

        'values', 'applied' (the value set on the task), 'sign' (the saw-wave
        direction), 'episodes' (since its seed): (N,) each; 'rngs':
        ``rwrl.core.seeding.generators_array`` rows.
        """
        return {"values": self.values.copy(), "applied": self._applied.copy(),
                "sign": self._sign.copy(), "episodes": self._episodes.copy(),
                "rngs": generators_array(self._rngs)}

    def restore(self, state: dict[str, np.ndarray]) -> None:
        """Put the schedules where ``state()`` saw them (the task restores its own models)."""
        self.values, self._applied = np.array(state["values"]), np.array(state["applied"])
        self._sign, self._episodes = np.array(state["sign"]), np.array(state["episodes"])
        self._rngs = generators_from_array(state["rngs"])


# -- the spec ---------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class PerturbSpec:
    """One perturbed physical parameter and its scheduler."""

    param: str
    scheduler: str
    period: int
    start: float
    min: float
    max: float
    std: float
    #: a discrete set: the 'uniform' scheduler draws one of them per step (rwrl's own key).
    values: tuple[float, ...] | None = None


_PERTURB_KEYS = ("enable", "period", "param", "scheduler", "start", "min", "max", "std", "values")


def parse_perturb(spec: Mapping, facts: TaskFacts) -> PerturbSpec | None:
    """Parse ``perturb_spec``; defaults are the domain's (RWRL_REFERENCE.md table)."""
    where = "perturb_spec"
    spec = check_keys(where, spec, _PERTURB_KEYS)
    if not is_on(where, spec):
        return None
    params = facts.perturb_params
    if not params:
        raise ValueError(f"{where}: domain {facts.domain!r} has no perturbable parameter")
    name = choice(f"{where}['param'] (domain {facts.domain!r})",
                  spec.get("param", next(iter(params))), tuple(params))
    p = params[name]
    scheduler = choice(f"{where}['scheduler']", spec.get("scheduler", "constant"), SCHEDULERS)
    values = _perturb_values(where, name, spec.get("values"), scheduler, p)
    lo = number(f"{where}['min'] ({name})", spec.get("min", min(values or [p.min])), p.min, p.max)
    hi = number(f"{where}['max'] ({name})", spec.get("max", max(values or [p.max])), lo, p.max)
    if values and not lo <= min(values) <= max(values) <= hi:
        raise ValueError(f"{where}['values'] = {list(values)} ({name}): must lie in [min, max] = "
                         f"[{lo}, {hi}]")
    start = spec.get("start", min(max(p.start, lo), hi))
    return PerturbSpec(
        param=name,
        scheduler=scheduler,
        values=values,
        period=integer(f"{where}['period']", spec.get("period", 1), 1, MAX_PERIOD),
        start=number(f"{where}['start'] ({name})", start, lo, hi),
        min=lo, max=hi,
        std=number(f"{where}['std'] ({name})", spec.get("std", p.std), 0.0, MAX_STD))


def _perturb_values(where: str, name: str, values: Any, scheduler: str, p) -> tuple[float, ...] | None:
    """Check ``perturb_spec['values']``: None, or a non-empty list in the parameter's range."""
    if values is None:
        return None
    field = f"{where}['values'] ({name})"
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
        raise ValueError(f"{field} = {show(values)} is not allowed: give a non-empty list of "
                         f"values in [{p.min}, {p.max}]")
    if scheduler != "uniform":
        raise ValueError(f"{field}: a discrete set is drawn by scheduler 'uniform' only, "
                         f"got scheduler {scheduler!r}")
    return tuple(number(f"{field}[{i}]", v, p.min, p.max) for i, v in enumerate(values))


def perturb_stages(spec: PerturbSpec, task) -> StageMakers:
    """Return the ``Perturbation`` of the episode start."""
    return {EPISODE: {"perturbation": lambda shape: Perturbation(spec, task.num_envs)}}


CHALLENGE = Challenge("perturb", parse_perturb, perturb_stages,
                      parameters=lambda spec: (spec.param,))
