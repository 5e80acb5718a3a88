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

Prints one JSON object; ``--out FILE`` also writes it to FILE and its results page
beside it (``--page-only`` rewrites that page from FILE without measuring). Usage::

    python benchmarks/dataset_storage.py --task cartpole-swingup --episodes 20
    python benchmarks/dataset_storage.py --out benchmarks/results/dataset_storage.json
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
import sys
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


def page(results: dict, source: str, date: str | None = None, machine: str | None = None) -> str:
    """Return the results page of one run's JSON (``source``: its path as the command gives it)."""
    import results_page
    f = results_page.fmt
    meta = results_page.measured(results, date, machine, command=(
        f"python benchmarks/dataset_storage.py --task {results['task']} --episodes "
        f"{results['episodes']} --k {results['k']} --batch {results['batch']} --out {source}"))
    rows = []
    for backend, figures in results.items():
        if not isinstance(figures, dict) or backend == "measured":
            continue
        if "error" in figures:
            rows.append([backend, *[None] * 5, figures["error"]])
            continue
        rows.append([backend, f(figures["write_s"], ".2f"), f(figures["bytes"] / 1e6, ".2f"),
                     f(figures["sample_episodes_ms"], ".1f"), f(figures["batch_ms"], ".1f"),
                     f(figures["iterate_s"], ".2f"), ""])
    sections = [(None, [
        f"{results['episodes']} episodes of random actions on `{results['task']}` "
        f"({results['steps']} steps, infos included), written with each Minari backend through "
        f"`rwrl.datasets.store`. Sample: `sample_episodes({results['k']})`, median of the repeats; "
        f"batch: {results['batch']} random transitions among {results['k']} sampled episodes; "
        "read all: every episode once. `_cost_as_column`: the per-step `cost` info stored as "
        "(T+1, 1), after the backend failed on the scalar one.", "",
        *results_page.table(["backend", "write s", "MB on disk", "sample ms", "batch ms",
                             "read all s", "error"], rows, "lrrrrrl")])]
    return results_page.render_page(
        "Dataset storage: Minari's HDF5 and Arrow backends", meta["command"], meta["date"],
        meta["machine"], sections, source=Path(source).name,
        rebuild=results_page.rebuild_command("dataset_storage.py", f"--out {source}", meta))


def write_page(json_path: Path, date: str | None = None, machine: str | None = None) -> Path:
    """Write the page beside ``json_path`` from that JSON; return the page's path."""
    import results_page
    return results_page.write_json_page(json_path, page, date, machine)


def main(argv: list[str] | None = None) -> None:
    import results_page
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--task", default="cartpole-swingup")
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--k", type=int, default=8, help="episodes per sample")
    parser.add_argument("--batch", type=int, default=256, help="transitions per batch")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--formats", default="hdf5,arrow")
    results_page.add_page_arguments(parser)
    args = parser.parse_args(argv)
    if results_page.rewrite_page_only(parser, args, write_page):
        return
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
    results["measured"] = results_page.stamp("dataset_storage.py", sys.argv[1:] if argv is None else argv)
    results_page.publish(results, args.out, write_page)


if __name__ == "__main__":
    main()
