"""Env state snapshots: a fresh env restored from ``env_state()`` continues bit for bit.

Each case runs seeded random actions through an env whose time limit (7)
makes episodes end and autoreset, snapshots it mid-episode at step T0, and
records every output after it; a fresh env built with the same arguments,
restored from the snapshot (through an npz file read without pickle),
replays the same actions and must return exactly the same observations,
rewards, flags and info entries.
"""

import io

import gymnasium
import numpy as np
import pytest

import rwrl  # noqa: F401  (registers the rwrl/ ids)

from rwrl.agents.history import ObservationHistory
from rwrl.envs.gym_env import RwrlEnv
from rwrl.envs.vector_env import RwrlVectorEnv
from rwrl.core.env_state import flatten_tree

N, LIMIT, T0, T = 3, 7, 9, 26  # T0 is mid-episode; T - T0 crosses two episode ends

SAFETY = {"enable": True, "safety_coeff": 0.5, "constraints": ["slider_pos", "action_roc"]}
MULTIOBJ = {"enable": True, "reward": True, "coeff": 0.5, "observed": True}
REALTIME = {"enable": True, "mode": "simulated", "budget": 0.005,
            "latency": [0.0, 0.012, 0.0, 0.03, 0.0]}  # 0, 1, 0, 3, 0 missed periods of 10 ms
# rare dropped and stuck actions, so that they seldom hide the repetition's state
NOISE = {"gaussian": {"actions": 0.1, "observations": 0.1},
         "dropped": {"actions_prob": 0.05, "actions_steps": 3, "observations_prob": 0.2,
                     "observations_steps": 3},
         "stuck": {"actions_prob": 0.05, "actions_steps": 4, "observations_prob": 0.2,
                   "observations_steps": 4},
         "repetition": {"actions_prob": 0.5, "actions_steps": 4}}

CASES = {  # id -> (domain, task, challenge keyword arguments[, time limit])
    "cartpole": ("cartpole", "swingup", {}),
    "walker": ("walker", "walk", {}),
    "quadruped": ("quadruped", "walk", {}),
    "humanoid": ("humanoid", "stand", {}),
    "manipulator": ("manipulator", "bring_ball", {}),
    # the 9-step delays of 'hard' show only in episodes of more agent steps than 9 (the
    # missed real-time periods count towards the time limit: about 17 agent steps)
    "cartpole-hard-safety-multiobj-realtime": (
        "cartpole", "swingup", dict(combined_challenge="hard", safety_spec=SAFETY,
                                    multiobj_spec=MULTIOBJ, realtime_spec=REALTIME), 30),
    "cartpole-noise-realtime": ("cartpole", "swingup", dict(noise_spec=NOISE,
                                                           realtime_spec=REALTIME)),
    "walker-delays-safety": ("walker", "walk", dict(
        delay_spec={"actions": 2, "observations": 3, "rewards": 1},
        safety_spec={"constraints": ["joint_angle", "action_roc"]})),
    # perturbations step at resets: every episode, and every second one (a saw wave)
    "walker-perturb-every-episode": ("walker", "walk", dict(perturb_spec={
        "param": "thigh_length", "scheduler": "random_walk", "period": 1, "std": 0.05})),
    "cartpole-perturb-every-2-episodes": ("cartpole", "swingup", dict(perturb_spec={
        "param": "pole_length", "scheduler": "saw_wave", "period": 2, "std": 0.3})),
}


def npz_round_trip(state: dict) -> dict:
    """Return ``state`` after np.savez and np.load(allow_pickle=False)."""
    buffer = io.BytesIO()
    np.savez(buffer, **state)
    buffer.seek(0)
    with np.load(buffer, allow_pickle=False) as loaded:
        return {key: loaded[key] for key in loaded.files}


def random_actions(env, steps: int, seed: int = 0) -> np.ndarray:
    """Return (steps, *action shape) float32 actions in [-1, 1] (every suite task's bounds)."""
    rng = np.random.default_rng(seed)
    return rng.uniform(-1, 1, (steps,) + env.action_space.shape).astype(np.float32)


def replay(env, actions) -> list:
    return [env.step(a) for a in actions]


def mid_episode(env, actions) -> int:
    """Step a vector env through ``actions[:T0]``, then on until every env is mid-episode.

    Returns the steps taken after T0: at the snapshot no env has just reset
    or is about to autoreset (the missed periods of the real-time challenge
    end the episodes of every env at once, so T0 alone may be an episode end).
    """
    replay(env, actions[:T0])
    for extra, action in enumerate(actions[T0:]):
        if (env.batched.elapsed_steps > 0).all() and not env.env_state()["vector/resetting"].any():
            return extra
        env.step(action)
    raise AssertionError("no step after T0 was mid-episode for every env")


