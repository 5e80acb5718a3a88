"""The sweep report's figures: final return against magnitude, violations against
safety_coeff, easy / medium / hard bars, and learning curves in a grid.

Each figure takes the tables of :mod:`rwrl.report.aggregate` (one row per line
and magnitude, with mean, bootstrap interval and IQM). One column of panels per
task (returns of different tasks are on different scales); within a panel one
line per agent (and per value of the sweep's other dimensions). Text from files
is drawn with ``$`` escaped, so that a setting never reaches matplotlib's
mathtext parser.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np

from rwrl.metrics import schema
from rwrl.report.aggregate import Dimension, SweepData, aggregate, line_keys
from rwrl.report.plots import curve, seed_band

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

_PANEL = (4.2, 3.2)  # inches per panel: width, height


def _figure(width: float, height: float) -> "Figure":
    # A bare Figure on the Agg canvas: no pyplot, no display, the user's backend untouched.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def text(value: object) -> str:
    """Return ``value`` as plain figure text (no mathtext)."""
    return str(value).replace("$", r"\$")


def _colors(labels: Sequence[str]) -> dict[str, str]:
    return {name: f"C{k % 10}" for k, name in enumerate(dict.fromkeys(labels))}


def _line_label(row: "pd.Series", keys: Sequence[str]) -> str:
    others = [f"{k}={row[k]}" for k in keys if k not in ("agent", "env")]
    return text(", ".join([str(row["agent"]), *others]))


def _x(dim: Dimension, table: "pd.DataFrame") -> np.ndarray:
    if dim.numeric:
        return table["magnitude"].astype(float).to_numpy()
    return table["magnitude_index"].to_numpy(float)


def _set_x(ax, dim: Dimension) -> None:
    if not dim.numeric:
        ax.set_xticks(range(len(dim.magnitudes)), [text(m) for m in dim.magnitudes])
    ax.set_xlabel(text(dim.name))
    ax.grid(alpha=0.3)


def _draw_lines(ax, table: "pd.DataFrame", dim: Dimension, keys: Sequence[str], centre: str,
                low: str, high: str, colors: dict[str, str]) -> None:
    for _, line in table.groupby(keys, sort=False, dropna=False):
        line = line.sort_values("magnitude_index")
        name = _line_label(line.iloc[0], keys)
        x = _x(dim, line)
        order = np.argsort(x, kind="stable")
        x, y = x[order], line[centre].to_numpy(float)[order]
        ax.plot(x, y, marker="o", color=colors[name], label=name)
        ax.fill_between(x, line[low].to_numpy(float)[order], line[high].to_numpy(float)[order],
                        color=colors[name], alpha=0.2, linewidth=0)


def _legend(fig: "Figure", axes) -> None:
    handles = {}
    for ax in np.ravel(axes):
        for handle, name in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(name, handle)
    if handles:
        fig.legend(list(handles.values()), list(handles), loc="outside lower center",
                   fontsize=8, ncols=min(4, len(handles)))


def dimension_figure(table: "pd.DataFrame", dim: Dimension, keys: Sequence[str],
                     ylabel: str = "final return") -> "Figure":
    """Mean (top row) and IQM (bottom row) with 95 % bootstrap bands against magnitude, per task."""
    envs = list(dict.fromkeys(table["env"]))
    fig = _figure(max(6.0, _PANEL[0] * len(envs)), 2 * _PANEL[1] + 0.6)
    axes = fig.subplots(2, len(envs), squeeze=False)
    colors = _colors(_line_label(r, keys) for _, r in table.iterrows())
    for col, env in enumerate(envs):
        rows = table[table["env"] == env]
        for row, (centre, what) in enumerate((("mean", "mean"), ("iqm", "IQM"))):
            ax = axes[row, col]
            low, high = ("ci_low", "ci_high") if centre == "mean" else ("iqm_ci_low", "iqm_ci_high")
            _draw_lines(ax, rows, dim, keys, centre, low, high, colors)
            ax.set_title(text(f"{env}: {what} over seeds, 95% CI"), fontsize=9)
            ax.set_ylabel(text(ylabel))
            _set_x(ax, dim)
    _legend(fig, axes)
    return fig


def violations_figure(data: SweepData, dim: Dimension) -> "Figure | None":
    """Violations per episode at the final evaluation against ``dim``, per task and constraint."""
    envs = list(dict.fromkeys(data.runs["env"]))
    per_env = {env: [c for c in data.constraints
                     if data.runs.loc[data.runs["env"] == env, f"final_{schema.VIOLATIONS}{c}"]
                     .notna().any()] for env in envs}
    width = max((len(c) for c in per_env.values()), default=0)
    if not width:
        return None
    keys = line_keys(data, dim)
    fig = _figure(max(6.0, _PANEL[0] * width), _PANEL[1] * len(envs) + 0.6)
    axes = fig.subplots(len(envs), width, squeeze=False)
    colors: dict[str, str] = {}
    for row, env in enumerate(envs):
        for col in range(width):
            ax = axes[row, col]
            if col >= len(per_env[env]):
                ax.set_visible(False)
                continue
            name = per_env[env][col]
            table = aggregate(data, dim, f"final_{schema.VIOLATIONS}{name}")
            table = table[table["env"] == env]
            for _, r in table.iterrows():
                colors.setdefault(_line_label(r, keys), f"C{len(colors) % 10}")
            _draw_lines(ax, table, dim, keys, "mean", "ci_low", "ci_high", colors)
            ax.set_title(text(f"{env}: {name}"), fontsize=9)
            ax.set_ylabel("violations per episode")
            ax.set_ylim(bottom=0)
            _set_x(ax, dim)
    _legend(fig, axes)
    return fig


def bars_figure(table: "pd.DataFrame", dim: Dimension, keys: Sequence[str]) -> "Figure":
    """Bars of the mean final return per magnitude (none, easy, ...), grouped by agent, per task."""
    envs = list(dict.fromkeys(table["env"]))
    fig = _figure(max(6.0, _PANEL[0] * len(envs)), _PANEL[1] + 0.8)
    axes = fig.subplots(1, len(envs), squeeze=False)[0]
    width = 0.8 / max(1, len(dim.magnitudes))
    for ax, env in zip(axes, envs):
        rows = table[table["env"] == env]
        groups = list(dict.fromkeys(_line_label(r, keys) for _, r in rows.iterrows()))
        for k, magnitude in enumerate(dim.magnitudes):
            bars = rows[rows["magnitude"] == magnitude]
            where = [groups.index(_line_label(r, keys)) for _, r in bars.iterrows()]
            mean = bars["mean"].to_numpy(float)
            error = np.abs(np.stack([mean - bars["ci_low"].to_numpy(float),
                                     bars["ci_high"].to_numpy(float) - mean]))
            ax.bar(np.asarray(where, float) + (k - (len(dim.magnitudes) - 1) / 2) * width, mean,
                   width, yerr=np.nan_to_num(error), capsize=3, color=f"C{k % 10}",
                   label=text(magnitude))
        ax.set_xticks(range(len(groups)), groups, fontsize=8)
        ax.set_title(text(f"{env}: mean final return, 95% CI"), fontsize=9)
        ax.set_ylabel("final return")
        ax.grid(alpha=0.3, axis="y")
    _legend(fig, axes)
    return fig


def curves_figure(data: SweepData) -> "Figure | None":
    """Evaluation return against env steps: rows = settings, columns = tasks (one y scale per
    task, so that the settings compare); mean over seeds, min-max band."""
    episodes = data.episodes
    if not len(episodes) or "phase" not in episodes:
        return None
    evals = episodes[episodes["phase"] == "eval"]
    settings = list(dict.fromkeys(data.runs["setting"]))
    envs = list(dict.fromkeys(data.runs["env"]))
    fig = _figure(max(6.0, _PANEL[0] * len(envs)), 0.8 * _PANEL[1] * len(settings) + 0.6)
    axes = fig.subplots(len(settings), len(envs), squeeze=False, sharex="col", sharey="col")
    colors = _colors(data.runs["agent"])
    for (setting, env, agent), members in data.runs.groupby(["setting", "env", "agent"],
                                                           sort=False):
        ax = axes[settings.index(setting), envs.index(env)]
        curves = [curve(evals[evals["run_id"] == r], schema.RETURN) for r in members["run_id"]]
        curves = [c for c in curves if len(c[0])]
        grid, mean, low, high = seed_band(curves)
        if len(grid):
            ax.plot(grid, mean, color=colors[agent], label=text(agent),
                    marker="o" if len(grid) < 3 else None)
            ax.fill_between(grid, low, high, color=colors[agent], alpha=0.2, linewidth=0)
    for (row, setting), (col, env) in ((r, c) for r in enumerate(settings) for c in enumerate(envs)):
        ax = axes[row, col]
        ax.set_title(text(f"{setting} | {env}"), fontsize=9)
        ax.grid(alpha=0.3)
        if col == 0:
            ax.set_ylabel("eval return")
        if row == len(settings) - 1:
            ax.set_xlabel("env steps")
    _legend(fig, axes)
    return fig


__all__ = ["bars_figure", "curves_figure", "dimension_figure", "violations_figure"]
