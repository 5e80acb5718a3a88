"""TD3 with and without LS-DQN's shallow updates (issue 28): evaluation return on two tasks.

Runs ``sweeps/td3_shallow.toml`` (resumable; ``--scale`` / ``--seeds`` /
``--envs`` shrink it) into ``ROOT``: TD3 (``plain``) and TD3 whose critics'
heads are refitted by regularised least squares every 1,000 learner steps
(``ls``), on cartpole-swingup and walker-walk, 3 seeds, 100k env steps per
run (reduced scale: TD3's paper trains for 1M). Then, per task and variant,
from the finished runs: the final return (each seed's mean over the
episodes of its last ``--evaluations`` evaluations) and the mean return
over all evaluations (the area under the learning curve, divided by its
length: it rewards learning sooner), each the mean over seeds with a 95 %
bootstrap interval over seeds; and the paired difference ls - plain per
seed (the same seeds run both), with its interval. The claim, checked as
measured: the refit raises the final return (the difference's interval
above 0). Nothing is tuned to make it hold.

Usage::

    python benchmarks/td3_shallow.py --root runs/td3-shallow --archive benchmarks/results/archive/td3-shallow
    python benchmarks/td3_shallow.py --root runs/td3-shallow --summarize-only

``--archive DIR`` (e.g. ``benchmarks/results/archive/NAME``) keeps each finished
run without its checkpoints as it finishes and restores them into a fresh
ROOT: commit DIR to continue the benchmark from a fresh checkout.

Writes ``OUT/td3_shallow.md``, ``OUT/td3_shallow.json`` and ``OUT/td3_shallow.png``
(the learning curves, one panel per task).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

import sweep_file

REPO = Path(__file__).resolve().parents[1]
SPEC = REPO / "sweeps" / "td3_shallow.toml"
NAME = "td3_shallow"
#: the sweep's levels: without and with the refit.
PLAIN, REFIT = "plain", "ls"
#: seeds below which no verdict is drawn (a bootstrap over 2 values is no interval).
MIN_SEEDS = 3


def per_seed(args: argparse.Namespace) -> tuple[dict, dict]:
    """Return ({(env, level): {seed: final return}}, {(env, level): {seed: [(env steps, return)]}}).

    Final: the seed's mean over the episodes of its last ``args.evaluations`` evaluations;
    the curve: each evaluation's mean return, finished runs only.
    """
    from rwrl.report.aggregate import load_sweep
    data = load_sweep(args.root)
    final: dict[tuple[str, str], dict[int, float]] = {}
    for (env, level, seed), group in sweep_file.last_evaluations(data, args.evaluations).groupby(
            ["env", "level", "seed"]):
        final.setdefault((env, level), {})[int(seed)] = float(group["return"].mean())
    done = data.done()[["run_id", "env", "level", "seed"]]
    evals = data.episodes[data.episodes["phase"] == "eval"]
    curves: dict[tuple[str, str], dict[int, list]] = {}
    if not evals.empty:
        evals = evals.drop(columns=[c for c in ("env", "level", "seed") if c in evals]).merge(done, on="run_id")
        for (env, level, seed, steps), group in evals.groupby(["env", "level", "seed", "env_steps"]):
            curves.setdefault((env, level), {}).setdefault(int(seed), []).append(
                (int(steps), float(group["return"].mean())))
    return final, curves


def paired(a: dict[int, float], b: dict[int, float]) -> list[float]:
    """Return b - a for the seeds both ran."""
    return [b[s] - a[s] for s in sorted(set(a) & set(b))]


def summarize(args: argparse.Namespace) -> Path:
    from rwrl.report.aggregate import estimate
    final, curves = per_seed(args)
    area = {key: {seed: float(np.mean([r for _, r in points])) for seed, points in per.items()}
            for key, per in curves.items()}
    envs = sorted({env for env, _ in final} | {env for env, _ in area})
    lines = ["# TD3 with and without shallow (least-squares) updates of its critics' heads", "",
             f"`python benchmarks/{NAME}.py --root {args.root}` ({_scale(args.root)}); TD3's paper "
             f"preset, `ls`: plus LS-DQN's refit ({_refit_setting(args.root)}; "
             "`sweeps/td3_shallow.toml`). Reduced scale: 100k env steps per run at full "
             "scale (TD3's paper: 1M). Each cell: mean over seeds [95 % bootstrap interval over "
             f"seeds] n seeds. Final: the last {args.evaluations} evaluations' mean return; mean over "
             "evaluations: the learning curve's mean (higher when learned sooner); ls - plain: the "
             "per-seed difference, the same seeds.", "",
             "| task | variant | final return | mean over evaluations |", "|---|---|---:|---:|"]
    summary: dict = {}
    for env in envs:
        entry = summary.setdefault(env, {})
        for level in (PLAIN, REFIT):
            f, a = estimate(list(final.get((env, level), {}).values())), estimate(
                list(area.get((env, level), {}).values()))
            entry[level] = {"final": f, "mean_over_evaluations": a,
                            "curve": _mean_curve(curves.get((env, level), {}))}
            lines.append(f"| {env} | {level} | {sweep_file.format_estimate(f)} | {sweep_file.format_estimate(a)} |")
        entry["difference"] = {
            "final": estimate(paired(final.get((env, PLAIN), {}), final.get((env, REFIT), {}))),
            "mean_over_evaluations": estimate(paired(area.get((env, PLAIN), {}), area.get((env, REFIT), {})))}
        d = entry["difference"]
        lines.append(f"| {env} | ls - plain | {_signed(d['final'])} | {_signed(d['mean_over_evaluations'])} |")
    lines += ["", "Claim: the refit raises TD3's final return (the interval of ls - plain above 0)."]
    for env in envs:
        d = summary[env]["difference"]["final"]
        if d["n_seeds"] == 0:
            lines.append(f"- {env}: not measured yet")
            continue
        if d["n_seeds"] < MIN_SEEDS:
            verdict = f"too few seeds for a verdict (n={d['n_seeds']}, at least {MIN_SEEDS})"
        else:
            verdict = "yes" if d["ci_low"] > 0 else "no: lower" if d["ci_high"] < 0 else "not resolved"
        lines.append(f"- {env}: {verdict} ({_signed(d)})")
    args.out.mkdir(parents=True, exist_ok=True)
    _figure(summary, args.out / f"{NAME}.png")
    return sweep_file.write_tables(args.out, NAME, lines, summary)


def _scale(root: Path) -> str:
    try:
        return sweep_file.scale_of(root)
    except (OSError, KeyError, ValueError):
        return "no plan recorded"


def _refit_setting(root: Path) -> str:
    """``ls_every=..., ls_batch=..., ls_lambda=...`` of the plan's refitting runs, defaults filled in."""
    from rwrl.agents import make_config
    from rwrl.metrics.sweep_results import read_plan
    try:
        runs = [r for r in read_plan(root)["runs"] if r["level"] == REFIT]
    except (OSError, KeyError, ValueError):
        runs = []
    if not runs:
        return "no refitting run planned"
    config = make_config("td3", **runs[0]["config"].get("agent_config", {}))
    return f"ls_every={config.ls_every:,}, ls_batch={config.ls_batch:,}, ls_lambda={config.ls_lambda:g}"


