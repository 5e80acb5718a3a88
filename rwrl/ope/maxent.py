"""The maximum-entropy off-policy estimator of a policy's average reward (Lazic et al. 2020).

Lazic, Yin, Farajtabar, Levine, Gorur, Harris and Schuurmans, "A maximum-entropy
approach to off-policy evaluation in average-reward MDPs", NeurIPS 2020
(arXiv 2006.12620: the number the stored copies give this title; not 2006.12334).

What was read, and where (searched 2026-12; tags as in shared/papers/PAPERS.md):

* [A] the abstract (NeurIPS proceedings page ``papers.nips.cc/paper/2020/hash/
  9308b0d6e5898366a4a986bc33f3d3e7-Abstract.html``; the stored ar5iv copy
  ``ar5iv.labs.arxiv.org/html/2006.12620`` gives only the title, the abstract and the
  introduction's first sentences): infinite-horizon undiscounted MDPs; for ergodic
  linear MDPs (rewards and dynamics linear in known features) a finite-sample OPE
  bound; "when the feature dynamics are approximately linear and for arbitrary
  rewards", the stationary distribution is "the maximum-entropy distribution subject
  to matching feature expectations under empirical dynamics", "an exponential-family
  distribution whose sufficient statistics are the features".
* [Sup] the supplement's opening sentences (``aitopics.org/doc/conferences:2B195D8C``):
  appendix A, "Off-policy evaluation dual objective: we formulate the estimation of
  the stationary state distribution µ"; the error analysis follows Abbasi-Yadkori et
  al., is done "for finite-state Markov chains", and uses the Davis-Kahan theorem (an
  eigenvector perturbation bound). No equation of the supplement was readable.
* [S] the meta-review (``.../9308b0d6e5898366a4a986bc33f3d3e7-MetaReview.html``): the
  estimation procedure (the paper's Eq. 11-12) "is highly similar to LSTD"; max-ent
  "helps with empirical performance" but is not needed for the core theory; the bound
  assumes the target policy also induces an exploratory distribution (line 118) and is
  not adaptive to target-behaviour closeness. Review 1 (via PAPERS.md): "two synthetic
  domains and three benchmark problems". A claims digest in a public GitHub file tags
  2006.12620: "for off-policy evaluation, the method uses a least-squares estimate".
* Not found: the method section's equations, the algorithm box, the features, the
  regularisation, the optimiser, the environments' names, the data sizes, the
  baselines, any number. The full text (PDF, LaTeX, the authors' code) was not in the
  stored copies; every detail below that is not tagged is this module's choice.

The estimator (N transitions i = (s_i, a_i, r_i, s'_i); features phi(s, a) in R^d;
a deterministic target pi; ``phi_pi(s) = phi(s, pi(s))``):

1. Empirical feature dynamics, least squares [S]: ``M = argmin |Phi M - Phi'_pi|^2 +
   ridge N |M|^2`` with rows phi(s_i, a_i) and phi_pi(s'_i), so that
   ``E[phi_pi(s') | s, a] ~= M^T phi(s, a)`` (exact in a linear MDP).
2. The stationary *state* distribution [Sup], as weights w_i on the dataset's states
   s_i, the target acting there: maximise the entropy relative to the data's state
   distribution, ``-KL(w || uniform over i)``, subject to its feature expectations
   being stationary under the empirical dynamics [A]:
   ``sum_i w_i psi_i = 0`` with ``psi_i = phi_pi(s_i) - M^T phi_pi(s_i)``.
3. Its dual, ``min_eta log mean_i exp(eta . psi_i) + (l2 / 2) |eta|^2``, is convex and
   solved by L-BFGS; ``w_i ∝ exp(theta . phi_pi(s_i))`` with ``theta = (I - M) eta``:
   an exponential family whose sufficient statistics are the features [A].
4. The average reward per step, ``rho = sum_i w_i r_pi(s_i)``, with the reward of the
   target's action either modelled (``reward="model"``: ridge least squares
   ``r ~= phi . theta_r``, at ``phi_pi(s_i)``, clipped to the observed reward range) or
   observed (``reward="observed"``: ``r_i``, right when E[r | s, a] does not depend on a).

``linear_average_reward`` is the plug-in estimator of a linear MDP, our reading of the
LSTD-like Eq. 11-12 [S] and of the eigenvector analysis [Sup]: the stationary feature
expectation ``nu`` is the eigenvector of ``M^T`` for the eigenvalue nearest 1, scaled
so that the constant function has expectation 1, and ``rho = nu . theta_r``. With the
``model`` reward and a feasible constraint, max-ent returns the same number (tested).

Departures and open choices (each with its test in tests/ope/test_maxent.py):

| point | paper | here | why | test |
|---|---|---|---|---|
| distribution | the stationary state distribution µ [Sup] | weights on the dataset's states s_i, each with the target's action | continuous states: the data's states are the support; the base measure is not read | ``test_weights_depend_on_the_state_only`` |
| constraint | "matching feature expectations under empirical dynamics" [A] | ``E_w[phi_pi] = M^T E_w[phi_pi]`` | our reading; it is the same as matching the eigenvector ``nu`` of ``M^T`` when feasible | ``test_maxent_matches_the_linear_fixed_point`` |
| solution form | exponential family in the features [A] | ``w_i ∝ exp(theta . phi_pi(s_i))`` | follows from the dual | ``test_weights_are_an_exponential_family_in_the_features`` |
| dynamics fit | least squares [S] | ridge ``ridge * N`` (default 1e-4) | random features are collinear; value not read | ``test_feature_dynamics_by_hand`` |
| entropy reference | not read | KL to the data's state distribution (uniform over i) | the entropy a sample-supported distribution has | ``test_with_the_constant_feature_only_the_weights_are_uniform`` |
| dual regularisation | not read | ``(l2 / 2) |eta|^2``, default 1e-5: the constraint holds to ``|E_w psi| = l2 |eta|`` | keeps eta finite when the features are misspecified and no weights satisfy the constraint | ``test_the_l2_relaxation_satisfies_its_optimality_condition`` |
| optimiser | not read | L-BFGS on the convex dual (``max_iterations``) | smooth, d small | the exactness tests (residual < 1e-8) |
| reward | "arbitrary rewards" [A]; how they enter: not read | ``reward="model"`` (default): linear in the features, clipped to the observed range; ``"observed"``: r_i | the suite's rewards depend on the action (through s'), so observed rewards are biased there; clipping keeps rho a mean of rewards the data can have | ``test_the_reward_choices``, ``test_the_modelled_reward_is_clipped_to_the_observed_range`` |
| features | not read | ``RandomFourierFeatures`` of standardised (obs, action) plus a constant; bandwidth by the median heuristic | any ``features(obs, actions)`` may be passed | ``test_random_fourier_features_are_bounded_with_a_constant`` (test_ope_estimators.py) |
| terminations | none (infinite horizon) [A] | discount-0 transitions leave the dynamics fit, keep their state and reward | the suite's episodes only truncate | ``test_terminal_transitions_leave_the_dynamics_fit`` |
| size | not read | a seeded subsample of ``max_transitions`` (200,000) | memory N x d float64 | ``test_maxent_subsamples_large_datasets_reproducibly`` (test_ope_estimators.py) |
| assumptions | ergodic linear MDP; the target's distribution exploratory (L118) [A, S] | not checked; ``constraint_residual`` and ``effective_sample_size`` are reported | cannot be checked from data alone | ``test_exact_on_the_ring_with_exact_expectations`` |
| experiments | two synthetic domains, three benchmarks [S]; names, sizes, baselines not found | ``benchmarks/maxent_paper.py``: ring, a random linear MDP, the same with arbitrary state rewards | the closest synthetic settings the abstract describes | ``--seeds 2`` run into /tmp |

Scale: ``rho`` is per step; rwrl.ope.evaluate puts it on the scale of a discounted
T-step value as ``rho * (1 - gamma**T) / (1 - gamma)`` (exact when an episode starts in
the stationary distribution). Shapes: N transitions, D observation size, A action
size, d features.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, NamedTuple

import numpy as np

from rwrl.ope.policy import Transitions, apply_policy

FeatureMap = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (N, D), (N, A) -> (N, d)
#: how the reward of the target's action enters the estimate (see the module doc).
REWARDS = ("model", "observed")


@dataclasses.dataclass(frozen=True)
class MaxEntConfig:
    """Hyperparameters of the maximum-entropy estimator (none is from the paper; see the module doc)."""

    #: random Fourier features (the constant feature comes on top).
    num_features: int = 256
    #: kernel bandwidth in standardised units; None: the median heuristic.
    bandwidth: float | None = None
    #: ridge of the least-squares fits (dynamics and reward), per transition.
    ridge: float = 1e-4
    #: L2 weight on the dual variable (relaxes the stationarity constraint).
    l2: float = 1e-5
    #: L-BFGS iterations at most.
    max_iterations: int = 500
    #: transitions used at most (a seeded uniform subsample beyond; bounds memory at
    #: N x d float64, 0.4 GB per array at the defaults); None: all.
    max_transitions: int | None = 200_000
    #: "model": the reward of the target's action from a linear fit on the features;
    #: "observed": the transition's own reward (right when it does not depend on the action).
    reward: str = "model"

    def __post_init__(self):
        if self.num_features < 1:
            raise ValueError(f"num_features must be >= 1, got {self.num_features!r}")
        if self.bandwidth is not None and not self.bandwidth > 0:
            raise ValueError(f"bandwidth must be > 0, got {self.bandwidth!r}")
        if self.max_transitions is not None and self.max_transitions < 2:
            raise ValueError(f"max_transitions must be >= 2 or None, got {self.max_transitions!r}")
        if self.max_iterations < 1:
            raise ValueError(f"max_iterations must be >= 1, got {self.max_iterations!r}")
        for field in ("ridge", "l2"):
            if not getattr(self, field) >= 0:
                raise ValueError(f"{field} must be >= 0, got {getattr(self, field)!r}")
        if self.reward not in REWARDS:
            raise ValueError(f"reward must be one of {REWARDS}, got {self.reward!r}")


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
      weights: (N,) the estimated stationary distribution over the dataset's states (sums to 1).
      theta: (d,) the dual solution eta.
      constraint_residual: |sum_i w_i psi_i|, how far from stationary the fit is.
      effective_sample_size: 1 / sum_i w_i^2, in transitions.
      natural_parameters: (d,) theta = (I - M) eta, w_i ∝ exp(theta . phi_pi(s_i)).
      feature_expectations: (d,) nu = sum_i w_i phi_pi(s_i).
      target_rewards: (N,) the reward of the target's action at each s_i that rho averages.
    """

    average_reward: float
    weights: np.ndarray
    theta: np.ndarray
    constraint_residual: float
    effective_sample_size: float
    natural_parameters: np.ndarray
    feature_expectations: np.ndarray
    target_rewards: np.ndarray


