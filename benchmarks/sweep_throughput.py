"""Sweep throughput: runs per hour of one sweep on the local backend and on Ray, same process.

The sweep: ``sweeps/main.toml`` (D4PG on cartpole-swingup, none and easy)
with ``--seeds`` seeds and ``--steps`` env steps per run, run twice into
fresh directories under ``--root``: once on the local process pool, once
on a local Ray (``ray.init(num_cpus=workers)``), each with ``--workers``
runs at once. Prints one JSON object: per backend the wall-clock seconds,
runs per hour, env steps per second summed over runs, and the ratio
Ray / local measured in this run (the machines are noisy: the ratio is
what compares). Runs per hour at another scale follow from env steps/s
divided by that scale's steps per run (the runs are learner-bound, so the
rate barely depends on the run length past compilation).

Run it on an otherwise idle machine: Ray starts its workers at niceness 15
(``worker_niceness``), so beside other busy processes the Ray half measures
what is left over (one try beside two training jobs: 0.07x local).

``--out FILE`` also writes the JSON to FILE and its results page beside it
(FILE with ``.md``); ``--page-only --out FILE`` rewrites that page from FILE.

Usage::

    python benchmarks/sweep_throughput.py --root /tmp/sweep-throughput --steps 10000 --seeds 2
    python benchmarks/sweep_throughput.py --page-only --out benchmarks/results/sweep_throughput.json
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SPEC = REPO / "sweeps" / "main.toml"


def measure(backend: str, root: Path, steps: int, seeds: int, workers: int) -> dict:
    from rwrl.experiments.sweeps.plan import Overrides, load_plan
    from rwrl.experiments.sweeps.run import record_plan, run_sweep
    plan = load_plan(SPEC, Overrides(steps=steps, seeds=seeds))
    sweep_dir = root / backend
    shutil.rmtree(sweep_dir, ignore_errors=True)
    (sweep_dir / "runs").mkdir(parents=True)
    record_plan(sweep_dir, plan)
    started = time.perf_counter()
    counts = run_sweep(plan, sweep_dir, backend=backend, workers=workers, progress=False)
    seconds = time.perf_counter() - started
    runs = counts["done"]
    return {"backend": backend, "runs": runs, "failed": counts["failed"],
            "seconds": round(seconds, 1), "runs_per_hour": round(3600 * runs / seconds, 2),
            "env_steps_per_s": round(runs * steps / seconds, 1)}


def page(result: dict, source: str, date: str | None = None, machine: str | None = None) -> str:
    """Return the results page of one run's JSON (``source``: its path as the command gives it)."""
    import results_page
    meta = results_page.measured(
        result, date, machine, command=(f"python benchmarks/sweep_throughput.py --steps "
                                        f"{result['steps_per_run']} --seeds {result['seeds']} "
                                        f"--workers {result['workers']} --out {source}"))
    rows = [[r["backend"], r["runs"], r["failed"], f"{r['seconds']:.1f}", f"{r['runs_per_hour']:.1f}",
             f"{r['env_steps_per_s']:.1f}"] for r in (result["local"], result["ray"])]
    sections = [
        (None, [f"`{result['sweep']}` with {result['seeds']} seeds, {result['steps_per_run']} env "
                f"steps per run, {result['workers']} runs at once: first on the local process pool, "
                f"then on a local Ray (`ray.init(num_cpus={result['workers']})`), in one process. "
                "The machines are noisy: the ratio of the two, measured in one sitting, is what "
                "compares.", "",
                *results_page.table(["backend", "runs", "failed", "wall-clock s", "runs per hour",
                                     "env steps/s summed"], rows, "lrrrrr"), "",
                f"Ray / local, runs per hour: **{result['ray_over_local_runs_per_hour']:.3f}**."]),
    ]
    return results_page.render_page(
        "Sweep throughput: the local process pool against Ray", meta["command"], meta["date"],
        meta["machine"], sections, source=Path(source).name,
        rebuild=results_page.rebuild_command("sweep_throughput.py", f"--out {source}", meta))


def write_page(json_path: Path, date: str | None = None, machine: str | None = None) -> Path:
    """Write the page beside ``json_path`` from that JSON; return the page's path."""
    import results_page
    return results_page.write_json_page(json_path, page, date, machine)


def main(argv: list[str] | None = None) -> int:
    import results_page
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=Path("/tmp/rwrl-sweep-throughput"))
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    results_page.add_page_arguments(parser)
    args = parser.parse_args(argv)
    if results_page.rewrite_page_only(parser, args, write_page):
        return 0
    local = measure("local", args.root, args.steps, args.seeds, args.workers)
    ray = measure("ray", args.root, args.steps, args.seeds, args.workers)
    result = {"sweep": str(SPEC.relative_to(REPO)), "steps_per_run": args.steps,
              "seeds": args.seeds, "workers": args.workers, "local": local, "ray": ray,
              "ray_over_local_runs_per_hour": round(ray["runs_per_hour"] / local["runs_per_hour"], 3),
              "measured": results_page.stamp("sweep_throughput.py",
                                             sys.argv[1:] if argv is None else argv)}
    results_page.publish(result, args.out, write_page)
    return 0


if __name__ == "__main__":
    sys.exit(main())
