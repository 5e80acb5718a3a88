"""Runs of the real agents on the real envs: reproducible, learning, and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from rwrl.cli.run import register
from rwrl.experiments import RunConfig, RunHooks, start_run
from rwrl.experiments.run import make_agent_for
from rwrl.metrics.episode_file import read_rows

SMALL_D4PG = {"policy_hidden_sizes": (64, 64), "critic_hidden_sizes": (64, 64), "batch_size": 128,
              "policy_learning_rate": 3e-4, "critic_learning_rate": 3e-4}


def _without_wall_clock(rows):
    return [{k: v for k, v in row.items() if k != "wall_time"} for row in rows]


# DMPO's variants are behind the slow marker: D4PG's keep the path checked in the default suite.
AGENTS = ["d4pg", pytest.param("dmpo", marks=pytest.mark.slow)]


@pytest.mark.parametrize("agent", AGENTS)
def test_the_same_seed_gives_the_same_metrics(tmp_path, agent):
    config = RunConfig(agent=agent, env="cartpole-balance", steps=480, num_envs=4, eval_every=240,
                       eval_episodes=2, checkpoint_every=10_000, env_kwargs={"time_limit": 40},
                       agent_config={"batch_size": 32, "min_replay_size": 64,
                                     "samples_per_insert": 16.0, "policy_hidden_sizes": (32, 32),
                                     "critic_hidden_sizes": (32, 32)}, report=False)
    hooks = RunHooks(progress=False)
    for name in ("a", "b"):
        start_run(config, tmp_path / name, hooks)
    rows_a = read_rows(tmp_path / "a" / "metrics.jsonl")
    rows_b = read_rows(tmp_path / "b" / "metrics.jsonl")
    assert len(rows_a) == 480 // 40 + 3 * 2  # 12 training episodes, 3 evaluations of 2
    assert any("learner/" in key for key in rows_a[-3])  # updates did happen
    assert _without_wall_clock(rows_a) == _without_wall_clock(rows_b)
    other = start_run(config.replace(seed=1), tmp_path / "c", hooks)
    rows_c = read_rows(tmp_path / "c" / "metrics.jsonl")
    assert other["counters"]["env_steps"] == 480
    assert [r["return"] for r in rows_c] != [r["return"] for r in rows_a]


@pytest.mark.slow  # a learning check (about a minute); the point-mass task keeps one in the default suite
def test_d4pg_learns_to_balance_the_cartpole(tmp_path):
    # Random actions score 360 on cartpole-balance and doing nothing ~745 (the
    # pole falls slowly); a balancing policy scores close to 1000. With small
    # networks and one update per env step, D4PG balances within 8,000 steps.
    config = RunConfig(agent="d4pg", env="cartpole-balance", steps=8000, seed=0, num_envs=4,
                       eval_every=4000, eval_episodes=4, checkpoint_every=8000, report=False,
                       agent_config={**SMALL_D4PG, "samples_per_insert": 128.0})
    summary = start_run(config, tmp_path / "run", RunHooks(progress=False))
    evals = [r["return"] for r in read_rows(tmp_path / "run" / "metrics.jsonl")
             if r["phase"] == "eval" and r["env_steps"] == 8000]
    assert summary["counters"]["env_steps"] == 8000
    assert np.mean(evals) > 900, evals


def _app():
    app = typer.Typer()
    register(app)
    return app


@pytest.mark.parametrize("agent", AGENTS)
def test_the_run_command_trains_resumes_and_reports(tmp_path, agent):
    out = tmp_path / "run"
    args = ["run", "--agent", agent, "--env", "cartpole-balance", "--steps", "160",
            "--num-envs", "2", "--eval-every", "80", "--eval-episodes", "1", "--out", str(out),
            "--env-kwarg", "time_limit=40", "--agent-config", "batch_size=16",
            "--agent-config", "policy_hidden_sizes=[16]", "--agent-config", "critic_hidden_sizes=[16]",
            "--agent-config", "min_replay_size=32", "--no-progress"]
    result = CliRunner().invoke(_app(), args)
    assert result.exit_code == 0, result.output
    assert f"report: {out / 'report.html'}" in result.output
    config = json.loads((out / "config.json").read_text())
    assert config["agent"]["policy_hidden_sizes"] == [16]
    assert config["run"]["env_kwargs"] == {"time_limit": 40}
    resumed = CliRunner().invoke(_app(), ["run", "--resume", str(out), "--steps", "240", "--no-progress"])
    assert resumed.exit_code == 0, resumed.output
    assert "done: 240 env steps" in resumed.output
    # The same command again continues the run; other settings are refused, named.
    again = CliRunner().invoke(_app(), [*args[:6], "240", *args[7:]])
    assert again.exit_code == 0 and "holds this run already" in again.output, again.output
    other = CliRunner().invoke(_app(), [*args, "--seed", "5"])
    assert other.exit_code == 2 and "other settings (seed, steps)" in other.output, other.output


def test_the_run_command_evaluates_on_its_own_env_kwargs(tmp_path):
    """--eval-env-kwarg changes the evaluation envs only (a held-out setting)."""
    out = tmp_path / "run"
    args = ["run", "--agent", "d4pg", "--env", "cartpole-balance", "--steps", "80",
            "--num-envs", "2", "--eval-every", "80", "--eval-episodes", "1", "--out", str(out),
            "--env-kwarg", "time_limit=40", "--eval-env-kwarg", "time_limit=20",
            "--agent-config", "batch_size=16", "--agent-config", "min_replay_size=32",
            "--no-progress"]
    result = CliRunner().invoke(_app(), args)
    assert result.exit_code == 0, result.output
    config = json.loads((out / "config.json").read_text())
    assert config["run"]["eval_env_kwargs"] == {"time_limit": 20}
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    lengths = {r["phase"]: r["length"] for r in rows if "length" in r}
    assert lengths == {"train": 40, "eval": 20}, lengths


@pytest.mark.parametrize("args, message", [
    (["--num-envs", "0"], "RunConfig.num_envs must be a positive integer, got 0"),
    (["--combined-challenge", "extreme"], "RunConfig.combined_challenge must be"),
    (["--agent-config", "no_such_field=1"], "RunConfig.agent_config: .*no_such_field"),
    (["--agent-config", "oops"], "expected KEY=VALUE"),
])
def test_the_run_command_names_the_bad_option(tmp_path, args, message):
    result = CliRunner().invoke(_app(), ["run", "--out", str(tmp_path / "r"), "--no-progress", *args])
    assert result.exit_code == 2
    import re
    assert re.search(message, result.output), result.output


def test_resume_refuses_new_run_options(tmp_path):
    result = CliRunner().invoke(_app(), ["run", "--resume", str(tmp_path), "--seed", "3"])
    assert result.exit_code == 2 and "only --steps may change" in result.output


def test_a_run_with_observation_history_feeds_the_agent_the_stack(tmp_path):
    seen = []

    def agent_factory(config, obs_size, action_size):
        seen.append(obs_size)
        return make_agent_for(config, obs_size, action_size)

    config = RunConfig(agent="d4pg", env="cartpole-balance", steps=160, num_envs=2, eval_every=80,
                       eval_episodes=1, env_kwargs={"time_limit": 40}, observation_history=3,
                       agent_config={"batch_size": 16, "min_replay_size": 32,
                                     "policy_hidden_sizes": (16,), "critic_hidden_sizes": (16,)},
                       report=False)
    summary = start_run(config, tmp_path / "run", RunHooks(agent_factory=agent_factory,
                                                           progress=False))
    assert seen == [3 * (5 + 1)]  # three observations of 5 and three actions of 1
    assert summary["counters"]["env_steps"] == 160
    recorded = json.loads((tmp_path / "run" / "config.json").read_text())
    assert recorded["run"]["observation_history"] == 3
