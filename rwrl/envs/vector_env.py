"""The Gymnasium vector environment: N envs stepped in one engine call.

Autoreset: Gymnasium's three modes, chosen with ``autoreset_mode=`` (a
``gymnasium.vector.AutoresetMode`` or its name) and reported in
``metadata['autoreset_mode']``, as ``gymnasium.vector.SyncVectorEnv`` does:

* NEXT_STEP (default; ``rwrl.envs.autoreset``): the step that ends an episode
  returns its true last observation with ``truncated`` set; the next step
  resets that env and returns the first observation of the new episode with
  reward 0 (and ignores that env's action).
* SAME_STEP: the step that ends an episode resets that env at once and
  returns the new episode's first observation and info; the ended episode's
  last observation and info are in ``info['final_obs']`` ((N,) object array,
  None for the other envs) and ``info['final_info']`` (the info's arrays,
  zero in the other rows), with the masks ``info['_final_obs']`` and
  ``info['_final_info']`` (and '_<key>' inside ``final_info``).
* DISABLED: nothing resets by itself; reset the ended envs with
  ``reset(options={'reset_mask': mask})``. Stepping while an ended env awaits
  its reset raises an AssertionError before anything steps (SyncVectorEnv asserts).

Info layout: ``info['safety_vars']`` (and the perturbation and real-time
infos) are nested dicts by default, as before. ``info_layout='flat'`` gives
one level instead ('safety_vars/slider_pos'), for consumers that cannot take
nested dicts: TorchRL builds its info specs from the first info it sees and
trips on nested ones in SAME_STEP's ``final_info``. Offered as an option,
not the default, because Minari, the recorders and users' code read the
nested keys today; the flat keys are the nested ones joined by '/', the same
names the snapshots use (``rwrl.core.env_state.flatten_tree``).

Seeding: ``reset(seed=s)`` seeds env i with ``spawn_seeds(s, N)[i]``, so env i
behaves exactly as ``gymnasium.make(id)`` reset with that seed.

Snapshots: ``env_state()`` is the batched env's state plus the adapter's
own, under 'vector/': the autoreset marks ('resetting', (N,) bool: a pending
NEXT_STEP autoreset, or in DISABLED mode an ended env awaiting its reset;
never set in SAME_STEP mode, which keeps no state of its own), whether
it was reset ('started', ()), and the last observation and info
('last/obs' (N, D), in the pixel modes 'last/obs/state' and 'last/obs/pixels';
'last/info/<key>/...'; present once started), which a
partial ``reset_mask`` reset merges into. ``restore_env_state`` on an env
of the same arguments continues exactly where the snapshot was taken.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from rwrl.core.seeding import check_seed, spawn_seeds
from rwrl.envs.autoreset import EpisodeMarks, split_ends
from rwrl.envs.factory import make_batched_env
from rwrl.envs.gym_env import BatchedAccess, check_info_layout, check_render_mode
from rwrl.envs.pixels import pixel_options
from rwrl.envs.spaces import ObservationLayout, merge_rows, take_rows
from rwrl.envs.validation import check_actions
from rwrl.core.env_state import (EnvState, check_array, check_env_state, flatten_tree, only,
                                  under, unflatten_tree, with_prefix, without)


def _obs_state(obs) -> EnvState:
    """Return a batched observation as snapshot keys: 'obs', or 'obs/state' and 'obs/pixels'."""
    if isinstance(obs, dict):
        return with_prefix("obs/", flatten_tree(obs))
    return {"obs": np.array(obs)}


def check_autoreset_mode(mode) -> AutoresetMode:
    """Return ``mode`` (an ``AutoresetMode``, its name or its value) as an ``AutoresetMode``."""
    if isinstance(mode, str) and mode in AutoresetMode.__members__:
        return AutoresetMode[mode]
    try:
        return AutoresetMode(mode)
    except ValueError:
        allowed = [m.name for m in AutoresetMode]
        raise ValueError(f"autoreset_mode {mode!r} is not allowed: use a "
                         f"gymnasium.vector.AutoresetMode or its name, one of {allowed}") from None


def final_info(info: dict, done: np.ndarray) -> dict:
    """Return the rows ``done`` (bool mask) of ``info`` as SyncVectorEnv's ``info['final_info']``.

    Each value is an array of the info's dtype and shape, zero in the rows
    not ``done``, beside its mask '_<key>' (nested dicts too), as
    ``gymnasium.vector.VectorEnv._add_info`` builds it.
    """
    out = {}
    for key, value in info.items():
        if isinstance(value, dict):
            out[key] = final_info(value, done)
        else:
            value = np.asarray(value)
            out[key] = np.where(done.reshape((-1,) + (1,) * (value.ndim - 1)), value,
                                np.zeros_like(value))
        out[f"_{key}"] = done.copy()
    return out


class RwrlVectorEnv(BatchedAccess, VectorEnv):
    """N environments of an rwrl task; see the module docstring.

    Args: as ``RwrlEnv``, plus ``num_envs``, ``num_threads`` (engine threads)
    and ``autoreset_mode`` (a ``gymnasium.vector.AutoresetMode`` or its name;
    default NEXT_STEP), reported in ``metadata['autoreset_mode']``.
    ``physics_state_info``: ``info['physics_state']`` is (N, nq + 2 nv), row i
    the state of env i's returned observation (after an autoreset: the new
    episode's first state). The pixel modes render the N envs with one GL
    context (``rwrl.envs.render.BatchRenderer``); env i's frames are those
    of the single env of its seed.
    """

    metadata = {"render_modes": ["rgb_array"], "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(self, domain_name: str, task_name: str, num_envs: int = 1, *,
                 observation_mode: str = "flat", pixels_width: int | None = None,
                 pixels_height: int | None = None, pixels_camera: int | str | None = None,
                 frame_stack: int | None = None, render_mode: str | None = None,
                 render_width: int = 320, render_height: int = 240, camera: int | str = 0,
                 num_threads: int | None = None, time_limit: int | None = None,
                 max_episode_steps: int | None = None, physics_state_info: bool = False,
                 autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
                 info_layout: str = "nested", **challenges: Any):
        check_render_mode(render_mode)
        check_autoreset_mode(autoreset_mode)
        check_info_layout(info_layout)
        ObservationLayout.check_mode(observation_mode)
        pixels = pixel_options(observation_mode, pixels_width, pixels_height, pixels_camera,
                               frame_stack)
        time_limit = time_limit if time_limit is not None else max_episode_steps
        batched = make_batched_env(domain_name, task_name, num_envs,
                                   num_threads=num_threads, time_limit=time_limit,
                                   pixels=pixels, **challenges)  # checks num_envs, naming it
        self._adapt(batched, observation_mode, render_mode, render_width, render_height, camera,
                    physics_state_info, autoreset_mode,
                    pixels_shape=batched.pixels_shape if pixels else None)
        self._set_info_layout(info_layout)

    def _adapt(self, batched, observation_mode, render_mode, render_width, render_height, camera,
               physics_state_info, autoreset_mode=AutoresetMode.NEXT_STEP, *,
               pixels_shape=None) -> None:
        #: the Gymnasium autoreset mode (also ``metadata['autoreset_mode']``).
        self.autoreset_mode = check_autoreset_mode(autoreset_mode)
        self.metadata = {**type(self).metadata, "autoreset_mode": self.autoreset_mode}
        if not hasattr(batched, "render_model"):  # no physics to render (the rate-control family)
            self.metadata["render_modes"] = []
        self.batched = batched
        self.num_envs = self.batched.num_envs
        self.layout = ObservationLayout(self.batched.layout, observation_mode, pixels_shape)
        self.single_observation_space = self.layout.space()
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        low = self.batched.action_low.astype(np.float32)
        high = self.batched.action_high.astype(np.float32)
        self.single_action_space = spaces.Box(low, high, dtype=np.float32)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.render_mode = render_mode
        self._renderer = self._make_renderer(render_mode, render_width, render_height, camera)
        self._marks = EpisodeMarks(self.num_envs)
        self._last: tuple[np.ndarray, dict] | None = None  # the last observation and info
        #: add ``info['physics_state']`` on every reset and step (settable).
        self.physics_state_info = bool(physics_state_info)

    def _seeds(self, seed) -> list:
        """Return one seed per env, every one checked before any is used."""
        if seed is None:
            return [None] * self.num_envs
        if isinstance(seed, (int, np.integer)) and not isinstance(seed, (bool, np.bool_)):
            return spawn_seeds(check_seed(seed), self.num_envs)
        try:
            if isinstance(seed, (str, bytes)):
                raise TypeError
            seeds = list(seed)
        except TypeError:
            raise ValueError(f"seed = {seed!r} is not allowed: give a non-negative int, a list "
                             f"of num_envs={self.num_envs} of them, or None") from None
        if len(seeds) != self.num_envs:
            raise ValueError(f"seed list has {len(seeds)} entries, expected num_envs={self.num_envs}")
        return [check_seed(s, f"seed[{i}]") for i, s in enumerate(seeds)]

    def _mask(self, options: dict | None) -> np.ndarray:
        if not options or "reset_mask" not in options:
            return np.ones(self.num_envs, bool)
        mask = np.asarray(options["reset_mask"])
        if mask.shape != (self.num_envs,) or mask.dtype != np.bool_:
            raise ValueError(f"reset_mask must be a bool array of shape ({self.num_envs},), "
                             f"got {mask.dtype} {mask.shape}")
        if self._last is None and not mask.all():
            raise ValueError("reset_mask: the first reset must reset every env")
        return mask

    def reset(self, *, seed=None, options: dict | None = None):
        seeds, mask = self._seeds(seed), self._mask(options)
        ids = np.flatnonzero(mask)
        obs, info = self._reset_batch(ids, [seeds[i] for i in ids])
        self._marks.reset(mask)
        if len(ids) < self.num_envs:  # keep the other envs' entries as they were
            last_obs, last_info = self._last
            obs, info = merge_rows(last_obs, obs, ids), merge_rows(last_info, info, ids)
        self._last = obs, info
        return self.layout.batch(obs), self._layout_info(self._with_physics_state(info))

    def step(self, actions):
        if self._last is None:
            raise RuntimeError("step() called before reset(); call reset() first")
        actions = check_actions(actions, self.num_envs, self.batched.action_low,
                                self.batched.action_high, batched=True)
        if self.autoreset_mode is AutoresetMode.NEXT_STEP:
            obs, reward, terminated, truncated, info = self._step_next_step(actions)
        elif self.autoreset_mode is AutoresetMode.SAME_STEP:
            return self._step_same_step(actions)
        else:
            obs, reward, terminated, truncated, info = self._step_disabled(actions)
        self._marks.step(terminated, truncated)
        self._last = obs, info
        info = self._layout_info(self._with_physics_state(info))
        return self.layout.batch(obs), reward, terminated, truncated, info

    def _step_next_step(self, actions):
        """Step every env; the envs that ended on the last step reset instead (reward 0)."""
        resetting = np.flatnonzero(self._marks.resetting)
        obs, reward, terminated, truncated, info = self._step_batch(actions)
        if resetting.size:  # NEXT_STEP autoreset: these envs start a new episode now
            reset_obs, reset_info = self._reset_batch(resetting, [None] * resetting.size)
            obs = merge_rows(obs, reset_obs, resetting)
            info = merge_rows(info, reset_info, resetting)
            reward = np.array(reward)
            reward[resetting] = 0.0
            terminated[resetting] = truncated[resetting] = False
        return obs, reward, terminated, truncated, info

    def _step_disabled(self, actions):
        """Step every env; refuse, as SyncVectorEnv does, while an ended env awaits its reset."""
        pending = np.flatnonzero(self._marks.resetting)
        if pending.size:
            raise AssertionError(
                f"autoreset_mode DISABLED: env(s) {pending.tolist()} ended their episode; "
                "reset them first with reset(options={'reset_mask': mask})")
        return self._step_batch(actions)

    def _step_same_step(self, actions):
        """Step every env; the envs that end reset at once (SyncVectorEnv's SAME_STEP).

        Their final observation and info go to ``info['final_obs']`` ((N,)
        object array, None elsewhere) and ``info['final_info']``, each beside
        its '_<key>' mask.
        """
        obs, reward, terminated, truncated, info = self._step_batch(actions)
        out = self._layout_info(self._with_physics_state(info))
        done = np.flatnonzero(terminated | truncated)
        if done.size:
            mask = terminated | truncated
            finals = np.full(self.num_envs, None, dtype=object)
            for i in done:
                finals[i] = self.layout.single(take_rows(obs, slice(i, i + 1)))
            extra = {"final_obs": finals, "_final_obs": mask,
                     "final_info": final_info(out, mask), "_final_info": mask.copy()}
            reset_obs, reset_info = self._reset_batch(done, [None] * done.size)
            obs = merge_rows(obs, reset_obs, done)
            info = merge_rows(info, reset_info, done)
            out = {**extra, **self._layout_info(self._with_physics_state(info))}
        self._last = obs, info
        return self.layout.batch(obs), reward, terminated, truncated, out

    def _reset_batch(self, ids, seeds):
        """Reset the batched envs ``ids``; return their observation and info."""
        obs, info = self.batched.reset(ids, seeds)
        info.pop("terminated", None)  # a step's flag (split_ends); not part of the info
        return obs, info

    def _step_batch(self, actions):
        """Step the batched envs; return (obs, reward, terminated, truncated, info).

        Time limits and divergences are truncations; only a family that marks
        true terminal states (``info['terminated']``) terminates.
        """
        obs, reward, ended, info = self.batched.step(actions)
        terminated, truncated = split_ends(ended, info)
        return obs, reward, terminated, truncated, info

    def set_state(self, qpos, qvel, env_ids=None):
        """Set the state of envs ``env_ids`` (all if None): qpos (n, nq), qvel (n, nv).

        Returns the observations of those envs at the new state (the
        challenges' stages restart there as at a reset).
        """
        ids = np.arange(self.num_envs) if env_ids is None else np.asarray(env_ids, np.int64)
        obs, _ = self.batched.set_state(ids, qpos, qvel)
        return self.layout.batch(obs)

    def env_state(self) -> EnvState:
        """Return copies of everything the next step depends on (see the module docstring)."""
        own = {"resetting": self._marks.resetting.copy(),
               "started": np.array(self._last is not None)}
        if self._last is not None:
            own.update(with_prefix("last/", _obs_state(self._last[0])))
            own.update(with_prefix("last/info/", flatten_tree(self._last[1])))
        return {**self.batched.env_state(), **with_prefix("vector/", own)}

    def restore_env_state(self, state: EnvState) -> None:
        """Put every env where ``env_state()`` saw it; raise a ValueError naming a bad key first."""
        self._check_snapshot(state)
        if self.autoreset_mode is AutoresetMode.SAME_STEP and np.any(state["vector/resetting"]):
            raise ValueError("env state 'vector/resetting': a pending NEXT_STEP autoreset "
                             "cannot be restored into an env of autoreset_mode SAME_STEP")
        self.batched.restore_env_state(without("vector/", state))
        self._marks.resetting = np.array(state["vector/resetting"])
        self._last = None
        if state["vector/started"]:
            last = under("vector/last/", state)
            obs = np.array(last["obs"]) if "obs" in last else unflatten_tree(under("obs/", last))
            self._last = obs, unflatten_tree(under("info/", last))

    def _check_snapshot(self, state: EnvState) -> None:
        """Raise a ValueError naming the first key of ``state`` that this env cannot take.

        The 'vector/last/...' keys are checked against this env's own last
        observation and info once it was reset; before that, their shapes
        are checked for the leading num_envs only.
        """
        mine = self.env_state()
        check_env_state(without("vector/last/", mine), without("vector/last/", state))
        last = only("vector/last/", state)
        if not state["vector/started"]:
            if last:
                raise ValueError(f"env state key {next(iter(last))!r} is not expected: the "
                                 "snapshot's env was never reset ('vector/started' False)")
        elif self._last is not None:
            check_env_state(only("vector/last/", mine), last)
        else:
            for key, want in _obs_state(self.layout.zeros(self.num_envs)).items():
                check_array(f"vector/last/{key}", want, last.get(f"vector/last/{key}"))
            for key, value in last.items():
                if not isinstance(value, np.ndarray) or value.shape[:1] != (self.num_envs,):
                    raise ValueError(f"env state {key!r}: expected an array of leading "
                                     f"dimension num_envs={self.num_envs}")

    def render(self):
        if self.render_mode != "rgb_array":
            return None
        return self._renderer.render()

    def close_extras(self, **kwargs):
        self._close_batched()
