"""A bandit sweep (``[sweep] kind = "bandit"``) through ``rwrl sweep`` and ``rwrl report``.

The tiny sweep (2 policies x 2 seeds, T = 200) runs once per module on the local
backend; its run directories are what ``rwrl bandits run`` writes.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from rwrl.cli import app
from rwrl.experiments.sweeps.plan import load_plan
from rwrl.experiments.sweeps.status import check_run
from rwrl.report.bandit_plots import log_slopes

runner = CliRunner()

TINY = """
[sweep]
kind = "bandit"
name = "tiny-bandits"
envs = ["rested-step"]
policies = ["swa", "ucb1"]
horizons = [200]
seeds = 2

[env_params]
switch = 50

[policy_params.swa]
alpha = 0.5
"""
IDS = ["swa__rested-step__T200", "ucb1__rested-step__T200"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bandit-sweep")
    spec = tmp / "tiny.toml"
    spec.write_text(TINY)
    out = tmp / "out"
    first = runner.invoke(app, ["sweep", "run", str(spec), "--out", str(out), "--no-progress"])
    return {"spec": spec, "out": out, "tmp": tmp, "first": first}


def test_the_sweep_runs_every_run_and_status_says_all_done(tiny):
    assert tiny["first"].exit_code == 0, tiny["first"].output
    assert tiny["first"].output.splitlines()[:2] == [
        f"sweep tiny-bandits: 2 runs -> {tiny['out']}",
        "done 2  failed 0  running 0  partial 0  pending 0  broken 0"]
    status = runner.invoke(app, ["sweep", "status", str(tiny["out"])])
    assert status.exit_code == 0, status.output
    assert status.output.splitlines() == [
        "sweep tiny-bandits: 2 runs", "done 2  failed 0  running 0  partial 0  pending 0  broken 0"]
    plan = json.loads((tiny["out"] / "sweep.json").read_text())
    assert plan["kind"] == "bandit" and [r["run_id"] for r in plan["runs"]] == IDS
    runs = pd.read_parquet(tiny["out"] / "results" / "runs.parquet")
    assert runs["status"].tolist() == ["done", "done"]
    assert runs["config.policy"].tolist() == ["swa", "ucb1"]
    assert runs["final_regret"].notna().all()


def test_a_sweep_run_is_the_run_rwrl_bandits_run_writes(tiny, tmp_path):
    run_dir = tiny["out"] / "runs" / IDS[0]
    assert sorted(p.name for p in run_dir.iterdir()) == ["config.json", "regret.parquet",
                                                        "summary.json"]
    single = tmp_path / "single"
    result = runner.invoke(app, ["bandits", "run", "--env", "rested-step", "--policy", "swa",
                                 "--horizon", "200", "--seeds", "2", "--set", "switch=50",
                                 "--set", "alpha=0.5", "--out", str(single), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert (single / "config.json").read_bytes() == (run_dir / "config.json").read_bytes()
    pd.testing.assert_frame_equal(pd.read_parquet(single / "regret.parquet"),
                                  pd.read_parquet(run_dir / "regret.parquet"))


def test_a_second_run_of_the_sweep_runs_nothing(tiny):
    files = sorted((tiny["out"] / "runs").glob("*/*"))
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in files}
    again = runner.invoke(app, ["sweep", "run", str(tiny["spec"]), "--out", str(tiny["out"]),
                                "--no-progress"])
    assert again.exit_code == 0, again.output
    assert "done 2  failed 0" in again.output
    assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in files} == before


def test_the_report_draws_regret_against_t_and_prints_the_slopes(tiny):
    result = runner.invoke(app, ["report", str(tiny["out"])])
    assert result.exit_code == 0, result.output
    out = tiny["out"]
    lines = result.output.splitlines()
    assert lines[:2] == [f"report: {out / 'report.html'}",
                         f"regret slopes: {out / 'report-regret-slopes.csv'}"]
    assert re.match(r"^t +rested-step +swa +200 +2 +[\d.]+ +-?\d\.\d\d \[-?\d\.\d\d, -?\d\.\d\d\]",
                    lines[3]), lines[3]
    figure = out / "report-regret.png"
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (out / "report.html").read_text()
    assert "data:image/png;base64," in page and "slope" in page
    table = pd.read_csv(out / "report-regret-slopes.csv")
    assert table["policy"].tolist() == ["swa", "ucb1"] and (table["n_seeds"] == 2).all()
    assert (table["slope_ci_low"] <= table["slope"] + 1e-12).all()
    assert (table["slope"] <= table["slope_ci_high"] + 1e-12).all()
    assert not (out / "report-horizons.png").exists()  # one horizon: no R(T) against T


def test_the_log_log_slope_of_a_power_law_is_its_exponent():
    t = [10.0, 100.0, 1000.0]
    assert log_slopes(t, [[3 * x ** (2 / 3) for x in t]])[0] == pytest.approx(2 / 3)
    assert log_slopes(t, [[0.0, 0.0, 5.0]])[0] != log_slopes(t, [[0.0, 0.0, 5.0]])[0]  # NaN


def test_a_truncated_bandit_config_is_broken_and_an_unfinished_run_runs_again(tiny, tmp_path):
    import shutil
    out = tmp_path / "copy"
    shutil.copytree(tiny["out"], out)
    config = out / "runs" / IDS[0] / "config.json"
    config.write_text(config.read_text()[:20])
    assert check_run(config.parent).status == "broken"
    (out / "runs" / IDS[1] / "summary.json").unlink()  # killed before it finished
    check = check_run(out / "runs" / IDS[1])
    assert check.status == "partial" and "runs again from round 1" in check.note
    status = runner.invoke(app, ["sweep", "status", str(out)])
    assert status.exit_code == 1
    assert "done 0  failed 0  running 0  partial 1  pending 0  broken 1" in status.output
    assert f"broken {IDS[0]}: {config}: not a bandit run config" in status.output \
        or f"broken {IDS[0]}: {config}: unreadable" in status.output


@pytest.mark.parametrize("change, pattern", [
    (("policies = [\"swa\", \"ucb1\"]", "policies = [\"swa\", \"pooled\"]"),
     r"\[sweep\] policies: 'pooled' is no policy of the envs \['rested-step'\]"),
    (("horizons = [200]", "horizons = [1]"),
     r"run swa on rested-step, horizon 1: horizon = 1 is shorter than the number of arms K = 2"),
    (("alpha = 0.5", "alpha = nan"), r"policy\.alpha = nan is not allowed: a finite number"),
    (("alpha = 0.5", "window = 0"), r"window = 0 is not allowed: an integer >= 1"),
    (("switch = 50", "noise = 1"), r"env 'rested-step' takes no parameter 'noise'"),
    (("seeds = 2", "seeds = 2\nagents = [\"d4pg\"]"), r"\[sweep\]: unknown key 'agents'"),
])
def test_a_bad_bandit_sweep_file_is_one_line_exit_2(tmp_path, change, pattern):
    spec = tmp_path / "bad.toml"
    spec.write_text(TINY.replace(*change))
    result = runner.invoke(app, ["sweep", "plan", str(spec)])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and re.search(pattern, lines[0]), result.output


def test_the_example_sweep_file_plans_swa_wswa_and_ucb1_on_the_rested_step_instance():
    plan = load_plan(Path(__file__).parents[2] / "sweeps" / "bandits-rested.toml")
    assert plan.kind == "bandit"
    assert [r.run_id for r in plan.runs] == [f"{p}__rested-step__T30000"
                                             for p in ("swa", "wswa", "ucb1")]


def test_rl_sweep_plans_are_recorded_as_before(tmp_path):
    from tests.experiments.sweep_fixtures import tiny_plan
    _, plan = tiny_plan(tmp_path)
    assert plan.kind == "rl" and "kind" not in plan.to_dict()
