"""A teacher policy and its distilled students under the real-time challenge (issue 27, part 3).

For the teacher run and every student that ``rwrl distill`` wrote (``--students``:
its ``--out`` folders, each with ``distill.json``), this measures:

1. the inference latency on this machine: the compiled forward pass of the
   policy network (``jax.jit``; a Gaussian policy acts by its clipped mean)
   at batch 1, timed from a numpy observation in to a numpy action out
   (``time.perf_counter``), ``--calls`` calls per policy after ``--warmup``
   calls, the policies interleaved call by call so that the machine's load
   falls on all of them alike; reported as median, p99 and max;
2. the return and the deadline-miss rate under ``realtime_spec`` with that
   latency: ``simulated`` mode, the k-th env step taking the policy's k-th
   recorded latency sample (cycled), so the run is deterministic given the
   samples; a step misses its deadline when its action lands after
   ``budget`` (``info['realtime']['missed'] > 0``: that many control periods
   ran on the fallback first). ``--wallclock`` also runs ``wallclock`` mode,
   where the env times the controller itself (the latency then includes this
   loop's Python between ``step`` calls, not only the network).

The budget is the task's control period unless ``--budgets-ms`` names others;
nothing is chosen to make a policy miss. For each policy the page also gives
the budgets below which it would start missing: its max latency (any miss),
p99 (1 % of steps) and median (half of them).

Methods: ``teacher``; ``direct`` (a student distilled from the teacher);
``assistant`` (a student distilled from another student, the teacher assistant).

Usage::

    rwrl distill /work/controllers/pole-1.0 --sizes 32,8 --out distill/assisted
    rwrl distill /work/controllers/pole-1.0 --sizes 8 --out distill/direct
    python benchmarks/realtime_distill.py --teacher /work/controllers/pole-1.0 \\
        --students distill/assisted distill/direct --out benchmarks/results/realtime_distill.json
    python benchmarks/realtime_distill.py --page-only --out benchmarks/results/realtime_distill.json

Writes ``OUT.json``, ``OUT.md`` and, when measuring, ``OUT.png`` (return against
median latency per method).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))  # results_page.py beside this file

import numpy as np  # noqa: E402

import results_page  # noqa: E402

METHODS = ("teacher", "direct", "assistant")
#: latency percentiles kept in the JSON (the samples themselves are not: 4 x 5000 numbers).
PERCENTILES = (1, 10, 25, 50, 75, 90, 95, 99, 99.9)


# ----------------------------------------------------------------- bookkeeping
def latency_summary(samples: Sequence[float]) -> dict[str, float]:
    """Return count, median, p99, max and mean of latency ``samples`` (seconds).

    The p99 is numpy's linear-interpolation 99th percentile of the samples.

    >>> s = latency_summary([0.001, 0.002, 0.003])
    >>> s["median_s"], s["max_s"], s["count"]
    (0.002, 0.003, 3)
    """
    x = np.asarray(samples, np.float64)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"latency samples: a non-empty 1-D sequence, got shape {x.shape}")
    return {"count": int(x.size), "median_s": float(np.median(x)), "p99_s": float(np.percentile(x, 99)),
            "max_s": float(x.max()), "mean_s": float(x.mean())}


def miss_rate(missed: Sequence[int]) -> float:
    """Return the fraction of controller steps whose action missed its deadline (missed periods > 0).

    >>> miss_rate([0, 0, 2, 0])
    0.25
    """
    m = np.asarray(missed)
    if m.size == 0:
        raise ValueError("no controller step recorded")
    return float(np.mean(m > 0))


def method_of(row_teacher: str, teacher_checkpoint: str) -> str:
    """Return ``direct`` when a student's teacher (``distill.json``'s row) is the teacher checkpoint,
    else ``assistant``."""
    return "direct" if Path(row_teacher).resolve() == Path(teacher_checkpoint).resolve() else "assistant"


# ----------------------------------------------------------------- measuring
def policies(teacher: Path, students: Sequence[Path]) -> list[dict[str, Any]]:
    """Return the teacher and every student of ``students``' ``distill.json``: name, method, run."""
    from rwrl.datasets.behaviour_policies import resolve_checkpoint
    from rwrl.distill.runs import load_teacher

    checkpoint = resolve_checkpoint(teacher)
    out = [{"name": "teacher", "method": "teacher", "directory": str(teacher), "run": load_teacher(checkpoint)}]
    for folder in students:
        report = json.loads((Path(folder) / "distill.json").read_text())
        if Path(report["teacher"]).resolve() != checkpoint.resolve():
            raise SystemExit(f"{folder}: distilled from {report['teacher']}, not {checkpoint}")
        for row in report["students"]:
            method = method_of(row["teacher"], report["teacher"])
            out.append({"name": f"{method} {row['width']} ({Path(folder).name})", "method": method,
                        "directory": row["directory"], "distill_return": row["return"],
                        "action_error": row["action_error"], "run": load_teacher(Path(row["directory"]))})
    return out


