"""LS-DQN against DQN on MinAtar (issue 28, part 1), at a stated reduced scale.

The claim (Levine, Zahavy, Mankowitz, Tamar and Mannor 2017, "Shallow Updates
for Deep Reinforcement Learning", abstract): LS-DQN, DQN with the last layer
re-solved now and then by regularised least squares on a large batch, improves
over DQN, and "the performance improvement can be attributed to the large batch
size used by the LS method when optimizing the last layer". The paper measured it
on five Atari games; here on MinAtar (Young and Tian 2019), whose DQN baseline
is the agent's default (``rwrl.minatar.dqn``), with four agents
(``rwrl.minatar.AGENTS``):

* ``dqn``: MinAtar's DQN (never a refit, whatever ``--set`` says);
* ``ls-dqn``: the same, plus a ridge refit of the head on the whole replay every
  50,000 learner steps (50 target syncs, the authors' code), lambda 1;
* ``ls-dqn-adam``: the ablation, the same refits done by 200 Adam steps on the
  whole batch, the same objective (our settings: the paper's were not found);
  it reaches nearly the ridge solution, so it should match ``ls-dqn``;
* ``ls-dqn-adam-32``: the same 200 Adam steps on mini-batches of 32 drawn from
  the batch: the small-batch arm, which the paper's attribution of the gain to
  the large batch says should not match ``ls-dqn``.

Scale (stated on the page): ``--frames`` per run, default 500,000, a tenth of
MinAtar's 5,000,000; every other setting at MinAtar's and the authors' values
(replay 100,000, target period 1,000, epsilon over 100,000 frames, a refit every
50,000 learner steps once the replay is full: about 8 refits a run at 500,000
frames, 98 at 5,000,000). ``--games`` default breakout and space_invaders,
``--seeds`` default 3 (seeds 0, 1, 2; a seed gives every agent the same initial
network and the same episode seeds, so agents are compared seed by seed).

Per run: the final return (mean return of the episodes ending in the last 10 %
of its frames) and the mean return over all its episodes (the area under its
learning curve). Per game and agent: the mean over seeds with a 95 % Student-t
interval (t(0.975, n - 1) s / sqrt(n); with 3 seeds t = 4.30, so the intervals
are wide). Per game, for LS-DQN and the ablation against DQN: the mean paired
difference (same seed) with its 95 % Student-t interval. Verdict, set before
any run: "LS-DQN beats DQN" holds on a game when the paired difference of the
final return has an interval above 0; "the gain is the large batch" holds when
LS-DQN beats DQN, the full-batch Adam refit beats DQN that way too, and the
mini-batch one does not.

Cost on this project's 2-core machine (a learner frame 1.6 to 1.9 ms of CPU): 24 runs of
500,000 frames, about 3 hours with ``--jobs 2``; of 5,000,000, about 30 hours.

Resumable: each run is a run directory ``ROOT/<game>/<agent>/seed<k>`` of
``rwrl.minatar.run``; the same command again skips finished runs and resumes
killed ones from their last checkpoint. Runs go ``--jobs`` at a time (processes).
``--archive DIR`` keeps each finished run small (config, summary, refits,
gzip-compressed metrics; no parameters) under ``DIR/<game>/<agent>/seed<k>``
as it finishes and restores those whose config equals the plan's into a
fresh ROOT: commit DIR to continue from a fresh checkout.

Usage::

    python benchmarks/lsdqn_minatar.py --root runs/lsdqn-minatar --jobs 2 \\
        --out benchmarks/results/lsdqn_minatar.json
    python benchmarks/lsdqn_minatar.py --root runs/lsdqn-minatar --frames 5000000 --jobs 2 \\
        --out benchmarks/results/lsdqn_minatar_full.json           # MinAtar's scale
    python benchmarks/lsdqn_minatar.py --root /tmp/lsdqn --frames 3000 --seeds 3 \\
        --set replay_capacity=1000 --set min_replay_size=500 --set target_update_period=250 \\
        --ls-every 500 --out /tmp/lsdqn/lsdqn.json   # a smoke test
    python benchmarks/lsdqn_minatar.py --page-only --out benchmarks/results/lsdqn_minatar.json

``--set KEY=VALUE`` changes a DQN setting of every agent (recorded in the JSON);
``--ls-every N`` the refit period of the LS agents (a multiple of the target period).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import multiprocessing
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # results_page.py beside this file

import results_page  # noqa: E402

AGENTS = ("dqn", "ls-dqn", "ls-dqn-adam", "ls-dqn-adam-32")
GAMES = ("breakout", "space_invaders")
DEFAULT_FRAMES = 500_000
MINATAR_FRAMES = 5_000_000
JSON_NAME = "lsdqn_minatar.json"
FIGURE = "lsdqn_minatar.png"
#: learning-curve bins of the figure.
CURVE_BINS = 20


def run_dir(root: Path, game: str, agent: str, seed: int) -> Path:
    return Path(root) / game / agent / f"seed{seed}"


def _config(game: str, agent: str, seed: int, frames: int, overrides: dict[str, Any]):
    """The run's config: ``overrides`` on every agent, ``ls_every`` (``--ls-every``) on the LS ones."""
    from rwrl.minatar.run import MinAtarRunConfig
    overrides = dict(overrides)
    ls_every = overrides.pop("ls_every", None)
    if agent != "dqn" and ls_every is not None:
        overrides["ls_every"] = ls_every
    return MinAtarRunConfig(game=game, agent=agent, frames=frames, seed=seed, agent_config=overrides)


