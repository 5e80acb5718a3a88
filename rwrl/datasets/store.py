"""Minari datasets of rwrl episodes: write one atomically, checksum, list and show.

Where: Minari's root (``MINARI_DATASETS_PATH``, default ``~/.minari/datasets``),
id ``rwrl/<task>-<challenge>-<size>pct-v0`` (``rwrl.datasets.naming``).

Atomic: a dataset is assembled in a hidden staging directory beside its final
place (``<root>/rwrl/.tmp-<name>/``; Minari lists no hidden directory) and
renamed into place once complete, so ``minari.load_dataset`` finds either the
whole dataset or nothing.

Per episode Minari stores observations (T+1, D), actions (T, A), rewards,
terminations, truncations (T,), the reset seed, and the infos
``constraints`` (T+1, K) bool (True = satisfied) and ``cost`` (T+1,) float
(violated constraints per step), the reset's included. Observations are
float32 (:func:`float32_box`), the env's float64 values rounded.

Storage backend: HDF5, chosen over Arrow by ``benchmarks/dataset_storage.py``
(its page, benchmarks/results/dataset_storage.md, has the figures): HDF5 samples
random episodes faster, Arrow's files are smaller, and Minari 0.5.4's Arrow
backend cannot read back a per-step scalar info (``cost``). HDF5
needs h5py (pinned). Arrays are stored raw (``jpeg_encoding=False``: no
images, nothing lossy).

Content checksum: sha256 over every episode in order, each array cast to a
fixed little-endian dtype and preceded by its name and shape
(:func:`content_checksum`); it is computed from the dataset as read back from
disk, and recorded in the metadata as ``rwrl_content_sha256``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from rwrl.storage.atomic_files import TMP_PREFIX, fsync_dir
from rwrl.datasets.naming import NAMESPACE
from rwrl.datasets.episodes import EpisodeArrays

DATA_FORMAT = "hdf5"
#: (name, where in an episode, canonical dtype) in checksum order.
_CHECKSUM_FIELDS = (("observations", "<f4"), ("actions", "<f4"), ("rewards", "<f8"),
                    ("terminations", "|b1"), ("truncations", "|b1"), ("constraints", "|b1"),
                    ("cost", "<f8"))


def datasets_root() -> Path:
    """Return Minari's local datasets directory (``MINARI_DATASETS_PATH`` or its default)."""
    from minari.storage.datasets_root_dir import get_dataset_path
    return Path(get_dataset_path())


def dataset_dir(dataset_id: str) -> Path:
    """Return the directory of ``dataset_id`` (it holds ``data/``)."""
    return datasets_root() / dataset_id


def staging_dir(dataset_id: str) -> Path:
    """Return the hidden staging directory of ``dataset_id`` beside its final place."""
    final = dataset_dir(dataset_id)
    return final.parent / f"{TMP_PREFIX}{final.name}"


def env_spec(env_id: str, env_kwargs: dict[str, Any]) -> Any:
    """Return the registered EnvSpec of ``env_id`` with the challenge kwargs added.

    ``gymnasium.make(spec)`` (and so Minari's ``recover_environment``) builds the
    exact env the episodes came from.
    """
    import gymnasium

    import rwrl  # noqa: F401
    spec = gymnasium.spec(env_id)
    return dataclasses.replace(spec, kwargs={**spec.kwargs, **env_kwargs})


def float32_box(space: Any) -> Any:
    """Return ``space`` (a Box) with dtype float32: observations are stored as float32.

    The envs compute in float64; the published sets and the agents use float32,
    which halves the datasets' size.
    """
    from gymnasium import spaces
    return spaces.Box(np.asarray(space.low, np.float32), np.asarray(space.high, np.float32),
                      dtype=np.float32)


def episode_buffers(arrays: EpisodeArrays, first_id: int) -> Iterator[Any]:
    """Yield one Minari ``EpisodeBuffer`` per episode of ``arrays`` (ids from ``first_id``)."""
    from minari.data_collector.episode_buffer import EpisodeBuffer
    for e in range(len(arrays.lengths)):
        n = int(arrays.lengths[e])
        yield EpisodeBuffer(
            id=first_id + e, seed=int(arrays.seeds[e]),
            observations=arrays.observations[e, :n + 1], actions=arrays.actions[e, :n],
            rewards=arrays.rewards[e, :n], terminations=arrays.terminations[e, :n],
            truncations=arrays.truncations[e, :n],
            infos={"constraints": arrays.constraints[e, :n + 1], "cost": arrays.cost[e, :n + 1]})


