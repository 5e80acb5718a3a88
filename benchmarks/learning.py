"""Learning benchmark: D4PG and DMPO on the issue's tasks, one configuration at a time.

Each configuration is one ``rwrl run`` in ``ROOT/<config>``; running a
configuration again resumes it (after a kill, or in a later sitting), and a
finished one is only re-summarised. Results go to ``ROOT/<config>/benchmark.json``,
all results found so far to ``ROOT/learning.json`` and its results page
``ROOT/learning.md``, and the report of every seed of the configuration's group
to ``ROOT/<group>.html``. ``--page-only`` rewrites the page of ``--results``
(default the committed ``benchmarks/results/learning.json``) without running.

Usage::

    python benchmarks/learning.py --list
    python benchmarks/learning.py --config d4pg-cartpole-swingup-seed0
    python benchmarks/learning.py --config d4pg-cartpole-swingup-seed0 --steps 5000 --root /tmp/b
    python benchmarks/learning.py --figure curves.png --results benchmarks/results/learning.json \
        --extra-run runs/benchmarks/dmpo-acme-baseline-walker-walk-seed0   # an unfinished run too
    python benchmarks/learning.py --page-only --results runs/benchmarks/learning.json

Goals (issue 4): cartpole-swingup, evaluation return >= 750 within 150,000 env
steps (median of seeds); walker-walk >= 600 within 300,000; a learner update
of batch 256 in <= 5 ms; <= 30 % of the loop's wall-clock outside the learner.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

import results_page
from rwrl.experiments import RunConfig, is_finished, resume_run, start_run
from rwrl.metrics.episode_file import read_rows
from rwrl.report.html import write_report


@dataclasses.dataclass(frozen=True)
class Benchmark:
    """One configuration: the run's config and the return goal it is judged by."""

    config: RunConfig
    goal_return: float  #: evaluation return to reach ...
    goal_steps: int  #: ... within this many env steps
    variant: str = ""  #: names agent-config overrides (a key of VARIANTS); empty for the defaults

    @property
    def group(self) -> str:
        name = f"{self.config.agent}{'-' + self.variant if self.variant else ''}-{self.config.env}"
        return name + (f"-{self.config.combined_challenge}" if self.config.combined_challenge else "")


#: acme's TF DMPO agent defaults: the DMPO defaults until issue 8 (the "dmpo-*" and
#: "dmpo-trial-*" rows of results/learning.json were measured on these).
ACME_TF = dict(policy_learning_rate=1e-4, critic_learning_rate=1e-4, samples_per_insert=32.0,
               n_step=5, policy_init_scale=0.7, epsilon_mean=1e-3, init_log_temperature=1.0,
               init_log_alpha_mean=1.0, init_log_alpha_stddev=10.0)
#: agent-config overrides of the non-default variants. "trial": the DMPO settings
#: tried in issue 8 (results/archive.md, "DMPO (issue 8)"); not adopted as defaults.
VARIANTS = {
    "acme-tf": ACME_TF,
    "trial": dict(ACME_TF, policy_init_scale=0.3, epsilon_mean=1e-2, samples_per_insert=64.0),
    # acme's own DMPO control baseline (examples/baselines/rl_continuous/run_dmpo.py with
    # its MPOConfig and GaussianPolicyLossConfig defaults): the DMPO defaults since issue 8,
    # spelt out so the runs made under this name before the change keep their meaning.
    "acme-baseline": dict(policy_learning_rate=3e-4, critic_learning_rate=3e-4,
                          samples_per_insert=64.0, n_step=4, policy_init_scale=0.5,
                          epsilon_mean=1e-2, init_log_temperature=10.0,
                          init_log_alpha_mean=10.0, init_log_alpha_stddev=1000.0),
}


