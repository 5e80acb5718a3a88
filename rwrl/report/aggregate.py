"""The statistics of a sweep report: per-run coordinates, dimensions, seeds aggregated.

A sweep directory (``rwrl.metrics.sweep_results``) is read into one row per
planned run (its agent, env, seed, level, axis values, live status, the
engine's evaluators and its final-evaluation violations) and every episode row.

Estimates over seeds (S = the runs of one agent, env and point that finished):

* mean, and its 95 % percentile-bootstrap interval (``scipy.stats.bootstrap``,
  10,000 resamples of the S seeds, fixed generator seed, so a page is
  reproducible);
* IQM, the interquartile mean of rliable (Agarwal et al. 2021): the 25 %
  trimmed mean, ``scipy.stats.trim_mean(x, 0.25)`` (rliable's
  ``aggregate_iqm`` is that same call), with its bootstrap interval.

rliable itself is not used: its interval estimates import ``arch`` < 8, whose
7.2.0 fails to import with the pinned pandas 3.1 (``deprecate_kwarg``), so the
intervals come from scipy. With one seed the interval is NaN (no spread to
resample); identical values give a zero-width interval.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import numpy as np

from rwrl.domains.names import domain_of
from rwrl.metrics import across_seeds, schema
from rwrl.metrics import sweep_results as results

if TYPE_CHECKING:
    import pandas as pd

CONFIDENCE = 0.95
RESAMPLES = 10_000
BOOTSTRAP_SEED = 0
IQM_CUT = 0.25  # fraction trimmed from each end: the interquartile mean
#: what the page says about where its statistics come from.
METHOD_NOTE = ("Intervals: 95 % percentile bootstrap over seeds (scipy.stats.bootstrap, "
               f"{RESAMPLES:,} resamples, generator seed {BOOTSTRAP_SEED}). IQM: interquartile "
               "mean, the 25 % trimmed mean of rliable (scipy.stats.trim_mean; rliable 1.2.0 "
               "is not used: its bootstrap needs arch < 8, which does not import with the "
               "pinned pandas).")
#: the engine's evaluators shown per setting (runs.parquet column -> page label).
EVALUATORS = {"return/final": "final return", "return/convergence_episode": "convergence",
              "return/absolute_regret": "regret", "return/normalized_instability": "instability",
              "divergences": "divergences"}
#: name of the dimension made of the sweep's [[levels]].
LEVELS = "level"


# ---------------------------------------------------------------- estimates
def iqm(values: Sequence[float]) -> float:
    """Return the interquartile mean (25 % trimmed from each end) of ``values``."""
    import scipy.stats
    x = np.asarray(values, dtype=np.float64)
    return float(scipy.stats.trim_mean(x, IQM_CUT)) if x.size else math.nan


def bootstrap_ci(values: Sequence[float], statistic: Callable = np.mean,
                 confidence: float = CONFIDENCE, resamples: int = RESAMPLES,
                 seed: int = BOOTSTRAP_SEED) -> tuple[float, float]:
    """Return the percentile-bootstrap interval (low, high) of ``statistic`` over ``values``.

    Args:
      values: (S,) one value per seed.
      statistic: vectorised ``f(x, axis)`` (``np.mean``, or :func:`iqm_statistic`).

    Returns:
      (NaN, NaN) with fewer than 2 values; (v, v) when every value is v.
    """
    import scipy.stats
    x = np.asarray(values, dtype=np.float64)
    if x.size < 2:
        return math.nan, math.nan
    if np.all(x == x[0]):  # every resample is x[0]: skip the rounding of a mean of copies
        return float(x[0]), float(x[0])
    # scipy renamed random_state to rng in 1.15; the project allows scipy >= 1.11.
    name = "rng" if "rng" in inspect.signature(scipy.stats.bootstrap).parameters else "random_state"
    result = scipy.stats.bootstrap((x,), statistic, confidence_level=confidence,
                                   n_resamples=resamples, method="percentile",
                                   **{name: np.random.default_rng(seed)})
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def iqm_statistic(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Return the IQM along ``axis`` (the vectorised form ``bootstrap_ci`` takes)."""
    import scipy.stats
    return scipy.stats.trim_mean(x, IQM_CUT, axis=axis)


def estimate(values: Sequence[float]) -> dict[str, float]:
    """Return n, mean, ci_low, ci_high, iqm, iqm_ci_low, iqm_ci_high of the finite values."""
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    low, high = bootstrap_ci(x)
    iqm_low, iqm_high = bootstrap_ci(x, iqm_statistic)
    return {"n_seeds": int(x.size), "mean": float(x.mean()) if x.size else math.nan,
            "ci_low": low, "ci_high": high, "iqm": iqm(x),
            "iqm_ci_low": iqm_low, "iqm_ci_high": iqm_high}


