"""``rwrl explain`` on a tiny ``rwrl run``: the table, explain.json, the trees, the weights; one-line errors."""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from rwrl.cli.app import app
from rwrl.explain import explain_run
from rwrl.explain.explain_run import ExplainSettings, explain_checkpoint
from tests.tiny_run import train_tiny_run

FAST = ["--iterations", "2", "--episodes", "2", "--held-out-episodes", "1",
        "--eval-episodes", "2", "--time-limit", "50"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    return train_tiny_run(tmp_path_factory.mktemp("explain") / "run", policy_hidden_sizes=(8,))


def test_explain_writes_the_table_the_report_and_the_trees(tiny_run, tmp_path):
    out = tmp_path / "explain"
    result = CliRunner().invoke(app, ["explain", str(tiny_run), "--depth", "1,2", "--out", str(out), *FAST])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].endswith("q-gap weights, 64 candidate actions")
    assert lines[1].split()[:4] == ["surrogate", "depth", "R^2", "act"]
    assert [line.split()[:2] for line in lines[2:5]] == [["linear", "-"], ["tree", "1"], ["tree", "2"]]
    report = json.loads((out / "explain.json").read_text())
    assert report["observation_names"] == ["position[0]", "position[1]", "position[2]",
                                           "velocity[0]", "velocity[1]"]
    # a D4PG run has a critic: VIPER's Q-gap weights by default, from its own online critic
    assert report["settings"]["weights"] is None
    weights = report["weights"]
    assert (weights["kind"], weights["candidates"]) == ("q-gap", 64) and isinstance(weights["candidate_seed"], int)
    assert weights["critic"] == "d4pg online critic: the return of the reward"
    trees = [row for row in report["surrogates"] if row["surrogate"] == "tree"]
    for row in report["surrogates"]:
        assert len(row["iterations"]) == 2 and row["iterations"][0]["states"] == 100  # 2 x 50 steps
        assert row["action_error"] >= 0 and row["r2"] <= 1
    for row in trees:
        assert set(row["importances"]) <= set(report["observation_names"])
        text = (out / f"tree-depth{row['depth']}.txt").read_text()
        assert text.startswith("|--- ") and any(name in text for name in report["observation_names"])
        assert (out / f"tree-depth{row['depth']}.png").read_bytes()[:4] == b"\x89PNG"


def test_uniform_weights_reproduce_the_pipeline_before_the_critic_was_wired(tiny_run, tmp_path, monkeypatch):
    out = tmp_path / "uniform"
    result = CliRunner().invoke(app, ["explain", str(tiny_run), "--depth", "1", "--no-linear", "--weights",
                                      "uniform", "--out", str(out), *FAST])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0].endswith("uniform weights")
    uniform = json.loads((out / "explain.json").read_text())
    assert uniform["settings"]["weights"] == "uniform"
    assert uniform["weights"] == {"kind": "uniform", "candidates": 0, "candidate_seed": None, "critic": None}
    # the old pipeline called viper with no weigh (plain DAgger): force that call, with the
    # q-gap default otherwise, and the surrogates must come out the same to the last digit
    original = explain_run.viper
    monkeypatch.setattr(explain_run, "viper", lambda *args, weigh, **kwargs: original(*args, **kwargs))
    settings = ExplainSettings(depths=(1,), linear=False, iterations=2, episodes=2, held_out_episodes=1,
                               eval_episodes=2, time_limit=50)
    before = explain_checkpoint(tiny_run, tmp_path / "before", settings)
    assert before["weights"]["kind"] == "q-gap"  # built, then dropped by the old call
    assert before["surrogates"] == uniform["surrogates"]
    assert before["teacher_return"] == uniform["teacher_return"]


def test_q_gap_weights_on_a_run_without_a_critic_are_a_one_line_error(tiny_run, tmp_path):
    run = tmp_path / "bc-run"  # the tiny run, relabelled as a BC run: refused before it is loaded
    shutil.copytree(tiny_run, run)
    config = json.loads((run / "config.json").read_text())
    config["run"]["agent"] = "bc"
    (run / "config.json").write_text(json.dumps(config))
    result = CliRunner().invoke(app, ["explain", str(run), "--weights", "q-gap", "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "weights = 'q-gap': the run's agent 'bc' gives no Q function" in result.output
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize("args, message", [
    (["--depth", "0"], "depth 0 must be an integer >= 1"),
    (["--depth", ""], "is empty"),
    (["--weights", "q_gap"], "weights = 'q_gap': allowed q-gap, uniform"),
])
def test_bad_depths_are_one_line_errors(tiny_run, args, message):
    result = CliRunner().invoke(app, ["explain", str(tiny_run), *args])
    assert result.exit_code == 2 and message in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_a_run_without_a_checkpoint_is_a_one_line_error(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.json").write_text("{}")
    result = CliRunner().invoke(app, ["explain", str(run)])
    assert result.exit_code == 2 and "has no checkpoint under" in result.output
    assert len(result.output.strip().splitlines()) == 1
