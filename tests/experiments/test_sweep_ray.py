"""`rwrl sweep --backend ray` on a real local Ray: the same results as the local backend; a
lost worker's run resumes in the same command; Ray stopping under the sweep ends it with exit 1,
one error line and the command that continues it."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from rwrl.metrics import sweep_results
from rwrl.metrics.sweep_results import read_sweep
from tests.experiments.sweep_fixtures import (assert_every_row_once, rows_of, sweep_cli, tiny_plan,
                                              without_wall_clock)

import ray  # noqa: E402,F401  (in the test extra: the Ray backend is tested in CI)

REPO = Path(__file__).resolve().parents[2]


def _without_wall_clock_rows(run_dir: Path) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "wall_time"} for row in rows_of(run_dir)]


# about 80 s on a quiet 2-core machine (a Ray start and two sweeps): in CI's integrations step
# (`make test-integrations`), not the default suite
@pytest.mark.integrations
def test_ray_and_local_backends_give_the_same_runs_and_rows(local_sweep, tmp_path):
    # The Ray driver runs in a child process, not in pytest's: a driver leaves its SIGTERM handler
    # (sys.exit) and a native core that ends its process with status 1, printing nothing, when
    # its node is lost. Twice a default `make test` under load ended in that way (status 1, no
    # summary) a few tests after this one (2026-12-06); not reproduced in three tries since.
    plan = local_sweep["plan"]
    command = [sys.executable, "-m", "rwrl.cli", "sweep", "run", str(local_sweep["spec"]),
               "--out", str(tmp_path / "ray"), "--backend", "ray", "--workers", "2", "--no-progress"]
    done = subprocess.run(command, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout.decode()[-2000:] + done.stderr.decode()[-2000:]
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
    assert "done 4  failed 0  running 0  partial 0  pending 0  broken 0" in output.splitlines()
    _assert_every_run_done_with_every_row_once(out, plan, steps=400)
    sessions = [json.loads((out / "runs" / run.run_id / "summary.json").read_text())
                ["counters"]["session"] for run in plan.runs]
    assert max(sessions) >= 1  # the retried task resumed its run from a checkpoint


def _assert_every_run_done_with_every_row_once(out: Path, plan, steps: int) -> None:
    """Every run done, its rows each once, and the results holding each row once."""
    assert sweep_results.statuses(out) == {r.run_id: "done" for r in plan.runs}
    for run in plan.runs:
        assert_every_row_once(out / "runs" / run.run_id, steps=steps)
    episodes = read_sweep(out)[2]
    assert len(episodes) == sum(len(rows_of(out / "runs" / r.run_id)) for r in plan.runs)


def _first_run_started(out: Path, timeout: float = 300) -> bool:
    deadline = time.monotonic() + timeout
    while not any(out.glob("runs/*/config.json")):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _not_running(out: Path, timeout: float = 120) -> dict[str, str]:
    """The runs' statuses once no process holds any of them (a lost Ray's workers exit)."""
    deadline = time.monotonic() + timeout
    while "running" in (statuses := sweep_results.statuses(out)).values():
        assert time.monotonic() < deadline, statuses
        time.sleep(0.5)
    return statuses


def _error_and_continue_lines(output: str) -> tuple[list[str], str]:
    lines = output.splitlines()
    return [line for line in lines if line.startswith("error: ")], lines[-1]


# slow: 10-107 s here (a Ray start, a sweep, a shutdown), and a fresh-clone `make test` died
# without a summary near this point once (not reproduced alone): kept out of the default suite.
@pytest.mark.slow
def test_ray_shut_down_under_the_sweep_ends_it_with_exit_1_and_one_error_line(tmp_path):
    """Before, the shutdown ended ray.wait in Ray's SystemExit(0), so the command exited 0, or,
    landing between two calls, the next one started a fresh, empty Ray of its own."""
    import ray
    spec, plan = tiny_plan(tmp_path)
    out = tmp_path / "out"
    stopper = threading.Thread(target=lambda: _first_run_started(out) and ray.shutdown(), daemon=True)
    stopper.start()
    result = CliRunner().invoke(sweep_cli(), ["sweep", "run", str(spec), "--out", str(out),
                                              "--backend", "ray", "--workers", "2", "--no-progress"])
    stopper.join()
    assert result.exit_code == 1, result.output
    errors, last = _error_and_continue_lines(result.output)
    assert len(errors) == 1 and errors[0].startswith(
        "error: the Ray cluster was lost during the sweep ("), errors
    command = ["rwrl", "sweep", "run", str(spec), "--out", str(out), "--backend", "ray",
               "--workers", "2", "--no-progress"]
    assert last.endswith(f" of 4 runs are not done; continue with: {shlex.join(command)}")
    assert not ray.is_initialized()  # no fresh Ray was started by a Ray call after the loss
    assert set(_not_running(out).values()) - {"done"}  # the runs in flight were stopped


def _raylet_of(pid: int) -> int:
    """The pid of the raylet that the local Ray of process ``pid`` started (its child)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)
            if fields[0].endswith("(raylet") and int(fields[1].split()[1]) == pid:
                return int(stat.parent.name)
        except (OSError, ValueError, IndexError):
            continue  # the process ended
    raise AssertionError(f"process {pid} has no raylet child")


@pytest.mark.slow
def test_a_lost_ray_node_ends_the_sweep_with_exit_1_and_its_command_finishes_it(tmp_path):
    spec, plan = tiny_plan(tmp_path, steps=400)
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "rwrl.cli", "sweep", str(spec), "--out", str(out),
               "--backend", "ray", "--workers", "2", "--no-progress"]
    sweep = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 300
    while _lock_holder_mid_run(out) is None:
        assert sweep.poll() is None, sweep.stdout.read().decode()[-2000:]
        assert time.monotonic() < deadline, "no checkpoint within 300 s"
        time.sleep(0.1)
    os.kill(_raylet_of(sweep.pid), signal.SIGKILL)  # this machine's Ray node is lost
    output = sweep.communicate(timeout=300)[0].decode()
    assert sweep.returncode == 1, output[-2000:]
    errors, last = _error_and_continue_lines(output)
    assert len(errors) == 1 and errors[0].startswith(
        "error: the Ray cluster was lost during the sweep ("), output[-2000:]
    assert " of 4 runs are not done; continue with: rwrl sweep run " in last
    _not_running(out)
    again = shlex.split(last.split("continue with: ")[1])
    finish = subprocess.run([sys.executable, "-m", "rwrl.cli", *again[1:]], env=env,
                            capture_output=True, timeout=600)
    assert finish.returncode == 0, finish.stdout.decode()[-2000:] + finish.stderr.decode()[-2000:]
    _assert_every_run_done_with_every_row_once(out, plan, steps=400)
