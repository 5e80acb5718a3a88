"""A tiny sweep (2 settings x 2 seeds of 200 env steps), checks of its run directories, and
run directories fabricated with the real writers (no training) for the status and exit tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import typer

from rwrl.cli.sweep import register
from rwrl.experiments.config import RunConfig, write_config
from rwrl.experiments.sweeps.plan import load_plan
from rwrl.metrics.episode_file import read_rows
from rwrl.storage.atomic_files import atomic_write_bytes
from rwrl.storage.checkpoint import Checkpoint, save_checkpoint

TINY = """
[sweep]
name = "tiny"
agents = ["d4pg"]
envs = ["cartpole-balance"]
seeds = 2
steps = {steps}

[fixed]
num_envs = 2
eval_every = 100
eval_episodes = 1
checkpoint_every = 100
"env_kwargs.time_limit" = 50
agent_config = {{batch_size = 16, min_replay_size = 50, policy_hidden_sizes = [16], critic_hidden_sizes = [16], samples_per_insert = 8.0}}

[axes]
"delay_spec.actions" = [0, 2]
"""

#: columns that measure wall-clock, which no two executions share.
WALL_CLOCK = ("wall_time", "env_steps_per_s")


def tiny_plan(tmp_path: Path, steps: int = 200, name: str = "tiny.toml", extra: str = ""):
    path = tmp_path / name
    path.write_text(TINY.format(steps=steps) + extra)
    return path, load_plan(path)


def rows_of(run_dir: Path) -> list[dict]:
    return read_rows(Path(run_dir) / "metrics.jsonl")


def assert_every_row_once(run_dir: Path, steps: int, time_limit: int = 50, num_envs: int = 2,
                          eval_every: int = 100) -> None:
    """Training episodes 0..n-1 and evaluations 0..m-1, each exactly once, in order."""
    rows = rows_of(run_dir)
    train = [r["episode"] for r in rows if r["phase"] == "train"]
    evals = [r["evaluation"] for r in rows if r["phase"] == "eval"]
    # every env runs steps / num_envs steps: episodes of time_limit steps each
    assert train == list(range(steps // time_limit)), train
    # an evaluation at step 0, every eval_every steps, and none extra at the end
    assert evals == list(range(steps // eval_every + 1)), evals


def without_wall_clock(frame):
    """The frame without its wall-clock columns, rows in a stable order."""
    keep = [c for c in frame.columns if c not in WALL_CLOCK]
    order = [c for c in ("run_id", "phase", "episode") if c in keep]
    return frame[keep].sort_values(order).reset_index(drop=True)


def sweep_cli() -> typer.Typer:
    """An app with ``rwrl sweep`` mounted, for CliRunner."""
    app = typer.Typer()
    register(app)
    app.command("noop", hidden=True)(lambda: None)  # a group with one command would be flattened
    return app


def started_run(run_dir: Path, config: dict) -> None:
    """A run that started: its config and a checkpoint at step 100 (what a kill leaves)."""
    run_dir.mkdir(parents=True)
    write_config(run_dir / "config.json", RunConfig.from_dict(config), {"batch_size": 16})
    atomic_write_bytes(run_dir / "metrics.jsonl", b"")
    save_checkpoint(run_dir / "checkpoints",
                    Checkpoint(100, {"state": {"w": np.zeros(3)}}, {"counters": {"rows": 0}}))


def finished_run(run_dir: Path, config: dict) -> None:
    """A run that finished: ``started_run`` and its ``summary.json``."""
    started_run(run_dir, config)
    summary = {"counters": {"env_steps": config["steps"], "rows": 0}, "final_eval_return": 1.0}
    atomic_write_bytes(run_dir / "summary.json", json.dumps(summary).encode())
