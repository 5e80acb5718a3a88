"""Every evaluator of a run, from its episode file(s), as one flat dict.

Keys (present when the rows carry the data)::

    episodes, steps                      counts
    return/final, return/convergence_episode, return/absolute_regret,
    return/normalized_regret, return/normalized_instability
    violations/<constraint>              safety evaluator: sum over episodes
    violation_rate/<constraint>          mean over episodes of violations / step
    multiobj/reward, multiobj/safety     mean over episodes of the per-episode sums
    deadline_miss_rate                   fraction of agent steps that missed their deadline
    divergences                          episodes ended by a diverged simulation (always
                                         present: 0 when the rows do not report it)

Flat keys make :func:`evaluate_seeds` a per-key mean and std.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from rwrl.metrics import evaluators, schema
from rwrl.metrics.episode_file import PathLike, read_episodes

if TYPE_CHECKING:
    import pandas as pd


def evaluate_episodes(episodes: "pd.DataFrame", window: int = evaluators.DEFAULT_WINDOW) -> dict[str, float]:
    """Summarise per-episode rows (ordered by episode) with every evaluator that applies."""
    returns = evaluators.require_column(episodes, schema.RETURN).to_numpy()
    summary: dict[str, float] = {
        "episodes": len(episodes),
        "steps": int(evaluators.require_column(episodes, schema.LENGTH).sum()),
    }
    for name, value in evaluators.return_evaluators(returns, window).items():
        summary["return/" + name] = value
    if any(str(c).startswith(schema.VIOLATIONS) for c in episodes.columns):
        for name, total in evaluators.safety_evaluator(episodes).items():
            summary[schema.VIOLATIONS + name] = total
        for name, rate in evaluators.mean_violation_rate(episodes).items():
            summary[schema.VIOLATION_RATE + name] = float(rate)
    if schema.MULTIOBJ_REWARD in episodes.columns:
        for name, mean in evaluators.multiobjective_table(episodes).mean(axis=0).items():
            summary[schema.MULTIOBJ + name] = float(mean)
    if schema.DEADLINE_MISSES in episodes.columns:
        summary["deadline_miss_rate"] = evaluators.deadline_miss_rate(episodes)
    summary["divergences"] = evaluators.divergence_count(episodes)
    return summary


def evaluate_run(
    path_or_paths: PathLike | Sequence[PathLike],
    window: int = evaluators.DEFAULT_WINDOW,
    *,
    phase: str | None = None,
) -> dict[str, float]:
    """Summarise one run's episode file(s) (concatenated in the order given).

    Args:
      path_or_paths: JSON-lines (or Parquet) episode file(s) of one run.
      window: W, episodes per rolling window of the return evaluators.
      phase: keep only rows whose ``phase`` field equals this (e.g. "train").

    Returns:
      the flat dict described in the module docstring.
    """
    episodes = read_episodes(path_or_paths)
    if phase is not None:
        episodes = episodes[evaluators.require_column(episodes, "phase") == phase]
        if len(episodes) == 0:
            raise ValueError(f"phase: no episodes with phase == {phase!r}")
    if len(episodes) == 0:
        raise ValueError(f"path_or_paths: no episodes in {path_or_paths!r} (empty data)")
    return evaluate_episodes(episodes.reset_index(drop=True), window)


def evaluate_seeds(
    runs: Sequence[PathLike | Sequence[PathLike]],
    window: int = evaluators.DEFAULT_WINDOW,
    *,
    phase: str | None = None,
) -> dict[str, dict[str, float]]:
    """Evaluate each seed's run and return, per key, the mean, std and count across seeds."""
    if len(runs) == 0:
        raise ValueError("runs: no seeds (empty data)")
    return evaluators.across_seeds([evaluate_run(run, window, phase=phase) for run in runs])
