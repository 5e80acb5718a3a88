"""The ``rwrl pcc`` command group: train PCC on a task's images and control it; mount with ``register(app)``.

PCC (``rwrl.agents.pcc``) learns a latent space from (x, u, x') image triples and
controls by iLQR in it; it is not a Gymnasium agent (it acts through its planner),
so it has a command of its own rather than ``rwrl run --agent``.

Examples::

    rwrl pcc run --task planar --epochs 200 --out runs/pcc-planar       # about 6 min here
    rwrl pcc run --task swing --ablation no-curvature --epochs 20 --out /tmp/pcc
    rwrl pcc tasks

``run`` writes ``params.npz`` (no pickle), ``history.json`` (the losses per epoch) and
``summary.json`` (the % of steps in the goal region of each of the evaluation tasks,
their mean, the settings); each file is written atomically.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer

from rwrl.cli.run import _describe_os_error, _fail

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="PCC: latent-space control from images (the planar system, the pendulum).")

#: the seed of the training triples (as benchmarks/pcc.py) and of the evaluation tasks.
DATA_SEED, EVAL_SEED = 0, 2020


@app.command("tasks")
def tasks() -> None:
    """List PCC's tasks with their observation, action, goal region and control settings."""
    from rwrl.planning.pcc_tasks import TASKS, make_task
    for name in TASKS:
        task = make_task(name)
        typer.echo(f"{name:<8} dataset {task.dataset:<9} observation {task.obs_shape}  "
                   f"action {task.action_low.size} in [{task.action_low.min():g}, "
                   f"{task.action_high.max():g}]  control {task.control}")


@app.command("run")
def run(task: str = typer.Option("planar", help="planar, swing or balance (`rwrl pcc tasks`)"),
        ablation: str = typer.Option("pcc", help="pcc, no-curvature or no-consistency"),
        epochs: int = typer.Option(200, min=1, help="passes over the training triples"),
        samples: int = typer.Option(5000, min=1, help="training triples (x, u, x')"),
        seed: int = typer.Option(0, min=0, help="seeds the weights, batches and noise"),
        eval_tasks: int = typer.Option(10, min=1, help="random start/goal tasks controlled"),
        out: Path = typer.Option(..., help="the run's folder (created)")) -> None:
    """Train PCC on a task's images, then control the task by latent iLQR: % of steps in the goal."""
    from rwrl.agents import pcc
    from rwrl.planning.pcc_tasks import TASKS, make_task
    from rwrl.storage.atomic_files import atomic_write_bytes

    if task not in TASKS:
        _fail(f"task {task!r} is not allowed: one of {', '.join(TASKS)}")
    if ablation not in pcc.ABLATIONS:
        _fail(f"ablation {ablation!r} is not allowed: one of {', '.join(pcc.ABLATIONS)}")
    chosen = make_task(task)
    config = pcc.make_config(chosen.dataset, ablation, epochs=epochs)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        _fail(_describe_os_error(err))
    typer.echo(f"sampling {samples} triples of {task} (data seed {DATA_SEED})")
    data = chosen.sample_triples(samples, DATA_SEED)
    every = max(1, epochs // 10)

    def progress(epoch: int, row: dict) -> None:
        if epoch % every == 0 or epoch == epochs:
            typer.echo(f"epoch {epoch}/{epochs}: total {row['total']:.2f}, prediction "
                       f"{row['prediction']:.2f}, consistency {row['consistency']:.3f}, "
                       f"curvature {row['curvature']:.2e}")

    trained = pcc.train(config, data.x, data.u, data.x_next, seed=seed, progress=progress)
    model = pcc.make_model(config, chosen.obs_shape, chosen.action_low.size)
    pcc.save_params(out / "params.npz", trained.params, config, chosen.obs_shape,
                    chosen.action_low.size)
    atomic_write_bytes(out / "history.json", json.dumps(trained.history).encode())
    start = time.perf_counter()
    result = pcc.evaluate(model, trained.params, chosen, eval_tasks, EVAL_SEED,
                          amortized=config.amortized)
    summary = {"task": task, "ablation": ablation, "epochs": epochs, "samples": samples,
               "seed": seed, "data_seed": DATA_SEED, "eval_seed": EVAL_SEED,
               "percent_in_goal": result["percents"], "mean_percent_in_goal": result["mean"],
               "train_seconds": trained.seconds, "eval_seconds": time.perf_counter() - start}
    atomic_write_bytes(out / "summary.json", json.dumps(summary, indent=2).encode())
    typer.echo(f"{task} {ablation}: {result['mean']:.1f} % of steps in the goal region "
               f"(mean of {eval_tasks} tasks); {out / 'summary.json'}")


def register(root: typer.Typer) -> None:
    """Mount the group as ``rwrl pcc``."""
    root.add_typer(app, name="pcc")


__all__ = ["app", "register"]