def _one_run(job: tuple[str, str, int, int, dict[str, Any], str]) -> tuple[str, float]:
    """Run (or resume, or skip) one run directory; return its path and this session's seconds."""
    from rwrl.minatar.run import run_minatar
    game, agent, seed, frames, overrides, root = job
    started = time.perf_counter()
    path = run_dir(Path(root), game, agent, seed)
    run_minatar(_config(game, agent, seed, frames, overrides), path, progress=False)
    return str(path), time.perf_counter() - started


#: what the archive keeps of a finished run (``metrics.jsonl`` gzip-compressed); no parameters.
ARCHIVED_FILES = ("config.json", "summary.json", "refits.jsonl")


def archive_run(path: Path, archive: Path) -> None:
    """Copy finished run ``path``'s config, summary, refits and compressed metrics into ``archive``."""
    import gzip

    from rwrl.minatar.run import METRICS_FILE
    from rwrl.storage.atomic_files import atomic_write_bytes
    dest = archive / path.relative_to(path.parents[2])
    dest.mkdir(parents=True, exist_ok=True)
    for name in ARCHIVED_FILES:
        if (path / name).exists():
            atomic_write_bytes(dest / name, (path / name).read_bytes())
    atomic_write_bytes(dest / (METRICS_FILE + ".gz"), gzip.compress((path / METRICS_FILE).read_bytes(), mtime=0))


def restore_runs(jobs: list[tuple], root: Path, archive: Path) -> int:
    """Write back each archived run a job asks for, with the same config, that ROOT lacks; return how many."""
    import gzip

    from rwrl.minatar.run import METRICS_FILE, check_same_run, finished_summary
    restored = 0
    for game, agent, seed, frames, overrides, _ in jobs:
        path = run_dir(root, game, agent, seed)
        kept = run_dir(archive, game, agent, seed)
        if finished_summary(path) is not None or finished_summary(kept) is None:
            continue
        try:
            check_same_run(kept, _config(game, agent, seed, frames, overrides))
        except ValueError:
            continue  # archived at other settings: this plan runs it afresh
        path.mkdir(parents=True, exist_ok=True)
        (path / METRICS_FILE).write_bytes(gzip.decompress((kept / (METRICS_FILE + ".gz")).read_bytes()))
        for name in reversed(ARCHIVED_FILES):  # summary.json last: the run counts as done once it is there
            if (kept / name).exists():
                (path / name).write_bytes((kept / name).read_bytes())
        restored += 1
    return restored


