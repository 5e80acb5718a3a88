"""Throughput benchmark: steps per second, all measured in one run, with ratios and goals.

For each domain (cartpole swingup, walker walk, quadruped walk, humanoid walk):
  single env (N = 1), interleaved in one group:
    raw_step     a plain ``mujoco.mj_step(model, data, nstep=n_sub)`` loop (the floor),
    dm_control   the dm_control.suite task in a Python loop (the baseline),
    rwrl_single  ``gymnasium.make(id)``, and a ladder of public configurations:
                 each component of the combined ``hard`` challenge alone, safety,
                 ``hard`` (hard_single) and ``hard`` with safety;
  vector env, one interleaved group per N of --batch (and N = 64):
    rwrl_vector_N ``gymnasium.make_vec``, raw_rollout_N ``mujoco.rollout`` of the
    same model and threads; at N = 64 also hard_vector_64 and envpool_64
    (envpool's plain dm_control task, the batched baseline; skipped with a
    printed reason when envpool is missing: pip install '.[bench]').
Every figure is the median over --repeats rounds; the steppers of a group take
turns within each round, so a load change on a shared machine hits them alike.
N = 1 figures are per second of process CPU time (each runs on one thread, and
CPU time leaves out waiting for a core), vector figures per wall second.
``stage_costs`` gives microseconds per step of each ladder configuration and
its extra over plain (median of the per-round differences).
``goals`` checks the targets of issue 7 section 4 (reported, never asserted).

Usage: python benchmarks/throughput.py [--domains cartpole walker] [--seconds 1.0]
       [--repeats 5] [--quick] [--out FILE] [--baseline FILE] [--json]
       python benchmarks/throughput.py --page-only --out FILE [--date DATE]
Prints a table (or the JSON with --json) and writes the JSON to --out, with its
results page beside it (FILE with .md); --page-only rewrites that page from FILE.
Steps are control steps (1000 per episode).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")
sys.path.insert(0, str(Path(__file__).resolve().parent))  # steppers.py beside this file

import mujoco  # noqa: E402

import steppers as st  # noqa: E402
import results_page  # noqa: E402
from rwrl.challenges.combined import combined_specs  # noqa: E402
from rwrl.domains import make_domain  # noqa: E402
from rwrl.core.engine import default_num_threads  # noqa: E402
from rwrl.storage.atomic_files import atomic_write_bytes  # noqa: E402
from rwrl.tasks.facts import domain_facts  # noqa: E402

TASKS = {"cartpole": "swingup", "walker": "walk", "quadruped": "walk", "humanoid": "walk"}
#: the batch at which the hard vector env and envpool are compared.
N_COMPARE = 64
#: the clock of each group: every N = 1 stepper runs on one thread, so its CPU
#: time is its cost; a vector env's figure is its parallel throughput (wall).
CLOCKS = {"single": "cpu", "vector": "wall"}
DEFAULT_BASELINE = (Path(__file__).resolve().parent / "results"
                    / "throughput_before_issue7.json")  # the quiet-machine run issue 7 cites


def ladder(domain: str) -> dict[str, dict]:
    """Return name -> ``gymnasium.make`` keyword arguments, plain first, then each stage alone."""
    hard = combined_specs("hard", domain_facts(make_domain(domain, TASKS[domain])))
    noise = hard["noise_spec"]
    return {
        "plain": {},
        # a spec that is present but disabled: the cost of the challenge layer itself
        "layer_only": {"delay_spec": {"enable": False}},
        "delay": {"delay_spec": hard["delay_spec"]},
        "gaussian": {"noise_spec": {"gaussian": noise["gaussian"]}},
        "dropped": {"noise_spec": {"dropped": noise["dropped"]}},
        "stuck": {"noise_spec": {"stuck": noise["stuck"]}},
        "repetition": {"noise_spec": {"repetition": noise["repetition"]}},
        "dimensionality": {"dimensionality_spec": hard["dimensionality_spec"]},
        "perturb": {"perturb_spec": hard["perturb_spec"]},
        "safety": {"safety_spec": {"enable": True}},
        "hard": {"combined_challenge": "hard"},
        "hard+safety": {"combined_challenge": "hard", "safety_spec": {"enable": True}},
    }


def _rate(stepper: st.Stepper, seconds: float) -> tuple[float, float]:
    """Return env steps per (wall second, process CPU second) of ``stepper``.

    It runs for at least ``seconds`` of wall time and 3 calls. CPU time leaves
    out the time this process waited for a core, so on a shared machine it is
    the steadier measure of a single-threaded loop; idle pool threads
    (rwrl's, envpool's) block and add none.
    """
    calls, start, cpu_start = 0, time.perf_counter(), time.process_time()
    while True:
        stepper.step()
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds and calls >= 3:
            cpu = max(time.process_time() - cpu_start, 1e-9)
            return calls * stepper.batch / elapsed, calls * stepper.batch / cpu


def measure(steppers: dict[str, st.Stepper], seconds: float, repeats: int,
            clock: str) -> dict[str, list]:
    """Return name -> steps/s of each round by ``clock`` ('wall' or 'cpu'), turn by turn.

    The order rotates from round to round so no stepper always runs first
    (right after another one has filled or flushed the caches).
    """
    for stepper in steppers.values():
        _rate(stepper, min(0.05, seconds))  # warm-up: first-call costs, model compiles
    names, rates = list(steppers), {name: [] for name in steppers}
    for r in range(repeats):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            wall, cpu = _rate(steppers[name], seconds / repeats)
            rates[name].append(wall if clock == "wall" else cpu)
    return rates


def _median(values) -> float:
    return float(statistics.median(values))


def _spread(values) -> float:
    """Return (max - min) / median of the rounds: how steady the machine was."""
    return (max(values) - min(values)) / _median(values)


def single_group(domain: str, seconds: float, repeats: int, hard: bool) -> dict:
    """Measure the N = 1 figures and the stage-cost ladder of one domain in one group."""
    task = TASKS[domain]
    configs = {k: v for k, v in ladder(domain).items() if hard or k == "plain"}
    steppers = {"raw_step": st.raw_step(domain, task),
                "dm_control": st.dm_control_single(domain, task)}
    steppers.update({name: st.rwrl_single(domain, task, **specs)
                     for name, specs in configs.items()})
    rates = measure(steppers, seconds, repeats, CLOCKS["single"])
    out = {"raw_step": _median(rates["raw_step"]), "dm_control": _median(rates["dm_control"]),
           "rwrl_single": _median(rates["plain"])}
    if hard:
        out["hard_single"] = _median(rates["hard"])
        plain_us = [1e6 / r for r in rates["plain"]]
        out["stage_costs"] = {name: {
            "us_per_step": _median([1e6 / r for r in rates[name]]),
            "extra_us_over_plain": _median([1e6 / r - p for r, p in zip(rates[name], plain_us)]),
        } for name in configs}
    renamed = {"plain": "rwrl_single", "hard": "hard_single"}
    out["spread"] = {renamed.get(k, k): _spread(v) for k, v in rates.items()
                     if k in ("raw_step", "dm_control", "plain", "hard")}
    return out


def vector_group(domain: str, n: int, seconds: float, repeats: int, hard: bool,
                 envpool_reason: str | None) -> dict:
    """Measure the N-env figures of one domain in one group (same threads for all)."""
    task, threads = TASKS[domain], default_num_threads(n)
    steppers = {f"rwrl_vector_{n}": st.rwrl_vector(domain, task, n, threads),
                f"raw_rollout_{n}": st.raw_rollout(domain, task, n, threads)}
    if n == N_COMPARE and hard:
        steppers[f"hard_vector_{n}"] = st.rwrl_vector(domain, task, n, threads,
                                                      combined_challenge="hard")
    if n == N_COMPARE and envpool_reason is None:
        steppers[f"envpool_{n}"] = st.envpool_vector(domain, task, n, threads)
    rates = measure(steppers, seconds, repeats, CLOCKS["vector"])
    out = {name: _median(r) for name, r in rates.items()}
    out["spread"] = {name: _spread(r) for name, r in rates.items()}
    return out


def add_ratios(row: dict, batches) -> None:
    """Add every ratio of the row's own figures (all measured in the same run)."""
    def ratio(name, num, den):
        if num in row and den in row:
            row[name] = row[num] / row[den]
    ratio("ratio_single_over_dm_control", "rwrl_single", "dm_control")
    ratio("ratio_hard_single_over_dm_control", "hard_single", "dm_control")
    for fig in ("dm_control", "single", "hard_single"):
        ratio(f"ratio_{fig}_over_raw_step", "rwrl_single" if fig == "single" else fig, "raw_step")
    for n in batches:
        ratio(f"ratio_vector_over_raw_{n}", f"rwrl_vector_{n}", f"raw_rollout_{n}")
    c = N_COMPARE
    ratio(f"ratio_hard_vector_over_raw_{c}", f"hard_vector_{c}", f"raw_rollout_{c}")
    ratio(f"ratio_vector_over_envpool_{c}", f"rwrl_vector_{c}", f"envpool_{c}")
    ratio(f"ratio_hard_vector_over_envpool_{c}", f"hard_vector_{c}", f"envpool_{c}")
    ratio(f"ratio_envpool_over_raw_{c}", f"envpool_{c}", f"raw_rollout_{c}")


