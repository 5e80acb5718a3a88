"""Observation history: the agent sees its last k observations and actions.

Delays hide the present: under an action delay of d steps the effect of the
agent's last d actions is not yet in the observation, and under an
observation delay the observation is d steps old. A memoryless policy cannot
tell those apart; a stack of the last k observations and the last k actions
gives it what it needs when k > d (the standard remedy for delayed MDPs:
Katsikopoulos & Engelbrecht 2003, "Markov decision processes with delays and
asynchronous cost collection"; Walsh et al. 2009). The choices here: the
newest observation first, then the older ones; then the k actions taken
before this observation, newest first. At an episode's first step the
missing observations are copies of the first one and the missing actions are
zeros.

It is a Gymnasium vector wrapper over the public API (any agent, not only
rwrl's), following the NEXT_STEP autoreset of ``rwrl.envs.autoreset``: an env
whose step was an autoreset starts a fresh history from its new first
observation.

Snapshots (``env_state``): its own buffers under 'history/' (obs, actions,
resetting) and the wrapped env's ``env_state()`` under 'env/'; the wrapped
env must have ``env_state`` (``rwrl.envs.vector_env.RwrlVectorEnv``).

Example:
  >>> import gymnasium, rwrl
  >>> vec = ObservationHistory(gymnasium.make_vec("rwrl/cartpole-swingup-v0", num_envs=2), 3)
  >>> obs, _ = vec.reset(seed=0)
  >>> obs.shape   # 3 observations of 5, 3 actions of 1
  (2, 18)
"""

from __future__ import annotations

import gymnasium
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from rwrl.envs.autoreset import EpisodeMarks
from rwrl.core.env_state import EnvState, check_env_state, under, with_prefix, without


class ObservationHistory(gymnasium.vector.VectorWrapper):
    """Replace a flat vector observation by the last k observations and actions.

    Args:
      env: a vector env with flat Box observations and Box actions (NEXT_STEP autoreset).
      k: the history length, >= 1 (k = 1: the observation and the previous action).
    """

    def __init__(self, env: gymnasium.vector.VectorEnv, k: int):
        super().__init__(env)
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"observation history k = {k!r} is not allowed: give an int >= 1")
        mode = env.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
        if AutoresetMode(mode) is not AutoresetMode.NEXT_STEP:
            raise ValueError(f"ObservationHistory needs autoreset_mode NEXT_STEP, got {mode!r}")
        obs_space, act_space = env.single_observation_space, env.single_action_space
        if len(obs_space.shape) != 1 or len(act_space.shape) != 1:
            raise ValueError("ObservationHistory needs flat observations and actions, got "
                             f"{obs_space.shape} and {act_space.shape}")
        self.k = k
        self._obs_size, self._act_size = obs_space.shape[0], act_space.shape[0]
        size = k * (self._obs_size + self._act_size)
        self.single_observation_space = spaces.Box(-np.inf, np.inf, (size,), np.float64)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self._obs = np.zeros((self.num_envs, k, self._obs_size))
        self._actions = np.zeros((self.num_envs, k, self._act_size))
        self._marks = EpisodeMarks(self.num_envs)

    def _restart(self, ids, obs: np.ndarray) -> None:
        self._obs[ids] = obs[ids, None, :]
        self._actions[ids] = 0.0

    def _stacked(self) -> np.ndarray:
        n = self.num_envs
        return np.concatenate([self._obs.reshape(n, -1), self._actions.reshape(n, -1)], axis=1)

    def reset(self, *, seed=None, options=None):
        mask = (options or {}).get("reset_mask")
        obs, info = self.env.reset(seed=seed, options=options)
        ids = slice(None) if mask is None else np.asarray(mask, bool)
        self._restart(ids, np.asarray(obs, np.float64))
        self._marks.reset(mask)
        return self._stacked(), info

    def step(self, actions):
        obs, reward, terminated, truncated, info = self.env.step(actions)
        obs = np.asarray(obs, np.float64)
        resetting = self._marks.resetting.copy()
        self._marks.step(terminated, truncated)
        self._obs[:, 1:] = self._obs[:, :-1].copy()
        self._obs[:, 0] = obs
        self._actions[:, 1:] = self._actions[:, :-1].copy()
        self._actions[:, 0] = np.asarray(actions, np.float64).reshape(self.num_envs, -1)
        if resetting.any():  # NEXT_STEP autoreset: their obs is a new episode's first
            self._restart(resetting, obs)
        return self._stacked(), reward, terminated, truncated, info

    def _own_state(self) -> EnvState:
        return {"history/obs": self._obs.copy(), "history/actions": self._actions.copy(),
                "history/resetting": self._marks.resetting.copy()}

    def env_state(self) -> EnvState:
        """Return copies of the history buffers and the wrapped env's state (module docstring)."""
        return {**self._own_state(), **with_prefix("env/", self.env.env_state())}

    def restore_env_state(self, state: EnvState) -> None:
        """Put the buffers and the wrapped env where ``env_state()`` saw them; check keys first."""
        check_env_state(self._own_state(), without("env/", state))
        self.env.restore_env_state(under("env/", state))  # checks its keys before any change
        self._obs = np.array(state["history/obs"])
        self._actions = np.array(state["history/actions"])
        self._marks.resetting = np.array(state["history/resetting"])
