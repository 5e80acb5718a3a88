"""The maximum-entropy off-policy estimator of a policy's average reward.

Lazic, Yin, Farajtabar, Levine, Gorur, Harris and Schuurmans 2020, "A
maximum-entropy approach to off-policy evaluation in average-reward MDPs"
(NeurIPS), section on stationary-distribution estimation: the target policy's
stationary distribution over (s, a) is estimated as the maximum-entropy
distribution (relative to the data distribution) whose feature expectations are
stationary under the empirically fitted linear feature dynamics; it is an
exponential family with the features as sufficient statistics. The average reward
is the reward's mean under it.

The algorithm, with features phi(s, a) in R^d and the N dataset transitions i:

1. Linear feature dynamics (least squares, ridge ``ridge * N``):
   ``B = argmin_B sum_i |phi(s'_i, pi(s'_i)) - B^T phi(s_i, a_i)|^2``, so that
   ``E[phi(s', pi(s')) | s, a] ~= B^T phi(s, a)``.
2. Stationarity: for d_pi, (s, a) and (s', pi(s')) have the same law, so
   ``mu = E_d[phi] = B^T mu``, i.e. ``E_d[psi] = 0`` with ``psi(s, a) = phi - B^T phi``.
3. Maximum entropy: among distributions w over the data points, maximise
   ``-KL(w || uniform)`` subject to ``sum_i w_i psi_i = 0``. Its Lagrangian dual is
   the convex ``min_theta log mean_i exp(theta . psi_i) + (l2 / 2) |theta|^2``
   (``l2`` relaxes the constraint to ``|E_w[psi]| = l2 |theta|``; it keeps theta finite
   when the exact solution puts zero weight on some points), solved by L-BFGS; the
   solution is ``w_i ∝ exp(theta . psi_i) = exp(eta . phi_i)``, ``eta = (I - B) theta``:
   an exponential family in the features.
4. Estimate: ``rho = sum_i w_i r_i``, the average reward per step.

What the paper's text leaves to the implementation (its full text was not at hand
here; the steps above follow its abstract and the method's description in this
project's issue, so check them against the paper before relying on details):

* Features (default): ``RandomFourierFeatures``: the observation and action are
  concatenated and standardised by the data's mean and standard deviation, then
  mapped to ``sqrt(2 / F) cos(x W + b)``, W ~ N(0, 1 / bandwidth^2), b ~ U[0, 2 pi),
  plus a constant feature (so ``sum_i w_i = 1`` is among the matched moments);
  bandwidth: the median distance between 1,000 standardised data points (the median
  heuristic). Any ``features(obs, actions) -> (N, d)`` may be passed instead (the
  tests use one-hot (s, a) features, for which the estimator is exact in the limit
  of data).
* Size: at most ``max_transitions`` (default 200,000) transitions, a seeded uniform
  subsample of larger datasets, enter the fit (memory is N x d float64 per array).
* Terminations: the average-reward setting has none (the suite's episodes only
  truncate); transitions with ``discount == 0`` are left out of the dynamics fit and
  kept in the reweighting.
* Scale: ``rho`` is per step. rwrl.ope.evaluate puts it on the scale of a discounted
  T-step value as ``rho * (1 - gamma**T) / (1 - gamma)``: exact when the episode
  starts from the stationary distribution, biased by the initial transient otherwise.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, NamedTuple

import numpy as np

from rwrl.ope.policy import Transitions, apply_policy

FeatureMap = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (N, D), (N, A) -> (N, d)


@dataclasses.dataclass(frozen=True)
class MaxEntConfig:
    """Hyperparameters of the maximum-entropy estimator."""

    #: random Fourier features (the constant feature comes on top).
    num_features: int = 256
    #: kernel bandwidth in standardised units; None: the median heuristic.
    bandwidth: float | None = None
    #: ridge of the least-squares dynamics fit, per transition.
    ridge: float = 1e-4
    #: L2 weight on theta in the dual (constraint relaxation).
    l2: float = 1e-5
    #: L-BFGS iterations at most.
    max_iterations: int = 500
    #: transitions used at most (a seeded uniform subsample beyond; bounds memory at
    #: N x d float64, 0.4 GB per array at the defaults); None: all.
    max_transitions: int | None = 200_000

    def __post_init__(self):
        if self.num_features < 1:
            raise ValueError(f"num_features must be >= 1, got {self.num_features!r}")
        if self.bandwidth is not None and not self.bandwidth > 0:
            raise ValueError(f"bandwidth must be > 0, got {self.bandwidth!r}")
        if self.max_transitions is not None and self.max_transitions < 2:
            raise ValueError(f"max_transitions must be >= 2 or None, got {self.max_transitions!r}")
        for field in ("ridge", "l2"):
            if not getattr(self, field) >= 0:
                raise ValueError(f"{field} must be >= 0, got {getattr(self, field)!r}")


class RandomFourierFeatures:
    """Random Fourier features of standardised (obs, action), plus a constant; see the module doc.

    Args:
      obs: (N, D) observations the standardisation and bandwidth are fitted on.
      actions: (N, A) actions, likewise.
      num_features: F random features.
      bandwidth: kernel bandwidth; None: median pairwise distance of 1,000 points.
      seed: seed of W, b and the subsample.
    """

    def __init__(self, obs: np.ndarray, actions: np.ndarray, num_features: int,
                 bandwidth: float | None = None, seed: int = 0):
        x = np.concatenate([obs, actions], axis=1).astype(np.float64)
        self.mean, self.std = x.mean(axis=0), np.maximum(x.std(axis=0), 1e-6)
        rng = np.random.default_rng(seed)
        if bandwidth is None:
            sample = (x[rng.choice(len(x), size=min(len(x), 1000), replace=False)] - self.mean) / self.std
            distances = np.sqrt(((sample[:, None] - sample[None]) ** 2).sum(-1))
            bandwidth = float(np.median(distances[np.triu_indices(len(sample), 1)])) or 1.0
        self.bandwidth = bandwidth
        self.w = rng.normal(0.0, 1.0 / bandwidth, size=(x.shape[1], num_features))
        self.b = rng.uniform(0.0, 2 * np.pi, size=num_features)

    def __call__(self, obs: np.ndarray, actions: np.ndarray) -> np.ndarray:
        x = (np.concatenate([obs, actions], axis=1) - self.mean) / self.std
        phi = np.sqrt(2.0 / self.w.shape[1]) * np.cos(x @ self.w + self.b)
        return np.concatenate([phi, np.ones((len(x), 1))], axis=1)


class MaxEntResult(NamedTuple):
    """The estimate and the fitted model.

    Attributes:
      average_reward: rho, the estimated reward per step under the policy.
      weights: (N,) the estimated stationary distribution over the transitions (sums to 1).
      theta: (d,) the dual solution.
      constraint_residual: |sum_i w_i psi_i|, how far from stationary the fit is.
      effective_sample_size: 1 / sum_i w_i^2, in transitions.
    """

    average_reward: float
    weights: np.ndarray
    theta: np.ndarray
    constraint_residual: float
    effective_sample_size: float


def fit_feature_dynamics(phi: np.ndarray, next_phi: np.ndarray, ridge: float) -> np.ndarray:
    """Return (d, d) B minimising |phi B - next_phi|^2 + ridge * N |B|^2 (step 1)."""
    gram = phi.T @ phi + ridge * len(phi) * np.eye(phi.shape[1])
    return np.linalg.solve(gram, phi.T @ next_phi)


def solve_dual(psi: np.ndarray, l2: float, max_iterations: int) -> np.ndarray:
    """Return theta minimising log mean_i exp(theta . psi_i) + l2/2 |theta|^2 (step 3)."""
    from scipy.optimize import minimize
    from scipy.special import logsumexp, softmax

    def dual(theta):
        logits = psi @ theta
        w = softmax(logits)
        value = logsumexp(logits) - np.log(len(psi)) + 0.5 * l2 * theta @ theta
        return value, psi.T @ w + l2 * theta

    result = minimize(dual, np.zeros(psi.shape[1]), jac=True, method="L-BFGS-B",
                      options={"maxiter": max_iterations, "gtol": 1e-9, "ftol": 1e-13})
    return result.x


def subsample(data: Transitions, size: int | None, seed: int) -> Transitions:
    """Return at most ``size`` transitions drawn uniformly without replacement (seeded)."""
    if size is None or len(data.obs) <= size:
        return data
    idx = np.sort(np.random.default_rng(seed).choice(len(data.obs), size=size, replace=False))
    return Transitions(data.obs[idx], data.actions[idx], data.rewards[idx], data.next_obs[idx],
                       data.discounts[idx], data.initial_obs)


def maxent_average_reward(policy, data: Transitions, config: MaxEntConfig = MaxEntConfig(), *,
                          features: FeatureMap | None = None, seed: int = 0) -> MaxEntResult:
    """Estimate the average reward per step of ``policy`` from ``data`` (steps 1 to 4).

    Args:
      policy: deterministic ``obs (B, D) -> actions (B, A)`` (rwrl.ope.policy.Policy).
      data: the dataset's transitions (``initial_obs`` is not used: the stationary
        distribution does not depend on where episodes start).
      config: hyperparameters.
      features: ``phi(obs, actions) -> (N, d)``; None: RandomFourierFeatures fitted on the data.
      seed: seed of the random features.
    """
    from scipy.special import softmax

    data = subsample(data, config.max_transitions, seed)
    if features is None:
        features = RandomFourierFeatures(data.obs, data.actions, config.num_features,
                                         config.bandwidth, seed)
    phi = np.asarray(features(data.obs, data.actions), dtype=np.float64)
    next_phi = np.asarray(features(data.next_obs, apply_policy(policy, data.next_obs)), dtype=np.float64)
    alive = np.asarray(data.discounts) > 0
    b = fit_feature_dynamics(phi[alive], next_phi[alive], config.ridge)
    psi = phi - phi @ b
    theta = solve_dual(psi, config.l2, config.max_iterations)
    w = softmax(psi @ theta)
    return MaxEntResult(
        average_reward=float(w @ np.asarray(data.rewards, dtype=np.float64)),
        weights=w,
        theta=theta,
        constraint_residual=float(np.linalg.norm(psi.T @ w)),
        effective_sample_size=float(1.0 / np.sum(w * w)),
    )