def _goal(domain, goal, value, op, bound) -> dict:
    met = value <= bound if op == "<=" else value >= bound
    return {"domain": domain, "goal": goal, "value": value, "op": op, "bound": bound,
            "met": bool(met)}


def goals(domain: str, row: dict, base: dict | None) -> list[dict]:
    """Return the section-4 goals of one domain, each with its value and whether it is met.

    The comparison with the stored results uses each vector figure divided by
    the raw rollout of its own run, so a busier or faster machine cancels out.
    """
    out = []
    if domain == "cartpole":
        out.append(_goal(domain, "single / dm_control", row["ratio_single_over_dm_control"],
                         ">=", 1.5))
    else:
        out.append(_goal(domain, "single time / raw step time",
                         1 / row["ratio_single_over_raw_step"], "<=", 1.3))
    if "ratio_hard_single_over_dm_control" in row:
        out.append(_goal(domain, "hard single / dm_control",
                         row["ratio_hard_single_over_dm_control"], ">=", 1.0))
    key = f"ratio_hard_vector_over_envpool_{N_COMPARE}"
    if key in row:
        out.append(_goal(domain, f"hard vector / envpool (N={N_COMPARE})", row[key], ">=", 1.0))
    for key in sorted(k for k in row if k.startswith(("ratio_vector_over_raw_",
                                                      "ratio_hard_vector_over_raw_"))):
        if base and key in base:
            out.append(_goal(domain, f"{key} / stored", row[key] / base[key], ">=", 0.95))
    return out


