"""Noise: exact run mechanics, run lengths equal to `steps`, rates within a binomial interval."""

import numpy as np
import pytest

from rwrl.challenges.noise import advance_runs
from tests.challenges.challenge_probe import ProbeTask, challenge_env

N, T = 64, 200


@pytest.mark.parametrize("uniforms, steps, expected_active", [
    # A draw below p = 0.5 starts a run of `steps` steps; draws inside a run are ignored.
    ([0.9, 0.1, 0.1, 0.1, 0.9, 0.1], 2, [0, 1, 1, 1, 1, 1]),
    ([0.1, 0.9, 0.9, 0.9, 0.1, 0.9], 3, [1, 1, 1, 0, 1, 1]),
    ([0.1, 0.9, 0.9], 1, [1, 0, 0]),
])
def test_advance_runs_rows(uniforms, steps, expected_active):
    counter = np.zeros((1, 1), np.int64)
    active = [int(advance_runs(counter, np.array([[u]]), 0.5, steps)[0, 0]) for u in uniforms]
    assert active == expected_active


def rollout(num_envs=N, steps=T, nu=1, action=0.3, **spec):
    env = challenge_env(ProbeTask(num_envs, nu=nu), **spec)
    obs, _ = env.reset(np.arange(num_envs), list(range(num_envs)))
    counters = [obs["counter"][:, 0]]
    for _ in range(steps):
        obs, _, _, _ = env.step(np.full((num_envs, nu), action))
        counters.append(obs["counter"][:, 0])
    return env, np.array(counters[1:]).T  # (N, T): counter of steps 1..T, never 0 unnoised


def run_lengths(mask_row):
    """Return the lengths of the maximal runs of True in a 1-D bool array.

    Runs cut by the window (begun at reset, or going on after the last step) are left out.
    """
    padded = np.concatenate([[0], mask_row.astype(int), [0]])
    edges = np.flatnonzero(np.diff(padded))
    starts, ends = edges[::2], edges[1::2]
    return (ends - starts)[(starts > 0) & (ends < len(mask_row))]


def assert_binomial(successes, trials, p):
    sd = np.sqrt(trials * p * (1 - p))
    assert abs(successes - trials * p) < 4.5 * sd, (successes, trials * p)


@pytest.mark.parametrize("kind", ["dropped", "stuck"])
@pytest.mark.parametrize("prob, steps", [(0.05, 3), (0.1, 1)])
def test_observation_runs_have_length_steps_and_rate_p(kind, prob, steps):
    _, seen = rollout(noise_spec={kind: {"observations_prob": prob, "observations_steps": steps}})
    truth = np.arange(1, T + 1, dtype=float)
    if kind == "dropped":
        hit = seen == 0.0
    else:  # stuck: the component holds the value it had on the step before
        hit = seen != truth
        held = np.concatenate([np.zeros((N, 1)), seen[:, :-1]], axis=1)
        np.testing.assert_array_equal(seen[hit], held[hit])
    runs = np.concatenate([run_lengths(row) for row in hit])
    assert len(runs) > 50 and np.all(runs % steps == 0)  # back-to-back runs merge
    # Every idle step draws a start with probability p.
    starts = hit.sum() / steps
    assert_binomial(starts, hit.size - hit.sum() + starts, prob)


def test_dropped_actions_are_zero_for_runs_of_steps():
    env, _ = rollout(noise_spec={"dropped": {"actions_prob": 0.05, "actions_steps": 4}})
    executed = np.array(env.task.executed_log)[:, :, 0].T
    assert set(np.unique(executed)) == {0.0, 0.3}
    runs = np.concatenate([run_lengths(row == 0.0) for row in executed])
    assert np.all(runs % 4 == 0) and len(runs) > 50


def test_stuck_actions_hold_the_previous_executed_value():
    env = challenge_env(ProbeTask(N, nu=1), noise_spec={"stuck": {"actions_prob": 0.1,
                                                                 "actions_steps": 2}})
    env.reset(np.arange(N), list(range(N)))
    for t in range(T):
        env.step(np.full((N, 1), t / T))
    executed = np.array(env.task.executed_log)[:, :, 0].T
    repeated = np.diff(executed, axis=1) == 0
    assert np.all(np.concatenate([run_lengths(r) for r in repeated]) % 2 == 0)
    assert_binomial(repeated.sum() // 2, repeated.size - repeated.sum() // 2, 0.1)


@pytest.mark.parametrize("steps, expected", [
    (1, [0, 1, 2, 3, 4, 5]),  # steps = 1 has no effect
    (2, [0, 0, 2, 2, 4, 4]),  # halves the control rate
    (3, [0, 0, 0, 3, 3, 3]),  # thirds it
])
def test_repetition_holds_each_action_for_steps_in_total(steps, expected):
    env = challenge_env(ProbeTask(1, nu=1),
                       noise_spec={"repetition": {"actions_prob": 1.0, "actions_steps": steps}})
    env.reset(np.array([0]), [0])
    for t in range(6):
        env.step(np.array([[t / 10.0]]))
    assert [a[0, 0] for a in env.task.executed_log] == [x / 10.0 for x in expected]


def test_repetition_rate_follows_prob():
    env = challenge_env(ProbeTask(N, nu=1),
                       noise_spec={"repetition": {"actions_prob": 0.3, "actions_steps": 2}})
    env.reset(np.arange(N), list(range(N)))
    for t in range(T):
        env.step(np.full((N, 1), t / T))
    executed = np.array(env.task.executed_log)[:, :, 0].T
    repeats = (np.diff(executed, axis=1) == 0).sum()  # one per repetition started
    assert_binomial(repeats, N * (T - 1) - repeats, 0.3)


def test_gaussian_action_noise_has_sigma_and_is_clipped():
    env = challenge_env(ProbeTask(N, nu=2), noise_spec={"gaussian": {"actions": 0.2}})
    env.reset(np.arange(N), list(range(N)))
    for _ in range(T):
        env.step(np.zeros((N, 2)))
    executed = np.array(env.task.executed_log)
    assert abs(executed.std() - 0.2) < 0.01 and abs(executed.mean()) < 0.01
    env = challenge_env(ProbeTask(N, nu=2), noise_spec={"gaussian": {"actions": 5.0}})
    env.reset(np.arange(N), list(range(N)))
    env.step(np.zeros((N, 2)))
    assert np.abs(env.task.executed_log[0]).max() == 1.0  # clipped to the bounds


def test_gaussian_observation_noise_has_sigma():
    _, seen = rollout(noise_spec={"gaussian": {"observations": 0.5}})
    residual = seen - np.arange(1, T + 1)
    assert abs(residual.std() - 0.5) < 0.02 and abs(residual.mean()) < 0.02
