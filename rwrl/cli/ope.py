"""The ``rwrl ope`` command; mount it with ``register(app)``.

Example::

    rwrl ope --dataset rwrl/cartpole-swingup-none-5pct-v0 --policies policies/cartpole-swingup-none \\
        --method fqe --out ope-out/cartpole-fqe.json

Writes the table (JSON) to ``--out`` and prints it; the true values (online
rollouts) are cached in ``true_values.json`` beside it, so the other method reuses them.

LS-FQE (Levine et al. 2017's shallow updates on the FQE critic)::

    rwrl ope ... --method fqe --ls-every 5000 --ls-lambda 1
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from rwrl.cli.run import _describe_os_error, _fail
from rwrl.experiments.config import SEED_MAX

#: the behaviour-policy loader: (manifest entry, policy directory) -> obs (B, D) -> actions (B, A).
DEFAULT_LOADER = "rwrl.datasets.behaviour_policies:ope_loader"


def ope(dataset: str = typer.Option(..., help="Minari dataset id"),
        policies: Path = typer.Option(..., help="directory with manifest.json listing the policies"),
        method: str = typer.Option("fqe", help="fqe | maxent"),
        out: Optional[Path] = typer.Option(None, help="output JSON (default ope-out/<dataset>-<method>.json)"),
        episodes: int = typer.Option(100, min=1, help="online episodes per policy for the true values"),
        num_envs: int = typer.Option(50, min=1, help="parallel envs of the rollouts"),
        discount: float = typer.Option(0.99, min=0.0, max=0.999999, help="discount of values and FQE"),
        steps: int = typer.Option(50_000, min=100, help="FQE gradient steps (a multiple of 100)"),
        critic: str = typer.Option("scalar", help="FQE critic: scalar | distributional (C51 on [0, 1/(1-gamma)])"),
        ls_every: Optional[int] = typer.Option(
            None, help="LS-FQE: refit the scalar critic's last layer by least squares every N gradient "
                       "steps (a multiple of 100); default: plain FQE"),
        ls_lambda: float = typer.Option(
            1.0, help="LS-FQE: prior weight per transition toward the current last layer (finite, >= 0)"),
        features: int = typer.Option(256, min=1, help="max-ent random Fourier features"),
        seed: int = typer.Option(0, min=0, max=SEED_MAX, help="seed of the estimators and the bootstrap"),
        loader: str = typer.Option(DEFAULT_LOADER, help="policy loader as module:function")) -> None:
    """Estimate each policy's value from the dataset alone; score against online rollouts (DOPE)."""
    from rwrl.ope.evaluate import METHODS, RolloutSettings, format_table, resolve_loader, run_ope
    from rwrl.ope.fqe import CRITICS, FQEConfig
    from rwrl.ope.maxent import MaxEntConfig

    if method not in METHODS:
        raise typer.BadParameter(f"{method!r}; allowed: {', '.join(METHODS)}", param_hint="--method")
    if critic not in CRITICS:
        raise typer.BadParameter(f"{critic!r}; allowed: {', '.join(CRITICS)}", param_hint="--critic")
    if ls_every is not None and method != "fqe":
        _fail(f"--ls-every {ls_every}: the least-squares refit applies to --method fqe only")
    if out is None:
        variant = f"{method}-{critic}" if method == "fqe" and critic != "scalar" else method
        variant += f"-ls{ls_every}" if ls_every is not None else ""
        out = Path("ope-out") / f"{dataset.replace('/', '_')}-{variant}.json"
    try:  # run_ope makes out's folder once the dataset and the policies have loaded
        fqe_config = FQEConfig(discount=discount, num_steps=steps, critic=critic, ls_every=ls_every,
                               ls_lambda=ls_lambda)
        result = run_ope(dataset, policies, method, resolve_loader(loader), out,
                         settings=RolloutSettings(episodes, num_envs, discount), fqe_config=fqe_config,
                         maxent_config=MaxEntConfig(num_features=features), seed=seed)
    except (FileNotFoundError, ImportError, ValueError) as err:  # ImportError: --loader
        _fail(str(err))
    except OSError as err:
        _fail(_describe_os_error(err))
    typer.echo(format_table(result))
    typer.echo(f"table: {out}")


def register(root: typer.Typer) -> None:
    """Mount the command as ``rwrl ope``."""
    root.command(name="ope")(ope)
