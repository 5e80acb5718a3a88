"""A real `rwrl run` small enough for a test: D4PG (or DMPO) on cartpole-swingup, 600 steps in seconds."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from typer.testing import CliRunner

from rwrl.cli.app import app


def train_tiny_run(out: Path, policy_hidden_sizes: Sequence[int] = (8,), agent: str = "d4pg") -> Path:
    """Train it into ``out`` (50-step episodes keep rollouts short) and return ``out``."""
    hidden = "[" + ",".join(str(h) for h in policy_hidden_sizes) + "]"
    result = CliRunner().invoke(app, [
        "run", "--agent", agent, "--env", "cartpole-swingup", "--steps", "600", "--num-envs", "4",
        "--eval-every", "600", "--eval-episodes", "1", "--checkpoint-every", "600",
        "--agent-config", "batch_size=16", "--agent-config", "min_replay_size=64",
        "--agent-config", "samples_per_insert=2.0", "--agent-config", f"policy_hidden_sizes={hidden}",
        "--agent-config", "critic_hidden_sizes=[8]", "--env-kwarg", "time_limit=50", "--no-progress",
        "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out