def plan(args: argparse.Namespace, overrides: dict[str, Any]) -> list[tuple]:
    """Return the (game, agent, seed, frames, overrides, root) of every run the arguments ask for."""
    return [(g, a, s, args.frames, overrides, str(args.root)) for g in args.games for a in args.agents
            for s in range(args.seeds)]


def run_all(args: argparse.Namespace, overrides: dict[str, Any]) -> None:
    """Run every (game, agent, seed) not finished yet, ``--jobs`` at a time."""
    from rwrl.minatar.run import finished_summary
    jobs = plan(args, overrides)
    if args.archive is not None:
        print(f"restored {restore_runs(jobs, args.root, args.archive)} finished runs from {args.archive}",
              file=sys.stderr, flush=True)
    todo = [j for j in jobs if finished_summary(run_dir(args.root, *j[:3])) is None]
    print(f"{len(jobs) - len(todo)} of {len(jobs)} runs finished already; {len(todo)} to run",
          file=sys.stderr, flush=True)

    def finished(path: str, seconds: float) -> None:
        if args.archive is not None:
            archive_run(Path(path), args.archive)
        print(f"done {path} ({seconds:.0f} s)", file=sys.stderr, flush=True)

    if args.jobs == 1:
        for job in todo:
            finished(*_one_run(job))
        return
    context = multiprocessing.get_context("spawn")  # JAX is not fork-safe
    with concurrent.futures.ProcessPoolExecutor(args.jobs, mp_context=context) as pool:
        for path, seconds in pool.map(_one_run, todo):
            finished(path, seconds)


# ------------------------------------------------------------------ summarising
def _curve(rows: list[dict[str, Any]], frames: int) -> list[float | None]:
    """Mean return of the episodes ending in each of CURVE_BINS equal frame windows."""
    edges = np.linspace(0, frames, CURVE_BINS + 1)
    steps = np.array([r["env_steps"] for r in rows])
    returns = np.array([r["return"] for r in rows], np.float64)
    out = []
    for low, high in zip(edges[:-1], edges[1:]):
        inside = (steps > low) & (steps <= high)
        out.append(float(returns[inside].mean()) if inside.any() else None)
    return out


def summarize(args: argparse.Namespace, overrides: dict[str, Any]) -> dict[str, Any]:
    """Read every finished run; return the results JSON (per run, per agent, paired differences)."""
    from rwrl.metrics.episode_file import read_rows
    from rwrl.metrics.mean_interval import mean_interval as interval
    from rwrl.minatar.run import METRICS_FILE, finished_summary
    runs, games = [], {}
    for game in args.games:
        per_agent: dict[str, dict[int, dict[str, Any]]] = {}
        for agent in args.agents:
            for seed in range(args.seeds):
                path = run_dir(args.root, game, agent, seed)
                summary = finished_summary(path)
                if summary is None:
                    continue
                rows = read_rows(path / METRICS_FILE)
                run = {"game": game, "agent": agent, "seed": seed, "final_return": summary["final_return"],
                       "mean_return": summary["mean_return"], "episodes": summary["episodes"],
                       "refits": summary["refits"], "wall_clock_s": summary["wall_clock_s"],
                       "curve": _curve(rows, args.frames)}
                runs.append(run)
                per_agent.setdefault(agent, {})[seed] = run
        games[game] = _game_table(per_agent, interval)
    return {"frames": args.frames, "minatar_frames": MINATAR_FRAMES, "seeds": args.seeds,
            "games": list(args.games), "agents": list(args.agents), "overrides": overrides,
            "interval": "95 % Student-t interval of the mean over seeds",
            "runs": runs, "by_game": games}


def _game_table(per_agent: dict[str, dict[int, dict[str, Any]]], interval) -> dict[str, Any]:
    table: dict[str, Any] = {"agents": {}, "versus_dqn": {}}
    for agent, by_seed in per_agent.items():
        table["agents"][agent] = {m: interval([r[m] for r in by_seed.values() if r[m] is not None])
                                  for m in ("final_return", "mean_return")}
    base = per_agent.get("dqn", {})
    for agent, by_seed in per_agent.items():
        if agent == "dqn":
            continue
        seeds = sorted(set(base) & set(by_seed))
        table["versus_dqn"][agent] = {
            m: interval([by_seed[s][m] - base[s][m] for s in seeds
                         if by_seed[s][m] is not None and base[s][m] is not None])
            for m in ("final_return", "mean_return")}
    return table


