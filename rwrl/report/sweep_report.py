"""The HTML report of a sweep directory (``rwrl report SWEEP_DIR``): the paper's figure set.

One self-contained page (PNG figures base64-embedded, readable offline):

* the status line: runs done / failed / running / partial / pending, each
  failure's first line;
* per dimension of the sweep (its [[levels]], each [axes] path): final return
  against magnitude, one line per agent and panel per task, mean and IQM over
  the finished seeds with 95 % bootstrap intervals (:mod:`rwrl.report.aggregate`),
  and the numbers as a table; easy / medium / hard bars when the dimension is
  the combined challenges; violations per constraint when it is safety_coeff;
* learning curves in a grid (rows: settings, columns: tasks);
* the evaluators per setting, mean ± std over the finished seeds.

Beside the page, ``<page stem>-final-returns.csv`` holds the aggregate table
(dimension, magnitude, agent, env, n seeds, mean, CI, IQM) for benchmarks.
Everything read from the sweep's files is escaped before it enters the page.
"""

from __future__ import annotations

import datetime
import html
import json
import math
from pathlib import Path
from typing import Any, Sequence

from rwrl.storage.atomic_files import atomic_write_bytes
from rwrl.metrics.sweep_results import PLAN_FILE
from rwrl.report import aggregate as agg
from rwrl.report import sweep_plots
from rwrl.report.html import PAGE_STYLE
from rwrl.report.plots import png_base64

REPORT_FILE = "report.html"
CSV_SUFFIX = "-final-returns.csv"

_STYLE = PAGE_STYLE + """
body { max-width: 1400px; }
table { font-size: 0.85em; }
.status { font-size: 1.05em; }
.failed { color: #b00; }
.note { color: #555; font-size: 0.9em; }
"""


def is_sweep_dir(path: Path) -> bool:
    """Return whether ``path`` is a sweep directory (it holds sweep.json)."""
    return (Path(path) / PLAN_FILE).is_file()


def _fmt(value: Any) -> str:
    """Return ``value`` as escaped HTML (floats to 4 significant digits, NaN as n/a)."""
    if value is None:
        return "n/a"
    if isinstance(value, tuple):  # (mean, std)
        return f"{_fmt(value[0])} ± {_fmt(value[1])}"
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.4g}"
    return html.escape(str(value))


def _table(header: Sequence[Any], rows: Sequence[Sequence[Any]], css: str = "") -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f'<table class="{css}"><tr>{head}</tr>{body}</table>'


def _image(fig, alt: str) -> str:
    return (f'<img class="figure" alt="{html.escape(alt)}" '
            f'src="data:image/png;base64,{png_base64(fig)}">')


def status_section(data: agg.SweepData) -> str:
    counts = agg.status_counts(data)
    line = " · ".join(f"{name} {count}" for name, count in counts.items())
    parts = [f'<p class="status"><b>{len(data.runs)} runs:</b> {html.escape(line)}</p>']
    failed = data.runs[data.runs["status"] == "failed"]
    if len(failed):
        items = "".join(f"<li><code>{html.escape(str(r.run_id))}</code>: "
                        f"{html.escape(str(r.error or '(no message)'))}</li>"
                        for r in failed.itertuples())
        parts.append(f'<ul class="failed">{items}</ul>')
    if counts["done"] < len(data.runs):
        parts.append('<p class="note">Final returns, intervals and evaluators use the finished '
                     'runs only (n seeds says how many); learning curves show every run.</p>')
    return "\n".join(parts)


def _levels_table(dim: agg.Dimension) -> str:
    rows = [[name, json.dumps(dict(dim.settings.get(name, {})), sort_keys=True) or "{}"]
            for name in dim.magnitudes]
    return _table(["level", "settings"], rows, "levels")


def _aggregate_rows(table) -> tuple[list[str], list[list[Any]]]:
    others = [c for c in table.columns if c not in (
        "dimension", "magnitude", "magnitude_index", "agent", "env", "n_seeds", "mean",
        "ci_low", "ci_high", "iqm", "iqm_ci_low", "iqm_ci_high")]
    header = ["magnitude", "agent", "env", *others, "n seeds", "mean", "95% CI", "IQM",
              "IQM 95% CI"]
    rows = [[r["magnitude"], r["agent"], r["env"], *(r[o] for o in others), r["n_seeds"],
             r["mean"], f"{_fmt(r['ci_low'])} to {_fmt(r['ci_high'])}", r["iqm"],
             f"{_fmt(r['iqm_ci_low'])} to {_fmt(r['iqm_ci_high'])}"]
            for _, r in table.iterrows()]
    return header, rows


