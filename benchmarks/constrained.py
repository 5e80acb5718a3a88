"""The constrained-agents claim (issue 10): penalized return of MetaL against its baselines.

Runs ``sweeps/constrained.toml`` (resumable; ``--scale`` / ``--seeds`` /
``--envs`` shrink it) into ``ROOT``, then scores each finished run from
its last ``--evaluations`` evaluations: average return R (mean episode
return), J_C the average cost per step (the mean over episodes of the
violation rate of the domain's constraint: cartpole slider_pos, walker
joint_velocity, quadruped and humanoid joint_angle, as the agents' cost),
the overshoot psi = max(0, J_C - beta) and the penalized return
R_pen = R - kappa psi, kappa = 1000 (the paper's). D4PG and the
fixed-lambda runs do not depend on beta: they are scored at each beta of
the sweep. Per (task, safety coefficient, beta) and
agent: mean over seeds with a 95 % bootstrap interval. The claim, checked
as measured: MetaL's mean R_pen at or above every baseline's in each
setting. Nothing is tuned to make it hold.

Usage::

    python benchmarks/constrained.py --root runs/constrained --scale 0.25 --envs cartpole-swingup
    python benchmarks/constrained.py --root runs/constrained --summarize-only

``--archive DIR`` (e.g. ``benchmarks/results/archive/NAME``) keeps each finished
run without its checkpoints as it finishes and restores them into a fresh
ROOT: commit DIR to continue the benchmark from a fresh checkout.

Writes ``OUT/constrained.md``, ``OUT/constrained.json`` and ``OUT/constrained.png``
(return against average cost per step, one panel per task and safety coefficient).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import sweep_file

REPO = Path(__file__).resolve().parents[1]
SPEC = REPO / "sweeps" / "constrained.toml"
KAPPA = 1000.0
#: the constraint whose violation rate is the cost, per domain (as the sweep's agents).
COST = {"cartpole": "slider_pos", "walker": "joint_velocity", "quadruped": "joint_angle",
        "humanoid": "joint_angle"}


def agent_label(config: dict) -> str:
    """Name a run's agent setting: D4PG, fixed lambda, RC-D4PG or MetaL."""
    agent, ac = config["agent"], config.get("agent_config", {})
    if agent == "rcd4pg" and ac.get("mode") == "fixed":
        return f"fixed lambda={ac.get('lagrange_init')}"
    return {"d4pg": "d4pg (reward only)", "rcd4pg": "rc-d4pg", "metal": "metal"}[agent]


def run_scores(args: argparse.Namespace) -> list[dict]:
    """One row per finished run and beta it is scored at: env, coeff, beta, label, seed, R, J_C,
    and ``learns_lambda`` (False: a beta-free baseline, scored at every beta)."""
    from rwrl.agents import make_config
    from rwrl.domains.names import domain_of
    from rwrl.report.aggregate import load_sweep
    data = load_sweep(args.root)
    configs = {r["run_id"]: r["config"] for r in data.plan["runs"]}
    betas = sorted({c["agent_config"]["cost_threshold"] for c in configs.values()
                    if "cost_threshold" in c.get("agent_config", {})})
    rows = sweep_file.last_evaluations(data, args.evaluations)
    out = []
    for run_id, group in rows.groupby("run_id"):
        config = configs[run_id]
        column = "violation_rate/" + COST[domain_of(config["env"])]
        if column not in group:
            continue
        agent_config = make_config(config["agent"], **config["agent_config"])
        learns_lambda = config["agent"] == "metal" or (
            config["agent"] == "rcd4pg" and agent_config.mode != "fixed")
        scored_at = [agent_config.cost_threshold] if learns_lambda else betas
        for beta in scored_at:
            out.append({"env": config["env"], "safety_coeff": config["safety_coeff"], "beta": beta,
                        "label": agent_label(config), "seed": config["seed"], "learns_lambda": learns_lambda,
                        "R": float(group["return"].mean()), "J_C": float(group[column].mean())})
    return out


