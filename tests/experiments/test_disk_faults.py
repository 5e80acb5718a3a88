"""`rwrl run` on a full disk or a read-only output: one clear line, nothing partial, resumable.

A file size limit (RLIMIT_FSIZE, with SIGXFSZ ignored) makes every write past
the limit fail with EFBIG, as a full disk fails with ENOSPC, without needing
a small file system to fill.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# A real agent and task, as small as they come; min_replay_size beyond the run
# so the learner never compiles (the faults are in the files, not the learning).
RUN_ARGS = ["--agent", "d4pg", "--env", "cartpole-balance", "--steps", "80", "--num-envs", "2",
            "--eval-every", "80", "--eval-episodes", "1", "--env-kwarg", "time_limit=40",
            "--agent-config", "policy_hidden_sizes=[16]", "--agent-config", "critic_hidden_sizes=[16]",
            "--agent-config", "min_replay_size=100000", "--no-progress"]


# The child sets the limit on itself, not through preexec_fn: forking this
# process (JAX's threads are running) is unsafe before the exec.
_LIMITED_CLI = """
import resource, runpy, signal, sys
limit = int(sys.argv.pop(1))
if limit:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
sys.argv[0] = "rwrl"
runpy.run_module("rwrl.cli", run_name="__main__")
"""


def _rwrl(args, file_size_limit: int = 0) -> subprocess.CompletedProcess:
    """Run ``rwrl run ARGS`` in a child process whose files may not exceed the limit (0: none)."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "JAX_PLATFORMS": "cpu",
           "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([sys.executable, "-c", _LIMITED_CLI, str(file_size_limit), "run", *args],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def _error_lines(result) -> list[str]:
    assert "Traceback" not in result.stderr, result.stderr
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def test_a_full_disk_is_one_line_leaves_no_partial_checkpoint_and_resumes(tmp_path):
    run_dir = tmp_path / "run"
    # 16 KiB: the config and the first metrics rows fit, the checkpoint's
    # state.npz (about 30 KB for these networks) does not.
    failed = _rwrl([*RUN_ARGS, "--out", str(run_dir)], file_size_limit=16 * 1024)
    assert failed.returncode != 0
    assert _error_lines(failed) == [f"error: cannot write {run_dir}/checkpoints/"
                                    f"ckpt-000000000000/state.npz: File too large"]
    assert list((run_dir / "checkpoints").iterdir()) == []  # no checkpoint, no temporary folder
    assert not (run_dir / ".lock").exists()
    resumed = _rwrl(["--resume", str(run_dir), "--no-progress"])  # space is back
    assert resumed.returncode == 0, resumed.stderr
    assert "done: 80 env steps" in resumed.stdout
    assert "no usable checkpoint, the run starts over" in resumed.stderr
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == [
        "chunks", "ckpt-000000000000", "ckpt-000000000080"]  # chunks: the replay's transitions


def _read_only_parent(tmp_path: Path) -> Path | None:
    """A directory this process cannot create entries in, or None."""
    if os.geteuid() != 0:
        locked = tmp_path / "read-only"
        locked.mkdir(mode=0o555)
        return locked
    # root ignores permission bits; sysfs refuses new entries even to root.
    probe = Path("/sys/rwrl-write-probe")
    try:
        probe.mkdir()
    except OSError:
        return Path("/sys")
    probe.rmdir()
    return None


def test_a_read_only_output_directory_is_one_line(tmp_path):
    parent = _read_only_parent(tmp_path)
    if parent is None:
        pytest.skip("running as root with a writable /sys: no read-only directory to write to")
    out = parent / "run"
    failed = _rwrl([*RUN_ARGS, "--out", str(out)])
    assert failed.returncode != 0
    (line,) = _error_lines(failed)
    assert line.startswith(f"error: cannot write {out}: ")
    assert line.endswith(("Permission denied", "Operation not permitted", "Read-only file system"))
    assert not out.exists()