def dimension_section(data: agg.SweepData, dim: agg.Dimension) -> str:
    """Final return against one dimension's magnitude: figure, bars or violations, table."""
    title = "the levels" if dim.name == agg.LEVELS else dim.name
    parts = [f'<h2 class="dimension">Final return against {html.escape(title)}</h2>']
    if dim.name == agg.LEVELS:
        parts.append(_levels_table(dim))
    table = agg.aggregate(data, dim)
    keys = agg.line_keys(data, dim)
    parts.append(_image(sweep_plots.dimension_figure(table, dim, keys), f"final return: {title}"))
    if dim.is_combined:
        parts.append("<h3>Combined challenges: bars per agent and task</h3>")
        parts.append(_image(sweep_plots.bars_figure(table, dim, keys), f"bars: {title}"))
    if dim.is_safety:
        parts.append(f"<h3>Violations per constraint against {html.escape(title)}</h3>"
                     '<p class="note">Violations per episode at each run\'s last evaluation, '
                     "mean over finished seeds with its 95% bootstrap interval.</p>")
        figure = sweep_plots.violations_figure(data, dim)
        parts.append(_image(figure, "violations") if figure is not None
                     else "<p>No run reports constraint violations yet.</p>")
    header, rows = _aggregate_rows(table)
    parts.append(_table(header, rows, "aggregate"))
    return "\n".join(parts)


def curves_section(data: agg.SweepData) -> str:
    parts = ["<h2>Learning curves</h2>",
             '<p class="note">Evaluation return against env steps; rows: settings, columns: '
             "tasks; mean over seeds, band from the lowest to the highest seed.</p>"]
    figure = sweep_plots.curves_figure(data)
    parts.append(_image(figure, "learning curves") if figure is not None
                 else "<p>No evaluation yet.</p>")
    return "\n".join(parts)


def evaluators_section(data: agg.SweepData) -> str:
    header, rows = agg.evaluators_table(data)
    return "\n".join([
        "<h2>Evaluators</h2>",
        '<p class="note">Per setting, mean ± std (population, as published) over the finished '
        "seeds, from the evaluation episodes: final return (last evaluation), convergence "
        "(counted in evaluation episodes), regret, instability, divergences, and violations per episode of "
        "each constraint at the last evaluation.</p>",
        _table(header, rows, "evaluators")])


def render_sweep_report(data: agg.SweepData, csv_name: str = "") -> str:
    """Return the report of a loaded sweep as one HTML page."""
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    name = html.escape(str(data.plan.get("name", "?")))
    intro = [f"<p>{html.escape(str(data.plan.get('description', '')))}</p>",
             f"<p class='note'>Sweep file <code>{html.escape(str(data.plan.get('source', '')))}"
             f"</code>; directory <code>{html.escape(str(data.path))}</code>; generated {now}."
             + (f" Aggregate table: <code>{html.escape(csv_name)}</code>." if csv_name else "")
             + "</p>",
             status_section(data), f'<p class="note">{html.escape(agg.METHOD_NOTE)}</p>']
    if data.dimensions:
        body = [dimension_section(data, dim) for dim in data.dimensions]
    else:
        body = ["<p>The sweep varies no setting (one point).</p>"]
    body += [curves_section(data), evaluators_section(data)]
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>rwrl sweep {name}</title>"
            f"<style>{_STYLE}</style></head><body><h1>rwrl sweep report: {name}</h1>"
            + "\n".join(intro + body) + "</body></html>\n")


def write_sweep_report(sweep_dir: Path, out: Path | None = None) -> tuple[Path, Path]:
    """Write the page (default ``SWEEP_DIR/report.html``) and its CSV beside it, atomically.

    A bandit sweep's page is ``bandit_report``'s (its CSV: the regret slopes).

    Returns:
      (page path, CSV path).
    """
    from rwrl.report.bandit_report import is_bandit_sweep, write_bandit_report
    if is_bandit_sweep(sweep_dir):  # its own figures: regret against t, slopes
        page, csv, _ = write_bandit_report(Path(sweep_dir), out)
        return page, csv
    data = agg.load_sweep(Path(sweep_dir))
    out = Path(out) if out is not None else Path(sweep_dir) / REPORT_FILE
    out.parent.mkdir(parents=True, exist_ok=True)
    csv = out.with_name(out.stem + CSV_SUFFIX)
    atomic_write_bytes(csv, agg.aggregate_all(data).to_csv(index=False).encode("utf-8"))
    atomic_write_bytes(out, render_sweep_report(data, csv.name).encode("utf-8"))
    return out, csv


__all__ = ["is_sweep_dir", "render_sweep_report", "write_sweep_report"]
