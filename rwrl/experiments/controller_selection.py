"""Choosing among frozen controllers while the plant drifts: a bandit whose arms are controllers.

Issue 26, part 4: a use of the bandits inside the suite. K frozen controllers
(policies of ``rwrl run`` checkpoints, e.g. trained at different pole lengths)
are the arms; an episode is a pull; the reward is the episode's return divided
by its length (the suite's per-step rewards lie in [0, 1], so the reward does
too). The plant drifts under one of the perturbation schedulers
(``perturb_spec``, e.g. ``drift_pos`` on cartpole's pole length), so each
controller's mean return changes from episode to episode whatever is pulled:
the arms are restless (they rot or improve with time, not with pulls), which is
not the rested setting the rotting-bandits paper analyses; SWA is run here as
the paper's method applied outside its assumptions, beside UCB1.

Full information at the cost of K times the episodes: every one of the N
instances runs K copies of its env, all reset with the instance's seed, so the
K copies meet the same initial states and the same perturbation sequence (the
draws of both come from the env's seeded generators, not from the actions).
Copy k runs controller k. The bandit of instance n sees only the return of the
copy it chose; the others give the realised oracle: the regret of episode t
is max_k G[t, n, k] - G[t, n, chosen] (returns, not expected returns: the
means of a drifting plant are not known), and it is never negative.

Since the pulls do not change the plants, the K copies' returns are recorded
once (``record_returns``) and any number of bandits replay them
(``play``): each sees exactly what it would have seen had it chosen online,
and all are compared on the same plants.

The env must end every episode at its time limit (the suite's tasks without
early termination, e.g. cartpole-swingup); an episode that ends early is
refused with an error, since the copies would then fall out of step.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Sequence

import numpy as np

from rwrl.bandits.policies import Policy, make_policy
from rwrl.core.seeding import spawn_seeds

BatchedPolicy = Callable[[np.ndarray], np.ndarray]


@dataclasses.dataclass(frozen=True)
class ControllerReturns:
    """Every controller's return per episode t and instance n, and the drifting parameter.

    Attributes:
      returns: (T, N, K) controller k's return in episode t of instance n (its copy of the env).
      parameter: (T, N) the perturbed parameter's value in episode t (NaN without one).
      steps: the episodes' length (a return / steps lies in the per-step reward's range).
    """

    returns: np.ndarray
    parameter: np.ndarray
    steps: int


@dataclasses.dataclass(frozen=True)
class SelectionResult:
    """A bandit's pulls over recorded controller returns.

    Attributes:
      chosen: (T, N) the controller pulled in each episode.
      record: the returns it chose among.
    """

    chosen: np.ndarray
    record: ControllerReturns

    def rewards(self) -> np.ndarray:
        """(T, N) the returns of the pulled controllers."""
        return np.take_along_axis(self.record.returns, self.chosen[..., None], axis=2)[..., 0]

    def regret(self) -> np.ndarray:
        """(T, N) cumulative regret against the best controller of each episode (returns)."""
        return np.cumsum(self.record.returns.max(axis=2) - self.rewards(), axis=0)


def record_returns(controllers: Sequence[BatchedPolicy], env_id: str, env_kwargs: dict[str, Any],
                   episodes: int, instances: int, seed: int = 0,
                   progress: Callable[[int], None] | None = None) -> ControllerReturns:
    """Run every controller in its own copy of each of ``instances`` drifting plants for ``episodes``.

    Args:
      controllers: K batched policies ``obs (B, D) -> actions (B, A)`` in the env's action units.
      env_id, env_kwargs: the rwrl Gymnasium id and ``make_vec`` arguments (the drift's
        ``perturb_spec`` among them).
      instances: N; instance n's plant (all K copies) is seeded with ``spawn_seeds(seed, N)[n]``.
      progress: called with the episodes done after each episode.
    """
    import gymnasium

    import rwrl  # noqa: F401  (registers the ids)
    if len(controllers) < 2:
        raise ValueError(f"controllers: {len(controllers)} given, a choice needs at least 2")
    if episodes < len(controllers):
        raise ValueError(f"episodes={episodes!r}: must be >= the {len(controllers)} controllers")
    env = gymnasium.make_vec(env_id, num_envs=instances * len(controllers), **env_kwargs)
    try:
        return _record(env, controllers, episodes, instances, seed, progress)
    finally:
        env.close()


def _record(env: Any, controllers: Sequence[BatchedPolicy], episodes: int, instances: int, seed: int,
            progress: Callable[[int], None] | None) -> ControllerReturns:
    k, steps = len(controllers), int(env.unwrapped.time_limit)
    copies = [np.arange(i, instances * k, k) for i in range(k)]  # env j: instance j // K, controller j % K
    obs, info = env.reset(seed=[int(s) for s in np.repeat(spawn_seeds(seed, instances), k)])
    actions = np.zeros((instances * k,) + env.single_action_space.shape, np.float32)
    returns = np.zeros((episodes, instances, k))
    parameter = np.full((episodes, instances), np.nan)
    for t in range(episodes):
        parameter[t] = _parameter(info)[::k]
        total = np.zeros(instances * k)
        for step in range(steps):
            for controller, envs in zip(controllers, copies):
                actions[envs] = controller(np.asarray(obs[envs], np.float32))
            obs, reward, terminated, truncated, info = env.step(actions)
            total += reward
            ended = terminated | truncated
            if ended.any() and (step < steps - 1 or not ended.all()):
                raise ValueError(f"an episode ended at step {step + 1} of {steps}: controller "
                                 "selection needs episodes that all end at the time limit")
        obs, _, _, _, info = env.step(np.zeros_like(actions))  # the autoreset step (NEXT_STEP)
        returns[t] = total.reshape(instances, k)
        if progress is not None:
            progress(t + 1)
    return ControllerReturns(returns, parameter, steps)


def play(record: ControllerReturns, policy: str | Policy, seed: int = 0, **policy_params: Any) -> SelectionResult:
    """Let a bandit choose a controller per episode and instance; it sees return / steps of its pull.

    ``policy``: a name of ``rwrl.bandits.POLICIES`` (made with horizon T and
    ``policy_params``) or a policy object; reset for N instances and K arms with ``seed``.
    """
    episodes, instances, k = record.returns.shape
    bandit = make_policy(policy, horizon=episodes, **policy_params) if isinstance(policy, str) else policy
    bandit.reset(instances, k, seed)
    chosen = np.zeros((episodes, instances), np.int64)
    for t in range(episodes):
        chosen[t] = bandit.select()
        bandit.update(chosen[t], record.returns[t][np.arange(instances), chosen[t]] / record.steps)
    return SelectionResult(chosen, record)


def _parameter(info: dict[str, Any]) -> np.ndarray:
    """The perturbed parameter's values (N*K,) from a reset's info; NaN without a perturbation."""
    values = list((info.get("perturbation") or {}).values())
    if not values:
        return np.full(len(info["cost"]), np.nan)
    return np.asarray(values[0], float)


__all__ = ["ControllerReturns", "SelectionResult", "play", "record_returns"]
