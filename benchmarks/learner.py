"""Learner throughput: time per update beside its floating-point work and this machine's matmul rate.

For each agent configuration (``--configs``: D4PG's paper and fast presets,
DMPO's paper preset) on cartpole's sizes (5 observations, 1 action) and
walker's (24, 6), one sitting measures:

* the floating-point work of one update: XLA's own count for the compiled
  update (``cost_analysis()["flops"]``, multiply-adds counted as 2);
* the time per update one update per call (``update``, blocking on each, as
  the loop did before issue 35), and K updates per call (``update_many``, a
  ``lax.scan`` over K batches sampled together, the state donated), K = 2
  (D4PG's count per vector step at 8 envs and replay ratio 0.25) and 16;
* the rate (GFLOP/s) that makes, beside the rate this machine reaches on a
  plain float32 matmul of the update's own shape (batch 256 x 256 by 256 x
  256) and of a large one (1024 x 1024): so the distance to the limit is a
  number.

Each XLA setting (``--xla``) runs in its own process, since XLA reads its
flags once: ``default`` (XLA's CPU defaults: both cores for one update's
matmuls) and ``single-thread`` (``--xla_cpu_multi_thread_eigen=false``,
one core; what a sweep's workers run). Batches are random float32 arrays of
the agent's batch size (an update's cost does not depend on their values).

Usage::

    python benchmarks/learner.py --out benchmarks/results/learner.json
    python benchmarks/learner.py --configs d4pg-fast --xla default --reps 20
    python benchmarks/learner.py --page-only --out benchmarks/results/learner.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # results_page.py beside this file

import results_page  # noqa: E402

#: name -> (agent, preset).
CONFIGS = {"d4pg-paper": ("d4pg", "paper"), "d4pg-fast": ("d4pg", "fast"), "dmpo-paper": ("dmpo", "paper")}
#: task -> (observation size, action size).
SIZES = {"cartpole-swingup": (5, 1), "walker-walk": (24, 6)}
#: name -> XLA_FLAGS for the measuring process.
XLA = {"default": "", "single-thread": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"}
COUNTS = (2, 16)


def _batches(rng: Any, count: int | None, batch: int, obs: int, act: int) -> Any:
    """Random float32 batches: (batch, ...) arrays, or (count, batch, ...) with a count."""
    import numpy as np
    from rwrl.agents.types import Transition
    shape = (batch,) if count is None else (count, batch)
    return Transition(rng.standard_normal(shape + (obs,)).astype(np.float32),
                      rng.uniform(-1, 1, shape + (act,)).astype(np.float32),
                      rng.uniform(0, 1, shape).astype(np.float32), np.full(shape, 0.95, np.float32),
                      rng.standard_normal(shape + (obs,)).astype(np.float32),
                      np.zeros(shape, np.float32), None)


def _timed(step: Any, state: Any, updates_per_call: int, reps: int) -> tuple[Any, float]:
    """Return (state, ms per update) of ``reps`` calls of ``step`` after one warm-up call."""
    import jax
    state = jax.block_until_ready(step(state))
    start = time.perf_counter()
    for _ in range(reps):
        state = jax.block_until_ready(step(state))
    return state, 1e3 * (time.perf_counter() - start) / (reps * updates_per_call)


def matmul_rate(size: int, reps: int) -> float:
    """Return the GFLOP/s of a jitted float32 ``size x size`` matmul on this machine."""
    import jax
    import jax.numpy as jnp
    a = jnp.ones((size, size), jnp.float32)
    matmul = jax.jit(lambda x: x @ x)
    matmul(a).block_until_ready()
    start = time.perf_counter()
    for _ in range(reps):
        out = matmul(a)
    out.block_until_ready()
    return reps * 2 * size ** 3 / (time.perf_counter() - start) / 1e9


def measure_config(name: str, task: str, reps: int) -> dict[str, Any]:
    """Return one configuration's FLOPs and times per update (this process's XLA setting)."""
    import jax
    import numpy as np
    from rwrl.agents import make_agent
    agent_name, preset = CONFIGS[name]
    obs, act = SIZES[task]
    agent = make_agent(agent_name, obs, act, preset=preset)
    batch = agent.config.batch_size
    rng, key = np.random.default_rng(0), jax.random.PRNGKey(1)
    state = agent.init(jax.random.PRNGKey(0))
    one = _batches(rng, None, batch, obs, act)
    flops = agent._update.lower(state, one, key).compile().cost_analysis()["flops"]
    state, single_ms = _timed(lambda s: agent.update(s, one, key)[0], state, 1, reps * 8)
    fused = {}
    for count in COUNTS:
        many, keys = _batches(rng, count, batch, obs, act), jax.random.split(key, count)
        state, fused[count] = _timed(lambda s: agent.update_many(s, many, keys)[0], state, count,
                                     max(2, reps * 8 // count))
    return {"config": name, "task": task, "batch_size": batch, "mflop_per_update": flops / 1e6,
            "ms_per_update": {"1": single_ms, **{str(k): v for k, v in fused.items()}}}


def measure_overlap(task: str, reps: int, num_envs: int = 8) -> dict[str, float]:
    """Return ms per vector step of D4PG's paper loop (2 fused updates per step), in turn and overlapped.

    In turn: act, step the envs, then the updates (blocking), as ``rwrl run``
    does. Overlapped: dispatch the updates (JAX returns at once), act with
    the parameters from before them and step the envs while XLA computes,
    then wait. Also the act-and-step time alone: the most overlap can save.
    """
    import jax
    import numpy as np
    from rwrl.agents import make_agent
    from rwrl.experiments import RunConfig
    from rwrl.experiments.run import make_env_for
    env = make_env_for(RunConfig(env=task, num_envs=num_envs), num_envs)
    obs = np.asarray(env.reset(seed=0)[0], np.float32).reshape(num_envs, -1)
    agent = make_agent("d4pg", obs.shape[1], int(np.prod(env.single_action_space.shape)))
    rng, key = np.random.default_rng(0), jax.random.PRNGKey(1)
    batches, keys = _batches(rng, 2, 256, obs.shape[1], agent.action_size), jax.random.split(key, 2)
    state = {"learner": agent.init(jax.random.PRNGKey(0)), "obs": obs}
    update = jax.jit(agent._update_many.__wrapped__)  # not donating: the overlapped act reads the old state

    def act_and_step(params: Any) -> None:
        action = np.asarray(agent._act(params, state["obs"], key, explore=True))
        state["obs"] = np.asarray(env.step(action)[0], np.float32).reshape(num_envs, -1)

    def in_turn() -> None:
        act_and_step(state["learner"].policy_params)
        state["learner"] = jax.block_until_ready(update(state["learner"], batches, keys)[0])

    def overlapped() -> None:
        new = update(state["learner"], batches, keys)[0]
        act_and_step(state["learner"].policy_params)
        state["learner"] = jax.block_until_ready(new)

    def alone() -> None:
        act_and_step(state["learner"].policy_params)

    times = {}
    for name, fn in (("in_turn", in_turn), ("overlapped", overlapped), ("act_and_step", alone)) * 2:
        fn()
        start = time.perf_counter()
        for _ in range(reps * 20):
            fn()
        times[name] = min(times.get(name, float("inf")), 1e3 * (time.perf_counter() - start) / (reps * 20))
    return times


def measure_here(configs: list[str], tasks: list[str], reps: int) -> dict[str, Any]:
    """Measure every configuration, the matmul rates and the overlap in this process."""
    rows = [measure_config(name, task, reps) for name in configs for task in tasks]
    return {"rows": rows, "matmul_gflops": {"256": matmul_rate(256, 400 * reps),
                                            "1024": matmul_rate(1024, 5 * reps)},
            "overlap_ms_per_vector_step": {task: measure_overlap(task, reps) for task in tasks}}


def measure(configs: list[str], tasks: list[str], settings: list[str], reps: int) -> dict[str, Any]:
    """Run ``measure_here`` in one child process per XLA setting; return every setting's results."""
    out = {}
    for setting in settings:
        env = {**os.environ, "XLA_FLAGS": f"{os.environ.get('XLA_FLAGS', '')} {XLA[setting]}".strip()}
        child = subprocess.run([sys.executable, __file__, "--child", "--reps", str(reps), "--configs",
                                *configs, "--tasks", *tasks], env=env, check=True, capture_output=True,
                               text=True)
        out[setting] = json.loads(child.stdout)
        print(f"{setting}: done", file=sys.stderr, flush=True)
    return out


