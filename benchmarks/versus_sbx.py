"""Versus sbx: rwrl's agents and sbx's SAC side by side, to an evaluation-return threshold.

One sitting on one machine: for each task, for each seed, each contestant in
turn (interleaved, so that a drift of the machine hits every contestant alike),
one run at a time. A run stops at the first evaluation whose mean return
reaches the task's threshold, or at the cap. Per task it reports, per contestant:
env steps and wall-clock to the threshold, learner updates, time per update,
updates per second and the share of wall-clock outside the learner.

Contestants (the names used in the results):

* ``rwrl-<agent>-<preset>``: an ``rwrl`` online run (``rwrl.experiments.start_run``)
  with ``RunConfig(agent, env=task, steps=cap, seed, eval_every=5000,
  eval_episodes=5, report=False)`` and ``agent_config={"preset": preset}``
  (``rwrl.agents.presets``: ``paper`` is the agent's defaults). A hook on every vector step stops it once an
  evaluation's mean return reaches the threshold; the loop's stopwatch is read
  then (one vector step after that evaluation). Its wall-clock includes the
  run's checkpoint writes (every 20,000 env steps, recorded apart as
  ``checkpoint``); its learner time excludes replay sampling (``replay``).
* ``sbx-sac``: ``sbx.SAC("MlpPolicy", env, seed=seed, verbose=0)`` with sbx's
  defaults on ``gymnasium.make("rwrl/<task>-v0")``, unwrapped (the observation
  is already a flat ``Box``; SB3 adds its ``Monitor`` and ``DummyVecEnv``). It is
  evaluated every 5,000 env steps (and at the cap) by 5 deterministic episodes
  (``model.predict(obs, deterministic=True)``) on a separate vector env of 5
  copies (``gymnasium.make_vec``), seeded from the run seed and the evaluation's
  index. Learner time is ``model.train`` timed from outside (its replay
  sampling included: sbx samples inside ``train``); the first call, which
  compiles, is timed apart as ``compile``.

Figures (both contestants): wall-clock = the training loop's seconds less its
evaluations (``total - eval``; building the agent and envs is not counted);
updates = gradient steps; time per update = learner / (updates - compiling
updates); updates per second = updates / wall-clock; share outside the learner
= 1 - (learner + compile) / wall-clock.

Each finished (task, contestant, seed) is written to
``ROOT/<task>/<contestant>-seed<k>.json``; running the command again skips the
finished ones, and runs an interrupted one again from scratch (its rwrl run
directory ``ROOT/<task>/runs/<contestant>-seed<k>`` is deleted first). After each
run, every result under ROOT goes to ``ROOT/versus_sbx.json`` (or ``--out``) and
its results page beside it (``.md``). ``--page-only`` rewrites the page of
``--out`` (alias ``--results``) without running.

sbx comes with the ``integrations`` extra (``pip install -e '.[integrations]'``).

Usage::

    python benchmarks/versus_sbx.py                       # both tasks, seeds 0 1 2
    python benchmarks/versus_sbx.py --tasks cartpole-swingup --seeds 7 \
        --contestants rwrl-d4pg-fast rwrl-dmpo-paper sbx-sac
    python benchmarks/versus_sbx.py --cap 2000 --root /tmp/versus   # a quick check of the machinery
    python benchmarks/versus_sbx.py --page-only --results runs/benchmarks/versus_sbx/versus_sbx.json

Goal: the fastest rwrl contestant's median wall-clock to the threshold at most a
third of sbx-sac's, per task.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import platform
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

os.environ.setdefault("MUJOCO_GL", "egl")
sys.path.insert(0, str(Path(__file__).resolve().parent))  # results_page.py beside this file

import results_page  # noqa: E402

#: task -> (evaluation-return threshold, env-step cap).
TASKS = {"cartpole-swingup": (750.0, 150_000), "walker-walk": (600.0, 300_000)}
DEFAULT_CONTESTANTS = ("rwrl-d4pg-fast", "sbx-sac")
SBX = "sbx-sac"
EVAL_EVERY = 5_000
EVAL_EPISODES = 5
#: the goal: rwrl's median wall-clock to the threshold over sbx-sac's.
GOAL_RATIO = 1 / 3
DEFAULT_ROOT = Path("runs/benchmarks/versus_sbx")
JSON_NAME = "versus_sbx.json"

Runner = Callable[..., dict]


class _Reached(Exception):
    """Raised from the rwrl run's hook to stop it at the threshold."""


