"""Issue 27's suite (parts 3 and 4): teachers, distilled students, latency, real time, surrogates.

Per task of ``--tasks`` (default cartpole-swingup and walker-walk) and seed of
``--seeds`` (default 3: seeds 0, 1, 2), resumably, into ``--root``:

1. Teachers: one D4PG run per (task, seed), ``--preset fast`` (128 x 128
   policy and critic), trained by ``rwrl sweep run`` from the sweep file this
   script writes to ``ROOT/teachers.toml`` into ``ROOT/teachers/``
   (``--workers`` runs at once). Env steps per task: ``--teacher-steps
   TASK=STEPS``, default ``TEACHER_STEPS`` (cartpole-swingup 100k, walker-walk
   200k: the fast preset reached 750 and 600 there by 55k and 85k in
   ``benchmarks/results/versus_sbx.md``), 200k for any other task.
   ``--archive DIR`` keeps each finished run (config, summary, metrics) as
   ``rwrl sweep run --archive`` does. Archives keep no checkpoints, and
   distillation, latency and ``rwrl explain`` read the teacher's checkpoint:
   stages 2 and 3 need the live ``ROOT/teachers/runs/``. A teacher restored
   from the archive without its checkpoint is reported and left unfinished,
   unless its rows are already in the JSON.
2. Students, per teacher, by ``rwrl distill`` (``--seed`` = the teacher's
   seed) into ``ROOT/distill/<task>/s<seed>/``: ``direct`` (``--sizes S``),
   ``assisted`` (``--sizes A,S``: a direct student A wide, then the S-wide
   student distilled from it) and ``dagger`` (``--sizes S --states
   dagger``). A = the teacher's widest layer / 4 and S = / 16 (32 and 8 for
   the fast preset's 128), or ``--assistant-width`` / ``--student-width``.
   A folder with its ``distill.json`` is done and skipped.
3. Measurements, per teacher: (a) batch-1 inference latency of the teacher
   and every student, interleaved call by call (``realtime_distill.py``'s
   ``forward`` and ``time_forwards``); (b) return and deadline-miss rate over
   ``--episodes`` episodes without ``realtime_spec`` (mode ``none``) and under
   it in ``simulated`` (the policy's own latency samples) and ``wallclock``
   mode at each budget: the task's control period, then ``--budgets-ms``
   (default ``BUDGETS_MS``, the same for every policy and task, fixed before
   measuring: from the networks' medians to their tails on a 2-core CPU,
   ``benchmarks/results/realtime_distill.md``; wallclock latency includes
   this loop's Python, 0.1 to 0.2 ms there, so below that every policy
   misses); (c) ``rwrl explain`` of the teacher at ``--depths`` (default
   1..6) into ``ROOT/explain/<task>/s<seed>/``.
   Each item's rows go into ``OUT`` (JSON) at once, atomically, and a rerun
   skips the items there.
4. The page: ``OUT.md`` (minus ``.json``) and ``OUT.png``; over seeds, means
   with 95 % percentile-bootstrap intervals (``rwrl.report.aggregate.estimate``,
   as the sweep benchmarks use). The claim, per task, mode and budget, as
   measured: the teacher misses the deadline (more than ``MISS_TOLERANCE`` of
   its steps), the assistant-distilled S-wide student meets it (at most that
   share) and returns more than the direct S-wide student there. The figure:
   return (simulated, at the control period) against median latency per
   method, one panel per task. ``--page-only`` rebuilds both from ``OUT``.

Exits 1 while anything is unfinished (a teacher not trained, a distillation
that failed, an item not measured): run the same command again.

Usage (the full scale: 2 tasks x 3 seeds; keep ROOT until it exits 0)::

    python benchmarks/distill_suite.py --root runs/distill-suite --workers 2 \\
        --archive benchmarks/results/archive/distill-suite-teachers \\
        --out runs/distill-suite/distill_suite.json
    python benchmarks/distill_suite.py --page-only --out runs/distill-suite/distill_suite.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))  # results_page.py beside this file

import numpy as np  # noqa: E402

import realtime_distill  # noqa: E402
import results_page  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TASKS = ("cartpole-swingup", "walker-walk")
#: teacher env steps per task (``--teacher-steps`` overrides); other tasks get ``OTHER_STEPS``.
TEACHER_STEPS = {"cartpole-swingup": 100_000, "walker-walk": 200_000}
OTHER_STEPS = 200_000
#: env steps between a teacher's evaluations (at most its steps).
EVAL_EVERY = 10_000
AGENT, PRESET = "d4pg", "fast"
#: the assistant and the student are the teacher's widest layer divided by these.
ASSISTANT_DIVISOR, STUDENT_DIVISOR = 4, 16
#: real-time budgets (ms) after the task's control period.
BUDGETS_MS = (1.0, 0.1, 0.05, 0.03)
MODES = ("none", "simulated", "wallclock")
#: a policy "misses the deadline" at a budget when more than this share of its steps miss.
MISS_TOLERANCE = 0.01
DEPTHS = (1, 2, 3, 4, 5, 6)
METHODS = ("teacher", "direct", "assistant", "dagger")
#: student folder -> (rwrl distill --states, which widths: "S" or "A,S").
FOLDERS = {"direct": ("rollouts", "S"), "assisted": ("rollouts", "A,S"), "dagger": ("dagger", "S")}
SCRIPT = "distill_suite.py"


# ----------------------------------------------------------------- settings and results file
def parse_steps(pairs: Sequence[str], tasks: Sequence[str]) -> dict[str, int]:
    """Return task -> teacher env steps: ``TEACHER_STEPS`` (else ``OTHER_STEPS``), then ``TASK=STEPS`` pairs.

    >>> parse_steps(["walker-walk=5000"], ["cartpole-swingup", "walker-walk"])
    {'cartpole-swingup': 100000, 'walker-walk': 5000}
    """
    steps = {t: TEACHER_STEPS.get(t, OTHER_STEPS) for t in tasks}
    for pair in pairs:
        task, _, value = pair.partition("=")
        if task not in steps or not value.isdigit() or int(value) < 1:
            raise SystemExit(f"--teacher-steps {pair!r}: give TASK=STEPS, TASK one of {list(tasks)}, "
                             "STEPS an integer >= 1")
        steps[task] = int(value)
    return steps


def settings_of(args: argparse.Namespace) -> dict[str, Any]:
    """Return what the measurements depend on (a rerun must give the same to continue them)."""
    return {"tasks": list(args.tasks), "seeds": args.seeds,
            "teacher_steps": parse_steps(args.teacher_steps, args.tasks), "agent": AGENT, "preset": PRESET,
            "time_limit": args.time_limit, "assistant_width": args.assistant_width,
            "student_width": args.student_width, "distill_episodes": args.distill_episodes,
            "epochs": args.epochs, "rounds": args.rounds, "distill_eval_episodes": args.distill_eval_episodes,
            "calls": args.calls, "warmup": args.warmup, "episodes": args.episodes,
            "budgets_ms": list(args.budgets_ms), "fallback": args.fallback, "modes": list(MODES),
            "miss_tolerance": MISS_TOLERANCE, "depths": list(args.depths),
            "explain_iterations": args.explain_iterations, "explain_episodes": args.explain_episodes,
            "explain_eval_episodes": args.explain_eval_episodes}


#: settings a later run may extend (more tasks, more seeds, the new tasks' steps) without starting afresh.
GROWS = ("tasks", "seeds", "teacher_steps")


def merged_settings(recorded: dict[str, Any], settings: dict[str, Any], keys: Sequence[str],
                    where: str) -> dict[str, Any]:
    """Return ``recorded`` extended by ``settings``; SystemExit naming the ``keys`` (or steps) that differ.

    >>> merged_settings({"tasks": ["a"], "seeds": 3, "teacher_steps": {"a": 5}, "epochs": 50},
    ...                 {"tasks": ["b"], "seeds": 1, "teacher_steps": {"b": 7}, "epochs": 50}, ["epochs"], "x")
    {'tasks': ['a', 'b'], 'seeds': 3, 'teacher_steps': {'a': 5, 'b': 7}, 'epochs': 50}
    """
    differ = [k for k in keys if k not in GROWS and recorded.get(k) != settings.get(k)] + [
        f"teacher_steps of {t}" for t, n in settings["teacher_steps"].items()
        if recorded["teacher_steps"].get(t, n) != n]
    if differ:
        raise SystemExit(f"{where} was made with other settings ({', '.join(differ)}): give the same "
                         "options to continue it, or another --root and --out to start afresh")
    return {**recorded, "tasks": list(dict.fromkeys(recorded["tasks"] + settings["tasks"])),
            "seeds": max(recorded["seeds"], settings["seeds"]),
            "teacher_steps": {**recorded["teacher_steps"], **settings["teacher_steps"]}}


def load_results(out: Path, settings: dict[str, Any]) -> dict[str, Any]:
    """Return the results file at ``out`` to continue (its settings extended by ``settings``), or a new one."""
    if not out.is_file():
        return {"settings": settings, "sessions": [], "teachers": {}, "items": {}}
    results = json.loads(out.read_text())
    results["settings"] = merged_settings(results["settings"], settings, sorted(settings), str(out))
    return results


#: the settings that ROOT's teachers, students and surrogates were made with (``check_root``).
ROOT_KEYS = ("tasks", "seeds", "teacher_steps", "agent", "preset", "time_limit", "assistant_width",
             "student_width", "distill_episodes", "epochs", "rounds", "distill_eval_episodes", "depths",
             "explain_iterations", "explain_episodes", "explain_eval_episodes")
ROOT_SETTINGS = "suite-settings.json"


def check_root(root: Path, settings: dict[str, Any]) -> dict[str, Any]:
    """Refuse a ROOT whose teachers, students or surrogates were made with other settings; record and
    return them, extended by ``settings`` (its teachers' sweep may grow, never shrink).

    The measurement settings (calls, episodes, budgets) may differ between results files of one ROOT.
    """
    path = root / ROOT_SETTINGS
    mine = {k: settings[k] for k in ROOT_KEYS}
    if path.is_file():
        mine = merged_settings(json.loads(path.read_text()), mine, ROOT_KEYS, str(root))
    root.mkdir(parents=True, exist_ok=True)
    results_page.save_results(mine, path)
    return mine


def item_key(stage: str, task: str, seed: int) -> str:
    return f"{stage}|{task}|{seed}"


# ----------------------------------------------------------------- stage 1: teachers
def teacher_spec(tasks: Sequence[str], seeds: int, steps: dict[str, int], time_limit: int | None = None) -> str:
    """Return the teachers' sweep file (TOML): D4PG fast on ``tasks``, steps per domain.

    ``time_limit``: episode length in control steps (None: each task's own); the students,
    the evaluations and ``rwrl explain`` read it from the teacher's run, so it holds throughout.
    """
    from rwrl.domains.names import domain_of
    per_domain: dict[str, int] = {}
    for task in tasks:
        domain = domain_of(task)
        if per_domain.setdefault(domain, steps[task]) != steps[task]:
            raise SystemExit(f"--teacher-steps: {task} and another {domain} task differ; the sweep file "
                             "sets steps per domain, so give them the same")

    def table(values: dict[str, int]) -> str:
        return "{per_domain = {" + ", ".join(f"{d} = {v}" for d, v in values.items()) + "}}"
    return "\n".join([
        "# Written by benchmarks/distill_suite.py: the teachers of issue 27's suite.",
        "[sweep]", 'name = "distill-suite-teachers"',
        'description = "D4PG teachers (fast preset) for distillation, latency and surrogates."',
        f'agents = ["{AGENT}"]', "envs = [" + ", ".join(f'"{t}"' for t in tasks) + "]", f"seeds = {seeds}",
        "", "[fixed]", f"steps = {table(per_domain)}",
        f"eval_every = {table({d: min(EVAL_EVERY, v) for d, v in per_domain.items()})}",
        f'"agent_config.preset" = "{PRESET}"',
        *([] if time_limit is None else [f'"env_kwargs.time_limit" = {time_limit}']), ""])


def train_teachers(args: argparse.Namespace, root_settings: dict[str, Any]) -> int:
    """Run (or continue) the teachers' sweep in ``ROOT/teachers``; return ``rwrl sweep run``'s exit status.

    The sweep file holds every task and seed that ROOT was ever asked for (``check_root``).
    """
    from rwrl.storage.atomic_files import atomic_write_bytes
    r = root_settings
    spec = args.root / "teachers.toml"
    atomic_write_bytes(spec, teacher_spec(r["tasks"], r["seeds"], r["teacher_steps"], r["time_limit"]).encode())
    command = [sys.executable, "-m", "rwrl.cli", "sweep", "run", str(spec),
               "--out", str(args.root / "teachers"), "--workers", str(args.workers), "--no-progress"]
    if args.archive is not None:
        command += ["--archive", str(args.archive)]
    print(f"stage 1, teachers: {' '.join(command[2:])}", flush=True)
    code = subprocess.run(command).returncode
    if code not in (0, 1):
        raise SystemExit(f"rwrl sweep run could not start (exit {code}): see its message above")
    return code


def teacher_runs(root: Path) -> dict[tuple[str, int], tuple[Path, str]]:
    """Return (task, seed) -> (run directory, its status) for every run of the teachers' plan."""
    from rwrl.experiments.sweeps.status import check_run
    from rwrl.metrics.sweep_results import read_plan, run_dir
    sweep = root / "teachers"
    if not (sweep / "sweep.json").is_file():
        return {}
    return {(r["config"]["env"], int(r["config"]["seed"])): (run_dir(sweep, r["run_id"]),
                                                             check_run(run_dir(sweep, r["run_id"])).status)
            for r in read_plan(sweep)["runs"]}


def has_checkpoint(run: Path) -> bool:
    return any((run / "checkpoints").glob("ckpt-*"))


# ----------------------------------------------------------------- stage 2: students
def widths(run: Path, args: argparse.Namespace) -> tuple[int, int]:
    """Return (assistant, student) widths: the options, else the teacher's widest layer / 4 and / 16."""
    config = json.loads((run / "config.json").read_text())
    widest = max(config["agent"]["policy_hidden_sizes"])
    return (args.assistant_width or max(1, widest // ASSISTANT_DIVISOR),
            args.student_width or max(1, widest // STUDENT_DIVISOR))


def distill_folder(root: Path, task: str, seed: int, name: str) -> Path:
    return root / "distill" / task / f"s{seed}" / name


def distill_command(run: Path, folder: Path, name: str, assistant: int, student: int, seed: int,
                    args: argparse.Namespace) -> list[str]:
    """Return the ``rwrl distill`` command of student folder ``name`` (``FOLDERS``)."""
    states, which = FOLDERS[name]
    sizes = f"{assistant},{student}" if which == "A,S" else str(student)
    return [sys.executable, "-m", "rwrl.cli", "distill", str(run), "--sizes", sizes, "--out", str(folder),
            "--states", states, "--episodes", str(args.distill_episodes), "--epochs", str(args.epochs),
            "--rounds", str(args.rounds), "--eval-episodes", str(args.distill_eval_episodes),
            "--seed", str(seed)]


def distill_teacher(run: Path, task: str, seed: int, args: argparse.Namespace) -> int:
    """Write every student folder of one teacher that is not written yet; return how many failed."""
    assistant, student = widths(run, args)
    failed = 0
    for name in FOLDERS:
        folder = distill_folder(args.root, task, seed, name)
        if (folder / "distill.json").is_file():
            continue
        start = time.perf_counter()
        done = subprocess.run(distill_command(run, folder, name, assistant, student, seed, args),
                              capture_output=True, text=True)
        if done.returncode != 0:
            failed += 1
            print(f"  distill {task} s{seed} {name}: failed (exit {done.returncode}): "
                  f"{(done.stdout + done.stderr).strip()[-2000:]}", flush=True)
        else:
            print(f"  distill {task} s{seed} {name}: {time.perf_counter() - start:.0f} s", flush=True)
    return failed


# ----------------------------------------------------------------- stage 3: measurements
def student_policies(folders: dict[str, Path]) -> list[dict[str, Any]]:
    """Return the students of the ``FOLDERS`` folders: name, method, width, directory, distillation figures.

    ``direct`` and ``dagger`` folders hold one student each; ``assisted`` a direct one
    (its first link, distilled from the teacher) and the assistant-distilled one.
    """
    out = []
    for name, folder in folders.items():
        report = json.loads((folder / "distill.json").read_text())
        for row in report["students"]:
            method = ("dagger" if name == "dagger"
                      else realtime_distill.method_of(row["teacher"], report["teacher"]))
            out.append({"name": f"{method} {row['width']}", "method": method, "width": row["width"],
                        "folder": name, "directory": row["directory"], "distill_return": row["return"],
                        "action_error": row["action_error"]})
    # the direct folder's student and the assisted chain's first link are both "direct": keep
    # each width once (the direct folder's: its own run, not a step of another)
    seen, unique = set(), []
    for p in sorted(out, key=lambda p: p["folder"] != "direct"):
        if (p["method"], p["width"]) not in seen:
            seen.add((p["method"], p["width"]))
            unique.append(p)
    return unique


def measure_realtime(run: Path, task: str, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    """Time the teacher and its students at batch 1 and evaluate each with and without ``realtime_spec``."""
    from rwrl.datasets.episodes import derived_seeds
    from rwrl.distill.runs import load_teacher

    folders = {name: distill_folder(args.root, task, seed, name) for name in FOLDERS}
    teacher = load_teacher(run)
    found = [{"name": f"teacher {max(teacher.hidden_sizes)}", "method": "teacher",
              "width": max(teacher.hidden_sizes), "directory": str(run)}] + student_policies(folders)
    loaded = [teacher] + [load_teacher(Path(p["directory"])) for p in found[1:]]
    dt = realtime_distill.control_timestep(teacher.env_id, teacher.env_kwargs)
    budgets = [dt] + [b / 1000.0 for b in args.budgets_ms]
    fns = [realtime_distill.forward(r) for r in loaded]
    start = time.perf_counter()
    samples = realtime_distill.time_forwards(fns, np.zeros((1, teacher.obs_size), np.float32),
                                             args.calls, args.warmup)
    timing = time.perf_counter() - start
    seeds = derived_seeds(seed, "evaluation", 0, args.episodes)
    start = time.perf_counter()
    for p, r, fn, sample in zip(found, loaded, fns, samples):
        p.update(task=task, seed=seed, hidden_sizes=list(r.hidden_sizes),
                 latency=realtime_distill.latency_summary(sample),
                 evaluations=realtime_distill.evaluate_realtime(
                     teacher.env_id, teacher.env_kwargs, realtime_distill.env_act(fn, r), sample, budgets,
                     MODES, seeds, args.fallback))
    return {"env": teacher.env_id, "control_timestep_s": dt, "budgets_s": budgets, "timing_seconds": timing,
            "evaluation_seconds": time.perf_counter() - start, "policies": found}


def measure_explain(run: Path, task: str, seed: int, args: argparse.Namespace) -> dict[str, Any] | None:
    """Run ``rwrl explain`` of the teacher at ``--depths`` (unless its explain.json exists); return its rows."""
    out = args.root / "explain" / task / f"s{seed}"
    if not (out / "explain.json").is_file():
        command = [sys.executable, "-m", "rwrl.cli", "explain", str(run), "--depth",
                   ",".join(str(d) for d in args.depths), "--out", str(out),
                   "--iterations", str(args.explain_iterations), "--episodes", str(args.explain_episodes),
                   "--eval-episodes", str(args.explain_eval_episodes), "--seed", str(seed)]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            print(f"  explain {task} s{seed}: failed (exit {done.returncode}): "
                  f"{(done.stdout + done.stderr).strip()[-2000:]}", flush=True)
            return None
    report = json.loads((out / "explain.json").read_text())
    rows = [{"task": task, "seed": seed, "surrogate": r["surrogate"], "depth": r["depth"], "r2": r["r2"],
             "action_error": r["action_error"], "return": r["return"]["mean"]} for r in report["surrogates"]]
    return {"directory": str(out), "teacher_return": report["teacher_return"]["mean"],
            "weights": report.get("weights"), "surrogates": rows}


def run_teacher(results: dict[str, Any], run: Path, task: str, seed: int, args: argparse.Namespace) -> int:
    """Distil one teacher's students and measure what the results file lacks; return the items left."""
    items = results["items"]
    left = 0
    if item_key("realtime", task, seed) not in items:
        if distill_teacher(run, task, seed, args):
            left += 1
        else:
            start = time.perf_counter()
            items[item_key("realtime", task, seed)] = measure_realtime(run, task, seed, args)
            results_page.save_results(results, args.out)
            print(f"  realtime {task} s{seed}: {time.perf_counter() - start:.0f} s", flush=True)
    if item_key("explain", task, seed) not in items:
        start = time.perf_counter()
        rows = measure_explain(run, task, seed, args)
        if rows is None:
            left += 1
        else:
            items[item_key("explain", task, seed)] = rows
            results_page.save_results(results, args.out)
            print(f"  explain {task} s{seed}: {time.perf_counter() - start:.0f} s", flush=True)
    return left


def run_suite(args: argparse.Namespace) -> int:
    """Stages 1 to 3, resumably; return how many things are left unfinished."""
    settings = settings_of(args)
    results = load_results(args.out, settings)
    root_settings = check_root(args.root, settings)
    results["sessions"].append(results_page.stamp(SCRIPT, args.argv))
    results_page.save_results(results, args.out)
    left = 0 if train_teachers(args, root_settings) == 0 else 1
    runs = teacher_runs(args.root)
    wanted = [(t, s) for t in args.tasks for s in range(args.seeds)]
    for k, (task, seed) in enumerate(wanted, start=1):
        keys = [item_key(stage, task, seed) for stage in ("realtime", "explain")]
        if all(key in results["items"] for key in keys):
            continue
        run, status = runs.get((task, seed), (None, "not planned"))
        if status != "done" or not has_checkpoint(run):
            why = status if status != "done" else (
                "done, but without a checkpoint (restored from an archive?): distillation needs the live run; "
                f"remove {run} and its archived copy to train it again")
            print(f"[{k}/{len(wanted)}] {task} s{seed}: teacher {why}; its students wait", flush=True)
            left += 1
            continue
        print(f"[{k}/{len(wanted)}] {task} s{seed}: teacher {run}", flush=True)
        results["teachers"][f"{task}|{seed}"] = {"run": str(run), "final_eval_return": json.loads(
            (run / "summary.json").read_text()).get("final_eval_return")}
        left += run_teacher(results, run, task, seed, args)
    return left


# ----------------------------------------------------------------- stage 4: aggregation
def _estimate(values: Sequence[float]) -> dict[str, Any]:
    from rwrl.report.aggregate import estimate
    e = estimate(values)
    return {k: e[k] for k in ("n_seeds", "mean", "ci_low", "ci_high")}


def _budget_key(mode: str, budget_s: float | None) -> str:
    return "none" if mode == "none" else f"{mode}@{budget_s * 1e3:g}"


def _policy_label(method: str, width: int) -> str:
    return f"{method} {width}"


def aggregate(results: dict[str, Any]) -> dict[str, Any]:
    """Return per task: the policies' latency and evaluations, and the surrogates, each over seeds."""
    tasks: dict[str, Any] = {}
    for key, item in sorted(results["items"].items()):
        stage, task, _ = key.split("|")
        entry = tasks.setdefault(task, {"policies": {}, "surrogates": {}, "teacher_return": [], "budgets_s": [],
                                        "control_timestep_s": None, "weights": set()})
        if stage == "realtime":
            entry["control_timestep_s"] = item["control_timestep_s"]
            entry["budgets_s"] = sorted(set(entry["budgets_s"]) | set(item["budgets_s"]), reverse=True)
            for p in item["policies"]:
                per = entry["policies"].setdefault(_policy_label(p["method"], p["width"]), {
                    "method": p["method"], "width": p["width"], "hidden_sizes": p["hidden_sizes"],
                    "median_us": [], "p99_us": [], "action_error": [], "evaluations": {}})
                per["median_us"].append(p["latency"]["median_s"] * 1e6)
                per["p99_us"].append(p["latency"]["p99_s"] * 1e6)
                per["action_error"].append(p.get("action_error", float("nan")))
                for e in p["evaluations"]:
                    cell = per["evaluations"].setdefault(_budget_key(e["mode"], e["budget_s"]),
                                                         {"return": [], "miss_rate": []})
                    cell["return"].append(e["mean_return"])
                    cell["miss_rate"].append(e["miss_rate"])
        else:
            entry["teacher_return"].append(item["teacher_return"])
            entry["weights"].add(weights_label(item.get("weights")))
            for r in item["surrogates"]:
                cell = entry["surrogates"].setdefault(_surrogate_label(r), {"surrogate": r["surrogate"],
                                                                           "depth": r["depth"], "r2": [],
                                                                           "action_error": [], "return": []})
                for name in ("r2", "action_error", "return"):
                    cell[name].append(r[name])
    return {task: _estimates(entry) for task, entry in tasks.items()}


def weights_label(weights: Any) -> str:
    """Return how ``rwrl explain`` weighted its samples: ``explain.json``'s text, or its table's ``kind``.

    >>> weights_label({"kind": "q-gap", "candidates": 64}), weights_label("uniform (plain DAgger)")
    ('q-gap', 'uniform (plain DAgger)')
    """
    if isinstance(weights, dict):
        return str(weights.get("kind", json.dumps(weights, sort_keys=True)))
    return results_page.NOT_RECORDED if weights is None else str(weights)


def _surrogate_label(row: dict[str, Any]) -> str:
    return "linear" if row["depth"] is None else f"tree {row['depth']}"


def _estimates(entry: dict[str, Any]) -> dict[str, Any]:
    """Replace every per-seed list of ``entry`` by its ``_estimate`` (keeping the values as ``per_seed``)."""
    def est(values):
        return {**_estimate(values), "per_seed": list(values)}
    policies = {label: {**p, "median_us": est(p["median_us"]), "p99_us": est(p["p99_us"]),
                        "action_error": est(p["action_error"]),
                        "evaluations": {k: {"return": est(c["return"]), "miss_rate": est(c["miss_rate"])}
                                        for k, c in p["evaluations"].items()}}
                for label, p in entry["policies"].items()}
    surrogates = {label: {**s, "r2": est(s["r2"]), "action_error": est(s["action_error"]),
                          "return": est(s["return"])} for label, s in entry["surrogates"].items()}
    return {"policies": dict(sorted(policies.items(), key=lambda kv: _order(kv[1]))),
            "surrogates": dict(sorted(surrogates.items(), key=lambda kv: (kv[1]["depth"] or 0))),
            "teacher_return": est(entry["teacher_return"]) if entry["teacher_return"] else None,
            "budgets_s": entry["budgets_s"], "control_timestep_s": entry["control_timestep_s"],
            "weights": sorted(entry["weights"])}


def _order(policy: dict[str, Any]) -> tuple[int, int]:
    return METHODS.index(policy["method"]), -policy["width"]


def claim_rows(task: dict[str, Any], mode: str, tolerance: float) -> list[dict[str, Any]]:
    """Return per budget and assistant-distilled width whether the claim holds there, as measured.

    The claim at a budget: the teacher misses (miss rate over ``tolerance``), the assistant-distilled
    student meets it (at most ``tolerance``) and returns more than the direct student of its width.
    """
    policies = task["policies"]
    teacher = next((p for p in policies.values() if p["method"] == "teacher"), None)
    rows = []
    for p in policies.values():
        direct = policies.get(_policy_label("direct", p["width"]))
        if p["method"] != "assistant" or teacher is None or direct is None:
            continue
        for budget in task["budgets_s"]:
            key = _budget_key(mode, budget)
            cells = [q["evaluations"].get(key) for q in (teacher, p, direct)]
            if None in cells:
                continue
            t, a, d = cells
            misses, meets = t["miss_rate"]["mean"] > tolerance, a["miss_rate"]["mean"] <= tolerance
            more = a["return"]["mean"] > d["return"]["mean"]
            rows.append({"budget_s": budget, "width": p["width"], "teacher_miss": t["miss_rate"],
                         "assistant_miss": a["miss_rate"], "assistant_return": a["return"],
                         "direct_return": d["return"], "teacher_misses": misses, "assistant_meets": meets,
                         "more_return": more, "intervals": intervals(a["return"], d["return"], "return "),
                         "holds": misses and meets and more})
    return rows


def claim_line(rows: list[dict[str, Any]], mode: str) -> str:
    """Return the verdict over ``claim_rows``: where it holds, or that it holds at no budget measured."""
    if not rows:
        return f"{mode}: not measured yet"
    held = [r for r in rows if r["holds"]]
    if not held:
        return f"{mode}: does not hold at any budget measured"
    where = ", ".join(f"{r['budget_s'] * 1e3:g} ms ({r['width']} wide; {r['intervals']})"
                      for r in held)
    return f"{mode}: holds at {where}"


# ----------------------------------------------------------------- the page and figure
def _cell(e: dict[str, Any] | None, spec: str = ".0f", scale: float = 1.0) -> str:
    """``mean [low, high]`` of an ``_estimate`` (no interval below 2 seeds), times ``scale``."""
    if e is None or e["mean"] is None or e["n_seeds"] == 0:
        return results_page.MISSING
    text = format(e["mean"] * scale, spec)
    low, high = e["ci_low"], e["ci_high"]
    if low is not None and high is not None and low == low and high == high:
        text += f" [{format(low * scale, spec)}, {format(high * scale, spec)}]"
    return text


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def intervals(a: dict[str, Any], b: dict[str, Any], what: str = "") -> str:
    """Return "<what>intervals apart" or "... overlap" for estimates ``a`` and ``b``, or that there are none."""
    bounds = [a["ci_low"], a["ci_high"], b["ci_low"], b["ci_high"]]
    if any(x is None or x != x for x in bounds):
        return "no intervals below 2 seeds"
    return what + ("intervals apart" if a["ci_low"] > b["ci_high"] or a["ci_high"] < b["ci_low"]
                   else "intervals overlap")


def task_sections(name: str, task: dict[str, Any], tolerance: float) -> list[tuple[str, list[str]]]:
    """Return the page's sections of one task: latency, real time, the claim, DAgger, fidelity."""
    policies = task["policies"]
    latency = results_page.table(
        ["policy", "hidden sizes", "seeds", "median (µs)", "p99 (µs)", "return, no challenge",
         "action error (distill)"],
        [[label, "x".join(str(h) for h in p["hidden_sizes"]), p["median_us"]["n_seeds"],
          _cell(p["median_us"], ".1f"), _cell(p["p99_us"], ".1f"),
          _cell(p["evaluations"].get("none", {}).get("return")),
          _cell(p["action_error"], ".4f") if p["method"] != "teacher" else results_page.MISSING]
         for label, p in policies.items()], "llrrrrr")
    rt_rows = []
    for budget in task["budgets_s"]:
        for label, p in policies.items():
            cells = [p["evaluations"].get(_budget_key(mode, budget)) for mode in ("simulated", "wallclock")]
            rt_rows.append([f"{budget * 1e3:g}", label] + [
                x for c in cells for x in ((_cell(c["return"]), _cell(c["miss_rate"], ".2f", 100))
                                           if c else (results_page.MISSING, results_page.MISSING))])
    realtime = results_page.table(
        ["budget (ms)", "policy", "return, simulated", "misses (%), simulated", "return, wallclock",
         "misses (%), wallclock"], rt_rows, "llrrrr")
    claims = []
    for mode in ("simulated", "wallclock"):
        rows = claim_rows(task, mode, tolerance)
        claims += [f"- {claim_line(rows, mode)}"]
        claims += ["", *results_page.table(
            ["budget (ms)", "width", "teacher misses (%)", "assistant misses (%)", "assistant return",
             "direct return", "teacher misses", "assistant meets", "more return", "holds"],
            [[f"{r['budget_s'] * 1e3:g}", r["width"], _cell(r["teacher_miss"], ".2f", 100),
              _cell(r["assistant_miss"], ".2f", 100), _cell(r["assistant_return"]), _cell(r["direct_return"]),
              _yes(r["teacher_misses"]), _yes(r["assistant_meets"]), _yes(r["more_return"]), _yes(r["holds"])]
             for r in rows], "lrrrrrllll"), ""] if rows else []
    return [(f"{name}: batch-1 inference latency", latency),
            (f"{name}: return and deadline misses under `realtime_spec`", realtime),
            (f"{name}: does an assistant-distilled student meet a deadline the teacher misses, "
             "returning more than the direct student of its size?", claims + dagger_lines(policies)),
            (f"{name}: surrogate fidelity (`rwrl explain`)", fidelity_lines(task))]


def dagger_lines(policies: dict[str, Any]) -> list[str]:
    """Return per DAgger student whether it returns more than the direct student of its width (no challenge)."""
    lines = []
    for p in policies.values():
        direct = policies.get(_policy_label("direct", p["width"]))
        if p["method"] != "dagger" or direct is None:
            continue
        g, d = p["evaluations"].get("none"), direct["evaluations"].get("none")
        if g is None or d is None:
            continue
        lines.append(f"- DAgger-trained {p['width']} wide returns more than direct {p['width']} wide, no "
                     f"challenge: {_yes(g['return']['mean'] > d['return']['mean'])} ({_cell(g['return'])} "
                     f"against {_cell(d['return'])}; {intervals(g['return'], d['return'])})")
    return lines


def fidelity_lines(task: dict[str, Any]) -> list[str]:
    """Return the fidelity table (R^2, action error, return per surrogate) and where each peaks."""
    surrogates = task["surrogates"]
    if not surrogates:
        return ["not measured yet"]
    lines = results_page.table(
        ["surrogate", "seeds", "R^2 (held-out states)", "action error", "return"],
        [[label, s["r2"]["n_seeds"], _cell(s["r2"], ".3f"), _cell(s["action_error"], ".3f"),
          _cell(s["return"])] for label, s in surrogates.items()], "lrrrr")
    best_r2 = max(surrogates, key=lambda k: surrogates[k]["r2"]["mean"])
    best_return = max(surrogates, key=lambda k: surrogates[k]["return"]["mean"])
    trees = [s["r2"]["mean"] for s in surrogates.values() if s["depth"] is not None]
    rises = all(b > a for a, b in zip(trees, trees[1:]))
    return lines + ["", f"Teacher's return on the same episodes: {_cell(task['teacher_return'])}; "
                        f"VIPER sample weights: {', '.join(task['weights'])}.",
                    f"- highest R^2: {best_r2} ({surrogates[best_r2]['r2']['mean']:.3f}); highest return: "
                    f"{best_return} ({surrogates[best_return]['return']['mean']:.0f}); R^2 rises with every "
                    f"depth step: {_yes(rises)}"]


def page(results: dict[str, Any], source: str) -> str:
    """Return the results page of ``results`` (the JSON ``run_suite`` wrote)."""
    sessions = results.get("sessions") or [{}]
    dates = sorted({s.get("date") for s in sessions if s.get("date")})
    date = results_page.NOT_RECORDED if not dates else (dates[0] if len(dates) == 1
                                                      else f"{dates[0]} to {dates[-1]}")
    s = results["settings"]
    summary = aggregate(results)
    intro = [f"Tasks {', '.join(s['tasks'])}; {s['seeds']} seeds; D4PG teachers (`--preset {s['preset']}`), "
             f"steps {json.dumps(s['teacher_steps'])}; students by `rwrl distill` ({s['distill_episodes']} "
             f"episodes per state collection, {s['epochs']} epochs, {s['rounds']} DAgger rounds); latency "
             f"from {s['calls']} batch-1 calls per policy after {s['warmup']}, interleaved; "
             f"{s['episodes']} evaluation episodes per policy, mode and budget (fallback `{s['fallback']}`); "
             f"budgets: the control period, then {', '.join(f'{b:g}' for b in s['budgets_ms'])} ms; a policy "
             f"misses a deadline when more than {100 * s['miss_tolerance']:g} % of its steps miss; "
             f"`rwrl explain` depths {', '.join(str(d) for d in s['depths'])}. Each cell: mean over seeds "
             "[95 % percentile-bootstrap interval over seeds] (none below 2 seeds)."]
    sections: list[tuple[str | None, list[str]]] = [(None, intro)]
    for name, task in summary.items():
        sections += task_sections(name, task, s["miss_tolerance"])
    last = sessions[-1]
    return results_page.render_page(
        "Distilled policies: latency, real time and surrogates (issue 27)", last.get("command", "?"), date,
        last.get("machine", results_page.NOT_RECORDED), sections, source=Path(source).name,
        rebuild=results_page.rebuild_command(SCRIPT, f"--out {source}", {"given": []}))


def figure(summary: dict[str, Any], path: Path) -> None:
    """Plot, per task, the simulated return at the control period against median latency, per method."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    markers = {"teacher": "s", "direct": "o", "assistant": "^", "dagger": "D"}
    fig, axes = plt.subplots(1, max(1, len(summary)), figsize=(6 * max(1, len(summary)), 4), squeeze=False)
    for ax, (name, task) in zip(axes[0], summary.items()):
        dt = task["control_timestep_s"]
        key = "none" if dt is None else _budget_key("simulated", dt)
        for method in METHODS:
            points = [(p, p["evaluations"][key]["return"]) for p in task["policies"].values()
                      if p["method"] == method and key in p["evaluations"]]
            if not points:
                continue
            x = np.array([p["median_us"]["mean"] for p, _ in points])
            y = np.array([r["mean"] for _, r in points])
            ax.errorbar(x, y, xerr=_errors([p["median_us"] for p, _ in points]),
                        yerr=_errors([r for _, r in points]), fmt=markers[method], capsize=3, label=method)
            for (p, _), xi, yi in zip(points, x, y):
                ax.annotate(str(p["width"]), (xi, yi), textcoords="offset points", xytext=(5, 5), fontsize=8)
        ax.set_xlabel("median inference latency, batch 1 (µs)")
        ax.set_ylabel(f"return, simulated real time ({key.split('@')[-1]} ms budget)")
        ax.set_title(name)
        ax.legend(fontsize=8)
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)


def _errors(estimates: Sequence[dict[str, Any]]) -> np.ndarray:
    """Return (2, n) error-bar lengths of ``estimates``' intervals (0 where there is none)."""
    def length(e, side):
        bound = e[side]
        return 0.0 if bound is None or bound != bound else abs(bound - e["mean"])
    return np.array([[length(e, "ci_low") for e in estimates], [length(e, "ci_high") for e in estimates]])


def write_page(out: Path) -> Path:
    """Write ``OUT.md`` and ``OUT.png`` from the results file ``out``; return the page's path."""
    results = json.loads(Path(out).read_text())
    path = results_page.write_page(results_page.page_path(out), page(results, str(out)))
    figure(aggregate(results), Path(out).with_suffix(".png"))
    return path


# ----------------------------------------------------------------- command line
def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tasks", nargs="+", default=list(TASKS))
    p.add_argument("--seeds", type=int, default=3, help="teachers per task: seeds 0 .. N-1")
    p.add_argument("--teacher-steps", nargs="*", default=[], metavar="TASK=STEPS",
                   help=f"teacher env steps per task (default {TEACHER_STEPS}, else {OTHER_STEPS})")
    p.add_argument("--workers", type=int, default=2, help="teacher runs at once")
    p.add_argument("--root", type=Path, default=REPO / "runs" / "distill-suite")
    p.add_argument("--out", type=Path, default=None, help="the results JSON (default ROOT/distill_suite.json)")
    p.add_argument("--archive", type=Path, default=None, help="rwrl sweep run --archive of the teachers")
    p.add_argument("--page-only", action="store_true", help="measure nothing: rebuild OUT.md and OUT.png")
    p.add_argument("--time-limit", type=int, default=None,
                   help="episode length in control steps throughout (default: each task's own; for tests)")
    p.add_argument("--assistant-width", type=int, default=None, help="default: teacher's widest layer / 4")
    p.add_argument("--student-width", type=int, default=None, help="default: teacher's widest layer / 16")
    p.add_argument("--distill-episodes", type=int, default=4, help="rwrl distill --episodes")
    p.add_argument("--epochs", type=int, default=50, help="rwrl distill --epochs")
    p.add_argument("--rounds", type=int, default=3, help="rwrl distill --rounds (DAgger)")
    p.add_argument("--distill-eval-episodes", type=int, default=4, help="rwrl distill --eval-episodes")
    p.add_argument("--calls", type=int, default=2000, help="timed batch-1 calls per policy")
    p.add_argument("--warmup", type=int, default=200, help="untimed calls per policy first")
    p.add_argument("--episodes", type=int, default=3, help="evaluation episodes per policy, mode and budget")
    p.add_argument("--budgets-ms", type=float, nargs="*", default=list(BUDGETS_MS),
                   help="budgets after the control period (ms)")
    p.add_argument("--fallback", default="hold", choices=["hold", "zero"])
    p.add_argument("--depths", type=lambda t: [int(d) for d in t.split(",")], default=list(DEPTHS),
                   help="rwrl explain --depth (comma-separated)")
    p.add_argument("--explain-iterations", type=int, default=4, help="rwrl explain --iterations")
    p.add_argument("--explain-episodes", type=int, default=4, help="rwrl explain --episodes")
    p.add_argument("--explain-eval-episodes", type=int, default=4, help="rwrl explain --eval-episodes")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parser().parse_args(argv)
    args.argv = argv
    args.out = args.out or args.root / "distill_suite.json"
    if not args.page_only:
        left = run_suite(args)
    else:
        left = 0
    print(f"page: {write_page(args.out)}", flush=True)
    if left:
        print(f"unfinished: {left} (see above); run the same command again to continue", file=sys.stderr)
    return 1 if left else 0


if __name__ == "__main__":
    sys.exit(main())
