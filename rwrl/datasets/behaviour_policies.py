"""Behaviour policies: D4PG snapshots as batched policy functions, their manifest.

A snapshot is an ordinary checkpoint of an ``rwrl run`` directory
(``RUN/checkpoints/ckpt-<steps>/``, see ``rwrl.storage.checkpoint``);
the run's ``config.json`` says which agent, agent config and env made it.
:func:`load_policy` turns one into ``policy(obs (B, D)) -> actions (B, A)``:
the agent's deterministic action (no exploration noise), mapped onto the
env's action bounds, computed for the whole batch in one jitted call. Datasets,
off-policy evaluation and tests call this one function.

The manifest (``manifest.json`` of a policies directory, written by
``rwrl policies train``) lists every evaluated checkpoint of the run (the
policy set for off-policy evaluation) and, among them, the behaviour
snapshots (see :func:`select_snapshots`). Each entry: path (relative to the
manifest), env steps, mean and std of the return over ``episodes`` evaluation
episodes on the batched vector env, and a sha256 over the checkpoint's files.

Choices the paper leaves open:

* Fractions: snapshots at 0.25, 0.5, 0.75 and 1.0 of the reference return,
  the best mean return measured among the run's checkpoints (with a learning
  curve that plateaus, best and final agree; the best ignores a dip at the very
  end). For each fraction the checkpoint whose measured return is nearest to
  it is taken (the earliest on a tie); two fractions may take the same one.
* Datasets use the 0.75 snapshot by default: "a partially trained online
  agent", as the published sets were gathered.
* The checksum is over the checkpoint's files (name and sha256 of each, in
  name order), so a snapshot changed on disk is refused at load.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from rwrl.storage.atomic_files import atomic_write_bytes, file_sha256
from rwrl.datasets.episodes import BatchedPolicy, derived_seeds, run_episodes
from rwrl.domains.names import env_id_of
from rwrl.tasks.action_scaling import from_unit

MANIFEST_FILE = "manifest.json"
MANIFEST_FORMAT = 1
#: fractions of the reference return at which behaviour snapshots are taken.
DEFAULT_FRACTIONS = (0.25, 0.5, 0.75, 1.0)
#: the snapshot a dataset is generated with, unless another is asked for.
DEFAULT_BEHAVIOUR_FRACTION = 0.75
#: checkpoint meta key of a policy-only snapshot: the state leaf prefixes it keeps.
POLICY_ONLY_META = "policy_only"


class PolicyError(ValueError):
    """A snapshot or manifest is missing, damaged or does not fit; the message names it."""


def snapshot_checksum(path: Path) -> str:
    """Return the sha256 over a checkpoint directory's files (name and digest, name order)."""
    path = Path(path)
    if not path.is_dir():
        raise PolicyError(f"snapshot {path} is not a checkpoint directory")
    lines = [f"{p.name} {file_sha256(p)}\n" for p in sorted(path.iterdir()) if p.is_file()]
    return hashlib.sha256("".join(lines).encode()).hexdigest()


# ------------------------------------------------------------------ loading


@dataclasses.dataclass(frozen=True)
class SnapshotPolicy:
    """A loaded snapshot; call it as ``policy(obs (B, D)) -> actions (B, A)`` (float32).

    Attributes:
      path: the checkpoint directory.
      env: the task, ``<domain>-<task>``; ``env_id`` is ``rwrl/<env>-v0``.
      env_kwargs: the challenge keyword arguments of the run's env.
      obs_size, action_size: D and A.
      checksum: :func:`snapshot_checksum` of ``path``.
    """

    path: Path
    env: str
    env_kwargs: dict[str, Any]
    obs_size: int
    action_size: int
    checksum: str
    _act: Any = dataclasses.field(repr=False, compare=False)

    @property
    def env_id(self) -> str:
        return env_id_of(self.env)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        obs = np.asarray(obs, np.float32)
        if obs.ndim != 2 or obs.shape[1] != self.obs_size:
            raise ValueError(f"obs has shape {obs.shape}, expected (B, {self.obs_size})")
        return self._act(obs)


def run_env_kwargs(run: dict[str, Any]) -> dict[str, Any]:
    """Return the make_vec keyword arguments of a run config dict (``RunConfig.env_make_kwargs``)."""
    kwargs = dict(run.get("env_kwargs") or {})
    if run.get("combined_challenge") is not None:
        kwargs["combined_challenge"] = run["combined_challenge"]
    if run.get("safety_coeff") is not None:
        kwargs["safety_spec"] = {"enable": True, "safety_coeff": run["safety_coeff"]}
    return kwargs


