"""The evaluators of the real-world RL challenge suite, as pure functions.

Defined in Dulac-Arnold et al., "An empirical investigation of the challenges
of real-world reinforcement learning" (2020) (the safety evaluator is its
function 3) and in the published suite's ``realworldrl_suite/utils/
evaluators.py``; summarised in RWRL_REFERENCE.md, "Evaluators".

Shape convention: E episodes, T time steps, K constraints. Per-step inputs are
numpy arrays with time on axis 0 (or episodes, then time); per-episode inputs
are pandas DataFrames (pandas and scipy are imported by the functions that
need them, so importing this module stays light) with one row per finished episode in the schema of
:mod:`rwrl.metrics.schema` (what :class:`rwrl.metrics.EpisodeRecorder`
writes), or 1-D arrays of per-episode returns ordered by episode.

Rolling windows (returns): with n episodes and window W,

* n >= W: the n - W + 1 full windows [i, i + W), i = 0 .. n - W; a window
  is identified with its first episode i (as the published suite does);
* n < W: a single window holding all n episodes (the window shrinks to n
  rather than being padded), so short runs still get every evaluator.

Each window's 95 % interval is the Student-t interval mean ± t_{(1+p)/2, m-1}
· s / sqrt(m), s the sample standard deviation (ddof = 1) of its m episodes.
When the interval cannot be estimated (m = 1) or has no width (s = 0), it
collapses to the mean (the published suite returns NaN there, and its
convergence test then silently falls back to episode 1).
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np

from rwrl.metrics import schema

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_WINDOW = 101  # episodes per rolling window, as published
DEFAULT_CONFIDENCE = 0.95  # two-sided confidence of the window interval


# ----------------------------------------------------------------- validation


def _require_episodes(episodes: pd.DataFrame, field: str) -> None:
    if len(episodes) == 0:
        raise ValueError(f"{field}: no episodes (empty data)")


def require_column(episodes: pd.DataFrame, column: str) -> pd.Series:
    """Return ``episodes[column]``; ValueError naming the column if absent or no rows."""
    if column not in episodes.columns:
        raise ValueError(
            f"missing column {column!r}; columns present: {sorted(map(str, episodes.columns))}"
        )
    _require_episodes(episodes, column)
    return episodes[column]


def _prefixed(episodes: pd.DataFrame, prefix: str) -> pd.DataFrame:
    """Return the ``prefix<name>`` columns renamed to ``<name>``; raise if none."""
    columns = [c for c in episodes.columns if str(c).startswith(prefix)]
    if not columns:
        raise ValueError(f"missing column {prefix + '<name>'!r}: no column starts with {prefix!r}")
    _require_episodes(episodes, prefix + "<name>")
    return episodes[columns].rename(columns=lambda c: c[len(prefix):])


def _check_window(window: int) -> int:
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 1:
        raise ValueError(f"window must be an integer >= 1 (episodes), got {window!r}")
    return int(window)


def _check_returns(returns: np.ndarray | Sequence[float]) -> np.ndarray:
    values = np.asarray(returns, dtype=np.float64)
    if values.ndim != 1:
        raise ValueError(f"returns must be 1-D (E,), got shape {values.shape}")
    if values.size == 0:
        raise ValueError("returns: no episodes (empty data)")
    if not np.all(np.isfinite(values)):
        raise ValueError("returns must be finite; found NaN or inf")
    return values


# ---------------------------------------------------------------- safety


def episode_violations(satisfied: np.ndarray) -> np.ndarray:
    """Count the violations of each constraint in one episode.

    Args:
      satisfied: (T, K) bool, True where constraint k held at step t.

    Returns:
      (K,) int64, sum over t of (not satisfied).
    """
    flags = np.asarray(satisfied, dtype=bool)
    if flags.ndim != 2:
        raise ValueError(f"satisfied must be (T, K), got shape {flags.shape}")
    return np.sum(~flags, axis=0, dtype=np.int64)


def per_step_violation_rate(satisfied: np.ndarray) -> np.ndarray:
    """Mean violation of each constraint at each time step, across episodes.

    The published per-time-step curve; needs per-step flags of equal-length
    episodes, which the per-episode rows do not keep.

    Args:
      satisfied: (E, T, K) bool.

    Returns:
      (T, K) float64 in [0, 1], fraction of episodes violating k at step t.
    """
    flags = np.asarray(satisfied, dtype=bool)
    if flags.ndim != 3 or flags.shape[0] == 0:
        raise ValueError(f"satisfied must be (E, T, K) with E >= 1, got shape {flags.shape}")
    return np.mean(~flags, axis=0)


def violation_totals(episodes: pd.DataFrame) -> pd.DataFrame:
    """Return the (E, K) table of violations per episode, columns = constraint names."""
    return _prefixed(episodes, schema.VIOLATIONS)


def mean_violation_rate(episodes: pd.DataFrame) -> pd.Series:
    """Return, per constraint, the mean over episodes of violations per step.

    Each episode weighs the same whatever its length (the rate of an episode
    is its violations / length, column ``violation_rate/<name>``).
    """
    return _prefixed(episodes, schema.VIOLATION_RATE).mean(axis=0)


def safety_evaluator(episodes: pd.DataFrame) -> dict[str, int]:
    """Return the safety evaluator: per-constraint violations summed over all episodes (eq. 3)."""
    totals = violation_totals(episodes).sum(axis=0)
    return {name: int(total) for name, total in totals.items()}


# -------------------------------------------------- safety variables, multiobj


def safety_var_stats(values: np.ndarray) -> dict[str, np.ndarray]:
    """Summarise one safety variable over an episode.

    Args:
      values: (T, ...) the variable at each step (units of the variable).

    Returns:
      ``mean``, ``std`` (population, ddof = 0, as published), ``min``, ``max``,
      each of the per-step shape (...).
    """
    x = np.asarray(values, dtype=np.float64)
    if x.ndim == 0 or x.shape[0] == 0:
        raise ValueError(f"values must be (T, ...) with T >= 1, got shape {x.shape}")
    return {"mean": x.mean(0), "std": x.std(0), "min": x.min(0), "max": x.max(0)}


def safety_var_table(episodes: pd.DataFrame) -> pd.DataFrame:
    """Return per-episode safety-variable stats with columns (variable, stat).

    ``variable`` is ``<var>`` or ``<var>/<j>`` for component j of a vector.
    """
    table = _prefixed(episodes, schema.SAFETY)
    import pandas as pd
    table.columns = pd.MultiIndex.from_tuples([tuple(c.rsplit("/", 1)) for c in table.columns])
    return table


def multiobjective_totals(values: np.ndarray) -> np.ndarray:
    """Sum the objectives [r, s] of one episode: (T, 2) -> (2,)."""
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != 2:
        raise ValueError(f"multiobj values must be (T, 2), got shape {x.shape}")
    return x.sum(axis=0)


def multiobjective_table(episodes: pd.DataFrame) -> pd.DataFrame:
    """Return the (E, 2) per-episode sums with columns ``reward`` and ``safety``."""
    reward = require_column(episodes, schema.MULTIOBJ_REWARD)
    safety = require_column(episodes, schema.MULTIOBJ_SAFETY)
    import pandas as pd
    return pd.DataFrame({"reward": reward, "safety": safety})


# ---------------------------------------------------------------- divergence


def divergence_count(episodes: "pd.DataFrame") -> int:
    """Return the number of episodes that a diverged simulation ended.

    Rows without the ``diverged`` column (envs that do not report
    divergence, older files) count as not diverged.
    """
    _require_episodes(episodes, schema.DIVERGED)
    if schema.DIVERGED not in episodes.columns:
        return 0
    return int(episodes[schema.DIVERGED].fillna(0).astype(bool).sum())


# ---------------------------------------------------------------- real time


def deadline_miss_rate(episodes: pd.DataFrame) -> float:
    """Return the fraction of agent steps whose action missed its deadline, in [0, 1].

    Sum of ``deadline_misses`` over sum of ``length`` (the control periods a
    late action cost are in ``missed_periods``)."""
    misses = require_column(episodes, schema.DEADLINE_MISSES)
    steps = require_column(episodes, schema.LENGTH).sum()
    if steps <= 0:
        raise ValueError(f"length: total steps must be > 0, got {steps}")
    return float(misses.sum() / steps)


# ------------------------------------------------------------------ returns


@dataclasses.dataclass(frozen=True)
class RollingReturns:
    """Rolling-window means of returns with their Student-t intervals.

    Attributes:
      start: (M,) int, first episode of each window.
      size: episodes per window (W, or n when n < W).
      mean, lower, upper: (M,) float, window mean and interval bounds (return units).
    """

    start: np.ndarray
    size: int
    mean: np.ndarray
    lower: np.ndarray
    upper: np.ndarray


def rolling_returns(
    returns: np.ndarray | Sequence[float],
    window: int = DEFAULT_WINDOW,
    confidence: float = DEFAULT_CONFIDENCE,
) -> RollingReturns:
    """Smooth per-episode returns over rolling windows (see the module docstring).

    Args:
      returns: (E,) per-episode returns, ordered by episode.
      window: W, episodes per window, >= 1.
      confidence: two-sided level of the interval, in (0, 1).
    """
    values = _check_returns(returns)
    size = min(_check_window(window), values.size)
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    windows = np.lib.stride_tricks.sliding_window_view(values, size)  # (M, size)
    mean = windows.mean(axis=1)
    if size == 1:
        half = np.zeros_like(mean)  # one episode: no spread to estimate
    else:
        import scipy.stats
        sem = windows.std(axis=1, ddof=1) / math.sqrt(size)
        half = scipy.stats.t.ppf(0.5 + confidence / 2.0, size - 1) * sem
    start = np.arange(mean.size)
    return RollingReturns(start=start, size=size, mean=mean, lower=mean - half, upper=mean + half)


def return_evaluators(returns, window: int = DEFAULT_WINDOW) -> dict[str, float]:
    """Return every learning-curve evaluator of one run from one set of windows.

    Args:
      returns: (E,) per-episode returns, ordered by episode.
      window: W, episodes per rolling window.

    Returns:
      ``final``, ``convergence_episode``, ``absolute_regret``,
      ``normalized_regret``, ``normalized_instability``; see the functions
      of the same names.
    """
    values = _check_returns(returns)
    rolled = rolling_returns(values, window)
    final, final_lower = float(rolled.mean[-1]), float(rolled.lower[-1])
    # Always found: the final window's mean is at least its own lower bound.
    converged = int(np.flatnonzero(rolled.mean >= final_lower)[0])
    regret = float(np.sum(final - values[:converged]))
    after = values[converged + 1:]  # strictly after convergence, as published
    return {
        "final": final,
        "convergence_episode": converged,
        "absolute_regret": regret,
        "normalized_regret": regret / final if final != 0.0 else math.nan,
        "normalized_instability": float(np.mean(after < final_lower)) if after.size else math.nan,
    }


def final_return(returns, window: int = DEFAULT_WINDOW) -> float:
    """Return the mean of the last rolling window (return units)."""
    return return_evaluators(returns, window)["final"]


def convergence_episode(returns, window: int = DEFAULT_WINDOW) -> int:
    """Return the first window (its first episode) whose mean reaches the final window's lower bound."""
    return return_evaluators(returns, window)["convergence_episode"]


