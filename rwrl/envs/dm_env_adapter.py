"""The dm_env adapter: ``rwrl.load(domain_name, task_name, ...)``, as the published suite.

Example:
  >>> import rwrl
  >>> env = rwrl.load("cartpole", "realworld_swingup", safety_spec={"enable": True})
  >>> timestep = env.reset()
  >>> timestep = env.step([0.1])
"""

from __future__ import annotations

import collections
from typing import Any

import dm_env
import numpy as np
from dm_env import specs

from rwrl.envs.factory import make_batched_env
from rwrl.envs.gym_env import base_task
from rwrl.envs.validation import check_actions

_ENV0 = np.zeros(1, np.int64)


class RwrlDmEnv(dm_env.Environment):
    """One environment of an rwrl task behind the dm_env interface.

    Observations are an OrderedDict of float64 arrays (dm_control's layout);
    a time-limit LAST step has discount 1.0 (a truncation, not a termination).
    ``info`` of the last step (constraints, cost, safety variables) is in
    ``env.info``.
    """

    def __init__(self, domain_name: str, task_name: str, seed: int | None = None,
                 time_limit: int | None = None, **challenges: Any):
        self.batched = make_batched_env(domain_name, task_name, 1, num_threads=1,
                                        time_limit=time_limit, **challenges)
        self._seed = seed
        self._reset_next_step = True
        self.info: dict = {}

    def _obs(self, obs: dict) -> collections.OrderedDict:
        return collections.OrderedDict((k, np.array(obs[k][0], np.float64))
                                       for k in self.batched.observation_spec)

    def reset(self) -> dm_env.TimeStep:
        seed, self._seed = self._seed, None  # the seed applies to the first episode only
        obs, self.info = self.batched.reset(_ENV0, [seed])
        self._reset_next_step = False
        return dm_env.restart(self._obs(obs))

    def step(self, action) -> dm_env.TimeStep:
        if self._reset_next_step:
            return self.reset()
        actions = check_actions(action, 1, self.batched.action_low, self.batched.action_high,
                                batched=False)
        obs, reward, self.info = self.batched.step(actions)
        if base_task(self.batched).elapsed_steps[0] >= self.batched.time_limit:
            self._reset_next_step = True
            return dm_env.truncation(float(reward[0]), self._obs(obs))
        return dm_env.transition(float(reward[0]), self._obs(obs))

    def observation_spec(self):
        return collections.OrderedDict(
            (name, specs.Array(shape, np.float64, name))
            for name, (shape, _) in self.batched.observation_spec.items())

    def action_spec(self):
        return specs.BoundedArray(self.batched.action_low.shape, np.float64,
                                  self.batched.action_low, self.batched.action_high, "action")

    @property
    def physics(self):
        return base_task(self.batched).physics

    def set_state(self, qpos, qvel) -> None:
        """Set the physics state (positions (nq,), velocities (nv,))."""
        base_task(self.batched).set_state(_ENV0, qpos, qvel)


def load(domain_name: str, task_name: str, *, seed: int | None = None,
         random: int | None = None, task_kwargs: dict | None = None, time_limit: int | None = None,
         environment_kwargs: dict | None = None, log_output: str | None = None,
         **challenges: Any) -> RwrlDmEnv:
    """Return a dm_env environment of one task, with the published suite's arguments.

    Args:
      domain_name: 'cartpole', 'walker', 'quadruped', 'humanoid' or 'manipulator'.
      task_name: e.g. 'swingup' or the published 'realworld_swingup'.
      seed: seed of the first episode; the published ``random=seed`` and
        ``task_kwargs={'random': seed}`` are accepted too.
      time_limit: episode length in control steps (default 1000).
      environment_kwargs: accepted for compatibility; only ``flat_observation=False`` is allowed.
      log_output: path of a JSON-lines file receiving one row per finished episode.
      **challenges: safety_spec, delay_spec, noise_spec, perturb_spec,
        dimensionality_spec, multiobj_spec, combined_challenge, realtime_spec.
    """
    task_kwargs = dict(task_kwargs or {})
    for alias in (random, task_kwargs.pop("random", None)):
        if seed is None and alias is not None:
            seed = alias
    if task_kwargs:
        raise ValueError(f"unknown task_kwargs {sorted(task_kwargs)}: allowed ['random']")
    if environment_kwargs and environment_kwargs.get("flat_observation"):
        raise ValueError("environment_kwargs: flat_observation=True is not supported by the "
                         "dm_env adapter; use gymnasium.make(...) for flat observations")
    env = RwrlDmEnv(domain_name, task_name, seed=seed, time_limit=time_limit, **challenges)
    if log_output is not None:
        from rwrl.metrics.recorder import DmEnvEpisodeRecorder
        return DmEnvEpisodeRecorder(env, log_output)
    return env
