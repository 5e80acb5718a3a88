"""Bandit sweep files: ``[sweep] kind = "bandit"``, a grid of ``rwrl bandits run`` runs.

A bandit sweep file::

    [sweep]
    kind = "bandit"                       # required: this format, not the RL one
    name = "bandits-rested"               # required
    envs = ["rested-step"]                # required: `rwrl bandits envs`
    policies = ["swa", "wswa", "ucb1"]    # required: `rwrl bandits policies` (of every env)
    horizons = [30_000]                   # required: T, a list (or one integer)
    seeds = 20                            # N instances per run, one batch (default 1)
    seed = 0                              # base seed S: instance i gets spawn_seeds(S, N)[i]
    grid = "log"                          # rounds recorded: "log" (50) or "all"
    description = "..."

    [env_params]                          # keyword arguments of every env's factory
    sigma = 0.4472
    [env_params."rested-step"]            # ... of one env's (wins over the shared ones)
    switch = 7_500

    [policy_params.swa]                   # keyword arguments of one policy's factory
    alpha = 0.2

Runs = envs x policies x horizons, each policy with the envs that take it (the follower's
learners with ``follower``, the others with the rotting envs), each run one batch of N
seeds (``seeds``), its
directory ``DIR/runs/<policy>__<env>__T<horizon>`` the one ``rwrl bandits run``
writes (``rwrl.experiments.bandit_run``). A policy table that names no policy of the
sweep, or a parameter a factory does not take, is an error, as is a horizon shorter than
an env's arms; every run is checked before any starts.

``rwrl sweep`` options: ``--seeds N`` replaces ``seeds``, ``--steps T`` the horizons
(one), ``--scale F`` multiplies them (rounded), ``--envs`` and ``--agents`` (the
policies) replace the lists.
"""

from __future__ import annotations

import itertools
import math
from typing import Any, Mapping

from rwrl.experiments.bandit_run import BanditRunConfig, build, env_names, policy_names
from rwrl.experiments.sweeps.plan import (Overrides, PlannedRun, SweepPlan, SweepSpecError,
                                          _check_keys, _name, _str_list, _unique_ids)
from rwrl.metrics.bandit_results import BANDIT_KIND

_TABLES = ("sweep", "env_params", "policy_params")
_SWEEP_KEYS = ("kind", "name", "description", "envs", "policies", "horizons", "seeds", "seed",
               "grid")


def _horizons(value: Any) -> list[int]:
    values = [value] if isinstance(value, int) and not isinstance(value, bool) else value
    if (not isinstance(values, list) or not values or len(set(values)) != len(values)
            or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in values)):
        raise SweepSpecError(f"[sweep] horizons = {value!r}: give an integer >= 1 or a list of "
                             "distinct ones")
    return values


def _params(where: str, table: Any, names: list[str]) -> tuple[dict, dict[str, dict]]:
    """Return (shared, per name) parameters of an [env_params] / [policy_params] table."""
    if not isinstance(table, Mapping):
        raise SweepSpecError(f"{where} must be a table, got {table!r}")
    shared = {k: v for k, v in table.items() if not isinstance(v, Mapping)}
    own = {k: dict(v) for k, v in table.items() if isinstance(v, Mapping)}
    unknown = sorted(set(own) - set(names))
    if unknown:
        raise SweepSpecError(f"{where}: table {unknown[0]!r} names none of the sweep's "
                             f"{', '.join(names)}")
    return shared, own


def expand(data: Mapping[str, Any], source: str, overrides: Overrides) -> SweepPlan:
    """Expand a parsed bandit sweep file into its validated runs (module docstring)."""
    _check_keys("the top level of a bandit sweep", data, _TABLES)
    sweep = data["sweep"]
    _check_keys("[sweep]", sweep, _SWEEP_KEYS)
    name = _name("[sweep] name", sweep.get("name"))
    envs = list(overrides.envs or _str_list("[sweep] envs", sweep.get("envs")))
    for env in envs:
        if env not in env_names():
            raise SweepSpecError(f"[sweep] envs: unknown env {env!r}; allowed: {env_names()}")
    policies = list(overrides.agents or _str_list("[sweep] policies", sweep.get("policies")))
    pairs = [(env, policy) for env in envs for policy in policies if policy in policy_names(env)]
    for policy in policies:
        if not any(p == policy for _, p in pairs):
            raise SweepSpecError(f"[sweep] policies: {policy!r} is no policy of the envs "
                                 f"{envs}; allowed: {sorted(set().union(*map(policy_names, envs)))}")
    for env in envs:
        if not any(e == env for e, _ in pairs):
            raise SweepSpecError(f"[sweep] envs: env {env!r} takes none of the policies "
                                 f"{policies}; allowed: {policy_names(env)}")
    horizons = _horizons(sweep.get("horizons"))
    if not (math.isfinite(overrides.scale) and overrides.scale > 0):
        raise SweepSpecError(f"--scale = {overrides.scale!r}: give a number > 0")
    horizons = sorted({max(1, round(h * overrides.scale)) for h in horizons}) \
        if overrides.scale != 1.0 else horizons
    if overrides.steps is not None:
        horizons = [overrides.steps]
    seeds = overrides.seeds if overrides.seeds is not None else sweep.get("seeds", 1)
    env_shared, env_own = _params("[env_params]", data.get("env_params", {}), envs)
    policy_shared, policy_own = _params("[policy_params]", data.get("policy_params", {}), policies)
    runs = []
    for (env, policy), horizon in itertools.product(pairs, horizons):
        where = f"run {policy} on {env}, horizon {horizon}"
        try:
            config = BanditRunConfig(
                env=env, policy=policy, horizon=horizon, seeds=seeds, seed=sweep.get("seed", 0),
                env_params={**env_shared, **env_own.get(env, {})},
                policy_params={**policy_shared, **policy_own.get(policy, {})},
                grid=sweep.get("grid", "log"))
            build(config)
        except (ValueError, TypeError) as err:
            raise SweepSpecError(f"{where}: {err}") from None
        runs.append(PlannedRun(f"{policy}__{env}__T{horizon}", None, None, {}, config))
    return SweepPlan(name, source, (), (), tuple(_unique_ids(runs)),
                     str(sweep.get("description", "")), kind=BANDIT_KIND)


__all__ = ["expand"]
