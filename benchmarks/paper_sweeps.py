"""The paper sweeps at a reduced scale: figures and a table of final returns.

Issue 8, "Reproduced here": every file of ``sweeps/paper/`` (one challenge
dimension each, levels none / easy / medium / hard; safety coefficients;
the combined challenges) run for some tasks and agents at a scale this
machine can hold, then, per dimension, task and agent, the final evaluation
return against the level with a 95 % bootstrap interval over seeds, and the
published finding checked: the return falls as the magnitude grows (and
easy > medium > hard for the combined challenges). Nothing is tuned to make
it hold. Issue 25 runs it beyond cartpole: ``--levels none,hard`` keeps
two levels of each file (the hardest against none), ``--envs`` and
``--agents`` take several.

Each file is an ordinary ``rwrl sweep`` into ``ROOT/<file name>``; the runs
are resumable (run the same command again after a kill or in a later
sitting; ``--archive DIR`` keeps each finished run in ``DIR/<file name>``
and restores it into a fresh ROOT: commit DIR to continue elsewhere). Every
file's ``none`` level is the same run (same resolved config, same seed): it
is trained once and copied into the other sweep directories
(``reuse_finished``), since training it again would repeat identical work.

Usage::

    python benchmarks/paper_sweeps.py                      # run what is missing, then summarise
    python benchmarks/paper_sweeps.py --summarize-only     # tables and figures from what finished
    python benchmarks/paper_sweeps.py --files combined,delay-actions --seeds 3
    python benchmarks/paper_sweeps.py --envs walker-walk,quadruped-walk --agents d4pg,dmpo \\
        --files combined --page combined-three-domains

Writes ``OUT/paper-<page>.md`` (the table, the checks, the scale; for the safety
file, violations per constraint against the coefficient) and
``OUT/paper-<page>-<file>.png`` per finished dimension (plus
``paper-<page>-safety-violations.png``); ``<page>`` is the env for one env and
D4PG (``paper-cartpole-swingup.md``), else ``--page``. ``ROOT/<file>/report.html``
is each sweep's full report.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
from pathlib import Path
from typing import Any, Callable

import results_page
import sweep_file

REPO = Path(__file__).resolve().parents[1]
#: the order the files run in: the combined challenges first (the headline
#: finding), then the dimensions, safety last (its runs train like `none`).
ORDER = ("combined", "delay-actions", "delay-observations", "delay-rewards",
         "noise-gaussian-actions", "noise-gaussian-observations", "noise-dropped", "noise-stuck",
         "action-repetition", "dimensionality", "perturbation", "multiobj", "safety")
#: the runs-table column the table is made of: the final evaluation's task reward.
TASK_REWARD = "task_reward/final"


def reuse_finished(sweep_dir: Path, others: list[Path]) -> list[str]:
    """Copy into ``sweep_dir`` every finished run of ``others`` whose config equals a planned run's.

    ``sweep_dir`` must hold its recorded plan (``sweep.json``). Returns the
    run ids copied.
    """
    from rwrl.experiments.config import RunConfig
    from rwrl.metrics import sweep_results as results

    def key(config: dict[str, Any]) -> str:  # defaults filled in: plans recorded before a
        return json.dumps(RunConfig.from_dict(config).to_dict(), sort_keys=True)  # field existed
    plan = results.read_plan(sweep_dir)
    done: dict[str, Path] = {}
    for other in others:
        if not (other / results.PLAN_FILE).exists():
            continue
        status = results.statuses(other)
        for run in results.read_plan(other)["runs"]:
            if status.get(run["run_id"]) == "done":
                done.setdefault(key(run["config"]),
                                results.run_dir(other, run["run_id"]))
    copied = []
    for run in plan["runs"]:
        target = results.run_dir(sweep_dir, run["run_id"])
        source = done.get(key(run["config"]))
        if source is not None and not target.exists():
            tmp = target.with_name(target.name + ".copying")
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.copytree(source, tmp, ignore=shutil.ignore_patterns("checkpoints", ".lock"))
            tmp.rename(target)
            copied.append(run["run_id"])
    return copied


def run_file(name: str, args: argparse.Namespace, earlier: list[Path]) -> dict[str, int]:
    """Run one sweep file (resuming) at ``args.levels``, reusing finished identical runs of ``earlier``;
    return its status counts."""
    from rwrl.experiments.sweeps.plan import Overrides

    def reuse(sweep_dir: Path) -> None:
        copied = reuse_finished(sweep_dir, earlier)
        if copied:
            print(f"{name}: reused {len(copied)} finished identical runs: {', '.join(copied)}",
                  flush=True)
    sweep_dir = args.root / name
    keep = None if args.levels is None else (lambda run: run.level in args.levels or run.level is None)
    return sweep_file.run_sweep_file(REPO / "sweeps" / "paper" / f"{name}.toml", sweep_dir,
                                     Overrides(scale=args.scale, seeds=args.seeds, envs=args.envs,
                                               agents=args.agents),
                                     workers=args.workers, keep=keep, prepare=reuse,
                                     archive=_archive(args, name))


def _archive(args: argparse.Namespace, name: str) -> Path | None:
    return None if args.archive is None else args.archive / name


def _fmt(x: float, digits: int = 0) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def page_name(args: argparse.Namespace) -> str:
    """The page's name: the env for one env and D4PG (the issue-8 page), else ``--page``."""
    if args.page:
        return args.page
    if len(args.envs) == 1 and args.agents == ("d4pg",):
        return args.envs[0]
    raise SystemExit("--page: needed when the sweeps hold several envs or another agent than d4pg")


