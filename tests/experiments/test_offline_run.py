"""Offline runs end to end: a tiny real Minari dataset, CRR, online evaluation, kill and resume."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from rwrl.experiments.config import ConfigError, RunConfig
from rwrl.experiments.run import RunHooks, is_finished, resume_run, start_run
from rwrl.metrics.episode_file import read_rows
from tests.agents.offline_fixtures import collect_cartpole
from tests.experiments.fakes import Killed, kill_after

DATASET = "rwrl/cartpole-tiny-v0"
#: CRR small enough to compile and run 60 updates in seconds, one update per call (so a
#: loop iteration is an update and the kills below name updates).
TINY_CRR = {"policy_hidden_sizes": [16], "critic_hidden_sizes": [16], "num_atoms": 11,
            "batch_size": 32, "target_update_period": 10, "updates_per_call": 1}


@pytest.fixture(scope="module")
def datasets_path(tmp_path_factory):
    """The dataset: 4 random episodes of cartpole-swingup cut at 15 steps (60 transitions)."""
    path = tmp_path_factory.mktemp("datasets")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MINARI_DATASETS_PATH", str(path))
        collect_cartpole(DATASET, episodes=4, time_limit=15)
    return path


@pytest.fixture(autouse=True)
def _datasets_env(datasets_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(datasets_path))


def tiny_offline_config(**changes) -> RunConfig:
    """60 updates, an evaluation every 20 (2 episodes of 15 steps), checkpoints every 25."""
    defaults = dict(agent="crr", dataset=DATASET, steps=60, eval_every=20, eval_episodes=2,
                    checkpoint_every=25, agent_config=TINY_CRR, report=False)
    return RunConfig(**{**defaults, **changes})


def _hooks(kill_at: int | None = None) -> RunHooks:
    return RunHooks(on_step=kill_after(kill_at) if kill_at else None, progress=False)


def _without_wall_time(rows):
    return [{k: v for k, v in r.items() if k != "wall_time"} for r in rows]


@pytest.fixture(scope="module")
def reference(tmp_path_factory, datasets_path):
    run_dir = tmp_path_factory.mktemp("reference") / "run"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MINARI_DATASETS_PATH", str(datasets_path))
        summary = start_run(tiny_offline_config(), run_dir, _hooks())
    return run_dir, summary, read_rows(run_dir / "metrics.jsonl")


def test_an_offline_run_writes_eval_rows_with_constraints_and_a_summary(reference):
    run_dir, summary, rows = reference
    assert summary["counters"]["updates"] == 60 and summary["dataset_transitions"] == 60
    # Evaluations at updates 0, 20, 40 and 60, two episodes each, of the dataset's
    # env (15 steps: its recorded time limit), never a training row.
    assert [(r["phase"], r["evaluation"], r["updates"], r["env_steps"]) for r in rows] == [
        ("eval", e, 20 * e, 20 * e) for e in range(4) for _ in range(2)]
    assert all(r["length"] == 15 for r in rows)
    assert {"violations/slider_pos", "violation_rate/slider_pos", "cost"} <= set(rows[0])
    assert "learner/critic_loss" in rows[-1] and "learner/critic_loss" not in rows[0]
    assert summary["final_normalized_score"] is None  # the tiny dataset has no reference scores
    recorded = json.loads((run_dir / "config.json").read_text())
    assert recorded["run"]["dataset"] == DATASET and recorded["agent"]["policy_hidden_sizes"] == [16]
    assert is_finished(run_dir)


# Kills before the first checkpoint after 0, just after one (25), between
# evaluations and checkpoints, and one update before the end.
@pytest.mark.parametrize("kill_at", [3, 26, 45, 59])
def test_a_killed_offline_run_resumes_to_the_same_rows(tmp_path, reference, kill_at):
    _, ref_summary, ref_rows = reference
    with pytest.raises(Killed):
        start_run(tiny_offline_config(), tmp_path / "run", _hooks(kill_at=kill_at))
    assert not is_finished(tmp_path / "run")
    summary = resume_run(tmp_path / "run", hooks=_hooks())
    rows = read_rows(tmp_path / "run" / "metrics.jsonl")
    # The same updates on the same batches with the same keys: the same returns
    # and losses, to the bit.
    assert _without_wall_time(rows) == _without_wall_time(ref_rows)
    assert summary["counters"]["updates"] == 60 and summary["counters"]["session"] == 1
    assert summary["final_eval_return"] == ref_summary["final_eval_return"]


def test_updates_per_call_cuts_calls_at_evaluations_checkpoints_and_the_end_and_resumes_the_same(tmp_path):
    """8 updates per call: calls end at 8, 16, 20 (evaluation), 24, 25 (checkpoint), 32, 40, 48, 50, 56, 60."""
    config = tiny_offline_config(agent_config={**TINY_CRR, "updates_per_call": 8})
    seen = []
    summary = start_run(config, tmp_path / "whole", RunHooks(on_step=lambda t: seen.append(t.counters.updates),
                                                             progress=False))
    assert seen == [8, 16, 20, 24, 25, 32, 40, 48, 50, 56, 60]
    whole = read_rows(tmp_path / "whole" / "metrics.jsonl")
    assert [r["updates"] for r in whole] == [20 * e for e in range(4) for _ in range(2)]
    assert summary["counters"]["updates"] == 60
    # Killed after the 5th call (update 25, just checkpointed) and after the 8th (48): the same rows.
    for kill_at in (5, 8):
        run = tmp_path / f"killed{kill_at}"
        with pytest.raises(Killed):
            start_run(config, run, _hooks(kill_at=kill_at))
        resume_run(run, hooks=_hooks())
        assert _without_wall_time(read_rows(run / "metrics.jsonl")) == _without_wall_time(whole)
    with pytest.raises(ConfigError, match="updates_per_call=0: must be an integer >= 1"):
        start_run(tiny_offline_config(agent_config={**TINY_CRR, "updates_per_call": 0}), tmp_path / "bad",
                  _hooks())


def test_offline_agents_need_a_dataset_and_a_missing_dataset_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"RunConfig.dataset must be a dataset for the offline agent 'crr'"):
        RunConfig(agent="crr")
    with pytest.raises(ConfigError, match="observation_history 0"):
        tiny_offline_config(observation_history=2)
    with pytest.raises(ConfigError, match="'rwrl/absent-v0'"):
        start_run(tiny_offline_config(dataset="rwrl/absent-v0"), tmp_path / "run", _hooks())


def test_the_command_trains_crr_offline(tmp_path):
    from rwrl.cli import app
    args = ["run", "--agent", "crr", "--dataset", DATASET, "--steps", "20", "--eval-every", "20",
            "--eval-episodes", "2", "--out", str(tmp_path / "run"), "--no-progress"]
    for key, value in TINY_CRR.items():
        args += ["--agent-config", f"{key}={json.dumps(value)}"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "done: 20 learner updates on rwrl/cartpole-tiny-v0" in result.output
    assert len(read_rows(tmp_path / "run" / "metrics.jsonl")) == 4


OFFLINE_SWEEP = f"""
[sweep]
name = "offline-tiny"
agents = ["bc", "crr"]
envs = ["cartpole-swingup"]
seeds = 1
steps = 40

