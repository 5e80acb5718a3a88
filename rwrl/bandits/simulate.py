"""Run a policy on a batch of bandit instances and return its regret curves.

Regret is the paper's policy regret (Levine et al. 2017, Eq. 2) per trajectory: the
oracle's cumulative expected reward minus the policy's, both summed from the means of
the arms pulled (no noise), R(t) = Σ_{s<=t} µ_{pi*(s)} - Σ_{s<=t} µ_{pi(s)}. On a rested
instance the oracle is pi^max (Eq. 3); under Assumption 2.1 its first t rewards are the
t largest means of all arms, so R(t) >= 0 at every t. Restless: the best arm of each round.

One Python loop over rounds; every round is a few numpy operations on the N instances.

Example:
  >>> curves = run("rested-step", "ucb1", horizon=100, seed=0, num_instances=2)
  >>> curves.regret.shape, bool((curves.regret >= 0).all())
  ((2, 100), True)
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

from rwrl.bandits.common import check_count, instance_seeds
from rwrl.bandits.policies import Policy, make_policy
from rwrl.bandits.rotting import RottingBandit, make_env


@dataclasses.dataclass(frozen=True)
class RegretCurves:
    """Regret of N trajectories, recorded at the rounds ``steps``.

    Attributes:
      steps: (G,) rounds t (1-based, increasing) at which the regret was recorded.
      regret: (N, G) cumulative regret R(t) of each trajectory.
      oracle_value: (N,) the oracle's cumulative expected reward at the horizon.
      policy_value: (N,) the policy's cumulative expected reward at the horizon.
      pulls: (N, K) the policy's pulls of each arm over the run.
      rewards: (N, G) expected reward µ_{pi(t)} of the policy's pull in round t (no
        noise), or None unless ``run(..., record_values=True)``.
      policy_values: (N, G) the policy's cumulative expected reward up to round t, or None.
      oracle_values: (N, G) the oracle's cumulative expected reward up to round t, or None
        (regret = oracle_values - policy_values, as computed).
    """

    steps: np.ndarray
    regret: np.ndarray
    oracle_value: np.ndarray
    policy_value: np.ndarray
    pulls: np.ndarray
    rewards: np.ndarray | None = None
    policy_values: np.ndarray | None = None
    oracle_values: np.ndarray | None = None

    def mean(self) -> np.ndarray:
        """Return the (G,) regret averaged over trajectories (the paper's Fig. 1 curve)."""
        return self.regret.mean(axis=0)


def log_grid(horizon: int, num: int = 50) -> np.ndarray:
    """Return up to ``num`` distinct rounds from 1 to ``horizon``, log-spaced, both ends kept."""
    horizon, num = check_count("horizon", horizon), check_count("num", num)
    return np.unique(np.geomspace(1, horizon, num).round().astype(np.int64))


def run(env: RottingBandit | str, policy: Policy | str, horizon: int, seed=0,
        steps: np.ndarray | None = None, num_instances: int = 1,
        record_values: bool = False,
        progress: Callable[[int], None] | None = None) -> RegretCurves:
    """Play ``policy`` on ``env`` for ``horizon`` rounds; return the regret curves.

    Args:
      env: a bandit, or a name of ``ENVS`` (then ``num_instances`` sets N).
      policy: a policy, or a name of ``POLICIES`` (made with this horizon).
      horizon: T, at least the number of arms K.
      seed: an int (instance i's env and policy get ``spawn_seeds(seed, N)[i]``, on
        their own named streams), a list of N seeds, or None.
      steps: rounds in [1, T] at which to record R(t) (``log_grid``); None: every round.
      num_instances: N when ``env`` is a name.
      record_values: also record, at ``steps``, each round's expected reward and the
        policy's and the oracle's cumulative expected rewards (``RegretCurves.rewards``,
        ``policy_values``, ``oracle_values``).
      progress: called with the rounds played, about every 1 % of the horizon and at T.
    """
    if isinstance(env, str):
        env = make_env(env, num_instances=num_instances)
    horizon = check_count("horizon", horizon)
    if horizon < env.num_arms:
        raise ValueError(f"horizon = {horizon} is shorter than the number of arms "
                         f"K = {env.num_arms}: allowed horizon >= K")
    if isinstance(policy, str):
        policy = make_policy(policy, horizon=horizon)
    steps = _check_steps(steps, horizon)
    seeds = instance_seeds(seed, env.num_instances)
    env.reset(seeds)
    policy.reset(env.num_instances, env.num_arms, seeds)
    oracle = env.oracle()
    record = np.full(horizon + 1, -1, np.int64)
    record[steps] = np.arange(steps.size)
    regret = np.empty((steps.size, env.num_instances))
    values = np.empty((3, steps.size, env.num_instances)) if record_values else None
    policy_value = np.zeros(env.num_instances)
    oracle_value = np.zeros(env.num_instances)
    stride = max(1, horizon // 100)
    for t in range(1, horizon + 1):
        arms = policy.select()
        policy.update(arms, env.pull(arms))
        policy_value += env.last_means
        oracle_value += oracle.next()
        if record[t] >= 0:
            np.subtract(oracle_value, policy_value, out=regret[record[t]])
            if values is not None:
                values[:, record[t]] = env.last_means, policy_value, oracle_value
        if progress is not None and (t % stride == 0 or t == horizon):
            progress(t)
    recorded = (None,) * 3 if values is None else tuple(v.T.copy() for v in values)
    return RegretCurves(steps, regret.T.copy(), oracle_value, policy_value, env.pulls.copy(),
                        *recorded)


def _check_steps(steps, horizon: int) -> np.ndarray:
    if steps is None:
        return np.arange(1, horizon + 1)
    array = np.asarray(steps)
    if (array.ndim != 1 or array.size == 0 or array.dtype.kind not in "iu"
            or np.any(np.diff(array) <= 0) or array[0] < 1 or array[-1] > horizon):
        raise ValueError(f"steps = {steps!r} is not allowed: increasing ints in [1, "
                         f"horizon={horizon}]")
    return array.astype(np.int64)
