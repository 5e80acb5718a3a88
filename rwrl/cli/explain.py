"""The ``rwrl explain`` command; mount it with ``register(app)``.

Example::

    rwrl explain runs/cartpole-swingup --depth 1,2,3 --out explain-out/cartpole

Fits a linear and one tree surrogate per depth to the run's newest checkpoint (or
the checkpoint given) by VIPER, prints the fidelity table and writes
``explain.json``, ``tree-depth<k>.txt`` and ``tree-depth<k>.png`` into ``--out``
(``rwrl.explain.explain_run``). ``--weights``: VIPER's Q-gap weights from the
run's own critic (the default where the run's agent has one) or ``uniform``
(plain DAgger, the ablation; the default for an agent without a critic).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from rwrl.cli.run import _describe_os_error, _fail
from rwrl.experiments.config import SEED_MAX


def explain(path: Path = typer.Argument(..., help="an rwrl run directory or one of its checkpoints"),
            depth: str = typer.Option("1,2,3", help="tree depths, comma-separated, each >= 1"),
            out: Path = typer.Option(Path("explain-out"), help="output folder"),
            iterations: int = typer.Option(4, min=1, help="VIPER (DAgger) iterations per surrogate"),
            episodes: int = typer.Option(4, min=1, help="rollout episodes per iteration"),
            held_out_episodes: int = typer.Option(2, min=1, help="teacher episodes for action agreement"),
            eval_episodes: int = typer.Option(4, min=1, help="episodes giving each return"),
            time_limit: Optional[int] = typer.Option(None, min=1, help="episode steps (default: the task's)"),
            linear: bool = typer.Option(True, help="also fit a linear surrogate"),
            select: str = typer.Option("return", help="best VIPER iteration by: return (validation "
                                       "episodes, the paper's) or fidelity (held-out R^2)"),
            weights: Optional[str] = typer.Option(
                None, help="VIPER's state weights: q-gap (from the run's critic; the default where its "
                "agent has one) or uniform (plain DAgger, the ablation)"),
            seed: int = typer.Option(0, min=0, max=SEED_MAX)) -> None:
    """Fit interpretable surrogates (linear, trees) to a trained policy; print their fidelity."""
    from rwrl.datasets.behaviour_policies import PolicyError
    from rwrl.explain.explain_run import (ExplainError, ExplainSettings, explain_checkpoint,
                                          format_table, parse_depths)
    from rwrl.datasets.behaviour_policies import resolve_checkpoint

    try:
        settings = ExplainSettings(parse_depths(depth), linear, iterations, episodes,
                                   held_out_episodes, eval_episodes, time_limit, seed, select, weights)
        resolve_checkpoint(path)  # a bad path fails before JAX and the env load
        report = explain_checkpoint(path, out, settings)
    except (ExplainError, PolicyError) as err:
        _fail(str(err))
    except OSError as err:
        _fail(_describe_os_error(err))
    typer.echo(format_table(report))
    typer.echo(f"report: {out / 'explain.json'}")


def register(root: typer.Typer) -> None:
    """Mount the command as ``rwrl explain``."""
    root.command(name="explain")(explain)