def benchmark_domain(domain, batches, seconds, repeats, hard, envpool_reason, base) -> dict:
    """Return every figure, ratio, stage cost and goal of one domain."""
    row = {"task": f"{domain}-{TASKS[domain]}"}
    row.update(single_group(domain, seconds, repeats, hard))
    spread = row.pop("spread")
    for n in sorted(set(batches) | {N_COMPARE}):
        group = vector_group(domain, n, seconds, repeats, hard, envpool_reason)
        spread.update(group.pop("spread"))
        row.update(group)
    add_ratios(row, sorted(set(batches) | {N_COMPARE}))
    row["spread"] = spread
    row["goals"] = goals(domain, row, base)
    return _rounded(row)


def _rounded(value):
    """Round floats to 3 decimals (figures of a shared machine carry no more)."""
    if isinstance(value, float):
        return round(value, 3)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


def _shown(path: str) -> str:
    """Return ``path`` relative to the repository root when it lies inside it."""
    root = Path(__file__).resolve().parents[1]
    full = Path(path).resolve()
    return str(full.relative_to(root)) if full.is_relative_to(root) else str(full)


def load_baseline(path: str | None) -> dict:
    """Return domain -> stored figures of an earlier run ({} when there is none)."""
    if not path or not Path(path).is_file():
        return {}
    return json.loads(Path(path).read_text())["domains"]


HARD_PARTS = ("delay", "gaussian", "dropped", "stuck", "repetition", "dimensionality",
              "perturb")


def _cell(value, fmt="{:.0f}") -> str:
    return "-" if value is None else fmt.format(value)


