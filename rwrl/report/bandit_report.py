"""The report of a bandit sweep (``rwrl report SWEEP_DIR`` on a ``kind = "bandit"`` sweep).

Writes, atomically:

* ``SWEEP_DIR/report.html``: the status line, the log-log regret figure (mean over seeds,
  95 % bootstrap bands, the fitted slope and its interval in each legend entry), R(T)
  against T when the sweep has several horizons, and the table;
* ``report-regret.png`` (and ``report-horizons.png``) beside it: the figures as files;
* ``report-regret-slopes.csv`` beside it: one row per line (``fit`` "t": one run's R(t)
  over t in [sqrt(T), T]; ``fit`` "T": the final regret across horizons) with the final
  regret's mean and interval, the slope and its interval (:mod:`rwrl.report.bandit_plots`).
"""

from __future__ import annotations

import base64
import datetime
import html
import io
import math
from pathlib import Path
from typing import Any

from rwrl.metrics.bandit_results import is_bandit_plan, read_bandit_sweep
from rwrl.metrics.sweep_results import PLAN_FILE, read_plan
from rwrl.report import bandit_plots
from rwrl.report.html import PAGE_STYLE
from rwrl.report.sweep_report import REPORT_FILE, _table
from rwrl.storage.atomic_files import atomic_write_bytes

CSV_SUFFIX = "-regret-slopes.csv"
REGRET_PNG_SUFFIX = "-regret.png"
HORIZONS_PNG_SUFFIX = "-horizons.png"
#: the CSV's columns.
COLUMNS = ("fit", "env", "policy", "params", "horizon", "n_seeds", "final_regret_mean",
           "final_regret_ci_low", "final_regret_ci_high", "slope", "slope_ci_low",
           "slope_ci_high", "fit_from", "fit_to")


def is_bandit_sweep(path: Path) -> bool:
    """Return whether ``path`` is a bandit sweep directory (its sweep.json says kind "bandit")."""
    if not (Path(path) / PLAN_FILE).is_file():
        return False
    try:
        return is_bandit_plan(read_plan(path))
    except (FileNotFoundError, ValueError):
        return False


def _image(data: bytes, alt: str) -> str:
    return (f'<img class="figure" alt="{html.escape(alt)}" '
            f'src="data:image/png;base64,{base64.b64encode(data).decode("ascii")}">')


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    return buffer.getvalue()


def sweep_statistics(regret) -> tuple[list, list, list[dict[str, Any]]]:
    """Return (lines, horizon groups, CSV rows) of a bandit sweep's regret rows."""
    lines, rows = [], []
    for values, frame in regret.groupby(list(bandit_plots.LINE_KEYS), sort=False):
        key = dict(zip(bandit_plots.LINE_KEYS, values))
        key["horizon"] = int(key["horizon"])
        stats = bandit_plots.line_stats(frame, key["horizon"])
        lines.append((key, stats))
        final_low, final_high = _final_interval(stats["final"])
        rows.append({"fit": "t", **key, "n_seeds": stats["n_seeds"],
                     "final_regret_mean": float(stats["final"].mean()),
                     "final_regret_ci_low": final_low, "final_regret_ci_high": final_high,
                     "slope": stats["slope"], "slope_ci_low": stats["slope_low"],
                     "slope_ci_high": stats["slope_high"], "fit_from": stats["fit_from"],
                     "fit_to": stats["fit_to"]})
    groups = []
    by_group: dict[tuple, dict[int, Any]] = {}
    for key, stats in lines:
        by_group.setdefault((key["env"], key["policy"], key["params"]), {})[key["horizon"]] = \
            stats["final"]
    for (env, policy, params), finals in by_group.items():
        if len(finals) < 2:
            continue
        stats = bandit_plots.horizon_stats(finals)
        key = {"env": env, "policy": policy, "params": params}
        groups.append((key, stats))
        rows.append({"fit": "T", **key, "horizon": None, "n_seeds": stats["n_seeds"],
                     "final_regret_mean": None, "final_regret_ci_low": None,
                     "final_regret_ci_high": None, "slope": stats["slope"],
                     "slope_ci_low": stats["slope_low"], "slope_ci_high": stats["slope_high"],
                     "fit_from": int(min(finals)), "fit_to": int(max(finals))})
    return lines, groups, rows


