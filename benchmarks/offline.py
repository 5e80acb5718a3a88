"""The offline benchmark (issue 9): normalized scores of BC, CRR and IQL on the rwrl datasets.

Three resumable stages, then the table; run the same command again after a
kill (or in a later sitting) and each stage continues where it stopped:

1. Behaviour policies per task and challenge, only with ``--stages policies,...``
   (``rwrl policies train``: an online D4PG run whose checkpoints are
   evaluated, the runs behind the shipped snapshots) into
   ``ROOT/policies/<task>-<challenge>``; ``--policy-steps`` per task. Without
   it the datasets use the behaviour snapshots shipped with rwrl.
2. The datasets (``rwrl dataset create``, the manifest's 0.75 snapshot with
   the default behaviour noise) under ``MINARI_DATASETS_PATH`` (default
   ``ROOT/datasets``); each one's generation time, rate and size on disk go
   to ``ROOT/datasets.json``. These two stages take every published task
   (also quadruped-walk and humanoid-walk) and size (1, 5, 20, 40, 100 %):
   ``--tasks quadruped-walk --sizes 1,5,20,40,100 --stages policies,datasets``
   makes the sets no agent of the sweep file trains on.
3. The agents: ``sweeps/offline.toml`` as ordinary ``rwrl sweep``s, one
   directory per dataset ``ROOT/sweeps/<task>-<challenge>-<size>pct``
   (3 agents x 4 tasks x none/easy x 5 %/20 % x 3 seeds);
   ``--updates`` replaces the file's learner updates per run (reduced scale).

A (task, challenge) with no behaviour policy (none in ``ROOT/policies`` and
none shipped: humanoid-walk under ``easy`` today) is skipped by stages 2 and
3 with a line naming the command that trains one; ``--stages policies``
trains it.

The table (``OUT/offline.md``, ``OUT/offline.json``): per dataset and
agent the final normalized score (the last evaluation's return, 0 = the
random policy's mean return, 100 = the best behaviour snapshot's; Minari's
``ref_min_score`` / ``ref_max_score``), mean over seeds with a 95 %
bootstrap interval, and the issue's checks: CRR at or above BC on each
dataset, and every agent above the random policy (score > 0). Nothing is
tuned to make them hold. The page's first line is the command a reader runs
to continue it (``--root R`` for their own run folder, then the flags that
differ from the defaults) and, while cells of the plan lack seeds, how many.

Usage::

    python benchmarks/offline.py --root runs/offline                  # everything, file scale
    python benchmarks/offline.py --root runs/offline --updates 20000 --tasks cartpole-swingup
    python benchmarks/offline.py --root runs/offline --summarize-only
    python benchmarks/offline.py --root runs/offline --summarize-only --merge benchmarks/results/offline.json
    python benchmarks/offline.py --root runs/offline --updates 20000 --archive benchmarks/results/archive/offline

``--archive DIR`` keeps each finished agent run (config, summary, compressed
metrics; no checkpoints) under ``DIR/<dataset's sweep>/`` as it finishes and
restores them into a fresh ROOT: commit DIR to continue from a fresh checkout
(the policies and datasets are made again: on another machine or install the
behaviour run, and so the data, may differ, as walker easy did on 2026-12-01).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

import sweep_file
from rwrl.datasets import naming
from rwrl.datasets.shipped_policies import training_recipe

REPO = Path(__file__).resolve().parents[1]
SWEEP_FILE = REPO / "sweeps" / "offline.toml"
#: the datasets the agents of sweeps/offline.toml train on (stage 3).
TASKS = ("cartpole-swingup", "walker-walk", "quadruped-walk", "humanoid-walk")
CHALLENGES = ("none", "easy")
SIZES = (5, 20)
#: the sweep file's agents, in the table's column order.
AGENTS = ("bc", "crr", "iql")
#: ``--seeds`` and ``--workers`` defaults (the page's command names them only where they differ).
SEEDS, WORKERS = 3, 1
#: the online run behind each task's behaviour policies: that of the snapshots rwrl ships
#: (``rwrl.datasets.shipped_policies.training_recipe``: env steps and D4PG config per task and
#: challenge; ``--policy-steps`` replaces the steps); the best checkpoint is the 100 % of the
#: dataset's normalized score.
DATASETS_FILE = "datasets.json"


def _dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def make_policies(args: argparse.Namespace) -> None:
    """Stage 1: train (or continue) each task's and challenge's behaviour policies."""
    from rwrl.experiments.behaviour_training import train_behaviour_policies
    for task in args.tasks:
        for challenge in args.challenges:
            out = args.root / "policies" / f"{task}-{challenge}"
            print(f"policies {task} {challenge} -> {out}", flush=True)
            steps, agent_config = training_recipe(task, challenge)
            manifest = train_behaviour_policies(task, challenge, out, steps=args.policy_steps.get(task, steps),
                                                agent_config=agent_config, progress=not args.no_progress)
            print(f"  best return {manifest['best_return']:.1f}", flush=True)


def behaviour_manifest(root: Path, task: str, challenge: str) -> Path | None:
    """Return the behaviour manifest of ``task`` under ``challenge``: ROOT's run, else the shipped one.

    None when neither exists (the caller skips that pair and says how to train it).
    """
    from rwrl.datasets.behaviour_policies import PolicyError
    from rwrl.datasets.create import default_policy_path
    try:
        return default_policy_path(task, challenge, root / "policies")
    except PolicyError:
        return None


def _pairs_with_policy(args: argparse.Namespace, stage: str):
    """Yield (task, challenge, manifest) for each pair that has a behaviour policy; say which do not."""
    for task in args.tasks:
        for challenge in args.challenges:
            manifest = behaviour_manifest(args.root, task, challenge)
            if manifest is None:
                print(f"{stage}: {task} {challenge} skipped: no behaviour policy in "
                      f"{args.root / 'policies'} and none shipped (train one: `python "
                      f"benchmarks/offline.py --root {args.root} --tasks {task} --challenges "
                      f"{challenge} --stages policies`)", flush=True)
                continue
            yield task, challenge, manifest


def dataset_score(dataset_id: str, summary: dict) -> dict[str, float]:
    """Return the dataset's mean episode return and its normalized score (D4RL's dataset score).

    The score is 100 * (mean - ref_min_score) / (ref_max_score - ref_min_score): 0 the random
    policy, 100 the best behaviour checkpoint, as the agents' scores are.
    """
    import minari
    returns = [float(episode.rewards.sum()) for episode in minari.load_dataset(dataset_id).iterate_episodes()]
    mean = sum(returns) / len(returns)
    low, high = summary["ref_min_score"], summary["ref_max_score"]
    return {"mean_return": round(mean, 2), "score": round(100 * (mean - low) / (high - low), 1)}


def make_datasets(args: argparse.Namespace) -> None:
    """Stage 2: create (or continue, or find) each dataset; record time, rate and size."""
    from rwrl.storage.atomic_files import atomic_write_bytes
    from rwrl.datasets import naming, store
    from rwrl.datasets.create import create_dataset
    record_path = args.root / DATASETS_FILE
    record = json.loads(record_path.read_text()) if record_path.exists() else {}
    for task, challenge, policy in _pairs_with_policy(args, "datasets"):
        for size in args.sizes:
            dataset_id = naming.dataset_id(task, challenge, size)
            fresh = not (store.dataset_dir(dataset_id) / "data").exists()
            started = time.perf_counter()
            summary = create_dataset(task, challenge, size, policy=policy,
                                     progress=not args.no_progress)
            seconds = time.perf_counter() - started
            entry = record.get(dataset_id, {})
            if fresh:  # a resumed generation's time covers only its last part
                steps = int(summary["steps"])
                entry = {"seconds": round(seconds, 1), "steps": steps,
                         "steps_per_s": round(steps / seconds) if seconds > 0 else None}
            entry["episodes"] = summary["episodes"]
            entry["bytes"] = _dir_bytes(store.dataset_dir(dataset_id))
            entry.update(dataset_score(dataset_id, summary))
            record[dataset_id] = entry
            atomic_write_bytes(record_path, (json.dumps(record, indent=2, sort_keys=True)
                                             + "\n").encode())
            print(f"dataset {dataset_id}: {entry}", flush=True)


def run_agents(args: argparse.Namespace) -> None:
    """Stage 3: the offline agents' sweep, one sweep directory per dataset (resumable).

    One directory per dataset (``ROOT/sweeps/<task>-<challenge>-<size>pct``) so that a later
    invocation may add tasks, challenges or sizes without changing a recorded plan.
    """
    from rwrl.experiments.sweeps.plan import Overrides
    for task, challenge, _ in _pairs_with_policy(args, "agents"):
        for size in args.sizes:
            if task not in TASKS or size not in SIZES:
                continue  # a dataset made for its own sake: no agent of the sweep file uses it
            level = f"{challenge}-{size}pct"
            name = f"{task}-{level}"
            sweep_file.run_sweep_file(
                SWEEP_FILE, args.root / "sweeps" / name,
                Overrides(seeds=args.seeds, steps=args.updates, envs=(task,)),
                workers=args.workers, progress=not args.no_progress,
                keep=lambda run, level=level: run.level == level,
                archive=args.archive / name if args.archive else None)


def _scores(root: Path) -> tuple[dict[tuple[str, str], list[float]], set[int]]:
    """Final normalized score per (dataset, agent), one per finished seed; the runs' updates."""
    from rwrl.metrics import sweep_results as results
    scores: dict[tuple[str, str], list[float]] = {}
    updates: set[int] = set()
    for sweep_dir in sorted(root.glob("sweeps/*/")):
        plan = results.read_plan(sweep_dir)
        status = results.statuses(sweep_dir, plan)
        for run in plan["runs"]:
            if status.get(run["run_id"]) != "done":
                continue
            path = results.run_dir(sweep_dir, run["run_id"]) / "summary.json"
            score = json.loads(path.read_text()).get("final_normalized_score")
            if score is not None:
                scores.setdefault((run["config"]["dataset"], run["config"]["agent"]), []).append(score)
                updates.add(run["config"]["steps"])
    return scores, updates


