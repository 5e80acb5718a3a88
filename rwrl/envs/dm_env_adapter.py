"""The dm_env adapter, as the published suite: ``rwrl.load(domain_name, task_name, ...)``.

Example:
  >>> import rwrl
  >>> env = rwrl.load("cartpole", "realworld_swingup", safety_spec={"enable": True})
  >>> timestep = env.reset()
  >>> timestep = env.step([0.1])
  >>> sorted(timestep.observation)
  ['constraints', 'position', 'velocity']

Pixels, as dm_control's ``pixels.Wrapper`` (``rwrl.envs.pixels``):

  >>> env = rwrl.load("cartpole", "swingup", pixels=True, pixels_width=32, pixels_height=32)
  >>> list(env.reset().observation), env.observation_spec()["pixels"].shape
  (['pixels'], (32, 32, 3))
  >>> env.close()
"""

from __future__ import annotations

import collections
from typing import Any

import dm_env
import numpy as np
from dm_env import specs

from rwrl.core.seeding import check_seed
from rwrl.envs.autoreset import split_ends
from rwrl.envs.factory import make_batched_env
from rwrl.envs.pixels import PixelOptions, dm_env_pixel_options
from rwrl.envs.validation import check_actions

#: the key of the pixel observation, as dm_control's ``pixels.Wrapper``'s default.
PIXELS_KEY = "pixels"

_ENV0 = np.zeros(1, np.int64)


class RwrlDmEnv(dm_env.Environment):
    """One environment of an rwrl task behind the dm_env interface.

    Observations are an OrderedDict of arrays (dm_control's layout; the
    'constraints' entry is bool); a truncated LAST step (time limit, or a
    diverged simulation) has discount 1.0, not a termination (a family's true
    terminal state, ``info['terminated']``, has discount 0). ``info`` of the
    last step (constraints, cost, safety variables, diverged) is in ``env.info``.

    ``pixels`` (``PixelOptions``): the observation gets the key 'pixels', a
    (H, W, 3 k) uint8 image, alone (``with_state`` False: dm_control's
    ``pixels_only=True``) or after the state entries.
    """

    #: the pixel observation's options; None: state entries only.
    pixels: PixelOptions | None = None

    def __init__(self, domain_name: str, task_name: str, seed: int | None = None,
                 time_limit: int | None = None, pixels: PixelOptions | None = None,
                 **challenges: Any):
        self.batched = make_batched_env(domain_name, task_name, 1, num_threads=1,
                                        time_limit=time_limit, pixels=pixels, **challenges)
        self.pixels = pixels
        self._seed = check_seed(seed)
        self._reset_next_step = True
        self.info: dict = {}

    @property
    def constraint_names(self) -> tuple[str, ...]:
        """Names of the K flags of ``info['constraints']``."""
        return self.batched.constraint_names

    def _obs(self, obs) -> collections.OrderedDict:
        if self.pixels is None:
            return self._state_entries(obs)
        out = self._state_entries(obs["state"]) if self.pixels.with_state else \
            collections.OrderedDict()
        out[PIXELS_KEY] = obs["pixels"][0]
        return out

    def _state_entries(self, obs: np.ndarray) -> collections.OrderedDict:
        return collections.OrderedDict((k, np.array(v[0]))
                                       for k, v in self.batched.layout.unflatten(obs).items())

    def reset(self) -> dm_env.TimeStep:
        seed, self._seed = self._seed, None  # the seed applies to the first episode only
        obs, self.info = self.batched.reset(_ENV0, [seed])
        self.info.pop("terminated", None)
        self._reset_next_step = False
        return dm_env.restart(self._obs(obs))

    def step(self, action) -> dm_env.TimeStep:
        if self._reset_next_step:
            return self.reset()
        actions = check_actions(action, 1, self.batched.action_low, self.batched.action_high,
                                batched=False)
        obs, reward, ended, self.info = self.batched.step(actions)
        terminated, truncated = split_ends(ended, self.info)
        if terminated[0]:
            self._reset_next_step = True
            return dm_env.termination(float(reward[0]), self._obs(obs))
        if truncated[0]:
            self._reset_next_step = True
            return dm_env.truncation(float(reward[0]), self._obs(obs))
        return dm_env.transition(float(reward[0]), self._obs(obs))

    def observation_spec(self):
        spec = collections.OrderedDict(
            (name, specs.Array(shape, dtype, name))
            for name, (shape, dtype) in self.batched.layout.spec.items())
        if self.pixels is None:
            return spec
        if not self.pixels.with_state:
            spec = collections.OrderedDict()
        spec[PIXELS_KEY] = specs.Array(self.batched.pixels_shape, np.uint8, PIXELS_KEY)
        return spec

    def close(self) -> None:
        """Free what the env holds (the pixel observations' GL context)."""
        self.batched.close()

    def action_spec(self):
        return specs.BoundedArray(self.batched.action_low.shape, np.float64,
                                  self.batched.action_low, self.batched.action_high, "action")

    @property
    def physics(self):
        return self.batched.physics

    def set_state(self, qpos, qvel) -> None:
        """Set the physics state (positions (nq,), velocities (nv,))."""
        self.batched.set_state(_ENV0, qpos, qvel)


def load(domain_name: str, task_name: str, *, seed: int | None = None,
         random: int | None = None, task_kwargs: dict | None = None, time_limit: int | None = None,
         environment_kwargs: dict | None = None, pixels: bool = False, pixels_only: bool = True,
         pixels_width: int | None = None, pixels_height: int | None = None,
         pixels_camera: int | str | None = None, frame_stack: int | None = None,
         render_kwargs: dict | None = None, **challenges: Any) -> RwrlDmEnv:
    """Return a dm_env environment of one task, with the published suite's arguments.

    Args:
      domain_name: 'cartpole', 'walker', 'quadruped', 'humanoid' or 'manipulator'.
      task_name: e.g. 'swingup' or the published 'realworld_swingup'.
      seed: seed of the first episode; the published ``random=seed`` and
        ``task_kwargs={'random': seed}`` are accepted too.
      time_limit: episode length in control steps (default 1000).
      environment_kwargs: accepted for compatibility; only ``flat_observation=False`` is allowed.
      pixels: add the observation key 'pixels', a uint8 image, as dm_control's
        ``pixels.Wrapper`` (default False).
      pixels_only: with pixels, 'pixels' alone (default True, as the wrapper)
        or after the state entries.
      pixels_width, pixels_height, pixels_camera, frame_stack: the image's
        size (default 84 x 84), camera (default: the domain's, 0 or quadruped's
        2) and frames stacked on the channel axis (default 1); pixels only.
      render_kwargs: the wrapper's spelling of the size and camera ('height',
        'width', 'camera_id'), for porting.
      **challenges: the challenge specs (``rwrl.challenges.registry.keywords()``:
        safety_spec, delay_spec, ..., combined_challenge).
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
    options = dm_env_pixel_options(pixels, pixels_only, pixels_width, pixels_height,
                                   pixels_camera, frame_stack, render_kwargs)
    return RwrlDmEnv(domain_name, task_name, seed=seed, time_limit=time_limit, pixels=options,
                     **challenges)
