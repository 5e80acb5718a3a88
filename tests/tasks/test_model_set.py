"""The model set's one-call step equals K separate single-env steps, bit for bit."""

import numpy as np
import pytest

from rwrl.tasks.model_set import ModelSet
from rwrl.tasks.task import BatchedTask

CASES = [("cartpole", "swingup", "pole_length", [0.5, 1.0, 2.0]),
         ("walker", "walk", "thigh_length", [0.15, 0.225, 0.35, 0.5])]


def _states(domain, task, count, seed):
    """Return (qpos, qvel) of ``count`` states a few random steps into episodes."""
    env = BatchedTask(domain, task, count)
    env.reset(np.arange(count), [seed + i for i in range(count)])
    rng = np.random.default_rng(seed)
    for _ in range(5):
        env.step(rng.uniform(env.action_low, env.action_high, (count, len(env.action_low))))
    return env.physics.qpos.copy(), env.physics.qvel.copy()


@pytest.mark.parametrize("domain, task, parameter, values", CASES)
def test_one_call_equals_k_single_steps(domain, task, parameter, values):
    B, K = 3, len(values)
    qpos, qvel = _states(domain, task, B, seed=7)
    nominal = BatchedTask(domain, task, 1)
    actions = np.random.default_rng(1).uniform(nominal.action_low, nominal.action_high,
                                               (B, len(nominal.action_low)))
    warm = np.random.default_rng(2).normal(size=qvel.shape)
    model_set = ModelSet(domain, task, parameter, values, batch_size=B)
    out = model_set.step(qpos, qvel, actions, warm)
    assert out.obs.shape[:2] == (B, K) and out.reward.shape == (B, K)
    for k, value in enumerate(values):
        single = BatchedTask(domain, task, 1)
        single.set_parameter(0, parameter, value)
        for b in range(B):
            single.set_state(np.array([0]), qpos[b:b + 1], qvel[b:b + 1])
            single.physics.field("qacc_warmstart")[0] = warm[b]
            obs, reward, _, _ = single.step(actions[b:b + 1])
            np.testing.assert_array_equal(out.obs[b, k], obs[0])
            np.testing.assert_array_equal(out.reward[b, k], reward[0])
            np.testing.assert_array_equal(out.qpos[b, k], single.physics.qpos[0])
    # the models differ: the same state and action lead to different next states
    assert not np.array_equal(out.qpos[:, 0], out.qpos[:, -1])


def test_repeated_calls_do_not_depend_on_the_previous_call():
    qpos, qvel = _states("cartpole", "swingup", 2, seed=3)
    model_set = ModelSet("cartpole", "swingup", "pole_length", [0.5, 1.5], batch_size=2)
    actions = np.array([[0.3], [-0.8]])
    first = model_set.step(qpos, qvel, actions)
    model_set.step(qpos + 0.1, qvel, -actions)
    again = model_set.step(qpos, qvel, actions)
    np.testing.assert_array_equal(first.obs, again.obs)


@pytest.mark.parametrize("kwargs, match", [
    (dict(values=[]), "values is empty"),
    (dict(values=[0.1]), r"pole_length"),
    (dict(parameter="wing_span"), r"unknown parameter 'wing_span'.*allowed"),
    (dict(batch_size=0), "batch_size"),
])
def test_bad_sets_raise_naming_the_field(kwargs, match):
    args = dict(parameter="pole_length", values=[1.0], batch_size=2) | kwargs
    with pytest.raises(ValueError, match=match):
        ModelSet("cartpole", "swingup", **args)


def test_bad_shapes_raise_naming_the_sizes():
    model_set = ModelSet("cartpole", "swingup", "pole_length", [1.0, 2.0], batch_size=2)
    qpos, qvel = _states("cartpole", "swingup", 2, seed=0)
    with pytest.raises(ValueError, match=r"actions shape \(3, 1\).*\(2, 1\)"):
        model_set.step(qpos, qvel, np.zeros((3, 1)))
    with pytest.raises(ValueError, match="need 2 rows"):
        model_set.step(qpos[:1], qvel[:1], np.zeros((2, 1)))