class FeatureArrays(NamedTuple):
    """The features an estimate needs, float64: phi (N, d) at the data's actions, phi_pi at the
    target's actions in s_i, next_phi_pi at the target's actions in s'_i; alive (N,) bool."""

    phi: np.ndarray
    phi_pi: np.ndarray
    next_phi_pi: np.ndarray
    alive: np.ndarray


def least_squares(x: np.ndarray, y: np.ndarray, ridge: float) -> np.ndarray:
    """Return W minimising |x W - y|^2 + ridge * N |W|^2 (x: (N, d), y: (N, ...)) (step 1)."""
    gram = x.T @ x + ridge * len(x) * np.eye(x.shape[1])
    return np.linalg.lstsq(gram, x.T @ y, rcond=None)[0]


def solve_dual(psi: np.ndarray, l2: float, max_iterations: int) -> np.ndarray:
    """Return eta minimising log mean_i exp(eta . psi_i) + l2/2 |eta|^2 (step 3)."""
    from scipy.optimize import minimize
    from scipy.special import logsumexp, softmax

    def dual(eta):
        logits = psi @ eta
        value = logsumexp(logits) - np.log(len(psi)) + 0.5 * l2 * eta @ eta
        return value, psi.T @ softmax(logits) + l2 * eta

    result = minimize(dual, np.zeros(psi.shape[1]), jac=True, method="L-BFGS-B",
                      options={"maxiter": max_iterations, "gtol": 1e-10, "ftol": 1e-15})
    return result.x