def assert_same_outputs(expected: list, actual: list) -> None:
    """Assert equal obs, rewards, flags and every info entry, step by step."""
    assert len(expected) == len(actual)
    for t, (want, got) in enumerate(zip(expected, actual)):
        for name, w, g in zip(("obs", "reward", "terminated", "truncated"), want, got):
            np.testing.assert_array_equal(g, w, err_msg=f"step {t}: {name}")
        want_info, got_info = flatten_tree(want[4]), flatten_tree(got[4])
        assert sorted(got_info) == sorted(want_info), f"step {t}: info keys"
        for key, value in want_info.items():
            np.testing.assert_array_equal(got_info[key], value, err_msg=f"step {t}: info {key}")


def assert_same_state(expected: dict, actual: dict) -> None:
    assert sorted(actual) == sorted(expected)
    for key, value in expected.items():
        assert actual[key].dtype == value.dtype, key
        np.testing.assert_array_equal(actual[key], value, err_msg=key)


@pytest.mark.parametrize("case", list(CASES))
def test_a_restored_vector_env_continues_exactly(case):
    domain, task, challenges, *limit = CASES[case]
    limit = limit[0] if limit else LIMIT
    make = lambda: RwrlVectorEnv(domain, task, N, time_limit=limit, **challenges)  # noqa: E731
    env = make()
    env.reset(seed=7)
    actions = random_actions(env, T0 + 3 * limit)
    t0 = T0 + mid_episode(env, actions[:T0 + limit])
    snapshot = env.env_state()
    expected = replay(env, actions[t0:])
    assert sum(out[3].sum() for out in expected) >= N  # episodes ended and autoreset after it

    fresh = make()
    fresh.restore_env_state(npz_round_trip(snapshot))
    assert_same_state(snapshot, fresh.env_state())
    assert_same_outputs(expected, replay(fresh, actions[t0:]))


def test_a_snapshot_holds_plain_arrays_only():
    domain, task, challenges, _ = CASES["cartpole-hard-safety-multiobj-realtime"]
    env = RwrlVectorEnv(domain, task, N, time_limit=LIMIT, **challenges)
    env.reset(seed=0)
    state = env.env_state()
    assert all(isinstance(k, str) and isinstance(v, np.ndarray) and v.dtype != object
               for k, v in state.items())
    assert_same_state(state, npz_round_trip(state))


def test_the_autoreset_marks_and_a_partial_reset_are_restored():
    env = RwrlVectorEnv("cartpole", "swingup", N, time_limit=2, delay_spec={"observations": 2})
    env.reset(seed=1)
    actions = random_actions(env, 6)
    replay(env, actions[:2])  # every episode just ended: the next step autoresets
    assert env.env_state()["vector/resetting"].all()
    snapshot = npz_round_trip(env.env_state())
    mask = {"reset_mask": np.array([True, False, True])}
    expected = [env.reset(options=mask)] + replay(env, actions[2:])
    fresh = RwrlVectorEnv("cartpole", "swingup", N, time_limit=2, delay_spec={"observations": 2})
    fresh.restore_env_state(snapshot)
    got = [fresh.reset(options=mask)] + replay(fresh, actions[2:])
    np.testing.assert_array_equal(got[0][0], expected[0][0])
    assert_same_state(flatten_tree(expected[0][1]), flatten_tree(got[0][1]))
    assert_same_outputs(expected[1:], got[1:])


def _run_single(env, actions) -> list:
    """Step ``env`` through ``actions``, resetting it unseeded (streams continue) at each end."""
    out = []
    for action in actions:
        out.append(env.step(action))
        if out[-1][3]:
            out.append(env.reset())
    return out


def test_a_restored_single_env_continues_exactly():
    make = lambda: RwrlEnv("cartpole", "swingup", time_limit=LIMIT,  # noqa: E731
                           combined_challenge="hard", safety_spec=SAFETY)
    env = make()
    env.reset(seed=5)
    actions = random_actions(env, T)
    _run_single(env, actions[:3])
    snapshot = npz_round_trip(env.env_state())
    expected = _run_single(env, actions[3:])
    # through gymnasium.make: its OrderEnforcing wrapper wants a reset before a step
    fresh = gymnasium.make("rwrl/cartpole-swingup-v0", time_limit=LIMIT,
                           combined_challenge="hard", safety_spec=SAFETY)
    fresh.reset(seed=123)
    fresh.unwrapped.restore_env_state(snapshot)
    got = _run_single(fresh, actions[3:])
    assert len(got) == len(expected) > T - 3  # resets happened
    for want, have in zip(expected, got):
        np.testing.assert_array_equal(have[0], want[0])
        assert have[1:-1] == want[1:-1]
        assert_same_state(flatten_tree(want[-1]), flatten_tree(have[-1]))


