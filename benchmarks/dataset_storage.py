"""Minari storage backends for rwrl datasets: write time, size on disk, random-batch sampling.

Writes the same episodes (random actions on the rwrl vector env, 1000 steps
each, infos included) with each backend through ``rwrl.datasets.store`` and
measures:

* ``write_s``: seconds to write the dataset (checksum read-back included);
* ``bytes``: size on disk of the dataset directory;
* ``sample_episodes_ms``: ``dataset.sample_episodes(k)`` (random episodes, every array read);
* ``batch_ms``: one random batch of ``batch`` transitions as an offline learner samples
  it: ``sample_episodes`` of ``k`` episodes, then ``batch`` random steps among them;
* ``iterate_s``: reading every episode once (what a loader into memory does).

Minari 0.5.4's Arrow backend writes a per-step scalar info (``cost``, shape
(T+1,)) but cannot read it back (``_decode_info``: ``int(b'')``); the script
records that error, then measures Arrow with ``cost`` stored as (T+1, 1).

Prints one JSON object. Usage::

    python benchmarks/dataset_storage.py --task cartpole-swingup --episodes 20
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _episodes(task: str, episodes: int, seed: int):
    from rwrl.datasets.behaviour_policies import make_vector_env, random_policy
    from rwrl.datasets.episodes import derived_seeds, run_episodes
    env = make_vector_env(f"rwrl/{task}-v0", {}, episodes)
    space = env.single_action_space
    arrays = run_episodes(env, random_policy(space.low, space.high, seed),
                          derived_seeds(seed, "bench", 0, episodes))
    from rwrl.datasets.store import float32_box
    return arrays, float32_box(env.single_observation_space), space


def _measure(fmt: str, root: Path, arrays, obs_space, act_space, args) -> dict:
    import minari

    from rwrl.datasets.store import env_spec, write_dataset
    os.environ["MINARI_DATASETS_PATH"] = str(root)
    where = root / "rwrl" / f"bench-{fmt}-v0"
    started = time.perf_counter()
    write_dataset(where, f"rwrl/bench-{fmt}-v0", env_spec(f"rwrl/{args.task}-v0", {}),
                  obs_space, act_space, [arrays], {}, data_format=fmt)
    write_s = time.perf_counter() - started
    dataset = minari.load_dataset(f"rwrl/bench-{fmt}-v0")
    dataset.set_seed(0)
    rng = np.random.default_rng(0)
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        eps = dataset.sample_episodes(args.k)
        times.append(time.perf_counter() - t0)
    batch_times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        eps = dataset.sample_episodes(args.k)
        which = rng.integers(len(eps), size=args.batch)
        steps = [rng.integers(len(eps[i].rewards)) for i in which]
        np.stack([eps[i].observations[t] for i, t in zip(which, steps)])
        batch_times.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    for _ in dataset.iterate_episodes():
        pass
    return {"write_s": round(write_s, 3), "bytes": _size(where),
            "sample_episodes_ms": round(1e3 * float(np.median(times)), 2),
            "batch_ms": round(1e3 * float(np.median(batch_times)), 2),
            "iterate_s": round(time.perf_counter() - t0, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--task", default="cartpole-swingup")
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--k", type=int, default=8, help="episodes per sample")
    parser.add_argument("--batch", type=int, default=256, help="transitions per batch")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--formats", default="hdf5,arrow")
    args = parser.parse_args()
    arrays, obs_space, act_space = _episodes(args.task, args.episodes, seed=0)
    results = {"task": args.task, "episodes": args.episodes, "steps": int(arrays.lengths.sum()),
               "k": args.k, "batch": args.batch}
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in args.formats.split(","):
            try:
                results[fmt] = _measure(fmt, Path(tmp) / fmt, arrays, obs_space, act_space, args)
            except Exception as err:  # noqa: BLE001  (a backend's failure is a result)
                results[fmt] = {"error": f"{type(err).__name__}: {err}"}
                column = dataclasses.replace(arrays, cost=arrays.cost[..., None])
                results[f"{fmt}_cost_as_column"] = _measure(
                    fmt, Path(tmp) / f"{fmt}-column", column, obs_space, act_space, args)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
