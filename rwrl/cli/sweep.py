"""The ``rwrl sweep`` command group; mount it with ``register(app)``.

Examples::

    rwrl sweep sweeps/paper/delay-actions.toml --out sweeps-out/delay-actions \\
        --scale 0.05 --seeds 2 --envs cartpole-swingup --workers 2
    rwrl sweep status sweeps-out/delay-actions
    rwrl sweep plan sweeps/paper/combined.toml          # validate and list the runs
    rwrl sweep SPEC --out DIR --backend ray --address auto   # on a Ray cluster

``rwrl sweep SPEC ...`` is ``rwrl sweep run SPEC ...``. Re-running the same
command continues the sweep: finished runs are skipped, the others resume.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any, Optional

import typer
from typer.core import TyperGroup

from rwrl.cli.run import _describe_os_error, _fail


class _RunByDefault(TyperGroup):
    """``rwrl sweep SPEC`` means ``rwrl sweep run SPEC``."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


app = typer.Typer(cls=_RunByDefault, no_args_is_help=True, add_completion=False,
                  help="Run a grid of runs from a TOML sweep file, locally or on Ray.")


def _names(text: Optional[str]) -> Optional[tuple[str, ...]]:
    return tuple(n.strip() for n in text.split(",") if n.strip()) if text else None


def _load(spec: Path, scale: float, seeds: Optional[int], steps: Optional[int],
          envs: Optional[str], agents: Optional[str]) -> Any:
    from rwrl.experiments.sweeps.plan import Overrides, SweepSpecError, load_plan
    try:
        return load_plan(spec, Overrides(scale=scale, seeds=seeds, steps=steps,
                                         envs=_names(envs), agents=_names(agents)))
    except SweepSpecError as err:
        _fail(str(err))


_SCALE = typer.Option(1.0, help="multiply steps, eval_every and checkpoint_every (rounded)")
_SEEDS = typer.Option(None, min=1, help="N seeds (0 .. N-1) instead of the file's")
_STEPS = typer.Option(None, min=1, help="env steps per run instead of the file's (a bandit "
                      "sweep: its one horizon)")
_ENVS = typer.Option(None, help="comma-separated envs instead of the file's")
_AGENTS = typer.Option(None, help="comma-separated agents instead of the file's (a bandit "
                       "sweep: policies)")


@app.command("run")
def run(ctx: typer.Context,
        spec: Path = typer.Argument(..., help="the sweep's TOML file"),
        out: Path = typer.Option(..., help="sweep directory (created, or continued)"),
        backend: str = typer.Option("local", help="local (process pool) or ray"),
        workers: int = typer.Option(1, min=1, help="runs at once (each gets cores / workers)"),
        address: Optional[str] = typer.Option(None, help="Ray cluster address (--backend ray)"),
        scale: float = _SCALE, seeds: Optional[int] = _SEEDS, steps: Optional[int] = _STEPS,
        envs: Optional[str] = _ENVS, agents: Optional[str] = _AGENTS,
        retry_failed: bool = typer.Option(True, help="run failed runs again (resuming them)"),
        archive: Optional[Path] = typer.Option(
            None, help="restore finished runs from this archive first, archive each run as it "
                       "finishes (config, summary, compressed metrics; no checkpoints)"),
        progress: bool = typer.Option(True, help="draw the sweep's progress")) -> None:
    """Run (or continue) a sweep: every unfinished run of SPEC under OUT/runs/.

    Exits 0 when every run of the plan is done; 1 while any is not (failed,
    partial, pending, broken, or Ray lost under the sweep), after the counts and
    the command that continues it; 2 when it cannot start; 130 on Ctrl-C.
    """
    from rwrl.experiments.run import RunLockedError
    from rwrl.experiments.sweeps.backends import ClusterLostError
    from rwrl.experiments.sweeps.run import SweepPlanError, run_sweep
    from rwrl.experiments.sweeps.status import count
    plan = _load(spec, scale, seeds, steps, envs, agents)
    if address is not None and backend != "ray":
        _fail("--address is for --backend ray")
    typer.echo(f"sweep {plan.name}: {len(plan.runs)} runs -> {out}")
    try:
        counts = run_sweep(plan, out, backend=backend, workers=workers, address=address,
                           progress=progress, retry_failed=retry_failed, archive=archive)
    except (SweepPlanError, ValueError, ImportError) as err:
        _fail(str(err))
    except RunLockedError as err:
        _fail(f"another sweep process is running {out} ({err})")
    except OSError as err:
        _fail(_describe_os_error(err))
    except ClusterLostError as err:
        typer.secho(f"error: {err}", err=True, fg=typer.colors.RED)
        counts = count(_checks(out)[1])
    except KeyboardInterrupt:
        typer.echo(f"\ninterrupted; continue with: {_continue_command(ctx)}", err=True)
        raise typer.Exit(code=130)
    _finish(ctx, out, counts)


def _finish(ctx: typer.Context, out: Path, counts: dict[str, int]) -> None:
    """Print the counts and the results folder; while a run is not done, name the runs
    with a note and the command that continues the sweep, and exit 1."""
    from rwrl.experiments.sweeps.status import not_done
    _print_counts(counts)
    typer.echo(f"results: {out / 'results'}")
    left = not_done(counts)
    if left:
        _print_notes(_checks(out)[1])
        typer.echo(f"{left} of {sum(counts.values())} runs are not done; "
                   f"continue with: {_continue_command(ctx)}", err=True)
        raise typer.Exit(code=1)


