"""FQE and the maximum-entropy estimator on a ring MDP whose values are exact (tests/ope/ring_mdp.py).

Data come from a behaviour policy that takes the target's action with probability
0.3 only; the target's true values differ from the behaviour data's by far more
than the tolerances, so an estimator that ignored the policy would fail.
"""

import dataclasses

import numpy as np
import pytest

from rwrl.ope.fqe import FQEConfig, fitted_q_evaluation, td_loss
from rwrl.ope.maxent import MaxEntConfig, RandomFourierFeatures, maxent_average_reward
from rwrl.ope.policy import Transitions, apply_policy

from . import ring_mdp as ring

# the worst and the best deterministic policies of the ring (average rewards 0.233 and 0.823).
TARGETS = {"worst": np.array([1, 0, 0, 0, 1, 1]), "best": np.array([0, 1, 1, 1, 1, 0])}
GAMMA = 0.8  # 50 FQE iterations contract the error by 0.8**50 ~ 1e-5


def behaviour_for(target: np.ndarray) -> np.ndarray:
    """Return (S, A) probabilities: the target's action 0.3, the other 0.7."""
    probs = np.full((ring.S, ring.A), 0.7)
    probs[np.arange(ring.S), target] = 0.3
    return probs


@pytest.fixture(scope="module", params=list(TARGETS))
def case(request):
    target = TARGETS[request.param]
    return target, ring.dataset(behaviour_for(target), episodes=200, length=50, seed=1)


def test_the_targets_differ_from_the_behaviour_data(case):
    # guards the tolerances below: a policy-blind estimate is off by more than them.
    target, data = case
    assert abs(data.rewards.mean() - ring.average_reward(target)) > 0.15


def test_maxent_with_one_hot_features_recovers_the_average_reward(case):
    # measured: errors 0.013 (worst) and 0.007 (best), truths 0.233 and 0.823 (10,000
    # transitions); the behaviour data average 0.61 and 0.41.
    target, data = case
    result = maxent_average_reward(ring.table_policy(target), data, MaxEntConfig(ridge=1e-9, l2=1e-9),
                                   features=ring.one_hot_state_action)
    assert result.average_reward == pytest.approx(ring.average_reward(target), abs=0.02)
    assert result.weights.sum() == pytest.approx(1.0)
    assert result.constraint_residual < 1e-4


def test_maxent_with_one_hot_features_equals_the_certainty_equivalent_model(case):
    # with exact (tabular) features the max-ent stationary distribution is the stationary
    # distribution of the empirical transition model under the target policy.
    target, data = case
    s, a, s_next = (x.argmax(axis=1) for x in (data.obs, data.actions, data.next_obs))
    counts = np.zeros((ring.S, ring.A, ring.S))
    np.add.at(counts, (s, a, s_next), 1.0)
    p_pi = (counts / counts.sum(axis=2, keepdims=True))[np.arange(ring.S), target]
    eigenvalues, vectors = np.linalg.eig(p_pi.T)
    d = np.real(vectors[:, np.argmin(np.abs(eigenvalues - 1))])
    model_rho = (d / d.sum()) @ ring.REWARDS[np.arange(ring.S), target]
    result = maxent_average_reward(ring.table_policy(target), data, MaxEntConfig(ridge=1e-12, l2=1e-12),
                                   features=ring.one_hot_state_action)
    assert result.average_reward == pytest.approx(model_rho, abs=1e-4)


@pytest.mark.parametrize("critic", ["scalar", "distributional"])
def test_fqe_recovers_the_discounted_value(case, critic):
    # measured: relative errors 0.1 % (worst) and 1.9 % (best) scalar, 0.6 % and 0.5 %
    # distributional; truths 1.49 and 3.94.
    target, data = case
    truth = ring.discounted_values(target, GAMMA)[data.initial_obs.argmax(axis=1)].mean()
    config = FQEConfig(discount=GAMMA, hidden_sizes=(64, 64), learning_rate=1e-3, num_steps=2000,
                       target_update_period=50, critic=critic)
    result = fitted_q_evaluation(ring.table_policy(target), data, config, progress=False)
    assert result.value == pytest.approx(truth, rel=0.05)
    assert result.losses[-1] < result.losses[0]
    assert result.initial_values.shape == (len(data.initial_obs),)


def test_td_loss_by_hand():
    # target 1 + 0.9 * 2 = 2.8, prediction 2 -> 0.5 * 0.8^2 = 0.32; no bootstrap at termination.
    assert float(td_loss(2.0, 1.0, 0.9, 2.0)) == pytest.approx(0.32)
    assert float(td_loss(2.0, 1.0, 0.0, 5.0)) == pytest.approx(0.5)


def test_random_fourier_features_are_bounded_with_a_constant():
    rng = np.random.default_rng(0)
    obs, actions = rng.normal(size=(50, 3)), rng.uniform(-1, 1, size=(50, 2))
    features = RandomFourierFeatures(obs, actions, num_features=16, seed=0)
    phi = features(obs, actions)
    assert phi.shape == (50, 17)
    np.testing.assert_array_equal(phi[:, -1], 1.0)
    assert np.all(np.abs(phi[:, :-1]) <= np.sqrt(2 / 16) + 1e-12)
    np.testing.assert_array_equal(phi, RandomFourierFeatures(obs, actions, 16, seed=0)(obs, actions))


def test_a_policy_with_the_wrong_output_shape_is_named():
    class Bad:
        name = "bad"

        def __call__(self, obs):
            return np.zeros(len(obs))

    with pytest.raises(ValueError, match="'bad' returned shape"):
        apply_policy(Bad(), np.zeros((4, 3)))


def test_transitions_of_unequal_length_are_rejected():
    with pytest.raises(ValueError, match="rewards: 3 rows, obs has 4"):
        Transitions(np.zeros((4, 2)), np.zeros((4, 1)), np.zeros(3), np.zeros((4, 2)), np.ones(4),
                    np.zeros((1, 2)))


@pytest.mark.parametrize("kwargs, match", [
    ({"discount": 1.0}, "discount"), ({"num_steps": 150}, "multiple"), ({"batch_size": 0}, "batch_size"),
    ({"critic": "quantile"}, "critic must be one of"), ({"num_atoms": 1}, "num_atoms"),
])
def test_invalid_fqe_configs_are_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        FQEConfig(**kwargs)


def test_the_distributional_critic_refuses_rewards_its_support_cannot_hold():
    data = ring.dataset(behaviour_for(TARGETS["best"]), episodes=2, length=10, seed=3)
    data = dataclasses.replace(data, rewards=data.rewards * 2.0)  # up to 2 per step: values beyond 1 / (1 - gamma)
    with pytest.raises(ValueError, match=r"support \[0, value_scale=5\]"):
        fitted_q_evaluation(ring.table_policy(TARGETS["best"]), data,
                            FQEConfig(discount=GAMMA, critic="distributional", num_steps=100), progress=False)


def test_maxent_subsamples_large_datasets_reproducibly():
    target = TARGETS["best"]
    data = ring.dataset(behaviour_for(target), episodes=40, length=50, seed=2)  # 2,000 transitions
    config = MaxEntConfig(ridge=1e-9, l2=1e-9, max_transitions=500)
    a = maxent_average_reward(ring.table_policy(target), data, config, features=ring.one_hot_state_action)
    b = maxent_average_reward(ring.table_policy(target), data, config, features=ring.one_hot_state_action)
    assert a.weights.shape == (500,)
    assert a.average_reward == b.average_reward