# ------------------------------------------------------------------ contestants
def parse_contestant(name: str) -> tuple[str, str] | None:
    """Return (agent, preset) of ``rwrl-<agent>-<preset>``, None for ``sbx-sac``.

    Raises:
      ValueError: any other name.
    """
    if name == SBX:
        return None
    from rwrl.agents import AGENTS, preset_names
    parts = name.split("-")
    if len(parts) != 3 or parts[0] != "rwrl":
        raise ValueError(f"contestant {name!r}: give {SBX} or rwrl-<agent>-<preset>")
    if parts[1] not in AGENTS:
        raise ValueError(f"contestant {name!r}: no agent {parts[1]!r} (one of {', '.join(sorted(AGENTS))})")
    if parts[2] not in preset_names(parts[1]):
        raise ValueError(f"contestant {name!r}: agent {parts[1]} has the presets "
                         f"{', '.join(preset_names(parts[1]))}")
    return parts[1], parts[2]


def agent_config_for(preset: str) -> dict[str, Any]:
    """Return the agent config of ``preset`` (``rwrl.agents.presets``)."""
    return {"preset": preset}


def speed_figures(timing: dict[str, float], updates: int, compiles: int) -> dict[str, Any]:
    """Return wall-clock, time per update, updates per second and outside share of a run's timing.

    Args:
      timing: seconds per phase with at least ``learner``, ``compile``, ``eval`` and ``total``.
      updates: gradient steps taken; compiles: those that compiled (timed as ``compile``).
    """
    wall = timing["total"] - timing["eval"]
    learner = timing["learner"] + timing["compile"]
    return {"wall_clock_s": wall, "updates": updates, "compiles": compiles,
            "time_per_update_ms": 1e3 * timing["learner"] / (updates - compiles)
            if updates > compiles else None,
            "updates_per_s": updates / wall if wall > 0 else None,
            "outside_learner_share": 1.0 - learner / wall if wall > 0 else None}


def run_record(task: str, contestant: str, seed: int, threshold: float, cap: int,
               curve: list[list[float]], env_steps: int, timing: dict[str, float],
               updates: int, compiles: int) -> dict[str, Any]:
    """Return the result of one run from its evaluation curve ([[env steps, return]]) and timing."""
    reached = next((int(s) for s, r in curve if r >= threshold), None)
    figures = speed_figures(timing, updates, compiles)
    return {"task": task, "contestant": contestant, "seed": seed, "threshold": threshold,
            "cap": cap, "reached": reached is not None, "steps_to_threshold": reached,
            "wall_clock_to_threshold_s": figures["wall_clock_s"] if reached is not None else None,
            "final_eval_return": curve[-1][1] if curve else None, "env_steps": env_steps,
            "eval_curve": curve, **figures, "timing_s": dict(timing)}


def _progress(task: str, contestant: str, seed: int, steps: int, value: float, wall: float) -> None:
    print(f"{task} {contestant} seed{seed}: eval at {steps:,} env steps: return {value:.1f}, "
          f"{wall:.1f} s", flush=True)


