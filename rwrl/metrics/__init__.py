"""Per-episode statistics of rwrl runs and the evaluators of the real-world RL suite.

Record: wrap an env in :class:`EpisodeRecorder` (or a vector env in
:class:`VectorEpisodeRecorder`); each finished episode becomes one row of a
JSON-lines file (schema: :mod:`rwrl.metrics.schema`). Evaluate: the pure
functions of :mod:`rwrl.metrics.evaluators`, or :func:`evaluate_run` for
every evaluator of a run's file(s) at once; the continual-learning metrics of
runs with regimes (forgetting, forward transfer) are in
:mod:`rwrl.metrics.continual`. Read rows back with
:func:`read_rows` (dicts) or :func:`read_episodes` (a DataFrame).

Importing this package does not import pandas or scipy: the functions that
need them import them.
"""

from rwrl.metrics.accumulator import EpisodeAccumulator
from rwrl.metrics.episode_file import EpisodeFile, export_parquet, read_episodes, read_rows
from rwrl.metrics.evaluators import (
    DEFAULT_CONFIDENCE,
    DEFAULT_WINDOW,
    RollingReturns,
    absolute_regret,
    across_seeds,
    convergence_episode,
    deadline_miss_rate,
    divergence_count,
    episode_violations,
    final_return,
    mean_violation_rate,
    multiobjective_table,
    multiobjective_totals,
    normalized_instability,
    normalized_regret,
    per_step_violation_rate,
    return_evaluators,
    rolling_returns,
    safety_evaluator,
    safety_var_stats,
    safety_var_table,
    violation_totals,
)
from rwrl.metrics.recorder import EpisodeRecorder, VectorEpisodeRecorder
from rwrl.metrics.summary import evaluate_episodes, evaluate_run, evaluate_seeds

__all__ = [
    "DEFAULT_CONFIDENCE",
    "DEFAULT_WINDOW",
    "EpisodeAccumulator",
    "EpisodeFile",
    "EpisodeRecorder",
    "RollingReturns",
    "VectorEpisodeRecorder",
    "absolute_regret",
    "across_seeds",
    "convergence_episode",
    "deadline_miss_rate",
    "divergence_count",
    "episode_violations",
    "evaluate_episodes",
    "evaluate_run",
    "evaluate_seeds",
    "export_parquet",
    "final_return",
    "mean_violation_rate",
    "multiobjective_table",
    "multiobjective_totals",
    "normalized_instability",
    "normalized_regret",
    "per_step_violation_rate",
    "read_episodes",
    "read_rows",
    "return_evaluators",
    "rolling_returns",
    "safety_evaluator",
    "safety_var_stats",
    "safety_var_table",
    "violation_totals",
]
