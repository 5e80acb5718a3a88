"""A bandit choosing among frozen controllers while cartpole's pole grows: SWA against UCB1 (issue 26).

Three controllers (D4PG, ``--preset fast``, 60k env steps each) trained at
pole lengths 0.5, 1.0 and 2.0 m are the arms; the plant is cartpole-swingup
whose pole length drifts upwards from 0.5 m (perturbation scheduler
``drift_pos``, one step per episode, delta ~ |N(0, std)|), so the controller
of the short pole rots and the others come and go: restless arms, not the
rested rotting of the paper's analysis (``rwrl.experiments.controller_selection``).
Every controller runs in its own copy of each of N plants (same seed, same
drift), so the returns are recorded once and every bandit replays them; the
regret of an episode is the best controller's return minus the pulled one's.

Reported per bandit: the cumulative regret at the last episode (mean over
instances, 95 % bootstrap interval) and the mean return per episode, beside
the best single controller in hindsight and the per-episode oracle. Nothing is
tuned: the bandits run with their defaults (SWA's window from the paper's
formula at this horizon).

Usage::

    python benchmarks/controller_selection.py --out benchmarks/results/controller_selection.json
    python benchmarks/controller_selection.py --page-only --out benchmarks/results/controller_selection.json

The controllers are trained into ``--controllers`` (default ``runs/controllers``)
when missing (about a minute each on an idle 2-core machine).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

import results_page

REPO = Path(__file__).resolve().parents[1]
ENV = "cartpole-swingup"
LENGTHS = (0.5, 1.0, 2.0)
POLICIES = ("swa", "wswa", "ucb1", "sw-ucb", "d-ucb")


def drift_spec(std: float) -> dict[str, Any]:
    return {"enable": True, "param": "pole_length", "scheduler": "drift_pos", "start": 0.5,
            "min": 0.3, "max": 3.0, "std": std}


def train_controllers(directory: Path, steps: int) -> list[Path]:
    """Train the controllers that are missing; return their run directories."""
    runs = []
    for length in LENGTHS:
        run = directory / f"pole-{length}"
        if not (run / "summary.json").exists():
            spec = json.dumps({"enable": True, "param": "pole_length", "scheduler": "constant", "start": length})
            subprocess.run([sys.executable, "-m", "rwrl.cli", "run", "--preset", "fast", "--env", ENV,
                            "--steps", str(steps), "--seed", "0", "--eval-every", str(steps // 3),
                            "--env-kwarg", f"perturb_spec={spec}", "--out", str(run)],
                           check=True, cwd=REPO)
        runs.append(run)
    return runs


def measure(args: argparse.Namespace) -> dict[str, Any]:
    from rwrl.datasets.behaviour_policies import load_policy, resolve_checkpoint
    from rwrl.experiments.controller_selection import play, record_returns
    controllers = [load_policy(resolve_checkpoint(run))  # each run's newest checkpoint
                   for run in train_controllers(args.controllers, args.train_steps)]
    start = time.perf_counter()
    record = record_returns(controllers, f"rwrl/{ENV}-v0", {"perturb_spec": drift_spec(args.std)},
                            args.episodes, args.instances, seed=args.seed,
                            progress=lambda t: t % 25 == 0 and print(f"episode {t}/{args.episodes}",
                                                                     file=sys.stderr, flush=True))
    record_s = time.perf_counter() - start
    chosen = {name: play(record, name, seed=args.seed).chosen.tolist() for name in args.policies}
    return {"episodes": args.episodes, "instances": args.instances, "std": args.std, "seed": args.seed,
            "lengths": list(LENGTHS), "train_steps": args.train_steps, "record_seconds": record_s,
            "returns": np.round(record.returns, 2).tolist(), "parameter": np.round(record.parameter, 4).tolist(),
            "chosen": chosen}


def summary(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per bandit and per reference (best in hindsight, oracle): regret and mean return."""
    from rwrl.report.aggregate import bootstrap_ci
    returns = np.asarray(results["returns"])  # (T, N, K)
    best = returns.max(axis=2)
    fixed = returns.sum(axis=0).argmax(axis=1)  # the best single controller in hindsight, per instance
    rows = []

    def row(name: str, pulled: np.ndarray) -> dict[str, Any]:
        regret = (best - pulled).sum(axis=0)
        low, high = bootstrap_ci(regret)
        return {"policy": name, "regret": float(regret.mean()), "regret_ci": [low, high],
                "mean_return": float(pulled.mean())}
    for name, chosen in results["chosen"].items():
        chosen = np.asarray(chosen)
        rows.append(row(name, np.take_along_axis(returns, chosen[..., None], axis=2)[..., 0]))
    rows.append(row("best controller in hindsight", returns[:, np.arange(returns.shape[1]), fixed]))
    rows.append(row("oracle (best per episode)", best))
    return rows


