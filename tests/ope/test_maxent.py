"""The maximum-entropy estimator (rwrl/ope/maxent.py): exactness, each documented choice, bad input.

"Exact expectations" below: a dataset of the ring MDP (tests/ope/ring_mdp.py,
slip 0.2) holding, for every (s, a), five transitions, four to the intended
neighbour and one slipped, so that the empirical model is the true one.
"""

import numpy as np
import pytest

from rwrl.ope.maxent import (MaxEntConfig, RandomFourierFeatures, feature_arrays, least_squares,
                             linear_average_reward, maxent_average_reward)
from rwrl.ope.policy import Transitions

from . import ring_mdp as ring

# the worst and the best deterministic policies of the ring (average rewards 0.233 and 0.823).
TARGETS = {"worst": np.array([1, 0, 0, 0, 1, 1]), "best": np.array([0, 1, 1, 1, 1, 0])}
EXACT = MaxEntConfig(ridge=0.0, l2=0.0)


def exact_dataset(rewards: np.ndarray = ring.REWARDS, discounts: float = 1.0) -> Transitions:
    """Return the ring's exact-expectations dataset (60 transitions) with rewards (S, A)."""
    states, actions, next_states = [], [], []
    for s in range(ring.S):
        for a in range(ring.A):
            intended, slipped = ((s + 1) % ring.S, (s - 1) % ring.S)[::1 if a == 1 else -1]
            for s_next in [intended] * 4 + [slipped]:  # slip 0.2 = 1 in 5
                states.append(s), actions.append(a), next_states.append(s_next)
    states, actions, next_states = (np.array(x) for x in (states, actions, next_states))
    eye_s, eye_a = np.eye(ring.S), np.eye(ring.A)
    return Transitions(eye_s[states], eye_a[actions], rewards[states, actions], eye_s[next_states],
                       np.full(len(states), discounts), eye_s[:1])


def stationary(table) -> np.ndarray:
    """Return the target's stationary state distribution (S,) from the true model."""
    p_pi = ring.P[np.arange(ring.S), table]
    eigenvalues, vectors = np.linalg.eig(p_pi.T)
    d = np.real(vectors[:, np.argmin(np.abs(eigenvalues - 1))])
    return d / d.sum()


@pytest.mark.parametrize("name", list(TARGETS))
def test_exact_on_the_ring_with_exact_expectations(name):
    # with one-hot (s, a) features the ring is a linear MDP, and with exact expectations the
    # empirical dynamics are the true ones: the weights, summed per state, are the stationary
    # distribution d_pi, and rho = d_pi . r_pi (0.2328 and 0.8228); float32-free data, tol 1e-8.
    target = TARGETS[name]
    data = exact_dataset()
    result = maxent_average_reward(ring.table_policy(target), data, EXACT, features=ring.one_hot_state_action)
    assert result.average_reward == pytest.approx(ring.average_reward(target), abs=1e-8)
    per_state = np.bincount(data.obs.argmax(axis=1), weights=result.weights, minlength=ring.S)
    np.testing.assert_allclose(per_state, stationary(target), atol=1e-8)
    assert result.constraint_residual < 1e-8
    assert result.weights.sum() == pytest.approx(1.0)


@pytest.mark.parametrize("name", list(TARGETS))
def test_maxent_matches_the_linear_fixed_point(name):
    # sampled data (10,000 transitions, behaviour 0.3 on the target's action): the constraint is
    # feasible, so nu = sum_i w_i phi_pi(s_i) is the eigenvector of M^T for eigenvalue 1 and the
    # model-reward estimate equals the linear plug-in nu . theta_r.
    target = TARGETS[name]
    behaviour = np.where(np.eye(ring.A)[target] > 0, 0.3, 0.7)
    data = ring.dataset(behaviour, episodes=200, length=50, seed=1)
    config = MaxEntConfig(ridge=1e-9, l2=1e-12)  # l2 = 0: L-BFGS stopped at residual 5e-5, |eta| ~ 1e8
    policy = ring.table_policy(target)
    result = maxent_average_reward(policy, data, config, features=ring.one_hot_state_action)
    linear = linear_average_reward(policy, data, config, features=ring.one_hot_state_action)
    assert result.average_reward == pytest.approx(linear, abs=1e-6)
    arrays = feature_arrays(policy, data, ring.one_hot_state_action)
    m = least_squares(arrays.phi, arrays.next_phi_pi, 1e-9)
    np.testing.assert_allclose(m.T @ result.feature_expectations, result.feature_expectations, atol=1e-6)


def test_weights_depend_on_the_state_only():
    # the distribution is over states, the target acting there: two transitions from one state
    # get one weight whatever the behaviour did.
    target = TARGETS["best"]
    data = ring.dataset(np.full((ring.S, ring.A), 0.5), episodes=20, length=50, seed=4)
    result = maxent_average_reward(ring.table_policy(target), data, features=ring.one_hot_state_action)
    states = data.obs.argmax(axis=1)
    for s in range(ring.S):
        weights = result.weights[states == s]
        np.testing.assert_allclose(weights, weights[0], rtol=1e-10)


