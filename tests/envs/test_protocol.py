"""The adapters need only ``BatchedEnv``: a batched env without MuJoCo gets them unchanged."""

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from rwrl.envs.gym_env import RwrlEnv
from rwrl.envs.vector_env import RwrlVectorEnv
from rwrl.core.layout import FlatLayout


class CounterEnv:
    """N counters: the observation is (steps since reset, last action); reward = the action.

    Everything ``rwrl.tasks.protocol.BatchedEnv`` names, and nothing of physics.
    """

    constraint_names = ("small_action",)
    control_timestep = 0.1
    facts = None

    def __init__(self, num_envs: int, time_limit: int = 4):
        self.num_envs, self.time_limit = num_envs, time_limit
        self.layout = FlatLayout({"count": ((1,), np.float64), "action": ((1,), np.float64)})
        self.action_low, self.action_high = np.array([-2.0]), np.array([2.0])
        self.elapsed_steps = np.zeros(num_envs, np.int64)
        self._last = np.zeros(num_envs)

    def _info(self, actions: np.ndarray) -> dict:
        small = np.abs(actions) <= 1.0
        return {"constraints": small[:, None], "cost": (~small).astype(np.float64)}

    def reset(self, ids, seeds):
        self.elapsed_steps[ids] = 0
        self._last[ids] = 0.0
        zeros = np.zeros(len(ids))
        return np.stack([zeros, zeros], axis=1), self._info(zeros)

    def close(self):
        """Nothing to free."""

    def step(self, actions):
        self.elapsed_steps += 1
        self._last = actions[:, 0].astype(np.float64)
        obs = np.stack([self.elapsed_steps.astype(np.float64), self._last], axis=1)
        return obs, self._last.copy(), self.elapsed_steps >= self.time_limit, self._info(self._last)


def test_the_single_env_adapts_a_batched_env_without_physics():
    env = RwrlEnv.from_batched(CounterEnv(1))
    check_env(env, skip_render_check=True)
    env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(np.array([1.5], np.float32))
    assert obs.tolist() == [1.0, 1.5] and reward == 1.5 and not terminated and not truncated
    assert info["constraints"].tolist() == [False] and info["cost"] == 1.0
    assert env.metadata["render_fps"] == 10


def test_the_vector_env_adapts_a_batched_env_without_physics_with_its_autoreset():
    vec = RwrlVectorEnv.from_batched(CounterEnv(2, time_limit=2))
    vec.reset(seed=0)
    actions = np.array([[0.5], [-0.5]], np.float32)
    vec.step(actions)
    obs, reward, terminated, truncated, info = vec.step(actions)
    assert truncated.tolist() == [True, True] and obs[:, 0].tolist() == [2.0, 2.0]
    obs, reward, terminated, truncated, info = vec.step(actions)  # the NEXT_STEP reset
    assert obs.tolist() == [[0.0, 0.0], [0.0, 0.0]] and reward.tolist() == [0.0, 0.0]
    assert info["cost"].tolist() == [0.0, 0.0]


def test_what_needs_physics_says_so_on_a_batched_env_without_it():
    env = RwrlEnv.from_batched(CounterEnv(1), physics_state_info=True)
    with pytest.raises(AttributeError, match="physics_state"):
        env.reset(seed=0)


def test_the_single_env_adapts_a_batch_of_one_only():
    with pytest.raises(ValueError, match=r"num_envs = 2 is not allowed"):
        RwrlEnv.from_batched(CounterEnv(2))


def test_a_task_and_its_challenge_env_give_the_same_physics_state():
    """``physics_state`` is the true state under observation noise (the challenge env delegates)."""
    plain = gymnasium.make("rwrl/cartpole-swingup-v0", physics_state_info=True)
    noisy = gymnasium.make("rwrl/cartpole-swingup-v0", physics_state_info=True,
                           noise_spec={"gaussian": {"enable": True, "observations": 0.5}})
    _, info_plain = plain.reset(seed=3)
    obs_noisy, info_noisy = noisy.reset(seed=3)
    np.testing.assert_array_equal(info_plain["physics_state"], info_noisy["physics_state"])
    assert info_plain["physics_state"].shape == (noisy.unwrapped.physics_state_size,)
    # cartpole: nq = nv = 2; qpos (cart, hinge) is where the physics is, not where the noise says.
    assert noisy.unwrapped.physics_state_size == 6
    assert not np.allclose(obs_noisy[:1], info_noisy["physics_state"][:1])
