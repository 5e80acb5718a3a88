"""Train the behaviour policies of a task: ``rwrl policies train``.

One ordinary D4PG online run (``start_run``/``resume_run``) writes a
checkpoint every ``steps / checkpoints`` env steps and keeps all of them;
each checkpoint is then evaluated over ``episodes`` episodes on the batched
vector env (no exploration noise), and the manifest lists every checkpoint
(the off-policy evaluation set) and the behaviour snapshots among them
(``rwrl.datasets.behaviour_policies.select_snapshots``: nearest to 0.25, 0.5, 0.75, 1.0
of the best measured return). Layout of OUT::

    run/              the online run (config.json, metrics.jsonl, checkpoints/)
    evaluations.json  measured returns per checkpoint (name, checksum), kept across re-runs
    manifest.json     task, challenge, checkpoints and snapshots (see rwrl.datasets.behaviour_policies)

Re-running the same command continues: an unfinished run resumes from its
last checkpoint, a finished one is not trained again, and checkpoints already
evaluated (same checksum) are not evaluated again. Evaluation episodes are
seeded from the run seed and the checkpoint's step.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from rwrl.storage.atomic_files import atomic_write_bytes
from rwrl.storage.progress_reporter import ProgressReporter
from rwrl.datasets.behaviour_policies import (DEFAULT_FRACTIONS, MANIFEST_FILE, MANIFEST_FORMAT,
                                    evaluate_policy, load_policy, select_snapshots,
                                    snapshot_checksum, write_manifest)
from rwrl.storage.checkpoint import list_checkpoints
from rwrl.experiments.config import ConfigError, RunConfig, read_config
from rwrl.experiments.run import CONFIG_FILE, RunHooks, is_finished, resume_run, start_run

CHALLENGES = ("none", "easy")
EVALUATIONS_FILE = "evaluations.json"


def behaviour_run_config(task: str, challenge: str, steps: int, seed: int, checkpoints: int,
                         num_envs: int = 8, agent_config: dict[str, Any] | None = None,
                         env_kwargs: dict[str, Any] | None = None) -> RunConfig:
    """Return the RunConfig of the online D4PG run that makes the behaviour policies.

    ``checkpoints`` periodic checkpoints (plus the one at step 0 and the final
    one) are all kept; the run evaluates at the same interval.
    """
    if challenge not in CHALLENGES:
        raise ConfigError(f"challenge must be one of {CHALLENGES}, got {challenge!r}")
    if checkpoints < 1:
        raise ConfigError(f"checkpoints must be >= 1, got {checkpoints!r}")
    every = max(steps // checkpoints, 1)
    return RunConfig(agent="d4pg", env=task, steps=steps, seed=seed, num_envs=num_envs,
                     combined_challenge=None if challenge == "none" else challenge,
                     checkpoint_every=every, eval_every=every, keep_checkpoints=1_000_000,
                     agent_config=dict(agent_config or {}), env_kwargs=dict(env_kwargs or {}),
                     report=False)


def _train(config: RunConfig, run_dir: Path, progress: bool) -> None:
    hooks = RunHooks(progress=progress)
    if not (run_dir / CONFIG_FILE).exists():
        start_run(config, run_dir, hooks)
        return
    existing, _ = read_config(run_dir / CONFIG_FILE)
    new, old = (json.loads(json.dumps(c.to_dict())) for c in (config, existing))
    changed = sorted(k for k in new if new[k] != old.get(k))
    if changed:
        raise ConfigError(f"{run_dir} holds a run with other settings ({', '.join(changed)}); "
                          "pick another --out")
    if not is_finished(run_dir):
        resume_run(run_dir, hooks=hooks)


def _read_evaluations(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}  # none yet, or a damaged cache: measure again


def evaluate_checkpoints(out: Path, seed: int, episodes: int,
                         progress: bool = True) -> list[dict[str, Any]]:
    """Evaluate every checkpoint of ``out/run`` not yet in ``evaluations.json``; return entries."""
    cache_path = out / EVALUATIONS_FILE
    cache = _read_evaluations(cache_path)
    paths = sorted(list_checkpoints(out / "run" / "checkpoints"))
    reporter = ProgressReporter(len(paths), desc="evaluate checkpoints", unit="checkpoint",
                                enabled=progress)
    entries = []
    for i, path in enumerate(paths):
        checksum = snapshot_checksum(path)
        entry = cache.get(path.name)
        if entry is None or entry.get("sha256") != checksum or entry.get("episodes") != episodes:
            policy = load_policy(path, checksum)
            step = int(path.name.split("-")[-1])
            returns = evaluate_policy(policy, policy.env_id, policy.env_kwargs, episodes,
                                      seed=int(np.random.SeedSequence([seed, step]).generate_state(1)[0]))
            entry = {"path": str(path.relative_to(out)), "env_steps": step, "sha256": checksum,
                     "episodes": episodes, "mean_return": float(returns.mean()),
                     "std_return": float(returns.std()), "returns": returns.tolist()}
            cache[path.name] = entry
            atomic_write_bytes(cache_path, (json.dumps(cache, indent=1, sort_keys=True) + "\n").encode())
        entries.append(entry)
        reporter.update(i + 1)
    reporter.close()
    return entries


def train_behaviour_policies(task: str, challenge: str, out: Path, steps: int = 500_000,
                             seed: int = 0, episodes: int = 10, checkpoints: int = 20,
                             fractions: tuple[float, ...] = DEFAULT_FRACTIONS, num_envs: int = 8,
                             agent_config: dict[str, Any] | None = None,
                             env_kwargs: dict[str, Any] | None = None,
                             progress: bool = True) -> dict[str, Any]:
    """Train (or continue) the online run, evaluate its checkpoints, write the manifest.

    Args:
      task: ``<domain>-<task>``, e.g. ``cartpole-swingup``.
      challenge: "none" or "easy" (the combined challenge).
      out: the policies directory (layout in the module docstring).
      steps: env steps of the online run.
      seed: the run's seed (and the evaluation episodes').
      episodes: evaluation episodes per checkpoint.
      checkpoints: periodic checkpoints over the run.
      fractions: of the best measured return, one behaviour snapshot each.
      num_envs, agent_config, env_kwargs: as ``RunConfig`` (tests use tiny ones).

    Returns:
      The manifest (also written to ``out/manifest.json``).
    """
    out = Path(out)
    config = behaviour_run_config(task, challenge, steps, seed, checkpoints, num_envs,
                                  agent_config, env_kwargs)
    _train(config, out / "run", progress)
    entries = evaluate_checkpoints(out, seed, episodes, progress)
    snapshots = select_snapshots(entries, fractions)
    manifest = {"format": MANIFEST_FORMAT, "task": task, "challenge": challenge,
                "env_id": config.env_id, "env_kwargs": config.env_make_kwargs(), "seed": seed,
                "steps": steps, "episodes": episodes, "fractions": list(fractions),
                "best_return": max(e["mean_return"] for e in entries),
                "checkpoints": [{k: v for k, v in e.items() if k != "returns"} for e in entries],
                "snapshots": [{k: v for k, v in e.items() if k != "returns"} for e in snapshots]}
    write_manifest(out / MANIFEST_FILE, manifest)
    return manifest


__all__ = ["CHALLENGES", "behaviour_run_config", "evaluate_checkpoints", "train_behaviour_policies"]
