"""Invariants of every registered task (a new task is tested with no new test code)."""

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import rwrl
from rwrl.core.seeding import spawn_seeds
from rwrl.domains import available_tasks
from rwrl.envs.registration import env_id

TASKS = available_tasks()
IDS = [f"{d}-{t}" for d, t in TASKS]
#: entries allowed to stay constant within an episode of random actions: touch
#: sensors read 0 until the hand grasps something, and the manipulator's target
#: is placed at reset (it must then differ across initial states).
STILL_WITHIN_EPISODE = {"manipulator": {"touch", "target_pos"}}


def _rollout(env, seed, steps, action_seed=0):
    obs, info = env.reset(seed=seed)
    rng = np.random.default_rng(action_seed)
    out = [obs]
    rewards = []
    for _ in range(steps):
        obs, r, term, trunc, info = env.step(rng.uniform(-1, 1, env.action_space.shape))
        out.append(obs)
        rewards.append(r)
    return np.array(out), np.array(rewards), info


@pytest.mark.parametrize("domain,task", TASKS, ids=IDS)
def test_check_env_passes(domain, task):
    env = gymnasium.make(env_id(domain, task))
    check_env(env.unwrapped, skip_render_check=True)


@pytest.mark.parametrize("domain,task", TASKS, ids=IDS)
def test_shapes_dtypes_range_and_reproducibility(domain, task):
    env = gymnasium.make(env_id(domain, task))
    obs, rewards, info = _rollout(env, seed=1, steps=60)
    assert obs.dtype == np.float64 and obs.shape[1:] == env.observation_space.shape
    assert np.isfinite(obs).all() and np.isfinite(rewards).all()
    assert (rewards >= 0).all() and (rewards <= 1).all()
    k = len(env.unwrapped.constraint_names)
    assert info["constraints"].shape == (k,) and info["constraints"].dtype == bool
    assert info["cost"] == float((~info["constraints"]).sum())
    again, again_rewards, _ = _rollout(env, seed=1, steps=60)
    np.testing.assert_array_equal(obs, again)
    np.testing.assert_array_equal(rewards, again_rewards)
    # no observation entry constant over a trajectory with random actions
    assert (obs.std(axis=0) > 0).any()
    moving = obs.std(axis=0) > 0
    for name, sl in env.unwrapped.observation_slices.items():
        if name not in STILL_WITHIN_EPISODE.get(domain, ()):
            assert moving[sl].any(), f"observation entry {name!r} never changes"


@pytest.mark.parametrize("domain,task", TASKS, ids=IDS)
def test_initial_state_is_randomised_by_the_seed(domain, task):
    env = gymnasium.make(env_id(domain, task))
    first = np.array([env.reset(seed=s)[0] for s in range(8)])
    np.testing.assert_array_equal(env.reset(seed=0)[0], first[0])
    assert (first.std(axis=0) > 0).any()
    slices = env.unwrapped.observation_slices
    for name in STILL_WITHIN_EPISODE.get(domain, set()) - {"touch"}:  # touch: 0 until contact
        assert (first[:, slices[name]].std(axis=0) > 0).any(), f"{name!r} never randomised"


@pytest.mark.parametrize("domain,task", TASKS, ids=IDS)
def test_vector_env_i_equals_single_env_with_the_spawned_seed(domain, task):
    n, steps = 3, 25
    vec = gymnasium.make_vec(env_id(domain, task), num_envs=n)
    assert type(vec.unwrapped).__name__ == "RwrlVectorEnv"
    rng = np.random.default_rng(4)
    actions = rng.uniform(-1, 1, (steps, n) + vec.single_action_space.shape)
    vobs, _ = vec.reset(seed=123)
    vtraj, vrew = [vobs], []
    for a in actions:
        vobs, r, *_ = vec.step(a)
        vtraj.append(vobs)
        vrew.append(r)
    vtraj, vrew = np.array(vtraj), np.array(vrew)
    for i, seed in enumerate(spawn_seeds(123, n)):
        env = gymnasium.make(env_id(domain, task))
        traj, rew = [env.reset(seed=seed)[0]], []
        for a in actions[:, i]:
            obs, r, *_ = env.step(a)
            traj.append(obs)
            rew.append(r)
        np.testing.assert_array_equal(vtraj[:, i], np.array(traj))
        np.testing.assert_array_equal(vrew[:, i], np.array(rew))


@pytest.mark.parametrize("domain,task", TASKS, ids=IDS)
def test_dict_observation_matches_the_flat_one(domain, task):
    flat = gymnasium.make(env_id(domain, task))
    nested = gymnasium.make(env_id(domain, task), observation_mode="dict")
    obs_flat, _ = flat.reset(seed=2)
    obs_dict, _ = nested.reset(seed=2)
    assert isinstance(nested.observation_space, gymnasium.spaces.Dict)
    for name, sl in flat.unwrapped.observation_slices.items():
        np.testing.assert_array_equal(obs_flat[sl], obs_dict[name].ravel())


def test_rwrl_envs_lists_every_published_task():
    published = {("cartpole", "balance"), ("cartpole", "swingup"), ("walker", "stand"),
                 ("walker", "walk"), ("quadruped", "walk"), ("quadruped", "run"),
                 ("humanoid", "stand"), ("humanoid", "walk"), ("manipulator", "bring_ball"),
                 ("manipulator", "bring_peg"), ("manipulator", "insert_ball"),
                 ("manipulator", "insert_peg")}
    present = set(available_tasks())
    missing = {p for p in published if p[0] == "cartpole" or p[0] in {d for d, _ in present}} - present
    assert not missing
    for name in rwrl.register_envs():
        assert name in gymnasium.registry
