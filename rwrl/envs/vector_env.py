"""The Gymnasium vector environment: N envs stepped in one engine call.

Autoreset follows Gymnasium's NEXT_STEP mode: the step that ends an episode
returns its true last observation with ``truncated`` set; the next step resets
that env and returns the first observation of the new episode with reward 0
(and ignores that env's action).

Seeding: ``reset(seed=s)`` seeds env i with ``spawn_seeds(s, N)[i]``, so env i
behaves exactly as ``gymnasium.make(id)`` reset with that seed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from rwrl.core.seeding import spawn_seeds
from rwrl.envs.factory import make_batched_env
from rwrl.envs.gym_env import BatchedAccess, base_task
from rwrl.envs.render import EnvRenderer
from rwrl.envs.spaces import ObservationLayout
from rwrl.envs.validation import check_actions


def _merge(full: dict, part: dict, ids: np.ndarray) -> dict:
    """Write the entries of envs ``ids`` (``part``) into a copy of ``full``."""
    out = {}
    for key, value in full.items():
        if isinstance(value, dict):
            out[key] = _merge(value, part[key], ids)
        else:
            value = np.array(value)
            value[ids] = part[key]
            out[key] = value
    return out


class RwrlVectorEnv(BatchedAccess, VectorEnv):
    """N environments of an rwrl task; see the module docstring.

    Args: as ``RwrlEnv``, plus ``num_envs`` and ``num_threads`` (engine threads).
    """

    metadata = {"render_modes": ["rgb_array"], "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(self, domain_name: str, task_name: str, num_envs: int = 1, *,
                 observation_mode: str = "flat", render_mode: str | None = None,
                 render_width: int = 320, render_height: int = 240, camera: int | str = 0,
                 num_threads: int | None = None, time_limit: int | None = None,
                 max_episode_steps: int | None = None, **challenges: Any):
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode {render_mode!r} is not allowed: use None or 'rgb_array'")
        if int(num_envs) < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        time_limit = time_limit if time_limit is not None else max_episode_steps
        self.batched = make_batched_env(domain_name, task_name, int(num_envs),
                                        num_threads=num_threads, time_limit=time_limit,
                                        **challenges)
        self.num_envs = int(num_envs)
        self.layout = ObservationLayout(self.batched.observation_spec, observation_mode)
        self.single_observation_space = self.layout.space()
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        low = self.batched.action_low.astype(np.float32)
        high = self.batched.action_high.astype(np.float32)
        self.single_action_space = spaces.Box(low, high, dtype=np.float32)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.render_mode = render_mode
        self._renderer = EnvRenderer(base_task(self.batched), render_width, render_height, camera)
        self._autoreset = np.zeros(self.num_envs, bool)
        self._started = False

    def _seeds(self, seed) -> list:
        if seed is None:
            return [None] * self.num_envs
        if isinstance(seed, (int, np.integer)):
            if seed < 0:
                raise ValueError(f"seed must be non-negative, got {seed}")
            return spawn_seeds(int(seed), self.num_envs)
        seeds = list(seed)
        if len(seeds) != self.num_envs:
            raise ValueError(f"seed list has {len(seeds)} entries, expected num_envs={self.num_envs}")
        return seeds

    def reset(self, *, seed=None, options: dict | None = None):
        seeds = self._seeds(seed)
        mask = np.ones(self.num_envs, bool)
        if options and "reset_mask" in options:
            mask = np.asarray(options["reset_mask"], bool)
            if mask.shape != (self.num_envs,):
                raise ValueError(f"reset_mask must have shape ({self.num_envs},), got {mask.shape}")
        ids = np.flatnonzero(mask)
        obs, info = self.batched.reset(ids, [seeds[i] for i in ids])
        self._autoreset[ids] = False
        self._started = True
        if len(ids) < self.num_envs:  # keep the other envs' entries as they were
            self._last_obs = _merge(self._last_obs, obs, ids)
            info = _merge(self._last_info, info, ids)
        else:
            self._last_obs = obs
        self._last_info = info
        return self.layout.batch(self._last_obs), info

    def step(self, actions):
        if not self._started:
            raise RuntimeError("step() called before reset(); call reset() first")
        actions = check_actions(actions, self.num_envs, self.batched.action_low,
                                self.batched.action_high, batched=True)
        obs, reward, info = self.batched.step(actions)
        reward = np.asarray(reward, np.float64).copy()
        truncated = base_task(self.batched).elapsed_steps >= self.batched.time_limit
        done_before = np.flatnonzero(self._autoreset)
        if done_before.size:  # NEXT_STEP autoreset: these envs start a new episode now
            reset_obs, reset_info = self.batched.reset(done_before, [None] * done_before.size)
            obs = _merge(obs, reset_obs, done_before)
            info = _merge(info, reset_info, done_before)
            reward[done_before] = 0.0
            truncated[done_before] = False
        self._autoreset = truncated.copy()
        self._last_obs, self._last_info = obs, info
        terminated = np.zeros(self.num_envs, bool)  # real-world tasks never terminate
        return self.layout.batch(obs), reward, terminated, truncated, info

    def set_state(self, qpos, qvel, env_ids=None) -> None:
        """Set the state of envs ``env_ids`` (all if None): qpos (n, nq), qvel (n, nv)."""
        ids = np.arange(self.num_envs) if env_ids is None else np.asarray(env_ids, np.int64)
        base_task(self.batched).set_state(ids, qpos, qvel)

    def render(self):
        if self.render_mode != "rgb_array":
            return None
        return np.stack([self._renderer.render(i) for i in range(self.num_envs)])

    def close_extras(self, **kwargs):
        self._renderer.close()
