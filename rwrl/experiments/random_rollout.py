"""A random-policy rollout of every task: returns, constraint violations, speed."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import gymnasium
import numpy as np

from rwrl.storage.atomic_files import atomic_write_bytes
from rwrl.storage.progress_reporter import ProgressReporter
from rwrl.domains import available_tasks
from rwrl.domains.names import env_id


@dataclasses.dataclass
class RolloutResult:
    """One task's rollout: per-episode mean return, violations per constraint, speed."""

    env_id: str
    num_envs: int
    episode_return_mean: float
    episode_return_std: float
    violations: dict[str, float]  # mean violating steps per episode, per constraint
    steps_per_second: float


def rollout_task(domain: str, task: str, num_envs: int = 16, seed: int = 0,
                 time_limit: int | None = None, **challenges) -> RolloutResult:
    """Run one episode per env of a uniform random policy on a vector env."""
    name = env_id(domain, task)
    env = gymnasium.make_vec(name, num_envs=num_envs, time_limit=time_limit, **challenges)
    env.reset(seed=seed)
    env.action_space.seed(seed)
    names = env.unwrapped.constraint_names
    returns = np.zeros(num_envs)
    violations = np.zeros((num_envs, len(names)))
    steps = env.unwrapped.time_limit
    start = time.perf_counter()
    for _ in range(steps):
        _, reward, _, _, info = env.step(env.action_space.sample())
        returns += reward
        violations += ~info["constraints"]
    elapsed = time.perf_counter() - start
    env.close()
    return RolloutResult(name, num_envs, float(returns.mean()), float(returns.std()),
                         dict(zip(names, violations.mean(axis=0).tolist())),
                         steps * num_envs / elapsed)


def format_table(result: RolloutResult) -> str:
    """Return a small text table of one task's result."""
    lines = [f"{result.env_id}  ({result.num_envs} envs, {result.steps_per_second:,.0f} steps/s)",
             f"  episode return        {result.episode_return_mean:8.1f} ± {result.episode_return_std:.1f}"]
    for name, count in result.violations.items():
        lines.append(f"  violations/{name:<20s}{count:8.1f} steps per episode")
    return "\n".join(lines)


def rollout_all(out: Path, num_envs: int = 16, seed: int = 0, tasks=None,
                time_limit: int | None = None) -> list[RolloutResult]:
    """Roll out every task, print a table per task, write ``out/rollout.json``."""
    results = []
    tasks = tasks or available_tasks()
    progress = ProgressReporter(len(tasks), desc="tasks", unit="task")
    for domain, task in tasks:
        result = rollout_task(domain, task, num_envs, seed, time_limit)
        progress.write(format_table(result))
        results.append(result)
        progress.update(len(results))
    progress.close()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    payload = json.dumps([dataclasses.asdict(r) for r in results], indent=2)
    atomic_write_bytes(out / "rollout.json", payload.encode())
    return results
