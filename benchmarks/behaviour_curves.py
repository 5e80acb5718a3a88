"""The behaviour runs behind the shipped snapshots (issue 28): their learning curves, one page.

Reads ``rwrl policies train`` output folders (``DIR/<task>-<challenge>/manifest.json``:
every checkpoint's mean return over the manifest's evaluation episodes) and
writes, without training anything, a JSON with each run's curve (env steps,
mean and std of the return), its best return and the 0.75 snapshot, a page
(``.md``) and a figure (``.png``, one panel per task, none and easy overlaid).

Usage::

    python benchmarks/behaviour_curves.py --policies /work/policies --out benchmarks/results/behaviour_curves.json
    python benchmarks/behaviour_curves.py --page-only --out benchmarks/results/behaviour_curves.json
    python benchmarks/behaviour_curves.py --policies /work/new-runs --merge benchmarks/results/behaviour_curves.json \
        --out benchmarks/results/behaviour_curves.json

``--merge JSON`` keeps an earlier page's runs that ``--policies`` lacks (a run is
its task, challenge, D4PG config, env steps and seed; the folder's win), so a
run trained later joins a page whose folders are gone; the page counts them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # results_page.py beside this file

import results_page  # noqa: E402

#: one colour per challenge level in every panel.
COLORS = {"none": "C0", "easy": "C1"}


def _shipped_checksum(task: str, challenge: str) -> str | None:
    """Return the full checkpoint checksum of the snapshot rwrl ships for the pair, or None."""
    from rwrl.datasets.shipped_policies import shipped_manifest_path
    path = shipped_manifest_path(task, challenge)
    if not path.exists():
        return None
    return json.loads(path.read_text())["snapshots"][0].get("full_sha256")


def config_label(agent_config: dict[str, Any]) -> str:
    """Name a behaviour run's D4PG config: its preset, or the defaults (D4PG's paper preset)."""
    return ", ".join(f"{k}={v}" for k, v in sorted(agent_config.items())) or "paper preset"


def read_runs(folder: Path) -> list[dict[str, Any]]:
    """Return one entry per ``folder/*/manifest.json``: the run's facts and its curve, by env steps.

    ``shipped``: whether its 0.75 snapshot is the one rwrl ships (the same full checkpoint checksum).
    """
    from rwrl.datasets.behaviour_policies import DEFAULT_BEHAVIOUR_FRACTION, manifest_snapshot, read_manifest
    runs = []
    for path in sorted(Path(folder).glob("*/manifest.json")):
        manifest = read_manifest(path)
        _, snapshot = manifest_snapshot(manifest, DEFAULT_BEHAVIOUR_FRACTION)
        points = sorted(manifest["checkpoints"], key=lambda e: e["env_steps"])
        config = json.loads((path.parent / "run" / "config.json").read_text())
        runs.append({"task": manifest["task"], "challenge": manifest["challenge"], "steps": manifest["steps"],
                     "seed": manifest["seed"], "episodes": manifest["episodes"],
                     "agent_config": config["run"].get("agent_config", {}),
                     "best_return": manifest["best_return"],
                     "snapshot": {"env_steps": snapshot["env_steps"], "mean_return": snapshot["mean_return"]},
                     "shipped": snapshot["sha256"] == _shipped_checksum(manifest["task"], manifest["challenge"]),
                     "curve": [[e["env_steps"], e["mean_return"], e["std_return"]] for e in points]})
    return runs


def run_key(run: dict[str, Any]) -> tuple:
    """What names a behaviour run on the page: task, challenge, D4PG config, env steps and seed."""
    return run["task"], run["challenge"], config_label(run["agent_config"]), run["steps"], run["seed"]


def merge_runs(runs: list[dict[str, Any]], previous: Path) -> tuple[list[dict[str, Any]], int]:
    """Return ``runs`` plus the runs of the earlier JSON ``previous`` they lack, sorted by task,
    challenge and D4PG config, and how many were carried over."""
    have = {run_key(r) for r in runs}
    carried = [r for r in json.loads(Path(previous).read_text())["runs"] if run_key(r) not in have]
    merged = sorted(runs + carried, key=lambda r: (r["task"], r["challenge"], config_label(r["agent_config"])))
    return merged, len(carried)