def verdicts(results: dict[str, Any]) -> list[str]:
    """Return the verdict lines of the module docstring, one per game."""
    lines = []
    for game, table in results["by_game"].items():
        versus = {agent: e["final_return"] for agent, e in table["versus_dqn"].items()}
        ls = versus.get("ls-dqn", {})
        if ls.get("ci_low") is None:
            lines.append(f"- {game}: not measured (needs dqn and ls-dqn on at least 2 common seeds)")
            continue
        beats = {agent: e.get("ci_low") is not None and e["ci_low"] > 0 for agent, e in versus.items()}
        text = (f"- {game}: LS-DQN beats DQN: {'yes' if beats['ls-dqn'] else 'not shown'} "
                f"(paired difference of the final return {_ci(ls)})")
        if versus.get("ls-dqn-adam", {}).get("ci_low") is not None and \
                versus.get("ls-dqn-adam-32", {}).get("ci_low") is not None:
            batch = beats["ls-dqn"] and beats["ls-dqn-adam"] and not beats["ls-dqn-adam-32"]
            text += (f"; the gain is the large batch (full-batch Adam beats DQN too, mini-batch Adam "
                     f"does not): {'yes' if batch else 'not shown'} (full batch {_ci(versus['ls-dqn-adam'])}, "
                     f"mini-batches of 32 {_ci(versus['ls-dqn-adam-32'])})")
        lines.append(text)
    return lines


def _ci(e: dict[str, Any]) -> str:
    if e.get("mean") is None:
        return results_page.MISSING
    if e.get("ci_low") is None:
        return f"{e['mean']:.2f} (n {e['n']})"
    return f"{e['mean']:.2f} [{e['ci_low']:.2f}, {e['ci_high']:.2f}] (n {e['n']})"


def page(results: dict[str, Any], source: str, date: str | None = None, machine: str | None = None) -> str:
    meta = results_page.measured(results, date, machine)
    scale = results["frames"] / results["minatar_frames"]
    sections = [(None, [
        f"Scale: {results['frames']:,} frames a run ({scale:.3g} of MinAtar's {results['minatar_frames']:,}), "
        f"{results['seeds']} seeds, games {', '.join(results['games'])}; DQN settings changed for every "
        f"agent: {json.dumps(results['overrides']) if results['overrides'] else 'none'}. "
        f"Each cell: mean over seeds [{results['interval']}] (n seeds). Final return: the mean "
        "return of the episodes ending in the last 10 % of a run's frames; mean return: over all "
        "its episodes."])]
    for game, table in results["by_game"].items():
        rows = [[agent, _ci(e["final_return"]), _ci(e["mean_return"])] for agent, e in table["agents"].items()]
        rows += [[f"{agent} - dqn (paired)", _ci(e["final_return"]), _ci(e["mean_return"])]
                 for agent, e in table["versus_dqn"].items()]
        sections.append((game, results_page.table(["agent", "final return", "mean return"], rows, "lrr")))
    sections.append(("Verdicts", verdicts(results)))
    run_rows = [[r["game"], r["agent"], r["seed"], results_page.fmt(r["final_return"], ".2f"),
                 results_page.fmt(r["mean_return"], ".2f"), r["episodes"], r["refits"],
                 results_page.fmt(r["wall_clock_s"], ".0f")] for r in results["runs"]]
    sections.append(("Runs", results_page.table(
        ["game", "agent", "seed", "final return", "mean return", "episodes", "refits", "wall-clock s"],
        run_rows, "lllrrrrr")))
    if (Path(source).parent / FIGURE).is_file():
        sections.append(("Learning curves", [f"![learning curves]({FIGURE})"]))
    return results_page.render_page("LS-DQN against DQN on MinAtar", meta["command"], meta["date"],
                                    meta["machine"], sections, source=Path(source).name,
                                    rebuild=results_page.rebuild_command("lsdqn_minatar.py",
                                                                         f"--out {source}", meta))