def _benchmarks() -> dict[str, Benchmark]:
    table = {}
    plans = [  # (agent, variant, env, challenge, seeds, steps, goal return)
        # DMPO's defaults run under the name "acme-baseline" (below), as they were measured
        ("d4pg", "", "cartpole-swingup", None, (0, 1, 2), 150_000, 750.0),
        ("d4pg", "", "walker-walk", None, (0,), 300_000, 600.0),
        ("dmpo", "acme-tf", "cartpole-swingup", None, (0, 1, 2), 150_000, 750.0),
        ("dmpo", "acme-tf", "walker-walk", None, (0,), 300_000, 600.0),
        *[(agent, "", "cartpole-swingup", "easy", (0,), 150_000, 750.0) for agent in ("d4pg", "dmpo")],
        ("dmpo", "trial", "cartpole-swingup", None, (0, 1, 2), 150_000, 750.0),
        ("dmpo", "trial", "walker-walk", None, (0,), 300_000, 600.0),
        ("dmpo", "acme-baseline", "cartpole-swingup", None, (0, 1, 2), 150_000, 750.0),
        ("dmpo", "acme-baseline", "walker-walk", None, (0,), 300_000, 600.0),
    ]
    for agent, variant, env, challenge, seeds, steps, goal in plans:
        for seed in seeds:
            config = RunConfig(agent=agent, env=env, combined_challenge=challenge, steps=steps,
                               seed=seed, eval_every=10_000, checkpoint_every=40_000,
                               agent_config=VARIANTS.get(variant, {}), report=False)
            benchmark = Benchmark(config, goal, steps, variant)
            table[f"{benchmark.group}-seed{seed}"] = benchmark
    return table


BENCHMARKS = _benchmarks()