def test_weights_are_an_exponential_family_in_the_features():
    # w_i ∝ exp(theta . phi_pi(s_i)): log w_i - theta . phi_pi(s_i) is one constant.
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(300, 3))
    actions = np.tanh(obs[:, :1] + rng.normal(size=(300, 1)))
    next_obs = 0.9 * obs + 0.3 * actions + 0.1 * rng.normal(size=(300, 3))
    data = Transitions(obs, actions, rng.uniform(size=300), next_obs, np.ones(300), obs[:1])
    features = RandomFourierFeatures(obs, actions, num_features=16, seed=0)

    def policy(o):
        return np.tanh(-o[:, :1])
    result = maxent_average_reward(policy, data, MaxEntConfig(l2=1e-3), features=features)
    log_w = np.log(result.weights) - features(obs, policy(obs)) @ result.natural_parameters
    np.testing.assert_allclose(log_w, log_w[0], atol=1e-8)


def test_feature_dynamics_by_hand():
    # x rows e1, e2, e1 -> y rows (0, 1), (1, 0), (1, 0): x^T y = [[1, 1], [1, 0]], x^T x = diag(2, 1).
    x = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    y = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 0.0]])
    # no ridge: the per-feature means (0.5, 0.5) and (1, 0)
    np.testing.assert_allclose(least_squares(x, y, 0.0), [[0.5, 0.5], [1.0, 0.0]])
    # ridge 1/3 per transition adds 1 to the Gram's diagonal: diag(1/3, 1/2) [[1, 1], [1, 0]]
    np.testing.assert_allclose(least_squares(x, y, 1 / 3), [[1 / 3, 1 / 3], [0.5, 0.0]])


@pytest.mark.parametrize("reward", ["model", "observed"])
def test_with_the_constant_feature_only_the_weights_are_uniform(reward):
    # the entropy is relative to the data's states: with no constraint (psi = 1 - 1 * 1 = 0)
    # the weights stay uniform, and rho is the data's mean reward under either reward choice.
    data = ring.dataset(np.full((ring.S, ring.A), 0.5), episodes=10, length=30, seed=5)
    result = maxent_average_reward(ring.table_policy(TARGETS["best"]), data,
                                   MaxEntConfig(ridge=0.0, reward=reward),
                                   features=lambda obs, actions: np.ones((len(obs), 1)))
    np.testing.assert_allclose(result.weights, 1.0 / 300)
    assert result.effective_sample_size == pytest.approx(300)
    assert result.average_reward == pytest.approx(data.rewards.mean(), rel=1e-6)


def test_the_l2_relaxation_satisfies_its_optimality_condition():
    # state-only features cannot express the ring's action-dependent dynamics, so no weights are
    # stationary; at the dual's minimum E_w[psi] + l2 eta = 0, i.e. |E_w psi| = l2 |eta| > 0.
    data = ring.dataset(np.full((ring.S, ring.A), 0.5), episodes=20, length=50, seed=6)
    rng = np.random.default_rng(1)
    table = rng.normal(size=(ring.S * ring.A, 3))
    result = maxent_average_reward(ring.table_policy(TARGETS["best"]), data, MaxEntConfig(l2=0.1),
                                   features=lambda o, a: ring.one_hot_state_action(o, a) @ table)
    assert result.constraint_residual > 1e-4
    assert result.constraint_residual == pytest.approx(0.1 * np.linalg.norm(result.theta), rel=1e-4)


@pytest.mark.parametrize("name", list(TARGETS))
def test_the_reward_choices(name):
    target = TARGETS[name]
    policy, truth = ring.table_policy(target), ring.average_reward(target)
    kwargs = {"features": ring.one_hot_state_action}
    observed = MaxEntConfig(ridge=0.0, l2=0.0, reward="observed")
    # the ring's rewards depend on the action: the model is exact, observed rewards are the
    # behaviour's (measured 0.338 for 0.233, 0.576 for 0.823)
    data = exact_dataset()
    assert maxent_average_reward(policy, data, EXACT, **kwargs).average_reward == pytest.approx(truth, abs=1e-8)
    assert abs(maxent_average_reward(policy, data, observed, **kwargs).average_reward - truth) > 0.1
    # rewards of the state alone: both are exact, d_pi . r
    state_rewards = np.linspace(0.0, 1.0, ring.S)
    data = exact_dataset(np.repeat(state_rewards[:, None], ring.A, axis=1))
    for config in (EXACT, observed):
        result = maxent_average_reward(policy, data, config, **kwargs)
        assert result.average_reward == pytest.approx(stationary(target) @ state_rewards, abs=1e-8)


