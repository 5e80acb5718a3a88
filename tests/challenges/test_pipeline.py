"""The pipeline: transform order, determinism across batch sizes, and the real cartpole."""

import numpy as np

from rwrl.challenges.pipeline import ACTION_PATH, OBSERVATION_PATH
from rwrl.tasks.task import BatchedTask
from tests.challenges.challenge_probe import ProbeTask, challenge_env

EVERYTHING = dict(
    combined_challenge="medium",
    safety_spec={"constraints": ["small_action", "early", "action_roc"], "safety_coeff": 0.8},
    multiobj_spec={"reward": True, "coeff": 0.3, "observed": True},
    realtime_spec={"budget": 0.01, "latency": [0.0, 0.0, 0.02, 0.0, 0.011]},
)


def test_stage_names_follow_the_documented_order():
    env = challenge_env(ProbeTask(1, nu=1), **EVERYTHING)
    assert env.action_stage_names == ("delay", "repetition", "gaussian", "clip", "realtime")
    assert env.observation_stage_names == OBSERVATION_PATH
    assert ACTION_PATH[-2:] == ("clip", "realtime")
    assert list(env.observation_spec) == ["counter", "action", "constraints", "dummy", "multiobj"]


def executed(steps=6, **spec):
    env = challenge_env(ProbeTask(1, nu=1), **spec)
    env.reset(np.array([0]), [3])
    for t in range(steps):
        env.step(np.array([[t / 10.0]]))
    return np.array([a[0, 0] for a in env.task.executed_log])


def test_action_delay_acts_before_repetition():
    out = executed(delay_spec={"actions": 1},
                   noise_spec={"repetition": {"actions_prob": 1.0, "actions_steps": 2}})
    # delayed 0 0 1 2 3 4, then held in pairs (repetition after delay would give 0 0 0 2 2 4)
    np.testing.assert_allclose(out, np.array([0, 0, 1, 1, 3, 3]) / 10.0)


def test_action_noise_acts_after_delay():
    gauss = {"gaussian": {"actions": 0.01}}
    delayed = executed(delay_spec={"actions": 2}, noise_spec=gauss)
    plain = executed(noise_spec=gauss)
    agent = np.arange(6) / 10.0
    # the noise of step t rides on a_{t-2}: the same numbers as the undelayed env's step t
    np.testing.assert_allclose(delayed - agent[np.maximum(0, np.arange(6) - 2)], plain - agent,
                               atol=1e-12)


def observations(num_envs=1, steps=6, **spec):
    env = challenge_env(ProbeTask(num_envs, nu=1), **spec)
    obs, _ = env.reset(np.arange(num_envs), list(range(num_envs)))
    seen = [obs]
    for _ in range(steps):
        seen.append(env.step(np.full((num_envs, 1), 0.2))[0])
    return seen


def test_observation_noise_acts_before_delay_and_extra_dims_after():
    noise = {"gaussian": {"observations": 0.3}, "stuck": {"observations_prob": 0.2}}
    dims = {"num_random_state_observations": 4}
    delayed = observations(delay_spec={"observations": 2}, noise_spec=noise,
                           dimensionality_spec=dims)
    plain = observations(noise_spec=noise, dimensionality_spec=dims)
    for t in range(7):
        np.testing.assert_array_equal(delayed[t]["counter"], plain[max(0, t - 2)]["counter"])
        np.testing.assert_array_equal(delayed[t]["dummy"], plain[t]["dummy"])  # not delayed


def run(env, ids, seeds, episodes=2, steps=12):
    """Return every observation, reward and info of a few episodes, per env in ``ids``."""
    trace = []
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (episodes, steps, 1))
    for episode in range(episodes):
        obs, info = env.reset(np.arange(env.num_envs), seeds if episode == 0 else
                              [None] * env.num_envs)
        trace.append((obs, info))
        for t in range(steps):
            batch = np.repeat(actions[episode, t][None], env.num_envs, axis=0)
            obs, reward, _, info = env.step(batch)
            trace.append((obs, reward, info))
    return trace


def assert_env_equal(vector_trace, single_trace, index):
    def pick(x):
        if isinstance(x, dict):
            return {k: pick(v) for k, v in x.items()}
        return np.asarray(x)[index:index + 1] if np.ndim(x) else x

    def same(a, b):
        if isinstance(a, dict):
            assert a.keys() == b.keys()
            for k in a:
                same(a[k], b[k])
        elif isinstance(a, tuple):
            for x, y in zip(a, b):
                same(x, y)
        else:
            np.testing.assert_array_equal(a, b)

    for v, s in zip(vector_trace, single_trace):
        same(tuple(pick(x) for x in v), s)