def _behaviour_policies(root: Path) -> list[dict]:
    """One row per finished ``ROOT/policies/*/manifest.json``: its return and the datasets' snapshot."""
    from rwrl.datasets.behaviour_policies import DEFAULT_BEHAVIOUR_FRACTION, manifest_snapshot, read_manifest
    rows = []
    for path in sorted(root.glob("policies/*/manifest.json")):
        manifest = read_manifest(path)
        _, snapshot = manifest_snapshot(manifest, DEFAULT_BEHAVIOUR_FRACTION)
        rows.append({"task": manifest["task"], "challenge": manifest["challenge"], "steps": manifest["steps"],
                     "best_return": manifest["best_return"], "snapshot_step": snapshot["env_steps"],
                     "snapshot_return": snapshot["mean_return"]})
    return rows


def _cell(values: list[float]) -> str:
    from rwrl.report.aggregate import estimate
    return sweep_file.format_estimate(estimate(values)) if values else "–"


def _merge(previous: Path, scores: dict, record: dict, policies: list[dict],
           updates: set[int]) -> list[str]:
    """Add an earlier ``offline.json``'s figures for what ROOT lacks; return what was carried over.

    Run directories may not outlive a sitting (a fresh checkout has none): ``--merge`` keeps the
    table whole by taking each (dataset, agent) cell, dataset record and behaviour policy that
    ROOT has no figure for from the earlier table; ROOT's own figures always win.
    """
    old = json.loads(previous.read_text())
    carried = []
    for key, values in old.get("scores", {}).items():
        dataset, agent = key.split("|")
        if (dataset, agent) not in scores:
            scores[(dataset, agent)] = list(values)
            carried.append(key)
    for dataset_id, entry in old.get("datasets", {}).items():
        record.setdefault(dataset_id, entry)
    have = {(p["task"], p["challenge"]) for p in policies}
    policies += [p for p in old.get("policies", []) if (p["task"], p["challenge"]) not in have]
    policies.sort(key=lambda p: (p["task"], p["challenge"]))
    if carried:
        updates.update(old.get("updates", []))
    return carried


