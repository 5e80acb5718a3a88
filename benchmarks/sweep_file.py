"""Run one sweep file resumably from a benchmark script, and read its final evaluations.

Shared by the benchmark drivers that are sweeps plus a claim table
(``paper_sweeps.py``, ``offline.py``, ``robust.py``, ``constrained.py``): the sweep is an
ordinary ``rwrl sweep`` into its directory (run the same command again to
continue it), and the tables are built from the finished runs' last
evaluations.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np

import results_page


def run_sweep_file(spec: Path, sweep_dir: Path, overrides: Any, workers: int = 1,
                   progress: bool = True, keep: Callable[[Any], bool] | None = None,
                   prepare: Callable[[Path], None] | None = None,
                   report: bool = True, archive: Path | None = None) -> dict[str, int]:
    """Run (or continue) the sweep of ``spec`` in ``sweep_dir``; return its status counts.

    Args:
      overrides: ``rwrl.experiments.sweeps.plan.Overrides`` (scale, seeds, steps, envs, agents).
      keep: a filter of the planned runs (``PlannedRun -> bool``); None keeps all.
      prepare: called with ``sweep_dir`` once its plan is recorded, before any run starts.
      report: write ``sweep_dir/report.html`` afterwards.
      archive: restore finished runs from this ``rwrl.experiments.sweeps.archive`` directory
        first and archive each run as it finishes (commit it to continue on another machine).
    """
    import dataclasses
    from rwrl.experiments.sweeps.plan import load_plan
    from rwrl.experiments.sweeps.run import record_plan, run_sweep
    plan = load_plan(spec, overrides)
    if keep is not None:
        runs = tuple(r for r in plan.runs if keep(r))
        plan = dataclasses.replace(plan, runs=runs,
                                   levels=tuple(n for n in plan.levels if any(r.level == n for r in runs)))
    (sweep_dir / "runs").mkdir(parents=True, exist_ok=True)
    record_plan(sweep_dir, plan)
    if prepare is not None:
        prepare(sweep_dir)
    counts = run_sweep(plan, sweep_dir, workers=workers, progress=progress, archive=archive)
    print(f"{plan.name}: {counts}", flush=True)
    if report:
        from rwrl.report.sweep_report import write_sweep_report
        write_sweep_report(sweep_dir)
    return counts


def restore(archive: Path | None, sweep_dir: Path) -> None:
    """Before a summary: bring ``archive``'s finished runs into ``sweep_dir`` (None: nothing)."""
    if archive is not None:
        from rwrl.experiments.sweeps.archive import restore as restore_runs
        restored = restore_runs(archive, sweep_dir)
        if restored:
            print(f"restored {restored} finished runs from {archive} into {sweep_dir}", flush=True)


ARCHIVE_HELP = ("an archive of finished runs (config, summary, compressed metrics; no checkpoints): "
                "restored into ROOT first, each run archived as it finishes; commit it to continue "
                "the benchmark from a fresh checkout")


