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

Example:
  >>> rng = np.random.default_rng(0)
  >>> x, sign = step_scheduler("drift_pos", 1.0, 1.0, rng, start=1.0, lo=0.3, hi=3.0, std=0.3)
  >>> x > 1.0
  True
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from rwrl.challenges.stage import Frame
from rwrl.core.seeding import env_rng, fresh_seed

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