def _read_run_config(checkpoint: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    from rwrl.storage.checkpoint import CheckpointError, read_run_config  # loads JAX: when used
    try:
        data = read_run_config(checkpoint)
    except CheckpointError as err:
        raise PolicyError(str(err)) from err
    return data["run"], data.get("agent", {})


def _env_sizes(env: str, env_kwargs: dict[str, Any]) -> tuple[int, np.ndarray, np.ndarray]:
    import gymnasium

    import rwrl  # noqa: F401  (registers the ids)
    probe = gymnasium.make(env_id_of(env), **env_kwargs)
    try:
        space = probe.action_space
        return int(np.prod(probe.observation_space.shape)), np.asarray(space.low), np.asarray(space.high)
    finally:
        probe.close()


@functools.lru_cache(maxsize=8)
def _cached_agent(key: str) -> Any:
    """Build an agent once per (name, sizes, config): snapshots of one run share its compiled act."""
    from rwrl.agents import make_agent
    name, obs_size, action_size, config = json.loads(key)
    return make_agent(name, obs_size, action_size, **config)


def resolve_checkpoint(path: Path) -> Path:
    """Return the checkpoint directory of ``path``: itself, or an ``rwrl run`` directory's newest.

    Raises:
      PolicyError: naming ``path``, when it does not exist, is a run without a
        checkpoint, or is neither a run nor a checkpoint directory.
    """
    from rwrl.storage.checkpoint import list_checkpoints
    path = Path(path)
    if not path.exists():
        raise PolicyError(f"{path} does not exist")
    if (path / "checkpoints").is_dir() or (path / "config.json").is_file():
        found = list_checkpoints(path / "checkpoints")
        if not found:
            raise PolicyError(f"run {path} has no checkpoint under {path / 'checkpoints'} "
                              f"(was it run with checkpointing?)")
        return found[0]
    if path.is_dir() and (path / "state.npz").is_file():
        return path
    raise PolicyError(f"{path} is neither an rwrl run directory (config.json, checkpoints/) "
                      f"nor a checkpoint directory (state.npz)")


def restore_agent(path: Path, name: str, agent_config: dict[str, Any], obs_size: int,
                  action_size: int, acting_only: bool = False) -> tuple[Any, Any, int]:
    """Rebuild agent ``name`` of a run and read its state from checkpoint directory ``path``.

    Every reader of a run checkpoint (``load_policy``, distillation's teachers,
    the explain room's critic) rebuilds the agent this way, so they agree on
    what a checkpoint holds.

    Args:
      acting_only: the caller only acts (``agent.act``), so a policy-only
        snapshot (``rwrl.datasets.shipped_policies``: the state's acting leaves
        only) is accepted, its other leaves taken from ``agent.init``; without
        it such a snapshot is refused, so no critic or optimiser is ever read
        from an initialisation by mistake.

    Returns:
      (the agent, its training state, the checkpoint's env steps).

    Raises:
      PolicyError: naming the snapshot, when the state does not load as that agent.
    """
    import jax

    from rwrl.storage.checkpoint import CheckpointError, flatten_pytree, load_checkpoint, unflatten_like
    agent = _cached_agent(json.dumps([name, obs_size, action_size, agent_config], sort_keys=True))
    try:
        saved = load_checkpoint(Path(path))
        template = agent.init(jax.random.PRNGKey(0))
        arrays = saved.groups["state"]
        kept = saved.meta.get(POLICY_ONLY_META)
        if kept is not None:
            if not acting_only:
                raise PolicyError(f"snapshot {path} holds only the policy's leaves ({', '.join(kept)}: "
                                  "an exported behaviour snapshot); this needs a full run checkpoint")
            arrays = {**flatten_pytree(template), **arrays}
        state = unflatten_like(template, arrays)
    except (CheckpointError, KeyError) as err:
        raise PolicyError(f"snapshot {path}: cannot load it as its run's agent: {err}") from err
    return agent, state, int(saved.step)


def load_policy(path: Path, checksum: str | None = None) -> SnapshotPolicy:
    """Load checkpoint directory ``path`` of an ``rwrl run`` as a batched policy.

    Args:
      path: ``RUN/checkpoints/ckpt-<steps>``.
      checksum: the expected :func:`snapshot_checksum` (from a manifest); None: not checked.

    Raises:
      PolicyError: naming the snapshot, when it is missing, damaged, changed
        since ``checksum`` was taken, or not loadable as its run's agent.
    """
    import jax

    path = Path(path)
    actual = snapshot_checksum(path)
    if checksum is not None and actual != checksum:
        raise PolicyError(f"snapshot {path}: sha256 {actual[:12]}... differs from the "
                          f"manifest's {checksum[:12]}... (changed since it was listed)")
    run, agent_config = _read_run_config(path)
    if run.get("observation_history"):
        raise PolicyError(f"snapshot {path}: its run used observation_history="
                          f"{run['observation_history']}, which a dataset env does not provide")
    env_kwargs = run_env_kwargs(run)
    obs_size, low, high = _env_sizes(run["env"], env_kwargs)
    agent, state, _ = restore_agent(path, run["agent"], agent_config, obs_size, int(low.shape[0]),
                                    acting_only=True)
    key = jax.random.PRNGKey(0)  # deterministic acting ignores it

    def act(obs: np.ndarray) -> np.ndarray:
        unit = agent.act(state, obs, key, explore=False)  # in [-1, 1]
        return from_unit(unit, low, high).astype(np.float32)

    return SnapshotPolicy(path, run["env"], env_kwargs, obs_size, int(low.shape[0]), actual, act)


def ope_loader(entry: dict[str, Any], directory: Path) -> SnapshotPolicy:
    """Load one entry of a policies manifest for ``rwrl ope`` (its checksum checked)."""
    return load_policy(Path(directory) / entry["path"], entry.get("sha256"))


def random_policy(low: np.ndarray, high: np.ndarray, seed: int) -> BatchedPolicy:
    """Return a batched policy drawing actions uniformly in [low, high] from a seeded stream."""
    rng = np.random.default_rng(seed)
    low, high = np.asarray(low, np.float32), np.asarray(high, np.float32)

    def act(obs: np.ndarray) -> np.ndarray:
        return rng.uniform(low, high, size=(len(obs), low.shape[0])).astype(np.float32)

    return act


# --------------------------------------------------------------- evaluation


def make_vector_env(env_id: str, env_kwargs: dict[str, Any], num_envs: int) -> Any:
    """Return the rwrl vector env of ``env_id`` with ``num_envs`` envs."""
    import gymnasium

    import rwrl  # noqa: F401
    return gymnasium.make_vec(env_id, num_envs=num_envs, **env_kwargs)


def evaluate_policy(policy: BatchedPolicy, env_id: str, env_kwargs: dict[str, Any],
                    episodes: int, seed: int) -> np.ndarray:
    """Return the (episodes,) returns of ``policy``, all episodes in one vector env, no noise."""
    if episodes < 1:
        raise ValueError(f"episodes = {episodes!r} must be >= 1")
    env = make_vector_env(env_id, env_kwargs, episodes)
    try:
        return run_episodes(env, policy, derived_seeds(seed, "evaluation", 0, episodes)).returns()
    finally:
        env.close()


# ----------------------------------------------------------------- manifest


def select_snapshots(entries: list[dict[str, Any]],
                     fractions: tuple[float, ...] = DEFAULT_FRACTIONS) -> list[dict[str, Any]]:
    """Pick, per fraction f, the entry whose ``mean_return`` is nearest to f * the best one.

    Args:
      entries: checkpoint entries with ``mean_return`` and ``env_steps``.
      fractions: each in (0, 1].

    Returns:
      One entry per fraction (a copy, with ``fraction`` and ``target_return`` added).
    """
    if not entries:
        raise PolicyError("no evaluated checkpoint to select snapshots from")
    for f in fractions:
        if not 0.0 < f <= 1.0:
            raise ValueError(f"fraction {f!r} must be in (0, 1]")
    ordered = sorted(entries, key=lambda e: e["env_steps"])
    best = max(e["mean_return"] for e in ordered)
    picked = []
    for f in fractions:
        nearest = min(ordered, key=lambda e: abs(e["mean_return"] - f * best))  # earliest on ties
        picked.append({**nearest, "fraction": f, "target_return": f * best})
    return picked


def write_manifest(path: Path, manifest: dict[str, Any]) -> None:
    """Write ``manifest`` as JSON atomically (NaN refused: a return is always measured)."""
    text = json.dumps(manifest, indent=2, sort_keys=True, allow_nan=False)
    atomic_write_bytes(Path(path), (text + "\n").encode())


def read_manifest(path: Path) -> dict[str, Any]:
    """Read a policies manifest (``manifest.json``, or the directory holding it)."""
    path = Path(path)
    if path.is_dir():
        path = path / MANIFEST_FILE
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise PolicyError(f"cannot read policies manifest {path}: {err}") from err
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise PolicyError(f"{path}: not a policies manifest of format {MANIFEST_FORMAT}")
    manifest["_path"] = str(path)
    return manifest


def manifest_snapshot(manifest: dict[str, Any],
                      fraction: float = DEFAULT_BEHAVIOUR_FRACTION) -> tuple[Path, dict[str, Any]]:
    """Return (checkpoint path, entry) of the manifest's snapshot at ``fraction``."""
    snapshots = manifest.get("snapshots", [])
    for entry in snapshots:
        if math.isclose(entry["fraction"], fraction):
            return Path(manifest["_path"]).parent / entry["path"], entry
    listed = [e["fraction"] for e in snapshots]
    raise PolicyError(f"fraction = {fraction!r}: the manifest {manifest['_path']} has "
                      f"snapshots at {listed}")


__all__ = ["DEFAULT_BEHAVIOUR_FRACTION", "DEFAULT_FRACTIONS", "MANIFEST_FILE", "POLICY_ONLY_META",
           "PolicyError",
           "SnapshotPolicy", "evaluate_policy", "load_policy", "make_vector_env",
           "manifest_snapshot", "ope_loader", "random_policy", "read_manifest", "restore_agent",
           "select_snapshots", "snapshot_checksum", "write_manifest"]