# ---------------------------------------------------------------- reading
@dataclasses.dataclass
class SweepData:
    """A sweep directory, read for the report.

    Attributes:
      runs: one row per planned run: run_id, agent, env, seed, level, level_index,
        setting (the point's label), one column per dimension (its magnitude label),
        status, error, the engine's evaluators, and ``final_violations/<c>``.
      episodes: every episode row (phase, env_steps, return, ...) with run_id.
      dimensions: what the sweep varies, in file order.
    """

    path: Path
    plan: dict[str, Any]
    runs: "pd.DataFrame"
    episodes: "pd.DataFrame"
    dimensions: list["Dimension"]

    @property
    def constraints(self) -> list[str]:
        prefix = "final_" + schema.VIOLATIONS
        return [c[len(prefix):] for c in self.runs.columns if str(c).startswith(prefix)]

    def done(self) -> "pd.DataFrame":
        return self.runs[self.runs["status"] == "done"]


@dataclasses.dataclass(frozen=True)
class Dimension:
    """One thing the sweep varies: an axis (a setting path) or its [[levels]].

    Attributes:
      name: the axis path (``delay_spec.actions``) or ``level``.
      magnitudes: the labels of its values, weakest first (file order; numbers ascending).
      numeric: the magnitudes are numbers (drawn on a numeric x axis).
      settings: for levels, each level's settings (path -> value).
    """

    name: str
    magnitudes: tuple[str, ...]
    numeric: bool
    settings: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)

    @property
    def is_combined(self) -> bool:
        """Whether its magnitudes are combined challenges (easy / medium / hard bars)."""
        return self.name == "combined_challenge" or any(
            "combined_challenge" in s for s in self.settings.values())

    @property
    def is_safety(self) -> bool:
        """Whether it varies safety_coeff (violations per constraint are drawn against it)."""
        return self.name == "safety_coeff" or any(
            "safety_coeff" in s for s in self.settings.values())


def label(value: Any, domain: str | None = None) -> str:
    """Return a setting's value as text (a per-domain table resolved to the run's domain)."""
    if isinstance(value, Mapping) and set(value) == {"per_domain"} and domain is not None:
        value = value["per_domain"].get(domain, value)
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _number(text: str) -> float | None:
    try:
        number = float(json.loads(text))
    except (ValueError, TypeError):
        return None
    return number if math.isfinite(number) else None


def plan_dimensions(plan: Mapping[str, Any]) -> list[Dimension]:
    """Return the levels (when the plan has any) and each axis, as :class:`Dimension`."""
    dims = []
    if plan.get("levels"):
        settings = {}
        for run in plan["runs"]:
            settings.setdefault(str(run["level"]), run.get("settings", {}))
        axes = set(plan.get("axes", []))
        settings = {k: {p: v for p, v in s.items() if p not in axes} for k, s in settings.items()}
        dims.append(Dimension(LEVELS, tuple(map(str, plan["levels"])), False, settings))
    for axis in plan.get("axes", []):
        seen = dict.fromkeys(label(r["settings"].get(axis), _domain(r)) for r in plan["runs"])
        numbers = [_number(v) for v in seen]
        numeric = all(n is not None for n in numbers)
        order = sorted(seen, key=_number) if numeric else list(seen)
        dims.append(Dimension(axis, tuple(order), numeric))
    return dims


def _domain(run: Mapping[str, Any]) -> str:
    return domain_of(str(run["config"]["env"]))


def _coordinates(plan: Mapping[str, Any], dims: Sequence[Dimension]) -> "pd.DataFrame":
    import pandas as pd
    rows = []
    for run in plan["runs"]:
        config = run["config"]
        row = {"run_id": run["run_id"], "agent": config["agent"], "env": config["env"],
               "seed": config["seed"], "level": run.get("level"),
               "level_index": run.get("level_index")}
        parts = []
        for dim in dims:
            value = (str(run.get("level")) if dim.name == LEVELS
                     else label(run["settings"].get(dim.name), _domain(run)))
            row[dim.name] = value
            parts.append(value if dim.name == LEVELS else f"{dim.name}={value}")
        row["setting"] = " · ".join(parts) or "base"
        rows.append(row)
    return pd.DataFrame(rows)


def _tables(sweep_dir: Path, plan: Mapping[str, Any], live: Mapping[str, str]):
    """The Parquet tables when they are current, else tables rebuilt from the run directories."""
    import pandas as pd
    folder = sweep_dir / results.RESULTS_DIR
    if (folder / results.RUNS_FILE).exists() and (folder / results.EPISODES_FILE).exists():
        runs = pd.read_parquet(folder / results.RUNS_FILE)
        recorded = dict(zip(runs["run_id"], runs["status"]))
        if recorded == dict(live) and not {"running", "partial"} & set(live.values()):
            return runs, pd.read_parquet(folder / results.EPISODES_FILE)
    return results.run_table(sweep_dir, plan), results.episode_table(sweep_dir, plan)


