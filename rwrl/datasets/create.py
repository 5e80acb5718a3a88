"""Create a dataset: ``rwrl dataset create TASK --challenge C --size S``.

Generation: the behaviour snapshot (``rwrl.datasets.behaviour_policies``; the manifest's
0.75 snapshot by default) acts on the batched vector env of the task and
challenge, ``num_envs`` episodes at a time (a chunk), the whole batch in one
policy call per step; behaviour noise is Gaussian, ``noise`` times the action
half-range (0.2 by default), clipped to the bounds. Episode e is reset with
seed ``derived_seeds(seed, "dataset-episodes", e)`` (recorded in Minari), the
noise of chunk c comes from ``derived_seeds(seed, "behaviour-noise", c)``: so
the same command and seed writes the same content, resumed or not, and every
episode replays exactly in ``dataset.recover_environment()``.

Reference scores (for ``minari.get_normalized_score``): ``ref_min_score``
is the mean return of a uniform random policy over ``ref_episodes`` episodes;
``ref_max_score`` the best snapshot's mean return, from the manifest when it
was measured on the same env, else measured here over ``ref_episodes``.

Resumable and atomic: chunks are written (each atomically) into the
dataset's hidden staging directory with a ``plan.json`` of the command;
running the same command again keeps the chunks present and makes the rest,
a different command over the same id starts the staging over. The Minari
dataset is assembled in the staging directory and renamed into place at the
end (``rwrl.datasets.store``), so a killed generation never loads. Until
then the chunks and the assembled dataset both sit in staging: about twice
the dataset's size on disk (walker 5 %: 41 MB of HDF5).
"""

from __future__ import annotations

import io
import json
import shlex
import shutil
from pathlib import Path
from typing import Any, Callable

import numpy as np

from rwrl.storage.atomic_files import atomic_write_bytes
from rwrl.storage.progress_reporter import ProgressReporter
from rwrl.datasets import naming, store
from rwrl.datasets.behaviour_policies import (DEFAULT_BEHAVIOUR_FRACTION, PolicyError, SnapshotPolicy,
                                    evaluate_policy, load_policy, make_vector_env,
                                    manifest_snapshot, read_manifest, random_policy)
from rwrl.datasets.episodes import EpisodeArrays, derived_seeds, run_episodes
from rwrl.datasets.shipped_policies import shipped_manifest_path, shipped_tasks

PLAN_FILE = "plan.json"
REFS_FILE = "refs.json"
DEFAULT_NOISE = 0.2
DEFAULT_NUM_ENVS = 50
DEFAULT_REF_EPISODES = 20


def default_policy_path(task: str, challenge: str, policies: Path = Path("policies")) -> Path:
    """Return the manifest a dataset uses when no policy is named.

    ``<policies>/<task>-<challenge>/manifest.json`` (``policies/``: where ``rwrl
    policies train`` puts a task's manifest by convention) when it exists, else
    the snapshot shipped with rwrl (``rwrl.datasets.shipped_policies``).

    Raises:
      PolicyError: neither exists; the message names both and the command that trains one.
    """
    local = Path(policies) / f"{task}-{challenge}" / "manifest.json"
    if local.exists():
        return local
    shipped = shipped_manifest_path(task, challenge)
    if shipped.exists():
        return shipped
    raise PolicyError(f"no behaviour policy for {task} ({challenge}): neither {local} nor a shipped one "
                      f"(shipped: {', '.join(shipped_tasks()) or 'none'}); train one with "
                      f"`rwrl policies train {task} --challenge {challenge} --out {local.parent}`")


def resolve_policy(path: Path, fraction: float) -> tuple[SnapshotPolicy, dict[str, Any] | None]:
    """Load the behaviour policy from a manifest (its ``fraction`` snapshot) or a checkpoint."""
    path = Path(path)
    if not (path / "state.npz").exists():  # not a checkpoint: a manifest or its directory
        manifest = read_manifest(path)
        snapshot, entry = manifest_snapshot(manifest, fraction)
        return load_policy(snapshot, entry["sha256"]), manifest
    return load_policy(path), None


def generating_command(task: str, challenge: str, size: int, policy: Path, seed: int,
                       noise: float, num_envs: int, fraction: float) -> str:
    """Return the ``rwrl dataset create`` command line that makes this dataset."""
    return shlex.join(["rwrl", "dataset", "create", task, "--challenge", challenge,
                       "--size", str(size), "--policy", str(policy), "--seed", str(seed),
                       "--noise", repr(noise), "--num-envs", str(num_envs),
                       "--fraction", repr(fraction)])


