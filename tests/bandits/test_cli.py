"""``rwrl bandits``: the lists, a run's files (exact values where the run is deterministic),
the seed convention, and bad input as one line (exit 2) with nothing written."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from rwrl.bandits import log_grid, make_env, run
from rwrl.cli import app
from rwrl.core.seeding import spawn_seeds
from rwrl.metrics.bandit_results import COLUMNS

runner = CliRunner()


def _run(out: Path, *args: str, progress: bool = False):
    return runner.invoke(app, ["bandits", "run", "--out", str(out), *args,
                               *([] if progress else ["--no-progress"])])


def _table(out: Path) -> pd.DataFrame:
    return pd.read_parquet(out / "regret.parquet")


def test_envs_and_policies_list_every_name_with_its_facts():
    envs = runner.invoke(app, ["bandits", "envs"])
    assert envs.exit_code == 0, envs.output
    assert re.search(r"^rested-step +arms 2 +rested +sigma 0\.4472", envs.output, re.M)
    assert re.search(r"^restless-parametric-anv +arms 10 +restless", envs.output, re.M)
    assert re.search(r"^follower +contextual", envs.output, re.M)
    assert "parameters: sigma=0.4472, switch=7500" in envs.output
    policies = runner.invoke(app, ["bandits", "policies"])
    assert policies.exit_code == 0, policies.output
    for name in ("swa", "wswa", "cto", "d-cto", "ucb1", "fewa", "pooled", "windowed"):
        assert re.search(rf"^  {re.escape(name)} ", policies.output, re.M), name
    assert "parameters: alpha=0.2, sigma=0.4472, window=None" in policies.output


def test_a_noiseless_run_writes_the_hand_checked_regret_rewards_and_values(tmp_path):
    # tests/bandits/test_simulate.py's instance: switch 2, SWA with M = 1, sigma 0. Pulls
    # 0, 1, 1, 1, 0, 0 pay 0.5, 1, 1, 0.4, 0.5, 0.5; the oracle 1, 1, 0.5, 0.5, 0.5, 0.5.
    out = tmp_path / "swa"
    result = _run(out, "--env", "rested-step", "--policy", "swa", "--horizon", "6", "--seeds",
                  "2", "--set", "env.sigma=0", "--set", "switch=2", "--set", "window=1",
                  "--grid", "all")
    assert result.exit_code == 0, result.output
    frame = _table(out)
    assert tuple(frame.columns) == COLUMNS
    assert [str(frame[c].dtype) for c in ("seed", "instance_seed", "horizon", "t")] == \
        ["int64", "uint64", "int64", "int64"]
    assert frame["env"].tolist() == ["rested-step"] * 12
    assert frame["policy"].tolist() == ["swa"] * 12
    assert frame["seed"].tolist() == [0] * 6 + [1] * 6
    assert frame["instance_seed"].tolist() == [s for s in spawn_seeds(0, 2) for _ in range(6)]
    assert frame["horizon"].tolist() == [6] * 12
    assert frame["t"].tolist() == [1, 2, 3, 4, 5, 6] * 2
    np.testing.assert_allclose(frame["regret"], [0.5, 0.5, 0.0, 0.1, 0.1, 0.1] * 2, atol=1e-12)
    np.testing.assert_allclose(frame["reward"], [0.5, 1.0, 1.0, 0.4, 0.5, 0.5] * 2)
    np.testing.assert_allclose(frame["policy_value"], [0.5, 1.5, 2.5, 2.9, 3.4, 3.9] * 2)
    np.testing.assert_allclose(frame["oracle_value"], [1.0, 2.0, 2.5, 3.0, 3.5, 4.0] * 2)

    summary = json.loads((out / "summary.json").read_text())
    final = summary["final_regret"]
    assert final["n"] == 2 and final["std"] == pytest.approx(0.0, abs=1e-12)
    assert final["mean"] == final["ci_low"] == final["ci_high"] == pytest.approx(0.1)
    assert summary["counters"] == {"rounds": 6, "instances": 2}
    assert summary["policy_details"] == {"window": 1}
    assert summary["final_oracle_value"] == pytest.approx(4.0)
    assert summary["wall_clock_s"] > 0
    config = json.loads((out / "config.json").read_text())
    assert config == {"kind": "bandit", "env": "rested-step", "policy": "swa", "horizon": 6,
                      "seeds": 2, "seed": 0, "env_params": {"sigma": 0, "switch": 2},
                      "policy_params": {"window": 1}, "grid": "all"}
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "regret.parquet",
                                                    "summary.json"]
    lines = result.output.splitlines()
    assert lines[0].startswith("done: swa on rested-step, T 6, 2 seeds, ")
    assert lines[1] == "final regret 0.1 (95% CI [0.1, 0.1], over seeds)"


def test_the_default_grid_is_the_log_grid_and_progress_is_reported(tmp_path):
    out = tmp_path / "ucb1"
    result = _run(out, "--env", "rested-step", "--policy", "ucb1", "--horizon", "400",
                  "--seeds", "1", progress=True)
    assert result.exit_code == 0, result.output
    assert _table(out)["t"].tolist() == log_grid(400).tolist()
    assert "ucb1 on rested-step: 100% 400/400 round" in result.stderr
    assert "no interval with one seed" in result.stdout


def test_seed_convention_instance_i_is_the_run_seeded_with_the_ith_spawned_seed(tmp_path):
    args = ["--env", "rested-parametric-anv", "--policy", "thompson", "--horizon", "120",
            "--seed", "5", "--grid", "all"]
    assert _run(tmp_path / "three", *args, "--seeds", "3").exit_code == 0
    assert _run(tmp_path / "two", *args, "--seeds", "2").exit_code == 0
    three, two = _table(tmp_path / "three"), _table(tmp_path / "two")
    # numpy's SeedSequence.spawn: child i does not depend on N, so seeds 0, 1 are the same
    pd.testing.assert_frame_equal(three[three["seed"] < 2].reset_index(drop=True), two)
    for i, seed in enumerate(spawn_seeds(5, 3)):
        single = run(make_env("rested-parametric-anv"), "thompson", 120, seed=[seed])
        rows = three[three["seed"] == i]
        assert (rows["instance_seed"] == seed).all()
        np.testing.assert_array_equal(rows["regret"].to_numpy(), single.regret[0])


def test_a_follower_run_writes_the_same_schema_and_values_that_add_up(tmp_path):
    out = tmp_path / "pooled"
    result = _run(out, "--env", "follower", "--policy", "pooled", "--horizon", "40",
                  "--seeds", "2", "--set", "num_accounts=3", "--set", "drift=0.1",
                  "--set", "alpha=0.5", "--grid", "all")
    assert result.exit_code == 0, result.output
    frame = _table(out)
    assert tuple(frame.columns) == COLUMNS and len(frame) == 80
    for _, rows in frame.groupby("seed"):
        np.testing.assert_allclose(rows["policy_value"], np.cumsum(rows["reward"]))
        np.testing.assert_allclose(rows["regret"], rows["oracle_value"] - rows["policy_value"],
                                   atol=1e-9)
        assert (np.diff(rows["regret"]) >= -1e-12).all()  # regret only grows
    config = json.loads((out / "config.json").read_text())
    assert config["env_params"] == {"num_accounts": 3, "drift": 0.1}
    assert config["policy_params"] == {"alpha": 0.5}


def test_the_same_command_again_runs_nothing_and_other_settings_are_refused(tmp_path):
    out = tmp_path / "r"
    args = ["--env", "rested-step", "--policy", "ucb1", "--horizon", "50", "--seeds", "2"]
    assert _run(out, *args).exit_code == 0
    before = (out / "regret.parquet").stat().st_mtime_ns, (out / "summary.json").read_bytes()
    again = _run(out, *args)
    assert again.exit_code == 0, again.output
    assert again.output.splitlines()[0] == f"{out} holds this run finished already: nothing to run"
    assert ((out / "regret.parquet").stat().st_mtime_ns, (out / "summary.json").read_bytes()) \
        == before
    other = _run(out, *args[:-1], "3")
    assert other.exit_code == 2
    assert other.output.strip() == (f"error: {out} holds a run with other settings (seeds): "
                                    "pick another --out")


def _assert_one_line(result, pattern: str) -> None:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert re.search(pattern, lines[0]), lines[0]


@pytest.mark.parametrize("args, pattern", [
    (["--env", "rested-stp", "--policy", "swa"],
     r"^error: unknown env 'rested-stp': allowed rested-parametric-anv, .*restless-step, "
     r"follower \(`rwrl bandits envs` lists them\)$"),
    (["--env", "rested-step", "--policy", "sw"],
     r"^error: unknown policy 'sw' for env 'rested-step': allowed cto, d-cto, .*wswa "
     r"\(`rwrl bandits policies` lists them\)$"),
    (["--env", "follower", "--policy", "swa"],
     r"^error: policy 'swa' is a rotting-bandit policy, not one of env 'follower': allowed "
     r"per_account, pooled, shrinkage, windowed$"),
    (["--env", "rested-parametric-av", "--policy", "ucb1", "--horizon", "9"],
     r"^error: horizon = 9 is shorter than the number of arms K = 10 of env "
     r"'rested-parametric-av': allowed horizon >= K$"),
    (["--env", "rested-step", "--policy", "swa", "--set", "env.sigma=nan"],
     r"^error: env\.sigma = 'nan' is not allowed: a finite number$"),
    (["--env", "rested-step", "--policy", "swa", "--set", "policy.sigma=Infinity"],
     r"^error: policy\.sigma = inf is not allowed: a finite number$"),
    (["--env", "rested-step", "--policy", "ucb1", "--set", "scale=-Infinity"],
     r"^error: scale = -inf is not allowed: a finite number$"),
    (["--env", "rested-step", "--policy", "swa", "--set", "window=0"],
     r"^error: window = 0 is not allowed: an integer >= 1$"),
    (["--env", "rested-step", "--policy", "sw-ucb", "--set", "window=0"],
     r"^error: window = 0 is not allowed: an integer >= 1$"),
    (["--env", "follower", "--policy", "windowed", "--set", "window=0"],
     r"^error: window = 0 is not allowed: an integer >= 1$"),
    (["--env", "rested-step", "--policy", "ucb1", "--set", "window=5"],
     r"^error: 'window' is not a parameter of env 'rested-step' \(allowed sigma, switch\) nor "
     r"of policy 'ucb1' \(allowed scale\)$"),
    (["--env", "rested-step", "--policy", "swa", "--set", "sigma=0"],
     r"^error: sigma is a parameter of env 'rested-step' and of policy 'swa': write env\.sigma"),
    (["--env", "rested-step", "--policy", "swa", "--set", "env.sigma=-1"],
     r"^error: sigma = -1 is not allowed: a finite number in \[0\.0, inf\]$"),
    (["--env", "rested-step", "--policy", "swa", "--grid", "linear"],
     r"^error: grid = 'linear' is not allowed: one of log, all$"),
    (["--env", "rested-step", "--policy", "swa", "--horizon", "0"],
     r"^error: Invalid value for '--horizon'"),
    (["--env", "rested-step", "--policy", "swa", "--seeds", "0"],
     r"^error: Invalid value for '--seeds'"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, args, pattern):
    if "--horizon" not in args:
        args = [*args, "--horizon", "100"]
    out = tmp_path / "runs" / "r"
    _assert_one_line(_run(out, *args), pattern)
    assert not (tmp_path / "runs").exists()
