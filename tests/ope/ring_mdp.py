"""The estimators' test MDP: rwrl.ope.tabular_mdp's 6-state ring, with the names the tests use.

S states on a ring, 2 actions (0: step left, 1: step right); the step goes the
other way with probability ``slip`` (0.2). Rewards r(s, a) in [0, 1],
deterministic. Observations are one-hot states (S,), actions one-hot (2,).
"""

from __future__ import annotations

import numpy as np

from rwrl.ope.policy import NamedPolicy, Transitions
from rwrl.ope.tabular_mdp import one_hot_state_action, ring_mdp  # noqa: F401 (the tests take it from here)

RING = ring_mdp(np.random.default_rng(0))
S, A = RING.r.shape
REWARDS, P = RING.r, RING.p


def table_policy(table, name: str = "target") -> NamedPolicy:
    """Return the deterministic policy s -> table[s] on one-hot observations, one-hot actions."""
    table = np.asarray(table)
    return NamedPolicy(name, lambda obs: np.eye(A, dtype=np.float32)[table[np.argmax(obs, axis=1)]])


def discounted_values(table, gamma: float) -> np.ndarray:
    return RING.discounted_values(np.asarray(table), gamma)


def average_reward(table) -> float:
    return RING.average_reward(np.asarray(table))


def dataset(behaviour: np.ndarray, episodes: int, length: int, seed: int = 0) -> Transitions:
    """Return ``episodes`` episodes of ``length`` steps under ``behaviour`` (S, A) (TabularMDP.sample)."""
    return RING.sample(behaviour, episodes, length, np.random.default_rng(seed))

