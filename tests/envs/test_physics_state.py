"""info['physics_state']: off by default; when on, the state that the next step starts from, exactly."""

import gymnasium
import numpy as np
import pytest

import rwrl  # noqa: F401  (registers the rwrl/ ids)
from rwrl.tasks.model_set import ModelSet


def _split(state, nq, nv):
    return state[:, :nq], state[:, nq:nq + nv], state[:, nq + nv:]


def test_off_by_default():
    env = gymnasium.make_vec("rwrl/cartpole-swingup-v0", num_envs=2)
    _, info = env.reset(seed=0)
    assert "physics_state" not in info
    assert "physics_state" not in env.step(np.zeros((2, 1)))[-1]


# (domain, task, a perturbable parameter at its nominal value)
NOMINAL = [("cartpole", "swingup", "pole_length", 1.0), ("walker", "walk", "thigh_length", 0.225)]


@pytest.mark.parametrize("domain, task, parameter, value", NOMINAL)
def test_a_model_stepped_from_the_state_reproduces_the_next_observation(domain, task, parameter, value):
    n, limit = 3, 4
    env = gymnasium.make_vec(f"rwrl/{domain}-{task}-v0", num_envs=n, time_limit=limit,
                             physics_state_info=True)
    obs, info = env.reset(seed=1)
    nominal = ModelSet(domain, task, parameter, [value], batch_size=n)
    assert nominal.task.get_parameter(0, parameter) == env.unwrapped.batched.get_parameter(0, parameter)
    model = env.unwrapped.physics.model
    assert info["physics_state"].shape == (n, model.nq + 2 * model.nv)
    rng = np.random.default_rng(0)
    checked_after_reset = False
    resetting = np.zeros(n, bool)  # NEXT_STEP autoreset: the step after a truncation resets
    for t in range(2 * limit + 2):  # crosses the time limit and the autoreset step
        state = info["physics_state"]
        actions = rng.uniform(-1, 1, (n, env.single_action_space.shape[0])).astype(np.float32)
        obs, _, _, truncated, info = env.step(actions)
        stepped, resetting = ~resetting, truncated & ~resetting
        out = nominal.step(*_split(state, model.nq, model.nv)[:2], actions.astype(np.float64),
                           _split(state, model.nq, model.nv)[2])
        np.testing.assert_array_equal(out.obs[stepped, 0], obs[stepped])
        checked_after_reset |= bool(stepped.all() and t > limit)
    assert checked_after_reset  # steps from an autoreset's state were checked too


def test_the_single_env_reports_it_unbatched():
    env = gymnasium.make("rwrl/cartpole-swingup-v0", physics_state_info=True)
    _, info = env.reset(seed=0)
    assert info["physics_state"].shape == (env.unwrapped.physics_state_size,)
    _, _, _, _, info = env.step(np.zeros(1, np.float32))
    np.testing.assert_array_equal(info["physics_state"][:2], env.unwrapped.physics.qpos[0])
