"""The ``rwrl bandits`` command group; mount it with ``register(app)``.

Examples::

    rwrl bandits envs                     # the rotting envs (arms, rested, sigma) and follower
    rwrl bandits policies                 # the policies and their parameters
    rwrl bandits run --env rested-step --policy swa --horizon 30000 --seeds 20 \\
        --out runs/bandits/swa-step
    rwrl bandits run --env rested-step --policy swa --horizon 2000 --seeds 5 \\
        --set env.sigma=0 --set window=50 --out runs/bandits/swa-step-w50
    rwrl bandits run --env follower --policy pooled --horizon 500 --seeds 4 \\
        --set drift=0.05 --out runs/bandits/follower-pooled

A run is one batch of N instances (seed convention: ``rwrl.experiments.bandit_run``);
its directory holds ``config.json``, ``regret.parquet`` and ``summary.json``
(``rwrl.metrics.bandit_results``). Sweeps of them: ``[sweep] kind = "bandit"``
(docs/bandits.md). Each command imports the bandit layer only when it runs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer

from rwrl.cli.run import _describe_os_error, _fail, _parse_pairs

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="Bandits: rotting arms and the follower simulator; regret runs.")


def _first_line(obj: Any) -> str:
    doc = (obj.__doc__ or "").strip().splitlines()
    return doc[0].replace("``", "") if doc else ""


def _value(value: Any) -> str:
    """A default as text: floats short, JSON where it is JSON, else its repr (not settable
    from the command line: a callable such as CTO's decay)."""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, str):
        return repr(value)
    if value is None:
        return "None"
    try:
        return json.dumps(value)
    except TypeError:
        return repr(value)


def _params(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={_value(v)}" for k, v in params.items()) or "none"


@app.command("envs")
def envs() -> None:
    """List the bandit envs: rotting ones (arms, rested or restless, sigma) and the follower."""
    from rwrl.bandits import ENVS, make_env
    from rwrl.experiments.bandit_run import FOLLOWER, env_parameters, policy_names
    for name in sorted(ENVS):
        env = make_env(name)
        clock = "rested" if env.rested else "restless"
        doc = _first_line(ENVS[name].func).removeprefix("Return ")
        typer.echo(f"{name:<24} arms {env.num_arms:<3} {clock:<9} sigma {env.sigma:.4g}  {doc}")
        typer.echo(f"  parameters: {_params(env_parameters(name))}")
    typer.echo(f"{FOLLOWER:<24} contextual follower acquisition (synthetic): M accounts choose "
               "among K candidates of D features; delayed, drifting linear rewards")
    typer.echo(f"  parameters: {_params(env_parameters(FOLLOWER))}")
    typer.echo(f"  policies: {', '.join(policy_names(FOLLOWER))} (LinUCB learners)")


@app.command("policies")
def policies() -> None:
    """List the policies of the rotting envs and the follower's learners, with their parameters."""
    from rwrl.bandits import LEARNERS
    from rwrl.bandits.policies import POLICIES
    from rwrl.experiments.bandit_run import FOLLOWER, policy_parameters
    typer.echo("rotting envs (every env but follower):")
    for name in sorted(POLICIES):
        entry = POLICIES[name]
        note = " (its window follows the horizon)" if entry.needs_horizon else ""
        typer.echo(f"  {name:<16} {_first_line(entry.factory)}{note}")
        typer.echo(f"    parameters: {_params(policy_parameters('rested-step', name))}")
    typer.echo(f"{FOLLOWER} (--env {FOLLOWER}): LinUCB learners")
    for name in sorted(LEARNERS):
        typer.echo(f"  {name:<16} sharing {LEARNERS[name].sharing}")
        typer.echo(f"    parameters: {_params(policy_parameters(FOLLOWER, name))}")


@app.command("run")
def run(env: str = typer.Option(..., help="a bandit env (`rwrl bandits envs`)"),
        policy: str = typer.Option(..., help="a policy of that env (`rwrl bandits policies`)"),
        horizon: int = typer.Option(..., min=1, help="T rounds (>= the env's arms)"),
        seeds: int = typer.Option(10, min=1, help="N instances, run as one batch (seeds 0 .. N-1)"),
        out: Path = typer.Option(..., help="run directory (created)"),
        seed: int = typer.Option(0, min=0, max=2**32 - 1,
                                 help="base seed S: instance i gets spawn_seeds(S, N)[i]"),
        set_: list[str] = typer.Option([], "--set", help="env or policy parameter KEY=VALUE "
                                       "(VALUE as JSON; env.KEY / policy.KEY when both take "
                                       "KEY; repeatable)"),
        grid: str = typer.Option("log", help="rounds recorded: log (50, log-spaced) or all"),
        progress: bool = typer.Option(True, help="draw the progress")) -> None:
    """Run N seeds of a policy on a bandit env; write regret.parquet, config.json, summary.json."""
    from rwrl.experiments.bandit_run import (BanditRunConfig, finished_summary, check_same_run,
                                             run_bandit, split_params)
    from rwrl.storage.run_lock import RunLockedError
    try:
        pairs = _parse_pairs(set_, "--set")
        env_params, policy_params = split_params(env, policy, pairs) if pairs else ({}, {})
        config = BanditRunConfig(env=env, policy=policy, horizon=horizon, seeds=seeds, seed=seed,
                                 env_params=env_params, policy_params=policy_params, grid=grid)
        check_same_run(out, config)
        if finished_summary(out) is not None:
            typer.echo(f"{out} holds this run finished already: nothing to run")
        summary = run_bandit(config, out, progress=progress)
    except typer.Exit:
        raise
    except (ValueError, RunLockedError) as err:
        _fail(str(err))
    except OSError as err:
        _fail(_describe_os_error(err))
    except KeyboardInterrupt:
        typer.echo(f"\ninterrupted: {out} is not finished; the same command runs it again",
                   err=True)
        raise typer.Exit(code=130)
    _echo_summary(summary, out)


def _echo_summary(summary: dict[str, Any], out: Path) -> None:
    final = summary["final_regret"]
    ci = (f"95% CI [{final['ci_low']:.4g}, {final['ci_high']:.4g}]"
          if final.get("ci_low") is not None else "no interval with one seed")
    typer.echo(f"done: {summary['policy']} on {summary['env']}, T {summary['horizon']}, "
               f"{summary['seeds']} seeds, {summary['wall_clock_s']:.2f} s")
    typer.echo(f"final regret {final['mean']:.4g} ({ci}, over seeds)")
    typer.echo(f"regret: {out / 'regret.parquet'}")
    typer.echo(f"summary: {out / 'summary.json'}")


def register(root: typer.Typer) -> None:
    """Mount the group as ``rwrl bandits``."""
    root.add_typer(app, name="bandits")


__all__ = ["app", "register"]
