"""Real-time inference: missed control periods run the fallback, then the late action."""

import time

import numpy as np
import pytest

from rwrl.challenges.realtime import RealTime
from tests.challenges.challenge_probe import ProbeTask, challenge_env


@pytest.mark.parametrize("budget, latency, expected", [
    # missed = ceil((L - budget) / dt), dt = 0.01 s; on time if L <= budget
    (0.01, 0.0, 0), (0.01, 0.01, 0), (0.01, 0.0101, 1), (0.01, 0.02, 1),
    (0.01, 0.025, 2), (0.005, 0.035, 3), (0.0, 1.0, 100),  # capped at max_missed
])
def test_missed_periods(budget, latency, expected):
    rt = RealTime("simulated", budget, "hold", 0.0, control_timestep=0.01, max_missed=100,
                  num_envs=1, action_size=1)
    assert rt.missed(latency) == expected


@pytest.mark.parametrize("fallback, expected", [
    ("hold", [0.1, 0.1, 0.2, 0.2, 0.2, 0.3]),
    ("zero", [0.1, 0.0, 0.2, 0.0, 0.0, 0.3]),
])
def test_fallback_runs_before_the_late_action(fallback, expected):
    task = ProbeTask(2, nu=1)
    env = challenge_env(task, realtime_spec={"mode": "simulated", "budget": 0.01,
                                            "fallback": fallback,
                                            "latency": [0.0, 0.015, 0.03]})
    env.reset(np.arange(2), [0, 1])
    infos = [env.step(np.full((2, 1), a))[3] for a in (0.1, 0.2, 0.3)]
    assert [a[0, 0] for a in task.executed_log] == expected
    assert [i["realtime"]["missed"].tolist() for i in infos] == [[0, 0], [1, 1], [2, 2]]
    np.testing.assert_array_equal(infos[1]["realtime"]["latency"], [0.015, 0.015])
    # The agent sees the state after the late action: 1 + 2 + 3 physical periods.
    assert task.elapsed_steps.tolist() == [6, 6]


def test_action_roc_sees_the_fallback_as_previous_action():
    env = challenge_env(ProbeTask(1, nu=1), safety_spec={"constraints": ["action_roc"]},
                       realtime_spec={"budget": 0.0, "fallback": "zero", "latency": 0.01})
    env.reset(np.array([0]), [0])
    flags = [env.step(np.array([[a]]))[3]["constraints"][0, 0] for a in (0.9, 0.9, -0.9)]
    # previous executed action is always the zero fallback: |0.9| < 1 holds, |-0.9| too
    assert flags == [True, True, True]
    assert [a[0, 0] for a in env.task.executed_log] == [0.0, 0.9, 0.0, 0.9, 0.0, -0.9]


def test_missed_periods_stop_at_the_time_limit():
    task = ProbeTask(1, nu=1, time_limit=5)
    env = challenge_env(task, realtime_spec={"budget": 0.0, "latency": 0.1})  # 10 missed
    env.reset(np.array([0]), [0])
    _, _, _, info = env.step(np.zeros((1, 1)))
    assert info["realtime"]["missed"][0] == 4 and task.elapsed_steps[0] == 5


def test_callable_latency_and_info_on_reset():
    env = challenge_env(ProbeTask(1, nu=1),
                       realtime_spec={"budget": 0.01, "latency": lambda step: 0.02 * step})
    _, info = env.reset(np.array([0]), [0])
    assert info["realtime"]["missed"].tolist() == [0]
    missed = [env.step(np.zeros((1, 1)))[3]["realtime"]["missed"][0] for _ in range(3)]
    assert missed == [0, 1, 3]  # latencies 0, 0.02, 0.04 s


def test_wallclock_measures_the_time_since_the_observation():
    env = challenge_env(ProbeTask(1, nu=1),
                       realtime_spec={"mode": "wallclock", "budget": 0.05, "max_missed": 1000})
    env.reset(np.array([0]), [0])
    _, _, _, fast = env.step(np.zeros((1, 1)))
    time.sleep(0.1)  # a slow controller: at least 5 periods of 10 ms past the budget
    _, _, _, slow = env.step(np.zeros((1, 1)))
    assert fast["realtime"]["missed"][0] == 0
    assert slow["realtime"]["latency"][0] >= 0.1
    assert slow["realtime"]["missed"][0] >= 5
