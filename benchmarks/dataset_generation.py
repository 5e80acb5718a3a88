"""Generation rate of rwrl datasets: env steps per second of the behaviour rollouts.

Times ``rwrl.datasets.episodes.run_episodes`` (the vector env and the batched
snapshot policy, noise on: what ``rwrl dataset create`` spends nearly all its
time in) for one chunk of ``num_envs`` full episodes, after a warm-up chunk
that compiles the policy. Prints one JSON object; ``--out FILE`` also writes it to
FILE and its results page beside it (``--page-only`` rewrites that page from FILE
without measuring). Usage::

    python benchmarks/dataset_generation.py --policy policies/walker-walk-none --num-envs 50
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np


def page(result: dict, source: str, date: str | None = None, machine: str | None = None) -> str:
    """Return the results page of one run's JSON (``source``: its path as the command gives it)."""
    import results_page
    meta = results_page.measured(result, date, machine, command=(
        f"python benchmarks/dataset_generation.py --policy POLICY --challenge {result['challenge']} "
        f"--num-envs {result['num_envs']} --out {source}"))
    row = [result["task"], result["challenge"], result["num_envs"], result["steps"],
           f"{result['seconds']:.2f}", result["steps_per_s"]]
    sections = [(None, [
        "One chunk of full episodes of the behaviour policy (noise on) on the vector env, after a "
        "warm-up chunk that compiles the policy: what `rwrl dataset create` spends nearly all its "
        "time in.", "",
        *results_page.table(["task", "challenge", "episodes side by side", "env steps", "seconds",
                             "env steps/s"], [row], "llrrrr")])]
    return results_page.render_page(
        "Dataset generation: env steps per second of the behaviour rollouts", meta["command"],
        meta["date"], meta["machine"], sections, source=Path(source).name,
        rebuild=results_page.rebuild_command("dataset_generation.py", f"--out {source}", meta))


def write_page(json_path: Path, date: str | None = None, machine: str | None = None) -> Path:
    """Write the page beside ``json_path`` from that JSON; return the page's path."""
    import results_page
    return results_page.write_json_page(json_path, page, date, machine)


def main(argv: list[str] | None = None) -> None:
    import results_page
    from rwrl.datasets.create import resolve_policy
    from rwrl.datasets.behaviour_policies import make_vector_env
    from rwrl.datasets.episodes import derived_seeds, run_episodes
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--policy", help="policies manifest or directory (required to measure)")
    parser.add_argument("--challenge", default="none")
    parser.add_argument("--num-envs", type=int, default=50)
    results_page.add_page_arguments(parser)
    args = parser.parse_args(argv)
    if results_page.rewrite_page_only(parser, args, write_page):
        return
    if args.policy is None:
        parser.error("--policy is required (a policies manifest or directory)")
    policy, _ = resolve_policy(args.policy, 0.75)
    kwargs = {} if args.challenge == "none" else {"combined_challenge": args.challenge}
    env = make_vector_env(policy.env_id, kwargs, args.num_envs)
    rng = np.random.default_rng(0)
    run_episodes(env, policy, derived_seeds(0, "warm-up", 0, args.num_envs), 0.2, rng)
    started = time.perf_counter()
    arrays = run_episodes(env, policy, derived_seeds(0, "bench", 0, args.num_envs), 0.2, rng)
    seconds = time.perf_counter() - started
    steps = int(arrays.lengths.sum())
    result = {"task": policy.env, "challenge": args.challenge, "num_envs": args.num_envs,
              "steps": steps, "seconds": round(seconds, 2), "steps_per_s": round(steps / seconds),
              "measured": results_page.stamp("dataset_generation.py",
                                             sys.argv[1:] if argv is None else argv)}
    results_page.publish(result, args.out, write_page)


if __name__ == "__main__":
    main()