def page(results: dict[str, Any], source: str, date: str | None = None, machine: str | None = None) -> str:
    """Render the results page of ``results``."""
    meta = results_page.measured(results, date, machine)
    sections = []
    for setting, measured in results["settings"].items():
        peak = measured["matmul_gflops"]
        rows = []
        for row in measured["rows"]:
            ms = row["ms_per_update"]
            best = min(ms.values())
            rows.append([row["config"], row["task"], row["batch_size"], f"{row['mflop_per_update']:.0f}",
                         *(f"{ms[k]:.2f}" for k in ("1", *map(str, COUNTS))),
                         f"{(ms['1'] / best - 1) * 100:.0f} %",
                         f"{row['mflop_per_update'] / best:.0f}",
                         f"{row['mflop_per_update'] / best / peak['256'] * 100:.0f} %"])
        header = ["config", "task", "batch", "MFLOP / update", "ms / update, 1 per call",
                  *(f"ms / update, {k} per call" for k in COUNTS), "saved by fusing",
                  "GFLOP/s (best)", "of the 256 matmul rate"]
        overlap = [[task, *(f"{t[k]:.2f}" for k in ("act_and_step", "in_turn", "overlapped")),
                    f"{(1 - t['overlapped'] / t['in_turn']) * 100:.0f} %"]
                   for task, t in measured["overlap_ms_per_vector_step"].items()]
        sections.append((f"XLA setting: {setting}", [
            f"Matmul rate of this machine, float32: {peak['256']:.0f} GFLOP/s at 256 x 256 (the update's "
            f"own shape), {peak['1024']:.0f} GFLOP/s at 1024 x 1024.", "",
            *results_page.table(header, rows), "",
            "Acting and learning overlapped: D4PG's paper loop, 8 envs, 2 updates per vector step, "
            "ms per vector step (`measure_overlap`):", "",
            *results_page.table(["task", "act and env step alone", "in turn (rwrl run)", "overlapped",
                                 "saved"], overlap)]))
    sections.append(("Reading it", [
        "An update's work is a few dozen small matmuls (the batch by layers of 128 or 256) and the "
        "elementwise work around them; the 256 x 256 matmul rate is about the most those shapes reach on "
        "this machine, and the last column is the distance to it. Fusing K updates in one call saves the "
        "dispatch and the state's round trip between calls. Compare the two settings: when one process "
        "runs XLA on one core, an update takes about as long as on two, so a single run leaves the second "
        "core mostly idle; two sweep workers of one core each use it (sweep_throughput.md). Acting is not "
        "overlapped with learning: acting and stepping the envs are a few percent of a vector step, and "
        "JAX's CPU client ran the act queued behind the dispatched updates, so overlapping them saved "
        "nothing (the negative figures are noise). What makes a solved task cheaper is less work per "
        "update (the fast preset's smaller networks and batch) and fewer updates, not a faster update of "
        "the same work."]))
    return results_page.render_page(
        "Learner throughput: time per update, its work and this machine's limit", meta["command"],
        meta["date"], meta["machine"], sections, source=Path(source).name,
        rebuild=results_page.rebuild_command("learner.py", f"--out {source}", meta))


def write_page(json_path: Path, date: str | None = None, machine: str | None = None) -> Path:
    return results_page.write_json_page(json_path, page, date, machine)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", nargs="+", choices=sorted(CONFIGS), default=list(CONFIGS))
    parser.add_argument("--tasks", nargs="+", choices=sorted(SIZES), default=list(SIZES))
    parser.add_argument("--xla", nargs="+", choices=sorted(XLA), default=list(XLA))
    parser.add_argument("--reps", type=int, default=10, help="scale of the timing loops (default 10)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    results_page.add_page_arguments(parser)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure_here(args.configs, args.tasks, args.reps)))
        return
    if results_page.rewrite_page_only(parser, args, write_page):
        return
    result = {"measured": results_page.stamp("learner.py", argv),
              "settings": measure(args.configs, args.tasks, args.xla, args.reps)}
    results_page.publish(result, args.out, write_page)


if __name__ == "__main__":
    main()