def rerun_command(args: argparse.Namespace) -> str:
    """The command a reader runs to continue (or remake) the table: ``--root R`` (the run folder is
    the reader's own) and the plan's flags where they differ from the defaults."""
    words = ["python", "benchmarks/offline.py", "--root", "R"]
    for flag, value, default in (("--tasks", args.tasks, list(TASKS)),
                                 ("--challenges", args.challenges, list(CHALLENGES)),
                                 ("--sizes", args.sizes, list(SIZES)), ("--seeds", args.seeds, SEEDS),
                                 ("--updates", args.updates, None), ("--workers", args.workers, WORKERS)):
        if value != default:
            words += [flag, ",".join(map(str, value)) if isinstance(value, list) else str(value)]
    if args.archive:
        archive = args.archive.resolve()
        words += ["--archive", str(archive.relative_to(REPO) if archive.is_relative_to(REPO) else archive)]
    return shlex.join(words)


def _unfinished_cells(args: argparse.Namespace, scores: dict) -> tuple[int, int]:
    """(unfinished, planned): the (dataset, agent) cells of the plan (``--tasks`` x ``--challenges``
    x ``--sizes`` that the sweep file trains on, x BC, CRR, IQL) and how many of them have fewer than
    ``--seeds`` finished seeds."""
    cells = [(naming.dataset_id(t, c, s), a) for t in args.tasks if t in TASKS
             for c in args.challenges for s in args.sizes if s in SIZES for a in AGENTS]
    return sum(len(scores.get(cell, [])) < args.seeds for cell in cells), len(cells)