def write_figure(results: dict[str, Any], folder: Path) -> Path | None:
    """Draw the mean learning curve over seeds, per game and agent; return its path."""
    if not results["runs"]:
        return None
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    games = results["games"]
    fig, axes = plt.subplots(1, len(games), figsize=(5 * len(games), 3.5), squeeze=False)
    x = (np.arange(CURVE_BINS) + 0.5) * results["frames"] / CURVE_BINS
    for ax, game in zip(axes[0], games):
        for agent in results["agents"]:
            curves = [r["curve"] for r in results["runs"] if r["game"] == game and r["agent"] == agent]
            if curves:
                values = np.array([[np.nan if v is None else v for v in c] for c in curves])
                ax.plot(x, np.nanmean(values, axis=0), label=f"{agent} ({len(curves)} seeds)")
        ax.set(title=game, xlabel="frames", ylabel="episode return")
        ax.legend(fontsize="small")
    fig.tight_layout()
    path = Path(folder) / FIGURE
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _write_page(json_path: Path, date: str | None = None, machine: str | None = None) -> Path:
    return results_page.write_json_page(json_path, page, date, machine)


def _overrides(pairs: list[str], parser: argparse.ArgumentParser) -> dict[str, Any]:
    out = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            parser.error(f"--set {pair!r}: expected KEY=VALUE")
        try:
            out[key] = json.loads(text)
        except json.JSONDecodeError:
            out[key] = text
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=Path("runs") / "lsdqn-minatar",
                        help="where the run directories go (resumable)")
    parser.add_argument("--games", nargs="+", default=list(GAMES))
    parser.add_argument("--agents", nargs="+", choices=AGENTS, default=list(AGENTS))
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0 .. N-1 (default 3)")
    parser.add_argument("--frames", type=int, default=DEFAULT_FRAMES,
                        help=f"frames a run (default {DEFAULT_FRAMES:,}; MinAtar's {MINATAR_FRAMES:,})")
    parser.add_argument("--set", dest="set_", action="append", default=[],
                        help="a DQN setting of every agent, KEY=VALUE (VALUE as JSON; repeatable)")
    parser.add_argument("--ls-every", type=int, default=None,
                        help="learner steps between refits of the LS agents (default theirs: 50,000)")
    parser.add_argument("--jobs", type=int, default=1, help="runs at a time, each a process")
    parser.add_argument("--summarize-only", action="store_true", help="run nothing: summarise what is there")
    parser.add_argument("--archive", type=Path, default=None,
                        help="finished runs' config, summary, refits and compressed metrics (no parameters), "
                             "restored into ROOT first and written as each run finishes: commit it to "
                             "continue from a fresh checkout")
    results_page.add_page_arguments(parser)
    args = parser.parse_args(argv)
    if results_page.rewrite_page_only(parser, args, _write_page):
        return 0
    if args.seeds < 1 or args.jobs < 1 or args.frames < 1:
        parser.error("--seeds, --jobs and --frames must be >= 1")
    overrides = _overrides(args.set_, parser)
    if "ls_every" in overrides:
        parser.error("--set ls_every: give the LS agents' refit period with --ls-every")
    if args.ls_every is not None:
        overrides["ls_every"] = args.ls_every
    if not args.summarize_only:
        try:  # every config checked (one line) before any run starts
            for job in plan(args, overrides):
                _config(*job[:5])
        except ValueError as err:
            parser.error(str(err).splitlines()[0])
        run_all(args, overrides)  # an error in a run is not a usage error: its traceback shows
    elif args.archive is not None:
        restore_runs(plan(args, overrides), args.root, args.archive)
    results = {"measured": results_page.stamp("lsdqn_minatar.py", argv), **summarize(args, overrides)}
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        write_figure(results, args.out.parent)
    results_page.publish(results, args.out, _write_page)
    left = len(args.games) * len(args.agents) * args.seeds - len(results["runs"])
    return 1 if left else 0


if __name__ == "__main__":
    sys.exit(main())
