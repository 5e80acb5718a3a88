"""The loop keeps the replay ratio exactly, in fused calls, and a resumed run continues its update count."""

from __future__ import annotations

import pytest

from rwrl.experiments import RunConfig, RunHooks, resume_run, start_run

SMALL = {"batch_size": 8, "min_replay_size": 20, "n_step": 1, "replay_ratio": 0.75,
         "policy_hidden_sizes": (8,), "critic_hidden_sizes": (8,)}


class Killed(Exception):
    pass


def _config(**changes):
    return RunConfig(**{"agent": "d4pg", "env": "cartpole-balance", "steps": 160, "num_envs": 2,
                        "eval_every": 1000, "eval_episodes": 1, "checkpoint_every": 60,
                        "env_kwargs": {"time_limit": 30}, "agent_config": SMALL, "report": False,
                        **changes})


def test_the_replay_ratio_counts_exactly(tmp_path):
    # 2 envs x 0.75 updates per env step: 1.5 updates per vector step once the replay holds 20
    # transitions, the fraction carried: 1, 2, 1, 2, ... updates, each step's in one fused call.
    learning_steps, counts = [], []

    def watch(trainer):
        counts.append(trainer.counters.updates)
        learning_steps.append(len(trainer.replay) >= 20)

    summary = start_run(_config(), tmp_path / "run", RunHooks(on_step=watch, progress=False))
    eligible = sum(learning_steps)
    assert summary["counters"]["updates"] == int(1.5 * eligible) and eligible > 50
    per_step = [b - a for a, b in zip(counts, counts[1:]) if b > a]
    assert per_step[:4] == [1, 2, 1, 2]
    assert summary["counters"]["compiles"] == 1 + 2  # one call of each count compiles


def test_a_run_killed_mid_way_resumes_to_the_same_update_count(tmp_path):
    whole = start_run(_config(), tmp_path / "whole", RunHooks(progress=False))
    calls = {"n": 0}

    def kill(trainer):
        calls["n"] += 1
        if calls["n"] == 47:  # 94 env steps: past the checkpoint at 60
            raise Killed

    with pytest.raises(Killed):
        start_run(_config(), tmp_path / "killed", RunHooks(on_step=kill, progress=False))
    resumed = resume_run(tmp_path / "killed", hooks=RunHooks(progress=False))
    assert resumed["counters"]["updates"] == whole["counters"]["updates"] > 0
    assert resumed["final_eval_return"] == whole["final_eval_return"]
