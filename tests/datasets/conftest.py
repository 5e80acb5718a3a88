"""A tiny behaviour-policy directory, trained once per session through the real CLI."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from rwrl.cli.data import register

#: a D4PG small enough to train 1,000 steps in seconds; 100-step episodes keep evaluation short.
TINY_ARGS = ["--steps", "1000", "--checkpoints", "2", "--episodes", "3", "--num-envs", "4",
             "--agent-config", "batch_size=32", "--agent-config", "min_replay_size=64",
             "--agent-config", "samples_per_insert=4.0",
             "--agent-config", "policy_hidden_sizes=[16]", "--agent-config", "critic_hidden_sizes=[16]",
             "--env-kwarg", "time_limit=100", "--no-progress"]


def cli() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


def train_tiny(out, task="cartpole-swingup", challenge="none"):
    """Run ``rwrl policies train`` with the tiny settings; return the CLI result."""
    return CliRunner().invoke(cli(), ["policies", "train", task, "--challenge", challenge,
                                      "--out", str(out), *TINY_ARGS])


@pytest.fixture(scope="session")
def tiny_policies(tmp_path_factory):
    """The policies directory of a 1,000-step cartpole-swingup run (none)."""
    out = tmp_path_factory.mktemp("policies") / "cartpole-swingup-none"
    result = train_tiny(out)
    assert result.exit_code == 0, result.output
    return out
