"""The ``rwrl policies`` and ``rwrl dataset`` command groups; mount them with ``register(app)``.

Examples::

    rwrl policies train cartpole-swingup --challenge none --out policies/cartpole-swingup-none
    rwrl dataset create cartpole-swingup --challenge none --size 1   # the shipped snapshot
    rwrl dataset create cartpole-swingup --challenge none --size 5 \\
        --policy policies/cartpole-swingup-none/manifest.json --seed 0
    rwrl policies export policies/cartpole-swingup-none   # refresh the shipped snapshot
    rwrl dataset list
    rwrl dataset show rwrl/cartpole-swingup-none-5pct-v0

Re-running ``policies train`` or ``dataset create`` with the same arguments
continues the work left by a killed one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from rwrl.cli.run import _describe_os_error, _fail, _parse_pairs
from rwrl.experiments.config import SEED_MAX

policies_app = typer.Typer(no_args_is_help=True, add_completion=False,
                           help="Behaviour policies: D4PG snapshots at fractions of the best return.")
dataset_app = typer.Typer(no_args_is_help=True, add_completion=False,
                          help="Offline datasets in Minari format (MINARI_DATASETS_PATH).")


@policies_app.command("train")
def policies_train(
        task: str = typer.Argument(..., help="<domain>-<task>, e.g. cartpole-swingup"),
        challenge: str = typer.Option("none", help="combined challenge: none or easy"),
        out: Path = typer.Option(..., help="policies directory (created, or continued)"),
        steps: int = typer.Option(500_000, min=1, help="env steps of the online D4PG run"),
        seed: int = typer.Option(0, min=0, max=SEED_MAX),
        episodes: int = typer.Option(10, min=1, help="evaluation episodes per checkpoint"),
        checkpoints: int = typer.Option(20, min=1, help="periodic checkpoints kept over the run"),
        num_envs: int = typer.Option(8, min=1, help="parallel training envs"),
        agent_config: list[str] = typer.Option([], "--agent-config", help="D4PG field KEY=VALUE"),
        env_kwarg: list[str] = typer.Option([], "--env-kwarg", help="extra make_vec KEY=JSON"),
        progress: bool = typer.Option(True, help="show progress")) -> None:
    """Train D4PG online, evaluate every checkpoint, write OUT/manifest.json."""
    from rwrl.datasets.behaviour_policies import PolicyError
    from rwrl.experiments.config import ConfigError, check_buildable
    from rwrl.experiments.behaviour_training import behaviour_run_config, train_behaviour_policies
    agent_fields = _parse_pairs(agent_config, "--agent-config")
    env_kwargs = _parse_pairs(env_kwarg, "--env-kwarg")
    try:
        check_buildable(behaviour_run_config(task, challenge, steps, seed, checkpoints, num_envs,
                                             agent_fields, env_kwargs))  # before OUT is made
        manifest = train_behaviour_policies(
            task, challenge, out, steps=steps, seed=seed, episodes=episodes,
            checkpoints=checkpoints, num_envs=num_envs, agent_config=agent_fields,
            env_kwargs=env_kwargs, progress=progress)
    except (ConfigError, PolicyError, FileExistsError, RuntimeError) as err:
        _fail(str(err))
    except OSError as err:
        _fail(_describe_os_error(err))
    typer.echo(f"best return {manifest['best_return']:.1f} over {episodes} episodes")
    for s in manifest["snapshots"]:
        typer.echo(f"  fraction {s['fraction']:.2f}: {s['path']}  return {s['mean_return']:.1f} "
                   f"+- {s['std_return']:.1f}")
    typer.echo(f"manifest: {out / 'manifest.json'}")


@policies_app.command("export")
def policies_export(
        source: Path = typer.Argument(..., help="a policies directory (or its manifest.json)"),
        out: Optional[Path] = typer.Option(None, help="the folder to write; default: the shipped "
                                           "folder of the manifest's task and challenge"),
        fraction: list[float] = typer.Option([0.75], help="the snapshots to keep (repeat)"),
        every_checkpoint: bool = typer.Option(False, help="keep every checkpoint of the run too: "
                                              "the policy set off-policy evaluation ranks")) -> None:
    """Write policy-only copies of a run's snapshots: the behaviour snapshots rwrl ships."""
    from rwrl.datasets.behaviour_policies import PolicyError, read_manifest
    from rwrl.datasets.shipped_policies import describe, export_policies, shipped_manifest_path
    try:
        if out is None:
            manifest = read_manifest(source)
            out = shipped_manifest_path(manifest["task"], manifest["challenge"]).parent
        export_policies(source, out, tuple(fraction), every_checkpoint)
    except PolicyError as err:
        _fail(str(err))
    except OSError as err:
        _fail(_describe_os_error(err))
    typer.echo(describe(out))