def forward(run: Any) -> Callable[[np.ndarray], np.ndarray]:
    """Return obs (1, D) numpy -> action (1, A) numpy in [-1, 1]: the jitted policy network, as the
    agent acts without exploration (a Gaussian policy's clipped mean; ``PolicyRun.unit_policy``)."""
    return run.unit_policy()


def time_forwards(fns: Sequence[Callable], obs: np.ndarray, calls: int, warmup: int) -> list[list[float]]:
    """Return per function ``calls`` latencies (s), calls interleaved across the functions."""
    for _ in range(warmup):
        for fn in fns:
            fn(obs)
    samples: list[list[float]] = [[] for _ in fns]
    clock = time.perf_counter
    for _ in range(calls):
        for k, fn in enumerate(fns):
            start = clock()
            fn(obs)
            samples[k].append(clock() - start)
    return samples


def run_episode(env_id: str, env_kwargs: dict[str, Any], act: Callable, seed: int) -> dict[str, Any]:
    """Run one episode in a one-env vector env; return its return, controller steps and misses."""
    from rwrl.datasets.behaviour_policies import make_vector_env
    env = make_vector_env(env_id, env_kwargs, 1)
    try:
        obs, _ = env.reset(seed=[seed])
        total, missed, latencies = 0.0, [], []
        while True:
            action = act(np.asarray(obs, np.float32))
            obs, reward, terminated, truncated, info = env.step(action)
            total += float(reward[0])
            realtime = info.get("realtime", {"missed": [0], "latency": [0.0]})  # none without the challenge
            missed.append(int(realtime["missed"][0]))
            latencies.append(float(realtime["latency"][0]))
            if terminated[0] or truncated[0]:
                break
        return {"return": total, "steps": len(missed), "missed": missed,
                "missed_periods": int(np.sum(missed)), "median_latency_s": float(np.median(latencies))}
    finally:
        env.close()


def control_timestep(env_id: str, env_kwargs: dict[str, Any]) -> float:
    """Return the control period (s) of ``env_id`` made with ``env_kwargs``."""
    from rwrl.datasets.behaviour_policies import make_vector_env
    probe = make_vector_env(env_id, env_kwargs, 1)
    try:
        return float(probe.unwrapped.batched.control_timestep)
    finally:
        probe.close()


def evaluate_realtime(env_id: str, base_kwargs: dict[str, Any], act: Callable, sample: Sequence[float],
                      budgets: Sequence[float], modes: Sequence[str], seeds: Sequence[int],
                      fallback: str) -> list[dict[str, Any]]:
    """Return one evaluation per mode and budget of policy ``act`` (obs -> env-unit action).

    Mode ``none`` (the task without ``realtime_spec``) is run once, with ``budget_s``
    None; ``simulated`` replays ``sample`` (the policy's recorded latencies, s), cycled;
    ``wallclock`` lets the env time this loop. One episode per seed of ``seeds``.
    """
    evaluations = []
    for budget in budgets:
        for mode in modes:
            if mode == "none" and budget != budgets[0]:
                continue
            kwargs = dict(base_kwargs)
            if mode != "none":
                spec = {"enable": True, "mode": mode, "budget": budget, "fallback": fallback}
                if mode == "simulated":
                    spec["latency"] = list(sample)
                kwargs["realtime_spec"] = spec
            episodes = [run_episode(env_id, kwargs, act, s) for s in seeds]
            evaluations.append({
                "mode": mode, "budget_s": None if mode == "none" else budget,
                "returns": [e["return"] for e in episodes],
                "mean_return": float(np.mean([e["return"] for e in episodes])),
                "miss_rate": miss_rate([m for e in episodes for m in e["missed"]]),
                "steps": sum(e["steps"] for e in episodes),
                "missed_periods": sum(e["missed_periods"] for e in episodes),
                "median_latency_s": float(np.median([e["median_latency_s"] for e in episodes]))})
    return evaluations


