"""Each evaluator against a small hand-computed example."""

import math
import re

import numpy as np
import pandas as pd
import pytest

from rwrl.metrics import evaluators as ev

# t_{0.975, 2} and t_{0.975, 1}: 95 % two-sided Student-t quantiles (tables).
T975_DOF2 = 4.302652729911275
T975_DOF1 = 12.706204736174707

# Learning curve used by the return evaluators with window W = 3.
# n = 9 episodes -> 7 windows starting at 0..6 with means
#   [0,2,4]=2, [2,4,3]=3, [4,3,6]=13/3, [3,6,2]=11/3, [6,2,5]=13/3, [2,5,7]=14/3, [5,7,6]=6.
# Final window [5,7,6]: mean 6, sample std 1 (deviations -1, 1, 0; 2 / 2 = 1),
# sem = 1/sqrt(3), lower = 6 - 4.3027 / sqrt(3) = 3.51586.
CURVE = [0.0, 2.0, 4.0, 3.0, 6.0, 2.0, 5.0, 7.0, 6.0]
CURVE_LOWER = 6.0 - T975_DOF2 / math.sqrt(3.0)


def test_rolling_returns_full_windows():
    rolled = ev.rolling_returns(CURVE, window=3)
    assert rolled.size == 3
    np.testing.assert_array_equal(rolled.start, np.arange(7))
    np.testing.assert_allclose(rolled.mean, [2, 3, 13 / 3, 11 / 3, 13 / 3, 14 / 3, 6])
    assert rolled.lower[-1] == pytest.approx(CURVE_LOWER)
    assert rolled.upper[-1] == pytest.approx(12.0 - CURVE_LOWER)


def test_rolling_returns_fewer_episodes_than_window_use_one_window():
    # [1, 3]: one window of both episodes; mean 2, s = sqrt(2), sem = 1, half width t_{.975,1}.
    rolled = ev.rolling_returns([1.0, 3.0], window=101)
    assert rolled.size == 2
    np.testing.assert_allclose(rolled.mean, [2.0])
    np.testing.assert_allclose(rolled.lower, [2.0 - T975_DOF1])


@pytest.mark.parametrize("returns", [[5.0, 5.0, 5.0], [7.0]])
def test_rolling_returns_degenerate_interval_collapses_to_mean(returns):
    # Zero spread (or a single episode) gives no width, not NaN.
    rolled = ev.rolling_returns(returns, window=2)
    np.testing.assert_array_equal(rolled.lower, rolled.mean)
    np.testing.assert_array_equal(rolled.upper, rolled.mean)


def test_final_return_is_last_window_mean():
    assert ev.final_return(CURVE, window=3) == pytest.approx(6.0)


def test_convergence_episode_first_window_reaching_final_lower_bound():
    # Window means 2, 3 are below 3.51586; window 2 (13/3) is the first above.
    assert ev.convergence_episode(CURVE, window=3) == 2


def test_absolute_and_normalized_regret():
    # Episodes before convergence (0, 1): (6 - 0) + (6 - 2) = 10; normalised 10 / 6.
    assert ev.absolute_regret(CURVE, window=3) == pytest.approx(10.0)
    assert ev.normalized_regret(CURVE, window=3) == pytest.approx(10.0 / 6.0)


def test_normalized_instability():
    # After episode 2: returns 3, 6, 2, 5, 7, 6; below 3.51586: 3 and 2 -> 2 / 6.
    assert ev.normalized_instability(CURVE, window=3) == pytest.approx(1.0 / 3.0)


def test_return_evaluators_short_run():
    # [1, 3], W = 101: one window, lower = 2 - 12.7 < 1, so converged at 0, no regret;
    # the one later episode (3) is above the lower bound: instability 0.
    assert ev.return_evaluators([1.0, 3.0]) == {
        "final": 2.0,
        "convergence_episode": 0,
        "absolute_regret": 0.0,
        "normalized_regret": 0.0,
        "normalized_instability": 0.0,
    }


def test_undefined_ratios_are_nan():
    # Final return 0 cannot normalise; with one episode nothing follows convergence.
    assert math.isnan(ev.normalized_regret([0.0, 0.0], window=1))
    assert math.isnan(ev.normalized_instability([4.0], window=1))


def test_return_evaluators_default_window_is_101():
    # 102 episodes [0, 1 x 100, 101]: two windows of 101 episodes, 0..100 with
    # sum 0 + 100 and 1..101 with sum 100 + 101.
    returns = np.r_[0.0, np.ones(100), 101.0]
    rolled = ev.rolling_returns(returns)
    assert rolled.size == 101
    np.testing.assert_allclose(rolled.mean, [100 / 101, 201 / 101])


@pytest.mark.parametrize("window", [0, -3, 2.5, True])
def test_bad_window_raises(window):
    with pytest.raises(ValueError, match="window"):
        ev.rolling_returns(CURVE, window=window)


def test_bad_returns_raise():
    with pytest.raises(ValueError, match="returns: no episodes"):
        ev.final_return([])
    with pytest.raises(ValueError, match="returns must be finite"):
        ev.final_return([1.0, np.nan])
    with pytest.raises(ValueError, match="confidence"):
        ev.rolling_returns(CURVE, 3, confidence=1.0)


# ----------------------------------------------------------------- safety

SATISFIED = np.array([  # (T=4, K=2): constraint a violated at t=1,3; b at t=3
    [True, True],
    [False, True],
    [True, True],
    [False, False],
])

