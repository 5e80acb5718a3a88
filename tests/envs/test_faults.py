"""Faults at the adapters: divergence, bad sizes and seeds, set_state, the bool entry."""

import gymnasium
import numpy as np
import pytest

import rwrl

ID = "rwrl/walker-walk-v0"
HUGE = 1e12  # above MuJoCo's 1e10 bound on velocities: an unstable simulation


def _rollout(vec, steps, disturb=None):
    """Step a vector env with fixed actions; ``disturb`` runs after the first step."""
    actions = np.random.default_rng(0).uniform(-1, 1, (steps,) + vec.action_space.shape)
    out = [vec.step(actions[0])]
    if disturb:
        disturb(vec)
    out += [vec.step(a) for a in actions[1:]]
    return out


def test_a_diverged_env_ends_its_episode_alone_and_the_others_are_untouched():
    plain = gymnasium.make_vec(ID, num_envs=3)
    plain.reset(seed=4)
    broken = gymnasium.make_vec(ID, num_envs=3)
    broken.reset(seed=4)
    physics = broken.unwrapped.physics

    def kick(vec):  # env 1 gets an impossible velocity, as a blown-up controller would give
        physics.qvel[1, 0] = HUGE

    reference, disturbed = _rollout(plain, 4), _rollout(broken, 4, kick)
    _, reward, terminated, truncated, info = disturbed[1]
    assert info["diverged"].tolist() == [False, True, False]
    assert truncated.tolist() == [False, True, False] and not terminated.any()
    assert reward[1] == 0.0
    # the next step autoresets env 1 (a fresh episode), the others go on
    assert disturbed[2][3].tolist() == [False, False, False]
    assert not disturbed[2][4]["diverged"].any()
    for (obs, rew, *_), (ref_obs, ref_rew, *_) in zip(disturbed, reference):
        np.testing.assert_array_equal(obs[[0, 2]], ref_obs[[0, 2]])  # bit-identical
        np.testing.assert_array_equal(rew[[0, 2]], ref_rew[[0, 2]])
    # no info key is missing on the diverged step, nor on reset
    assert set(info) == set(disturbed[0][4]) >= {"constraints", "cost", "safety_vars", "diverged"}


def test_a_diverged_single_env_is_truncated_and_needs_a_reset():
    env = gymnasium.make(ID)
    _, info = env.reset(seed=0)
    assert info["diverged"].dtype == bool and info["diverged"].shape == () and not info["diverged"]
    env.unwrapped.physics.qvel[0, 2] = HUGE
    _, reward, terminated, truncated, info = env.step(np.zeros(6))
    assert info["diverged"] and truncated and not terminated and reward == 0.0
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(6))
    env.reset()
    assert not env.step(np.zeros(6))[4]["diverged"]


def test_a_diverged_dm_env_gives_a_truncated_last_step():
    env = rwrl.load("walker", "walk", seed=0, combined_challenge="easy")
    env.reset()
    env.physics.qvel[0, 2] = HUGE
    timestep = env.step(np.zeros(6))
    assert timestep.last() and timestep.discount == 1.0
    assert env.info["diverged"].tolist() == [True]
    assert env.step(np.zeros(6)).first()


@pytest.mark.parametrize("kwargs, match", [
    ({"num_envs": 2.7}, r"num_envs = 2.7 is not allowed: give an integer in \[1, 65536\]"),
    ({"num_envs": 0}, r"num_envs = 0 is not allowed"),
    ({"num_envs": True}, r"num_envs = True is not allowed"),
    ({"num_envs": 2, "time_limit": 2.5}, r"time_limit = 2.5 is not allowed: give an integer"),
    ({"num_envs": 2, "time_limit": float("nan")}, r"time_limit = nan is not allowed"),
])
def test_sizes_are_integers_in_range(kwargs, match):
    with pytest.raises(ValueError, match=match):
        gymnasium.make_vec("rwrl/cartpole-swingup-v0", **kwargs)


def test_single_env_time_limit_must_be_an_integer():
    with pytest.raises(ValueError, match=r"time_limit = 2.5 is not allowed"):
        gymnasium.make("rwrl/cartpole-swingup-v0", time_limit=2.5)


@pytest.mark.parametrize("seed, match", [
    ([7, -1], r"seed\[1\] = -1 is not allowed"),
    ([7, 1.5], r"seed\[1\] = 1.5 is not allowed"),
    ([7], r"seed list has 1 entries, expected num_envs=2"),
    (-3, r"seed = -3 is not allowed"),
    ("7", r"seed = '7' is not allowed: give a non-negative int, a list"),
])
def test_a_bad_vector_seed_changes_nothing(seed, match):
    vec = gymnasium.make_vec("rwrl/cartpole-swingup-v0", num_envs=2)
    first, _ = vec.reset(seed=3)
    with pytest.raises(ValueError, match=match):
        vec.reset(seed=seed)
    # env 0 kept its stream: the same seed reproduces the same first observation
    again, _ = vec.reset(seed=3)
    np.testing.assert_array_equal(again, first)
    moved = vec.step(np.zeros((2, 1)))[0]
    other = gymnasium.make_vec("rwrl/cartpole-swingup-v0", num_envs=2)
    other.reset(seed=3)
    np.testing.assert_array_equal(other.step(np.zeros((2, 1)))[0], moved)


def test_dict_observations_give_the_constraints_entry_as_bool():
    env = gymnasium.make("rwrl/cartpole-swingup-v0", observation_mode="dict",
                         safety_spec={"enable": True})
    obs, _ = env.reset(seed=0)
    assert obs["constraints"].dtype == np.bool_ and obs["constraints"].shape == (3,)
    assert env.observation_space["constraints"].dtype == np.bool_
    assert env.observation_space.contains(obs)
    obs, *_ = env.step(env.action_space.sample())
    assert env.observation_space.contains(obs)
    dm = rwrl.load("cartpole", "swingup", safety_spec={"enable": True})
    assert dm.reset().observation["constraints"].dtype == np.bool_
    assert dm.observation_spec()["constraints"].dtype == np.bool_


def test_set_state_passes_through_the_challenges():
    """The observation delay restarts at the new state instead of showing the old one."""
    env = gymnasium.make("rwrl/cartpole-swingup-v0", delay_spec={"observations": 3})
    env.reset(seed=0)
    for _ in range(5):
        env.step(np.ones(1))
    qpos, qvel = np.array([0.5, 0.1]), np.array([0.0, 0.0])
    obs = env.unwrapped.set_state(qpos, qvel)
    assert obs[0] == 0.5  # cart position, not the delayed one of three steps ago
    after, *_ = env.step(np.zeros(1))
    assert after[0] == 0.5  # delayed by 3: still the state set
