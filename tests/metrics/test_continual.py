"""Continual metrics on hand-made evaluation tables, every expected value derived in a comment."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from rwrl.metrics.continual import (average_performance, evaluate_continual, forgetting,
                                    forward_transfer, performance_table, switch_times,
                                    training_periods, training_regimes)

SCALE = 100.0
STEPS = [0, 10, 20, 30, 40, 50]
TRAIN = [0, 0, 1, 1, 2, 2]
#: p_i(t) x 100 at each evaluation (the returns of one episode each, except below)
P = {0: [10, 50, 40, 30, 30, 20],
     1: [0, 10, 30, 60, 50, 40],
     2: [20, 20, 20, 30, 50, 80]}


def _table(steps=STEPS, train=TRAIN, p=P, two_episodes=True) -> pd.DataFrame:
    rows = []
    for k, (t, trained) in enumerate(zip(steps, train)):
        for regime, returns in p.items():
            if two_episodes and (t, regime) == (10, 0):  # returns 40 and 60: their mean is 50
                rows += [{"env_steps": t, "regime": regime, "train_regime": trained, "return": r}
                         for r in (40.0, 60.0)]
                continue
            rows.append({"env_steps": t, "regime": regime, "train_regime": trained,
                         "return": float(returns[k])})
    return pd.DataFrame(rows).sample(frac=1.0, random_state=0)  # row order must not matter


def test_the_performance_table_is_the_mean_return_per_evaluation_and_regime_over_the_scale():
    p = performance_table(_table(), SCALE)
    assert list(p.index) == STEPS and list(p.columns) == [0, 1, 2]
    assert p.loc[10, 0] == 0.5  # (40 + 60) / 2 / 100
    assert p[2].tolist() == [0.2, 0.2, 0.2, 0.3, 0.5, 0.8]
    assert training_regimes(_table()).tolist() == TRAIN


def test_average_performance_means_the_regimes_seen_so_far():
    # seen: {0} at 0 and 10; {0, 1} at 20 and 30; {0, 1, 2} from 40
    expected = [0.1, 0.5, (0.4 + 0.3) / 2, (0.3 + 0.6) / 2, (0.3 + 0.5 + 0.5) / 3,
                (0.2 + 0.4 + 0.8) / 3]
    assert average_performance(_table(), SCALE).tolist() == pytest.approx(expected)


def test_forgetting_is_the_end_of_the_own_period_minus_the_end_of_the_run():
    # regime 0 trained last at 10 (0.5), ends at 0.2: 0.3; regime 1: 0.6 at 30, 0.4: 0.2;
    # regime 2 is trained at the end: 0
    assert forgetting(_table(), SCALE) == pytest.approx({0: 0.3, 1: 0.2, 2: 0.0})
    # last=2 averages two evaluations: regime 0 (0.1 + 0.5) / 2 - (0.3 + 0.2) / 2 = 0.05;
    # regime 1 (0.3 + 0.6) / 2 - (0.5 + 0.4) / 2 = 0
    assert forgetting(_table(), SCALE, last=2) == pytest.approx({0: 0.05, 1: 0.0, 2: 0.0})
    # in returns (scale 1): 100 times the normalised values
    assert forgetting(_table())[0] == pytest.approx(30.0)


def _reference() -> pd.DataFrame:
    """Single-regime runs: regime 0's (p 0.2, 0.4: AUC 0.3), regime 1's (0.1, 0.3: AUC 0.2)."""
    rows = [{"env_steps": t, "regime": 0, "train_regime": 0, "return": r}
            for t, r in ((0, 20.0), (10, 40.0))]
    rows += [{"env_steps": t, "regime": 1, "train_regime": 1, "return": r}
             for t, r in ((0, 10.0), (10, 30.0))]
    # regime 0's run evaluated on regime 1 is not regime 1's reference
    rows.append({"env_steps": 10, "regime": 1, "train_regime": 0, "return": 99.0})
    return pd.DataFrame(rows)


def test_forward_transfer_normalises_the_auc_gain_by_what_the_reference_left():
    # AUC_0 over the first period (0, 10): (0.1 + 0.5) / 2 = 0.3 = the reference's: FT 0
    # AUC_1 over (20, 30): (0.3 + 0.6) / 2 = 0.45; reference 0.2: (0.45 - 0.2) / 0.8 = 0.3125
    # regime 2 has no reference: left out
    assert forward_transfer(_table(), _reference(), SCALE) == pytest.approx({0: 0.0, 1: 0.3125})


def test_forward_transfer_is_nan_when_the_reference_is_perfect():
    perfect = pd.DataFrame([{"env_steps": 0, "regime": 0, "train_regime": 0, "return": 100.0}])
    assert math.isnan(forward_transfer(_table(), perfect, SCALE)[0])


def test_with_cycles_transfer_reads_the_first_period_and_forgetting_the_last():
    steps, train = [0, 10, 20, 30], [0, 1, 0, 1]
    p = {0: [20, 10, 60, 30], 1: [0, 40, 20, 50]}
    table = _table(steps, train, p, two_episodes=False)
    assert training_periods(training_regimes(table)) == [(0, [0]), (1, [10]), (0, [20]), (1, [30])]
    # forgetting of 0: its last period ends at 20 (0.6), the run at 0.3
    assert forgetting(table, SCALE) == pytest.approx({0: 0.3, 1: 0.0})
    # transfer of 0: its first period is the evaluation at 0 alone (0.2); reference 0.3
    reference = _reference()
    assert forward_transfer(table, reference, SCALE)[0] == pytest.approx((0.2 - 0.3) / 0.7)


def test_switch_times_follow_the_majority_of_the_episodes_finished_together():
    rows = pd.DataFrame({
        "env_steps": [100, 100, 100, 200, 200, 200, 300, 300, 300, 400, 400, 400],
        "regime":    [0, 0, 0, 0, 1, 0, 1, 1, 0, 2, 2, 2]})
    # at 200 two of three still in 0; at 300 two in 1 (switch placed at 200); then 2 at 400
    assert switch_times(rows) == [(200.0, 1), (300.0, 2)]
    tie = pd.DataFrame({"env_steps": [1, 1, 2, 2], "regime": [0, 0, 1, 0]})
    assert switch_times(tie) == []  # a tie votes for the lowest regime


def test_evaluate_continual_takes_the_eval_rows_and_the_longest_episode_as_the_scale():
    evals = _table().assign(phase="eval", length=100)
    train = pd.DataFrame([{"phase": "train", "env_steps": 50, "regime": 2, "return": 7.0,
                           "length": 100}])
    result = evaluate_continual(pd.concat([evals, train]))
    assert result == pytest.approx({
        "continual/scale": 100.0,
        "continual/average_performance": (0.2 + 0.4 + 0.8) / 3,
        "continual/forgetting": (0.3 + 0.2 + 0.0) / 3,
        "continual/performance/0": 0.2, "continual/performance/1": 0.4,
        "continual/performance/2": 0.8,
        "continual/forgetting/0": 0.3, "continual/forgetting/1": 0.2,
        "continual/forgetting/2": 0.0})
    assert evaluate_continual(evals.drop(columns="train_regime")) == {}  # a run without regimes


@pytest.mark.parametrize("call, match", [
    (lambda t: performance_table(t, scale=0.0), r"scale = 0.0: give a finite number > 0"),
    (lambda t: performance_table(t.drop(columns="regime")), r"missing column\(s\) \['regime'\]"),
    (lambda t: forgetting(t, last=0), r"last = 0: give an integer >= 1"),
])
def test_bad_arguments_are_named(call, match):
    with pytest.raises(ValueError, match=match):
        call(_table())
