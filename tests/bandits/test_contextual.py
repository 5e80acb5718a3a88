"""The follower-bandit simulator: seeding, delay, drift, regret, bad input."""

import numpy as np
import pytest

from rwrl.bandits.contextual import FollowerBandit, oracle_regret
from rwrl.core.seeding import spawn_seeds

SIZES = dict(num_accounts=3, num_candidates=4, num_features=2)


def _actions(t: int, n: int, m: int = 3, k: int = 4) -> np.ndarray:
    """A fixed, varied action pattern: instance i, account j, step t -> (i + 2j + t) mod k."""
    return (np.arange(n)[:, None] + 2 * np.arange(m)[None, :] + t) % k


def _trajectory(env: FollowerBandit, seed, steps: int = 12) -> dict:
    out = {"contexts": [env.reset(seed)], "rewards": [], "weights": [env.weights],
           "expected": []}
    for t in range(steps):
        out["expected"].append(env.expected_rewards())
        rewards, contexts = env.step(_actions(t, env.num_envs))
        out["rewards"].append(rewards)
        out["contexts"].append(contexts)
        out["weights"].append(env.weights)
    out["regret"] = [env.cumulative_regret.copy()]
    return {key: np.stack(value) for key, value in out.items()}


def test_instance_i_of_a_batch_is_the_single_instance_seeded_with_spawned_seed_i():
    """The seeding contract: batch seeded s, instance i == N=1 reset with spawn_seeds(s, N)[i]."""
    kwargs = dict(SIZES, account_spread=0.7, noise_std=0.5, drift=0.1, delay=2)
    batch = _trajectory(FollowerBandit(num_envs=3, **kwargs), seed=11)
    for i, seed_i in enumerate(spawn_seeds(11, 3)):
        single_env = FollowerBandit(num_envs=1, **kwargs)
        single = {"contexts": [single_env.reset([seed_i])], "rewards": [],
                  "weights": [single_env.weights], "expected": []}
        for t in range(12):
            single["expected"].append(single_env.expected_rewards())
            # the single instance takes the actions instance i took in the batch
            rewards, contexts = single_env.step(_actions(t, 3)[i:i + 1])
            single["rewards"].append(rewards)
            single["contexts"].append(contexts)
            single["weights"].append(single_env.weights)
        for key, value in single.items():
            np.testing.assert_array_equal(np.stack(value)[:, 0], batch[key][:, i], err_msg=key)
        np.testing.assert_array_equal(single_env.cumulative_regret, batch["regret"][0, i:i + 1])


def test_same_seed_same_run_and_other_seeds_differ():
    env = FollowerBandit(num_envs=2, **SIZES, drift=0.05, delay=1)
    first, again, other = _trajectory(env, 3), _trajectory(env, 3), _trajectory(env, 4)
    for key in first:
        np.testing.assert_array_equal(first[key], again[key], err_msg=key)
    assert not np.allclose(first["contexts"], other["contexts"])
    assert not np.allclose(first["weights"][0], other["weights"][0])
    # instances of one batch differ from each other
    assert not np.allclose(first["contexts"][:, 0], first["contexts"][:, 1])


def test_contexts_and_noise_do_not_depend_on_actions_or_drift():
    """Common random numbers: learners and drift rates compared on one seed see one stream."""
    env_a = FollowerBandit(num_envs=2, **SIZES, noise_std=1.0, drift=0.0)
    env_b = FollowerBandit(num_envs=2, **SIZES, noise_std=1.0, drift=0.3)
    ca, cb = env_a.reset(5), env_b.reset(5)
    np.testing.assert_array_equal(ca, cb)
    for t in range(6):
        acts_a, acts_b = _actions(t, 2), _actions(t + 1, 2)
        chosen_a = np.take_along_axis(env_a.expected_rewards(), acts_a[..., None], -1)[..., 0]
        chosen_b = np.take_along_axis(env_b.expected_rewards(), acts_b[..., None], -1)[..., 0]
        (ra, ca), (rb, cb) = env_a.step(acts_a), env_b.step(acts_b)
        np.testing.assert_array_equal(ca, cb)
        np.testing.assert_allclose(ra - chosen_a, rb - chosen_b, atol=1e-12)  # same noise


@pytest.mark.parametrize("delay", [0, 1, 3])
def test_reward_of_step_t_arrives_exactly_delay_steps_later(delay):
    env = FollowerBandit(num_envs=2, **SIZES, noise_std=0.0, drift=0.2, delay=delay)
    env.reset(0)
    sent = []
    for t in range(8):
        actions = _actions(t, 2)
        # noise 0: the reward is the expected reward under the weights of its own step
        sent.append(np.take_along_axis(env.expected_rewards(), actions[..., None], -1)[..., 0])
        rewards, _ = env.step(actions)
        if t < delay:
            assert np.isnan(rewards).all()
        else:
            np.testing.assert_array_equal(rewards, sent[t - delay])


def test_drift_zero_keeps_the_weights_fixed_exactly():
    env = FollowerBandit(num_envs=2, **SIZES, noise_std=1.0, drift=0.0)
    env.reset(1)
    start = env.weights.copy()
    for t in range(50):
        env.step(_actions(t, 2))
    np.testing.assert_array_equal(env.weights, start)


