"""`rwrl sweep --backend ray`: the same results as the local backend; a lost worker's run resumes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from rwrl.experiments.sweeps.run import run_sweep
from rwrl.metrics import sweep_results
from rwrl.metrics.sweep_results import read_sweep
from tests.experiments.sweep_fixtures import (assert_every_row_once, rows_of, tiny_plan,
                                              without_wall_clock)

import ray  # noqa: E402,F401  (in the test extra: the Ray backend is tested in CI)

REPO = Path(__file__).resolve().parents[2]


def _without_wall_clock_rows(run_dir: Path) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "wall_time"} for row in rows_of(run_dir)]


def test_ray_and_local_backends_give_the_same_runs_and_rows(local_sweep, tmp_path):
    plan = local_sweep["plan"]
    counts = run_sweep(plan, tmp_path / "ray", backend="ray", workers=2, progress=False)
    assert counts["done"] == 4
    local, ray_dir = local_sweep["dir"], tmp_path / "ray"
    assert sorted(p.name for p in (ray_dir / "runs").iterdir()) == \
        sorted(p.name for p in (local / "runs").iterdir())
    for run in plan.runs:
        a, b = local / "runs" / run.run_id, ray_dir / "runs" / run.run_id
        assert (a / "config.json").read_text() == (b / "config.json").read_text()
        assert _without_wall_clock_rows(a) == _without_wall_clock_rows(b)
    _, runs_a, episodes_a = read_sweep(local)
    _, runs_b, episodes_b = read_sweep(ray_dir)
    pd.testing.assert_frame_equal(without_wall_clock(episodes_a), without_wall_clock(episodes_b))
    pd.testing.assert_frame_equal(without_wall_clock(runs_a), without_wall_clock(runs_b))


def _lock_holder_mid_run(out: Path) -> int | None:
    """The pid training a run that has a checkpoint past step 0 and has not finished."""
    for run in sorted(out.glob("runs/*")):
        ahead = any(int(p.name.split("-")[1]) > 0 for p in run.glob("checkpoints/ckpt-*"))
        if ahead and not (run / "summary.json").exists():
            try:
                return int((run / ".lock").read_text())
            except (OSError, ValueError):
                continue  # between sessions
    return None


@pytest.mark.slow
def test_a_lost_ray_worker_is_retried_and_its_run_resumes(tmp_path):
    spec, plan = tiny_plan(tmp_path, steps=400)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "rwrl.cli", "sweep", str(spec), "--out", str(out),
               "--backend", "ray", "--workers", "2", "--no-progress"]
    sweep = subprocess.Popen(command, env={**os.environ, "PYTHONPATH": str(REPO)},
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 300
    while (pid := _lock_holder_mid_run(out)) is None:
        assert sweep.poll() is None, sweep.stdout.read().decode()[-2000:]
        assert time.monotonic() < deadline, "no checkpoint within 300 s"
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)  # the Ray worker process training that run
    output = sweep.communicate(timeout=600)[0].decode()
    assert sweep.returncode == 0, output[-2000:]
    assert sweep_results.statuses(out) == {r.run_id: "done" for r in plan.runs}
    sessions = []
    for run in plan.runs:
        assert_every_row_once(out / "runs" / run.run_id, steps=400)
        summary = json.loads((out / "runs" / run.run_id / "summary.json").read_text())
        sessions.append(summary["counters"]["session"])
    assert max(sessions) >= 1  # the retried task resumed its run from a checkpoint