def summarize(args: argparse.Namespace) -> Path:
    """Write the table, the checks and one figure per finished dimension to ``args.out``."""
    from rwrl.report import aggregate as agg
    from rwrl.report import sweep_plots
    args.out.mkdir(parents=True, exist_ok=True)
    page = page_name(args)
    levels = list(args.levels or ("none", "easy", "medium", "hard"))
    command = (f"--scale {args.scale} --seeds {args.seeds} --envs {','.join(args.envs)} "
               f"--agents {','.join(args.agents)}" + (f" --levels {','.join(levels)}" if args.levels else ""))
    lines = [f"# Paper sweeps reproduced on {', '.join(args.envs)} ({', '.join(args.agents)}, reduced scale)", "",
             f"Scale: `{command}` (`python benchmarks/paper_sweeps.py`); each cell: the final "
             "evaluation's task reward (the return; under a multi-objective reward the task's own "
             "reward, not the mix), mean over seeds [95 % bootstrap interval], n seeds finished.", "",
             "| dimension | task | agent | what moves | " + " | ".join(levels) + " | falls with magnitude? |",
             "|---|---|---|---|" + "---:|" * len(levels) + "---|"]
    safety_lines: list[str] = []
    for name in ORDER:
        sweep_dir = args.root / name
        if args.summarize_only:
            sweep_file.restore(_archive(args, name), sweep_dir)
        if not (sweep_dir / "sweep.json").exists():
            continue
        data = agg.load_sweep(sweep_dir)
        data.runs[TASK_REWARD] = data.runs["run_id"].map(final_task_reward(data.episodes))
        for dim in data.dimensions:
            table = agg.aggregate(data, dim, TASK_REWARD)
            if table.empty:
                continue
            if dim.is_safety:  # the constraints are observed, not in the reward: violations
                safety_lines += _safety_rows(data, dim)
                fig = sweep_plots.violations_figure(data, dim)
                if fig is not None:
                    fig.savefig(args.out / f"paper-{page}-{name}-violations.png", dpi=90,
                                bbox_inches="tight")
            else:
                for (env, agent), line in table.groupby(["env", "agent"], sort=False):
                    cells, stats = _cells(line, _fmt)
                    order = [k for k in levels if k in cells]
                    row_cells = " | ".join(cells.get(k, "–") for k in levels)
                    lines.append(f"| {name} | {env} | {agent} | {_what(dim)} | {row_cells} | "
                                 f"{_verdict(order, stats, 'falls')} |")
            fig = sweep_plots.dimension_figure(table, dim, agg.line_keys(data, dim))
            fig.savefig(args.out / f"paper-{page}-{name}.png", dpi=90, bbox_inches="tight")
    if safety_lines:
        lines += ["", "Safety: the task reward and the violations per episode of each constraint "
                  "at the final evaluation against `safety_coeff`, from 1 (nominal limits) to the "
                  "tightest, mean over seeds [95 % bootstrap interval]. The constraints are "
                  "observed, not in the reward; the published finding is that violations rise as "
                  "the coefficient tightens.", "",
                  "| what | per coefficient | rises as it tightens? |", "|---|---|---|",
                  *safety_lines]
    path = results_page.write_page(  # keeps the notes written by hand below its marker
        args.out / f"paper-{page}.md", "\n".join(lines) + "\n")
    print(path.read_text())
    return path


def _what(dim: Any) -> str:
    """The paths a dimension moves: the axis itself, or the union of its levels' settings."""
    if dim.name != "level":
        return f"`{dim.name}`"
    paths = dict.fromkeys(p for s in dim.settings.values() for p in s)
    return ", ".join(f"`{p}`" for p in paths) or "–"


def _cells(table: Any, fmt: Callable[[float], str]) -> tuple[dict[str, str], dict[str, tuple]]:
    """Per magnitude of an aggregate table: its cell text and its (mean, ci_low, ci_high)."""
    cells, stats = {}, {}
    for _, row in table.iterrows():
        key = str(row["magnitude"])
        cells[key] = f"{fmt(row['mean'])} [{fmt(row['ci_low'])}, {fmt(row['ci_high'])}] n={int(row['n_seeds'])}"
        stats[key] = (row["mean"], row["ci_low"], row["ci_high"])
    return cells, stats