def _single_table(domains: dict) -> list[str]:
    lines = ["Single env, steps/s (x raw: time per step over the raw mj_step loop's)",
             f"{'domain':<10}{'raw step':>10}{'dm_control':>16}{'rwrl single':>16}"
             f"{'hard single':>16}{'single/dm':>11}{'hard/dm':>9}"]
    for domain, row in domains.items():
        def fig(key):
            x = row.get(f"ratio_{key}_over_raw_step")
            name = {"single": "rwrl_single"}.get(key, key)
            return "-" if x is None else f"{row[name]:.0f} ({1 / x:.2f}x)"
        lines.append(f"{domain:<10}{row['raw_step']:>10.0f}{fig('dm_control'):>16}"
                     f"{fig('single'):>16}{fig('hard_single'):>16}"
                     f"{_cell(row.get('ratio_single_over_dm_control'), '{:.2f}'):>11}"
                     f"{_cell(row.get('ratio_hard_single_over_dm_control'), '{:.2f}'):>9}")
    return lines


def _stage_table(domains: dict) -> list[str]:
    costs = {d: row["stage_costs"] for d, row in domains.items() if "stage_costs" in row}
    if not costs:
        return []
    lines = ["Stage costs at N=1, us per step (+extra over plain, median of paired rounds)",
             f"{'config':<16}" + "".join(f"{d:>20}" for d in costs)]
    for name in next(iter(costs.values())):
        lines.append(f"{name:<16}" + "".join(
            f"{c[name]['us_per_step']:>11.1f} ({c[name]['extra_us_over_plain']:+6.1f})"
            for c in costs.values()))
    lines.append(f"{'sum hard parts':<16}" + "".join(
        f"{'':>11} ({sum(c[p]['extra_us_over_plain'] for p in HARD_PARTS):+6.1f})"
        for c in costs.values()))
    return lines


def _vector_table(domains: dict, batches) -> list[str]:
    lines = ["Vector env, steps/s (ratio: over raw mujoco.rollout, same N and threads)",
             f"{'domain':<10}{'N':>5}{'rwrl vector':>13}{'raw rollout':>13}{'ratio':>8}"]
    for domain, row in domains.items():
        for n in batches:
            lines.append(f"{domain:<10}{n:>5}{row[f'rwrl_vector_{n}']:>13.0f}"
                         f"{row[f'raw_rollout_{n}']:>13.0f}"
                         f"{row[f'ratio_vector_over_raw_{n}']:>8.3f}")
    c = N_COMPARE
    lines += ["", f"N={c}, steps/s, and ratios to envpool's plain task (same N, same threads)",
              f"{'domain':<10}{'envpool':>10}{'rwrl vector':>13}{'hard vector':>13}"
              f"{'vec/envpool':>13}{'hard/envpool':>14}"]
    for domain, row in domains.items():
        lines.append(f"{domain:<10}{_cell(row.get(f'envpool_{c}')):>10}"
                     f"{row[f'rwrl_vector_{c}']:>13.0f}{_cell(row.get(f'hard_vector_{c}')):>13}"
                     f"{_cell(row.get(f'ratio_vector_over_envpool_{c}'), '{:.3f}'):>13}"
                     f"{_cell(row.get(f'ratio_hard_vector_over_envpool_{c}'), '{:.3f}'):>14}")
    return lines


def _goal_table(domains: dict) -> list[str]:
    lines = ["Goals (issue 7 section 4; reported, not asserted)"]
    for row in domains.values():
        for g in row["goals"]:
            mark = "met" if g["met"] else "MISSED"
            lines.append(f"{g['domain']:<10}{g['goal']:<42}{g['value']:>8.3f} "
                         f"{g['op']} {g['bound']:<5} {mark}")
    return lines


def format_table(result: dict) -> str:
    """Return the result as readable tables, one per figure family."""
    domains, batches = result["domains"], result["settings"]["batch"]
    blocks = [_single_table(domains), _stage_table(domains),
              _vector_table(domains, sorted(set(batches) | {N_COMPARE})), _goal_table(domains)]
    head = (f"machine: {result['machine']}\nsettings: {result['settings']}\n"
            f"envpool: {result['envpool']}")
    return "\n\n".join([head] + ["\n".join(b) for b in blocks if b])


