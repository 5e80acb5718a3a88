"""Regret curves: hand-checked values, never negative on rested instances, seeding, errors."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rwrl.bandits.policies import SWA, make_policy
from rwrl.bandits.rotting import RottingBandit, TabulatedMeans, make_env
from rwrl.bandits.simulate import log_grid, run
from rwrl.core.seeding import spawn_seeds


def test_regret_of_swa_on_a_small_step_instance_by_hand():
    # switch = 2: arm 0 pays 0.5, arm 1 pays 1, 1, then 0.4. Oracle: 1, 1, 0.5, 0.5, 0.5, 0.5.
    # SWA with M = 1: ramp-up 0 (0.5), 1 (1); then arm 1 (1), arm 1 (0.4), arm 0, arm 0.
    # Cumulative: oracle 1, 2, 2.5, 3, 3.5, 4; SWA 0.5, 1.5, 2.5, 2.9, 3.4, 3.9.
    env = make_env("rested-step", num_instances=2, sigma=0.0, switch=2)
    curves = run(env, SWA(horizon=6, window=1), horizon=6, seed=0)
    np.testing.assert_allclose(curves.regret, [[0.5, 0.5, 0.0, 0.1, 0.1, 0.1]] * 2, atol=1e-12)
    assert curves.steps.tolist() == [1, 2, 3, 4, 5, 6]
    np.testing.assert_allclose(curves.oracle_value, [4.0, 4.0])
    np.testing.assert_allclose(curves.policy_value, [3.9, 3.9])
    assert curves.pulls.tolist() == [[3, 3], [3, 3]]


def test_restless_regret_is_against_the_best_arm_of_each_round():
    # restless step, switch = 2: the best arm pays 1, 1, then 0.5 (arm 0; arm 1 pays 0.4).
    # UCB1 pulls 0, 1 (regret 0.5, 0.5); round 3: 1 + sqrt(2 ln 2) beats 0.5 + sqrt(2 ln 2),
    # arm 1 pays 0.4 (+0.1); round 4: 0.5 + sqrt(2 ln 3) = 1.98 beats 0.7 + sqrt(ln 3) = 1.75.
    env = make_env("restless-step", num_instances=1, sigma=0.0, switch=2)
    curves = run(env, "ucb1", horizon=4, seed=0)
    np.testing.assert_allclose(curves.regret[0], [0.5, 0.5, 0.6, 0.6])


def test_recording_on_a_log_grid_keeps_the_same_values():
    env = make_env("rested-parametric-anv", num_instances=3)
    full = run(env, "ucb1", horizon=300, seed=2)
    grid = log_grid(300, 12)
    assert grid[0] == 1 and grid[-1] == 300 and np.all(np.diff(grid) > 0)
    sparse = run(env, "ucb1", horizon=300, seed=2, steps=grid)
    np.testing.assert_array_equal(sparse.regret, full.regret[:, grid - 1])
    assert sparse.mean().shape == (grid.size,)


@pytest.mark.parametrize("policy", ["thompson", "epsilon-greedy", "swa", "fewa", "d-cto"])
def test_trajectory_i_of_a_batch_run_is_the_run_seeded_with_the_ith_spawned_seed(policy):
    batch = run(make_env("rested-parametric-anv", num_instances=3), policy, 80, seed=6)
    for i, seed in enumerate(spawn_seeds(6, 3)):
        single = run(make_env("rested-parametric-anv"), policy, 80, seed=[seed])
        np.testing.assert_array_equal(single.regret[0], batch.regret[i])


def test_swa_beats_ucb1_on_the_step_instance_where_ucb1_regret_is_linear():
    # Sec. 5 proportions at T = 2,000 (switch at T / 4): UCB1's all-history mean of arm 2
    # stays near or above 0.5 after the switch, so it keeps paying up to 0.1 a round (about
    # 0.065 seen); SWA's window of M = 59 notices and stops paying.
    env = make_env("rested-step", num_instances=10, switch=500)
    ucb1, swa = run(env, "ucb1", 2000, seed=0), run(env, "swa", 2000, seed=0)
    assert ucb1.mean()[-1] > 2 * swa.mean()[-1]
    assert ucb1.mean()[-1] - ucb1.mean()[999] > 0.05 * 1000
    assert swa.mean()[-1] - swa.mean()[999] < 0.02 * 1000


# -- regret is never negative on rested (non-increasing) instances ------------------------
@settings(max_examples=25, deadline=None)
@given(data=st.data(), num_arms=st.integers(2, 4), horizon=st.integers(4, 40),
       sigma=st.sampled_from([0.0, 0.3]),
       policy=st.sampled_from(["swa", "wswa", "ucb1", "fewa", "sw-ucb", "d-ucb", "thompson",
                               "epsilon-greedy", "cto", "d-cto"]))
def test_regret_against_the_oracle_is_never_negative_on_rotting_arms(data, num_arms, horizon,
                                                                     sigma, policy):
    values = st.floats(0.0, 1.0, allow_nan=False)
    tables = [sorted(data.draw(st.lists(values, min_size=1, max_size=12)), reverse=True)
              for _ in range(num_arms)]
    horizon = max(horizon, num_arms)
    env = RottingBandit(TabulatedMeans(tables), num_instances=3, sigma=sigma)
    curves = run(env, make_policy(policy, horizon=horizon), horizon, seed=data.draw(
        st.integers(0, 2 ** 32)))
    assert np.all(curves.regret >= -1e-12)


# -- bad input ------------------------------------------------------------------------------------
def test_bad_runs_get_one_line_naming_the_value_and_what_is_allowed():
    env = make_env("rested-parametric-av", num_instances=2)
    with pytest.raises(ValueError, match="horizon = 9 is shorter than the number of arms "
                                         "K = 10: allowed horizon >= K"):
        run(env, "ucb1", horizon=9)
    with pytest.raises(ValueError, match="unknown env 'nope': allowed rested-parametric-anv"):
        run("nope", "ucb1", horizon=10)
    with pytest.raises(ValueError, match="unknown policy 'ucb2': allowed cto, d-cto"):
        run(env, "ucb2", horizon=10)
    with pytest.raises(ValueError, match=r"steps = \[0, 3\] is not allowed: increasing ints in "
                                         r"\[1, horizon=20\]"):
        run(env, "ucb1", horizon=20, steps=[0, 3])
    with pytest.raises(ValueError, match="horizon = 2.5 is not allowed: an integer >= 1"):
        run(env, "ucb1", horizon=2.5)
    with pytest.raises(ValueError, match="seed list has 3 entries: allowed exactly "
                                         "num_instances=2"):
        run(env, "ucb1", horizon=20, seed=[1, 2, 3])
