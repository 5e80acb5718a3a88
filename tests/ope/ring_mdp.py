"""A small ring MDP whose discounted values and average rewards are exact by linear algebra.

S states on a ring, 2 actions (0: step left, 1: step right); the step goes the
other way with probability ``slip``. Rewards r(s, a) in [0, 1], deterministic.
Observations are one-hot states (S,), actions one-hot (2,), as the estimators'
array API takes them.
"""

from __future__ import annotations

import numpy as np

from rwrl.ope.policy import NamedPolicy, Transitions

S, A = 6, 2


def transition_matrix(slip: float = 0.2) -> np.ndarray:
    """Return P[s, a, s'] (S, A, S)."""
    p = np.zeros((S, A, S))
    for s in range(S):
        left, right = (s - 1) % S, (s + 1) % S
        p[s, 0, left] += 1 - slip
        p[s, 0, right] += slip
        p[s, 1, right] += 1 - slip
        p[s, 1, left] += slip
    return p


REWARDS = np.random.default_rng(0).uniform(size=(S, A))
P = transition_matrix()


def table_policy(table, name: str = "target") -> NamedPolicy:
    """Return the deterministic policy s -> table[s] on one-hot observations, one-hot actions."""
    table = np.asarray(table)
    return NamedPolicy(name, lambda obs: np.eye(A, dtype=np.float32)[table[np.argmax(obs, axis=1)]])


def discounted_values(table, gamma: float) -> np.ndarray:
    """Return V_pi (S,) = (I - gamma P_pi)^{-1} r_pi."""
    p_pi = P[np.arange(S), table]
    return np.linalg.solve(np.eye(S) - gamma * p_pi, REWARDS[np.arange(S), table])


def average_reward(table) -> float:
    """Return d_pi . r_pi, d_pi the stationary distribution of P_pi (left eigenvector for 1)."""
    p_pi = P[np.arange(S), table]
    eigenvalues, vectors = np.linalg.eig(p_pi.T)
    d = np.real(vectors[:, np.argmin(np.abs(eigenvalues - 1))])
    return float((d / d.sum()) @ REWARDS[np.arange(S), table])


def dataset(behaviour: np.ndarray, episodes: int, length: int, seed: int = 0) -> Transitions:
    """Return transitions of ``episodes`` episodes of ``length`` steps under ``behaviour`` (S, A).

    Episodes start in a uniformly drawn state and only truncate (discount 1 throughout).
    """
    rng = np.random.default_rng(seed)
    eye_s, eye_a = np.eye(S, dtype=np.float32), np.eye(A, dtype=np.float32)
    s = rng.integers(0, S, size=episodes)
    starts, states, actions, rewards, next_states = s.copy(), [], [], [], []
    for _ in range(length):
        a = (rng.uniform(size=episodes)[:, None] > np.cumsum(behaviour[s], axis=1)).sum(axis=1)
        s_next = (rng.uniform(size=episodes)[:, None] > np.cumsum(P[s, a], axis=1)).sum(axis=1)
        states.append(s), actions.append(a), rewards.append(REWARDS[s, a]), next_states.append(s_next)
        s = s_next
    states, actions, next_states = (np.concatenate(x) for x in (states, actions, next_states))
    return Transitions(obs=eye_s[states], actions=eye_a[actions], rewards=np.concatenate(rewards),
                       next_obs=eye_s[next_states], discounts=np.ones(len(states), np.float32),
                       initial_obs=eye_s[starts])


def one_hot_state_action(obs: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """Return (N, S * A) one-hot (s, a) features: a linear MDP's exact features."""
    return (obs[:, :, None] * actions[:, None, :]).reshape(len(obs), -1)