def claim_parser(description: str, root: Path, out: Path) -> argparse.ArgumentParser:
    """The arguments of a sweep-plus-claim-table benchmark (``robust.py``, ``constrained.py``).

    ``--root`` (default ``root``), ``--out`` (default ``out``), ``--scale``, ``--seeds``,
    ``--workers``, ``--evaluations``, ``--summarize-only`` and ``--archive``; a script adds its own.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--root", type=Path, default=root)
    parser.add_argument("--out", type=Path, default=out)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--evaluations", type=int, default=2, help="last evaluations scored")
    parser.add_argument("--summarize-only", action="store_true")
    parser.add_argument("--archive", type=Path, default=None, help=ARCHIVE_HELP)
    return parser


def run_or_restore(spec: Path, args: Any, overrides: Any) -> int:
    """``claim_parser``'s ``args``: run (or continue) ``spec``'s sweep in ``args.root``, or with
    ``--summarize-only`` only restore ``args.archive``'s finished runs there.

    Returns the runs of the plan not done (0 with ``--summarize-only``): the
    scripts exit 1 while it is not 0, so that no caller takes an unfinished
    sweep for a finished one.
    """
    if args.summarize_only:
        restore(args.archive, args.root)
        return 0
    from rwrl.experiments.sweeps.status import not_done
    return say_not_done(not_done(run_sweep_file(spec, args.root, overrides, workers=args.workers,
                                                archive=args.archive)))


def claim_main(spec: Path, description: str, root: Path, out: Path, summarize: Callable[[Any], Any],
               argv: list[str] | None = None, envs: bool = False) -> int:
    """The ``main`` of a sweep-plus-claim-table benchmark: parse ``claim_parser``'s arguments
    (and ``--envs`` with ``envs``), run or restore ``spec``'s sweep, ``summarize(args)``; return 1
    while runs of the plan are not done, else 0."""
    from rwrl.experiments.sweeps.plan import Overrides
    parser = claim_parser(description, root, out)
    if envs:
        parser.add_argument("--envs", default="", help="comma-separated envs instead of the file's")
    args = parser.parse_args(argv)
    chosen = tuple(e for e in getattr(args, "envs", "").split(",") if e) or None
    left = run_or_restore(spec, args, Overrides(scale=args.scale, seeds=args.seeds, envs=chosen))
    summarize(args)
    return 1 if left else 0


def say_not_done(left: int) -> int:
    """Print, when ``left`` runs are not done, that the same command continues them; return ``left``."""
    if left:
        print(f"{left} runs are not done: run the same command again to continue them", file=sys.stderr)
    return left


def last_evaluations(data: Any, evaluations: int) -> "Any":
    """Return the eval rows of each finished run's last ``evaluations`` evaluations.

    ``data`` is ``rwrl.report.aggregate.load_sweep``'s; the rows keep every
    column of the episode table (return, violation rates, perturbed parameters)
    plus the run's agent, level and seed.
    """
    done = data.done()
    rows = data.episodes[(data.episodes["phase"] == "eval")
                         & data.episodes["run_id"].isin(done["run_id"])]
    done = done[["run_id", *(c for c in ("agent", "env", "level", "seed") if c not in rows)]]
    if rows.empty:
        return rows.merge(done, on="run_id")
    steps = rows.groupby("run_id")["env_steps"].transform(
        lambda s: s.isin(np.sort(s.unique())[-evaluations:]))
    return rows[steps.astype(bool)].merge(done, on="run_id")


def format_estimate(e: dict) -> str:
    """``mean [low, high] n=N`` of ``rwrl.report.aggregate.estimate``'s dict (no interval below 2 seeds)."""
    import math
    interval = "" if math.isnan(e["ci_low"]) else f" [{e['ci_low']:.0f}, {e['ci_high']:.0f}]"
    return f"{e['mean']:.0f}{interval} n={e['n_seeds']}"


def scale_of(sweep_dir: Path) -> str:
    """``steps per run [...], seeds [...]`` as recorded in a sweep directory's plan."""
    from rwrl.metrics.sweep_results import read_plan
    runs = read_plan(sweep_dir)["runs"]
    steps = sorted({r["config"]["steps"] for r in runs})
    seeds = sorted({r["config"]["seed"] for r in runs})
    return f"steps per run {steps}, seeds {seeds}"


def _strict(value: Any) -> Any:
    """``value`` with every NaN or infinite float as None (JSON has no NaN: strict readers refuse it)."""
    import math
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(v) for v in value]
    if isinstance(value, np.generic):
        return _strict(value.item())
    return value


def write_tables(out: Path, name: str, lines: list[str], table: Any) -> Path:
    """Write ``OUT/<name>.md`` (``lines``) and ``OUT/<name>.json`` (``table``), atomically; print the md.

    The JSON is strict: a missing figure (NaN, e.g. an interval over one seed) is ``null``.
    The notes written by hand below ``results_page.NOTES_MARKER`` in an existing md are kept.
    Returns the md's path.
    """
    import json
    from rwrl.storage.atomic_files import atomic_write_bytes
    out.mkdir(parents=True, exist_ok=True)
    path = results_page.write_page(out / f"{name}.md", "\n".join(lines) + "\n")
    text = json.dumps(_strict(table), indent=1, sort_keys=True, allow_nan=False)
    atomic_write_bytes(out / f"{name}.json", (text + "\n").encode())
    print(path.read_text())
    return path
