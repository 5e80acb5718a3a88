"""Checkpoint cost: size and write time of a run's checkpoints, beside its training speed.

One D4PG run per task at the default run and agent configs, except ``--steps``
(short) and ``--checkpoint-every`` (often, so that a short run writes several
checkpoints); every checkpoint is kept. Per task it reports: env steps per
second of the run (checkpoints included; the first update's compilation, a
fixed cost a short run would overweight, left out), the checkpoints written, the
mean seconds per checkpoint write (the loop's ``checkpoint`` wall-clock
category over their number), the size on disk of the run's ``checkpoints/``
directory and what a resume from its newest checkpoint reads (its files and
the replay chunks it lists), and the share of training time that
checkpoints would take at the default cadence (``checkpoint_every`` = 20,000
env steps): write seconds / (20,000 / env steps per second).

The measuring half imports whatever ``rwrl`` is on the path, so the same file
measures another checkout (``PYTHONPATH=/path/to/old/checkout``): that is how
"before" and "after" are measured in one sitting, each writing a raw JSON
(``--raw``), which ``--combine`` then merges into the results JSON and page.

Usage::

    python benchmarks/checkpoints.py --label after --raw /tmp/ckpt-after.json
    PYTHONPATH=/tmp/before python benchmarks/checkpoints.py --label before --raw /tmp/ckpt-before.json
    python benchmarks/checkpoints.py --combine /tmp/ckpt-before.json /tmp/ckpt-after.json \
        --out benchmarks/results/checkpoints.json
    python benchmarks/checkpoints.py --page-only --out benchmarks/results/checkpoints.json
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")
sys.path.insert(0, str(Path(__file__).resolve().parent))  # results_page.py beside this file

#: the default run's checkpoint cadence, env steps (``RunConfig.checkpoint_every``).
DEFAULT_CHECKPOINT_EVERY = 20_000
TASKS = ("cartpole-swingup", "walker-walk", "humanoid-walk")


def _du(path: Path) -> int:
    """Return the bytes of every file under ``path`` (hard links counted once)."""
    seen, total = set(), 0
    for file in path.rglob("*"):
        if file.is_file():
            stat = file.stat()
            if (stat.st_dev, stat.st_ino) not in seen:
                seen.add((stat.st_dev, stat.st_ino))
                total += stat.st_size
    return total


def _newest_bytes(checkpoint: Path) -> int:
    """Return the bytes a resume from ``checkpoint`` reads: its files and the replay chunks it lists."""
    manifest = json.loads((checkpoint / "manifest.json").read_text())
    chunks = checkpoint.parent / "chunks"
    return _du(checkpoint) + sum((chunks / entry["file"]).stat().st_size
                                 for entry in manifest.get("chunks", []))


def measure_task(task: str, steps: int, checkpoint_every: int, root: Path) -> dict:
    """Train D4PG on ``task`` for ``steps`` env steps; return its checkpoint and speed figures."""
    from rwrl.experiments.config import RunConfig
    from rwrl.experiments.run import RunHooks, start_run
    keep = steps // checkpoint_every + 3  # every checkpoint (step 0, the cadence, the end)
    config = RunConfig(agent="d4pg", env=task, steps=steps, checkpoint_every=checkpoint_every,
                       eval_every=steps, keep_checkpoints=keep, report=False)
    run_dir = root / task
    summary = start_run(config, run_dir, RunHooks(progress=False))
    checkpoints = sorted((run_dir / "checkpoints").glob("ckpt-*"))
    timing = summary["timing"]
    write_s = timing["checkpoint"] / len(checkpoints)
    # the first update's compilation is a fixed cost that a short run overweights
    steps_per_s = summary["counters"]["env_steps"] / (timing["total"] - timing["compile"])
    return {"task": task, "env_steps": summary["counters"]["env_steps"],
            "save_replay": config.save_replay, "env_steps_per_s": round(steps_per_s, 1),
            "checkpoints": len(checkpoints), "write_s": round(write_s, 3),
            "dir_mb": round(_du(run_dir / "checkpoints") / 2**20, 2),
            "newest_mb": round(_newest_bytes(checkpoints[-1]) / 2**20, 2),
            "default_cadence_share": round(write_s / (DEFAULT_CHECKPOINT_EVERY / steps_per_s), 5)}


def measure(args: argparse.Namespace) -> dict:
    """Measure every task of ``args`` with the ``rwrl`` on the path; return the raw JSON."""
    with tempfile.TemporaryDirectory(prefix="rwrl-ckpt-") as tmp:
        rows = []
        for task in args.tasks:
            rows.append(measure_task(task, args.steps, args.checkpoint_every, Path(tmp)))
            print(json.dumps(rows[-1]), file=sys.stderr)
    import rwrl
    return {"label": args.label, "rwrl": str(Path(rwrl.__file__).parent), "rows": rows,
            "steps": args.steps, "checkpoint_every": args.checkpoint_every}


def combine(raw_paths: list[Path], argv: list[str]) -> dict:
    """Return the results JSON of raw measurements taken in one sitting (one label each)."""
    import results_page
    sides = [json.loads(Path(p).read_text()) for p in raw_paths]
    return {"sides": sides, "measured": results_page.stamp("checkpoints.py", argv)}


def page(result: dict, source: str, date: str | None = None, machine: str | None = None) -> str:
    """Return the results page of the combined JSON (``source``: its path as the command gives it)."""
    import results_page
    meta = results_page.measured(result, date, machine)
    rows = [[side["label"], row["task"], row["save_replay"], row["env_steps"],
             row["env_steps_per_s"], row["checkpoints"], row["write_s"], row["newest_mb"],
             row["dir_mb"], f"{100 * row['default_cadence_share']:.2f} %"]
            for side in result["sides"] for row in side["rows"]]
    first = result["sides"][0]
    sections = [(None, [
        f"D4PG at the default run and agent configs, {first['steps']} env steps, a checkpoint "
        f"every {first['checkpoint_every']} env steps, all kept; the sides were measured one "
        f"after the other in one sitting, each importing its own checkout. Share at the default "
        f"cadence: write seconds over the training seconds of {DEFAULT_CHECKPOINT_EVERY:,} env steps.",
        "", *results_page.table(
            ["side", "task", "replay saved", "env steps", "env steps/s (no compile)", "checkpoints",
             "s per write", "newest MB", "all MB", "share at default cadence"], rows,
            "llrrrrrrrr"), "",
        *[f"- {side['label']}: `{side['command']}` (rwrl from `{side['rwrl']}`)"
          for side in result["sides"]]])]
    return results_page.render_page(
        "Checkpoints: size and write time beside training speed", meta["command"], meta["date"],
        meta["machine"], sections, source=Path(source).name,
        rebuild=results_page.rebuild_command("checkpoints.py", f"--out {source}", meta))


def write_page(json_path: Path, date: str | None = None, machine: str | None = None) -> Path:
    """Write the page beside ``json_path`` from that JSON; return the page's path."""
    import results_page
    return results_page.write_json_page(json_path, page, date, machine)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS))
    parser.add_argument("--steps", type=int, default=6_000)
    parser.add_argument("--checkpoint-every", type=int, default=2_000)
    parser.add_argument("--label", default="this checkout")
    parser.add_argument("--raw", type=Path, help="measure, and write the raw JSON here")
    parser.add_argument("--combine", nargs="+", type=Path, help="raw JSONs to merge into --out")
    import results_page
    results_page.add_page_arguments(parser)
    args = parser.parse_args(argv)
    if args.page_only or args.combine:
        if args.combine:
            results_page.publish(combine(args.combine, argv), args.out, write_page)
        else:
            results_page.rewrite_page_only(parser, args, write_page)
        return
    if args.raw is None:
        parser.error("give --raw FILE to measure, or --combine RAW... --out FILE")
    result = measure(args)
    result["command"] = shlex.join(["python", "benchmarks/checkpoints.py", *argv])
    args.raw.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