def eval_curve(rows: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    """Return (env steps, mean evaluation return) of each evaluation."""
    by_step: dict[int, list[float]] = {}
    for row in rows:
        if row.get("phase") == "eval":
            by_step.setdefault(row["env_steps"], []).append(row["return"])
    steps = np.array(sorted(by_step), float)
    return steps, np.array([np.mean(by_step[int(s)]) for s in steps])


def steps_to_reach(steps: np.ndarray, returns: np.ndarray, threshold: float) -> int | None:
    """Return the env steps of the first evaluation at or above ``threshold`` (None: never)."""
    hits = np.flatnonzero(returns >= threshold)
    return int(steps[hits[0]]) if hits.size else None


def summarise(name: str, benchmark: Benchmark, run_dir: Path) -> dict[str, Any]:
    """The benchmark's JSON: eval returns reached, steps to thresholds, speed."""
    summary = json.loads((run_dir / "summary.json").read_text())
    steps, returns = eval_curve(read_rows(run_dir / "metrics.jsonl"))
    thresholds = sorted({250.0, 500.0, 750.0, benchmark.goal_return})
    reach = {f"{t:g}": steps_to_reach(steps, returns, t) for t in thresholds}
    goal_hit = reach[f"{benchmark.goal_return:g}"]
    timing = summary["timing"]
    return {
        "config": name, "agent": benchmark.config.agent, "variant": benchmark.variant or None,
        "env": benchmark.config.env,
        "combined_challenge": benchmark.config.combined_challenge, "seed": benchmark.config.seed,
        "env_steps": summary["counters"]["env_steps"], "updates": summary["counters"]["updates"],
        "eval_return_final": float(returns[-1]) if returns.size else None,
        "eval_return_best": float(returns.max()) if returns.size else None,
        "eval_curve": [[int(s), round(float(r), 2)] for s, r in zip(steps, returns)],
        "steps_to_return": reach,
        "goal": {"return": benchmark.goal_return, "within_steps": benchmark.goal_steps,
                 "met": goal_hit is not None and goal_hit <= benchmark.goal_steps},
        "update_ms": summary["update_ms"],
        "outside_learner_share": summary["outside_learner_share"],
        "env_steps_per_s": summary["env_steps_per_s"],
        "wall_clock_s": timing["total"],
        "timing_s": timing,
    }


def run_benchmark(name: str, root: Path, steps: int | None, progress: bool) -> dict[str, Any]:
    """Run (or resume, or just summarise) configuration ``name``; write its JSON and report."""
    from rwrl.experiments.run import RunHooks
    benchmark = BENCHMARKS[name]
    if steps is not None:  # a short check of the machinery, not a benchmark result
        benchmark = dataclasses.replace(benchmark, config=benchmark.config.replace(
            steps=steps, eval_every=max(steps // 4, 1), checkpoint_every=max(steps // 2, 1)))
    run_dir = root / name
    hooks = RunHooks(progress=progress)
    ran = True
    if not (run_dir / "config.json").exists():
        start_run(benchmark.config, run_dir, hooks)
    elif not is_finished(run_dir) or steps is not None:
        resume_run(run_dir, steps=benchmark.config.steps, hooks=hooks)
    else:
        ran = False
    result = summarise(name, benchmark, run_dir)
    previous = run_dir / "benchmark.json"
    if not ran and previous.exists() and "measured" in json.loads(previous.read_text()):
        result["measured"] = json.loads(previous.read_text())["measured"]  # only re-summarised
    else:
        result["measured"] = results_page.stamp("learning.py", ["--config", name])
    (run_dir / "benchmark.json").write_text(json.dumps(result, indent=2) + "\n")
    seeds = sorted(p.parent for p in root.glob(f"{benchmark.group}-seed*/config.json"))
    write_report(seeds, root / f"{benchmark.group}.html")
    _write_overview(root)
    return result


def _write_overview(root: Path) -> None:
    """Collect every configuration's result into ROOT/learning.json (median over seeds too)."""
    results = [json.loads(p.read_text()) for p in sorted(root.glob("*/benchmark.json"))]
    groups: dict[str, list[dict[str, Any]]] = {}
    for result in results:
        key = "-".join(filter(None, [result["agent"], result.get("variant"), result["env"],
                                     result["combined_challenge"]]))
        groups.setdefault(key, []).append(result)
    def median(rs: list[dict[str, Any]], key: str) -> float | None:
        values = [r[key] for r in rs if r[key] is not None]
        return float(np.median(values)) if values else None
    medians = {key: {"seeds": len(rs),
                     "median_eval_return_final": median(rs, "eval_return_final"),
                     "median_eval_return_best": median(rs, "eval_return_best")}
               for key, rs in groups.items()}
    (root / "learning.json").write_text(json.dumps({"runs": results, "groups": medians}, indent=2) + "\n")
    write_page(root / "learning.json")


def _group(run: dict[str, Any]) -> str:
    return "-".join(filter(None, [run["agent"], run.get("variant"), run["env"], run["combined_challenge"]]))


def _recorded(runs: list[dict[str, Any]], key: str) -> str | None:
    """The runs' recorded dates (first to last) or machines (each once); None if none recorded."""
    values = sorted({r["measured"][key] for r in runs if r.get("measured")})
    if not values:
        return None
    return (values[0] if len(values) == 1 else f"{values[0]} to {values[-1]}") if key == "date" \
        else "; ".join(values)


def page(results: dict[str, Any], source: str, date: str | None = None,
         machine: str | None = None) -> str:
    """Return the results page of a learning.json (``source``: its path as the command gives it)."""
    f = results_page.fmt
    runs = results["runs"]
    meta = results_page.measured({"measured": {"date": _recorded(runs, "date"),
                                               "machine": _recorded(runs, "machine")}},
                                 date, machine)
    groups: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        groups.setdefault(_group(run), []).append(run)
    def goal(run):
        return f"{run['goal']['return']:g} within {run['goal']['within_steps']:,}"
    group_rows = [[key, len(rs), f(results["groups"][key]["median_eval_return_final"]),
                   f(results["groups"][key]["median_eval_return_best"]), goal(rs[0]),
                   f"{sum(r['goal']['met'] for r in rs)} of {len(rs)}"]
                  for key, rs in sorted(groups.items())]
    thresholds = sorted({t for run in runs for t in run["steps_to_return"]}, key=float)
    run_rows = [[run["config"], f"{run['env_steps']:,}", f(run["eval_return_final"]),
                 f(run["eval_return_best"]),
                 *[f(run["steps_to_return"][t], ",") if t in run["steps_to_return"] else ""
                   for t in thresholds],
                 "met" if run["goal"]["met"] else "missed", f(run["update_ms"], ".1f"),
                 f(run["outside_learner_share"], ".2f"), f(run["env_steps_per_s"]),
                 f(run["wall_clock_s"] / 60, ".0f")] for run in runs]
    sections = [
        (None, ["One `rwrl run` per configuration, each resumable. "
                "Evaluation return: the mean of each evaluation's episodes. A configuration is "
                "`<agent>[-<variant>]-<env>[-<combined challenge>]-seed<seed>`; the variants are "
                "agent-config overrides (`VARIANTS` in `benchmarks/learning.py`)."]),
        ("Per configuration group (median over seeds)",
         results_page.table(["group", "seeds", "final return", "best return", "goal (return within "
                             "env steps)", "seeds meeting it"], group_rows, "lrrrll")),
        ("Per run", ["Steps to a return: env steps of the first evaluation at or above it "
                     "(– never; blank: not a threshold of that run). "
                     "Update ms, the learner's time per update; outside learner, the share of the "
                     "loop's wall-clock spent outside it; speeds depend on what else the machine ran.",
                     "", *results_page.table(
                         ["config", "env steps", "final return", "best return",
                          *[f"steps to {t}" for t in thresholds], "goal", "update ms",
                          "outside learner", "env steps/s", "wall-clock min"], run_rows,
                         "lrrr" + "r" * len(thresholds) + "lrrrr")]),
    ]
    return results_page.render_page(
        "Learning: D4PG and DMPO evaluation return", "python benchmarks/learning.py --config CONFIG",
        meta["date"], meta["machine"], sections,
        source=Path(source).name,
        rebuild=results_page.rebuild_command("learning.py", f"--results {source}", meta))


def write_page(json_path: Path, date: str | None = None, machine: str | None = None) -> Path:
    """Write the page beside ``json_path`` (a learning.json) from it; return the page's path."""
    return results_page.write_json_page(json_path, page, date, machine)


def draw_curves(results: Path, extra_runs: list[Path], path: Path) -> None:
    """Draw every evaluation curve of ``results`` (a learning.json) and of ``extra_runs``.

    One panel per task (challenge-free and ``easy`` apart), one colour per
    configuration group (agent and variant), one line per seed.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = json.loads(results.read_text())["runs"]
    for run in extra_runs:  # unfinished runs: their curve so far, named by their directory
        benchmark = BENCHMARKS[run.name]
        steps, returns = eval_curve(read_rows(run / "metrics.jsonl"))
        rows.append({"agent": benchmark.config.agent, "variant": benchmark.variant,
                     "env": benchmark.config.env,
                     "combined_challenge": benchmark.config.combined_challenge,
                     "eval_curve": np.stack([steps, returns], axis=1)})
    panels: dict[str, list] = {}
    for row in rows:
        task = row["env"] + (f" ({row['combined_challenge']})" if row["combined_challenge"] else "")
        label = row["agent"] + (f" {row['variant']}" if row.get("variant") else "")
        panels.setdefault(task, []).append((label, np.asarray(row["eval_curve"], float)))
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.6), squeeze=False)
    labels = sorted({label for lines in panels.values() for label, _ in lines})
    colours = {label: f"C{i}" for i, label in enumerate(labels)}
    for ax, (task, lines) in zip(axes[0], sorted(panels.items())):
        seen = set()
        for label, curve in lines:
            ax.plot(curve[:, 0], curve[:, 1], color=colours[label], alpha=0.8,
                    label=None if label in seen else label)
            seen.add(label)
        ax.set_title(task)
        ax.set_xlabel("env steps")
        ax.set_ylabel("evaluation return")
        ax.legend(fontsize=7)
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", choices=sorted(BENCHMARKS), help="the configuration to run")
    parser.add_argument("--root", type=Path, default=Path("runs/benchmarks"), help="where runs go")
    parser.add_argument("--steps", type=int, help="override the env steps (a quick check)")
    parser.add_argument("--list", action="store_true", help="list the configurations")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--figure", type=Path, help="draw the curves of --results to this PNG")
    parser.add_argument("--results", type=Path, default=Path("benchmarks/results/learning.json"))
    parser.add_argument("--extra-run", type=Path, action="append", default=[],
                        help="a configuration's run directory to draw too (e.g. unfinished)")
    parser.add_argument("--page-only", action="store_true",
                        help="run nothing: rewrite the results page (.md) of the --results JSON")
    parser.add_argument("--date", help="with --page-only: the date of runs that do not record it")
    parser.add_argument("--machine", help="with --page-only: the machine of runs that do not record it")
    args = parser.parse_args(argv)
    if args.page_only:
        print(f"page: {write_page(args.results, args.date, args.machine)}")
        return 0
    if args.figure is not None:
        draw_curves(args.results, args.extra_run, args.figure)
        print(f"figure: {args.figure}")
        return 0
    if args.list or args.config is None:
        print("\n".join(sorted(BENCHMARKS)))
        return 0 if args.list else 2
    result = run_benchmark(args.config, args.root, args.steps, not args.no_progress)
    print(json.dumps({k: v for k, v in result.items() if k not in ("eval_curve", "timing_s")}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
