"""EpisodeAccumulator: masked steps and numerically safe statistics."""

import math

import numpy as np
import pytest

from rwrl.metrics.accumulator import EpisodeAccumulator

BIG = 1e8  # a variable whose mean dwarfs its spread: sum-of-squares cancellation bait


def step_info(t: int) -> dict:
    # env 0 violates "c" only at t = 2; env 1 always. v = [BIG + t, t].
    return {
        "constraints": np.array([[t != 2], [False]]),
        "cost": np.array([float(t == 2), 1.0]),
        "safety_vars": {"v": np.array([BIG + t, float(t)])},
    }


def test_masked_steps_and_stats_far_from_zero():
    acc = EpisodeAccumulator(2, ("c",))
    acc.observe_reset(slice(None), {"safety_vars": {"v": np.array([BIG, 0.0])}})
    # env 1 sits out step 2 (an autoreset step in a vector env).
    for t, active in [(1, [True, True]), (2, [True, False]), (3, [True, True])]:
        acc.add_step(np.array(active), np.array([1.0, 10.0]), step_info(t))
    row0, row1 = acc.row(0), acc.row(1)
    # env 0: t = 1, 2, 3 -> return 3, one violation; v = BIG + [1, 2, 3]: std sqrt(2/3).
    assert (row0["return"], row0["length"], row0["violations/c"], row0["cost"]) == (3.0, 3, 1, 1.0)
    assert row0["safety/v/mean"] == BIG + 2.0
    assert row0["safety/v/std"] == pytest.approx(math.sqrt(2.0 / 3.0), rel=1e-9)
    assert (row0["safety/v/min"], row0["safety/v/max"]) == (BIG + 1.0, BIG + 3.0)
    # env 1: t = 1, 3 only -> return 20, two violations; v = [1, 3]: mean 2, std 1.
    assert [row1[k] for k in ("return", "length", "violations/c", "violation_rate/c")] == [20.0, 2, 2, 1.0]
    assert [row1[f"safety/v/{stat}"] for stat in ("mean", "std", "min", "max")] == [2.0, 1.0, 1.0, 3.0]


def test_clear_forgets_only_the_given_envs():
    acc = EpisodeAccumulator(2, ("c",))
    reset_info = {"safety_vars": {"v": np.zeros(2)}, "perturbation": {"p": np.array([1.0, 2.0])}}
    acc.observe_reset(slice(None), reset_info)
    acc.add_step(np.ones(2, dtype=bool), np.array([1.0, 1.0]), step_info(1))
    acc.clear(np.array([False, True]))
    assert (acc.row(0)["length"], acc.row(0)["perturb/p"]) == (1, 1.0)
    assert acc.row(1)["length"] == 0 and math.isnan(acc.row(1)["perturb/p"])


def test_wrong_number_of_flags_raises():
    acc = EpisodeAccumulator(2, ("a", "b"))
    with pytest.raises(ValueError, match=r"info\['constraints'\] has 1 flags per env, expected 2"):
        acc.add_step(np.ones(2, dtype=bool), np.zeros(2), step_info(1))


def test_missing_safety_var_raises():
    acc = EpisodeAccumulator(2, ("c",))
    acc.add_step(np.ones(2, dtype=bool), np.zeros(2), step_info(1))
    info = step_info(2)
    info["safety_vars"] = {"w": np.zeros(2)}
    with pytest.raises(ValueError, match=r"info\['safety_vars'\] lacks 'v'"):
        acc.add_step(np.ones(2, dtype=bool), np.zeros(2), info)


def test_deadline_misses_count_late_steps_and_missed_periods_separately():
    acc = EpisodeAccumulator(1, ("c",))
    acc.observe_reset(slice(None), {"safety_vars": {}})
    for missed in (0, 3, 2, 0):  # two late steps, costing 3 + 2 control periods
        info = {"constraints": np.array([[True]]), "cost": np.zeros(1), "safety_vars": {},
                "realtime": {"missed": np.array([missed]), "latency": np.array([0.01 * missed])}}
        acc.add_step(np.array([True]), np.zeros(1), info)
    row = acc.row(0)
    assert (row["deadline_misses"], row["missed_periods"]) == (2, 5)
    assert row["latency/max"] == pytest.approx(0.03)
