"""Generation rate of rwrl datasets: env steps per second of the behaviour rollouts.

Times ``rwrl.datasets.episodes.run_episodes`` (the vector env and the batched
snapshot policy, noise on: what ``rwrl dataset create`` spends nearly all its
time in) for one chunk of ``num_envs`` full episodes, after a warm-up chunk
that compiles the policy. Prints one JSON object. Usage::

    python benchmarks/dataset_generation.py --policy policies/walker-walk-none --num-envs 50
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def main() -> None:
    from rwrl.datasets.create import resolve_policy
    from rwrl.datasets.behaviour_policies import make_vector_env
    from rwrl.datasets.episodes import derived_seeds, run_episodes
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--policy", required=True, help="policies manifest or directory")
    parser.add_argument("--challenge", default="none")
    parser.add_argument("--num-envs", type=int, default=50)
    args = parser.parse_args()
    policy, _ = resolve_policy(args.policy, 0.75)
    kwargs = {} if args.challenge == "none" else {"combined_challenge": args.challenge}
    env = make_vector_env(policy.env_id, kwargs, args.num_envs)
    rng = np.random.default_rng(0)
    run_episodes(env, policy, derived_seeds(0, "warm-up", 0, args.num_envs), 0.2, rng)
    started = time.perf_counter()
    arrays = run_episodes(env, policy, derived_seeds(0, "bench", 0, args.num_envs), 0.2, rng)
    seconds = time.perf_counter() - started
    steps = int(arrays.lengths.sum())
    print(json.dumps({"task": policy.env, "challenge": args.challenge, "num_envs": args.num_envs,
                      "steps": steps, "seconds": round(seconds, 2),
                      "steps_per_s": round(steps / seconds)}, indent=2))


if __name__ == "__main__":
    main()
