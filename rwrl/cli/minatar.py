"""The ``rwrl minatar`` command group; mount it with ``register(app)``.

Examples::

    rwrl minatar games                    # the five games: channels, actions
    rwrl minatar agents                   # dqn, ls-dqn, the Adam ablations and their settings
    rwrl minatar run --game breakout --agent ls-dqn --frames 5000000 --seed 0 \\
        --out runs/minatar/breakout-ls-dqn-0
    rwrl minatar run --game seaquest --agent dqn --frames 200000 \\
        --set replay_capacity=50000 --out runs/minatar/seaquest-dqn-small

A run's directory holds ``config.json``, ``metrics.jsonl`` (one row per
episode), ``refits.jsonl``, ``checkpoints/`` and ``summary.json``
(``rwrl.minatar.run``); the same command again resumes a killed run. Each
command imports MinAtar and JAX only when it runs. Guide: docs/minatar.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from rwrl.cli.run import _describe_os_error, _fail, _parse_pairs

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="MinAtar: DQN and LS-DQN on the miniature Atari games.")


@app.command("games")
def games() -> None:
    """List the MinAtar games with their channels and actions."""
    from rwrl.minatar import GAMES
    from rwrl.minatar.env import MinAtarEnv
    for game in GAMES:
        env = MinAtarEnv(game)
        minimal = MinAtarEnv(game, minimal_action_set=True).action_space.n
        typer.echo(f"{game:<16} frames 10x10x{env.observation_space.shape[-1]:<3} "
                   f"actions {env.action_space.n} (meaningful {minimal})")


@app.command("agents")
def agents() -> None:
    """List the named agents and the DQN settings each changes."""
    import dataclasses
    from rwrl.minatar import AGENTS
    from rwrl.minatar.dqn import DQNConfig
    for name, overrides in AGENTS.items():
        changed = ", ".join(f"{k}={v}" for k, v in overrides.items()) or "MinAtar's DQN as it is"
        typer.echo(f"{name:<12} {changed}")
    defaults = ", ".join(f"{f.name}={f.default}" for f in dataclasses.fields(DQNConfig))
    typer.echo(f"settings (--set KEY=VALUE) and their defaults: {defaults}")


@app.command("run")
def run(game: str = typer.Option(..., help="a MinAtar game (`rwrl minatar games`)"),
        agent: str = typer.Option("dqn", help="dqn, ls-dqn, ls-dqn-adam or ls-dqn-adam-32 "
                                  "(`rwrl minatar agents`)"),
        frames: int = typer.Option(5_000_000, help="frames to train (MinAtar's runs: 5,000,000)"),
        seed: int = typer.Option(0, help="the run's seed in [0, 2**32 - 1]"),
        out: Path = typer.Option(..., help="run directory (created; the same command resumes it)"),
        set_: list[str] = typer.Option([], "--set", help="a DQN setting KEY=VALUE, VALUE as JSON "
                                       "(repeatable; `rwrl minatar agents` lists them)"),
        checkpoint_every: int = typer.Option(250_000, help="frames between checkpoints"),
        progress: bool = typer.Option(True, help="draw the progress")) -> None:
    """Train an agent on a game; write metrics.jsonl, refits.jsonl, checkpoints, summary.json."""
    from rwrl.minatar.run import MinAtarRunConfig, check_same_run, finished_summary, run_minatar
    from rwrl.storage.run_lock import RunLockedError
    try:
        config = MinAtarRunConfig(game=game, agent=agent, frames=frames, seed=seed,
                                  agent_config=_parse_pairs(set_, "--set"),
                                  checkpoint_every=checkpoint_every)
        check_same_run(out, config)
        if finished_summary(out) is not None:
            typer.echo(f"{out} holds this run finished already: nothing to run")
        summary = run_minatar(config, out, progress=progress)
    except typer.Exit:
        raise
    except (ValueError, TypeError, RunLockedError, ImportError) as err:  # ImportError: no MinAtar
        _fail(str(err).splitlines()[0])
    except OSError as err:
        _fail(_describe_os_error(err))
    except KeyboardInterrupt:
        typer.echo(f"\ninterrupted: {out} is not finished; the same command resumes it "
                   "from its last checkpoint", err=True)
        raise typer.Exit(code=130)
    _echo_summary(summary, out)


def _echo_summary(summary: dict[str, Any], out: Path) -> None:
    final = summary["final_return"]
    typer.echo(f"done: {summary['agent']} on {summary['game']}, {summary['frames']} frames, "
               f"{summary['episodes']} episodes, {summary['refits']} refits, "
               f"{summary['wall_clock_s']:.1f} s")
    typer.echo(f"final return {'–' if final is None else f'{final:.3g}'} "
               f"({summary['final_return_note']})")
    typer.echo(f"episodes: {out / 'metrics.jsonl'}")
    typer.echo(f"summary: {out / 'summary.json'}")


def register(root: typer.Typer) -> None:
    """Mount the group as ``rwrl minatar``."""
    root.add_typer(app, name="minatar")


__all__ = ["app", "register"]
