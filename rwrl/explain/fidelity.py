"""How faithful a surrogate is to its teacher: action agreement and return.

Two measures, both reported beside each other because neither implies the other
(a surrogate can copy the teacher closely on the states the teacher visits and
still drift, once it controls, to states where it does not):

* Action agreement, on held-out teacher-visited states S (states of teacher
  episodes whose seeds the fit never saw), teacher actions a, surrogate actions â:
  - ``r2``: 1 - sum ||a - â||^2 / sum ||a - mean(a)||^2, pooled over all action
    dimensions (the fraction of the teacher's action variance the surrogate
    explains; 1 is exact agreement, 0 is no better than the mean action, it can
    be negative). If the teacher's action is constant on S it is 1.0 when â equals
    it and NaN otherwise.
  - ``action_error``: mean over S and action dimensions of |a - â|, in the env's
    action units (for actions in [-1, 1], 0.1 is 5% of the range).
* Return: the surrogate's own undiscounted episode return when it is the
  controller, from ``episodes`` seeded resets of the task's vector env, beside the
  teacher's return from the same seeds (:func:`rollout`).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import numpy as np

#: obs (N, D) -> actions (N, A) in the env's action units.
BatchedPolicy = Callable[[np.ndarray], np.ndarray]


@dataclasses.dataclass(frozen=True)
class Agreement:
    """Action agreement on a state set (see the module docstring)."""

    r2: float
    action_error: float


def action_agreement(teacher_actions: np.ndarray, surrogate_actions: np.ndarray) -> Agreement:
    """Return the pooled R^2 and mean absolute error of ``surrogate_actions`` (N, A)."""
    a = np.asarray(teacher_actions, np.float64)
    b = np.asarray(surrogate_actions, np.float64)
    if a.shape != b.shape or a.ndim != 2 or len(a) == 0:
        raise ValueError(f"teacher actions {a.shape} and surrogate actions {b.shape} must be one (N, A)")
    sse = float(np.sum((a - b) ** 2))
    sst = float(np.sum((a - a.mean(axis=0)) ** 2))
    if sst == 0.0:
        r2 = 1.0 if sse == 0.0 else float("nan")
    else:
        r2 = 1.0 - sse / sst
    return Agreement(r2, float(np.mean(np.abs(a - b))))


def clipped(policy: BatchedPolicy, low: np.ndarray, high: np.ndarray) -> BatchedPolicy:
    """Return ``policy`` with its actions clipped to [low, high] (a linear map can leave them)."""
    low, high = np.asarray(low, np.float32), np.asarray(high, np.float32)
    return lambda obs: np.clip(np.asarray(policy(obs), np.float32), low, high)


@dataclasses.dataclass(frozen=True)
class Rollout:
    """Episodes of one policy: the states it acted in (N, D) and the (E,) returns."""

    states: np.ndarray
    returns: np.ndarray


def rollout(env: Any, policy: BatchedPolicy, seeds: list[int]) -> Rollout:
    """Run one episode per seed in ``env`` (an rwrl vector env of ``len(seeds)`` envs).

    Returns the states each action was chosen in (every episode's steps 0 .. length-1,
    concatenated in episode order) and the episode returns. Actions are clipped to the
    env's action bounds.
    """
    from rwrl.datasets.episodes import run_episodes

    space = env.single_action_space
    episodes = run_episodes(env, clipped(policy, space.low, space.high), seeds)
    states = [episodes.observations[e, :n] for e, n in enumerate(episodes.lengths)]
    return Rollout(np.concatenate(states).astype(np.float32), episodes.returns())


__all__ = ["Agreement", "BatchedPolicy", "Rollout", "action_agreement", "clipped", "rollout"]