def _open_staging(staging: Path, plan: dict[str, Any]) -> None:
    """Keep the staging directory of the same plan; start over for another one."""
    plan_path = staging / PLAN_FILE
    try:
        same = json.loads(plan_path.read_text()) == plan
    except (OSError, ValueError):
        same = False
    if not same:
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        atomic_write_bytes(plan_path, (json.dumps(plan, indent=1, sort_keys=True) + "\n").encode())


def _chunk_path(staging: Path, index: int) -> Path:
    return staging / f"chunk-{index:05d}.npz"


def _read_chunk(path: Path) -> EpisodeArrays | None:
    """Return a chunk written before, or None (absent, or unreadable: made again)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return EpisodeArrays.from_dict(dict(data))
    except (OSError, ValueError, KeyError, EOFError):
        return None


def _write_chunk(path: Path, arrays: EpisodeArrays) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays.as_dict())
    atomic_write_bytes(path, buffer.getvalue())


def _generate_chunks(staging: Path, plan: dict[str, Any], policy: SnapshotPolicy,
                     progress: bool, on_chunk: Callable[[int], None] | None) -> int:
    """Make every missing chunk; return how many chunks the dataset has."""
    episodes, per_chunk = plan["episodes"], plan["num_envs"]
    count = -(-episodes // per_chunk)
    present = [c for c in range(count) if _read_chunk(_chunk_path(staging, c)) is not None]
    reporter = ProgressReporter(episodes, min(len(present) * per_chunk, episodes),
                                desc=f"generate {plan['dataset_id']}", unit="episode",
                                enabled=progress)
    env = None
    for c in range(count):
        if c in present:
            continue
        n = min(per_chunk, episodes - c * per_chunk)
        if env is None or env.num_envs != n:
            env = make_vector_env(plan["env_id"], plan["env_kwargs"], n)
        rng = np.random.default_rng(derived_seeds(plan["seed"], "behaviour-noise", c, 1)[0])
        seeds = derived_seeds(plan["seed"], "dataset-episodes", c * per_chunk, n)
        _write_chunk(_chunk_path(staging, c), run_episodes(env, policy, seeds, plan["noise"], rng))
        reporter.update(min((c + 1) * per_chunk, episodes))
        if on_chunk is not None:
            on_chunk(c)
    reporter.close()
    return count


def _reference_scores(staging: Path, plan: dict[str, Any], policy_path: Path,
                      manifest: dict[str, Any] | None) -> dict[str, float]:
    """Return (and keep in staging) ref_min_score and ref_max_score; see the module docstring."""
    try:
        return json.loads((staging / REFS_FILE).read_text())
    except (OSError, ValueError):
        pass
    env_id, kwargs, n, seed = plan["env_id"], plan["env_kwargs"], plan["ref_episodes"], plan["seed"]
    probe = make_vector_env(env_id, kwargs, 1)
    space = probe.single_action_space
    probe.close()
    random = random_policy(space.low, space.high, derived_seeds(seed, "random-policy", 0, 1)[0])
    refs = {"ref_min_score": float(evaluate_policy(random, env_id, kwargs, n, seed).mean())}
    if manifest is not None and manifest["env_id"] == env_id and manifest["env_kwargs"] == kwargs:
        refs["ref_max_score"] = float(manifest["best_return"])
        refs["rwrl_ref_max_source"] = (f"the manifest's best checkpoint, {manifest['episodes']} "
                                       "episodes")
    else:
        refs["rwrl_ref_max_source"] = f"the best checkpoint measured here, {n} episodes"
        best = policy_path
        if manifest is not None:
            top = max(manifest["checkpoints"], key=lambda e: e["mean_return"])
            best = Path(manifest["_path"]).parent / top["path"]
        refs["ref_max_score"] = float(evaluate_policy(load_policy(best), env_id, kwargs, n, seed).mean())
    atomic_write_bytes(staging / REFS_FILE, (json.dumps(refs) + "\n").encode())
    return refs


def create_dataset(task: str, challenge: str, size: int, policy: Path | None = None,
                   seed: int = 0, noise: float = DEFAULT_NOISE,
                   num_envs: int = DEFAULT_NUM_ENVS,
                   fraction: float = DEFAULT_BEHAVIOUR_FRACTION,
                   ref_episodes: int = DEFAULT_REF_EPISODES, progress: bool = True,
                   on_chunk: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Generate (or continue, or find complete) a dataset; return its summary.

    Args:
      task, challenge, size: see ``rwrl.datasets.naming``.
      policy: a policies manifest (or its directory), or one checkpoint directory;
        default: ``default_policy_path`` (the user's own, else the shipped snapshot).
      seed: the dataset's seed (episodes, noise, reference episodes).
      noise: behaviour noise, in action half-ranges.
      num_envs: episodes generated side by side (part of the command: the
        content depends on it).
      fraction: which snapshot of a manifest acts.
      ref_episodes: episodes of each reference score measured here.
      on_chunk: called with each chunk's index after it is written (tests stop runs from it).

    Raises:
      ValueError: an argument out of range (named); PolicyError: the policy is
        unusable; FileExistsError: the id holds a dataset of another command.
    """
    dataset_id = naming.dataset_id(task, challenge, size)
    if noise < 0 or num_envs < 1 or ref_episodes < 1:
        raise ValueError(f"noise = {noise!r} must be >= 0, num_envs = {num_envs!r} and "
                         f"ref_episodes = {ref_episodes!r} >= 1")
    policy_path = Path(policy) if policy is not None else default_policy_path(task, challenge)
    command = generating_command(task, challenge, size, policy_path, seed, noise, num_envs, fraction)
    final = store.dataset_dir(dataset_id)
    if (final / "data").exists():
        summary = store.dataset_summary(dataset_id)
        if summary.get("rwrl_command") != command:
            raise FileExistsError(f"{dataset_id} exists, made by `{summary.get('rwrl_command')}`; "
                                  f"delete it first (`minari delete {dataset_id}`)")
        shutil.rmtree(store.staging_dir(dataset_id), ignore_errors=True)  # killed after publishing
        return summary
    behaviour, manifest = resolve_policy(policy_path, fraction)
    plan = {"dataset_id": dataset_id, "task": task, "challenge": challenge, "size": size,
            "episodes": naming.episode_count(task, size), "env_id": naming.env_id(task),
            "env_kwargs": naming.challenge_kwargs(challenge), "seed": seed, "noise": noise,
            "num_envs": num_envs, "ref_episodes": ref_episodes, "command": command,
            "policy_sha256": behaviour.checksum}
    env = make_vector_env(plan["env_id"], plan["env_kwargs"], 1)
    obs_size = int(np.prod(env.single_observation_space.shape))
    if behaviour.env != task or behaviour.obs_size != obs_size:
        raise PolicyError(f"policy {behaviour.path} acts in {behaviour.env} on {behaviour.obs_size} "
                          f"observations; the dataset's env {task} ({challenge}) has {obs_size}")
    staging = store.staging_dir(dataset_id)
    _open_staging(staging, plan)
    count = _generate_chunks(staging, plan, behaviour, progress, on_chunk)
    refs = _reference_scores(staging, plan, policy_path, manifest)
    chunks = (_read_chunk(_chunk_path(staging, c)) for c in range(count))
    store.write_dataset(staging / "dataset", dataset_id,
                        store.env_spec(plan["env_id"], plan["env_kwargs"]),
                        store.float32_box(env.single_observation_space), env.single_action_space,
                        chunks, _metadata(plan, behaviour, refs))
    store.publish(staging / "dataset", dataset_id)
    shutil.rmtree(staging, ignore_errors=True)
    return store.dataset_summary(dataset_id)