def test_observation_history_restores_its_buffers_and_its_env():
    make = lambda: ObservationHistory(  # noqa: E731
        RwrlVectorEnv("cartpole", "swingup", N, time_limit=LIMIT, delay_spec={"actions": 2}), 3)
    env = make()
    env.reset(seed=2)
    actions = random_actions(env, T)
    replay(env, actions[:T0])
    snapshot = env.env_state()
    assert {"history/obs", "history/actions", "env/vector/resetting"} <= set(snapshot)
    expected = replay(env, actions[T0:])
    fresh = make()
    fresh.restore_env_state(npz_round_trip(snapshot))
    assert_same_outputs(expected, replay(fresh, actions[T0:]))


def test_observation_history_of_another_length_is_refused():
    def make(k):
        return ObservationHistory(RwrlVectorEnv("cartpole", "swingup", N), k)

    env, other = make(3), make(2)
    env.reset(seed=0)
    other.reset(seed=0)
    with pytest.raises(ValueError, match=r"'history/obs': shape \(3, 2, 5\) float64, "
                                         r"expected \(3, 3, 5\) float64 \(same constructor"):
        env.restore_env_state(other.env_state())


# -- mismatching snapshots ----------------------------------------------------------------
def _snapshot(**kwargs):
    kwargs = {"domain_name": "cartpole", "task_name": "swingup", "num_envs": 2, **kwargs}
    env = RwrlVectorEnv(**kwargs)
    env.reset(seed=0)
    env.step(np.zeros((kwargs["num_envs"], len(env.single_action_space.low)), np.float32))
    return env.env_state()


def _edited(key, value):
    state = _snapshot(delay_spec={"actions": 2})
    if value is None:
        del state[key]
    else:
        state[key] = value
    return state


MISMATCHES = [  # (snapshot, pattern of the error)
    (lambda: _snapshot(task_name="balance", delay_spec={"actions": 2}),
     r"'task/name' = cartpole-balance, expected cartpole-swingup \(same constructor arguments"),
    (lambda: _snapshot(domain_name="walker", task_name="walk"), r"'task/name' = walker-walk"),
    (lambda: _snapshot(num_envs=3, delay_spec={"actions": 2}),
     r"env state '.*': shape \(3,.*expected \(2,"),
    (lambda: _snapshot(), r"key 'challenge/actions/delay/buffer' is missing"),
    (lambda: _snapshot(delay_spec={"actions": 2}, noise_spec={"gaussian": {"actions": 0.1}}),
     r"'challenge/stages' = \['actions/delay', 'actions/gaussian', 'actions/clip'\], expected "
     r"\['actions/delay', 'actions/clip'\]"),
    (lambda: _snapshot(delay_spec={"actions": 2, "rewards": 1}),
     r"'challenge/stages' = \['actions/delay', 'actions/clip', 'rewards/delay'\]"),
    (lambda: _snapshot(delay_spec={"actions": 3}),
     r"'challenge/actions/delay/buffer': shape \(4, 2, 1\) float64, expected \(3, 2, 1\)"),
    (lambda: _edited("task/elapsed_steps", None), r"'task/elapsed_steps' is missing"),
    (lambda: {**_snapshot(delay_spec={"actions": 2}), "task/extra": np.zeros(2)},
     r"key 'task/extra' is not expected \(1 extra\)"),
    (lambda: _edited("task/elapsed_steps", np.zeros(2, np.int32)),
     r"'task/elapsed_steps': shape \(2,\) int32, expected \(2,\) int64"),
    (lambda: _edited("vector/last/obs", [[0.0]]), r"'vector/last/obs' is a list"),
    (lambda: _edited("task/params", np.full((2, 4), 99.0)),
     r"'task/params' \(env 0\): parameter 'pole_length' = 99.0 is out of range"),
]


@pytest.mark.parametrize("index", range(len(MISMATCHES)))
def test_a_mismatching_snapshot_raises_before_anything_changes(index):
    make_snapshot, pattern = MISMATCHES[index]
    env = RwrlVectorEnv("cartpole", "swingup", 2, delay_spec={"actions": 2})
    env.reset(seed=3)
    before = env.env_state()
    with pytest.raises(ValueError, match=pattern):
        env.restore_env_state(make_snapshot())
    assert_same_state(before, env.env_state())


def test_a_snapshot_restores_into_an_env_never_reset_and_back():
    never = RwrlVectorEnv("cartpole", "swingup", 2)
    blank = never.env_state()
    assert not blank["vector/started"] and "vector/last/obs" not in blank
    started = RwrlVectorEnv("cartpole", "swingup", 2)
    started.reset(seed=0)
    started.restore_env_state(blank)
    with pytest.raises(RuntimeError, match="before reset"):
        started.step(np.zeros((2, 1), np.float32))
    never.restore_env_state(_snapshot())
    assert never.env_state()["vector/started"]
