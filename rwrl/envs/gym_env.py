"""The Gymnasium single environment: a batch of one.

Example:
  >>> import gymnasium, rwrl
  >>> env = gymnasium.make("rwrl/cartpole-swingup-v0")
  >>> obs, info = env.reset(seed=0)
  >>> obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
  >>> info["constraints"].shape, info["cost"].dtype, info["diverged"].dtype
  ((3,), dtype('float64'), dtype('bool'))
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

from rwrl.core.seeding import check_seed
from rwrl.envs.autoreset import split_ends
from rwrl.envs.factory import make_batched_env
from rwrl.envs.pixels import pixel_options
from rwrl.envs.render import BatchRenderer
from rwrl.envs.spaces import ObservationLayout
from rwrl.envs.validation import check_actions
from rwrl.core.env_state import EnvState, check_env_state, without

_ENV0 = np.zeros(1, np.int64)


def check_render_mode(render_mode: str | None) -> None:
    """Raise a ValueError unless ``render_mode`` is None or 'rgb_array'."""
    if render_mode not in (None, "rgb_array"):
        raise ValueError(f"render_mode {render_mode!r} is not allowed: use None or 'rgb_array'")


INFO_LAYOUTS = ("nested", "flat")


def check_info_layout(info_layout: str) -> None:
    """Raise a ValueError unless ``info_layout`` is one of ``INFO_LAYOUTS``."""
    if info_layout not in INFO_LAYOUTS:
        raise ValueError(f"info_layout {info_layout!r} is not allowed: use one of {INFO_LAYOUTS}")


def unbatch_info(info: dict, index: int = 0) -> dict:
    """Return env ``index``'s entries of a batched info dict (nested dicts too).

    The same dtype and shape on every reset and step, as frameworks' info
    readers (TorchRL's) expect: an (N,) number array gives a numpy scalar of
    its dtype (``np.float64``); an (N,) bool array a 0-d bool array, because
    ``SyncVectorEnv`` batches an ``np.bool_`` (not an ``np.number``) into an
    object array but a 0-d array into a bool one; an (N, ...) array a copy
    of row ``index``.
    """
    out = {}
    for key, value in info.items():
        if type(value) is np.ndarray:
            row = value[index]
            out[key] = row if value.ndim == 1 and value.dtype != np.bool_ else np.array(row)
        elif isinstance(value, dict):
            out[key] = unbatch_info(value, index)
        else:
            out[key] = value
    return out


def flat_info(info: dict, prefix: str = "") -> dict:
    """Return a nested info dict as one level of 'outer/inner' keys (the values themselves)."""
    out = {}
    for key, value in info.items():
        if isinstance(value, dict):
            out.update(flat_info(value, f"{prefix}{key}/"))
        else:
            out[f"{prefix}{key}"] = value
    return out


class BatchedAccess:
    """What the single and the vector env expose of their batched env (``self.batched``)."""

    @classmethod
    def from_batched(cls, batched, *, observation_mode: str = "flat", render_mode: str | None = None,
                     render_width: int = 320, render_height: int = 240, camera: int | str = 0,
                     physics_state_info: bool = False, info_layout: str = "nested",
                     **adapter_options):
        """Return the adapter of any ``BatchedEnv`` (``RwrlEnv``: a batch of one).

        ``adapter_options``: the vector env's own (``autoreset_mode``).

        A batched env without physics (``rwrl.tasks.protocol.BatchedEnv`` only) gets
        everything but ``set_state``, ``physics_state_info`` and rendering. The
        pixel observation modes are for envs made by the constructors, which
        build the camera (``observation_mode='pixels'`` here is a ValueError).
        """
        check_render_mode(render_mode)
        env = cls.__new__(cls)
        env._adapt(batched, observation_mode, render_mode, render_width, render_height, camera,
                   physics_state_info, **adapter_options)
        env._set_info_layout(info_layout)
        return env

    def _make_renderer(self, render_mode, render_width, render_height, camera):
        """Return the ``render()`` renderer (``render_mode='rgb_array'``), else None."""
        if render_mode != "rgb_array":
            return None
        return BatchRenderer(self.batched, render_width, render_height, camera)

    def _close_batched(self) -> None:
        """Free the renderer's GL context and what the batched env holds (its camera's).

        Also on an env whose constructor raised (Gymnasium's ``VectorEnv.__del__`` closes it):
        what was built is freed, what was not is skipped."""
        renderer, batched = getattr(self, "_renderer", None), getattr(self, "batched", None)
        if renderer is not None:
            renderer.close()
        if batched is not None:
            batched.close()

    def _set_info_layout(self, info_layout: str) -> None:
        """Check and keep ``info_layout``: 'nested' (default) or 'flat' ('outer/inner' keys)."""
        check_info_layout(info_layout)
        self.info_layout = info_layout

    def _layout_info(self, info: dict) -> dict:
        """Return ``info`` in this env's info layout."""
        return flat_info(info) if self.info_layout == "flat" else info

    @property
    def constraint_names(self) -> tuple[str, ...]:
        """Names of the K constraints of ``info['constraints']``."""
        return self.batched.constraint_names

    @property
    def time_limit(self) -> int:
        """Episode length in control steps (a truncation)."""
        return self.batched.time_limit

    @property
    def observation_slices(self) -> dict[str, slice]:
        """Name -> slice of each entry in the flat observation."""
        return dict(self.layout.slices)

    @property
    def physics(self):
        """The batched engine (experts: ``physics.qpos[i]``, ``physics.env_model(i)``)."""
        return self.batched.physics

    @property
    def physics_state_size(self) -> int:
        """Length of ``info['physics_state']``: nq + 2 nv (qpos, qvel, qacc_warmstart)."""
        return self.batched.physics_state_size

    def _with_physics_state(self, info: dict) -> dict:
        """Return ``info`` plus ``physics_state`` (N, nq + 2 nv) float64 when the option is on.

        The state of the returned observation (after the reset or the step):
        the true physics, whatever the observation challenges do to the
        observation (``PhysicsEnv.physics_state``).
        """
        if not self.physics_state_info:
            return info
        return {**info, "physics_state": self.batched.physics_state()}


class RwrlEnv(BatchedAccess, gymnasium.Env):
    """One environment of an rwrl task; see the module docstring.

    Args:
      domain_name, task_name: the task.
      observation_mode: 'flat' (default, Box), 'dict', 'pixels' (a uint8
        (H, W, 3 k) image) or 'pixels_state' (Dict 'pixels', 'state': the flat
        state); see ``rwrl.envs.pixels`` and docs/envs.md, "Pixels".
      pixels_width, pixels_height: the image's size (default 84 x 84), pixel modes only.
      pixels_camera: its camera id or name (default: the domain's, as
        dm_control's pixel benchmarks: 0, quadruped 2), pixel modes only.
      frame_stack: the last k frames stacked on the channel axis (default 1),
        pixel modes only.
      render_mode: None or 'rgb_array'.
      render_width, render_height, camera: ``render()``'s image size and camera.
      time_limit: episode length in control steps (default 1000, truncation).
      physics_state_info: add ``info['physics_state']``, the physics state
        (qpos, qvel, qacc_warmstart) of the returned observation (for agents
        that step models from stored states, e.g. R-MPO); off by default.
      info_layout: 'nested' (default: ``info['safety_vars']`` is a dict) or
        'flat' (one level: ``info['safety_vars/slider_pos']``), for consumers
        that cannot take nested dicts (see ``rwrl.envs.vector_env``).
      **challenges: the challenge specs (``rwrl.challenges.registry.keywords()``).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 50}

    def __init__(self, domain_name: str, task_name: str, *, observation_mode: str = "flat",
                 pixels_width: int | None = None, pixels_height: int | None = None,
                 pixels_camera: int | str | None = None, frame_stack: int | None = None,
                 render_mode: str | None = None, render_width: int = 320,
                 render_height: int = 240, camera: int | str = 0,
                 time_limit: int | None = None, physics_state_info: bool = False,
                 info_layout: str = "nested", **challenges: Any):
        check_render_mode(render_mode)
        check_info_layout(info_layout)
        ObservationLayout.check_mode(observation_mode)
        pixels = pixel_options(observation_mode, pixels_width, pixels_height, pixels_camera,
                               frame_stack)
        batched = make_batched_env(domain_name, task_name, 1, num_threads=1,
                                   time_limit=time_limit, pixels=pixels, **challenges)
        self._adapt(batched, observation_mode, render_mode, render_width, render_height, camera,
                    physics_state_info, pixels_shape=batched.pixels_shape if pixels else None)
        self._set_info_layout(info_layout)

    def _adapt(self, batched, observation_mode, render_mode, render_width, render_height, camera,
               physics_state_info, *, pixels_shape=None) -> None:
        if batched.num_envs != 1:
            raise ValueError(f"num_envs = {batched.num_envs} is not allowed: RwrlEnv adapts a "
                             f"batch of one (use RwrlVectorEnv.from_batched)")
        self.batched = batched
        self.layout = ObservationLayout(self.batched.layout, observation_mode, pixels_shape)
        self.observation_space = self.layout.space()
        self.action_space = spaces.Box(self.batched.action_low.astype(np.float32),
                                       self.batched.action_high.astype(np.float32),
                                       dtype=np.float32)
        self.render_mode = render_mode
        self.metadata = dict(self.metadata, render_fps=int(round(1 / self.batched.control_timestep)))
        if not hasattr(batched, "render_model"):  # no physics to render (the rate-control family)
            self.metadata["render_modes"] = []
        self._renderer = self._make_renderer(render_mode, render_width, render_height, camera)
        self._needs_reset = True
        #: add ``info['physics_state']`` on every reset and step (settable).
        self.physics_state_info = bool(physics_state_info)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        seed = check_seed(seed)
        super().reset(seed=seed)
        obs, info = self.batched.reset(_ENV0, [seed])
        info.pop("terminated", None)
        self._needs_reset = False
        info = unbatch_info(self._with_physics_state(info))
        return self.layout.single(obs), self._layout_info(info)

    def step(self, action):
        if self._needs_reset:
            raise RuntimeError("step() called before reset() or after the episode ended; "
                               "call reset() first")
        actions = check_actions(action, 1, self.batched.action_low, self.batched.action_high,
                                batched=False)
        obs, reward, ended, info = self.batched.step(actions)
        # time limits and divergences are truncations; only a family that says so terminates
        terminated, truncated = split_ends(ended, info)
        self._needs_reset = bool(ended[0])
        return (self.layout.single(obs), float(reward[0]), bool(terminated[0]), bool(truncated[0]),
                self._layout_info(unbatch_info(self._with_physics_state(info))))

    def env_state(self) -> EnvState:
        """Return copies of everything the next step depends on, as flat arrays.

        The batched env's state (``rwrl.tasks.protocol.BatchedEnv.env_state``)
        and 'single/needs_reset' (), for ``restore_env_state``.
        """
        return {**self.batched.env_state(), "single/needs_reset": np.array(self._needs_reset)}

    def restore_env_state(self, state: EnvState) -> None:
        """Put the env where ``env_state()`` saw it; raise a ValueError naming a bad key first."""
        check_env_state(self.env_state(), state)
        self.batched.restore_env_state(without("single/", state))
        self._needs_reset = bool(state["single/needs_reset"])

    def set_state(self, qpos, qvel):
        """Put the physics at positions (nq,) and velocities (nv,); return the observation.

        The challenges' stages restart there as at a reset (``ChallengeEnv.set_state``).
        """
        obs, _ = self.batched.set_state(_ENV0, qpos, qvel)
        return self.layout.single(obs)

    def render(self):
        if self.render_mode != "rgb_array":
            return None
        return self._renderer.render(_ENV0)[0]

    def close(self):
        self._close_batched()
        super().close()
