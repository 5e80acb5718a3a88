"""The rwrl command: envs and rollout (run and report are tested in tests/experiments)."""

import json

from typer.testing import CliRunner

from rwrl.cli import app

runner = CliRunner()


def test_envs_lists_the_fourteen_tasks_and_the_rate_control_env():
    result = runner.invoke(app, ["envs"])
    assert result.exit_code == 0, result.output
    ids = [line for line in result.output.splitlines() if line.startswith("rwrl/")]
    assert len(ids) == 15 and ids[-1].startswith("rwrl/ratecontrol-v0")
    assert "rwrl/manipulator-insert-peg-v0" in ids and "rwrl/humanoid-run-v0" in ids
    assert "slider_accel" in result.output and "thigh_length" in result.output


def test_rollout_prints_a_table_per_task_and_writes_its_report(tmp_path):
    result = runner.invoke(app, ["rollout", "--domain", "cartpole", "--num-envs", "2",
                                 "--time-limit", "30", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    rows = json.loads((tmp_path / "rollout.json").read_text())
    assert [r["env_id"] for r in rows] == ["rwrl/cartpole-swingup-v0", "rwrl/cartpole-balance-v0"]
    for row in rows:
        assert 0 <= row["episode_return_mean"] <= 30  # rewards in [0, 1] over 30 steps
        assert set(row["violations"]) == {"slider_pos", "slider_accel", "balance_velocity"}
        assert row["steps_per_second"] > 0
    assert f"report: {tmp_path / 'rollout.json'}" in result.output
    assert "violations/slider_pos" in result.output


def test_rollout_of_an_unknown_domain_is_an_error():
    result = runner.invoke(app, ["rollout", "--domain", "boat"])
    assert result.exit_code != 0
    assert "no task for domain 'boat'" in result.output


def test_a_warning_of_a_command_is_one_line(capsys):
    """A resume's notes (a skipped checkpoint, what is not reproduced) read as one line each."""
    import warnings
    from rwrl.cli.app import _one_line_warnings
    with _one_line_warnings():
        warnings.warn("ckpt-000000001000 skipped: state.npz does not verify", UserWarning)
    assert capsys.readouterr().err == "warning: ckpt-000000001000 skipped: state.npz does not verify\n"
