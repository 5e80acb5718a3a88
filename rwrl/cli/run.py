"""The ``rwrl run`` and ``rwrl report`` sub-commands; mount them with ``register(app)``.

Examples::

    rwrl run --agent d4pg --env cartpole-swingup --combined-challenge easy \\
        --steps 200000 --seed 0 --out runs/swingup-easy
    rwrl run --resume runs/swingup-easy            # after a kill, or --steps N to extend
    rwrl run --agent crr --dataset rwrl/cartpole-swingup-none-5pct-v0 --steps 100000 \\
        --out runs/crr-swingup                     # offline: steps are learner updates
    # the first command again also continues the run (so `make run` is re-runnable)
    rwrl report runs/swingup-s0 runs/swingup-s1 --out swingup.html
    rwrl report sweeps-out/combined                  # a sweep: SWEEP_DIR/report.html
    rwrl report sweeps-out/bandits-rested            # a bandit sweep: regret, log-log slopes
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer

from rwrl.agents import AGENTS
from rwrl.storage.atomic_files import WriteError
from rwrl.experiments.config import ENV_FAMILIES, SEED_MAX, ConfigError, RunConfig, check_buildable

_DEFAULTS = RunConfig()
#: CLI options that define a new run; with --resume they come from config.json.
_RUN_OPTIONS = ("agent", "env", "combined_challenge", "safety_coeff", "seed", "num_envs",
                "eval_every", "eval_episodes", "checkpoint_every", "checkpoint_minutes",
                "save_replay", "observation_history", "dataset")


def _parse_pairs(pairs: list[str], option: str) -> dict[str, Any]:
    """Parse KEY=VALUE pairs; VALUE is JSON when it parses, else a string."""
    out = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"expected KEY=VALUE, got {pair!r}", param_hint=option)
        try:
            out[key] = json.loads(text)
        except json.JSONDecodeError:
            out[key] = text
        if isinstance(out[key], list):  # JSON has no tuples; config fields such as sizes do
            out[key] = tuple(out[key])
    return out


def _agent_config(pairs: list[str], preset: str | None, replay_ratio: float | None) -> dict[str, Any]:
    """Return --agent-config's overrides with --preset and --replay-ratio in them (the flags win)."""
    overrides = _parse_pairs(pairs, "--agent-config")
    overrides.update({k: v for k, v in (("preset", preset), ("replay_ratio", replay_ratio)) if v is not None})
    return overrides


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code=2)


