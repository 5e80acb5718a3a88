"""A bandit sweep's statistics and figures: regret against t on log-log axes, fitted slopes.

Input: the rows of every finished run's ``regret.parquet``
(``rwrl.metrics.bandit_results.read_bandit_sweep``). One line per run (env, policy,
parameters, horizon T), S = its N seeds:

* the mean regret R̄(t) over the seeds at each recorded round, with its 95 % percentile
  bootstrap band (``RESAMPLES`` resamples of the seeds, generator seed
  ``BOOTSTRAP_SEED``; one resample is used at every t, so a band is a set of curves);
* the log-log slope: the least-squares line through (log t, log R̄(t)) over the recorded
  rounds t in [sqrt(T), T] with R̄(t) > 0 (the upper half of the log range, where the
  asymptotic rate shows), and its 95 % interval: the same fit on each bootstrap mean
  curve, percentile interval. A slope near 1 is linear regret, 2/3 is SWA's bound.
* across horizons (a sweep of several T for one env, policy and parameters): the final
  regret R(T) against T and its slope, seeds resampled within each horizon. This is the
  regret *at horizon T* of a policy tuned for T (SWA's window follows T), which the
  curve R(t) of one run at t < T is not.

With one seed there is no interval (NaN); with two, the bootstrap has three distinct
resamples: read such intervals as rough. Figures are bare matplotlib ``Figure``
objects (no pyplot); text from files is drawn with ``$`` escaped.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from rwrl.report.sweep_plots import _figure, text

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

CONFIDENCE = 0.95
RESAMPLES = 10_000
BOOTSTRAP_SEED = 0
#: rounds kept per line for the bands and fits when a run recorded every round.
MAX_POINTS = 200
METHOD_NOTE = (
    "Curves: mean regret over seeds with its 95 % percentile bootstrap band "
    f"({RESAMPLES:,} resamples of the seeds, generator seed {BOOTSTRAP_SEED}). Slope: the "
    "least-squares line through (log t, log mean R(t)) over the recorded rounds t in "
    "[sqrt(T), T] with mean R(t) > 0; its 95 % interval is the same fit on every bootstrap "
    "mean curve (percentile). Regret is the expected (no-noise) regret against the oracle.")
#: a line: env, policy, params, horizon.
LINE_KEYS = ("env", "policy", "params", "horizon")


def _resample_counts(n: int, resamples: int, seed: int) -> np.ndarray:
    """Return (B, n) multinomial counts: how often each seed is drawn in each resample."""
    rng = np.random.default_rng(seed)
    return rng.multinomial(n, np.full(n, 1.0 / n), size=resamples).astype(np.float64)


def _percentiles(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the percentile interval of ``values`` (B, ...) along axis 0, NaN ignored."""
    tail = 100.0 * (1.0 - CONFIDENCE) / 2.0
    with np.errstate(all="ignore"):
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN column: NaN
            return (np.nanpercentile(values, tail, axis=0),
                    np.nanpercentile(values, 100.0 - tail, axis=0))