def _machine_text(machine: dict) -> str:
    """The JSON's ``machine`` entry in words (runs before the ``measured`` entry recorded only this)."""
    load = ""
    if "loadavg_start" in machine:
        load = (f", load average {machine['loadavg_start'][0]} at the start and "
                f"{machine['loadavg_end'][0]} at the end")
    return f"{machine['cpus']} CPUs, mujoco {machine['mujoco']}{load}"


def _page_rows(domains: dict, batches) -> dict[str, list[list]]:
    """The page's tables as rows of formatted cells (one key per table)."""
    f = results_page.fmt
    c = N_COMPARE
    rows: dict[str, list[list]] = {"single": [], "vector": [], "compare": [], "goals": []}
    def over_raw(row: dict, name: str, key: str) -> str:  # rate (time per step over raw mj_step's)
        ratio = row.get(f"ratio_{key}_over_raw_step")
        return results_page.MISSING if ratio is None else f"{row[name]:.0f} ({1 / ratio:.2f}x)"
    for domain, row in domains.items():
        rows["single"].append([domain, f(row["raw_step"]), over_raw(row, "dm_control", "dm_control"),
                               over_raw(row, "rwrl_single", "single"),
                               over_raw(row, "hard_single", "hard_single"),
                               f(row.get("ratio_single_over_dm_control"), ".2f"),
                               f(row.get("ratio_hard_single_over_dm_control"), ".2f")])
        rows["vector"] += [[domain, n, f(row[f"rwrl_vector_{n}"]), f(row[f"raw_rollout_{n}"]),
                            f(row[f"ratio_vector_over_raw_{n}"], ".3f")] for n in batches]
        rows["compare"].append([domain, f(row.get(f"envpool_{c}")), f(row[f"rwrl_vector_{c}"]),
                                f(row.get(f"hard_vector_{c}")),
                                f(row.get(f"ratio_vector_over_envpool_{c}"), ".3f"),
                                f(row.get(f"ratio_hard_vector_over_envpool_{c}"), ".3f")])
        rows["goals"] += [[g["domain"], g["goal"], f(g["value"], ".3f"), f"{g['op']} {g['bound']}",
                           "met" if g["met"] else "missed"] for g in row["goals"]]
    return rows


def page(result: dict, source: str, date: str | None = None) -> str:
    """Return the results page of one run's JSON (``source``: its path as the command gives it)."""
    domains, settings = result["domains"], result["settings"]
    batches = sorted(set(settings["batch"]) | {N_COMPARE})
    rows = _page_rows(domains, batches)
    meta = results_page.measured(  # the machine: the JSON's own entry, which has mujoco and the load
        result, date=date, command=(f"python benchmarks/throughput.py --seconds {settings['seconds']} "
                 f"--repeats {settings['repeats']} --batch {' '.join(map(str, settings['batch']))} "
                 f"--out {source}"))
    envpool = result["envpool"]
    skipped = "; ".join(f"{d}: {r}" for d, r in envpool["skipped"].items()) or "none"
    baseline = (f"compared with `{settings['baseline']}`" if settings.get("baseline")
                else "not compared (no stored run)")
    t = results_page.table
    sections = [
        (None, [f"Control steps per second (1000 per episode), each figure the median of "
                f"{settings['repeats']} interleaved rounds of {settings['seconds']} s; N = 1 figures "
                f"per second of process CPU time, vector figures per wall second. Compare ratios "
                f"measured in one run, not absolute rates across machines. envpool "
                f"{envpool.get('version', 'not installed')}, skipped: {skipped}; vector goals "
                f"{baseline}."]),
        ("Single env (N = 1)", ["In brackets: time per step over the raw `mj_step` loop's.", "",
                                *t(["domain", "raw mj_step", "dm_control", "rwrl single", "hard single",
                                  "single / dm_control", "hard / dm_control"], rows["single"], "lrrrrrr")]),
        ("Vector env against raw `mujoco.rollout` (same N and threads)",
         t(["domain", "N", "rwrl vector", "raw rollout", "ratio"], rows["vector"], "lrrrr")),
        (f"N = {N_COMPARE} against envpool's plain task (same N and threads)",
         t(["domain", "envpool", "rwrl vector", "hard vector", "vector / envpool",
            "hard / envpool"], rows["compare"], "lrrrrr")),
    ]
    stages = _stage_table(domains)
    if stages:
        sections.append(("Cost of each stage of `hard` at N = 1", ["```", *stages, "```"]))
    sections.append(("Goals (issue 7, section 4; reported, never asserted)",
                     t(["domain", "goal", "value", "bound", "verdict"], rows["goals"], "llrll")))
    return results_page.render_page(
        "Throughput: steps per second of rwrl against dm_control, raw MuJoCo and envpool",
        meta["command"], meta["date"], _machine_text(result["machine"]), sections,
        source=Path(source).name,
        rebuild=results_page.rebuild_command("throughput.py", f"--out {source}", meta))


