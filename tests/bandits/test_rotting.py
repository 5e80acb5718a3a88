"""Rotting-bandit environments: the paper's instances, seeding, means and the oracle."""

import math

import numpy as np
import pytest

from rwrl.bandits.rotting import (ENVS, PAPER_SIGMA, PAPER_THETAS, FunctionMeans,
                                  ParametricMeans, PlateauDecay, RottingBandit, TabulatedMeans,
                                  make_env, power_decay)
from rwrl.core.seeding import spawn_seeds


def _play(env, arms_by_round):
    """Pull the given (T, N) arms; return (T, N) rewards and (T, N) expected rewards."""
    rewards, means = [], []
    for arms in arms_by_round:
        rewards.append(env.pull(np.asarray(arms)))
        means.append(env.last_means.copy())
    return np.array(rewards), np.array(means)


# -- registry-wide invariants ------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(ENVS))
def test_every_instance_has_finite_batched_means_and_rewards(name):
    env = make_env(name, num_instances=3)
    env.reset(seed=0)
    assert env.means().shape == (3, env.num_arms)
    rewards = env.pull(np.zeros(3, np.int64))
    assert rewards.shape == (3,) and np.all(np.isfinite(rewards))
    assert np.all(np.isfinite(env.means()))
    assert len(set(rewards.tolist())) == 3  # each instance has its own noise


@pytest.mark.parametrize("name", sorted(ENVS))
def test_instance_i_of_a_batch_is_the_single_instance_seeded_with_the_ith_spawned_seed(name):
    arms = np.random.default_rng(3).integers(0, make_env(name).num_arms, (40, 4))
    batch = make_env(name, num_instances=4)
    batch.reset(seed=11)
    assert batch.seeds == spawn_seeds(11, 4)
    rewards, means = _play(batch, arms)
    for i, seed in enumerate(spawn_seeds(11, 4)):
        single = make_env(name, num_instances=1)
        single.reset(seed=[seed])
        np.testing.assert_array_equal(single.params[0], batch.params[i])
        single_rewards, single_means = _play(single, arms[:, i:i + 1])
        np.testing.assert_array_equal(single_rewards[:, 0], rewards[:, i])
        np.testing.assert_array_equal(single_means[:, 0], means[:, i])


@pytest.mark.parametrize("name", sorted(ENVS))
def test_the_same_seed_replays_and_another_seed_differs(name):
    arms = np.zeros((5, 2), np.int64)
    first, second, other = (make_env(name, num_instances=2) for _ in range(3))
    first.reset(seed=4), second.reset(seed=4), other.reset(seed=5)
    np.testing.assert_array_equal(_play(first, arms)[0], _play(second, arms)[0])
    assert not np.array_equal(_play(first, arms)[0], _play(other, arms)[0])


# -- the paper's instances (Sec. 5) ------------------------------------------------------
def test_paper_noise_is_variance_0_2_and_the_rewards_have_that_spread():
    assert PAPER_SIGMA ** 2 == pytest.approx(0.2)
    env = make_env("rested-step", num_instances=4000)
    env.reset(seed=0)
    rewards = env.pull(np.zeros(4000, np.int64))  # arm 1 pays 0.5 + noise
    assert rewards.mean() == pytest.approx(0.5, abs=0.03)
    assert rewards.std() == pytest.approx(math.sqrt(0.2), rel=0.05)


def test_rested_step_arm_2_pays_1_for_7500_pulls_then_0_4_and_arm_1_pays_0_5():
    env = make_env("rested-step", sigma=0.0)
    assert env.model.table[1, 7499] == 1.0 and env.model.table[1, 7500] == 0.4
    env = make_env("rested-step", sigma=0.0, switch=3)
    env.reset(seed=0)
    rewards, _ = _play(env, [[1], [1], [0], [1], [1], [0]])
    assert rewards[:, 0].tolist() == [1.0, 1.0, 0.5, 1.0, 0.4, 0.5]


def test_restless_step_switches_with_the_round_whatever_is_pulled():
    env = make_env("restless-step", sigma=0.0, switch=3)
    env.reset(seed=0)
    rewards, _ = _play(env, [[0], [0], [0], [1], [1]])
    assert rewards[:, 0].tolist() == [0.5, 0.5, 0.5, 0.4, 0.4]  # arm 2 dropped at round 4


def test_plateau_decay_follows_the_formula_with_j_the_one_based_pull():
    # (int(j / 100) + 1)^(-θ): j = 1..99 -> 1, j = 100..199 -> 2^-θ, j = 200 -> 3^-θ
    values = PlateauDecay()(np.array([1, 99, 100, 199, 200]), 0.5)
    np.testing.assert_allclose(values, [1, 1, 2 ** -0.5, 2 ** -0.5, 3 ** -0.5])
    np.testing.assert_allclose(power_decay(np.array([1, 4]), 0.5), [1.0, 0.5])


@pytest.mark.parametrize("name, constant_high", [("rested-parametric-av", 0.0),
                                                 ("rested-parametric-anv", 0.5),
                                                 ("restless-parametric-anv", 0.5)])
