"""Env state snapshots: flat string keys -> numpy arrays, checked before anything moves.

Every layer of a batched env (the task, the challenge stages, the adapters and
wrappers above them) saves what its next step depends on as plain arrays
under keys of its own ('task/physics/qpos', 'challenge/actions/delay/buffer',
'vector/resetting'), so that a snapshot goes into an ``np.savez`` file read
with ``allow_pickle=False``. A layer restores by checking the whole snapshot
against its own ``env_state()`` (``check_env_state``: same keys, shapes and
dtypes), then writing: a mismatching snapshot raises before anything changes.
Unicode arrays are identities, checked for equal values: 'task/name'
('cartpole-swingup') and 'challenge/stages' tell apart envs whose arrays have
the same shapes.

Example:
  >>> mine = {"task/elapsed_steps": np.zeros(2, np.int64)}
  >>> check_env_state(mine, {"task/elapsed_steps": np.zeros(3, np.int64)})
  Traceback (most recent call last):
  ...
  ValueError: env state 'task/elapsed_steps': shape (3,) int64, expected (2,) int64 (same constructor arguments: task, challenges, num_envs)
  >>> with_prefix("env/", mine), under("task/", mine)
  ({'env/task/elapsed_steps': array([0, 0])}, {'elapsed_steps': array([0, 0])})
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

#: what a snapshot is: flat string keys -> numpy arrays.
EnvState = dict[str, np.ndarray]

_SAME = "same constructor arguments: task, challenges, num_envs"


def check_env_state(expected: Mapping[str, np.ndarray], given: Mapping[str, np.ndarray],
                    same: str = _SAME) -> None:
    """Raise a ValueError naming the first key of ``given`` that ``expected`` does not match.

    Args:
      expected: the restoring env's own ``env_state()``.
      given: the snapshot to restore.
      same: what a matching snapshot comes from, said in every message (an env
        with the same constructor arguments: which ones, per env family).
    """
    if not isinstance(given, Mapping):
        raise ValueError(f"env state is a {type(given).__name__}: expected a dict of "
                         f"{len(expected)} arrays ({same})")
    # identities first: 'task/name' explains a mismatch better than the keys and shapes it implies
    identities = [key for key, value in expected.items() if value.dtype.kind == "U"]
    for key in identities:
        if key in given:
            check_array(key, expected[key], given[key], same)
    missing = sorted(set(expected) - set(given))
    if missing:
        raise ValueError(f"env state key {missing[0]!r} is missing ({len(missing)} missing): "
                         f"expected the keys of env_state() of an env with the {same}")
    extra = sorted(set(given) - set(expected))
    if extra:
        raise ValueError(f"env state key {extra[0]!r} is not expected ({len(extra)} extra): "
                         f"allowed the keys of env_state() of an env with the {same}")
    for key, want in expected.items():
        check_array(key, want, given[key], same)


def check_array(key: str, want: np.ndarray, got, same: str = _SAME) -> None:
    """Raise a ValueError naming ``key`` unless ``got`` is an array of ``want``'s shape and dtype."""
    if got is None:
        raise ValueError(f"env state key {key!r} is missing: expected a numpy array "
                         f"{want.shape} {want.dtype}")
    if not isinstance(got, np.ndarray):
        raise ValueError(f"env state {key!r} is a {type(got).__name__}: expected a numpy array "
                         f"{want.shape} {want.dtype}")
    if want.dtype.kind == "U":
        if got.dtype.kind != "U" or got.shape != want.shape or not (got == want).all():
            raise ValueError(f"env state {key!r} = {got.tolist()}, expected {want.tolist()} "
                             f"({same})")
        return
    if got.shape != want.shape or got.dtype != want.dtype:
        raise ValueError(f"env state {key!r}: shape {got.shape} {got.dtype}, expected "
                         f"{want.shape} {want.dtype} ({same})")


def with_prefix(prefix: str, state: Mapping[str, np.ndarray]) -> EnvState:
    """Return ``state`` with ``prefix`` put before every key."""
    return {prefix + key: value for key, value in state.items()}


def under(prefix: str, state: Mapping[str, np.ndarray]) -> EnvState:
    """Return the entries of ``state`` whose key starts with ``prefix``, the prefix removed."""
    return {key[len(prefix):]: value for key, value in state.items() if key.startswith(prefix)}


def only(prefix: str, state: Mapping[str, np.ndarray]) -> EnvState:
    """Return the entries of ``state`` whose key starts with ``prefix`` (keys kept whole)."""
    return {key: value for key, value in state.items() if key.startswith(prefix)}


def without(prefix: str, state: Mapping[str, np.ndarray]) -> EnvState:
    """Return the entries of ``state`` whose key does not start with ``prefix``."""
    return {key: value for key, value in state.items() if not key.startswith(prefix)}


def flatten_tree(tree: Mapping) -> EnvState:
    """Return a nested dict of arrays (an ``info``) as 'outer/inner' keys -> array copies."""
    flat = {}
    for key, value in tree.items():
        if "/" in key:
            raise ValueError(f"info key {key!r} holds '/': a snapshot key cannot tell it apart")
        if isinstance(value, Mapping):
            flat.update(with_prefix(f"{key}/", flatten_tree(value)))
        else:
            flat[key] = np.array(value)
    return flat


def unflatten_tree(flat: Mapping[str, np.ndarray]) -> dict:
    """Return the nested dict of ``flatten_tree`` output (array copies)."""
    tree: dict = {}
    for key, value in flat.items():
        *outer, name = key.split("/")
        node = tree
        for part in outer:
            node = node.setdefault(part, {})
        node[name] = np.array(value)
    return tree