def content_checksum(episodes: Iterable[Any]) -> str:
    """Return the sha256 of episodes (Minari ``EpisodeData``), in order; see the module docstring."""
    digest = hashlib.sha256()
    for episode in episodes:
        for name, dtype in _CHECKSUM_FIELDS:
            value = episode.infos[name] if name in ("constraints", "cost") else getattr(episode, name)
            array = np.ascontiguousarray(value, dtype=dtype)
            digest.update(f"{name}{array.shape}".encode())
            digest.update(array.tobytes())
    return digest.hexdigest()


def write_dataset(where: Path, dataset_id: str, spec: Any, observation_space: Any,
                  action_space: Any, chunks: Iterable[EpisodeArrays], metadata: dict[str, Any],
                  data_format: str = DATA_FORMAT) -> str:
    """Write a Minari dataset into directory ``where`` (replaced); return its content checksum.

    Args:
      where: the dataset directory to create (its ``data/`` is Minari's data path).
      dataset_id: the Minari id recorded in the metadata.
      spec: the EnvSpec of the env and of the eval env.
      observation_space, action_space: the single env's spaces.
      chunks: the episodes, in order.
      metadata: further metadata (ref scores, description, rwrl_* keys).
    """
    import minari
    from minari.dataset.minari_dataset import MinariDataset
    from minari.dataset.minari_storage import MinariStorage
    shutil.rmtree(where, ignore_errors=True)  # a killed assembly: start it over
    where.mkdir(parents=True)
    storage = MinariStorage.new(where / "data", observation_space=observation_space,
                                action_space=action_space, env_spec=spec,
                                data_format=data_format, jpeg_encoding=False)
    storage.update_metadata({"dataset_id": dataset_id, "minari_version": minari.__version__,
                             "eval_env_spec": spec.to_json(), **metadata})
    first = 0
    for arrays in chunks:
        storage.update_episodes(episode_buffers(arrays, first))
        first += len(arrays.lengths)
    checksum = content_checksum(MinariDataset(where / "data").iterate_episodes())
    storage.update_metadata({"rwrl_content_sha256": checksum})
    return checksum


def publish(where: Path, dataset_id: str) -> Path:
    """Rename the complete dataset ``where`` to its place under Minari's root; return it."""
    from minari.namespace import create_namespace, list_local_namespaces
    if NAMESPACE not in list_local_namespaces():
        create_namespace(NAMESPACE, description="rwrl: the real-world RL suite's offline datasets")
    final = dataset_dir(dataset_id)
    os.replace(where, final)
    fsync_dir(final.parent)
    return final


def list_datasets() -> dict[str, dict[str, Any]]:
    """Return id -> metadata of the complete rwrl datasets under Minari's root."""
    import minari
    return minari.list_local_datasets(prefix=NAMESPACE)


def dataset_summary(dataset_id: str, verify: bool = False) -> dict[str, Any]:
    """Return the facts of a dataset (episodes, steps, scores, command, checksum).

    Args:
      verify: recompute the content checksum and report whether it matches.
    """
    import minari
    dataset = minari.load_dataset(dataset_id)
    meta = dataset.storage.metadata
    summary = {"id": dataset_id, "path": str(dataset_dir(dataset_id)),
               "episodes": dataset.total_episodes, "steps": dataset.total_steps,
               "size_mb": meta.get("dataset_size"), "format": meta.get("data_format"),
               "ref_min_score": meta.get("ref_min_score"), "ref_max_score": meta.get("ref_max_score"),
               **{k: v for k, v in meta.items() if k.startswith("rwrl_")}}
    if verify:
        actual = content_checksum(dataset.iterate_episodes())
        summary["checksum_verified"] = actual == meta.get("rwrl_content_sha256")
    return summary


__all__ = ["DATA_FORMAT", "content_checksum", "dataset_dir", "dataset_summary", "datasets_root",
           "env_spec", "episode_buffers", "float32_box", "list_datasets", "publish", "staging_dir",
           "write_dataset"]
