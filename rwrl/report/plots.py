"""The report's figures: learning curves, constraint violations, regimes over training.

Runs that differ only in their seed form a group (same agent, task,
challenges and agent config); a group of several runs is drawn as the mean
over its seeds with the range (min to max) shaded, on a common grid of env
steps that stops where the shortest run stops, so that a run in progress
never drags the mean down by missing data.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import textwrap
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
# Bare Figure objects render through the Agg canvas without pyplot, so that the
# report neither needs a display nor switches the backend of a user's session.
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from rwrl.metrics import schema
from rwrl.metrics.continual import TRAIN_REGIME, switch_times
from rwrl.metrics.episode_file import read_rows

_GRID_POINTS = 200  # points of the common env-step grid of a group's mean


@dataclasses.dataclass
class RunData:
    """One run directory, read for the report."""

    path: Path
    config: dict[str, Any]  #: config.json's content ({"run": ..., "agent": ...})
    rows: pd.DataFrame  #: metrics.jsonl, complete rows only
    summary: dict[str, Any] | None  #: summary.json, None while in progress

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def group(self) -> str:
        """The label shared by the seeds of one configuration."""
        run = dict(self.config.get("run", {}))
        challenge = run.get("combined_challenge") or "none"
        label = f"{run.get('agent', '?')} {run.get('env', '?')} challenge={challenge}"
        if run.get("safety_coeff") is not None:
            label += f" safety={run['safety_coeff']}"
        for key in ("seed", "steps", "report"):
            run.pop(key, None)
        extra = {k: v for k, v in run.items() if k in ("env_kwargs", "agent_config") and v}
        return label + (f" {json.dumps(extra, sort_keys=True)}" if extra else "")

    def phase(self, name: str) -> pd.DataFrame:
        if "phase" not in self.rows:
            return self.rows.iloc[0:0]
        return self.rows[self.rows["phase"] == name]


def load_run(path: Path) -> RunData:
    """Read a run directory, finished or in progress."""
    path = Path(path)
    config_path = path / "config.json"
    if not config_path.exists():
        raise FileNotFoundError(f"{path} holds no run (config.json is missing)")
    summary_path = path / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else None
    rows = pd.DataFrame(read_rows(path / "metrics.jsonl"))
    return RunData(path, json.loads(config_path.read_text()), rows, summary)


def group_runs(runs: Sequence[RunData]) -> dict[str, list[RunData]]:
    groups: dict[str, list[RunData]] = {}
    for run in runs:
        groups.setdefault(run.group, []).append(run)
    return groups


def curve(frame: pd.DataFrame, column: str) -> tuple[np.ndarray, np.ndarray]:
    """Return (env steps, mean of ``column`` over the rows at each env-step count)."""
    if len(frame) == 0 or column not in frame:
        return np.zeros(0), np.zeros(0)
    means = frame.groupby("env_steps")[column].mean()
    return means.index.to_numpy(float), means.to_numpy(float)


def seed_band(curves: Sequence[tuple[np.ndarray, np.ndarray]]):
    """Return (grid, mean, low, high) over seeds' curves, on the range they all cover."""
    curves = [(x, y) for x, y in curves if len(x)]
    if not curves:
        return (np.zeros(0),) * 4
    if len(curves) == 1:
        x, y = curves[0]
        return x, y, y, y
    start = max(x[0] for x, _ in curves)
    stop = min(x[-1] for x, _ in curves)
    grid = np.linspace(start, stop, _GRID_POINTS) if stop > start else np.array([stop])
    ys = np.stack([np.interp(grid, x, y) for x, y in curves])
    return grid, ys.mean(0), ys.min(0), ys.max(0)


def _draw_group(ax, runs: Sequence[RunData], phase: str, column: str, label: str, color) -> None:
    grid, mean, low, high = seed_band([curve(r.phase(phase), column) for r in runs])
    if not len(grid):
        return
    seeds = f" ({len(runs)} seeds)" if len(runs) > 1 else ""
    ax.plot(grid, mean, color=color, label=label + seeds, marker="o" if len(grid) < 3 else None)
    if len(runs) > 1:
        ax.fill_between(grid, low, high, color=color, alpha=0.2, linewidth=0)