def _final_interval(finals) -> tuple[float, float]:
    import numpy as np
    if len(finals) < 2:
        return math.nan, math.nan
    counts = bandit_plots._resample_counts(len(finals), bandit_plots.RESAMPLES,
                                           bandit_plots.BOOTSTRAP_SEED)
    low, high = bandit_plots._percentiles(counts @ np.asarray(finals, float) / len(finals))
    return float(low), float(high)


def _status(runs) -> str:
    counts = runs["status"].value_counts().to_dict() if len(runs) else {}
    line = " · ".join(f"{name} {counts.get(name, 0)}"
                      for name in ("done", "failed", "running", "partial", "pending", "broken"))
    parts = [f'<p class="status"><b>{len(runs)} runs:</b> {html.escape(line)}</p>']
    bad = runs[runs["status"].isin(["failed", "broken"])] if len(runs) else runs
    if len(bad):
        items = "".join(f"<li><code>{html.escape(str(r.run_id))}</code>: "
                        f"{html.escape(str(r.error or '(no message)'))}</li>"
                        for r in bad.itertuples())
        parts.append(f'<ul class="failed">{items}</ul>')
    return "\n".join(parts)


def write_bandit_report(sweep_dir: Path, out: Path | None = None) -> tuple[Path, Path, list[dict]]:
    """Write the page, its figures and its CSV (module docstring).

    Returns:
      (page path, CSV path, the CSV's rows).
    """
    import pandas as pd
    plan, runs, regret = read_bandit_sweep(Path(sweep_dir))
    out = Path(out) if out is not None else Path(sweep_dir) / REPORT_FILE
    out.parent.mkdir(parents=True, exist_ok=True)
    lines, groups, rows = sweep_statistics(regret) if len(regret) else ([], [], [])
    csv = out.with_name(out.stem + CSV_SUFFIX)
    atomic_write_bytes(csv, pd.DataFrame(rows, columns=list(COLUMNS)).to_csv(index=False).encode())
    name = html.escape(str(plan.get("name", "?")))
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    body = [f"<p>{html.escape(str(plan.get('description', '')))}</p>",
            f"<p class='note'>Bandit sweep file <code>{html.escape(str(plan.get('source', '')))}"
            f"</code>; directory <code>{html.escape(str(sweep_dir))}</code>; generated {now}. "
            f"Table: <code>{html.escape(csv.name)}</code>.</p>", _status(runs),
            f'<p class="note">{html.escape(bandit_plots.METHOD_NOTE)}</p>']
    if lines:
        data = _png(bandit_plots.regret_figure(lines))
        atomic_write_bytes(out.with_name(out.stem + REGRET_PNG_SUFFIX), data)
        body += ["<h2>Regret against t (log-log)</h2>", _image(data, "regret against t")]
    else:
        body.append("<p>No run has finished yet.</p>")
    if groups:
        data = _png(bandit_plots.horizon_figure(groups))
        atomic_write_bytes(out.with_name(out.stem + HORIZONS_PNG_SUFFIX), data)
        body += ["<h2>Final regret against the horizon T (log-log)</h2>",
                 _image(data, "final regret against the horizon")]
    if rows:
        header = ["fit", "env", "policy", "params", "T", "seeds", "final regret", "95% CI",
                  "slope", "95% CI", "fit over"]
        table = [[r["fit"], r["env"], r["policy"], r["params"], r["horizon"], r["n_seeds"],
                  r["final_regret_mean"],
                  f"{_num(r['final_regret_ci_low'])} to {_num(r['final_regret_ci_high'])}",
                  r["slope"], f"{_num(r['slope_ci_low'])} to {_num(r['slope_ci_high'])}",
                  f"{r['fit_from']} to {r['fit_to']}"] for r in rows]
        body.append(_table(header, table, "aggregate"))
    page = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>rwrl bandit sweep {name}"
            f"</title><style>{PAGE_STYLE}</style></head><body><h1>rwrl bandit sweep report: "
            f"{name}</h1>" + "\n".join(body) + "</body></html>\n")
    atomic_write_bytes(out, page.encode("utf-8"))
    return out, csv, rows


def _num(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:.4g}"


__all__ = ["COLUMNS", "CSV_SUFFIX", "is_bandit_sweep", "sweep_statistics", "write_bandit_report"]
