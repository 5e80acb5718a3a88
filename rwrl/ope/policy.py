"""What off-policy evaluation needs of a policy, and the dataset arrays it reads.

A policy is any callable ``obs (B, D) -> actions (B, A)`` with a ``name``:
deterministic (the same observation always gives the same action), numpy or JAX
inside, numpy-compatible out. The behaviour-policy snapshots (rwrl.datasets) are
loaded as such callables; the estimators apply each policy once to every
observation they need (``apply_policy``), so a policy need not be jit-compatible.

Shape convention (all of ``rwrl.ope``): N transitions, M initial states, D
observation size, A action size.
"""

from __future__ import annotations

import dataclasses
from typing import Protocol, runtime_checkable

import numpy as np

#: observations per policy call when a whole dataset is labelled (bounds memory).
DEFAULT_CHUNK = 65_536


@runtime_checkable
class Policy(Protocol):
    """A deterministic batched policy: ``policy(obs (B, D)) -> actions (B, A)``."""

    name: str

    def __call__(self, obs: np.ndarray) -> np.ndarray: ...


@dataclasses.dataclass(frozen=True)
class NamedPolicy:
    """Give a plain function the ``name`` the ``Policy`` protocol asks for."""

    name: str
    function: object

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        return self.function(obs)


@dataclasses.dataclass(frozen=True)
class Transitions:
    """A dataset's transitions as plain arrays (how they were stored does not matter here).

    Attributes:
      obs: (N, D) float, the observation s_t the action was taken in.
      actions: (N, A) float, the behaviour action a_t.
      rewards: (N,) float, r_{t+1}.
      next_obs: (N, D) float, s_{t+1}.
      discounts: (N,) float in {0, 1}: 0 where s_{t+1} is terminal (no bootstrap), 1
        otherwise, truncation included (a time limit is not the end of the process).
      initial_obs: (M, D) float, the first observation of every episode.
    """

    obs: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    next_obs: np.ndarray
    discounts: np.ndarray
    initial_obs: np.ndarray

    def __post_init__(self):
        n = len(self.obs)
        for field in ("actions", "rewards", "next_obs", "discounts"):
            if len(getattr(self, field)) != n:
                raise ValueError(f"{field}: {len(getattr(self, field))} rows, obs has {n}")
        if n == 0:
            raise ValueError("obs: no transitions")
        if self.obs.ndim != 2 or self.next_obs.shape != self.obs.shape or self.actions.ndim != 2:
            raise ValueError(f"obs/next_obs must be (N, D) and actions (N, A), got {self.obs.shape}, "
                             f"{self.next_obs.shape}, {self.actions.shape}")
        if self.initial_obs.ndim != 2 or self.initial_obs.shape[1] != self.obs.shape[1] or \
                len(self.initial_obs) == 0:
            raise ValueError(f"initial_obs must be (M >= 1, {self.obs.shape[1]}), "
                             f"got {self.initial_obs.shape}")


def apply_policy(policy, obs: np.ndarray, chunk: int = DEFAULT_CHUNK) -> np.ndarray:
    """Return ``policy(obs)`` as (N, A) float32, called on at most ``chunk`` rows at a time."""
    parts = [np.asarray(policy(obs[i:i + chunk]), dtype=np.float32) for i in range(0, len(obs), chunk)]
    actions = np.concatenate(parts, axis=0)
    if actions.ndim != 2 or len(actions) != len(obs):
        raise ValueError(f"policy {getattr(policy, 'name', policy)!r} returned shape {actions.shape} "
                         f"for {len(obs)} observations; expected (N, A)")
    return actions
