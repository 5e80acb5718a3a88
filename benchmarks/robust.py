"""The robust-agents claim (issue 10): return against held-out pole lengths, R-MPO / SR-MPO vs DMPO.

Runs ``sweeps/robust.toml`` (resumable; ``--scale`` / ``--seeds`` shrink
it) into ``ROOT``, then, from each finished run's last ``--evaluations``
evaluations (each draws one held-out pole length per episode and records
it as ``perturb/pole_length``): per agent and length, the mean return
over seeds (one value per seed: that seed's mean over its episodes at the
length) with a 95 % bootstrap interval over seeds; per agent the loss on
held-out lengths, the nominal length's return minus the mean over the
other lengths; and the claim, checked as measured: R-MPO and SR-MPO lose
less return than DMPO (nominal, and with domain randomization) on the
held-out lengths. Nothing is tuned to make it hold.

Usage::

    python benchmarks/robust.py --root runs/robust --scale 0.5
    python benchmarks/robust.py --root runs/robust --summarize-only

``--archive DIR`` (e.g. ``benchmarks/results/archive/NAME``) keeps each finished
run without its checkpoints as it finishes and restores them into a fresh
ROOT: commit DIR to continue the benchmark from a fresh checkout.

Writes ``OUT/robust.md``, ``OUT/robust.json`` and ``OUT/robust.png``.
"""

from __future__ import annotations

import argparse
import math
import operator
import sys
from pathlib import Path

import numpy as np

import sweep_file

REPO = Path(__file__).resolve().parents[1]
SPEC = REPO / "sweeps" / "robust.toml"
PARAM = "perturb/pole_length"
NOMINAL = 1.0
#: the model set's range: held-out lengths inside it are "in", the others "out".
SET_RANGE = (0.75, 1.25)
#: (summary field, how the line reads, whether the robust agent's value beats a baseline's):
#: the claim (less loss), then what is returned there (the loss is small for an agent poor
#: everywhere, the nominal length included).
CHECKS = (("loss_inside", ", held-out inside", operator.lt),
          ("loss_outside", ", held-out outside", operator.lt),
          ("mean_inside", " returns more, held-out inside", operator.gt),
          ("mean_outside", " returns more, held-out outside", operator.gt))


def label(agent: str, level: str) -> str:
    """DMPO's two baselines by level; R-MPO and SR-MPO by agent."""
    return f"dmpo ({level})" if agent == "dmpo" else agent


def returns_by_length(args: argparse.Namespace):
    """Return {label: {length: [per-seed mean return]}} from the finished runs."""
    from rwrl.report.aggregate import load_sweep
    rows = sweep_file.last_evaluations(load_sweep(args.root), args.evaluations)
    table: dict[str, dict[float, list[float]]] = {}
    if rows.empty or PARAM not in rows:
        return table
    rows = rows.assign(label=[label(a, lv) for a, lv in zip(rows["agent"], rows["level"])])
    for (name, length, _), group in rows.groupby(["label", PARAM, "seed"]):
        table.setdefault(name, {}).setdefault(round(float(length), 4), []).append(
            float(group["return"].mean()))
    return table


def summarize(args: argparse.Namespace) -> Path:
    from rwrl.report.aggregate import estimate
    table = returns_by_length(args)
    lengths = sorted({x for per in table.values() for x in per})
    lines = ["# Robust agents: evaluation return against pole length (cartpole-swingup)", "",
             f"`python benchmarks/robust.py --root {args.root}` ({sweep_file.scale_of(args.root)}); "
             "trained with the set {0.75, 1.0, 1.25}; each cell: mean over "
             f"seeds of the last {args.evaluations} evaluations' return at that length "
             "[95 % bootstrap interval over seeds], n seeds.", "",
             "| agent | " + " | ".join(f"{x:g}" for x in lengths)
             + " | loss held-out in | loss out | mean held-out in | mean out |",
             "|---|" + "---:|" * len(lengths) + "---:|---:|---:|---:|"]
    summary = {}
    for name, per in sorted(table.items()):
        est = {x: estimate(per[x]) for x in per}
        nominal = est.get(NOMINAL, {}).get("mean", math.nan)
        inside = [est[x]["mean"] for x in est if x != NOMINAL and SET_RANGE[0] <= x <= SET_RANGE[1]]
        outside = [est[x]["mean"] for x in est if not SET_RANGE[0] <= x <= SET_RANGE[1]]
        mean_in = float(np.mean(inside)) if inside else math.nan
        mean_out = float(np.mean(outside)) if outside else math.nan
        loss_in, loss_out = nominal - mean_in, nominal - mean_out
        summary[name] = {"by_length": {str(x): e for x, e in est.items()},
                         "loss_inside": loss_in, "loss_outside": loss_out,
                         "mean_inside": mean_in, "mean_outside": mean_out}
        cells = " | ".join(sweep_file.format_estimate(est[x]) if x in est else "–" for x in lengths)
        lines.append(f"| {name} | {cells} | {loss_in:.0f} | {loss_out:.0f} | {mean_in:.0f} "
                     f"| {mean_out:.0f} |")
    lines += ["", "Claim: R-MPO and SR-MPO lose less return than DMPO on held-out lengths "
              "(loss = nominal return minus the mean return over the held-out lengths); "
              "beside it, whether they return more there (the loss alone favours an agent "
              "that is poor at the nominal length too)."]
    baselines = {k: v for k, v in summary.items() if k.startswith("dmpo")}
    for robust in ("rmpo", "srmpo"):
        if robust not in summary or not baselines:
            lines.append(f"- {robust}: not measured yet")
            continue
        for where, claim, holds in CHECKS:
            mine = summary[robust][where]
            verdicts = [f"{b}: {'yes' if holds(mine, s[where]) else 'no'} ({mine:.0f} vs "
                        f"{s[where]:.0f})" for b, s in baselines.items()]
            lines.append(f"- {robust}{claim}: " + "; ".join(verdicts))
    args.out.mkdir(parents=True, exist_ok=True)
    _figure(summary, args.out / "robust.png")
    return sweep_file.write_tables(args.out, "robust", lines, summary)


def _figure(summary: dict, path: Path) -> None:
    if not summary:
        return
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, entry in sorted(summary.items()):
        xs = sorted(float(x) for x in entry["by_length"])
        est = [entry["by_length"][str(x)] for x in xs]
        mean = np.array([e["mean"] for e in est])
        ax.plot(xs, mean, marker="o", label=name)
        low, high = np.array([e["ci_low"] for e in est]), np.array([e["ci_high"] for e in est])
        if np.isfinite(low).any():
            ax.fill_between(xs, low, high, alpha=0.15)
    ax.axvspan(*SET_RANGE, color="grey", alpha=0.1, label="model set range")
    ax.set_xlabel("pole length (evaluation)")
    ax.set_ylabel("evaluation return")
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    return sweep_file.claim_main(SPEC, __doc__.split("\n")[0], REPO / "runs" / "robust",
                                 REPO / "benchmarks" / "results", summarize, argv)


if __name__ == "__main__":
    sys.exit(main())
