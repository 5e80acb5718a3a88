"""Delays: output lags input by exactly d steps, on actions, observations and rewards."""

import numpy as np
import pytest

from rwrl.challenges.delay import Delay
from rwrl.challenges.stage import Frame
from tests.challenges.challenge_probe import ProbeTask, challenge_env

STEP = Frame()  # a step of the whole batch


@pytest.mark.parametrize("steps, inputs, expected", [
    # d = 0 is the identity.
    (0, [1, 2, 3], [1, 2, 3]),
    # The FIFO starts with d + 1 copies of the first item: out_t = in_max(0, t - d).
    (1, [1, 2, 3, 4], [1, 1, 2, 3]),
    (3, [1, 2, 3, 4, 5, 6], [1, 1, 1, 1, 2, 3]),
])
def test_delay_rows(steps, inputs, expected):
    delay = Delay(steps, num_envs=1, shape=())
    delay.reset(np.array([0]))
    assert [float(delay(np.array([x], float), STEP)[0]) for x in inputs] == expected


def test_delay_reset_of_one_env_leaves_the_others():
    delay = Delay(2, num_envs=2, shape=())
    delay.reset(np.array([0, 1]))
    out = [delay(np.array([t, 10.0 + t]), STEP) for t in range(3)]
    delay.reset(np.array([1]))  # env 1 starts a new episode: refilled by its next item
    out += [delay(np.array([t, 100.0 + t]), STEP) for t in range(3, 5)]
    np.testing.assert_array_equal(np.array(out), [[0, 10], [0, 10], [0, 10], [1, 103], [2, 103]])


def test_delay_with_first_item_at_reset():
    delay = Delay(2, num_envs=1, shape=(2,))
    delay = Delay(2, num_envs=1, shape=(2,), fill_at_reset=True)
    delay.reset(np.array([0]))
    first = delay(np.array([[7.0, 8.0]]), Frame(ids=np.array([0])))
    np.testing.assert_array_equal(first, [[7, 8]])
    outs = [delay(np.full((1, 2), float(t)), STEP)[0, 0] for t in (1, 2, 3)]
    assert outs == [7.0, 7.0, 1.0]


def run_probe(steps=8, **spec):
    env = challenge_env(ProbeTask(1, nu=1), **spec)
    obs, _ = env.reset(np.array([0]), [0])
    observations, rewards = [obs["counter"][0, 0]], []
    for t in range(steps):
        obs, reward, _, _ = env.step(np.array([[t / 10.0]]))
        observations.append(obs["counter"][0, 0])
        rewards.append(reward[0])
    return env, np.array(observations), np.array(rewards)


@pytest.mark.parametrize("d", [1, 3])
def test_pipeline_delays_each_stream_by_exactly_d(d):
    env, obs, rewards = run_probe(delay_spec={"actions": d, "observations": d, "rewards": d})
    _, obs0, rewards0 = run_probe()
    # Actions: the physics executed a_max(0, t - d) at step t.
    executed = [a[0, 0] for a in env.task.executed_log]
    assert executed == [max(0, t - d) / 10.0 for t in range(8)]
    # Observations (counter since reset, o_0 = the reset observation) and rewards.
    np.testing.assert_array_equal(obs, obs0[np.maximum(0, np.arange(9) - d)])
    np.testing.assert_array_equal(rewards, rewards0[np.maximum(0, np.arange(8) - d)])


def test_pipeline_delay_buffers_restart_at_reset():
    env = challenge_env(ProbeTask(1, nu=1), delay_spec={"observations": 2})
    env.reset(np.array([0]), [0])
    for _ in range(5):
        env.step(np.zeros((1, 1)))
    obs, _ = env.reset(np.array([0]), [None])
    assert obs["counter"][0, 0] == 0.0  # not the previous episode's counter
    seen = [env.step(np.zeros((1, 1)))[0]["counter"][0, 0] for _ in range(3)]
    assert seen == [0.0, 0.0, 1.0]
