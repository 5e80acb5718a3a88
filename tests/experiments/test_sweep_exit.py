"""`rwrl sweep run` exits 0 only when every run of its plan is done, and says how to continue.

The run directories are fabricated (conftest's ``sweep``); where runs must be
left unfinished at the end of the command, the local backend is replaced by
one that loses every run it is given without running it, as a broken process
pool does. The same ends with a real Ray are in ``test_sweep_ray.py``.
"""

from __future__ import annotations

import shlex
import shutil

import pytest
from typer.testing import CliRunner

from rwrl.cli import app
from rwrl.experiments.sweeps import backends
from rwrl.experiments.sweeps.backends import ClusterLostError
from rwrl.experiments.sweeps.status import check_run

runner = CliRunner()


def _run(sweep, *options: str):
    return runner.invoke(app, ["sweep", "run", str(sweep["spec"]), "--out", str(sweep["out"]),
                               *options])


def _continue_line(sweep, *options: str) -> str:
    command = ["rwrl", "sweep", "run", str(sweep["spec"]), "--out", str(sweep["out"]), *options]
    return f"continue with: {shlex.join(command)}"


@pytest.fixture
def losing_backend(monkeypatch):
    """The local backend loses every run it is given (a failure result, nothing run or written)."""
    given = []

    def lose(tasks, workers, threads=None):
        for task in tasks:
            given.append(task["run_id"])
            yield {"run_id": task["run_id"], "status": "failed",
                   "error": "its worker process died (killed or crashed)"}
    monkeypatch.setattr(backends, "local_results", lose)
    return given


def _leave(sweep, status: str, index: int) -> str:
    """Turn the finished run ``index`` into a ``status`` run; return its id."""
    run_id = sweep["ids"][index]
    run_dir = sweep["out"] / "runs" / run_id
    if status == "pending":
        shutil.rmtree(run_dir)
    else:
        (run_dir / "summary.json").unlink()
    if status == "failed":
        (run_dir / "error.txt").write_text("ValueError: it diverged\n\ntraceback\n")
    assert check_run(run_dir).status == status
    return run_id


def test_a_done_plan_exits_0_and_names_no_command(sweep, losing_backend):
    result = _run(sweep, "--no-progress")
    assert result.exit_code == 0, result.output
    assert "done 4  failed 0  running 0  partial 0  pending 0  broken 0" in result.output
    assert "continue with" not in result.output and losing_backend == []


@pytest.mark.parametrize("status", ["partial", "pending", "failed"])
def test_a_run_left_not_done_exits_1_with_the_counts_and_the_command_that_continues(
        sweep, losing_backend, status):
    run_id = _leave(sweep, status, 1)
    result = _run(sweep, "--workers", "2", "--scale", "1", "--no-progress")
    assert result.exit_code == 1, result.output
    counts = {"partial": "failed 0  running 0  partial 1  pending 0",
              "pending": "failed 0  running 0  partial 0  pending 1",
              "failed": "failed 1  running 0  partial 0  pending 0"}[status]
    assert f"done 3  {counts}  broken 0" in result.output.splitlines()
    continue_line = "1 of 4 runs are not done; " + _continue_line(sweep, "--workers", "2",
                                                                   "--no-progress")
    assert result.output.splitlines()[-1] == continue_line
    assert losing_backend == [run_id]  # the run was given to the backend, which lost it


def test_failed_runs_left_by_no_retry_failed_are_counted_and_continued_with_retries(
        sweep, losing_backend):
    failed = _leave(sweep, "failed", 0)
    partial, pending = _leave(sweep, "partial", 2), _leave(sweep, "pending", 3)
    result = _run(sweep, "--no-retry-failed", "--no-progress")
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert "done 1  failed 1  running 0  partial 1  pending 1  broken 0" in lines
    assert f"failed {failed}: ValueError: it diverged" in lines
    # the command that continues retries the failed run: it leaves out --no-retry-failed
    assert lines[-1] == "3 of 4 runs are not done; " + _continue_line(sweep, "--no-progress")
    assert losing_backend == [partial, pending]
    again = runner.invoke(app, shlex.split(lines[-1].split("continue with: ")[1])[1:])
    assert again.exit_code == 1, again.output  # the same plan (another would exit 2), still lost
    assert losing_backend[2:] == [failed, partial, pending]


def test_a_lost_ray_cluster_is_one_error_line_the_counts_and_the_command(sweep, monkeypatch):
    _leave(sweep, "partial", 0)

    def lost(*args, **kwargs):
        raise ClusterLostError("the Ray cluster was lost during the sweep (LocalRayletDiedError)")
        yield
    monkeypatch.setattr(backends, "ray_results", lost)
    result = _run(sweep, "--backend", "ray", "--no-progress")
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert [line for line in lines if line.startswith("error: ")] == [
        "error: the Ray cluster was lost during the sweep (LocalRayletDiedError)"]
    assert "done 3  failed 0  running 0  partial 1  pending 0  broken 0" in lines
    assert lines[-1] == "1 of 4 runs are not done; " + _continue_line(
        sweep, "--backend", "ray", "--no-progress")
    assert (sweep["out"] / "results" / "runs.csv").exists()  # the results are still written


def test_ctrl_c_exits_130_with_the_command_that_continues(sweep, monkeypatch):
    _leave(sweep, "pending", 2)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
        yield
    monkeypatch.setattr(backends, "local_results", interrupted)
    result = _run(sweep, "--no-progress")
    assert result.exit_code == 130, result.output
    assert result.output.splitlines()[-1] == "interrupted; " + _continue_line(sweep, "--no-progress")