def env_act(fn: Callable, run: Any) -> Callable[[np.ndarray], np.ndarray]:
    """Return obs -> float32 action in the env's units of the unit-space forward ``fn`` of ``run``."""
    from rwrl.datasets.behaviour_policies import from_unit
    return lambda obs: from_unit(fn(obs), run.low, run.high).astype(np.float32)


def measure(args: argparse.Namespace) -> dict[str, Any]:
    from rwrl.datasets.episodes import derived_seeds

    found = policies(args.teacher, args.students)
    teacher = found[0]["run"]
    env_id, base_kwargs = teacher.env_id, teacher.env_kwargs
    dt = control_timestep(env_id, base_kwargs)
    budgets = [dt] if not args.budgets_ms else [b / 1000.0 for b in args.budgets_ms]
    fns = [forward(p["run"]) for p in found]
    obs = np.zeros((1, teacher.obs_size), np.float32)
    start = time.perf_counter()
    samples = time_forwards(fns, obs, args.calls, args.warmup)
    timing_seconds = time.perf_counter() - start
    seeds = derived_seeds(args.seed, "evaluation", 0, args.episodes)
    modes = ["none", "simulated"] + (["wallclock"] if args.wallclock else [])
    rows = []
    start = time.perf_counter()
    for p, fn, sample in zip(found, fns, samples):
        run = p["run"]
        entry = {k: v for k, v in p.items() if k != "run"}
        entry.update(hidden_sizes=list(run.hidden_sizes), latency=latency_summary(sample),
                     percentiles_s={str(q): float(np.percentile(sample, q)) for q in PERCENTILES},
                     evaluations=evaluate_realtime(env_id, base_kwargs, env_act(fn, run), sample, budgets,
                                                   modes, seeds, args.fallback))
        rows.append(entry)
    return {"env": env_id, "env_kwargs": base_kwargs, "control_timestep_s": dt, "budgets_s": budgets,
            "fallback": args.fallback, "calls": args.calls, "warmup": args.warmup, "episodes": args.episodes,
            "seed": args.seed, "timing_seconds": timing_seconds,
            "evaluation_seconds": time.perf_counter() - start, "policies": rows}


# ----------------------------------------------------------------- the page and figure
def _us(seconds: float) -> str:
    return f"{seconds * 1e6:.1f}"


def page(results: dict[str, Any], source: str, date: str | None = None, machine: str | None = None) -> str:
    meta = results_page.measured(results, date, machine)
    data = results["settings"]
    rows = data["policies"]
    latency = results_page.table(
        ["policy", "method", "hidden sizes", "median (µs)", "p99 (µs)", "max (µs)", "calls",
         "action error (distill)"],
        [[r["name"], r["method"], "x".join(str(h) for h in r["hidden_sizes"]), _us(r["latency"]["median_s"]),
          _us(r["latency"]["p99_s"]), _us(r["latency"]["max_s"]), r["latency"]["count"],
          results_page.fmt(r.get("action_error"), ".4f")] for r in rows], "lllrrrrr")
    evals = []
    for r in rows:
        for e in r["evaluations"]:
            budget = "–" if e["budget_s"] is None else f"{e['budget_s'] * 1e3:g}"
            evals.append([r["name"], e["mode"], budget, f"{e['mean_return']:.1f}",
                          " / ".join(f"{x:.0f}" for x in e["returns"]), f"{100 * e['miss_rate']:.2f}",
                          e["missed_periods"], _us(e["median_latency_s"]) if e["mode"] != "none" else "–"])
    evaluation = results_page.table(
        ["policy", "mode", "budget (ms)", "mean return", "returns per seed", "deadline misses (% of steps)",
         "missed periods", "median latency in the env (µs)"], evals, "lllrrrrr")
    onset = results_page.table(
        ["policy", "misses some steps below (ms)", "misses 1 % below (ms)", "misses half below (ms)"],
        [[r["name"], f"{r['latency']['max_s'] * 1e3:.3f}", f"{r['latency']['p99_s'] * 1e3:.3f}",
          f"{r['latency']['median_s'] * 1e3:.3f}"] for r in rows], "lrrr")
    budgets = ", ".join(f"{b * 1e3:g} ms" for b in data["budgets_s"])
    simulated = [[e["miss_rate"] for e in r["evaluations"] if e["mode"] == "simulated"] for r in rows]
    if not any(m > 0 for ms in simulated for m in ms):
        verdict = ("no budget here that the teacher misses and a student meets: every policy met every "
                   "deadline in simulated mode, so the real-time challenge changed no return")
    elif any(t > 0 and any(ms[k] == 0 for ms in simulated[1:]) for k, t in enumerate(simulated[0])):
        verdict = "a budget arose that the teacher misses and a student meets"
    else:
        verdict = "no budget here that the teacher misses and a student meets"
    sections = [
        (None, [f"{data['env']} ({json.dumps(data['env_kwargs'], sort_keys=True)}), control period "
                f"{data['control_timestep_s'] * 1e3:g} ms, budgets {budgets}, fallback `{data['fallback']}`; "
                f"{data['episodes']} evaluation episodes (seeds) per policy and mode; latency from "
                f"{data['calls']} batch-1 calls per policy after {data['warmup']} warm-up calls "
                f"({data['timing_seconds']:.1f} s), evaluation {data['evaluation_seconds']:.0f} s."]),
        ("Inference latency (jitted policy network, batch 1, numpy in and out)", latency),
        ("Return and deadline misses", evaluation + ["", "Mode `none` is the task without `realtime_spec`; "
                                                    "`simulated` replays the policy's recorded latencies "
                                                    "step by step."]),
        ("Budget at which each policy would start missing", onset + ["", f"Measured: {verdict}."]),
    ]
    return results_page.render_page(
        "Distilled policies under the real-time challenge", meta["command"], meta["date"], meta["machine"],
        sections, source=Path(source).name,
        rebuild=results_page.rebuild_command("realtime_distill.py", f"--out {source}", meta))