[fixed]
eval_every = 20
eval_episodes = 1
checkpoint_every = 20
dataset = "{DATASET}"
"agent_config.policy_hidden_sizes" = [16]
"agent_config.batch_size" = 32

[[levels]]
name = "bc"
agents = ["bc"]

[[levels]]
name = "crr"
agents = ["crr"]
"agent_config.critic_hidden_sizes" = [16]
"agent_config.num_atoms" = 11
"""


def test_a_sweep_runs_offline_agents_on_a_dataset(tmp_path):
    """Offline runs count updates, not env steps: the sweep records them done, with their updates."""
    from rwrl.experiments.sweeps.plan import load_plan
    from rwrl.experiments.sweeps.run import run_sweep
    from rwrl.metrics.sweep_results import read_sweep
    spec = tmp_path / "offline.toml"
    spec.write_text(OFFLINE_SWEEP)
    counts = run_sweep(load_plan(spec), tmp_path / "sweep", workers=1, progress=False)
    assert counts["done"] == 2 and counts["failed"] == 0, counts
    _, runs, _ = read_sweep(tmp_path / "sweep")
    assert sorted(runs["config.agent"]) == ["bc", "crr"]
    assert runs["updates"].tolist() == [40, 40]
    assert runs["env_steps"].isna().all()