def summarize(args: argparse.Namespace) -> Path:
    """Write OUT/offline.md and OUT/offline.json from the finished runs (and ``--merge``'s table)."""
    import numpy as np
    scores, updates = _scores(args.root)
    record_path = args.root / DATASETS_FILE
    record = json.loads(record_path.read_text()) if record_path.exists() else {}
    policies = _behaviour_policies(args.root)
    carried = _merge(args.merge, scores, record, policies, updates) if args.merge else []
    datasets = sorted({d for d, _ in scores})
    agents = [a for a in AGENTS if any(a == b for _, b in scores)]
    unfinished = _unfinished_cells(args, scores)
    source = f"`{rerun_command(args)}`" + (
        f" (cells carried over from an earlier table by `--merge`: {len(carried)} of {len(scores)})"
        if args.merge else "") + (
        f" (in progress: {unfinished[0]} of the plan's {unfinished[1]} cells have fewer than "
        f"{args.seeds} seeds finished)" if unfinished[0] else "")
    lines = ["# Offline benchmark: normalized score (0 = random policy, 100 = best behaviour snapshot)",
             "", f"{source}; learner updates per run: "
             f"{sorted(updates)}; each cell: final evaluation's normalized score, mean over "
             "seeds [95 % bootstrap interval], n seeds finished.", ""]
    lines += (["| dataset | " + " | ".join(agents) + " | CRR >= BC? | all > random? |",
               "|---|" + "---:|" * len(agents) + "---|---|"] if agents else ["No agent run has finished yet."])
    checks = {}
    for dataset in datasets:
        means = {a: float(np.mean(scores[(dataset, a)])) for a in agents if scores.get((dataset, a))}
        crr_bc = ("yes" if means["crr"] >= means["bc"] else "no") if {"crr", "bc"} <= set(means) else "–"
        above = ("yes" if all(m > 0 for m in means.values()) else "no") if means else "–"
        checks[dataset] = {"means": means, "crr_at_or_above_bc": crr_bc, "all_above_random": above}
        cells = " | ".join(_cell(scores.get((dataset, a), [])) for a in agents)
        lines.append(f"| `{dataset}` | {cells} | {crr_bc} | {above} |")
    if policies:
        lines += ["", "Behaviour policies (`rwrl policies train`, D4PG): best checkpoint's mean return "
                  "(the datasets' 100 % score) and the snapshot that generates the datasets.", "",
                  "| task | challenge | online env steps | best return | snapshot (step: return) |",
                  "|---|---|---:|---:|---|"]
        for p in policies:
            lines.append(f"| {p['task']} | {p['challenge']} | {p['steps']} | {p['best_return']:.1f} | "
                         f"{p['snapshot_step']}: {p['snapshot_return']:.1f} |")
    if record:
        lines += ["", "Datasets: episodes, size on disk, generation rate (env steps/s), mean episode "
                  "return and its normalized score (the dataset's score: 0 random, 100 the best "
                  "behaviour checkpoint).", "",
                  "| dataset | episodes | MB | steps/s | mean return | score |", "|---|---:|---:|---:|---:|---:|"]
        for dataset_id, entry in sorted(record.items()):
            lines.append(f"| `{dataset_id}` | {entry.get('episodes')} | "
                         f"{entry.get('bytes', 0) / 1e6:.1f} | {entry.get('steps_per_s', '–')} | "
                         f"{entry.get('mean_return', '–')} | {entry.get('score', '–')} |")
    table = {"scores": {f"{d}|{a}": v for (d, a), v in scores.items()}, "checks": checks,
             "datasets": record, "policies": policies, "updates": sorted(updates)}
    return sweep_file.write_tables(args.out, "offline", lines, table)