def test_drift_moves_the_weights_and_keeps_their_distribution():
    """AR(1) with c = sqrt(1 - drift^2): mean and deviations stay N(0, 1) per entry."""
    env = FollowerBandit(num_envs=400, num_accounts=2, num_candidates=2, num_features=2,
                         drift=0.5)
    env.reset(2)
    start, start_mean = env.weights.copy(), env.mean.copy()
    for t in range(40):  # correlation left: 0.75 ** 20, about 0.003
        env.step(np.zeros((400, 2), int))
    assert not np.allclose(env.weights, start)
    # 800 draws of each: the sample variance of N(0, 1) is within 0.2 of 1 (about 4 sd)
    assert abs(env.mean.var() - 1.0) < 0.2
    assert abs(env.deviation.var() - 1.0) < 0.2
    assert abs(np.corrcoef(env.mean.ravel(), start_mean.ravel())[0, 1]) < 0.2


def test_weights_are_a_shared_mean_plus_spread_times_deviation():
    env = FollowerBandit(num_envs=1, num_accounts=2, num_candidates=2, num_features=2,
                         account_spread=0.5)
    env.reset(0)
    env.mean = np.array([[1.0, -1.0]])
    env.deviation = np.array([[[2.0, 0.0], [0.0, 4.0]]])
    env.contexts = np.array([[[[1.0, 0.0], [0.0, 1.0]], [[1.0, 1.0], [0.5, 0.0]]]])
    # account 0: theta = (1 + 1, -1) = (2, -1); account 1: theta = (1, -1 + 2) = (1, 1)
    np.testing.assert_array_equal(env.weights, [[[2.0, -1.0], [1.0, 1.0]]])
    # account 0: x = (1, 0) -> 2, x = (0, 1) -> -1; account 1: (1, 1) -> 2, (0.5, 0) -> 0.5
    np.testing.assert_array_equal(env.expected_rewards(), [[[2.0, -1.0], [2.0, 0.5]]])
    env.step(np.array([[1, 1]]))
    # regret: account 0 chose -1 of best 2 -> 3; account 1 chose 0.5 of best 2 -> 1.5
    np.testing.assert_array_equal(env.last_regret, [[3.0, 1.5]])
    np.testing.assert_array_equal(env.cumulative_regret, [4.5])


def test_oracle_regret_by_hand_and_the_oracle_has_none():
    expected = np.array([[[1.0, 3.0, 2.0], [0.0, -1.0, -2.0]]])
    np.testing.assert_array_equal(oracle_regret(expected, np.array([[0, 2]])), [[2.0, 2.0]])
    env = FollowerBandit(num_envs=3, **SIZES, noise_std=1.0, drift=0.1)
    env.reset(9)
    for _ in range(20):
        env.step(np.argmax(env.expected_rewards(), axis=-1))
    np.testing.assert_array_equal(env.cumulative_regret, np.zeros(3))


def test_cumulative_regret_is_the_sum_of_step_regrets():
    env = FollowerBandit(num_envs=2, **SIZES, drift=0.1)
    env.reset(4)
    total = np.zeros(2)
    for t in range(10):
        step = oracle_regret(env.expected_rewards(), _actions(t, 2))
        env.step(_actions(t, 2))
        total += step.sum(axis=1)
    np.testing.assert_allclose(env.cumulative_regret, total, rtol=1e-12)
    assert (total > 0).all()


@pytest.mark.parametrize("kwargs, match", [
    (dict(noise_std=float("nan")),
     r"noise_std = nan is not allowed: a finite number in \[0.0, inf\]"),
    (dict(drift=float("inf")), r"drift = inf is not allowed: a finite number in \[0.0, 1.0\]"),
    (dict(drift=1.5), r"drift = 1.5 is not allowed"),
    (dict(account_spread=-0.1), r"account_spread = -0.1 is not allowed"),
    (dict(delay=-1), r"delay = -1 is not allowed: an integer >= 0"),
    (dict(delay=1.5), r"delay = 1.5 is not allowed"),
    (dict(num_accounts=0), r"num_accounts = 0 is not allowed: an integer >= 1"),
    (dict(num_features=True), r"num_features = True is not allowed"),
])
def test_bad_parameters_raise_one_line_errors(kwargs, match):
    with pytest.raises(ValueError, match=match) as info:
        FollowerBandit(num_envs=2, **kwargs)
    assert "\n" not in str(info.value)


def test_bad_steps_and_seeds_raise():
    env = FollowerBandit(num_envs=2, **SIZES)
    with pytest.raises(ValueError, match="has not been reset"):
        env.step(np.zeros((2, 3), int))
    with pytest.raises(ValueError, match=r"seed = -1 is not allowed"):
        env.reset(-1)
    with pytest.raises(ValueError,
                       match=r"seed list has 1 entries: allowed exactly num_instances=2"):
        env.reset([1])
    with pytest.raises(ValueError, match=r"seed = 'a' is not allowed"):
        env.reset("a")
    env.reset(0)
    with pytest.raises(ValueError, match=r"action 4 is out of range: allowed \[0, 3\]"):
        env.step(np.full((2, 3), 4))
    with pytest.raises(ValueError, match=r"actions of shape \(3,\) .* give integers of shape"):
        env.step(np.zeros(3, int))
    with pytest.raises(ValueError, match=r"dtype float64"):
        env.step(np.zeros((2, 3)))
