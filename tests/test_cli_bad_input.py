"""Bad command input: one line naming the field and what is allowed, exit 2, nothing left on disk.

Each row is a command a user could type; nothing trains (every row fails before the
first step), so the whole file runs in seconds.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rwrl.cli import app
from rwrl.experiments.config import ConfigError, RunConfig
from rwrl.experiments.run import CONFIG_FILE, RunHooks, start_run

runner = CliRunner()
HUGE_SEED = str(2**70)  # ends in an OverflowError inside JAX unless refused up front


def _lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.strip()]


def _assert_one_line(result, pattern: str) -> str:
    """Exit 2 (a usage error), one non-empty line matching ``pattern``, no traceback."""
    assert result.exit_code == 2, result.output
    lines = _lines(result.output)
    assert len(lines) == 1, result.output
    assert re.search(pattern, lines[0]), lines[0]
    return lines[0]


@pytest.mark.parametrize("args, field", [
    (["--seed", HUGE_SEED], r"RunConfig\.seed must be an integer in \[0, 4294967295\]"),
    (["--seed", "-1"], r"RunConfig\.seed must be an integer in \[0, "),
    (["--env-kwarg", 'safety_spec={"enable": "yes"}'],
     r"RunConfig\.env_kwargs: safety_spec\['enable'\] = 'yes' is not a bool: allowed True or False"),
    (["--env-kwarg", "nosuchkey=3"],
     r"RunConfig\.env_kwargs: unknown key\(s\) \['nosuchkey'\]: allowed \['time_limit', 'pixels_width', "
     r"'pixels_height', 'pixels_camera', 'frame_stack'\] and the "
     r"challenge keywords \['combined_challenge', "),
    (["--env-kwarg", 'safety_spec={"bogus": 1}'],
     r"RunConfig\.env_kwargs: safety_spec: unknown key 'bogus'; allowed keys: \["),
    (["--env-kwarg", "safety_spec=notjson"],
     r"RunConfig\.env_kwargs: safety_spec must be a dict or None, got str 'notjson'"),
    (["--env-kwarg", "time_limit=0"], r"RunConfig\.env_kwargs: time_limit = 0: give an integer >= 1"),
    (["--eval-env-kwarg", 'delay_spec={"actions": -1}'],
     r"RunConfig\.eval_env_kwargs: delay_spec\['actions'\] = -1 is out of range"),
    (["--combined-challenge", "easy", "--env-kwarg", 'delay_spec={"actions": 1}'],
     r"RunConfig\.env_kwargs: combined_challenge='easy' sets the delay.*\['delay_spec'\]"),
    (["--steps", "abc"], r"Invalid value for '--steps'.*integer.*run --help` lists the options"),
    (["--steps", "0"], r"RunConfig\.steps must be a positive integer, got 0"),
    (["--num-envs", "2.5"], r"Invalid value for '--num-envs'"),
    (["--env", "cartpole-swingupp"],
     r"RunConfig\.env: unknown env 'cartpole-swingupp'; did you mean 'cartpole-swingup'.*`rwrl envs`"),
    (["--env", "boat-sail"], r"RunConfig\.env: unknown env 'boat-sail' \(`rwrl envs` lists"),
    (["--env", "boat"], r"RunConfig\.env must be '<domain>-<task>'.*`rwrl envs`"),
    (["--agent-config", "no_such_field=1"], r"RunConfig\.agent_config: unknown d4pg config field"),
    (["--agent-config", "batch_size=0"], r"RunConfig\.agent_config: batch_size=0"),
])
def test_bad_run_input_is_one_line_and_leaves_no_run_directory(tmp_path, args, field):
    out = tmp_path / "runs" / "r"
    result = runner.invoke(app, ["run", "--steps", "10", "--no-progress", "--out", str(out), *args])
    _assert_one_line(result, field)
    assert not (tmp_path / "runs").exists()  # not even the parent --out made


@pytest.mark.parametrize("args, field", [
    (["dataset", "create", "cartpole-swingup", "--size", "5", "--seed", HUGE_SEED],
     r"Invalid value for '--seed'.*4294967295"),
    (["dataset", "create", "cartpole-swingupp", "--size", "5"], r"task = 'cartpole-swingupp'"),
    (["dataset", "create", "cartpole-swingup", "--size", "five"], r"Invalid value for '--size'"),
    (["ope", "--dataset", "d", "--policies", "p", "--seed", HUGE_SEED], r"Invalid value for '--seed'"),
    (["ope", "--dataset", "d", "--policies", "p", "--steps", "abc"], r"Invalid value for '--steps'"),
    (["ope", "--dataset", "no-such-dataset", "--policies", "p"], r"no-such-dataset"),
    (["policies", "train", "cartpole-swingupp"], r"RunConfig\.env: unknown env.*'cartpole-swingup'"),
    (["policies", "train", "cartpole-swingup", "--env-kwarg", "nosuchkey=3"], r"nosuchkey"),
    (["policies", "train", "cartpole-swingup", "--seed", HUGE_SEED], r"Invalid value for '--seed'"),
    (["policies", "train", "cartpole-swingup", "--steps", "abc"], r"Invalid value for '--steps'"),
])
def test_bad_dataset_policy_and_ope_input_is_one_line(tmp_path, monkeypatch, args, field):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "datasets"))
    monkeypatch.chdir(tmp_path)
    out = ["--out", str(tmp_path / "out" / "o.json" if args[0] == "ope" else tmp_path / "out")]
    _assert_one_line(runner.invoke(app, [*args, *([] if args[0] == "dataset" else out)]), field)
    assert not (tmp_path / "out").exists()


SWEEP = """
[sweep]
name = "bad"
agents = ["d4pg"]
envs = ["cartpole-balance"]
seeds = 1
steps = 100
"""


@pytest.mark.parametrize("args, field", [
    (["--steps", "abc"], r"Invalid value for '--steps'"),
    (["--seeds", "0"], r"Invalid value for '--seeds'"),
    (["--envs", "cartpole-balanse"], r"\[sweep\] envs: unknown env 'cartpole-balanse'; did you mean "
                                     r"'cartpole-balance'.*`rwrl envs`"),
])
def test_bad_sweep_input_is_one_line_and_makes_no_sweep_directory(tmp_path, args, field):
    spec = tmp_path / "sweep.toml"
    spec.write_text(SWEEP)
    result = runner.invoke(app, ["sweep", str(spec), "--out", str(tmp_path / "out"), *args])
    _assert_one_line(result, field)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("seeds", [f"[{2**32}]", "[-1]"])
def test_a_sweep_file_seed_outside_the_run_seed_range_is_refused(tmp_path, seeds):
    spec = tmp_path / "sweep.toml"
    spec.write_text(SWEEP.replace("seeds = 1", f"seeds = {seeds}"))
    result = runner.invoke(app, ["sweep", "plan", str(spec)])
    _assert_one_line(result, r"\[sweep\] seeds = .*distinct integers in \[0, 4294967295\]")


def _failing_env(config, num_envs):
    raise ConfigError("RunConfig.env: the env does not build")


@pytest.mark.parametrize("existing", [False, True])
def test_a_run_that_fails_before_training_leaves_nothing_resume_trips_over(tmp_path, existing):
    """Past the up-front checks (here a failing env factory), start_run removes what it made."""
    out = tmp_path / "a" / "run"
    if existing:  # a folder the user made: kept, without the run's files
        out.mkdir(parents=True)
    with pytest.raises(ConfigError, match="does not build"):
        start_run(RunConfig(steps=10), out, RunHooks(env_factory=_failing_env, progress=False))
    if existing:
        assert out.is_dir() and not (out / CONFIG_FILE).exists() and not (out / "metrics.jsonl").exists()
    else:
        assert not (tmp_path / "a").exists()


def test_usage_errors_of_every_command_are_one_line_but_no_arguments_still_print_the_help():
    assert _assert_one_line(runner.invoke(app, ["nosuchcommand"]), r"No such command 'nosuchcommand'")
    assert _assert_one_line(runner.invoke(app, ["run", "--stps", "3"]), r"--stps.*--steps")
    helped = runner.invoke(app, ["sweep"])
    assert "Usage" in helped.output and "status" in helped.output
