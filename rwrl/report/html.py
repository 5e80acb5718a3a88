"""The HTML report of one or more runs: figures (PNG, base64-embedded), tables, configs.

Everything read from a run's files (config and summary values, run names,
column names, metric values) is escaped before it enters the page, so a
crafted or odd config (``"steps": "<script>..."``) shows as text.

One self-contained file, readable offline and attachable to an email: the
learning curves of training and evaluation return, the per-constraint
violation rates over training, for runs with a ``regime_spec`` the return
on each regime with the switches marked and the continual metrics
(``rwrl.metrics.continual``), the evaluators of :mod:`rwrl.metrics` per run
and across seeds, and each run's resolved config. Works on runs in progress.
"""

from __future__ import annotations

import datetime
import html
import json
import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from rwrl.storage.atomic_files import atomic_write_bytes
from rwrl.metrics import across_seeds, evaluate_episodes
from rwrl.metrics.continual import evaluate_continual
from rwrl.report.plots import (RunData, group_runs, load_run, png_base64, regimes_figure,
                               returns_figure, violations_figure)

#: the pages' common style sheet (the sweep page adds to it).
PAGE_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
img { max-width: 100%; }
pre { background: #f6f6f6; padding: 0.8em; overflow-x: auto; font-size: 0.85em; }
.progress { color: #a60; }
"""


def run_evaluators(run: RunData, window: int) -> dict[str, float]:
    """Every evaluator of the run's training episodes, plus evaluation and speed figures."""
    result: dict[str, float] = {}
    train = run.phase("train")
    if len(train):
        result.update(evaluate_episodes(train.reset_index(drop=True), window))
    evals = run.phase("eval")
    if len(evals):
        per_eval = evals.groupby("env_steps")["return"].mean()
        result["eval_return/last"] = float(per_eval.iloc[-1])
        result["eval_return/best"] = float(per_eval.max())
        result.update(evaluate_continual(evals))  # {} unless the run has regimes
    if run.summary is not None:
        result["update_ms"] = run.summary.get("update_ms", math.nan)
        result["outside_learner_share"] = run.summary.get("outside_learner_share", math.nan)
        result["env_steps_per_s"] = run.summary.get("env_steps_per_s", math.nan)
    return result


def _fmt(value: Any) -> str:
    """Return ``value`` as escaped HTML text (floats to 4 significant digits, NaN as n/a)."""
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return "n/a"
        return f"{value:.4g}"
    return html.escape(str(value))


def _table(header: Sequence[Any], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f'<table class="evaluators"><tr>{head}</tr>{body}</table>'


def evaluators_section(runs: Sequence[RunData], window: int) -> str:
    """One table per group: evaluators by row, seeds by column, then mean and std."""
    parts = ["<h2>Evaluators</h2>",
             f"<p>Training episodes, rolling window {window} episodes (fewer when a run "
             "has fewer); eval_return from the deterministic evaluations.</p>"]
    for label, members in group_runs(runs).items():
        results = [run_evaluators(run, window) for run in members]
        keys = list(dict.fromkeys(k for r in results for k in r))
        header = ["evaluator", *(run.name for run in members)]
        rows = [[k, *(r.get(k, math.nan) for r in results)] for k in keys]
        if len(members) > 1 and keys:
            spread = across_seeds(results)
            header += ["mean", "std"]
            rows = [[*row, spread[row[0]]["mean"], spread[row[0]]["std"]] for row in rows]
        parts.append(f"<h3>{html.escape(label)}</h3>")
        parts.append(_table(header, rows) if keys else "<p>No episode finished yet.</p>")
    return "\n".join(parts)


def eval_returns_section(runs: Sequence[RunData]) -> str:
    """One table per group: mean evaluation return at each evaluation, seeds by column."""
    parts = ["<h2>Evaluation returns</h2>"]
    for label, members in group_runs(runs).items():
        curves = []
        for run in members:
            evals = run.phase("eval")
            curves.append(evals.groupby("env_steps")["return"].mean() if len(evals) else None)
        steps = sorted({int(s) for c in curves if c is not None for s in c.index})
        rows = [[s, *(c.get(s, math.nan) if c is not None else math.nan for c in curves)]
                for s in steps]
        parts.append(f"<h3>{html.escape(label)}</h3>")
        parts.append(_table(["env steps", *(r.name for r in members)], rows) if rows
                     else "<p>No evaluation yet.</p>")
    return "\n".join(parts)


def _status(run: RunData) -> str:
    run_config = run.config.get("run", {}) if isinstance(run.config, dict) else {}
    total = _fmt(run_config.get("steps", "?") if isinstance(run_config, dict) else "?")
    if run.summary is not None:
        counters = run.summary.get("counters", {}) if isinstance(run.summary, dict) else {}
        done = counters.get("env_steps", "?") if isinstance(counters, dict) else "?"
        return f"finished, {_fmt(done)} env steps"
    done = int(run.rows["env_steps"].max()) if "env_steps" in run.rows and len(run.rows) else 0
    return f'<span class="progress">in progress, {_fmt(done)} of {total} env steps</span>'


def runs_section(runs: Sequence[RunData]) -> str:
    items = "".join(f"<li><code>{html.escape(str(r.path))}</code>: {_status(r)}</li>"
                    for r in runs)
    return f"<h2>Runs</h2><ul>{items}</ul>"


def figures_section(runs: Sequence[RunData]) -> str:
    parts = ["<h2>Learning curves</h2>",
             f'<img class="figure" alt="returns" src="data:image/png;base64,'
             f'{png_base64(returns_figure(runs))}">']
    violations = violations_figure(runs)
    parts.append("<h2>Constraint violations over training</h2>")
    if violations is None:
        parts.append("<p>The task reports no constraints.</p>")
    else:
        parts.append(f'<img class="figure" alt="violations" src="data:image/png;base64,'
                     f'{png_base64(violations)}">')
    regimes = regimes_figure(runs)
    if regimes is not None:
        parts.append("<h2>Return on each regime over training</h2>"
                     "<p>Each evaluation runs every regime; dashed lines mark the switches of "
                     "the training regime. Forgetting: a regime's return falling after its "
                     "training period (continual/* in the evaluators).</p>")
        parts.append(f'<img class="figure" alt="regimes" src="data:image/png;base64,'
                     f'{png_base64(regimes)}">')
    return "\n".join(parts)


def config_section(runs: Sequence[RunData]) -> str:
    parts = ["<h2>Configuration</h2>"]
    for run in runs:
        text = html.escape(json.dumps(run.config, indent=2, sort_keys=True), quote=False)
        parts.append(f"<details><summary>{html.escape(run.name)}</summary><pre>{text}</pre></details>")
    return "\n".join(parts)


def render_report(runs: Sequence[RunData], window: int = 101) -> str:
    """Return the report of ``runs`` as one HTML page."""
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    body = "\n".join([runs_section(runs), figures_section(runs), evaluators_section(runs, window),
                      eval_returns_section(runs), config_section(runs)])
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>rwrl report</title>"
            f"<style>{PAGE_STYLE}</style></head><body><h1>rwrl report</h1>"
            f"<p>Generated {now}.</p>{body}</body></html>\n")


def write_report(run_dirs: Sequence[Path], out: Path, window: int = 101) -> Path:
    """Write the report of the runs in ``run_dirs`` to ``out`` (atomically); return ``out``."""
    if not run_dirs:
        raise ValueError("run_dirs: give at least one run directory")
    runs = [load_run(Path(p)) for p in run_dirs]
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out, render_report(runs, window).encode("utf-8"))
    return out
