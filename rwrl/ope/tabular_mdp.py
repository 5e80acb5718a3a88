"""Finite MDPs whose values are exact by linear algebra: the ground truth of the estimators' checks.

The off-policy estimators' tests and the max-ent paper benchmark
(``benchmarks/maxent_paper.py``) both need a small MDP with an exact answer:
the discounted value ``V_pi = (I - gamma P_pi)^-1 r_pi`` and the average reward
``rho_pi = d_pi . r_pi``, d_pi the stationary distribution of the chain of a
deterministic policy (a table of one action per state). Data drawn from it come
as the estimators' array API takes them: one-hot states (S,) and actions (A,).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from rwrl.ope.policy import Transitions


@dataclasses.dataclass(frozen=True)
class TabularMDP:
    """A finite MDP with the features the estimators are given.

    Attributes:
      p: (S, A, S) transition probabilities.
      r: (S, A) rewards (deterministic).
      phi: (S, A, d) features.
    """

    p: np.ndarray
    r: np.ndarray
    phi: np.ndarray

    def chain(self, table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return P_pi (S, S) and r_pi (S,) of the deterministic policy ``table`` (S,)."""
        rows = np.arange(len(table))
        return self.p[rows, table], self.r[rows, table]

    def stationary(self, table: np.ndarray) -> np.ndarray:
        """Return the stationary state distribution (S,): P_pi's left eigenvector for eigenvalue 1."""
        eigenvalues, vectors = np.linalg.eig(self.chain(table)[0].T)
        d = np.real(vectors[:, np.argmin(np.abs(eigenvalues - 1.0))])
        return d / d.sum()

    def average_reward(self, table: np.ndarray) -> float:
        return float(self.stationary(table) @ self.chain(table)[1])

    def discounted_values(self, table: np.ndarray, gamma: float) -> np.ndarray:
        """Return V_pi (S,) = (I - gamma P_pi)^-1 r_pi, by a linear solve."""
        p_pi, r_pi = self.chain(table)
        return np.linalg.solve(np.eye(len(r_pi)) - gamma * p_pi, r_pi)

    def sample(self, probs: np.ndarray, episodes: int, length: int, rng: np.random.Generator) -> Transitions:
        """Return ``episodes`` episodes of ``length`` steps under ``probs`` (S, A), one after another.

        Episodes start in a uniformly drawn state and only truncate (discount 1
        throughout); ``initial_obs`` holds each episode's start.
        """
        states, actions = self.r.shape
        s = rng.integers(0, states, size=episodes)
        starts, parts = s.copy(), []
        for _ in range(length):
            # min(): a cumulative sum that rounds below 1 must not draw an index past the last
            a = np.minimum((rng.uniform(size=episodes)[:, None] > np.cumsum(probs[s], axis=1)).sum(axis=1),
                           actions - 1)
            s_next = np.minimum((rng.uniform(size=episodes)[:, None] > np.cumsum(self.p[s, a], axis=1)).sum(axis=1),
                                states - 1)
            parts.append((s, a, s_next))
            s = s_next
        s, a, s_next = (np.stack(x, axis=1).reshape(-1) for x in zip(*parts))
        eye_s, eye_a = np.eye(states, dtype=np.float32), np.eye(actions, dtype=np.float32)
        return Transitions(obs=eye_s[s], actions=eye_a[a], rewards=self.r[s, a], next_obs=eye_s[s_next],
                           discounts=np.ones(len(s), np.float32), initial_obs=eye_s[starts])


def ring_mdp(rng: np.random.Generator, states: int = 6, slip: float = 0.2) -> TabularMDP:
    """Return ``states`` states on a ring, 2 actions (0 steps left, 1 right; the other way w.p. ``slip``).

    Rewards U(0, 1) per (s, a), drawn from ``rng``; features one-hot (s, a): a linear MDP.
    """
    p = np.zeros((states, 2, states))
    for s in range(states):
        left, right = (s - 1) % states, (s + 1) % states
        p[s, 0, left] += 1 - slip
        p[s, 0, right] += slip
        p[s, 1, right] += 1 - slip
        p[s, 1, left] += slip
    return TabularMDP(p, rng.uniform(size=(states, 2)), np.eye(states * 2).reshape(states, 2, -1))


def one_hot_state_action(obs: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """Return (N, S * A) one-hot (s, a) features of one-hot ``obs`` (N, S) and ``actions`` (N, A).

    A tabular MDP is linear in them: max-ent on these features is the certainty-equivalent model.
    """
    return (obs[:, :, None] * actions[:, None, :]).reshape(len(obs), -1)
