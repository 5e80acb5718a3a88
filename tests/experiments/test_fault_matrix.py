"""The fault matrix: ``rwrl run`` killed with SIGKILL or its newest checkpoint damaged, then resumed.

D4PG (small networks) on cartpole-balance, 2 envs, episodes of 50 steps and
a checkpoint every 130 env steps, so every checkpoint falls mid-episode
(0, 130, 260, 390, 520, then 600 at the end). The reference is the
uninterrupted run of the same command. Each case resumes with
``rwrl run --resume`` in a fresh process and must give the very same
``metrics.jsonl`` and ``summary.json`` (``run_compare``: all but wall-clock),
with no ``ResumeWarning`` (nothing it could not reproduce). The default
suite runs two representative cases; ``-m slow`` runs them all, and one
sweep killed and continued by ``rwrl sweep run``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rwrl.metrics.episode_file import count_rows
from rwrl.storage.checkpoint import CHUNK_DIR, list_checkpoints, load_checkpoint
from tests.experiments.run_compare import assert_same_run

REPO = Path(__file__).resolve().parents[2]
RUN_ARGS = ["--agent", "d4pg", "--env", "cartpole-balance", "--steps", "600", "--num-envs", "2",
            "--eval-every", "200", "--eval-episodes", "1", "--checkpoint-every", "130",
            "--env-kwarg", "time_limit=50", "--agent-config", "policy_hidden_sizes=[16]",
            "--agent-config", "critic_hidden_sizes=[16]", "--agent-config", "batch_size=16",
            "--agent-config", "min_replay_size=50", "--agent-config", "samples_per_insert=8.0",
            "--no-progress"]
_ENV = {**os.environ, "PYTHONPATH": str(REPO), "JAX_PLATFORMS": "cpu", "PYTHONDONTWRITEBYTECODE": "1"}
_TIMEOUT_S = 300


def _rwrl(*args) -> subprocess.CompletedProcess:
    """Run ``rwrl ARGS`` to completion in a fresh process."""
    return subprocess.run([sys.executable, "-m", "rwrl.cli", *map(str, args)], cwd=REPO, env=_ENV,
                          capture_output=True, text=True, timeout=_TIMEOUT_S)


def _resume(run_dir: Path) -> subprocess.CompletedProcess:
    resumed = _rwrl("run", "--resume", run_dir, "--no-progress")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "ResumeWarning" not in resumed.stderr, resumed.stderr[-3000:]
    return resumed


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """The uninterrupted run."""
    run_dir = tmp_path_factory.mktemp("fault-matrix") / "reference"
    done = _rwrl("run", *RUN_ARGS, "--out", run_dir)
    assert done.returncode == 0, done.stderr[-3000:]
    steps = [int(p.name.split("-")[1]) for p in list_checkpoints(run_dir / "checkpoints")]
    assert steps == [600, 520]  # the newest two; 520 is 20 env steps into an episode
    return run_dir


def _kill_when(child: subprocess.Popen, ready, what: str, also=lambda: ()) -> None:
    """SIGKILL ``child`` (and the processes ``also`` returns, first) once ``ready()``."""
    deadline = time.monotonic() + _TIMEOUT_S
    while not ready():
        assert child.poll() is None, f"the child exited ({child.returncode}) before {what}"
        assert time.monotonic() < deadline, f"no {what} within {_TIMEOUT_S} s"
        time.sleep(0.02)
    for pid in also():
        os.kill(pid, signal.SIGKILL)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()


def _killed_then_resumed(tmp_path: Path, reference: Path, fault: str, rows: int = 0) -> None:
    """Start the run, SIGKILL it at ``fault``'s stop (or once ``rows`` rows are written), resume."""
    run_dir, marker = tmp_path / "run", tmp_path / "stopped"
    with open(tmp_path / "child.log", "w") as log:
        child = subprocess.Popen([sys.executable, "-m", "tests.experiments.fault_child", fault,
                                  str(marker), "run", *RUN_ARGS, "--out", str(run_dir)],
                                 cwd=REPO, env=_ENV, stdout=log, stderr=log)
        if rows:
            _kill_when(child, lambda: count_rows(run_dir / "metrics.jsonl") >= rows, f"{rows} rows")
        else:
            _kill_when(child, marker.exists, f"the stop {fault}")
    assert not (run_dir / "summary.json").exists()
    _resume(run_dir)
    assert_same_run(run_dir, reference)


# ------------------------------------------------------------------ kill -9