def run_rwrl(task: str, contestant: str, seed: int, threshold: float, cap: int, run_dir: Path,
             eval_every: int = EVAL_EVERY, eval_episodes: int = EVAL_EPISODES) -> dict[str, Any]:
    """Run ``rwrl-<agent>-<preset>`` on ``task`` until the threshold or the cap; return its result."""
    from rwrl.experiments import RunConfig, start_run
    from rwrl.experiments.run import RunHooks
    agent, preset = parse_contestant(contestant)
    config = RunConfig(agent=agent, env=task, steps=cap, seed=seed, eval_every=eval_every,
                       eval_episodes=eval_episodes, report=False,
                       agent_config=agent_config_for(preset))
    seen: dict[str, Any] = {"trainer": None, "curve": []}

    def note_evaluation(trainer: Any) -> None:
        c = trainer.counters
        seen["curve"].append([c.last_eval, round(c.last_eval_return, 2)])
        wall = trainer._wall_time() - trainer.stopwatch.totals["eval"]
        _progress(task, contestant, seed, c.last_eval, c.last_eval_return, wall)

    def hook(trainer: Any) -> None:
        seen["trainer"] = trainer
        if trainer.counters.evaluations > len(seen["curve"]):
            note_evaluation(trainer)
            if trainer.counters.last_eval_return >= threshold:
                raise _Reached

    if run_dir.exists():  # an interrupted run: start it again
        shutil.rmtree(run_dir)
    try:
        start_run(config, run_dir, RunHooks(on_step=hook, progress=False))
    except _Reached:
        pass
    trainer = seen["trainer"]
    if trainer.counters.evaluations > len(seen["curve"]):  # the final evaluation, at the cap
        note_evaluation(trainer)
    c = trainer.counters
    return run_record(task, contestant, seed, threshold, cap, seen["curve"], c.env_steps,
                      dict(trainer.stopwatch.totals), c.updates, c.compiles)


def _sbx_callback(task: str, seed: int, threshold: float, cap: int, eval_every: int,
                  eval_episodes: int) -> Any:
    """Return the SB3 callback that evaluates, times and stops an sbx run."""
    import gymnasium
    from stable_baselines3.common.callbacks import BaseCallback
    from rwrl.experiments.loop_base import derived_seed

    class Evaluate(BaseCallback):
        """Evaluate every ``eval_every`` env steps and at the cap; stop at the threshold."""

        def _on_training_start(self) -> None:
            self.eval_env = gymnasium.make_vec(f"rwrl/{task}-v0", num_envs=eval_episodes)
            self.curve: list[list[float]] = []
            self.timing = {"learner": 0.0, "compile": 0.0, "eval": 0.0, "total": 0.0}
            self.next_eval = eval_every
            self.start = time.perf_counter()

        def _on_step(self) -> bool:
            steps = self.num_timesteps
            if steps < self.next_eval and steps < cap:
                return True
            while self.next_eval <= steps:
                self.next_eval += eval_every
            began = time.perf_counter()
            value = self.evaluate(derived_seed(seed, "sbx-eval", len(self.curve)))
            self.timing["eval"] += time.perf_counter() - began
            self.curve.append([steps, round(value, 2)])
            wall = time.perf_counter() - self.start - self.timing["eval"]
            _progress(task, SBX, seed, steps, value, wall)
            return value < threshold

        def _on_training_end(self) -> None:
            self.timing["total"] = time.perf_counter() - self.start
            self.eval_env.close()

        def evaluate(self, eval_seed: int) -> float:
            """Return the mean return of one deterministic episode per eval env."""
            obs, _ = self.eval_env.reset(seed=eval_seed)
            returns = np.zeros(eval_episodes)
            done = np.zeros(eval_episodes, bool)
            while not done.all():
                action, _ = self.model.predict(obs, deterministic=True)
                obs, reward, terminated, truncated, _ = self.eval_env.step(action)
                returns += np.where(done, 0.0, reward)
                done |= np.asarray(terminated) | np.asarray(truncated)
            return float(returns.mean())

    return Evaluate()