@dataset_app.command("create")
def dataset_create(
        task: str = typer.Argument(..., help="cartpole-swingup, walker-walk, quadruped-walk or humanoid-walk"),
        challenge: str = typer.Option("none", help="combined challenge: none or easy"),
        size: int = typer.Option(..., help="percent of the published episode count: 1, 5, 20, 40 or 100"),
        policy: Optional[Path] = typer.Option(None, help="policies manifest (or its directory) or one "
                                              "checkpoint; default policies/TASK-CHALLENGE/manifest.json "
                                              "if it exists, else the snapshot shipped with rwrl"),
        seed: int = typer.Option(0, min=0, max=SEED_MAX),
        noise: float = typer.Option(0.2, min=0.0, help="behaviour noise std, in action half-ranges"),
        num_envs: int = typer.Option(50, min=1, help="episodes generated side by side"),
        fraction: float = typer.Option(0.75, help="the manifest's snapshot at this fraction acts"),
        ref_episodes: int = typer.Option(20, min=1, help="episodes per reference score"),
        progress: bool = typer.Option(True, help="show progress")) -> None:
    """Generate a Minari dataset (re-run the same command to continue a killed one)."""
    from rwrl.datasets.create import create_dataset
    from rwrl.datasets.behaviour_policies import PolicyError
    try:
        summary = create_dataset(task, challenge, size, policy, seed=seed, noise=noise,
                                 num_envs=num_envs, fraction=fraction, ref_episodes=ref_episodes,
                                 progress=progress)
    except (ValueError, PolicyError, FileExistsError) as err:
        _fail(str(err))
    except OSError as err:
        _fail(_describe_os_error(err))
    typer.echo(f"{summary['id']}: {summary['episodes']} episodes, {summary['steps']} steps, "
               f"{summary['size_mb']} MB at {summary['path']}")


@dataset_app.command("list")
def dataset_list() -> None:
    """List the complete rwrl datasets under MINARI_DATASETS_PATH."""
    from rwrl.datasets.store import datasets_root, list_datasets
    found = list_datasets()
    if not found:
        typer.echo(f"no rwrl dataset under {datasets_root()}")
    for dataset_id, meta in found.items():
        typer.echo(f"{dataset_id:<40} {meta.get('total_episodes'):>6} episodes "
                   f"{meta.get('total_steps'):>9} steps {meta.get('dataset_size')} MB")


@dataset_app.command("show")
def dataset_show(dataset_id: str = typer.Argument(..., help="e.g. rwrl/cartpole-swingup-none-5pct-v0"),
                 verify: bool = typer.Option(False, help="recompute the content checksum")) -> None:
    """Print a dataset's facts as JSON (episodes, scores, command, seed, checksum)."""
    from rwrl.datasets.store import dataset_summary
    try:
        summary = dataset_summary(dataset_id, verify=verify)
    except (FileNotFoundError, ValueError) as err:
        _fail(str(err))
    typer.echo(json.dumps(summary, indent=2, sort_keys=True, default=str))
    if verify and not summary["checksum_verified"]:
        _fail(f"{dataset_id}: content checksum differs from the recorded one")


def register(app: typer.Typer) -> None:
    """Mount ``policies`` and ``dataset`` on the ``rwrl`` command."""
    app.add_typer(policies_app, name="policies")
    app.add_typer(dataset_app, name="dataset")


__all__ = ["dataset_app", "policies_app", "register"]