def _legend(fig: Figure, ax) -> None:
    """One legend under the figure: group labels can be long (agent overrides)."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:  # nothing is drawn yet in a run that just began
        labels = [textwrap.shorten(label, 160, placeholder=" ...") for label in labels]
        fig.legend(handles, labels, loc="outside lower center", fontsize=8)


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def returns_figure(runs: Sequence[RunData]) -> Figure:
    """Training and evaluation return against env steps, one line per group."""
    groups = group_runs(runs)
    fig = _figure(12, 4.2 + 0.25 * len(groups))
    axes = fig.subplots(1, 2, sharey=True)
    for k, (label, members) in enumerate(groups.items()):
        color = f"C{k % 10}"
        _draw_group(axes[0], members, "train", schema.RETURN, label, color)
        _draw_group(axes[1], members, "eval", schema.RETURN, label, color)
    for ax, title in zip(axes, ("training episodes (exploring)", "evaluation (deterministic)")):
        ax.set(title=f"Return, {title}", xlabel="env steps")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("episode return")
    _legend(fig, axes[1])
    return fig


def constraint_names(runs: Sequence[RunData]) -> list[str]:
    names: dict[str, None] = {}
    for run in runs:
        for column in run.rows.columns:
            if str(column).startswith(schema.VIOLATION_RATE):
                names[column[len(schema.VIOLATION_RATE):]] = None
    return list(names)


def violations_figure(runs: Sequence[RunData]) -> Figure | None:
    """Per-step violation rate of each constraint over training; None without constraints."""
    names = constraint_names(runs)
    if not names:
        return None
    cols = min(3, len(names))
    rows = -(-len(names) // cols)
    groups = group_runs(runs)
    fig = _figure(max(4.2 * cols, 8), 3.4 * rows + 0.25 * len(groups))
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax, name in zip(axes.flat, names):
        for k, (label, members) in enumerate(groups.items()):
            _draw_group(ax, members, "train", schema.VIOLATION_RATE + name, label, f"C{k % 10}")
        ax.set(title=name, xlabel="env steps", ylabel="violations per step")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(names):]:
        ax.set_visible(False)
    _legend(fig, axes.flat[0])
    return fig


def regime_runs(runs: Sequence[RunData]) -> list[RunData]:
    """Return the runs evaluated per regime (their evaluation rows carry ``train_regime``)."""
    return [run for run in runs if TRAIN_REGIME in run.phase("eval")]


def regimes_figure(runs: Sequence[RunData]) -> Figure | None:
    """The forgetting figure: evaluation return on each regime over training, switches marked.

    One panel per group of runs with regimes: one line per regime evaluated
    (mean over seeds, range shaded) and a dashed line at each switch of the
    training regime (of the group's first run), labelled with the regime that
    follows. None when no run has regimes.
    """
    groups = group_runs(regime_runs(runs))
    if not groups:
        return None
    fig = _figure(12, 3.6 * len(groups) + 0.4)
    axes = fig.subplots(len(groups), 1, squeeze=False)[:, 0]
    for ax, (label, members) in zip(axes, groups.items()):
        regimes = sorted({int(r) for run in members for r in run.phase("eval")[schema.REGIME].dropna()})
        for regime in regimes:
            curves = [curve(run.phase("eval")[run.phase("eval")[schema.REGIME] == regime], schema.RETURN)
                      for run in members]
            grid, mean, low, high = seed_band(curves)
            ax.plot(grid, mean, color=f"C{regime % 10}", label=f"regime {regime}",
                    marker="o" if len(grid) < 3 else None)
            if len(members) > 1:
                ax.fill_between(grid, low, high, color=f"C{regime % 10}", alpha=0.2, linewidth=0)
        train = members[0].phase("train")
        for step, regime in (switch_times(train) if schema.REGIME in train else []):
            ax.axvline(step, color="0.4", linestyle="--", linewidth=1)
            ax.annotate(f"regime {regime}", (step, 1.0), xycoords=("data", "axes fraction"),
                        xytext=(3, -3), textcoords="offset points", fontsize=8, ha="left",
                        va="top", color="0.3")
        seeds = f" ({len(members)} seeds)" if len(members) > 1 else ""
        ax.set(title=textwrap.shorten(label + seeds, 140, placeholder=" ..."), xlabel="env steps",
               ylabel="evaluation return")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig


def png_base64(fig: Figure) -> str:
    """Render ``fig`` as PNG, base64 encoded."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    return base64.b64encode(buffer.getvalue()).decode("ascii")