def test_the_modelled_reward_is_clipped_to_the_observed_range():
    # phi = (1, a), r = a with a in [0, 1]: the model says r = 3 at the target's a = 3;
    # the constraint is void (phi_pi M = phi_pi), so rho is the clipped reward, max r.
    rng = np.random.default_rng(2)
    actions = rng.uniform(size=(50, 1))
    obs = rng.normal(size=(50, 2))
    data = Transitions(obs, actions, actions[:, 0], obs, np.ones(50), obs[:1])
    result = maxent_average_reward(lambda o: np.full((len(o), 1), 3.0), data, MaxEntConfig(ridge=0.0),
                                   features=lambda o, a: np.concatenate([np.ones((len(o), 1)), a], axis=1))
    assert result.average_reward == pytest.approx(actions.max())


def test_terminal_transitions_leave_the_dynamics_fit():
    # ten extra transitions from state 0 (target's action) that "jump" to state 3 and terminate:
    # left out of M, the estimate stays exact; counted as dynamics, they move it (measured 0.0074).
    target = TARGETS["best"]
    data = exact_dataset()
    eye_s, eye_a = np.eye(ring.S), np.eye(ring.A)

    def with_jumps(discount):
        extra = 10
        return Transitions(
            np.concatenate([data.obs, np.repeat(eye_s[:1], extra, 0)]),
            np.concatenate([data.actions, np.repeat(eye_a[target[:1]], extra, 0)]),
            np.concatenate([data.rewards, np.full(extra, ring.REWARDS[0, target[0]])]),
            np.concatenate([data.next_obs, np.repeat(eye_s[3:4], extra, 0)]),
            np.concatenate([data.discounts, np.full(extra, discount)]), data.initial_obs)
    truth, policy = ring.average_reward(target), ring.table_policy(target)
    terminated = maxent_average_reward(policy, with_jumps(0.0), EXACT, features=ring.one_hot_state_action)
    assert terminated.average_reward == pytest.approx(truth, abs=1e-8)
    continued = maxent_average_reward(policy, with_jumps(1.0), EXACT, features=ring.one_hot_state_action)
    assert abs(continued.average_reward - truth) > 0.005


class WidthChanging:
    """A feature map whose width changes after its first call (a broken map)."""

    def __init__(self):
        self.calls = 0

    def __call__(self, obs, actions):
        self.calls += 1
        return np.ones((len(obs), 2 if self.calls == 1 else 3))


def _nan_rewards(data):
    rewards = data.rewards.copy()
    rewards[3] = np.nan
    return Transitions(data.obs, data.actions, rewards, data.next_obs, data.discounts, data.initial_obs)


def _terminated(data):
    return Transitions(data.obs, data.actions, data.rewards, data.next_obs, np.zeros(len(data.obs)),
                       data.initial_obs)


@pytest.mark.parametrize("features, edit, match", [
    (lambda o, a: np.ones(len(o)), None, r"features returned shape \(60,\) at the data's actions"),
    (lambda o, a: np.full((len(o), 2), np.nan), None, "features: non-finite values at the data's actions"),
    (WidthChanging, None, r"features returned d = 2, 3, 3"),
    (ring.one_hot_state_action, _nan_rewards, r"rewards: non-finite values at transitions \[3\]"),
    (ring.one_hot_state_action, _terminated, "every transition ends in a termination"),
])
def test_bad_input_is_named_in_one_line(features, edit, match):
    data = exact_dataset()
    data = edit(data) if edit else data
    features = features() if features is WidthChanging else features
    with pytest.raises(ValueError, match=match) as err:
        maxent_average_reward(ring.table_policy(TARGETS["best"]), data, features=features)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("kwargs, match", [
    ({"reward": "predicted"}, r"reward must be one of \('model', 'observed'\), got 'predicted'"),
    ({"max_iterations": 0}, "max_iterations must be >= 1, got 0"),
    ({"l2": -1.0}, "l2 must be >= 0, got -1.0"),
    ({"ridge": float("nan")}, "ridge must be >= 0, got nan"),
    ({"num_features": 0}, "num_features must be >= 1, got 0"),
    ({"bandwidth": 0.0}, "bandwidth must be > 0, got 0.0"),
    ({"max_transitions": 1}, "max_transitions must be >= 2 or None, got 1"),
])
def test_invalid_configs_are_named_in_one_line(kwargs, match):
    with pytest.raises(ValueError, match=match) as err:
        MaxEntConfig(**kwargs)
    assert "\n" not in str(err.value)


def test_the_linear_estimate_needs_the_constant_function_in_the_features():
    with pytest.raises(ValueError, match="the constant function is not in their span"):
        linear_average_reward(ring.table_policy(TARGETS["best"]), exact_dataset(),
                              features=lambda o, a: np.zeros((len(o), 2)))