def run(
    agent: Optional[str] = typer.Option(None, help=f"one of {', '.join(sorted(AGENTS))} (default {_DEFAULTS.agent})"),
    env: Optional[str] = typer.Option(None, help=f"<domain>-<task> or {' or '.join(ENV_FAMILIES)} (default {_DEFAULTS.env}; `rwrl envs` lists them)"),
    combined_challenge: Optional[str] = typer.Option(None, help="easy, medium or hard"),
    safety_coeff: Optional[float] = typer.Option(None, help="enable the constraints with this coefficient"),
    steps: Optional[int] = typer.Option(None, help=f"total env steps (default {_DEFAULTS.steps})"),
    seed: Optional[int] = typer.Option(None, help=f"run seed in [0, {SEED_MAX}] (default 0)"),
    out: Optional[Path] = typer.Option(None, help="run directory to create"),
    num_envs: Optional[int] = typer.Option(None, help=f"parallel envs (default {_DEFAULTS.num_envs})"),
    eval_every: Optional[int] = typer.Option(None, help=f"env steps between evaluations (default {_DEFAULTS.eval_every})"),
    eval_episodes: Optional[int] = typer.Option(None, help=f"episodes per evaluation (default {_DEFAULTS.eval_episodes})"),
    checkpoint_every: Optional[int] = typer.Option(None, help=f"env steps between checkpoints (default {_DEFAULTS.checkpoint_every})"),
    checkpoint_minutes: Optional[float] = typer.Option(None, help=f"wall-clock minutes between checkpoints, whichever of the two comes first (default {_DEFAULTS.checkpoint_minutes:g})"),
    save_replay: Optional[bool] = typer.Option(None, "--save-replay/--no-save-replay", help="checkpoint the replay buffer too"),
    observation_history: Optional[int] = typer.Option(None, help="k > 0: the agent sees its last k observations and actions (against delays; default 0, off)"),
    preset: Optional[str] = typer.Option(None, help="agent preset: paper (the agent's defaults, "
                                         "its paper's configuration) or fast (d4pg: a solved task in "
                                         "the least wall-clock); sets agent_config preset"),
    replay_ratio: Optional[float] = typer.Option(None, help="learner updates per env step (online "
                                                 "agents; the paper presets: 0.25)"),
    agent_config: list[str] = typer.Option([], "--agent-config", help="agent field override KEY=VALUE (repeatable)"),
    env_kwarg: list[str] = typer.Option([], "--env-kwarg", help="extra make_vec argument KEY=JSON (repeatable)"),
    eval_env_kwarg: list[str] = typer.Option([], "--eval-env-kwarg", help="make_vec argument KEY=JSON that "
                                             "differs for the evaluation envs only, e.g. a held-out "
                                             "perturb_spec (repeatable)"),
    dataset: Optional[str] = typer.Option(None, help="learn offline from this Minari dataset (local id or "
                                          "directory); --steps, --eval-every, --checkpoint-every "
                                          "then count learner updates"),
    resume: Optional[Path] = typer.Option(None, help="continue this run directory"),
    progress: bool = typer.Option(True, help="draw the progress bar"),
) -> None:
    """Train an agent on a task (or --resume a run); write metrics, checkpoints and report.html."""
    from rwrl.experiments.run import REPORT_FILE, RunHooks, resume_run
    given = {k: v for k, v in locals().items() if k in _RUN_OPTIONS and v is not None}
    hooks = RunHooks(progress=progress)
    try:
        if resume is not None:
            if given or agent_config or env_kwarg or eval_env_kwarg or out is not None or preset or replay_ratio:
                _fail(f"--resume takes its config from {resume}/config.json; only --steps may change")
            summary, run_dir = resume_run(resume, steps=steps, hooks=hooks), resume
        else:
            if out is None:
                _fail("--out is required for a new run (or give --resume RUN_DIR)")
            config = RunConfig(**given, **({"steps": steps} if steps is not None else {}),
                               agent_config=_agent_config(agent_config, preset, replay_ratio),
                               env_kwargs=_parse_pairs(env_kwarg, "--env-kwarg"),
                               eval_env_kwargs=_parse_pairs(eval_env_kwarg, "--eval-env-kwarg") or None)
            check_buildable(config)  # before anything is written to --out
            summary, run_dir = _start_or_continue(config, out, hooks), out
    except typer.Exit:  # a RuntimeError too: already reported by _fail
        raise
    except (ConfigError, FileExistsError, FileNotFoundError, RuntimeError) as err:
        _fail(str(err))
    except OSError as err:  # disk full, read-only: one line naming the file and the cause
        _fail(_describe_os_error(err))
    except KeyboardInterrupt:
        typer.echo(f"\ninterrupted; continue from the last checkpoint with "
                   f"`rwrl run --resume {resume or out}`", err=True)
        raise typer.Exit(code=130)
    counters = summary["counters"]
    done = (f"{counters['env_steps']} env steps" if "env_steps" in counters
            else f"{counters['updates']} learner updates on {summary.get('dataset')}")
    typer.echo(f"done: {done}, "
               f"last evaluation return {summary['final_eval_return']:.1f}, "
               f"{100 * summary['outside_learner_share']:.0f}% of wall-clock outside the learner")
    if (Path(run_dir) / REPORT_FILE).exists():
        typer.echo(f"report: {Path(run_dir) / REPORT_FILE}")


def _describe_os_error(err: OSError) -> str:
    """One line: WriteError says "cannot write PATH: CAUSE"; others name their file too."""
    if isinstance(err, WriteError) or err.filename is None:
        return str(err)
    return f"{err.filename}: {err.strerror or err}"


def _start_or_continue(config: RunConfig, out: Path, hooks: Any) -> dict[str, Any]:
    """Start a run, or continue it when ``out`` holds the same run (the same command again)."""
    from rwrl.experiments.config import read_config
    from rwrl.experiments.run import CONFIG_FILE, resume_run, start_run
    if not (out / CONFIG_FILE).exists():
        return start_run(config, out, hooks=hooks)
    existing, _ = read_config(out / CONFIG_FILE)
    new, old = (json.loads(json.dumps(c.to_dict())) for c in (config, existing))
    changed = sorted(k for k in new if new[k] != old.get(k))
    if changed:
        _fail(f"{out} holds a run with other settings ({', '.join(changed)}); "
              f"continue it with --resume {out} or pick another --out")
    typer.echo(f"{out} holds this run already: continuing it")
    return resume_run(out, hooks=hooks)


