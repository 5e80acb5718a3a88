"""Gymnasium wrappers that write one row per finished episode to a JSON-lines file.

The row schema is in :mod:`rwrl.metrics.schema`; the statistics in
:mod:`rwrl.metrics.accumulator`; the file format in
:mod:`rwrl.metrics.episode_file`. Read a file back with
``pd.read_json(path, lines=True)`` or :func:`rwrl.metrics.read_episodes`.

Example::

    env = EpisodeRecorder(gymnasium.make("rwrl/cartpole-swingup-v0"), "run/episodes.jsonl",
                          fields={"phase": "train"})
    obs, info = env.reset(seed=0)
    ...  # every finished episode is one durable row in run/episodes.jsonl
"""

from __future__ import annotations

from typing import Any, Mapping

import gymnasium
import numpy as np
from gymnasium.vector import AutoresetMode

from rwrl.envs.autoreset import EpisodeMarks
from rwrl.metrics import schema
from rwrl.metrics.accumulator import EpisodeAccumulator
from rwrl.metrics.episode_file import EpisodeFile, PathLike


def _check_fields(fields: Mapping[str, Any] | None) -> dict[str, Any]:
    """Validate user fields: string names not shadowing recorded columns, scalar values."""
    checked = dict(fields or {})
    for name, value in checked.items():
        if not isinstance(name, str) or schema.is_reserved(name):
            raise ValueError(f"fields: name {name!r} is reserved or not a string "
                             f"(reserved: {schema.RESERVED_NAMES}, prefixes {schema.RESERVED_PREFIXES})")
        if not (value is None or isinstance(value, (str, bool, int, float, np.generic))):
            raise ValueError(f"fields: {name!r} must be a scalar (str, int, float, bool, None), "
                             f"got {type(value).__name__}")
    return checked


def _constraint_names(env: Any, num_constraints: int) -> tuple[str, ...]:
    """Names from ``env.unwrapped.constraint_names`` (or a vector env's sub-envs), else "0", "1", ..."""
    names = getattr(env.unwrapped, "constraint_names", None)
    if names is None and hasattr(env, "get_attr"):
        try:
            names = env.get_attr("constraint_names")[0]
        except AttributeError:
            names = None
    names = tuple(names) if names is not None else tuple(str(k) for k in range(num_constraints))
    if len(names) != num_constraints:
        raise ValueError(f"constraint_names has {len(names)} names {names} but info['constraints'] "
                         f"has {num_constraints} flags")
    return names


def _batch_of_one(info: Mapping[str, Any]) -> dict[str, Any]:
    """Give every array of a single env's info a leading axis of 1 (nested dicts too)."""
    return {k: _batch_of_one(v) if isinstance(v, Mapping) else np.asarray(v)[None] for k, v in info.items()}


class _Rows:
    """The file, the user fields and the episode counter shared by both recorders."""

    def __init__(self, path: PathLike, fields: Mapping[str, Any] | None):
        self.fields = _check_fields(fields)
        self.file = EpisodeFile(path)
        self.next_episode = self.file.next_episode

    def write(self, accumulator: EpisodeAccumulator, env_ids) -> None:
        rows = []
        for i in env_ids:
            head = {schema.EPISODE: self.next_episode, schema.ENV_INDEX: int(i)}
            rows.append({**head, **accumulator.row(int(i)), **self.fields})
            self.next_episode += 1
        self.file.write(rows)
        accumulator.clear(np.asarray(env_ids, dtype=np.int64))


class EpisodeRecorder(gymnasium.Wrapper):
    """Writes one row per finished episode of a single env (see rwrl.metrics.schema).

    An episode finishes when ``step`` returns terminated or truncated; an
    episode abandoned by an early ``reset`` is not written.

    Args:
      env: an env emitting the rwrl info contract (``constraints``, ``cost``,
        ``safety_vars`` on every step and reset; optionally ``multiobj``,
        ``perturbation``, ``realtime``).
      path: the JSON-lines file, appended to; numbering continues after its last row.
      fields: extra scalar columns for every row, e.g. ``{"phase": "train"}``.
    """

    def __init__(self, env: gymnasium.Env, path: PathLike, fields: Mapping[str, Any] | None = None):
        super().__init__(env)
        self._rows = _Rows(path, fields)
        self._accumulator: EpisodeAccumulator | None = None

    @property
    def episode_count(self) -> int:
        """Index the next finished episode will get."""
        return self._rows.next_episode

    def set_fields(self, **fields: Any) -> None:
        """Replace the extra columns of the following rows (e.g. ``phase="eval"``)."""
        self._rows.fields = _check_fields(fields)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        if self._accumulator is None:
            names = _constraint_names(self.env, np.size(info["constraints"]))
            self._accumulator = EpisodeAccumulator(1, names)
        self._accumulator.clear(slice(None))
        self._accumulator.observe_reset(slice(None), _batch_of_one(info))
        return obs, info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        if self._accumulator is None:
            raise gymnasium.error.ResetNeeded("EpisodeRecorder: call reset before step")
        self._accumulator.add_step(np.ones(1, dtype=bool), np.asarray([reward]), _batch_of_one(info))
        if terminated or truncated:
            self._rows.write(self._accumulator, [0])
        return obs, reward, terminated, truncated, info

    def close(self):
        self._rows.file.close()
        super().close()