def log_slopes(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Return the least-squares slope of log y against log x for each row of ``y``.

    Args:
      x: (P,) positive abscissae.
      y: (B, P) ordinates; values <= 0 or NaN are left out of their row's fit.

    Returns:
      (B,) slopes; NaN for a row with fewer than 2 usable points.
    """
    y = np.atleast_2d(np.asarray(y, np.float64))
    with np.errstate(divide="ignore", invalid="ignore"):
        logy = np.where(y > 0, np.log(np.where(y > 0, y, 1.0)), np.nan)
    logx = np.log(np.asarray(x, np.float64))[None, :]
    used = np.isfinite(logy)
    count = used.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_x = np.where(used, logx, 0.0).sum(axis=1) / count
        mean_y = np.where(used, logy, 0.0).sum(axis=1) / count
        dx = np.where(used, logx - mean_x[:, None], 0.0)
        dy = np.where(used, logy - mean_y[:, None], 0.0)
        sxx = (dx * dx).sum(axis=1)
        slope = (dx * dy).sum(axis=1) / sxx
    return np.where((count >= 2) & (sxx > 0), slope, np.nan)


def _thin(steps: np.ndarray, horizon: int) -> np.ndarray:
    """Return a mask keeping at most about ``MAX_POINTS`` log-spaced rounds of ``steps``."""
    if steps.size <= MAX_POINTS:
        return np.ones(steps.size, bool)
    keep = np.unique(np.geomspace(1, horizon, MAX_POINTS // 2).round())
    mask = np.isin(steps, keep)
    mask[-1] = True
    return mask


def line_stats(frame: "pd.DataFrame", horizon: int) -> dict[str, Any]:
    """Return one run's curve statistics (module docstring).

    Args:
      frame: its rows of ``regret.parquet`` (every seed, every recorded t).
      horizon: its T.

    Returns:
      t, mean, low, high (the band), n_seeds, final (per-seed R(T)), slope, slope_low,
      slope_high, fit_from, fit_to (the rounds of the fit).
    """
    recorded = np.unique(frame["t"].to_numpy(np.int64))
    kept = recorded[_thin(recorded, horizon)]
    if kept.size < recorded.size:  # every round recorded: keep log-spaced ones
        frame = frame[frame["t"].isin(kept)]
    table = frame.pivot(index="seed", columns="t", values="regret")
    steps = table.columns.to_numpy(np.int64)
    regret = table.to_numpy(np.float64)  # (S, G)
    n = regret.shape[0]
    mean = regret.mean(axis=0)
    fit = (steps >= math.sqrt(horizon)) & (mean > 0)
    slope = float(log_slopes(steps[fit], mean[None, fit])[0]) if fit.any() else math.nan
    low = high = np.full(steps.size, np.nan)
    slope_low = slope_high = math.nan
    if n >= 2:
        curves = _resample_counts(n, RESAMPLES, BOOTSTRAP_SEED) @ regret / n  # (B, G)
        low, high = _percentiles(curves)
        if fit.any():
            slope_low, slope_high = (float(v) for v in
                                     _percentiles(log_slopes(steps[fit], curves[:, fit])))
    fitted = steps[fit]
    return {"t": steps, "mean": mean, "low": low, "high": high, "n_seeds": n,
            "final": regret[:, -1], "slope": slope, "slope_low": slope_low,
            "slope_high": slope_high,
            "fit_from": int(fitted[0]) if fitted.size else None,
            "fit_to": int(fitted[-1]) if fitted.size else None}


def horizon_stats(finals: dict[int, np.ndarray]) -> dict[str, Any]:
    """Return R(T) against T (horizon -> per-seed final regrets): means, bands, slope.

    Seeds are resampled within each horizon, independently.
    """
    horizons = np.array(sorted(finals), np.float64)
    means = np.array([finals[h].mean() for h in sorted(finals)])
    slope = float(log_slopes(horizons, means[None])[0])
    resampled = []
    for k, h in enumerate(sorted(finals)):
        values = np.asarray(finals[h], np.float64)
        if values.size < 2:
            resampled.append(np.full(RESAMPLES, np.nan))
            continue
        counts = _resample_counts(values.size, RESAMPLES, BOOTSTRAP_SEED + k)
        resampled.append(counts @ values / values.size)
    boot = np.stack(resampled, axis=1)  # (B, H)
    low, high = _percentiles(boot)
    slope_low, slope_high = _percentiles(log_slopes(horizons, boot))
    return {"horizon": horizons, "mean": means, "low": low, "high": high, "slope": slope,
            "slope_low": float(slope_low), "slope_high": float(slope_high),
            "n_seeds": min(v.size for v in finals.values())}


def _interval_text(low: float, high: float) -> str:
    return "no interval" if not (math.isfinite(low) and math.isfinite(high)) \
        else f"[{low:.2f}, {high:.2f}]"


def line_label(key: dict[str, Any], stats: dict[str, Any], show_horizon: bool) -> str:
    parts = [str(key["policy"])]
    if key["params"]:
        parts.append(str(key["params"]))
    if show_horizon:
        parts.append(f"T={key['horizon']}")
    slope = (f"slope {stats['slope']:.2f} {_interval_text(stats['slope_low'], stats['slope_high'])}"
             if math.isfinite(stats["slope"]) else "no slope (regret 0)")
    return text(f"{' '.join(parts)}: {slope}")


def _log_axes(ax) -> None:
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.grid(alpha=0.3, which="both")


def regret_figure(lines: list[tuple[dict[str, Any], dict[str, Any]]]) -> "Figure":
    """Mean regret R(t) against t (log-log), 95 % bands, per env panel; slopes in the legend."""
    envs = list(dict.fromkeys(key["env"] for key, _ in lines))
    show_horizon = len({key["horizon"] for key, _ in lines}) > 1
    fig = _figure(max(6.0, 5.2 * len(envs)), 4.6)
    axes = fig.subplots(1, len(envs), squeeze=False)[0]
    colors: dict[tuple, str] = {}
    for key, stats in lines:
        ax = axes[envs.index(key["env"])]
        color = colors.setdefault((key["policy"], key["params"]), f"C{len(colors) % 10}")
        style = "-" if not show_horizon else ["-", "--", ":", "-."][
            sorted({k["horizon"] for k, _ in lines}).index(key["horizon"]) % 4]
        t = stats["t"].astype(float)
        ax.plot(t, stats["mean"], style, color=color, label=line_label(key, stats, show_horizon))
        if np.isfinite(stats["low"]).any():
            ax.fill_between(t, stats["low"], stats["high"], color=color, alpha=0.2, linewidth=0)
    for ax, env in zip(axes, envs):
        _log_axes(ax)
        ax.set_title(text(f"{env}: mean regret over seeds, 95% bootstrap band"), fontsize=9)
        ax.set_xlabel("round t")
        ax.set_ylabel("regret R(t)")
        ax.legend(fontsize=7, loc="upper left")
    return fig


def horizon_figure(groups: list[tuple[dict[str, Any], dict[str, Any]]]) -> "Figure":
    """Final regret R(T) against the horizon T (log-log), 95 % intervals, per env panel."""
    envs = list(dict.fromkeys(key["env"] for key, _ in groups))
    fig = _figure(max(6.0, 5.2 * len(envs)), 4.6)
    axes = fig.subplots(1, len(envs), squeeze=False)[0]
    for k, (key, stats) in enumerate(groups):
        ax = axes[envs.index(key["env"])]
        label = text(f"{key['policy']}{' ' + key['params'] if key['params'] else ''}: slope "
                     f"{stats['slope']:.2f} {_interval_text(stats['slope_low'], stats['slope_high'])}")
        error = np.abs(np.stack([stats["mean"] - stats["low"], stats["high"] - stats["mean"]]))
        ax.errorbar(stats["horizon"], stats["mean"], yerr=np.nan_to_num(error), marker="o",
                    capsize=3, color=f"C{k % 10}", label=label)
    for ax, env in zip(axes, envs):
        _log_axes(ax)
        ax.set_title(text(f"{env}: final regret R(T) against the horizon T"), fontsize=9)
        ax.set_xlabel("horizon T")
        ax.set_ylabel("regret R(T)")
        ax.legend(fontsize=7, loc="upper left")
    return fig


__all__ = ["LINE_KEYS", "METHOD_NOTE", "horizon_figure", "horizon_stats", "line_label",
           "line_stats", "log_slopes", "regret_figure"]