def subsample(data: Transitions, size: int | None, seed: int) -> Transitions:
    """Return at most ``size`` transitions drawn uniformly without replacement (seeded)."""
    if size is None or len(data.obs) <= size:
        return data
    idx = np.sort(np.random.default_rng(seed).choice(len(data.obs), size=size, replace=False))
    return Transitions(data.obs[idx], data.actions[idx], data.rewards[idx], data.next_obs[idx],
                       data.discounts[idx], data.initial_obs)


def _features(features: FeatureMap, obs: np.ndarray, actions: np.ndarray, where: str) -> np.ndarray:
    phi = np.asarray(features(obs, actions), dtype=np.float64)
    if phi.ndim != 2 or len(phi) != len(obs):
        raise ValueError(f"features returned shape {phi.shape} at {where} for {len(obs)} transitions; "
                         f"expected (N, d)")
    if not np.all(np.isfinite(phi)):
        raise ValueError(f"features: non-finite values at {where}")
    return phi


def feature_arrays(policy, data: Transitions, features: FeatureMap) -> FeatureArrays:
    """Return the features at the data's actions and at the target's, checked (step 1's inputs)."""
    phi = _features(features, data.obs, data.actions, "the data's actions")
    phi_pi = _features(features, data.obs, apply_policy(policy, data.obs), "the target's actions")
    next_phi_pi = _features(features, data.next_obs, apply_policy(policy, data.next_obs),
                            "the target's actions in the next states")
    if not phi.shape == phi_pi.shape == next_phi_pi.shape:
        raise ValueError(f"features returned d = {phi.shape[1]}, {phi_pi.shape[1]}, {next_phi_pi.shape[1]} "
                         "at the data's actions, the target's, the next states'; expected one d")
    # the average-reward process never ends: a termination's successor is not part of it
    alive = np.asarray(data.discounts) > 0
    if not alive.any():
        raise ValueError("discounts: every transition ends in a termination; the dynamics fit needs "
                         "at least one that does not")
    return FeatureArrays(phi, phi_pi, next_phi_pi, alive)