def page(results: dict[str, Any], source: str, date: str | None = None, machine: str | None = None) -> str:
    meta = results_page.measured(results, date, machine)
    rows = [[r["task"], r["challenge"], config_label(r["agent_config"]), f"{r['steps']:,}",
             results_page.fmt(r["curve"][0][1], ".1f"), results_page.fmt(r["best_return"], ".1f"),
             f"{r['snapshot']['env_steps']:,}: {r['snapshot']['mean_return']:.1f}", len(r["curve"]),
             "yes" if r.get("shipped") else "no"]
            for r in results["runs"]]
    body = ["Each run: `rwrl policies train TASK --challenge C --steps N` with the D4PG config named "
            "(`--agent-config preset=fast`, or none: the paper preset), seed 0; every checkpoint's mean "
            "return over its evaluation episodes (10) on the batched env, no exploration noise. The 0.75 "
            "snapshot generates the datasets; `shipped`: it is the one rwrl ships "
            "([docs/datasets.md](../../docs/datasets.md)), whose best return is the datasets' "
            "`ref_max_score`. Figure: [behaviour_curves.png](behaviour_curves.png) (dashed: not shipped)."
            + (f" {results['carried']} of the {len(rows)} runs are carried over from the earlier page by "
               "`--merge` (their folders were not read again)." if results.get("carried") else ""), "",
            *results_page.table(["task", "challenge", "D4PG config", "env steps", "return at step 0",
                                 "best return", "0.75 snapshot (step: return)", "checkpoints", "shipped"],
                                rows, "llllrrlrl")]
    return results_page.render_page(
        "Behaviour runs of the shipped snapshots: learning curves", meta["command"], meta["date"],
        meta["machine"], [(None, body)], source=Path(source).name,
        rebuild=results_page.rebuild_command("behaviour_curves.py", f"--out {source}", meta))


def write_figure(results: dict[str, Any], folder: Path) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    tasks = sorted({r["task"] for r in results["runs"]})
    fig, axes = plt.subplots(1, len(tasks), figsize=(3.6 * len(tasks), 3.0), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        for r in (r for r in results["runs"] if r["task"] == task):
            steps, mean, std = (list(x) for x in zip(*r["curve"]))
            color = COLORS.get(r["challenge"], "C2")
            ax.plot(steps, mean, marker=".", color=color, linestyle="-" if r.get("shipped", True) else "--",
                    label=f"{r['challenge']} ({config_label(r['agent_config'])})")
            ax.fill_between(steps, [m - s for m, s in zip(mean, std)], [m + s for m, s in zip(mean, std)],
                            color=color, alpha=0.2)
            ax.plot([r["snapshot"]["env_steps"]], [r["snapshot"]["mean_return"]], "k*", markersize=9)
        ax.set_title(task)
        ax.set_xlabel("env steps")
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("evaluation return")
    fig.suptitle("behaviour runs (mean +- std over 10 episodes); star: the shipped 0.75 snapshot", fontsize=9)
    fig.tight_layout()
    path = Path(folder) / "behaviour_curves.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _write_page(json_path: Path, date: str | None = None, machine: str | None = None) -> Path:
    return results_page.write_json_page(json_path, page, date, machine)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--policies", type=Path, default=Path("policies"),
                        help="a folder of `rwrl policies train` outputs, one per task and challenge")
    parser.add_argument("--merge", type=Path, default=None,
                        help="an earlier behaviour_curves.json whose runs the folder lacks are kept")
    results_page.add_page_arguments(parser)
    args = parser.parse_args(argv)
    if results_page.rewrite_page_only(parser, args, _write_page):
        return 0
    runs = read_runs(args.policies)
    if not runs:
        parser.error(f"--policies {args.policies}: no */manifest.json under it")
    carried = 0
    if args.merge is not None:
        if not args.merge.is_file():
            parser.error(f"--merge {args.merge}: no such file (an earlier behaviour_curves.json)")
        runs, carried = merge_runs(runs, args.merge)
    results = {"measured": results_page.stamp("behaviour_curves.py", argv), "runs": runs, "carried": carried}
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        write_figure(results, args.out.parent)
    results_page.publish(results, args.out, _write_page)
    return 0


if __name__ == "__main__":
    sys.exit(main())