def report(
    runs: list[Path] = typer.Argument(..., help="run directories (finished or in progress), "
                                                 "or one sweep directory (it holds sweep.json)"),
    out: Optional[Path] = typer.Option(None, help="HTML file (default RUN/report.html for one "
                                                  "run, SWEEP_DIR/report.html for a sweep)"),
    window: int = typer.Option(101, help="episodes per rolling window of the evaluators (runs)"),
) -> None:
    """Write the HTML report of one or more runs (seeds overlaid), or of a sweep directory."""
    from rwrl.report.html import write_report
    from rwrl.report.sweep_report import is_sweep_dir
    if len(runs) == 1 and is_sweep_dir(runs[0]):
        return _sweep_report(runs[0], out)
    if any(is_sweep_dir(p) for p in runs):
        _fail("give one sweep directory alone (its report covers every run of the sweep)")
    if out is None:
        if len(runs) != 1:
            _fail("--out is required with several runs")
        out = runs[0] / "report.html"
    try:
        path = write_report(runs, out, window=window)
    except FileNotFoundError as err:
        _fail(str(err))
    except OSError as err:
        _fail(_describe_os_error(err))
    typer.echo(f"report: {path}")


def _sweep_report(sweep_dir: Path, out: Optional[Path]) -> None:
    """Write the sweep's page and its aggregate CSV; print both paths."""
    from rwrl.report.bandit_report import is_bandit_sweep
    from rwrl.report.sweep_report import write_sweep_report
    if is_bandit_sweep(sweep_dir):
        return _bandit_sweep_report(sweep_dir, out)
    try:
        page, csv = write_sweep_report(sweep_dir, out)
    except (FileNotFoundError, ValueError) as err:
        _fail(str(err))
    except OSError as err:
        _fail(_describe_os_error(err))
    typer.echo(f"report: {page}")
    typer.echo(f"final returns: {csv}")
    _echo_final_returns(csv)


def _bandit_sweep_report(sweep_dir: Path, out: Optional[Path]) -> None:
    """Write a bandit sweep's page, figures and slopes CSV; print the paths and the slopes."""
    from rwrl.report.bandit_report import write_bandit_report
    try:
        page, csv, rows = write_bandit_report(sweep_dir, out)
    except (FileNotFoundError, ValueError) as err:
        _fail(str(err))
    except OSError as err:
        _fail(_describe_os_error(err))
    typer.echo(f"report: {page}")
    typer.echo(f"regret slopes: {csv}")
    if rows:
        typer.echo(f"{'fit':<3} {'env':<24} {'policy':<14} {'T':>7} {'seeds':>5} "
                   f"{'final regret':>12}  {'log-log slope, 95% CI':<24} params")
    for row in rows:
        def num(value: Any, form: str = ".2f") -> str:
            return "n/a" if value is None or value != value else format(value, form)
        horizon = row["horizon"] if row["horizon"] is not None else "all"
        typer.echo(f"{row['fit']:<3} {row['env']:<24} {row['policy']:<14} {horizon:>7} "
                   f"{row['n_seeds']:>5} {num(row['final_regret_mean'], '.4g'):>12}  "
                   f"{num(row['slope']) + ' [' + num(row['slope_ci_low']) + ', ' + num(row['slope_ci_high']) + ']':<24} "
                   f"{row['params']}")


def _echo_final_returns(csv_path: Path) -> None:
    """Print the aggregate CSV as a short table: one line per setting, agent and task."""
    import csv
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return
    typer.echo(f"{'setting':<28} {'agent':<6} {'env':<18} {'seeds':>5} {'final return':>12}  95% CI")
    for row in rows:
        setting = f"{row['dimension']}={row['magnitude']}"
        mean = float(row["mean"]) if row["mean"] else float("nan")
        ci = f"[{float(row['ci_low']):.1f}, {float(row['ci_high']):.1f}]" if row["ci_low"] else ""
        typer.echo(f"{setting:<28} {row['agent']:<6} {row['env']:<18} {row['n_seeds']:>5} "
                   f"{mean:>12.1f}  {ci}")


def register(app: typer.Typer) -> None:
    """Mount ``run`` and ``report`` on the ``rwrl`` command."""
    app.command("run")(run)
    app.command("report")(report)


__all__ = ["register", "run", "report"]