EPISODES = pd.DataFrame({
    "episode": [0, 1, 2],
    "return": [1.0, 2.0, 3.0],
    "length": [10, 10, 5],
    "violations/a": [2, 0, 5],
    "violations/b": [1, 1, 0],
    "violation_rate/a": [0.2, 0.0, 1.0],
    "violation_rate/b": [0.1, 0.1, 0.0],
    "safety/x/mean": [0.5, 1.5, 2.5],
    "safety/x/max": [1.0, 2.0, 3.0],
    "safety/q/1/min": [-1.0, -2.0, -3.0],
    "multiobj/reward": [4.0, 5.0, 6.0],
    "multiobj/safety": [0.5, 0.25, 1.0],
    "deadline_misses": [2, 0, 3],
})


def test_episode_violations_counts_unsatisfied_steps():
    np.testing.assert_array_equal(ev.episode_violations(SATISFIED), [2, 1])


def test_per_step_violation_rate_averages_over_episodes():
    # Episode 2 satisfies everything: per-step rates are half of episode 1's flags.
    flags = np.stack([SATISFIED, np.ones_like(SATISFIED)])
    expected = np.array([[0, 0], [0.5, 0], [0, 0], [0.5, 0.5]])
    np.testing.assert_array_equal(ev.per_step_violation_rate(flags), expected)


def test_safety_evaluator_sums_over_episodes():
    # a: 2 + 0 + 5 = 7; b: 1 + 1 + 0 = 2.
    assert ev.safety_evaluator(EPISODES) == {"a": 7, "b": 2}
    assert list(ev.violation_totals(EPISODES).columns) == ["a", "b"]


def test_mean_violation_rate_weighs_episodes_equally():
    # a: (0.2 + 0 + 1) / 3 = 0.4; b: (0.1 + 0.1 + 0) / 3 = 0.0667.
    rates = ev.mean_violation_rate(EPISODES)
    assert rates["a"] == pytest.approx(0.4)
    assert rates["b"] == pytest.approx(0.2 / 3)


def test_safety_var_stats_population_std():
    # x = [1, 2, 3, 6]: mean 3, deviations -2 -1 0 3, variance 14/4 = 3.5.
    stats = ev.safety_var_stats(np.array([[1.0, 0.0], [2.0, 0.0], [3.0, 0.0], [6.0, 4.0]]))
    np.testing.assert_allclose(stats["mean"], [3.0, 1.0])
    np.testing.assert_allclose(stats["std"], [math.sqrt(3.5), math.sqrt(3.0)])
    np.testing.assert_array_equal(stats["min"], [1.0, 0.0])
    np.testing.assert_array_equal(stats["max"], [6.0, 4.0])


def test_safety_var_table_columns_are_variable_and_stat():
    table = ev.safety_var_table(EPISODES)
    assert list(table.columns) == [("x", "mean"), ("x", "max"), ("q/1", "min")]
    assert table[("q/1", "min")].tolist() == [-1.0, -2.0, -3.0]


def test_multiobjective_totals_and_table():
    # [r, s] over 3 steps: r = 1 + 2 + 3 = 6, s = 1 + 0.5 + 0 = 1.5.
    values = np.array([[1.0, 1.0], [2.0, 0.5], [3.0, 0.0]])
    np.testing.assert_array_equal(ev.multiobjective_totals(values), [6.0, 1.5])
    table = ev.multiobjective_table(EPISODES)
    assert table.columns.tolist() == ["reward", "safety"]
    assert table["safety"].tolist() == [0.5, 0.25, 1.0]


def test_deadline_miss_rate_is_late_steps_per_step():
    # (2 + 0 + 3) late steps over (10 + 10 + 5) steps = 0.2.
    assert ev.deadline_miss_rate(EPISODES) == pytest.approx(0.2)


def test_across_seeds_mean_population_std_and_nan_ignored():
    # a: 1 and 3 -> mean 2, population std 1; b: NaN in seed 2 is left out.
    summary = ev.across_seeds([{"a": 1.0, "b": 4.0}, {"a": 3.0, "b": math.nan}])
    assert summary["a"] == {"mean": 2.0, "std": 1.0, "count": 2}
    assert summary["b"] == {"mean": 4.0, "std": 0.0, "count": 1}


@pytest.mark.parametrize("call, field", [
    (lambda df: ev.safety_evaluator(df.drop(columns=["violations/a", "violations/b"])), "violations/"),
    (lambda df: ev.mean_violation_rate(df.iloc[:0]), "violation_rate/<name>"),
    (lambda df: ev.deadline_miss_rate(df.drop(columns=["deadline_misses"])), "deadline_misses"),
    (lambda df: ev.deadline_miss_rate(df.iloc[:0]), "deadline_misses"),
    (lambda df: ev.multiobjective_table(df.drop(columns=["multiobj/safety"])), "multiobj/safety"),
    (lambda df: ev.safety_var_table(df.drop(columns=[c for c in df if c.startswith("safety/")])), "safety/"),
    (lambda df: ev.across_seeds([]), "results"),
])
def test_bad_tables_raise_naming_the_field(call, field):
    with pytest.raises(ValueError, match=re.escape(field)):
        call(EPISODES)


def test_bad_arrays_raise():
    with pytest.raises(ValueError, match=r"satisfied must be \(T, K\)"):
        ev.episode_violations(np.ones(3, dtype=bool))
    with pytest.raises(ValueError, match=r"satisfied must be \(E, T, K\)"):
        ev.per_step_violation_rate(np.ones((0, 2, 2), dtype=bool))
    with pytest.raises(ValueError, match=r"values must be \(T, ...\)"):
        ev.safety_var_stats(np.zeros((0, 2)))
    with pytest.raises(ValueError, match=r"multiobj values must be \(T, 2\)"):
        ev.multiobjective_totals(np.zeros((3, 3)))
