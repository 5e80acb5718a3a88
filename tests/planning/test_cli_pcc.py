"""`rwrl pcc run`: a tiny run writes its parameters, history and summary; bad input is one line."""

import json

import pytest
from typer.testing import CliRunner

from rwrl.cli import app

runner = CliRunner()


@pytest.mark.slow  # 20-40 s; PCC's losses, training and control have unit tests in the default suite
def test_a_tiny_pcc_run_trains_controls_and_writes_its_files(tmp_path):
    result = runner.invoke(app, ["pcc", "run", "--task", "planar", "--epochs", "1", "--samples", "64",
                                 "--eval-tasks", "1", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["task"] == "planar" and len(summary["percent_in_goal"]) == 1
    assert 0.0 <= summary["mean_percent_in_goal"] <= 100.0
    assert len(json.loads((tmp_path / "history.json").read_text())) == 1
    assert (tmp_path / "params.npz").is_file()


def test_an_unknown_task_or_ablation_is_refused_in_one_line(tmp_path):
    result = runner.invoke(app, ["pcc", "run", "--task", "plane", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "task 'plane' is not allowed: one of planar, swing, balance" in result.output
    result = runner.invoke(app, ["pcc", "run", "--ablation", "none", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "ablation 'none' is not allowed" in result.output
    assert not (tmp_path / "summary.json").exists()