def _signed(e: dict) -> str:
    """``+12 [-3, +25] n=3`` for a difference."""
    if e["n_seeds"] == 0:
        return "–"
    interval = "" if math.isnan(e["ci_low"]) else f" [{e['ci_low']:+.0f}, {e['ci_high']:+.0f}]"
    return f"{e['mean']:+.0f}{interval} n={e['n_seeds']}"


def _mean_curve(per_seed_curve: dict[int, list]) -> list[dict]:
    """Return [{env_steps, mean, ci_low, ci_high, n_seeds}] over the seeds at each evaluation."""
    from rwrl.report.aggregate import estimate
    by_steps: dict[int, list[float]] = {}
    for points in per_seed_curve.values():
        for steps, value in points:
            by_steps.setdefault(steps, []).append(value)
    return [{"env_steps": steps, **{k: v for k, v in estimate(values).items() if not k.startswith("iqm")}}
            for steps, values in sorted(by_steps.items())]


def _figure(summary: dict, path: Path) -> None:
    if not summary:
        return
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(summary), figsize=(5 * len(summary), 3.6), squeeze=False)
    for ax, (env, entry) in zip(axes[0], sorted(summary.items())):
        for level in (PLAIN, REFIT):
            curve = entry[level]["curve"]
            if not curve:
                continue
            x = [p["env_steps"] for p in curve]
            ax.plot(x, [p["mean"] for p in curve], marker="o", label=f"td3 ({level})")
            low, high = np.array([p["ci_low"] for p in curve]), np.array([p["ci_high"] for p in curve])
            if np.isfinite(low).any():
                ax.fill_between(x, low, high, alpha=0.15)
        ax.set_title(env)
        ax.set_xlabel("env steps")
        ax.set_ylabel("evaluation return")
        ax.legend(fontsize=8)
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    return sweep_file.claim_main(SPEC, __doc__.split("\n")[0], REPO / "runs" / "td3-shallow",
                                 REPO / "benchmarks" / "results", summarize, argv, envs=True)


if __name__ == "__main__":
    sys.exit(main())