def write_page(json_path: Path, date: str | None = None) -> Path:
    """Write the page beside ``json_path`` from that JSON; return the page's path."""
    return results_page.write_json_page(json_path, page, date)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--domains", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--batch", nargs="+", type=int, default=[1, 16, 64, 256])
    parser.add_argument("--seconds", type=float, default=1.0,
                        help="time per figure, over all its repeats (s)")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved rounds per group")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run of a few seconds per domain (--seconds 0.05 "
                             "--repeats 2 --batch 4); its figures mean nothing")
    parser.add_argument("--no-hard", action="store_true", help="skip the combined challenge")
    parser.add_argument("--baseline", default=str(DEFAULT_BASELINE),
                        help="stored JSON the vector figures are compared with")
    parser.add_argument("--out", default=None,
                        help="write the JSON here, and its results page beside it (.md)")
    parser.add_argument("--page-only", action="store_true",
                        help="measure nothing: rewrite the page of the JSON at --out")
    parser.add_argument("--date", default=None,
                        help="with --page-only: the date of a JSON that does not record it")
    parser.add_argument("--json", action="store_true", help="print the JSON, not the table")
    args = parser.parse_args(argv)
    if args.page_only and not args.out:
        parser.error("--page-only needs --out, the JSON to write the page from")
    if args.quick:
        args.seconds, args.repeats, args.batch = 0.05, 2, [4]
    if args.seconds <= 0 or args.repeats < 1 or min(args.batch) < 1:
        parser.error(f"--seconds {args.seconds} must be > 0, --repeats {args.repeats} >= 1, "
                     f"--batch {args.batch} all >= 1")
    return args


def _envpool_status(domains) -> tuple[dict, dict]:
    """Return (domain -> reason envpool is skipped or None, the JSON's envpool entry)."""
    reasons = {d: st.envpool_unavailable(d, TASKS[d]) for d in domains}
    for domain, reason in reasons.items():
        if reason:
            print(f"envpool skipped for {domain}: {reason}", file=sys.stderr)
    entry = {"skipped": {d: r for d, r in reasons.items() if r}}
    if len(entry["skipped"]) < len(reasons):
        import envpool
        entry["version"] = envpool.__version__
    return reasons, entry


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.page_only:
        print(f"page: {write_page(Path(args.out), args.date)}")
        return json.loads(Path(args.out).read_text())
    base = load_baseline(args.baseline)  # read before --out may replace the same file
    reasons, envpool_entry = _envpool_status(args.domains)
    result = {"machine": {"cpus": os.cpu_count(), "mujoco": mujoco.__version__,
                          "loadavg_start": [round(x, 2) for x in os.getloadavg()]},
              "settings": {"seconds": args.seconds, "repeats": args.repeats,
                           "batch": args.batch, "clocks": CLOCKS,
                           "threads_at_compare": default_num_threads(N_COMPARE),
                           "baseline": _shown(args.baseline) if base else None},
              "envpool": envpool_entry, "unit": "control steps per second", "domains": {}}
    for domain in args.domains:
        result["domains"][domain] = benchmark_domain(
            domain, args.batch, args.seconds, args.repeats, not args.no_hard, reasons[domain],
            base.get(domain))
        print(f"{domain} done", file=sys.stderr)
    result["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    result["measured"] = results_page.stamp("throughput.py", sys.argv[1:] if argv is None else argv)
    text = json.dumps(result, indent=2)
    print(text if args.json else format_table(result))
    if args.out:
        atomic_write_bytes(Path(args.out), (text + "\n").encode())
        print(f"page: {write_page(Path(args.out))}", file=sys.stderr)
    return result


if __name__ == "__main__":
    main()