_KILLS = [
    pytest.param("none", 3, id="after-3-rows", marks=pytest.mark.slow),  # before checkpoint 130
    pytest.param("none", 9, id="after-9-rows", marks=pytest.mark.slow),  # mid-run
    pytest.param("checkpoint:3", 0, id="inside-checkpoint-write"),  # the one at 260
    pytest.param("chunk:2", 0, id="inside-replay-chunk-write", marks=pytest.mark.slow),  # at 260
    pytest.param("metrics:5", 0, id="inside-metrics-append", marks=pytest.mark.slow),
    pytest.param("final:1", 0, id="before-the-final-checkpoint", marks=pytest.mark.slow),
]


@pytest.mark.parametrize("fault, rows", _KILLS)
def test_a_run_killed_at_any_moment_resumes_to_the_very_same_run(tmp_path, reference, fault, rows):
    _killed_then_resumed(tmp_path, reference, fault, rows)


# --------------------------------------------- a damaged newest checkpoint

def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-100])


def _flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _newest_chunk(newest: Path) -> Path:
    """The chunk file that only the newest checkpoint lists (its last)."""
    return newest.parent / CHUNK_DIR / load_checkpoint(newest).chunks[-1]["file"]


_DAMAGES = [
    pytest.param(lambda newest: _truncate(newest / "state.npz"), "truncated", id="truncated-state",
                 marks=pytest.mark.slow),
    pytest.param(lambda newest: _flip_byte(newest / "state.npz"), "sha256 mismatch", id="byte-flip",
                 marks=pytest.mark.slow),
    pytest.param(lambda newest: (newest / "manifest.json").unlink(), "unreadable manifest",
                 id="missing-manifest", marks=pytest.mark.slow),
    pytest.param(lambda newest: _newest_chunk(newest).unlink(), "missing file",
                 id="missing-replay-chunk"),
]


@pytest.mark.parametrize("damage, reason", _DAMAGES)
def test_a_damaged_newest_checkpoint_resumes_from_the_previous_to_the_very_same_run(
        tmp_path, reference, damage, reason):
    run_dir = tmp_path / "run"
    shutil.copytree(reference, run_dir)
    for name in ("summary.json", "report.html"):  # as if killed after the last checkpoint
        (run_dir / name).unlink()
    newest = list_checkpoints(run_dir / "checkpoints")[0]
    damage(newest)
    resumed = _resume(run_dir)
    assert f"skipping checkpoint {newest.name}: " in resumed.stderr and reason in resumed.stderr
    assert_same_run(run_dir, reference)


# ------------------------------------------------------------------- sweep

_SWEEP = """
[sweep]
name = "fault"
agents = ["d4pg"]
envs = ["cartpole-balance"]
seeds = 1
steps = 600

[fixed]
num_envs = 2
eval_every = 200
eval_episodes = 1
checkpoint_every = 130
"env_kwargs.time_limit" = 50
agent_config = {batch_size = 16, min_replay_size = 50, policy_hidden_sizes = [16], critic_hidden_sizes = [16], samples_per_insert = 8.0}

[axes]
"delay_spec.actions" = [2]
"""


def _mid_run_checkpoint(out: Path) -> bool:
    return any(int(p.name.split("-")[1]) >= 260 and not (p.parent.parent / "summary.json").exists()
               for p in out.glob("runs/*/checkpoints/ckpt-*"))


def _workers(out: Path) -> list[int]:
    """The pids of the processes training the sweep's runs (their run locks name them)."""
    return [int(text) for text in (p.read_text().strip() for p in out.glob("runs/*/.lock")) if text]


@pytest.mark.slow
def test_a_killed_sweep_run_continued_by_sweep_run_is_the_very_same_run(tmp_path):
    # An action delay of 2 steps: its queue is env state that must come back too.
    spec = tmp_path / "fault.toml"
    spec.write_text(_SWEEP)
    done = _rwrl("sweep", "run", spec, "--out", tmp_path / "reference", "--no-progress")
    assert done.returncode == 0, done.stderr[-3000:]
    out = tmp_path / "out"
    with open(tmp_path / "sweep.log", "w") as log:
        sweep = subprocess.Popen([sys.executable, "-m", "rwrl.cli", "sweep", "run", str(spec),
                                  "--out", str(out), "--no-progress"],
                                 cwd=REPO, env=_ENV, stdout=log, stderr=log)
        # The worker too, at once, as a crash of the machine would: left alone it
        # notices its parent's death within a second, time enough to finish this run.
        _kill_when(sweep, lambda: _mid_run_checkpoint(out), "a checkpoint at 260 or later",
                   also=lambda: _workers(out))
    continued = _rwrl("sweep", "run", spec, "--out", out, "--no-progress")
    assert continued.returncode == 0, continued.stderr[-3000:]
    (run,) = (out / "runs").iterdir()
    assert_same_run(run, tmp_path / "reference" / "runs" / run.name)
    assert load_checkpoint(list_checkpoints(run / "checkpoints")[0]).meta["counters"]["session"] == 1
