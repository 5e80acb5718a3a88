"""The run lock: one holder among processes arriving at once, stale locks taken over, own lock released."""

from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path

import pytest

from rwrl.storage.run_lock import RunLock, RunLockedError
from tests.experiments.lock_holder import start_lock_holder

CONTENDERS = 8
HOLD_S = 1.0  # long enough that every contender tries while the winner holds


def _contend(run_dir: str, barrier, results) -> None:
    """Wait for every contender, then try the lock at the same instant."""
    barrier.wait()
    try:
        with RunLock(Path(run_dir)):
            results.put("held")
            time.sleep(HOLD_S)
    except RunLockedError:
        results.put("refused")


def test_processes_arriving_at_the_same_instant_get_one_lock(tmp_path):
    # forkserver: children forked from a clean server that preloaded this module,
    # so they start fast and none inherits the test process's threads (JAX).
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    barrier, results = context.Barrier(CONTENDERS), context.Queue()
    for round_ in range(3):
        run_dir = tmp_path / f"run{round_}"
        run_dir.mkdir()
        workers = [context.Process(target=_contend, args=(str(run_dir), barrier, results))
                   for _ in range(CONTENDERS)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(60)
            assert worker.exitcode == 0
        outcomes = sorted(results.get(timeout=5) for _ in range(CONTENDERS))
        assert outcomes == ["held"] + ["refused"] * (CONTENDERS - 1), outcomes
        assert not (run_dir / ".lock").exists()  # the holder removed it on release


def test_a_live_holder_is_named_and_its_death_frees_the_lock(tmp_path):
    holder = start_lock_holder(tmp_path)
    try:
        with pytest.raises(RunLockedError, match=rf"being trained by process {holder.pid}"):
            RunLock(tmp_path).__enter__()
    finally:
        holder.kill()  # SIGKILL: no release runs, the file stays behind
        holder.wait()
    assert (tmp_path / ".lock").read_text() == str(holder.pid)
    with RunLock(tmp_path):  # stale: the kernel dropped the dead holder's lock
        assert (tmp_path / ".lock").read_text() == str(os.getpid())
    assert not (tmp_path / ".lock").exists()


def test_release_removes_only_its_own_lock(tmp_path):
    lock = RunLock(tmp_path).__enter__()
    # Someone deletes the lock file and another process locks a new one meanwhile.
    (tmp_path / ".lock").unlink()
    other = start_lock_holder(tmp_path)
    try:
        lock.release()
        assert (tmp_path / ".lock").read_text() == str(other.pid)  # left alone
        with pytest.raises(RunLockedError):
            RunLock(tmp_path).__enter__()
    finally:
        other.kill()
        other.wait()


def test_a_lock_file_left_by_an_old_version_without_a_holder_is_taken(tmp_path):
    (tmp_path / ".lock").write_text("999999999")  # a pid, but no process holds the OS lock
    with RunLock(tmp_path):
        assert (tmp_path / ".lock").read_text() == str(os.getpid())