def page(results: dict[str, Any], source: str, date: str | None = None, machine: str | None = None) -> str:
    meta = results_page.measured(results, date, machine)
    data = results["settings"]
    returns = np.asarray(data["returns"])
    parameter = np.asarray(data["parameter"])
    rows = summary(data)
    table = results_page.table(
        ["bandit", "cumulative regret [95 % CI]", "mean return per episode"],
        [[r["policy"], f"{r['regret']:.0f} [{r['regret_ci'][0]:.0f}, {r['regret_ci'][1]:.0f}]",
          f"{r['mean_return']:.1f}"] for r in rows], "lrr")
    thirds = np.array_split(np.arange(returns.shape[0]), 3)
    by_phase = results_page.table(
        ["episodes", "pole length (mean)"] + [f"controller {length} m" for length in data["lengths"]],
        [[f"{p[0] + 1}-{p[-1] + 1}", f"{parameter[p].mean():.2f}"]
         + [f"{returns[p, :, k].mean():.0f}" for k in range(returns.shape[2])] for p in thirds], "lr" + "r" * 3)
    swa = next(r for r in rows if r["policy"] == "swa")
    ucb = next(r for r in rows if r["policy"] == "ucb1")
    verdict = ("SWA's regret below UCB1's, intervals apart" if swa["regret_ci"][1] < ucb["regret_ci"][0]
               else "SWA's regret below UCB1's, intervals overlap" if swa["regret"] < ucb["regret"]
               else "SWA's regret not below UCB1's")
    sections = [
        (None, [f"{data['instances']} plants, {data['episodes']} episodes each; pole length from 0.5 m "
                f"upwards by |N(0, {data['std']})| per episode; controllers trained at "
                f"{', '.join(str(x) for x in data['lengths'])} m ({data['train_steps']} env steps each, "
                f"`--preset fast`); recording every controller's returns took "
                f"{data['record_seconds']:.0f} s."]),
        ("Each controller's return as the pole grows (mean over plants)", by_phase),
        ("Bandits over the controllers", table + ["", f"Measured: {verdict}."]),
    ]
    return results_page.render_page(
        "Choosing among frozen controllers on a drifting plant", meta["command"], meta["date"], meta["machine"],
        sections, source=Path(source).name,
        rebuild=results_page.rebuild_command("controller_selection.py", f"--out {source}", meta))


def write_page(json_path: Path, date: str | None = None, machine: str | None = None) -> Path:
    return results_page.write_json_page(json_path, page, date, machine)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--controllers", type=Path, default=REPO / "runs" / "controllers")
    parser.add_argument("--train-steps", type=int, default=60_000)
    parser.add_argument("--episodes", type=int, default=300)
    parser.add_argument("--instances", type=int, default=10)
    parser.add_argument("--std", type=float, default=0.01, help="the drift's step std per episode (m)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--policies", nargs="+", default=list(POLICIES))
    results_page.add_page_arguments(parser)
    args = parser.parse_args(argv)
    if results_page.rewrite_page_only(parser, args, write_page):
        return
    result = {"measured": results_page.stamp("controller_selection.py", argv), "settings": measure(args)}
    results_page.publish(result, args.out, write_page)


if __name__ == "__main__":
    main()