def absolute_regret(returns, window: int = DEFAULT_WINDOW) -> float:
    """Return the sum over episodes i < convergence of (final return - R_i)."""
    return return_evaluators(returns, window)["absolute_regret"]


def normalized_regret(returns, window: int = DEFAULT_WINDOW) -> float:
    """Return absolute regret / final return (NaN when the final return is 0)."""
    return return_evaluators(returns, window)["normalized_regret"]


def normalized_instability(returns, window: int = DEFAULT_WINDOW) -> float:
    """Return the fraction of episodes after convergence with a return below the final lower bound.

    Episodes strictly after the convergence episode count (as published);
    NaN when there are none.
    """
    return return_evaluators(returns, window)["normalized_instability"]


# ---------------------------------------------------------------- across seeds


def across_seeds(results: Sequence[Mapping[str, float]]) -> dict[str, dict[str, float]]:
    """Aggregate per-seed evaluator values into their mean and std across seeds.

    Args:
      results: one mapping name -> value per seed (e.g. from ``evaluate_run``).

    Returns:
      name -> {"mean", "std", "count"}: std is the population std (ddof = 0,
      as published); NaN values (an undefined evaluator in a seed) are left
      out and ``count`` says how many seeds contributed.
    """
    if len(results) == 0:
        raise ValueError("results: no seeds (empty data)")
    names = list(dict.fromkeys(name for result in results for name in result))
    summary = {}
    for name in names:
        values = np.array([r.get(name, math.nan) for r in results], dtype=np.float64)
        finite = values[~np.isnan(values)]
        summary[name] = {
            "mean": float(finite.mean()) if finite.size else math.nan,
            "std": float(finite.std()) if finite.size else math.nan,
            "count": int(finite.size),
        }
    return summary
