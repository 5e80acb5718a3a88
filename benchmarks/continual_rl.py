"""Continual RL under regime changes (issue 29): the runs of ``sweeps/continual.toml``, summarised.

Reads a sweep directory of ``sweeps/continual.toml`` (``rwrl sweep run
sweeps/continual.toml --out DIR``) and writes, per task and method, Continual
World's numbers from each run's ``summary.json`` (``rwrl.metrics.continual``):
the average performance over the regimes at the end, the forgetting (mean over
regimes of the performance at the end of its own training period minus at the
end of the run) and the performance on the last regime, each a 95 % t-interval
over seeds; and, for ``d4pg-hcl``, how its detector's declarations (the train
rows' ``learner/consolidations`` count going up) match the true switches (the
train rows' ``regime`` changing): delay in episodes of env 0 and false alarms.

The questions (issue 29): does consolidation lower forgetting of earlier regimes at
equal return on the last one (against "finetune": D4PG-EWC with weight 0, the same
replay resets; and "plain" D4PG, whose replay keeps every regime), and does the
detector find the switches. Only finished runs count; the page says how many.

Usage::

    python benchmarks/continual_rl.py --runs /work/continual-sweep --out benchmarks/results/continual_rl.json
    python benchmarks/continual_rl.py --runs /tmp/c --archive benchmarks/results/archive/continual \
        --out benchmarks/results/continual_rl.json    # from the committed archive alone
    python benchmarks/continual_rl.py --page-only --out benchmarks/results/continual_rl.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # results_page.py beside this file

import results_page  # noqa: E402

#: the sweep's (agent, level) pairs and the name each method has on the page, in page order.
METHODS = {("d4pg", "plain"): "plain D4PG (replay kept)", ("d4pg-ewc", "finetune"): "fine-tuning (EWC, weight 0)",
           ("d4pg-ewc", "consolidate"): "D4PG-EWC", ("d4pg-kfac", "consolidate"): "D4PG-KFAC",
           ("d4pg-hcl", "consolidate"): "D4PG-HCL (switches detected)"}


def _rows(run: Path) -> list[dict[str, Any]]:
    from rwrl.metrics.episode_file import read_rows
    return [r for r in read_rows(run / "metrics.jsonl") if r["phase"] == "train" and r["env_index"] == 0]


def detection(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Return env 0's switches, the detector's declarations and their match (episode indices of env 0).

    A switch is an episode whose regime differs from the one before; a declaration an
    episode whose ``learner/consolidations`` is above the one before. They are matched as
    HCL's own benchmark matches them (``rwrl.continual.hcl.detection_report``): each switch
    takes the first declaration at or after it and before the next switch (delay: their
    distance); every other declaration is a false alarm.
    """
    from rwrl.continual.hcl import detection_report
    switches = [i for i in range(1, len(rows)) if rows[i].get("regime") != rows[i - 1].get("regime")]
    counts = [r.get("learner/consolidations") or 0.0 for r in rows]
    declared = [i for i in range(1, len(rows)) if counts[i] > counts[i - 1]]
    report = detection_report(declared, switches)
    return {"switches": switches, "declared": declared, "delays": list(report.delays),
            "false_alarms": report.false_alarms}


def collect(sweep: Path) -> dict[str, Any]:
    """Return the finished runs' numbers, by task and method."""
    results: dict[str, Any] = {}
    for run in sorted((sweep / "runs").iterdir()):
        summary_file = run / "summary.json"
        if not summary_file.exists():
            continue
        config = json.loads((run / "config.json").read_text())["run"]
        agent, env, seed = config["agent"], config["env"], config["seed"]
        level = run.name.split("__")[2]
        summary = json.loads(summary_file.read_text())
        regimes = sorted(int(k.rsplit("/", 1)[1]) for k in summary if k.startswith("continual/performance/"))
        entry = {"seed": seed, "average_performance": summary.get("continual/average_performance"),
                 "forgetting": summary.get("continual/forgetting"),
                 "last_regime": summary.get(f"continual/performance/{regimes[-1]}") if regimes else None,
                 "forgetting_per_regime": [summary.get(f"continual/forgetting/{i}") for i in regimes],
                 "scale": summary.get("continual/scale")}
        if agent == "d4pg-hcl":
            entry["detection"] = detection(_rows(run))
        results.setdefault(env, {}).setdefault(f"{agent}|{level}", []).append(entry)
    return results


def _cell(values: list[float], spec: str = ".3f") -> str:
    mean, low, high = results_page.t_interval(values)
    return f"{results_page.fmt(mean, spec)} [{results_page.fmt(low, spec)}, {results_page.fmt(high, spec)}]"


def page(results: dict[str, Any], source: str) -> str:
    """Return the page of ``results`` (``collect``'s, with the ``measured`` entry)."""
    meta = results_page.measured(results)
    sections = [(None, [
        "Each run: `sweeps/continual.toml` (three regimes of one physical parameter, 6 episodes of each of 8 "
        "training envs on cartpole-swingup, 12 on walker-walk; D4PG's fast preset). Performance: mean evaluation return on a "
        "regime divided by the episode length (`continual/scale`), so 1 is the best possible; forgetting: "
        "performance at the end of a regime's own training period minus at the end of the run, mean over "
        "regimes (the last counts 0, as Continual World does). Each cell: mean [95 % t-interval over seeds]."])]
    for env, methods in results["tasks"].items():
        table = []
        for (agent, level), name in METHODS.items():
            runs = methods.get(f"{agent}|{level}", [])
            if not runs:
                continue
            table.append([name, len(runs), _cell([r["average_performance"] for r in runs]),
                          _cell([r["forgetting"] for r in runs]), _cell([r["last_regime"] for r in runs])])
        lines = results_page.table(["method", "seeds", "average performance", "forgetting", "last regime"],
                                   table, "llrrr")
        hcl = methods.get("d4pg-hcl|consolidate", [])
        if hcl:
            lines += ["", "D4PG-HCL's detector (env 0's episodes): per seed, the switches' delays (episodes; "
                      "none: missed) and the declarations that matched no switch."]
            lines += [f"- seed {r['seed']}: delays {r['detection']['delays']}, false alarms "
                      f"{r['detection']['false_alarms']}" for r in hcl]
        sections.append((env, lines))
    return results_page.render_page(
        "Continual RL under regime changes (issue 29)", meta["command"], meta["date"], meta["machine"],
        sections, source=Path(source).name,
        rebuild=results_page.rebuild_command("continual_rl.py", f"--out {source}", meta))


def write_page(json_path: Path, date: str | None = None, machine: str | None = None) -> Path:
    return results_page.write_json_page(json_path, page)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=Path, help="the sweep directory of sweeps/continual.toml")
    parser.add_argument("--archive", type=Path, help="restore this archive's finished runs into --runs first "
                        "(`rwrl sweep run --archive`'s; an empty --runs gets the archive's plan)")
    results_page.add_page_arguments(parser)
    args = parser.parse_args(argv)
    if results_page.rewrite_page_only(parser, args, write_page):
        return 0
    if args.runs is None or args.out is None:
        parser.error("--runs and --out are needed unless --page-only")
    if args.archive is not None:
        from rwrl.experiments.sweeps.archive import restore
        print(f"restored {restore(args.archive, args.runs)} runs from {args.archive}")
    results = {"tasks": collect(args.runs), "measured": results_page.stamp("continual_rl.py", argv)}
    from rwrl.storage.atomic_files import atomic_write_bytes
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(args.out, (json.dumps(results, indent=1) + "\n").encode())
    print(f"page: {write_page(args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