def _rewards(data: Transitions) -> np.ndarray:
    rewards = np.asarray(data.rewards, dtype=np.float64)
    if not np.all(np.isfinite(rewards)):
        raise ValueError(f"rewards: non-finite values at transitions {np.flatnonzero(~np.isfinite(rewards))[:5]}")
    return rewards


def _prepare(policy, data: Transitions, config: MaxEntConfig, features: FeatureMap | None,
             seed: int) -> tuple[FeatureArrays, np.ndarray, np.ndarray]:
    """Return the feature arrays, the rewards and M (d, d) (step 1)."""
    data = subsample(data, config.max_transitions, seed)
    rewards = _rewards(data)
    if features is None:
        features = RandomFourierFeatures(data.obs, data.actions, config.num_features, config.bandwidth, seed)
    arrays = feature_arrays(policy, data, features)
    m = least_squares(arrays.phi[arrays.alive], arrays.next_phi_pi[arrays.alive], config.ridge)
    return arrays, rewards, m


def target_rewards(arrays: FeatureArrays, rewards: np.ndarray, config: MaxEntConfig) -> np.ndarray:
    """Return (N,) the reward of the target's action in each s_i (step 4, ``config.reward``)."""
    if config.reward == "observed":
        return rewards
    theta_r = least_squares(arrays.phi, rewards, config.ridge)
    return np.clip(arrays.phi_pi @ theta_r, rewards.min(), rewards.max())


def maxent_average_reward(policy, data: Transitions, config: MaxEntConfig = MaxEntConfig(), *,
                          features: FeatureMap | None = None, seed: int = 0) -> MaxEntResult:
    """Estimate the average reward per step of ``policy`` from ``data`` (steps 1 to 4).

    Args:
      policy: deterministic ``obs (B, D) -> actions (B, A)`` (rwrl.ope.policy.Policy).
      data: the dataset's transitions (``initial_obs`` is not used: the stationary
        distribution does not depend on where episodes start).
      config: hyperparameters.
      features: ``phi(obs, actions) -> (N, d)``; None: RandomFourierFeatures fitted on the data.
      seed: seed of the random features and of the subsample.
    """
    from scipy.special import softmax

    arrays, rewards, m = _prepare(policy, data, config, features, seed)
    psi = arrays.phi_pi - arrays.phi_pi @ m
    eta = solve_dual(psi, config.l2, config.max_iterations)
    w = softmax(psi @ eta)
    r_pi = target_rewards(arrays, rewards, config)
    return MaxEntResult(
        average_reward=float(w @ r_pi),
        weights=w,
        theta=eta,
        constraint_residual=float(np.linalg.norm(psi.T @ w)),
        effective_sample_size=float(1.0 / np.sum(w * w)),
        natural_parameters=eta - m @ eta,
        feature_expectations=arrays.phi_pi.T @ w,
        target_rewards=r_pi,
    )


def linear_average_reward(policy, data: Transitions, config: MaxEntConfig = MaxEntConfig(), *,
                          features: FeatureMap | None = None, seed: int = 0) -> float:
    """Return the linear-MDP plug-in estimate ``nu . theta_r`` of the average reward (see the module doc).

    ``nu``: the eigenvector of M^T whose eigenvalue is nearest 1, scaled so that
    ``nu . u = 1`` for the u with ``phi . u ~= 1`` (the constant function's expectation
    is 1); ``theta_r``: the ridge least-squares reward weights. Not clipped. Arguments
    as ``maxent_average_reward`` (``config.reward`` is not used: the reward is modelled).
    """
    arrays, rewards, m = _prepare(policy, data, config, features, seed)
    eigenvalues, vectors = np.linalg.eig(m.T)
    nu = np.real(vectors[:, np.argmin(np.abs(eigenvalues - 1.0))])
    ones = least_squares(arrays.phi, np.ones(len(arrays.phi)), config.ridge)
    scale = nu @ ones
    if abs(scale) < 1e-12:
        raise ValueError("features: the constant function is not in their span; nu cannot be normalised")
    return float((nu / scale) @ least_squares(arrays.phi, rewards, config.ridge))