def _time_train(model: Any, timing: dict[str, float], counts: dict[str, int]) -> None:
    """Wrap ``model.train`` so that its seconds add to ``timing`` (the first call: ``compile``)."""
    train = model.train

    def timed(gradient_steps: int, batch_size: int) -> None:
        key = "learner" if counts["calls"] else "compile"
        began = time.perf_counter()
        train(gradient_steps=gradient_steps, batch_size=batch_size)  # its .item() calls block
        timing[key] += time.perf_counter() - began
        counts["compiles"] += 0 if counts["calls"] else gradient_steps
        counts["calls"] += 1

    model.train = timed


def run_sbx(task: str, contestant: str, seed: int, threshold: float, cap: int, run_dir: Path,
            eval_every: int = EVAL_EVERY, eval_episodes: int = EVAL_EPISODES) -> dict[str, Any]:
    """Run sbx's SAC (its defaults) on ``task`` until the threshold or the cap; return its result."""
    import gymnasium
    import rwrl  # noqa: F401  (registers the rwrl/ ids)
    import sbx
    env = gymnasium.make(f"rwrl/{task}-v0")
    model = sbx.SAC("MlpPolicy", env, seed=seed, verbose=0)
    callback = _sbx_callback(task, seed, threshold, cap, eval_every, eval_episodes)
    learner = {"learner": 0.0, "compile": 0.0}
    counts = {"calls": 0, "compiles": 0}
    _time_train(model, learner, counts)
    model.learn(total_timesteps=cap, callback=callback)
    env.close()
    timing = {**callback.timing, **learner}
    return run_record(task, contestant, seed, threshold, cap, callback.curve, model.num_timesteps,
                      timing, int(model._n_updates), counts["compiles"])


def run_contestant(task: str, contestant: str, seed: int, threshold: float, cap: int,
                   run_dir: Path, eval_every: int = EVAL_EVERY,
                   eval_episodes: int = EVAL_EPISODES) -> dict[str, Any]:
    """Run one contestant once; return its result (see ``run_record``)."""
    runner = run_sbx if parse_contestant(contestant) is None else run_rwrl
    return runner(task, contestant, seed, threshold, cap, run_dir, eval_every, eval_episodes)


# ------------------------------------------------------------------ the sitting
def result_path(root: Path, task: str, contestant: str, seed: int) -> Path:
    """Return where the result of one (task, contestant, seed) goes."""
    return Path(root) / task / f"{contestant}-seed{seed}.json"


def machine_stamp(argv: list[str]) -> dict[str, str]:
    """Return results_page's stamp, its machine led by the CPU model."""
    stamp = results_page.stamp("versus_sbx.py", argv)
    model = platform.processor() or platform.machine()
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        model = next(line.split(":", 1)[1].strip() for line in lines if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    stamp["machine"] = f"{model}; {stamp['machine']}"
    return stamp


def _write_json(path: Path, data: Any) -> None:
    from rwrl.storage.atomic_files import atomic_write_bytes
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, (json.dumps(data, indent=2, allow_nan=False) + "\n").encode())


def sitting(tasks: list[str], contestants: list[str], seeds: list[int], root: Path, out: Path,
            argv: list[str], cap: int | None = None, eval_every: int = EVAL_EVERY,
            runner: Runner = run_contestant) -> list[dict[str, Any]]:
    """Run every (task, seed, contestant) not finished under ``root``, one at a time, interleaved.

    Each result goes to ``result_path`` as it finishes, and every result under
    ``root`` to ``out`` and its page. Returns the results of this sitting's runs.
    """
    done = []
    for task in tasks:
        threshold, task_cap = TASKS[task]
        for seed in seeds:
            for contestant in contestants:
                path = result_path(root, task, contestant, seed)
                if path.exists():
                    print(f"{task} {contestant} seed{seed}: finished before, skipped", flush=True)
                    continue
                run_dir = Path(root) / task / "runs" / f"{contestant}-seed{seed}"
                result = runner(task, contestant, seed, threshold, cap or task_cap, run_dir,
                                eval_every=eval_every)
                result["eval_every"] = eval_every
                result["measured"] = machine_stamp(argv)
                _write_json(path, result)
                print(finished_line(result), flush=True)
                write_overview(root, out, argv)
                done.append(result)
    return done


