"""Continual-learning metrics of a run evaluated on every regime (Continual World).

Wolczyk et al., "Continual World: A Robotic Benchmark For Continual
Reinforcement Learning", NeurIPS 2021 (arXiv 2105.10919), section 4 and their
code (``continualworld/results_processing/tables.py``), with the tasks
replaced by the physical regimes of ``regime_spec`` and success rates by
normalised returns.

The table: one row per evaluation episode, with the columns

    env_steps     when the evaluation ran (``time=``: any column that orders the
                  evaluations, e.g. ``evaluation``)
    regime        the regime evaluated
    train_regime  the regime the run was training on at that evaluation
    return        the episode's return

The performance p_i(t) of regime i at evaluation t is the mean return of its
episodes there divided by ``scale``. With rewards in [0, 1] per step (every
rwrl task's), a return is at most the episode's length, so ``scale`` = the
time limit puts p in [0, 1], the analogue of Continual World's success rate
(``evaluate_continual`` takes the longest evaluation episode); ``scale`` = 1
keeps returns.

With T the last evaluation and t_i the last evaluation at which regime i was
being trained (the end of its training period; with ``cycle``, of its last):

* average performance P(t) = mean of p_i(t) over the regimes seen by t (trained
  on at some evaluation <= t); the summary is P(T). Continual World averages
  over all its tasks at the end, all of them seen by then.
* forgetting F_i = p_i(t_i) - p_i(T); F = mean of F_i over the regimes seen.
  The regime trained last has F_i = 0 (t_i = T) and is in the mean, as in
  Continual World's code.
* forward transfer FT_i = (AUC_i - AUC_i^b) / (1 - AUC_i^b): AUC_i the mean of
  p_i over the evaluations of regime i's first training period (the mean of
  evaluation points is their code's area under the curve divided by the
  period), AUC_i^b that mean over a reference run trained on regime i alone
  for one period (``regime_spec`` with ``eval_regime`` = i, from scratch).
  FT = mean of FT_i; NaN where AUC_i^b = 1 (nothing left to transfer).

"p_i(t_i)" and "p_i(T)" average the last ``last`` evaluations of their set
(their code averages 5; the default 1 is the paper's value at a point).

Example:
  >>> import pandas as pd
  >>> rows = pd.DataFrame({"env_steps": [0, 0, 10, 10, 20, 20], "regime": [0, 1] * 3,
  ...                      "train_regime": [0, 0, 0, 0, 1, 1],
  ...                      "return": [10.0, 0.0, 80.0, 20.0, 40.0, 90.0]})
  >>> forgetting(rows, scale=100.0)
  {0: 0.4, 1: 0.0}
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from rwrl.metrics import schema

if TYPE_CHECKING:
    import pandas as pd

REGIME = schema.REGIME
TRAIN_REGIME = "train_regime"
TIME = "env_steps"


def performance_table(table: "pd.DataFrame", scale: float = 1.0, time: str = TIME) -> "pd.DataFrame":
    """Return p_i(t): one row per evaluation (``time``, ascending), one column per regime i."""
    _require(table, (time, REGIME, schema.RETURN))
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"scale = {scale!r}: give a finite number > 0")
    means = table.groupby([time, REGIME])[schema.RETURN].mean().unstack(REGIME).sort_index()
    means.columns = [int(c) for c in means.columns]
    return means / scale


def training_regimes(table: "pd.DataFrame", time: str = TIME) -> "pd.Series":
    """Return the regime trained on at each evaluation (``time``, ascending); rows without one left out."""
    _require(table, (time, TRAIN_REGIME))
    known = table[[time, TRAIN_REGIME]].dropna()
    return known.groupby(time)[TRAIN_REGIME].first().sort_index().astype(int)


def training_periods(train: "pd.Series") -> list[tuple[int, list]]:
    """Return (regime, its evaluations' times) of each run of consecutive evaluations of one regime."""
    periods: list[tuple[int, list]] = []
    for t, regime in train.items():
        if periods and periods[-1][0] == regime:
            periods[-1][1].append(t)
        else:
            periods.append((int(regime), [t]))
    return periods


def average_performance(table: "pd.DataFrame", scale: float = 1.0, time: str = TIME) -> "pd.Series":
    """Return P(t) at each evaluation: mean of p_i(t) over the regimes seen by t."""
    p, train = performance_table(table, scale, time), training_regimes(table, time)
    seen: set[int] = set()
    values = []
    for t in p.index:
        if t in train.index:
            seen.add(int(train[t]))
        row = p.loc[t, sorted(r for r in seen if r in p.columns)]
        values.append(float(row.mean()) if len(row) else math.nan)
    return _series(values, p.index)


def forgetting(table: "pd.DataFrame", scale: float = 1.0, time: str = TIME,
               last: int = 1) -> dict[int, float]:
    """Return F_i = p_i(t_i) - p_i(T) per regime trained on (see the module docstring)."""
    p, train = performance_table(table, scale, time), training_regimes(table, time)
    _check_last(last)
    out = {}
    for regime in sorted(r for r in set(train) if r in p.columns):  # trained on and evaluated
        during = train.index[train == regime]
        own = p.loc[p.index.isin(during), regime].dropna()
        out[regime] = float(own.iloc[-last:].mean() - p[regime].dropna().iloc[-last:].mean())
    return out


def forward_transfer(table: "pd.DataFrame", reference: "pd.DataFrame", scale: float = 1.0,
                     time: str = TIME) -> dict[int, float]:
    """Return FT_i per regime with a reference (see the module docstring).

    Args:
      table: the continual run's evaluation rows.
      reference: the reference runs' evaluation rows (``time``, ``regime``,
        ``train_regime``, ``return``): for regime i, the rows of a run trained
        on regime i alone (``train_regime`` = i) evaluated on it (``regime`` = i).
      scale: as ``performance_table``'s, the same for both tables.
    """
    p, train = performance_table(table, scale, time), training_regimes(table, time)
    out = {}
    first: dict[int, list] = {}
    for regime, times in training_periods(train):
        first.setdefault(regime, times)
    for regime, times in sorted(first.items()):
        ref = reference[(reference[REGIME] == regime) & (reference[TRAIN_REGIME] == regime)]
        if not len(ref) or regime not in p.columns:
            continue
        auc = float(p.loc[p.index.isin(times), regime].mean())
        auc_ref = float(performance_table(ref, scale, time)[regime].mean())
        out[regime] = (auc - auc_ref) / (1.0 - auc_ref) if auc_ref != 1.0 else math.nan
    return out


def switch_times(train_rows: "pd.DataFrame", time: str = TIME) -> list[tuple[float, int]]:
    """Return (time, new regime) of each regime switch of a run's training episodes.

    The episodes finished at one ``time`` (one vector step) vote for their
    regime (the most common; ties: the lowest); a switch is placed at the
    last ``time`` before the vote changes (when every env ends its episode on
    the same step, as with a time limit, that is the step of the switch).
    """
    _require(train_rows, (time, REGIME))
    votes = train_rows.groupby(time)[REGIME].agg(
        lambda r: int(np.argmax(np.bincount(r.astype(int))))).sort_index()
    times, regimes = list(votes.index), [int(r) for r in votes]
    return [(float(times[k - 1]), regimes[k]) for k in range(1, len(regimes))
            if regimes[k] != regimes[k - 1]]


def evaluate_continual(rows: "pd.DataFrame", last: int = 1) -> dict[str, float]:
    """Return a run's continual metrics as a flat dict; {} when its rows carry no ``train_regime``.

    Args:
      rows: a run's metrics rows (``rwrl.experiments.run``): the evaluation rows
        (``phase`` 'eval', or all rows without ``phase``) with ``env_steps``,
        ``regime``, ``train_regime``, ``return`` and ``length``.

    Returns:
      ``continual/scale`` (the longest evaluation episode, the largest return),
      ``continual/average_performance`` P(T), ``continual/forgetting`` F, and per
      regime i ``continual/performance/<i>`` p_i(T) and ``continual/forgetting/<i>`` F_i.
    """
    if "phase" in rows:
        rows = rows[rows["phase"] == "eval"]
    if TRAIN_REGIME not in rows or REGIME not in rows or not rows[TRAIN_REGIME].notna().any():
        return {}
    rows = rows[rows[TRAIN_REGIME].notna()]
    scale = float(rows[schema.LENGTH].max())
    p = performance_table(rows, scale)
    forgets = forgetting(rows, scale, last=last)
    out = {"continual/scale": scale,
           "continual/average_performance": float(average_performance(rows, scale).iloc[-1]),
           "continual/forgetting": float(np.mean(list(forgets.values())))}
    for regime in p.columns:
        out[f"continual/performance/{regime}"] = float(p[regime].dropna().iloc[-last:].mean())
    out.update({f"continual/forgetting/{regime}": value for regime, value in forgets.items()})
    return out


def _series(values: list[float], index) -> "pd.Series":
    import pandas as pd
    return pd.Series(values, index=index, dtype=float)


def _check_last(last: Any) -> None:
    if isinstance(last, bool) or not isinstance(last, int) or last < 1:
        raise ValueError(f"last = {last!r}: give an integer >= 1 (evaluations averaged)")


def _require(table: "pd.DataFrame", columns: tuple[str, ...]) -> None:
    missing = [c for c in columns if c not in table]
    if missing:
        raise ValueError(f"table: missing column(s) {missing}; it has {list(table.columns)[:12]}")


__all__ = ["average_performance", "evaluate_continual", "forgetting", "forward_transfer",
           "performance_table", "switch_times", "training_periods", "training_regimes"]
