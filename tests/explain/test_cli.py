"""``rwrl explain`` on a tiny ``rwrl run``: the table, explain.json, the trees; one-line errors."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from rwrl.cli.app import app
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
    assert lines[1].split()[:4] == ["surrogate", "depth", "R^2", "act"]
    assert [line.split()[:2] for line in lines[2:5]] == [["linear", "-"], ["tree", "1"], ["tree", "2"]]
    report = json.loads((out / "explain.json").read_text())
    assert report["observation_names"] == ["position[0]", "position[1]", "position[2]",
                                           "velocity[0]", "velocity[1]"]
    trees = [row for row in report["surrogates"] if row["surrogate"] == "tree"]
    for row in report["surrogates"]:
        assert len(row["iterations"]) == 2 and row["iterations"][0]["states"] == 100  # 2 x 50 steps
        assert row["action_error"] >= 0 and row["r2"] <= 1
    for row in trees:
        assert set(row["importances"]) <= set(report["observation_names"])
        text = (out / f"tree-depth{row['depth']}.txt").read_text()
        assert text.startswith("|--- ") and any(name in text for name in report["observation_names"])
        assert (out / f"tree-depth{row['depth']}.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("args, message", [
    (["--depth", "0"], "depth 0 must be an integer >= 1"),
    (["--depth", ""], "is empty"),
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