def _policy_steps(text: str) -> dict[str, int]:
    """Parse ``TASK=STEPS,...``: the behaviour runs' env steps that replace ``training_recipe``'s."""
    steps = {}
    for pair in filter(None, text.split(",")):
        task, _, value = pair.partition("=")
        steps[task] = int(value)
    return steps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=REPO / "runs" / "offline")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--challenges", default=",".join(CHALLENGES))
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--seeds", type=int, default=SEEDS)
    parser.add_argument("--updates", type=int, default=None,
                        help="learner updates per run (default: the sweep file's)")
    parser.add_argument("--policy-steps", default="",
                        help="TASK=STEPS,... env steps of the behaviour run (default: the shipped "
                             "snapshots' runs, rwrl.datasets.shipped_policies.training_recipe)")
    parser.add_argument("--workers", type=int, default=WORKERS)
    parser.add_argument("--stages", default="datasets,agents",
                        help="of policies,datasets,agents; without policies the datasets use the "
                             "shipped behaviour snapshots (ROOT/policies where a run is there)")
    parser.add_argument("--summarize-only", action="store_true")
    parser.add_argument("--merge", type=Path, default=None,
                        help="an earlier offline.json whose figures fill what ROOT lacks (ROOT's win)")
    parser.add_argument("--archive", type=Path, default=None,
                        help=sweep_file.ARCHIVE_HELP + " (one folder per dataset's sweep)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    args.tasks = [t for t in args.tasks.split(",") if t]
    args.challenges = [c for c in args.challenges.split(",") if c]
    args.sizes = [int(s) for s in args.sizes.split(",") if s]
    args.policy_steps = _policy_steps(args.policy_steps)
    bad = ({t for t in args.tasks if t not in naming.FULL_EPISODES},
           {c for c in args.challenges if c not in CHALLENGES}, {s for s in args.sizes if s not in naming.SIZES})
    if any(bad):
        parser.error(f"allowed: --tasks {list(naming.FULL_EPISODES)}, --challenges {list(CHALLENGES)}, "
                     f"--sizes {list(naming.SIZES)} (agents train on {list(TASKS)} x {list(SIZES)} "
                     f"only); got extra {bad}")
    os.environ.setdefault("MINARI_DATASETS_PATH", str((args.root / "datasets").resolve()))
    stages = set(args.stages.split(","))
    if not args.summarize_only:
        if "policies" in stages:
            make_policies(args)
        if "datasets" in stages:
            make_datasets(args)
        if "agents" in stages:
            run_agents(args)
    elif args.archive:
        for archived in sorted(p for p in args.archive.glob("*/") if p.is_dir()):
            sweep_file.restore(archived, args.root / "sweeps" / archived.name)
    summarize(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