def _continue_command(ctx: typer.Context) -> str:
    """Return the ``rwrl sweep run`` command line that continues this sweep.

    It is this command's spec and options (those at their default left out),
    without ``--no-retry-failed``: continuing runs the failed runs again too.
    """
    words = ["rwrl", "sweep", "run"]
    for param in ctx.command.params:
        value = ctx.params[param.name]
        if param.name == "retry_failed" or value == param.default:
            continue
        if param.param_type_name == "argument":
            words.append(str(value))
        elif getattr(param, "is_flag", False):
            words.append(param.opts[0] if value else param.secondary_opts[0])
        else:
            words += [param.opts[0], str(value)]
    return shlex.join(words)


def _print_counts(counts: dict[str, int]) -> None:
    typer.echo("  ".join(f"{k} {v}" for k, v in counts.items()))


def _checks(sweep_dir: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return the plan and run id -> its verified ``RunCheck``, or fail naming the unreadable plan."""
    from rwrl.experiments.sweeps.status import check_runs
    from rwrl.metrics import sweep_results as results
    try:
        plan = results.read_plan(sweep_dir)
    except (FileNotFoundError, ValueError) as err:
        _fail(str(err))
    return plan, check_runs(sweep_dir, plan)


def _print_notes(checks: dict[str, Any]) -> None:
    """One line per run with a note: a broken run's file and reason, a failure's first line."""
    for run_id, check in checks.items():
        if check.note:
            typer.echo(f"{check.status} {run_id}: {check.note}")
    if any(check.status == "broken" for check in checks.values()):
        typer.echo("a broken run is left as it is: restore it (rwrl sweep run --archive) "
                   "or remove its directory to run it again")


@app.command("status")
def status(sweep_dir: Path = typer.Argument(..., help="a sweep directory")) -> None:
    """Print the runs per status, verified as --resume reads them; exit 1 unless all are done.

    A run whose config.json or summary.json does not read is 'broken', named with the
    file and the reason; a failed run is named with its error's first line.
    """
    from rwrl.experiments.sweeps.status import count, not_done
    plan, checks = _checks(sweep_dir)
    typer.echo(f"sweep {plan['name']}: {len(checks)} runs")
    counts = count(checks)
    _print_counts(counts)
    _print_notes(checks)
    if not_done(counts):
        raise typer.Exit(code=1)


@app.command("plan")
def plan(spec: Path = typer.Argument(..., help="the sweep's TOML file"),
         scale: float = _SCALE, seeds: Optional[int] = _SEEDS, steps: Optional[int] = _STEPS,
         envs: Optional[str] = _ENVS, agents: Optional[str] = _AGENTS) -> None:
    """Validate a sweep file and list its runs (nothing runs)."""
    loaded = _load(spec, scale, seeds, steps, envs, agents)
    if loaded.kind == "bandit":
        total = sum(r.config.horizon * r.config.seeds for r in loaded.runs)
        typer.echo(f"sweep {loaded.name}: {len(loaded.runs)} bandit runs, {total} "
                   "instance-rounds in all")
        for r in loaded.runs:
            typer.echo(f"  {r.run_id}  horizon {r.config.horizon}  seeds {r.config.seeds}")
        return
    total = sum(r.config.steps for r in loaded.runs)
    typer.echo(f"sweep {loaded.name}: {len(loaded.runs)} runs, {total} env steps in all")
    for r in loaded.runs:
        typer.echo(f"  {r.run_id}  steps {r.config.steps}")


@app.command("archive")
def archive_command(sweep_dir: Path = typer.Argument(..., help="a sweep directory"),
                    to: Path = typer.Argument(..., help="the archive directory (created or added to)"),
                    unfinished: bool = typer.Option(
                        False, "--unfinished", help="also carry each stopped, unfinished run with its "
                        "newest checkpoint (megabytes) so that another machine continues it")) -> None:
    """Copy SWEEP_DIR's finished runs, without checkpoints, to an archive small enough to commit.

    `rwrl sweep run SPEC --out DIR --archive ARCHIVE` restores them into a new DIR
    (and continues the unfinished runs carried with --unfinished from their checkpoints).
    """
    from rwrl.experiments.sweeps import archive as sweep_archive
    try:
        written = sweep_archive.archive(sweep_dir, to, unfinished=unfinished)
        carried = sweep_archive.unfinished_runs(to)
    except (FileNotFoundError, ValueError) as err:
        _fail(str(err))
    except OSError as err:
        _fail(_describe_os_error(err))
    typer.echo(f"archived {written} newly finished runs to {to}")
    if carried:
        steps = ", ".join(f"{run_id} at step {step}" for run_id, step in carried.items())
        typer.echo(f"carrying {len(carried)} unfinished runs with their newest checkpoint: {steps}")


@app.command("results")
def results_command(sweep_dir: Path = typer.Argument(..., help="a sweep directory")) -> None:
    """Rewrite SWEEP_DIR/results/ from the run directories (e.g. after a kill)."""
    from rwrl.metrics import sweep_results as results
    try:
        folder = results.write_results(sweep_dir)
    except (FileNotFoundError, ValueError) as err:
        _fail(str(err))
    typer.echo(f"results: {folder}")


def register(root: typer.Typer) -> None:
    """Mount the group as ``rwrl sweep``."""
    root.add_typer(app, name="sweep")


__all__ = ["app", "register"]