def _metadata(plan: dict[str, Any], behaviour: SnapshotPolicy, refs: dict[str, float]) -> dict[str, Any]:
    noise = (f"Gaussian, std {plan['noise']} x the action half-range, added to the snapshot's "
             "deterministic action and clipped to the action bounds")
    return {
        "algorithm_name": "D4PG snapshot + Gaussian behaviour noise",
        "author": {"rwrl"},
        "description": (f"{plan['task']} ({plan['challenge']} challenge), {plan['size']} % of the "
                        f"published {naming.FULL_EPISODES[plan['task']]} episodes, regenerated by "
                        "rwrl from a partially trained D4PG snapshot."),
        "num_episodes_average_score": plan["ref_episodes"], **refs,
        "rwrl_command": plan["command"], "rwrl_seed": plan["seed"],
        "rwrl_behaviour_noise": noise, "rwrl_noise_std": plan["noise"],
        "rwrl_num_envs": plan["num_envs"], "rwrl_env_kwargs": plan["env_kwargs"],
        "rwrl_policy": {"path": str(behaviour.path), "sha256": behaviour.checksum},
    }


__all__ = ["DEFAULT_NOISE", "DEFAULT_NUM_ENVS", "create_dataset", "default_policy_path",
           "generating_command", "resolve_policy"]
