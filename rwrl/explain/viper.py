"""VIPER: fit a surrogate to a teacher by weighted DAgger, keep its best iteration.

Bastani, Pu and Solar-Lezama, "Verifiable Reinforcement Learning via Policy
Extraction", NeurIPS 2018, Algorithm 1. Iteration 0 rolls out the teacher; every
later iteration rolls out the surrogate fitted last, so the data come to hold the
states the surrogate itself reaches. Every visited state is relabelled with the
teacher's action, all iterations' states are aggregated, weighted and refitted.

Weights. The paper weights a state by how much the action choice matters there,
l(s) = V(s) - min_a Q(s, a) (its eq. 2, for discrete actions). For continuous
actions the minimum over the action box is taken over ``candidates``, K actions
drawn uniformly from the box (shared by all states):

    w(s) = Q(s, pi(s)) - min_k Q(s, a_k),   clipped at 0, then scaled to mean 1,

with pi the teacher, so V(s) = Q(s, pi(s)) for a deterministic teacher
(:func:`q_gap_weights`). With no Q function the weights are all one: plain DAgger,
the paper's own ablation. ``rwrl explain`` uses the Q-gap weights by default,
with Q the run checkpoint's own critic (``rwrl.explain.critic``) and
K = :data:`Q_GAP_CANDIDATES` = 64 seeded uniform draws (:func:`q_gap_weigher`);
uniform weights are its named ablation (``--weights uniform``), and the default
for a run whose agent has no critic.

Choices the paper leaves open:

* The paper's beta-mixture of teacher and student in the rollouts is beta = 1 at
  iteration 0 and 0 after, as in its experiments.
* The best iteration: with a ``score`` (the mean return on validation episodes,
  as the paper picks the best policy by its reward), the highest score; without
  one, the highest R^2 on held-out teacher-visited states
  (``rwrl.explain.fidelity``), which needs no extra rollouts. Ties: the lower
  action error, then the earlier iteration. ``rwrl explain`` picks by return by
  default: on a cartpole checkpoint the most faithful iteration was always the
  first (plain behaviour cloning), whose tree returned far less than the teacher.
* The weights use the fit's states only; a state visited twice counts twice.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable, Optional

import numpy as np

from rwrl.explain.fidelity import Agreement, BatchedPolicy, action_agreement

#: obs (N, D), actions (N, A) -> Q values (N,).
QFunction = Callable[[np.ndarray, np.ndarray], np.ndarray]
#: states (N, D), teacher actions (N, A) -> weights (N,) >= 0.
Weigher = Callable[[np.ndarray, np.ndarray], np.ndarray]
#: (states (N, D), teacher actions (N, A), weights (N,)) -> a fitted policy.
Fitter = Callable[[np.ndarray, np.ndarray, np.ndarray], BatchedPolicy]
#: (policy, iteration) -> the states that policy visited (N, D).
Collector = Callable[[BatchedPolicy, int], np.ndarray]

#: K, the candidate actions the minimum over the action box is taken over: uniform draws,
#: so with one action dimension the best of them lies within about 2/K of the box's
#: true minimiser; each weighed state costs K + 1 critic evaluations.
Q_GAP_CANDIDATES = 64


def q_gaps(q: QFunction, obs: np.ndarray, teacher_actions: np.ndarray,
           candidates: np.ndarray) -> np.ndarray:
    """Return VIPER's gaps Q(s, pi(s)) - min_k Q(s, a_k), clipped at 0, unscaled, (N,) float64.

    Args: as :func:`q_gap_weights`.
    """
    obs, teacher_actions = np.asarray(obs), np.asarray(teacher_actions)
    candidates = np.asarray(candidates, np.float32)
    if candidates.ndim != 2 or len(candidates) == 0 or candidates.shape[1] != teacher_actions.shape[1]:
        raise ValueError(f"candidates {candidates.shape} must be (K >= 1, A = {teacher_actions.shape[1]})")
    n = len(obs)
    value = np.asarray(q(obs, teacher_actions), np.float64).reshape(n)
    tried = [np.asarray(q(obs, np.broadcast_to(a, teacher_actions.shape)), np.float64).reshape(n)
             for a in candidates]
    return np.maximum(value - np.min(tried, axis=0), 0.0)


def mean_one(gaps: np.ndarray) -> np.ndarray:
    """Return ``gaps`` (N,) >= 0 scaled to mean 1; all ones when they are all 0."""
    total = gaps.sum()
    return np.ones(len(gaps)) if total <= 0 else gaps * (len(gaps) / total)


def q_gap_weights(q: QFunction, obs: np.ndarray, teacher_actions: np.ndarray,
                  candidates: np.ndarray) -> np.ndarray:
    """Return VIPER's weights Q(s, pi(s)) - min_k Q(s, a_k), clipped at 0, mean 1.

    Args:
      q: the teacher's action-value function, batched.
      obs: states (N, D); teacher_actions: pi(s) there (N, A).
      candidates: (K, A) actions, K >= 1, tried at every state.

    Returns:
      (N,) weights; all ones when every gap is 0 (no state's action matters more).
    """
    return mean_one(q_gaps(q, obs, teacher_actions, candidates))


def q_gap_weigher(q: QFunction, low: np.ndarray, high: np.ndarray,
                  samples: int = Q_GAP_CANDIDATES, seed: int = 0) -> Weigher:
    """Return :func:`q_gap_weights` with ``samples`` candidates drawn uniformly in [low, high].

    The candidates are drawn once, from ``numpy.random.default_rng(seed)``. Each
    (state, teacher action) row's gap is computed once and remembered: VIPER
    re-weighs the whole aggregated data set every iteration, and ``rwrl explain``
    hands every surrogate the same first iteration, so most rows come back.
    """
    if samples < 1:
        raise ValueError(f"samples = {samples!r} must be >= 1")
    low, high = np.asarray(low, np.float32), np.asarray(high, np.float32)
    candidates = np.random.default_rng(seed).uniform(low, high, size=(samples, low.shape[0]))
    known: dict[bytes, float] = {}

    def weigh(obs: np.ndarray, actions: np.ndarray) -> np.ndarray:
        obs, actions = np.asarray(obs, np.float32), np.asarray(actions, np.float32)
        keys = [o.tobytes() + a.tobytes() for o, a in zip(obs, actions)]
        new = list({k: i for i, k in enumerate(keys) if k not in known}.values())  # one row per new key
        if new:
            for i, gap in zip(new, q_gaps(q, obs[new], actions[new], candidates)):
                known[keys[i]] = float(gap)
        return mean_one(np.array([known[k] for k in keys], np.float64))
    return weigh


def uniform_weights(obs: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """Return all-one weights: plain DAgger."""
    return np.ones(len(obs))


@dataclasses.dataclass(frozen=True)
class ViperResult:
    """The chosen surrogate and the record of every iteration.

    Attributes:
      policy: the surrogate of iteration ``best_iteration``.
      best_iteration: 0-based.
      agreements: per iteration, its action agreement on the held-out states.
      dataset_sizes: per iteration, the number of aggregated states it was fitted to.
      scores: per iteration, its score when the best was picked by one; else None.
    """

    policy: BatchedPolicy
    best_iteration: int
    agreements: list[Agreement]
    dataset_sizes: list[int]
    scores: Optional[list[float]] = None


def _rank(agreement: Agreement, iteration: int, score: float = 0.0) -> tuple[float, float, float, int]:
    r2 = agreement.r2 if math.isfinite(agreement.r2) else -math.inf
    return (-score, -r2, agreement.action_error, iteration)


def viper(teacher: BatchedPolicy, fit: Fitter, collect: Collector, held_out: np.ndarray,
          iterations: int = 4, weigh: Optional[Weigher] = None,
          score: Optional[Callable[[BatchedPolicy], float]] = None) -> ViperResult:
    """Fit ``iterations`` surrogates by weighted DAgger; return the best one.

    Args:
      teacher: the policy to explain.
      fit: fits a surrogate to (states, teacher actions, weights).
      collect: rolls a policy out; ``collect(policy, i)`` must use fresh seeds per i.
      held_out: teacher-visited states (M, D) never handed to ``fit``.
      iterations: number of fits, >= 1.
      weigh: per-state weights (:func:`q_gap_weigher`); None: uniform (plain DAgger).
      score: a surrogate's score, higher is better (its mean validation return); None:
        the best iteration is the most faithful one.
    """
    if iterations < 1:
        raise ValueError(f"iterations = {iterations!r} must be >= 1")
    weigh = weigh or uniform_weights
    held_actions = np.asarray(teacher(held_out))
    states, actions = [], []
    policies, agreements, sizes = [], [], []
    visitor = teacher
    for i in range(iterations):
        new = np.asarray(collect(visitor, i), np.float32)
        states.append(new)
        actions.append(np.asarray(teacher(new), np.float32))  # relabel: the teacher's action
        obs, act = np.concatenate(states), np.concatenate(actions)
        visitor = fit(obs, act, np.asarray(weigh(obs, act), np.float64))
        policies.append(visitor)
        agreements.append(action_agreement(held_actions, visitor(held_out)))
        sizes.append(len(obs))
    scores = [float(score(p)) for p in policies] if score is not None else [0.0] * iterations
    best = min(range(iterations), key=lambda i: _rank(agreements[i], i, scores[i]))
    return ViperResult(policies[best], best, agreements, sizes, scores if score is not None else None)


__all__ = ["Collector", "Fitter", "QFunction", "Q_GAP_CANDIDATES", "ViperResult", "Weigher", "mean_one",
           "q_gap_weigher", "q_gap_weights", "q_gaps", "uniform_weights", "viper"]