def write_page(json_path: Path, date: str | None = None, machine: str | None = None) -> Path:
    return results_page.write_json_page(json_path, page, date, machine)


def figure(results: dict[str, Any], path: Path) -> None:
    """Plot the simulated-mode return (first budget) against median latency, one marker per method."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    markers = {"teacher": "s", "direct": "o", "assistant": "^"}
    budget = results["settings"]["budgets_s"][0]
    fig, ax = plt.subplots(figsize=(6, 4))
    for method in METHODS:
        xs, ys, labels = [], [], []
        for r in results["settings"]["policies"]:
            if r["method"] != method:
                continue
            e = next(e for e in r["evaluations"] if e["mode"] == "simulated" and e["budget_s"] == budget)
            xs.append(r["latency"]["median_s"] * 1e6)
            ys.append(e["mean_return"])
            labels.append("x".join(str(h) for h in r["hidden_sizes"]))
        if xs:
            ax.scatter(xs, ys, marker=markers[method], s=60, label=method)
            for x, y, label in zip(xs, ys, labels):
                ax.annotate(label, (x, y), textcoords="offset points", xytext=(5, 5), fontsize=8)
    ax.set_xlabel("median inference latency, batch 1 (µs)")
    ax.set_ylabel(f"mean return, simulated real time (budget {budget * 1e3:g} ms)")
    ax.set_title(results["settings"]["env"])
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--teacher", type=Path, help="the teacher's rwrl run directory (or checkpoint)")
    parser.add_argument("--students", type=Path, nargs="*", default=[],
                        help="rwrl distill --out folders of this teacher")
    parser.add_argument("--calls", type=int, default=2000, help="timed calls per policy")
    parser.add_argument("--warmup", type=int, default=200, help="untimed calls per policy first")
    parser.add_argument("--episodes", type=int, default=3, help="evaluation episodes (seeds) per mode")
    parser.add_argument("--budgets-ms", type=float, nargs="*", default=[],
                        help="real-time budgets in ms (default: the task's control period)")
    parser.add_argument("--fallback", default="hold", choices=["hold", "zero"])
    parser.add_argument("--wallclock", action="store_true", help="also evaluate in wallclock mode")
    parser.add_argument("--seed", type=int, default=0)
    results_page.add_page_arguments(parser)
    args = parser.parse_args(argv)
    if results_page.rewrite_page_only(parser, args, write_page):
        return
    if args.teacher is None:
        parser.error("--teacher is required when measuring")
    result = {"measured": results_page.stamp("realtime_distill.py", argv), "settings": measure(args)}
    results_page.publish(result, args.out, write_page)
    if args.out is not None:
        figure(result, Path(args.out).with_suffix(".png"))


if __name__ == "__main__":
    main()