def finished_line(result: dict[str, Any]) -> str:
    """Return the progress line of a finished run."""
    head = f"{result['task']} {result['contestant']} seed{result['seed']}: "
    if result["reached"]:
        head += (f"reached {result['threshold']:g} at {result['steps_to_threshold']:,} env steps "
                 f"in {result['wall_clock_to_threshold_s']:.1f} s")
    else:
        head += (f"not reached within {result['env_steps']:,} env steps (final return "
                 f"{results_page.fmt(result['final_eval_return'], '.1f')}, {result['wall_clock_s']:.1f} s)")
    return head + f", {result['updates']:,} updates"


def collect(root: Path) -> list[dict[str, Any]]:
    """Return every result under ``root`` (``<task>/<contestant>-seed<k>.json``), in order."""
    results = [json.loads(p.read_text()) for p in Path(root).glob("*/*-seed*.json")]
    return sorted(results, key=lambda r: (r["task"], r["contestant"], r["seed"]))


def write_overview(root: Path, out: Path, argv: list[str]) -> Path:
    """Write every result under ``root`` to ``out`` and its page beside it; return the page."""
    _write_json(out, {"runs": collect(root), "measured": machine_stamp(argv)})
    return write_page(out)


# ------------------------------------------------------------------ summaries
def median_interval(values: list[float | None]) -> dict[str, Any]:
    """Return the median of ``values`` (None: not reached, counted as never) and its 95 % interval.

    The interval is the percentile bootstrap of the median over seeds
    (``rwrl.report.aggregate.bootstrap_ci``), given only when every seed reached
    and there are at least 2; with 3 seeds it lies within [min, max].
    """
    x = np.array([math.inf if v is None else v for v in values], float)
    median = float(np.median(x)) if x.size else math.nan
    low = high = None
    if x.size >= 2 and np.isfinite(x).all():
        from rwrl.report.aggregate import bootstrap_ci
        low, high = bootstrap_ci(x, np.median)
    return {"median": median if math.isfinite(median) else None, "low": low, "high": high}