def summarize(args: argparse.Namespace) -> Path:
    import numpy as np
    from rwrl.report.aggregate import estimate
    scores = run_scores(args)
    labels = sorted({s["label"] for s in scores}, key=lambda x: (x == "metal", x))
    settings = sorted({(s["env"], s["safety_coeff"], s["beta"]) for s in scores})
    lines = ["# Constrained agents: penalized return R_pen = R - 1000 psi", "",
             f"`python benchmarks/constrained.py --root {args.root}` ({sweep_file.scale_of(args.root)}); "
             f"last {args.evaluations} evaluations per run; each cell: R_pen mean "
             "over seeds [95 % bootstrap interval] (R, psi means), n seeds.", "",
             "| task | safety coeff | beta | " + " | ".join(labels) + " | MetaL >= every baseline? |",
             "|---|---:|---:|" + "---|" * len(labels) + "---|"]
    table = []
    for env, coeff, beta in settings:
        cells, means = [], {}
        for name in labels:
            runs = [s for s in scores if (s["env"], s["safety_coeff"], s["beta"], s["label"])
                    == (env, coeff, beta, name)]
            if not runs:
                cells.append("–")
                continue
            psi = [max(0.0, s["J_C"] - beta) for s in runs]
            pen = [s["R"] - KAPPA * p for s, p in zip(runs, psi)]
            e = estimate(pen)
            means[name] = e["mean"]
            table.append({"env": env, "safety_coeff": coeff, "beta": beta, "agent": name,
                          "R_pen": e, "R": float(np.mean([s["R"] for s in runs])),
                          "J_C": float(np.mean([s["J_C"] for s in runs])), "psi": float(np.mean(psi))})
            cells.append(f"{sweep_file.format_estimate(e)} "
                         f"(R {np.mean([s['R'] for s in runs]):.0f}, psi {np.mean(psi):.3f})")
        others = [m for k, m in means.items() if k != "metal"]
        verdict = ("yes" if means["metal"] >= max(others) else "no") if "metal" in means and others \
            else "not measured yet"
        lines.append(f"| {env} | {coeff} | {beta} | " + " | ".join(cells) + f" | {verdict} |")
    args.out.mkdir(parents=True, exist_ok=True)
    _figure(scores, args.out / "constrained.png")
    return sweep_file.write_tables(args.out, "constrained", lines, table)


def _figure(scores: list[dict], path: Path) -> None:
    """R against J_C per agent setting (mean over seeds, bars: min to max seed), beta as lines."""
    if not scores:
        return
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    def setting(s: dict) -> str:  # the beta-free baselines are scored at every beta: one point each
        return s["label"] + (f" beta={s['beta']}" if s["learns_lambda"] else "")

    panels = sorted({(s["env"], s["safety_coeff"]) for s in scores})
    names = sorted({setting(s) for s in scores}, key=lambda x: (x.startswith("metal"), x))
    colors = dict(zip(names, plt.get_cmap("tab10").colors))
    betas = sorted({s["beta"] for s in scores})
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.8), squeeze=False)
    for ax, (env, coeff) in zip(axes[0], panels):
        points: dict[str, dict[int, tuple[float, float]]] = {}
        for s in scores:
            if (s["env"], s["safety_coeff"]) == (env, coeff):
                points.setdefault(setting(s), {})[s["seed"]] = (s["J_C"], s["R"])
        for name, seeds in sorted(points.items()):
            jc, ret = np.array(list(seeds.values())).T
            ax.errorbar(jc.mean(), ret.mean(), xerr=[[jc.mean() - jc.min()], [jc.max() - jc.mean()]],
                        yerr=[[ret.mean() - ret.min()], [ret.max() - ret.mean()]], fmt="o",
                        capsize=2, color=colors[name])
        for beta in betas:
            ax.axvline(beta, color="grey", linestyle=":", linewidth=1)
        ax.set_title(f"{env}, safety coeff {coeff}", fontsize=9)
        ax.set_xlabel("J_C, average cost per step (dotted: beta)")
        ax.set_ylabel("average return R")
    handles = [plt.Line2D([], [], marker="o", linestyle="", color=colors[n]) for n in names]
    fig.legend(handles, names, loc="upper center", ncol=min(len(names), 4), fontsize=8,
               bbox_to_anchor=(0.5, -0.01), title="mean over seeds; bars: lowest to highest seed",
               title_fontsize=8)
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    return sweep_file.claim_main(SPEC, __doc__.split("\n")[0], REPO / "runs" / "constrained",
                                 REPO / "benchmarks" / "results", summarize, argv, envs=True)


if __name__ == "__main__":
    sys.exit(main())
