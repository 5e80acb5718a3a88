"""`rwrl sweep` on the local backend: run directories, results, status, resume, failures."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from rwrl.experiments.sweeps.run import SweepPlanError, record_plan, run_sweep
from rwrl.metrics import sweep_results
from rwrl.metrics.sweep_results import read_sweep
from tests.experiments.sweep_fixtures import (assert_every_row_once, rows_of, sweep_cli, tiny_plan,
                                              without_wall_clock)

REPO = Path(__file__).resolve().parents[2]


def test_a_sweep_writes_one_ordinary_run_directory_per_run(local_sweep):
    plan, out = local_sweep["plan"], local_sweep["dir"]
    assert local_sweep["counts"]["done"] == 4 and local_sweep["counts"]["failed"] == 0
    ids = sorted(p.name for p in (out / "runs").iterdir())
    assert ids == sorted(r.run_id for r in plan.runs)
    assert "d4pg__cartpole-balance__delay_spec.actions=2__s1" in ids
    for run in plan.runs:
        path = out / "runs" / run.run_id
        recorded = json.loads((path / "config.json").read_text())["run"]
        assert recorded == json.loads(json.dumps(run.config.to_dict()))  # exactly the planned run
        assert (path / "summary.json").exists() and not (path / "error.txt").exists()
        assert_every_row_once(path, steps=200)
    recorded_plan = json.loads((out / "sweep.json").read_text())
    assert [r["run_id"] for r in recorded_plan["runs"]] == [r.run_id for r in plan.runs]


def test_the_results_hold_every_episode_row_with_the_runs_config(local_sweep):
    plan, out = local_sweep["plan"], local_sweep["dir"]
    plan_dict, runs, episodes = read_sweep(out)
    assert plan_dict["name"] == "tiny"
    for run in plan.runs:
        mine = episodes[episodes["run_id"] == run.run_id]
        rows = rows_of(out / "runs" / run.run_id)
        assert len(mine) == len(rows)
        assert mine["return"].tolist() == pytest.approx([r["return"] for r in rows])
        assert set(mine["config.delay_spec.actions"]) == {run.config.env_kwargs["delay_spec"]["actions"]}
        assert set(mine["config.seed"]) == {run.config.seed}
    assert set(episodes["config.agent"]) == {"d4pg"}
    assert set(episodes["config.env_kwargs.time_limit"]) == {50}
    assert runs["status"].tolist() == ["done"] * 4
    assert runs["return/final"].notna().all()
    assert {"violations/slider_pos", "return/convergence_episode", "return/absolute_regret",
            "return/normalized_regret", "return/normalized_instability", "divergences",
            "config.delay_spec.actions"} <= set(runs.columns)
    # the final return is the mean of the last evaluation (window = its eval_episodes = 1)
    for _, row in runs.iterrows():
        evals = [r for r in rows_of(out / "runs" / row["run_id"]) if r["phase"] == "eval"]
        assert row["return/final"] == pytest.approx(evals[-1]["return"])
    assert pd.read_csv(out / "results" / "runs.csv")["run_id"].tolist() == runs["run_id"].tolist()


def test_status_prints_the_counts(local_sweep):
    result = CliRunner().invoke(sweep_cli(), ["sweep", "status", str(local_sweep["dir"])])
    assert result.exit_code == 0, result.output
    assert "sweep tiny: 4 runs" in result.output
    assert "done 4  failed 0  running 0  partial 0  pending 0" in result.output


def test_running_the_same_sweep_again_skips_finished_runs(local_sweep):
    out, plan = local_sweep["dir"], local_sweep["plan"]
    before = {p: p.stat().st_mtime_ns for p in out.glob("runs/*/metrics.jsonl")}
    _, runs_before, episodes_before = read_sweep(out)
    started = time.perf_counter()
    counts = run_sweep(plan, out, workers=2, progress=False)
    assert counts["done"] == 4
    _, runs_after, episodes_after = read_sweep(out)  # the results are rewritten alike
    pd.testing.assert_frame_equal(without_wall_clock(runs_before), without_wall_clock(runs_after))
    pd.testing.assert_frame_equal(episodes_before, episodes_after)
    assert {p: p.stat().st_mtime_ns for p in out.glob("runs/*/metrics.jsonl")} == before
    assert time.perf_counter() - started < local_sweep["seconds"] / 2


def test_a_directory_with_another_plan_is_refused_naming_the_difference(local_sweep, tmp_path):
    _, longer = tiny_plan(tmp_path, steps=300)
    with pytest.raises(SweepPlanError, match=r"another plan: run d4pg__cartpole-balance__"
                                             r"delay_spec.actions=0__s0: steps 200 -> 300"):
        run_sweep(longer, local_sweep["dir"], progress=False)
    result = CliRunner().invoke(sweep_cli(), ["sweep", str(tmp_path / "tiny.toml"),
                                         "--out", str(local_sweep["dir"]), "--no-progress"])
    assert result.exit_code == 2 and "steps 200 -> 300" in result.output


def test_a_plan_that_only_adds_seeds_grows_the_recorded_one_and_removing_runs_is_refused(tmp_path):
    _, plan = tiny_plan(tmp_path)
    seed0 = dataclasses.replace(plan, runs=tuple(r for r in plan.runs if r.config.seed == 0))
    out = tmp_path / "out"
    (out / "runs").mkdir(parents=True)
    assert len(record_plan(out, seed0)["runs"]) == 2
    grown = record_plan(out, plan)  # seeds 0 and 1: the two seed-1 runs are added
    assert [r["run_id"] for r in grown["runs"]] == [r.run_id for r in plan.runs]
    assert json.loads((out / "sweep.json").read_text()) == grown
    assert set(sweep_results.statuses(out, grown).values()) == {"pending"}
    with pytest.raises(SweepPlanError, match=r"another plan: 2 runs removed \(d4pg__cartpole-balance__"):
        record_plan(out, seed0)
    assert json.loads((out / "sweep.json").read_text()) == grown  # a refused plan changes nothing


def test_a_run_that_fails_is_recorded_and_the_others_finish(tmp_path):
    # A NaN learning rate turns the policy's parameters into NaN at the first
    # update; its actions are then NaN and the env refuses them (a real failure).
    spec, plan = tiny_plan(tmp_path, extra='"agent_config.policy_learning_rate" = [1e-4, nan]\n')
    plan = dataclasses.replace(plan, runs=tuple(
        r for r in plan.runs if r.config.seed == 0 and r.settings["delay_spec.actions"] == 0))
    counts = run_sweep(plan, tmp_path / "out", workers=2, progress=False)
    assert counts["done"] == 1 and counts["failed"] == 1
    failed = next(r for r in plan.runs if r.config.agent_config["policy_learning_rate"] != 1e-4)
    error = (tmp_path / "out" / "runs" / failed.run_id / "error.txt").read_text()
    assert error.splitlines()[0].startswith("ValueError: ") and "NaN" in error.splitlines()[0]
    assert "Traceback" in error
    result = CliRunner().invoke(sweep_cli(), ["sweep", "status", str(tmp_path / "out")])
    assert "done 1  failed 1" in result.output
    assert f"failed {failed.run_id}: ValueError: " in result.output
    _, runs, _ = read_sweep(tmp_path / "out")
    assert sorted(runs["status"]) == ["done", "failed"]
    assert runs.loc[runs["status"] == "failed", "error"].iloc[0].startswith("ValueError")


def _checkpoint_mid_run(out: Path) -> bool:
    """Whether some run has a checkpoint past step 0 and has not finished."""
    for run in out.glob("runs/*"):
        if not (run / "summary.json").exists() and any(
                int(p.name.split("-")[1]) > 0 for p in run.glob("checkpoints/ckpt-*")):
            return True
    return False


def test_a_killed_sweep_continues_with_every_row_exactly_once(tmp_path):
    spec, plan = tiny_plan(tmp_path, steps=400)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "rwrl.cli", "sweep", str(spec), "--out", str(out),
               "--workers", "2", "--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    sweep = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while not _checkpoint_mid_run(out):
        assert sweep.poll() is None, sweep.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline, "no checkpoint within 300 s"
        time.sleep(0.1)
    sweep.send_signal(signal.SIGKILL)
    sweep.wait()
    statuses = sweep_results.statuses(out)
    assert "done" not in statuses.values() or len(set(statuses.values())) > 1  # killed mid-sweep
    counts = run_sweep(plan, out, workers=2, progress=False)
    assert counts["done"] == 4, sweep_results.statuses(out)
    for run in plan.runs:
        assert_every_row_once(out / "runs" / run.run_id, steps=400)
    sessions = [json.loads((out / "runs" / r.run_id / "summary.json").read_text())["counters"]["session"]
                for r in plan.runs]
    assert max(sessions) >= 1  # a killed run resumed from its checkpoint, not from step 0
    _, runs, episodes = read_sweep(out)
    assert len(episodes) == sum(len(rows_of(out / "runs" / r.run_id)) for r in plan.runs)


@pytest.mark.slow
def test_ctrl_c_stops_the_sweep_and_its_workers_and_the_next_run_continues(tmp_path):
    spec, plan = tiny_plan(tmp_path, steps=400)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "rwrl.cli", "sweep", str(spec), "--out", str(out),
               "--workers", "2", "--no-progress"]
    sweep = subprocess.Popen(command, env={**os.environ, "PYTHONPATH": str(REPO)},
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 300
    while not _checkpoint_mid_run(out):
        assert sweep.poll() is None and time.monotonic() < deadline
        time.sleep(0.1)
    workers = {int((p).read_text()) for p in out.glob("runs/*/.lock") if p.read_text().strip()}
    sweep.send_signal(signal.SIGINT)
    output = sweep.communicate(timeout=60)[0].decode()
    assert sweep.returncode == 130, output[-2000:]
    assert f"interrupted; continue with: rwrl sweep run {spec} --out {out} --workers 2 " \
           f"--no-progress" in output
    for pid in workers:  # the workers stopped with the sweep
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert "running" not in sweep_results.statuses(out).values()
    assert run_sweep(plan, out, workers=2, progress=False)["done"] == 4
    for run in plan.runs:
        assert_every_row_once(out / "runs" / run.run_id, steps=400)
