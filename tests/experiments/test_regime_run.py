"""Runs with a regime_spec: every regime evaluated, the training regime in the rows, resume, CLI, sweep.

The loop's mechanics use the toy agent on the real cartpole task (fast);
one real `rwrl run` of D4PG checks the command line, the summary and the report.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rwrl.cli.app import app
from rwrl.experiments.config import RunConfig
from rwrl.experiments.regime_eval import ConcatVectorEnv
from rwrl.experiments.run import RunHooks, _build_trainer, make_env_for, resume_run, start_run
from rwrl.metrics.episode_file import read_rows
from tests.experiments.fakes import Killed, kill_after, tiny_agent_factory
from tests.experiments.run_compare import assert_same_run

LENGTHS = [{"pole_length": 1.0}, {"pole_length": 2.0}, {"pole_length": 0.5}]
SPEC = {"regimes": LENGTHS, "episodes_per_regime": 4}


def _config(**changes) -> RunConfig:
    """1200 env steps of 2 envs, 50-step episodes: each env's 12 episodes run regimes 0, 1, 2
    four episodes each, so the switches fall at env steps 400 and 800 (2 envs x 4 x 50)."""
    defaults = dict(agent="d4pg", env="cartpole-swingup", steps=1200, num_envs=2, eval_every=200,
                    eval_episodes=1, checkpoint_every=300,
                    env_kwargs={"time_limit": 50, "regime_spec": SPEC}, report=False)
    return RunConfig(**{**defaults, **changes})


def _hooks(on_step=None) -> RunHooks:
    return RunHooks(agent_factory=tiny_agent_factory, env_factory=make_env_for, on_step=on_step,
                    progress=False)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("regime") / "run"
    summary = start_run(_config(), run_dir, _hooks())
    return summary, read_rows(run_dir / "metrics.jsonl"), run_dir


def test_the_eval_env_is_one_pinned_copy_per_regime():
    trainer = _build_trainer(_config(eval_episodes=2), Path("unused"), _hooks())
    env = trainer.eval_env
    assert isinstance(env, ConcatVectorEnv) and env.num_envs == 3 * 2
    _, info = env.reset(seed=0)
    assert info["regime"].tolist() == [0, 0, 1, 1, 2, 2]
    lengths = [sub.unwrapped.batched.get_parameter(i, "pole_length")
               for sub in env.envs for i in range(2)]
    assert lengths == [1.0, 1.0, 2.0, 2.0, 0.5, 0.5]
    # a run without regimes keeps its single eval env
    plain = _build_trainer(_config(env_kwargs={"time_limit": 50}), Path("unused"), _hooks())
    assert not isinstance(plain.eval_env, ConcatVectorEnv)


def test_rows_carry_the_training_and_the_evaluated_regimes(reference):
    summary, rows, _ = reference
    train = [(r["env_steps"], r["regime"]) for r in rows if r["phase"] == "train"]
    # every 100 env steps both envs end an episode; episodes 0-3 regime 0, 4-7 regime 1, 8-11 regime 2
    assert train == [(100 * (e + 1), e // 4) for e in range(12) for _ in range(2)]
    evals = [r for r in rows if r["phase"] == "eval"]
    by_evaluation = {}
    for r in evals:
        by_evaluation.setdefault(r["evaluation"], []).append((r["regime"], r["train_regime"]))
    # evaluations at 0, 200, ..., 1200; each runs the three regimes. The one at 400 comes after
    # the last episodes of regime 0 ended and before regime 1's begin: still regime 0's
    expected_train = [0, 0, 0, 1, 1, 2, 2]
    assert by_evaluation == {k: [(regime, t) for regime in range(3)]
                             for k, t in enumerate(expected_train)}
    assert {"continual/average_performance", "continual/forgetting", "continual/forgetting/0",
            "continual/performance/2"} <= set(summary)
    assert summary["continual/scale"] == 50.0 and summary["continual/forgetting/2"] == 0.0


# Vector steps (2 env steps each): killed at 150 (env step 300, before that step's checkpoint)
# it resumes from step 0; at 220 (env step 440, in regime 1) from the checkpoint at 300, in
# regime 0 with an autoreset pending: the resumed run crosses the switch at 400 again.
@pytest.mark.parametrize("kill_at", [150, 220])
def test_a_killed_run_resumes_to_the_very_same_run(tmp_path, reference, kill_at):
    with pytest.raises(Killed):
        start_run(_config(), tmp_path / "run", _hooks(kill_after(kill_at)))
    resume_run(tmp_path / "run", hooks=_hooks())
    assert_same_run(tmp_path / "run", reference[2])


def test_rwrl_run_with_a_regime_spec_writes_the_continual_metrics_and_the_figure(tmp_path):
    spec = json.dumps({"regimes": [{"pole_length": 1.0}, {"pole_length": 2.0}],
                       "episodes_per_regime": 3})
    out = tmp_path / "run"
    result = CliRunner().invoke(app, [
        "run", "--agent", "d4pg", "--env", "cartpole-swingup", "--steps", "1200", "--num-envs", "2",
        "--eval-every", "300", "--eval-episodes", "1", "--checkpoint-every", "600",
        "--agent-config", "batch_size=16", "--agent-config", "min_replay_size=64",
        "--agent-config", "policy_hidden_sizes=[8]", "--agent-config", "critic_hidden_sizes=[8]",
        "--env-kwarg", "time_limit=100", "--env-kwarg", f"regime_spec={spec}", "--no-progress",
        "--out", str(out)])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["continual/scale"] == 100.0
    assert set(summary) >= {"continual/forgetting/0", "continual/forgetting/1"}
    page = (out / "report.html").read_text()
    assert "Return on each regime over training" in page and "continual/forgetting" in page
    rows = read_rows(out / "metrics.jsonl")
    # each env's six 100-step episodes: three in regime 0, three in regime 1 (switch at 600)
    assert [r["regime"] for r in rows if r["phase"] == "train"] == [0] * 6 + [1] * 6


def test_a_bad_regime_spec_on_the_command_line_is_one_line_naming_the_field(tmp_path):
    result = CliRunner().invoke(app, [
        "run", "--env", "cartpole-swingup", "--steps", "100", "--out", str(tmp_path / "run"),
        "--env-kwarg", 'regime_spec={"regimes": [{"pole_length": 9}], "episodes_per_regime": 2}'])
    assert result.exit_code == 2
    assert "regime_spec['regimes'][0]['pole_length'] = 9 is out of range" in result.output
    assert not (tmp_path / "run").exists()


SWEEP = """
[sweep]
name = "regimes"
agents = ["d4pg"]
envs = ["cartpole-swingup"]
seeds = 1
steps = 100
[fixed]
"regime_spec.regimes" = [{{pole_length = 1.0}}, {{pole_length = 2.0}}]
[axes]
"regime_spec.episodes_per_regime" = [10, {count}]
"""


def test_a_sweep_file_sets_regime_spec_fields_by_dotted_path(tmp_path):
    from rwrl.experiments.sweeps.plan import SweepSpecError, load_plan
    path = tmp_path / "sweep.toml"
    path.write_text(SWEEP.format(count=50))
    plan = load_plan(path)
    assert [run.config.env_kwargs["regime_spec"] for run in plan.runs] == [
        {"regimes": [{"pole_length": 1.0}, {"pole_length": 2.0}], "episodes_per_regime": n}
        for n in (10, 50)]
    path.write_text(SWEEP.format(count=0))
    with pytest.raises(SweepSpecError, match=r"regime_spec\['episodes_per_regime'\] = 0 is out "
                                             r"of range"):
        load_plan(path)