def test_vector_env_i_equals_single_env_i_with_every_challenge_on():
    seeds = [11, 12, 13]
    vector = run(challenge_env(ProbeTask(3, nu=1), **EVERYTHING), np.arange(3), seeds)
    single = run(challenge_env(ProbeTask(1, nu=1), **EVERYTHING), np.arange(1), [12])
    assert_env_equal(vector, single, 1)


def test_same_seed_same_trajectory_other_seed_differs():
    a = run(challenge_env(ProbeTask(1, nu=1), **EVERYTHING), np.arange(1), [4])
    b = run(challenge_env(ProbeTask(1, nu=1), **EVERYTHING), np.arange(1), [4])
    c = run(challenge_env(ProbeTask(1, nu=1), **EVERYTHING), np.arange(1), [5])
    assert_env_equal(a, b, 0)
    assert not np.array_equal(a[-1][0]["dummy"], c[-1][0]["dummy"])


# -- the real cartpole --------------------------------------------------------------------


def cartpole(num_envs=1, **spec):
    return challenge_env(BatchedTask("cartpole", "swingup", num_envs), **spec)


def cartpole_rollout(env, seeds, steps=15):
    n = env.num_envs
    obs, _ = env.reset(np.arange(n), seeds)
    actions = np.random.default_rng(1).uniform(-1, 1, (steps, 1, 1))
    out = [(obs, None, None)]
    for t in range(steps):
        obs, reward, _, info = env.step(np.repeat(actions[t], n, axis=0))
        out.append((obs, reward, info))
    return out


def test_cartpole_delayed_observation_at_t_is_undelayed_at_t_minus_d():
    d = 3
    delayed = cartpole_rollout(cartpole(delay_spec={"observations": d, "rewards": d}), [7])
    plain = cartpole_rollout(cartpole(), [7])
    for t in range(len(plain)):
        for key in ("position", "velocity"):
            np.testing.assert_array_equal(delayed[t][0][key], plain[max(0, t - d)][0][key])
        if t >= 1:
            np.testing.assert_array_equal(delayed[t][1], plain[max(1, t - d)][1])


def test_cartpole_perturbation_changes_the_next_state():
    perturbed = cartpole_rollout(cartpole(perturb_spec={"param": "pole_length", "start": 2.0}),
                                 [7], steps=2)
    plain = cartpole_rollout(cartpole(), [7], steps=2)
    # Same seed, same initial state; the longer pole falls differently.
    np.testing.assert_array_equal(perturbed[0][0]["position"][:, 0], plain[0][0]["position"][:, 0])
    assert not np.allclose(perturbed[2][0]["velocity"], plain[2][0]["velocity"])
    assert perturbed[1][2]["perturbation"]["pole_length"].tolist() == [2.0]


def test_cartpole_vector_env_i_equals_single_env_i_with_hard_and_safety():
    spec = dict(combined_challenge="hard", safety_spec={"safety_coeff": 0.5},
                multiobj_spec={"reward": True, "coeff": 0.5, "observed": True})
    vector = cartpole_rollout(cartpole(3, **spec), [20, 21, 22])
    single = cartpole_rollout(cartpole(1, **spec), [22])
    for (vo, vr, vi), (so, sr, si) in zip(vector, single):
        for key in vo:
            np.testing.assert_array_equal(vo[key][2:3], so[key])
        if vr is not None:
            np.testing.assert_array_equal(vr[2:3], sr)
            np.testing.assert_array_equal(vi["constraints"][2:3], si["constraints"])
            assert vi["perturbation"]["pole_length"][2] == si["perturbation"]["pole_length"][0]


def test_set_state_restarts_the_stages_at_the_new_state():
    env = challenge_env(ProbeTask(2, nu=1), delay_spec={"observations": 2, "actions": 1})
    env.reset(np.arange(2), [0, 1])
    for t in range(4):
        env.step(np.full((2, 1), 0.1 * (t + 1)))
    obs, info = env.set_state(np.array([1]), np.array([[7.0]]), None)
    assert obs["counter"].tolist() == [[7.0]] and info["constraints"].shape == (1, 2)
    obs, *_ = env.step(np.full((2, 1), 0.9))
    # env 1's observation delay was refilled with the state set; env 0's still lags
    assert obs["counter"][:, 0].tolist() == [3.0, 7.0]
    # env 1's action delay restarted: its first action after set_state is held once
    assert env.task.executed_log[-1][:, 0].tolist() == [0.4, 0.9]