def _median(values: list[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return float(np.median(kept)) if kept else None


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Return the figures of one (task, contestant) over its seeds' runs."""
    return {"seeds": len(runs), "reached": sum(r["reached"] for r in runs),
            "steps": median_interval([r["steps_to_threshold"] for r in runs]),
            "wall_clock_s": median_interval([r["wall_clock_to_threshold_s"] for r in runs]),
            **{key: _median([r[key] for r in runs])
               for key in ("updates", "time_per_update_ms", "updates_per_s", "outside_learner_share")}}


def group(runs: list[dict[str, Any]]) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Return the runs by task, then by contestant (sbx-sac last)."""
    groups: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for run in runs:
        groups.setdefault(run["task"], {}).setdefault(run["contestant"], []).append(run)
    return {task: dict(sorted(by.items(), key=lambda kv: (kv[0] == SBX, kv[0])))
            for task, by in groups.items()}


def ratio_line(task: str, summaries: dict[str, dict[str, Any]]) -> str:
    """Return the line comparing the fastest rwrl contestant's median wall-clock with sbx-sac's."""
    rwrl = {name: s["wall_clock_s"]["median"] for name, s in summaries.items()
            if name != SBX and s["wall_clock_s"]["median"] is not None}
    head = f"{task}: "
    if SBX not in summaries:
        return head + f"no {SBX} runs, no ratio."
    sbx = summaries[SBX]["wall_clock_s"]["median"]
    if sbx is None:
        return head + f"{SBX}'s median does not reach the threshold within the cap, no ratio."
    if not rwrl:
        return head + "no rwrl contestant's median reaches the threshold within the cap, no ratio."
    best = min(rwrl, key=rwrl.get)
    ratio = rwrl[best] / sbx
    verdict = "holds" if ratio <= GOAL_RATIO else "does not hold"
    return (head + f"{best} / {SBX} median wall-clock to the threshold = {rwrl[best]:.1f} s / "
            f"{sbx:.1f} s = {ratio:.2f}; the goal (<= 1/3) {verdict}.")


def _with_interval(figure: dict[str, Any], spec: str, scale: float = 1.0) -> str:
    if figure["median"] is None:
        return "not reached"
    text = format(figure["median"] * scale, spec)
    if figure["low"] is not None:
        text += f" [{figure['low'] * scale:{spec}}, {figure['high'] * scale:{spec}}]"
    return text


def _summary_rows(by_contestant: dict[str, list[dict[str, Any]]]) -> list[list[Any]]:
    f = results_page.fmt
    rows = []
    for name, runs in by_contestant.items():
        s = summarise(runs)
        rows.append([name, f"{s['reached']} of {s['seeds']}", _with_interval(s["steps"], ",.0f"),
                     _with_interval(s["wall_clock_s"], ".1f"), f(s["updates"], ",.0f"),
                     f(s["time_per_update_ms"], ".2f"), f(s["updates_per_s"], ".0f"),
                     f(s["outside_learner_share"], ".2f")])
    return rows


def _seed_rows(runs: list[dict[str, Any]]) -> list[list[Any]]:
    f = results_page.fmt
    return [[r["task"], r["contestant"], r["seed"], r["cap"] and f"{r['cap']:,}",
             f(r["steps_to_threshold"], ",") if r["reached"] else "not reached",
             f(r["wall_clock_to_threshold_s"], ".1f"), f(r["final_eval_return"], ".1f"),
             f"{r['env_steps']:,}", f(r["wall_clock_s"], ".1f"), f"{r['updates']:,}",
             f(r["time_per_update_ms"], ".2f"), f(r["updates_per_s"], ".0f"),
             f(r["outside_learner_share"], ".2f")] for r in runs]


LOAD = ", load average "


def _recorded(runs: list[dict[str, Any]], key: str) -> str | None:
    """The runs' recorded dates (first to last) or machines (each once, then the range of the
    load averages at the start of the runs); None if none recorded."""
    values = sorted({r["measured"][key] for r in runs if r.get("measured")})
    if not values:
        return None
    if key == "date":
        return values[0] if len(values) == 1 else f"{values[0]} to {values[-1]}"
    machines = sorted({v.split(LOAD)[0] for v in values})
    loads = sorted(float(v.split(LOAD)[1].split()[0]) for v in values if LOAD in v)
    load = f"{loads[0]:.1f}" if loads and loads[0] == loads[-1] else (
        f"{loads[0]:.1f} to {loads[-1]:.1f}" if loads else None)
    return "; ".join(machines) + (f"{LOAD}{load} at the start of the runs" if load else "")


def _eval_every(runs: list[dict[str, Any]]) -> str:
    """Return the runs' evaluation interval(s) in env steps (results before it was recorded: 5,000)."""
    return " or ".join(f"{e:,}" for e in sorted({r.get("eval_every", EVAL_EVERY) for r in runs}))


def page(results: dict[str, Any], source: str, date: str | None = None,
         machine: str | None = None) -> str:
    """Return the results page of a versus_sbx.json (``source``: its path as the command gives it)."""
    runs = results["runs"]
    meta = results_page.measured({"measured": {"date": _recorded(runs, "date"),
                                               "machine": _recorded(runs, "machine"),
                                               "command": (results.get("measured") or {}).get("command")}},
                                 date, machine)
    groups = group(runs)
    sections: list[tuple[str | None, list[str]]] = [(None, [
        f"Each run stops at the first evaluation ({EVAL_EPISODES} deterministic episodes, every "
        f"{_eval_every(runs)} env steps) whose mean return reaches the threshold, or at the cap. "
        "Wall-clock: the training loop's "
        "seconds less its evaluations (rwrl's includes its checkpoint writes). Steps and "
        "wall-clock: median over seeds, a seed that did not reach counting as never, with the 95 % "
        "percentile-bootstrap interval of the median (`rwrl.report.aggregate.bootstrap_ci`) when "
        "every seed reached; with 3 seeds that interval lies within [min, max] of the seeds. The "
        "other figures: median over every seed's run (to the threshold or the cap). Time per "
        "update excludes the compiling update; updates/s are over the wall-clock; outside learner: "
        "1 - (learner + compile) / wall-clock. sbx's learner time includes its replay sampling, "
        "rwrl's does not. See the docstring of `benchmarks/versus_sbx.py`."])]
    for task, by_contestant in groups.items():
        threshold = next(iter(by_contestant.values()))[0]["threshold"]
        summaries = {name: summarise(rs) for name, rs in by_contestant.items()}
        sections.append((f"{task}: return >= {threshold:g}", [
            *results_page.table(["contestant", "seeds reaching", "env steps to threshold",
                                 "wall-clock s to threshold", "updates", "ms per update",
                                 "updates/s", "outside learner"],
                                _summary_rows(by_contestant), "lrrrrrrr"),
            "", ratio_line(task, summaries)]))
    sections.append(("Per seed", results_page.table(
        ["task", "contestant", "seed", "cap", "env steps to threshold", "wall-clock s to threshold",
         "last eval return", "env steps", "wall-clock s", "updates", "ms per update", "updates/s",
         "outside learner"], _seed_rows(runs), "llrrrrrrrrrrr")))
    return results_page.render_page(
        "Versus sbx: rwrl's agents and sbx's SAC to a return threshold", meta["command"],
        meta["date"], meta["machine"], sections, source=Path(source).name,
        rebuild=results_page.rebuild_command("versus_sbx.py", f"--results {source}", meta))


def write_page(json_path: Path, date: str | None = None, machine: str | None = None) -> Path:
    """Write the page beside ``json_path`` (a versus_sbx.json) from it; return the page's path."""
    return results_page.write_json_page(json_path, page, date, machine)


# ------------------------------------------------------------------ command line
def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", nargs="+", choices=sorted(TASKS), default=list(TASKS))
    parser.add_argument("--contestants", nargs="+", default=list(DEFAULT_CONTESTANTS),
                        help=f"{SBX} and rwrl-<agent>-<preset> (rwrl.agents.presets)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--cap", type=int, help="env steps at most per run (default: the task's)")
    parser.add_argument("--eval-every", type=int, default=EVAL_EVERY, help="env steps between evaluations")
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="where results and runs go")
    results_page.add_page_arguments(parser)
    parser.add_argument("--results", dest="out", type=Path,
                        help=f"the same as --out (default ROOT/{JSON_NAME})")
    args = parser.parse_args(argv)
    if args.out is None:
        args.out = args.root / JSON_NAME
    if results_page.rewrite_page_only(parser, args, write_page):
        return 0
    for name in args.contestants:
        try:
            parse_contestant(name)
        except ValueError as err:
            parser.error(str(err))
    if args.cap is not None and args.cap <= 0 or args.eval_every <= 0:
        parser.error("--cap and --eval-every: give a positive number of env steps")
    if SBX in args.contestants and importlib.util.find_spec("sbx") is None:
        parser.error(f"{SBX} needs sbx: pip install -e '.[integrations]' (or leave {SBX} out of --contestants)")
    from rwrl.experiments.config import ConfigError
    try:
        sitting(args.tasks, args.contestants, args.seeds, args.root, args.out, argv,
                cap=args.cap, eval_every=args.eval_every)
    except ConfigError as err:  # e.g. an agent without the contestant's preset
        print(f"versus_sbx.py: error: {err}", file=sys.stderr)
        return 2
    print(f"page: {results_page.page_path(args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