def final_task_reward(episodes: Any) -> Any:
    """Per run: the mean task reward of its last evaluation's episodes.

    The task reward is the return, except under a multi-objective reward
    (``multiobj_spec.reward``), where the return is the mix
    ``(1 - alpha) r + alpha s`` and the task's own reward ``r`` is the episode's
    ``multiobj/reward``: the published finding is about ``r``, which the mix
    trades away.
    """
    from rwrl.metrics import schema
    from rwrl.report.aggregate import last_evaluation
    last = last_evaluation(episodes)
    reward = last[schema.RETURN]
    if schema.MULTIOBJ_REWARD in last:
        reward = last[schema.MULTIOBJ_REWARD].where(last[schema.MULTIOBJ_REWARD].notna(), reward)
    return reward.groupby(last["run_id"]).mean()


def _safety_rows(data: Any, dim: Any) -> list[str]:
    """The task reward, then one row per constraint's violations, against the coefficient."""
    from rwrl.metrics import schema
    from rwrl.report import aggregate as agg
    rows = []
    columns = [("task reward", TASK_REWARD, _fmt)] + [
        (f"violations: {c}", f"final_{schema.VIOLATIONS}{c}", lambda x: _fmt(x, 1))
        for c in data.constraints]
    for what, column, fmt in columns:
        table = agg.aggregate(data, dim, column)
        if table.empty or table["n_seeds"].sum() == 0:
            continue
        # nominal (1) first, then tighter and tighter
        table = table.iloc[table["magnitude"].astype(float).argsort()[::-1]]
        cells, stats = _cells(table, fmt)
        order = list(cells)
        verdict = ("– (the constraints are not in the reward)" if column == TASK_REWARD
                   else _verdict(order, stats, "rises"))
        rows.append(f"| {what} | " + "; ".join(f"{k}: {cells[k]}" for k in order) + f" | {verdict} |")
    return rows


def _verdict(order: list[str], stats: dict[str, tuple], direction: str) -> str:
    """'yes' when the means fall (or rise) level by level, 'partly' when only first vs last, else 'no'.

    Only the finished levels count; when some are not finished yet the
    verdict says how many are, so a partial table does not read as final.
    """
    done = [k for k in order if not math.isnan(stats[k][0])]
    if len(done) < 2:
        return "not yet (too few levels finished)"
    sign = -1.0 if direction == "rises" else 1.0
    values = [sign * stats[k][0] for k in done]
    falls = all(a > b for a, b in zip(values, values[1:]))
    first_last = values[0] > values[-1]
    (_, low0, high0), (_, low1, high1) = stats[done[0]], stats[done[-1]]
    separated = high1 < low0 if direction == "falls" else low1 > high0  # NaN compares False
    note = " (first and last intervals apart)" if separated else " (intervals overlap)"
    if len(done) < len(order):
        note += f"; {len(done)} of {len(order)} levels finished"
    return ("yes" if falls else "partly: first vs last, not level by level" if first_last
            else "no") + note


def _names(text: str) -> tuple[str, ...]:
    return tuple(n for n in text.split(",") if n)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=REPO / "runs" / "paper")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    parser.add_argument("--envs", type=_names, default=("cartpole-swingup",), help="comma-separated envs")
    parser.add_argument("--agents", type=_names, default=("d4pg",), help="comma-separated agents")
    parser.add_argument("--levels", type=_names, default=None,
                        help="comma-separated levels kept of each file (default: all)")
    parser.add_argument("--page", default=None, help="the page's name (paper-PAGE.md)")
    parser.add_argument("--scale", type=float, default=0.1)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--files", type=_names, default=ORDER, help="comma-separated file names")
    parser.add_argument("--summarize-only", action="store_true")
    parser.add_argument("--archive", type=Path, default=None, help=sweep_file.ARCHIVE_HELP)
    args = parser.parse_args(argv)
    unknown = sorted(set(args.files) - set(ORDER))
    if unknown:
        parser.error(f"--files: unknown {unknown}; allowed {list(ORDER)}")
    wrong = sorted(set(args.levels or ()) - {"none", "easy", "medium", "hard"})
    if wrong:
        parser.error(f"--levels: unknown {wrong}; allowed none, easy, medium, hard")
    page_name(args)  # fail before any run when the page has no name
    left = 0
    if not args.summarize_only:
        from rwrl.experiments.sweeps.status import not_done
        done: list[Path] = [args.root / n for n in ORDER]
        for name in args.files:
            left += not_done(run_file(name, args, [d for d in done if d.name != name]))
    summarize(args)
    return 1 if sweep_file.say_not_done(left) else 0


if __name__ == "__main__":
    sys.exit(main())
