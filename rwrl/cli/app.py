"""The ``rwrl`` command: list tasks, roll out, train, sweep, report, policies, datasets, explain, distill, video."""

from __future__ import annotations

import contextlib
import warnings
from pathlib import Path
from typing import Any, Iterator, Optional

import typer
from typer.core import TyperGroup

from rwrl.cli.bandits import register as register_bandit_commands
from rwrl.cli.data import register as register_data_commands
from rwrl.cli.distill import register as register_distill_command
from rwrl.cli.explain import register as register_explain_command
from rwrl.cli.minatar import register as register_minatar_commands
from rwrl.cli.ope import register as register_ope_command
from rwrl.cli.pcc import register as register_pcc_commands
from rwrl.cli.run import register as register_run_commands
from rwrl.cli.sweep import register as register_sweep_commands
from rwrl.cli.video import register as register_video_commands


@contextlib.contextmanager
def _one_line_usage_errors() -> Iterator[None]:
    """Report a click usage error (``--steps abc``, a missing option) as ``error: ...``, one line."""
    try:
        yield
    except typer.TyperException as err:  # typer's click errors (typer vendors click)
        if type(err).__name__ == "NoArgsIsHelpError":  # the help text, as asked for (and as
            raise                                      # typer tells it apart: by name)
        ctx = getattr(err, "ctx", None)
        hint = f" (`{ctx.command_path} --help` lists the options)" if ctx is not None else ""
        message = " ".join(err.format_message().split())
        typer.secho(f"error: {message}{hint}", err=True, fg=typer.colors.RED)
        raise typer.Exit(code=err.exit_code) from None


class _OneLineErrors(TyperGroup):
    """The root group: every sub-command's usage errors in one line, exit 2, like its other bad input."""

    def make_context(self, info_name: Optional[str], args: list[str], parent: Any = None,
                     **extra: Any) -> typer.Context:
        with _one_line_usage_errors():
            return super().make_context(info_name, args, parent=parent, **extra)

    def invoke(self, ctx: typer.Context) -> Any:
        with _one_line_usage_errors(), _one_line_warnings():
            return super().invoke(ctx)


@contextlib.contextmanager
def _one_line_warnings() -> Iterator[None]:
    """Show warnings (a skipped checkpoint, what a resume does not reproduce) as ``warning: ...``.

    Python's default format adds the warning's source file, line and code line:
    noise to a user of the command.
    """
    def show(message, category, filename, lineno, file=None, line=None) -> None:
        typer.secho(f"warning: {message}", err=True, fg=typer.colors.YELLOW)

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


app = typer.Typer(cls=_OneLineErrors, add_completion=False, no_args_is_help=True,
                  help="rwrl: the real-world RL challenge suite.")


@app.command()
def envs() -> None:
    """List every environment id with its sizes, constraints and perturbable parameters."""

    from rwrl.domains import available_tasks
    from rwrl.domains.names import env_id
    from rwrl.tasks.task import BatchedTask

    for domain, task in available_tasks():
        t = BatchedTask(domain, task, 1)
        obs_size = t.layout.size
        typer.echo(f"{env_id(domain, task)}")
        typer.echo(f"  observation {obs_size}  action {t.action_low.shape[0]}  "
                   f"control dt {t.control_timestep} s  episode {t.time_limit} steps")
        typer.echo("  constraints (+ action_roc, opt-in):")
        for c in t.domain.constraints():
            typer.echo(f"    {c.name:<18s} {c.doc}")
        typer.echo("  perturbable parameters (nominal [min, max]):")
        for p in t.params.values():
            typer.echo(f"    {p.name:<18s} {p.start:g} [{p.min:g}, {p.max:g}] {p.unit}")
    _echo_ratecontrol()


def _echo_ratecontrol() -> None:
    """List the rate-control family's id (``rwrl.video``; its corpus is not built to list it)."""
    from rwrl.envs.registration import RATECONTROL_ID
    from rwrl.video.env import DEFAULT_LOOKAHEAD, DEFAULT_TARGET_QPS, observation_layout

    typer.echo("")
    typer.echo("rate-control family (video encoding with the real x264; no MuJoCo):")
    typer.echo(RATECONTROL_ID)
    typer.echo(f"  observation {observation_layout().size} (lookahead {DEFAULT_LOOKAHEAD})  "
               f"action 1 (QP in [0, 51])  control dt 1/fps  episode one clip (one step a frame)")
    typer.echo("  constraints:")
    typer.echo(f"    {'bitrate':<18s} the clip's bits <= its budget (judged on its last frame; "
               f"budgets: constant-QP encodes at QPs {list(DEFAULT_TARGET_QPS)}, or target_kbps)")


@app.command()
def rollout(out: Path = typer.Option(Path("runs/rollout"), help="output folder"),
            num_envs: int = typer.Option(16, min=1, help="parallel envs per task"),
            seed: int = typer.Option(0, min=0),
            domain: Optional[str] = typer.Option(None, help="only this domain"),
            time_limit: Optional[int] = typer.Option(None, min=1, help="steps per episode")) -> None:
    """Run a random policy on every task: return, violations per constraint, steps/s."""
    from rwrl.domains import available_tasks
    from rwrl.experiments.random_rollout import rollout_all

    tasks = [(d, t) for d, t in available_tasks() if domain in (None, d)]
    if not tasks:
        raise typer.BadParameter(f"no task for domain {domain!r}", param_hint="--domain")
    rollout_all(out, num_envs, seed, tasks, time_limit)
    typer.echo(f"report: {out / 'rollout.json'}")


# run and report: their modules import the learning stack only when they run
register_run_commands(app)
register_sweep_commands(app)
register_data_commands(app)  # policies, dataset
register_ope_command(app)  # rwrl ope: off-policy evaluation (imports JAX when it runs)
register_bandit_commands(app)  # rwrl bandits: envs, policies, run (imports rwrl.bandits when it runs)
register_explain_command(app)  # rwrl explain: VIPER surrogates (imports sklearn, JAX when it runs)
register_distill_command(app)  # rwrl distill: policy students (imports JAX when it runs)
register_minatar_commands(app)  # rwrl minatar: games, agents, run (imports MinAtar, JAX when it runs)
register_pcc_commands(app)  # rwrl pcc: run, tasks (imports rwrl.agents.pcc and JAX when it runs)
register_video_commands(app)  # rwrl video: corpus, clips (imports rwrl.video, MuJoCo to render, when it runs)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