def test_parametric_instances_draw_theta_from_the_paper_set_and_constants_per_instance(
        name, constant_high):
    assert PAPER_THETAS == (0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4)
    env = make_env(name, num_instances=20)
    env.reset(seed=1)
    thetas, constants = env.params[..., 0], env.params[..., 1]
    assert env.num_arms == 10 and np.all(np.isin(thetas, PAPER_THETAS))
    assert len({tuple(row) for row in thetas}) == 20  # drawn per trajectory
    assert np.all((constants >= 0) & (constants <= constant_high))
    assert (constants.max() > 0.4) == (constant_high > 0)
    # the first pull (rested n = 1) or round (restless t = 1): µ^c + (int(1 / 100) + 1)^(-θ)
    np.testing.assert_allclose(env.means(), constants + 1.0)


def test_function_means_and_fixed_parametric_arms_give_the_hand_values():
    env = RottingBandit(FunctionMeans([lambda n: 1.0 / n, lambda n: 0.5 + 0 * n]), sigma=0.0)
    env.reset(seed=0)
    assert _play(env, [[0], [0], [1], [0]])[0][:, 0].tolist() == [1.0, 0.5, 0.5, 1 / 3]
    model = ParametricMeans(power_decay, (0.5, 1.0), num_arms=2, arm_thetas=(1.0, 0.5),
                            constants=(0.0, 0.25))
    env = RottingBandit(model, sigma=0.0)
    env.reset(seed=0)
    np.testing.assert_allclose(_play(env, [[0], [0], [1], [1]])[0][:, 0],
                               [1.0, 0.5, 1.25, 0.25 + 2 ** -0.5])


# -- the oracle ---------------------------------------------------------------------------
def _random_tables(rng, num_arms, length):
    """Non-increasing random means per arm (Assumption 2.1)."""
    return [np.sort(rng.uniform(0, 1, rng.integers(1, length)))[::-1] for _ in range(num_arms)]


@pytest.mark.parametrize("case", range(5))
def test_rested_oracle_collects_the_t_largest_means_at_every_t(case):
    """Lemma 2.1's argument: pi^max takes the sorted merge of all arms' mean sequences."""
    rng = np.random.default_rng(case)
    tables, horizon = _random_tables(rng, 3, 12), 25
    env = RottingBandit(TabulatedMeans(tables), num_instances=2, sigma=0.3)
    env.reset(seed=case)
    oracle = env.oracle()
    collected = np.cumsum([oracle.next() for _ in range(horizon)], axis=0)
    padded = [np.concatenate([t, np.full(horizon, t[-1])])[:horizon] for t in tables]
    best = np.cumsum(np.sort(np.concatenate(padded))[::-1][:horizon])
    np.testing.assert_allclose(collected, np.stack([best, best], axis=1))


def test_restless_oracle_takes_the_best_arm_of_each_round():
    tables = [[0.9, 0.2], [0.5, 0.5, 0.4], [0.6, 0.3, 0.3, 0.1]]
    env = RottingBandit(TabulatedMeans(tables), sigma=0.0, rested=False)
    env.reset(seed=0)
    oracle = env.oracle()
    # rounds 1..5: max(0.9, 0.5, 0.6), max(0.2, 0.5, 0.3), max(0.2, 0.4, 0.3), (.2, .4, .1), ...
    assert [float(oracle.next()[0]) for _ in range(5)] == [0.9, 0.5, 0.4, 0.4, 0.4]


# -- bad input ----------------------------------------------------------------------------
def test_unknown_env_names_list_the_allowed_ones():
    allowed = "rested-parametric-anv, .*, restless-step$"
    with pytest.raises(ValueError, match=f"unknown env 'rested-nope': allowed {allowed}"):
        make_env("rested-nope")
    with pytest.raises(ValueError, match="takes no parameter 'horizon': allowed num_instances"):
        make_env("rested-step", horizon=5)


@pytest.mark.parametrize("kwargs, match", [
    ({"sigma": float("nan")}, r"sigma = nan is not allowed: a finite number in \[0.0, inf\]"),
    ({"sigma": -1.0}, "sigma = -1.0 is not allowed"),
    ({"num_instances": 0}, "num_instances = 0 is not allowed: an integer >= 1"),
    ({"switch": 0}, "switch = 0 is not allowed"),
])
def test_bad_env_arguments_name_the_value_and_the_allowed_range(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_env("rested-step", **kwargs)


def test_bad_tables_pulls_and_seeds_are_refused():
    with pytest.raises(ValueError, match=r"table of arm 1 rises at pull 3 \(0.2 -> 0.5\)"):
        TabulatedMeans([[1.0], [0.3, 0.2, 0.5]])
    with pytest.raises(ValueError, match="non-finite"):
        TabulatedMeans([[float("inf")]])
    with pytest.raises(ValueError, match="constant_high = nan"):
        ParametricMeans(power_decay, constant_high=float("nan"))
    env = make_env("rested-step", num_instances=2)
    with pytest.raises(RuntimeError, match="reset"):
        env.means()
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"arms must be \(2,\) ints in \[0, 2\)"):
        env.pull(np.array([0, 2]))
    with pytest.raises(ValueError, match="seed list has 1 entries"):
        env.reset(seed=[1])
    with pytest.raises(ValueError, match="seed = -1 is not allowed"):
        env.reset(seed=-1)