class VectorEpisodeRecorder(gymnasium.vector.VectorWrapper):
    """Writes one row per finished episode of each sub-env of a vector env.

    Expects Gymnasium's NEXT_STEP autoreset (the default): the step after an
    episode ends resets that env, returning its reset observation with reward
    0, and is not counted as a step of any episode. Rows finished on the same
    step are written together, ``episode`` in the order of ``env_index``.

    Args:
      env: a vector env emitting the rwrl info contract batched on axis N.
      path: the JSON-lines file, appended to.
      fields: extra scalar columns for every row.
    """

    def __init__(self, env: gymnasium.vector.VectorEnv, path: PathLike,
                 fields: Mapping[str, Any] | None = None):
        super().__init__(env)
        mode = env.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
        if AutoresetMode(mode) is not AutoresetMode.NEXT_STEP:
            raise ValueError(f"autoreset_mode must be NEXT_STEP, got {mode!r}")
        self._rows = _Rows(path, fields)
        self._accumulator: EpisodeAccumulator | None = None
        self._marks = EpisodeMarks(self.num_envs)

    @property
    def episode_count(self) -> int:
        """Index the next finished episode will get."""
        return self._rows.next_episode

    def set_fields(self, **fields: Any) -> None:
        """Replace the extra columns of the following rows."""
        self._rows.fields = _check_fields(fields)

    def reset(self, *, seed=None, options: dict[str, Any] | None = None):
        mask = (options or {}).get("reset_mask")  # read first: SyncVectorEnv pops it
        obs, info = self.env.reset(seed=seed, options=options)
        if self._accumulator is None:
            flags = np.asarray(info["constraints"]).reshape(self.num_envs, -1)
            self._accumulator = EpisodeAccumulator(self.num_envs, _constraint_names(self.env, flags.shape[1]))
        ids = np.ones(self.num_envs, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
        self._accumulator.clear(ids)
        self._accumulator.observe_reset(ids, info)
        self._marks.reset(ids)
        return obs, info

    def step(self, actions):
        obs, rewards, terminations, truncations, info = self.env.step(actions)
        if self._accumulator is None:
            raise gymnasium.error.ResetNeeded("VectorEpisodeRecorder: call reset before step")
        stepped, finished = self._marks.step(terminations, truncations)
        if not stepped.all():  # these envs just reset: a new episode, not a step
            self._accumulator.clear(~stepped)
            self._accumulator.observe_reset(~stepped, info)
        self._accumulator.add_step(stepped, rewards, info)
        self._rows.write(self._accumulator, np.flatnonzero(finished))
        return obs, rewards, terminations, truncations, info

    def close(self, **kwargs):
        rows = getattr(self, "_rows", None)  # None when the constructor raised before opening it
        if rows is not None:
            rows.file.close()
        return super().close(**kwargs)


class DmEnvEpisodeRecorder:
    """Writes one row per finished episode of an rwrl dm_env environment.

    What ``rwrl.load(..., log_output=path)`` returns: it forwards the dm_env
    interface and reads what the adapter exposes: ``env.constraint_names``
    and the batched ``info`` of the last step or reset in ``env.info``.
    """

    def __init__(self, env, path: PathLike, fields: Mapping[str, Any] | None = None):
        self.env = env
        self._rows = _Rows(path, fields)
        self._accumulator = EpisodeAccumulator(1, tuple(env.constraint_names))

    def reset(self):
        timestep = self.env.reset()
        self._accumulator.clear(slice(None))
        self._accumulator.observe_reset(slice(None), self.env.info)
        return timestep

    def step(self, action):
        timestep = self.env.step(action)
        if timestep.first():  # the adapter reset itself after a LAST step
            self._accumulator.clear(slice(None))
            self._accumulator.observe_reset(slice(None), self.env.info)
            return timestep
        self._accumulator.add_step(np.ones(1, dtype=bool), np.asarray([timestep.reward]),
                                   self.env.info)
        if timestep.last():
            self._rows.write(self._accumulator, [0])
        return timestep

    def close(self) -> None:
        self._rows.file.close()
        self.env.close()

    def __getattr__(self, name: str):
        # observation_spec, action_spec, physics, info, ...: the wrapped env's
        return getattr(self.env, name)
