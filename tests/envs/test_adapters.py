"""The adapters: episodes, autoreset, seeding, bad input, set_state, rendering."""

import gymnasium
import numpy as np
import pytest

import rwrl

ID = "rwrl/cartpole-swingup-v0"


def test_time_limit_is_a_truncation_at_1000_steps():
    env = gymnasium.make(ID)
    env.reset(seed=0)
    for t in range(1000):
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        assert not terminated
        assert truncated == (t == 999)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(env.action_space.sample())


def test_vector_autoreset_is_next_step():
    vec = gymnasium.make_vec(ID, num_envs=2, time_limit=3)
    obs, _ = vec.reset(seed=0)
    zero = np.zeros((2, 1))
    for _ in range(2):
        vec.step(zero)
    last, reward, term, trunc, _ = vec.step(zero)
    assert trunc.all() and not term.any()
    first, reward, term, trunc, _ = vec.step(zero)  # the reset step
    assert (reward == 0).all() and not trunc.any()
    # env i continues its own stream: the reset observation is a fresh initial state
    assert np.abs(first[:, 1] + 1).max() < 0.01  # pole hanging down (cos ~ -1)
    assert not np.array_equal(first, obs)


def test_vector_reset_mask_resets_only_the_selected_envs():
    vec = gymnasium.make_vec(ID, num_envs=3)
    obs, _ = vec.reset(seed=0)
    moved, *_ = vec.step(np.ones((3, 1)))
    again, info = vec.reset(options={"reset_mask": np.array([False, True, False])})
    np.testing.assert_array_equal(again[[0, 2]], moved[[0, 2]])
    assert not np.array_equal(again[1], moved[1])
    assert info["constraints"].shape == (3, 3)


@pytest.mark.parametrize("action,match", [
    (np.zeros(2), r"shape \(2,\), expected \(1,\)"),
    (np.array([np.nan]), "NaN or infinite"),
    (np.array([np.inf]), "NaN or infinite"),
    ("left", "numeric"),
])
def test_bad_actions_raise_and_leave_the_env_usable(action, match):
    env = gymnasium.make(ID)
    env.reset(seed=0)
    qpos = env.unwrapped.physics.qpos.copy()
    with pytest.raises(ValueError, match=match):
        env.step(action)
    np.testing.assert_array_equal(env.unwrapped.physics.qpos, qpos)
    env.step(np.zeros(1))  # still usable


def test_bad_vector_action_shape_raises():
    vec = gymnasium.make_vec(ID, num_envs=2)
    vec.reset(seed=0)
    with pytest.raises(ValueError, match=r"expected \(2, 1\)"):
        vec.step(np.zeros((3, 1)))


@pytest.mark.parametrize("kwargs,error,match", [
    ({"domain_name": "boat", "task_name": "sail"}, ValueError, r"unknown domain 'boat'.*cartpole"),
    ({"domain_name": "cartpole", "task_name": "juggle"}, ValueError,
     r"unknown task 'juggle'.*swingup"),
    ({"domain_name": "cartpole", "task_name": "swingup", "gravity_spec": {}}, TypeError,
     r"unexpected keyword argument.*gravity_spec.*safety_spec"),
    ({"domain_name": "cartpole", "task_name": "swingup", "observation_mode": "image"}, ValueError,
     r"observation_mode 'image'.*flat"),
])
def test_bad_construction_arguments_raise(kwargs, error, match):
    from rwrl.envs.gym_env import RwrlEnv
    with pytest.raises(error, match=match):
        RwrlEnv(**kwargs)


def test_set_state_sets_the_physics_and_checks_sizes():
    env = gymnasium.make(ID)
    env.reset(seed=0)
    env.unwrapped.set_state(np.array([0.5, 0.0]), np.array([0.0, 0.0]))
    obs, *_ = env.step(np.zeros(1))
    assert obs[0] == pytest.approx(0.5, abs=1e-3) and obs[1] == pytest.approx(1.0, abs=1e-3)
    with pytest.raises(ValueError, match="nq=2"):
        env.unwrapped.set_state(np.zeros(3), np.zeros(2))
    vec = gymnasium.make_vec(ID, num_envs=2)
    vec.reset(seed=0)
    vec.unwrapped.set_state(np.array([[0.3, 0.0]]), np.array([[0.0, 0.0]]), env_ids=[1])
    assert vec.unwrapped.physics.qpos[1, 0] == 0.3


def test_dm_env_load_accepts_published_names_and_seed():
    a = rwrl.load("cartpole", "realworld_swingup", task_kwargs={"random": 5})
    b = rwrl.load("cartpole", "swingup", seed=5)
    c = rwrl.load("cartpole", "realworld_swingup", random=5)
    first = a.reset().observation["position"]
    np.testing.assert_array_equal(first, b.reset().observation["position"])
    np.testing.assert_array_equal(first, c.reset().observation["position"])
    ts = a.step([0.2])
    assert ts.reward is not None and ts.discount == 1.0
    assert a.info["constraints"].shape == (1, 3)


def test_rgb_array_rendering():
    env = gymnasium.make(ID, render_mode="rgb_array", render_width=64, render_height=48)
    env.reset(seed=0)
    image = env.render()
    assert image.shape == (48, 64, 3) and image.dtype == np.uint8
    assert image.std() > 5  # a scene, not a blank frame
    env.unwrapped.set_state(np.array([1.0, 0.0]), np.zeros(2))
    env.step(np.zeros(1))
    assert not np.array_equal(env.render(), image)  # the cart moved
    env.close()


@pytest.mark.parametrize("name", ["walker-walk", "quadruped-run", "humanoid-stand",
                                  "manipulator-bring-ball"])
def test_every_domain_renders_and_a_perturbed_env_renders_its_own_model(name):
    vec = gymnasium.make_vec(f"rwrl/{name}-v0", num_envs=2, render_mode="rgb_array",
                             render_width=64, render_height=48)
    vec.reset(seed=0)
    task = vec.unwrapped.batched
    param = next(iter(task.params.values()))
    task.set_parameter(1, param.name, param.max)
    images = vec.render()
    assert images.shape == (2, 48, 64, 3) and images.std() > 5
    assert task.render_model(1) is not task.render_model(0)  # textured, with the new value
    assert task.render_model(1) is task.render_model(1)  # compiled once, not per frame
    vec.close()
