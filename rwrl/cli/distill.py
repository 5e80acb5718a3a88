"""The ``rwrl distill`` command; mount it with ``register(app)``.

Example::

    rwrl distill runs/cartpole-swingup --sizes 64,16 --out distill-out/cartpole

Distils the run's newest checkpoint (or the checkpoint given) into a 64-wide
policy and that one into a 16-wide one (``--sizes 16``: directly), writes each
student as an ``rwrl run`` directory under ``--out`` and ``distill.json``, and
prints per student its width, held-out action error, return against the
teacher's and distillation seconds (``rwrl.distill.chain``).
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from rwrl.cli.run import _describe_os_error, _fail
from rwrl.experiments.config import SEED_MAX


def distill(path: Path = typer.Argument(..., help="an rwrl run directory or one of its checkpoints"),
            sizes: str = typer.Option(..., help="student widths along the chain, comma-separated, "
                                                "shrinking: 256,64,16 is teacher -> 256 -> 64 -> 16"),
            out: Path = typer.Option(Path("distill-out"), help="output folder"),
            states: str = typer.Option("rollouts", help="rollouts (the teacher's episodes), dagger (then "
                                                        "the student's, relabelled) or dataset"),
            dataset: str = typer.Option(None, help="with --states dataset: a dataset id or directory "
                                                   "(rwrl dataset create) whose states are relabelled"),
            episodes: int = typer.Option(4, min=1, help="episodes per state collection"),
            rounds: int = typer.Option(3, min=0, help="DAgger rounds after the first fit"),
            epochs: int = typer.Option(50, min=1, help="passes over the states per fit"),
            held_out_episodes: int = typer.Option(2, min=1, help="teacher episodes for the action error"),
            eval_episodes: int = typer.Option(4, min=1, help="episodes giving each return"),
            seed: int = typer.Option(0, min=0, max=SEED_MAX)) -> None:
    """Distil a trained policy into smaller students, directly or through assistants."""
    from rwrl.datasets.behaviour_policies import PolicyError, resolve_checkpoint
    from rwrl.distill.chain import distil_chain, format_table, parse_sizes
    from rwrl.distill.policy import FitSettings, StateSettings
    from rwrl.distill.runs import DistillError
    from rwrl.storage.atomic_files import atomic_write_bytes

    try:
        widths = parse_sizes(sizes)
        state_settings = StateSettings(states, episodes, rounds, seed, dataset)
        fitting = FitSettings(epochs=epochs, seed=seed)
        resolve_checkpoint(path)  # a bad path fails before JAX and the env load
        report = distil_chain(path, widths, out, state_settings, fitting, held_out_episodes, eval_episodes)
    except (DistillError, PolicyError, ValueError) as err:
        _fail(str(err))
    except OSError as err:
        _fail(_describe_os_error(err))
    text = json.dumps(report, indent=2, sort_keys=True)
    atomic_write_bytes(Path(out) / "distill.json", (text + "\n").encode())
    typer.echo(format_table(report))
    typer.echo(f"report: {out / 'distill.json'}")


def register(root: typer.Typer) -> None:
    """Mount the command as ``rwrl distill``."""
    root.command(name="distill")(distill)