def last_evaluation(episodes: "pd.DataFrame") -> "pd.DataFrame":
    """Return the eval rows of each run's last evaluation (its largest ``env_steps``)."""
    evals = episodes[episodes["phase"] == "eval"]
    return evals[evals["env_steps"] == evals.groupby("run_id")["env_steps"].transform("max")]


def final_violations(episodes: "pd.DataFrame") -> "pd.DataFrame":
    """Return per run the mean violations per episode of each constraint at its last evaluation."""
    import pandas as pd
    columns = [c for c in episodes.columns if str(c).startswith(schema.VIOLATIONS)]
    if not columns or "phase" not in episodes:
        return pd.DataFrame({"run_id": []})
    table = last_evaluation(episodes).groupby("run_id")[columns].mean()
    return table.rename(columns=lambda c: "final_" + c).reset_index()


def load_sweep(sweep_dir: Path) -> SweepData:
    """Read a sweep directory, finished or not (see :class:`SweepData`)."""
    sweep_dir = Path(sweep_dir)
    plan = results.read_plan(sweep_dir)
    live = results.statuses(sweep_dir, plan)
    runs, episodes = _tables(sweep_dir, plan, live)
    dims = plan_dimensions(plan)
    keep = ["run_id", *(c for c in EVALUATORS if c in runs)]
    table = _coordinates(plan, dims).merge(runs[keep], on="run_id", how="left")
    table["status"] = table["run_id"].map(live)
    table["error"] = [results.first_error_line(results.run_dir(sweep_dir, r)) if s == "failed"
                      else None for r, s in zip(table["run_id"], table["status"])]
    table = table.merge(final_violations(episodes), on="run_id", how="left")
    return SweepData(sweep_dir, dict(plan), table, episodes, dims)


# ---------------------------------------------------------------- tables
def line_keys(data: SweepData, dim: Dimension) -> list[str]:
    """Return the columns that tell one line from another in ``dim``'s figure."""
    return ["agent", "env", *(d.name for d in data.dimensions if d.name != dim.name)]


def aggregate(data: SweepData, dim: Dimension, column: str = "return/final") -> "pd.DataFrame":
    """Return ``column`` over the finished seeds, per line and magnitude of ``dim``.

    Columns: dimension, magnitude, magnitude_index, agent, env, the other
    dimensions, then :func:`estimate`'s keys. Every line has every magnitude
    (n_seeds 0 and NaN where none finished).
    """
    import pandas as pd
    keys = line_keys(data, dim)
    done = data.done()
    rows = []
    for line, members in data.runs.groupby(keys, sort=False, dropna=False):
        line = line if isinstance(line, tuple) else (line,)
        for index, magnitude in enumerate(dim.magnitudes):
            point = members[members[dim.name] == magnitude]
            if not len(point):
                continue  # this line never visits this magnitude (crossed with levels)
            values = done.loc[done["run_id"].isin(point["run_id"]), column] \
                if column in done else pd.Series([], dtype=float)
            rows.append({"dimension": dim.name, "magnitude": magnitude,
                         "magnitude_index": index, **dict(zip(keys, line)),
                         **estimate(values.to_numpy(float))})
    return pd.DataFrame(rows)


def aggregate_all(data: SweepData) -> "pd.DataFrame":
    """Return the final-return aggregate of every dimension (the page's CSV)."""
    import pandas as pd
    frames = [aggregate(data, dim) for dim in data.dimensions]
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def evaluators_table(data: SweepData) -> tuple[list[str], list[list[Any]]]:
    """Return (header, rows): per setting the mean ± std over finished seeds of each evaluator."""
    columns = [c for c in (*EVALUATORS, *(f"final_{schema.VIOLATIONS}{n}" for n in data.constraints))
               if c in data.runs]
    header = ["agent", "env", "setting", "seeds done",
              *(EVALUATORS.get(c, c.removeprefix("final_")) for c in columns)]
    rows = []
    for (agent, env, setting), members in data.runs.groupby(["agent", "env", "setting"],
                                                           sort=False):
        done = members[members["status"] == "done"]
        row: list[Any] = [agent, env, setting, f"{len(done)} of {len(members)}"]
        spread = across_seeds(done[columns].to_dict("records")) if len(done) else {}
        for column in columns:
            stats = spread.get(column)
            row.append((stats["mean"], stats["std"]) if stats and stats["count"] else None)
        rows.append(row)
    return header, rows


def status_counts(data: SweepData) -> dict[str, int]:
    """Return the number of runs per status (every status of ``sweep_results.STATUSES``)."""
    counts = {s: 0 for s in results.STATUSES}
    for status in data.runs["status"]:
        counts[status] += 1
    return counts


__all__ = ["Dimension", "SweepData", "aggregate", "aggregate_all", "bootstrap_ci", "estimate",
           "evaluators_table", "iqm", "last_evaluation", "load_sweep", "plan_dimensions", "status_counts"]
