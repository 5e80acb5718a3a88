"""Kill-and-resume: same final step count, every metrics row exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rwrl.storage import checkpoint as ckpt
from rwrl.storage.checkpoint import CheckpointWarning
from rwrl.experiments.config import ConfigError
from rwrl.storage.run_lock import RunLockedError
from rwrl.experiments.run import is_finished, resume_run, start_run
from rwrl.metrics.episode_file import read_rows
from tests.experiments.fakes import Killed, fake_hooks, kill_after, tiny_config
from tests.experiments.lock_holder import start_lock_holder

REPO = Path(__file__).resolve().parents[2]


def _shape(rows):
    """What a run's rows must agree on, wall-clock aside."""
    return [(r["phase"], r["episode"], r["env_steps"], r.get("evaluation")) for r in rows]


def _assert_unbroken(rows, config):
    train = [r["episode"] for r in rows if r["phase"] == "train"]
    evals = [r["episode"] for r in rows if r["phase"] == "eval"]
    assert train == list(range(len(train)))  # none lost, none duplicated, in order
    assert evals == list(range(len(evals)))
    evaluations = sorted({r["evaluation"] for r in rows if r["phase"] == "eval"})
    assert evaluations == list(range(len(evaluations)))
    assert all(sum(r.get("evaluation") == e for r in rows if r["phase"] == "eval")
               == config.eval_episodes for e in evaluations)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run of the tiny config."""
    run_dir = tmp_path_factory.mktemp("reference") / "run"
    summary = start_run(tiny_config(), run_dir, fake_hooks())
    return summary, read_rows(run_dir / "metrics.jsonl")


# Vector steps at which the process dies: before the first checkpoint after 0,
# mid-episode, right at a checkpoint (episode boundary) and near the end.
@pytest.mark.parametrize("kill_at", [5, 33, 34, 100, 160])
def test_a_killed_run_resumes_to_the_same_steps_and_rows(tmp_path, reference, kill_at):
    ref_summary, ref_rows = reference
    config = tiny_config()
    with pytest.raises(Killed):
        start_run(config, tmp_path / "run", fake_hooks(kill_after(kill_at)))
    assert not is_finished(tmp_path / "run")
    summary = resume_run(tmp_path / "run", hooks=fake_hooks())
    rows = read_rows(tmp_path / "run" / "metrics.jsonl")
    assert summary["counters"]["env_steps"] == ref_summary["counters"]["env_steps"] == config.steps
    _assert_unbroken(rows, config)
    # Checkpoints fall on episode boundaries here, so nothing is abandoned.
    assert _shape(rows) == _shape(ref_rows)
    assert summary["counters"]["rows"] == len(rows)
    assert summary["counters"]["session"] == 1


def test_killed_twice_and_with_a_torn_last_row(tmp_path, reference):
    _, ref_rows = reference
    run_dir = tmp_path / "run"
    with pytest.raises(Killed):
        start_run(tiny_config(), run_dir, fake_hooks(kill_after(40)))
    with pytest.raises(Killed):
        resume_run(run_dir, hooks=fake_hooks(kill_after(50)))
    with open(run_dir / "metrics.jsonl", "a") as f:
        f.write('{"phase": "train", "epis')  # a writer killed mid-line
    summary = resume_run(run_dir, hooks=fake_hooks())
    rows = read_rows(run_dir / "metrics.jsonl")
    assert (run_dir / "metrics.jsonl").read_bytes().endswith(b"\n")
    assert _shape(rows) == _shape(ref_rows)
    assert summary["counters"]["session"] == 2


def test_a_due_checkpoint_waits_for_the_episode_boundary(tmp_path):
    # Episodes of the 4 envs end together every 40 env steps; checkpoints are
    # due every 100, so each waits for the next multiple of 40.
    config = tiny_config(checkpoint_every=100, keep_checkpoints=10)
    start_run(config, tmp_path / "run", fake_hooks())
    steps = sorted(int(p.name[len("ckpt-"):]) for p in ckpt.list_checkpoints(tmp_path / "run" / "checkpoints"))
    assert steps == [0, 120, 200, 320, 400, 520, 600]


def test_an_overdue_checkpoint_abandons_the_open_episodes(tmp_path):
    # Episodes of 50 steps: 200 env steps over the 4 envs. The checkpoint due
    # at 100 is overdue at 150 and taken mid-episode at 152 (vector step 38).
    config = tiny_config(checkpoint_every=100, eval_every=1000, env_kwargs={"time_limit": 50})
    with pytest.raises(Killed):
        start_run(config, tmp_path / "run", fake_hooks(kill_after(46)))
    assert ckpt.load_latest(tmp_path / "run" / "checkpoints").step == 152
    summary = resume_run(tmp_path / "run", hooks=fake_hooks())
    rows = read_rows(tmp_path / "run" / "metrics.jsonl")
    _assert_unbroken(rows, config)
    assert summary["counters"]["env_steps"] == config.steps
    # The resumed session restarts the 4 open episodes at 152: they end at 352
    # and 552, and the 4 open at 600 never end: 8 rows where an
    # uninterrupted run writes 12 (episodes ending at 200, 400 and 600).
    train = [r for r in rows if r["phase"] == "train"]
    assert [r["env_steps"] for r in train] == [352] * 4 + [552] * 4


def test_a_corrupted_latest_checkpoint_falls_back_to_the_previous(tmp_path, reference):
    _, ref_rows = reference
    run_dir = tmp_path / "run"
    with pytest.raises(Killed):
        start_run(tiny_config(), run_dir, fake_hooks(kill_after(100)))
    newest = ckpt.list_checkpoints(run_dir / "checkpoints")[0]
    state = newest / "state.npz"
    state.write_bytes(state.read_bytes()[:-7])
    with pytest.warns(CheckpointWarning, match=rf"{newest.name}: .*state\.npz.*truncated"):
        resume_run(run_dir, hooks=fake_hooks())
    assert _shape(read_rows(run_dir / "metrics.jsonl")) == _shape(ref_rows)


def test_resume_of_a_finished_run_changes_nothing_and_can_extend_it(tmp_path, reference):
    run_dir = tmp_path / "run"
    start_run(tiny_config(), run_dir, fake_hooks())
    before = (run_dir / "metrics.jsonl").read_bytes()
    summary = resume_run(run_dir, hooks=fake_hooks())
    assert summary["counters"]["env_steps"] == 600
    assert summary["final_eval_return"] > 0  # carried over by the checkpoint, not re-run
    assert (run_dir / "metrics.jsonl").read_bytes() == before
    summary = resume_run(run_dir, steps=800, hooks=fake_hooks())
    rows = read_rows(run_dir / "metrics.jsonl")
    assert summary["counters"]["env_steps"] == 800
    assert json.loads((run_dir / "config.json").read_text())["run"]["steps"] == 800
    _assert_unbroken(rows, tiny_config())


def test_starting_over_an_existing_run_is_refused(tmp_path):
    start_run(tiny_config(steps=40), tmp_path / "run", fake_hooks())
    with pytest.raises(FileExistsError, match="--resume"):
        start_run(tiny_config(steps=40), tmp_path / "run", fake_hooks())


def test_the_replay_buffer_is_checkpointed_on_request(tmp_path):
    run_dir = tmp_path / "run"
    start_run(tiny_config(save_replay=True, steps=120), run_dir, fake_hooks())
    newest = ckpt.load_latest(run_dir / "checkpoints")
    assert int(newest.groups["replay"]["size"]) == 120
    start_run(tiny_config(steps=120), tmp_path / "plain", fake_hooks())
    assert "replay" not in ckpt.load_latest(tmp_path / "plain" / "checkpoints").groups


_CHILD = """
import sys, time
from rwrl.experiments.run import start_run
from tests.experiments.fakes import Killed, fake_hooks, kill_after, tiny_config
def slow(trainer):
    time.sleep(0.004)  # stretch the run so the parent's SIGKILL lands mid-run
start_run(tiny_config(steps=2000, checkpoint_every=120), sys.argv[1], fake_hooks(slow))
"""


def test_sigkill_at_a_random_moment_then_resume(tmp_path):
    run_dir = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(REPO), "JAX_PLATFORMS": "cpu"}
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(run_dir)], cwd=REPO, env=env)
    deadline = time.time() + 60
    while time.time() < deadline and child.poll() is None:
        if len(ckpt.list_checkpoints(run_dir / "checkpoints")) >= 2:
            break
        time.sleep(0.05)
    time.sleep(0.3)
    assert child.poll() is None, "the child finished before it could be killed"
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    summary = resume_run(run_dir, hooks=fake_hooks())
    config = tiny_config(steps=2000, checkpoint_every=120)
    assert summary["counters"]["env_steps"] == 2000
    rows = read_rows(run_dir / "metrics.jsonl")
    _assert_unbroken(rows, config)
    assert len([r for r in rows if r["phase"] == "train"]) == 2000 // 10


def test_a_live_process_holds_the_run_and_a_dead_ones_lock_is_stale(tmp_path):
    run_dir = tmp_path / "run"
    start_run(tiny_config(steps=40), run_dir, fake_hooks())
    assert not (run_dir / ".lock").exists()  # released on completion
    holder = start_lock_holder(run_dir)  # a live process holding the lock
    try:
        with pytest.raises(RunLockedError, match=rf"being trained by process {holder.pid}"):
            resume_run(run_dir, steps=80, hooks=fake_hooks())
    finally:
        holder.kill()
        holder.wait()
    assert (run_dir / ".lock").exists()  # left behind by the SIGKILL: stale
    assert resume_run(run_dir, steps=80, hooks=fake_hooks())["counters"]["env_steps"] == 80


def _truncate_metrics(path: Path, rows: int) -> None:
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:rows]))


def test_metrics_shorter_than_the_newest_checkpoint_resume_from_an_older_one(tmp_path, reference):
    _, ref_rows = reference
    run_dir = tmp_path / "run"
    with pytest.raises(Killed):
        start_run(tiny_config(keep_checkpoints=3), run_dir, fake_hooks(kill_after(100)))
    counted = [ckpt.load_checkpoint(p).meta["counters"]["rows"]
               for p in ckpt.list_checkpoints(run_dir / "checkpoints")]
    assert counted[0] > counted[1]  # newest first
    _truncate_metrics(run_dir / "metrics.jsonl", counted[1] + 1)  # rows lost after checkpoint 2
    newest = ckpt.list_checkpoints(run_dir / "checkpoints")[0].name
    with pytest.warns(CheckpointWarning, match=rf"{newest}: it counted {counted[0]} rows of "
                      rf"metrics\.jsonl but the file holds {counted[1] + 1}"):
        summary = resume_run(run_dir, hooks=fake_hooks())
    rows = read_rows(run_dir / "metrics.jsonl")
    assert summary["counters"]["env_steps"] == 600
    assert _shape(rows) == _shape(ref_rows)  # nothing lost, nothing twice


def test_metrics_shorter_than_every_checkpoint_start_over(tmp_path, reference):
    _, ref_rows = reference
    run_dir = tmp_path / "run"
    with pytest.raises(Killed):
        start_run(tiny_config(), run_dir, fake_hooks(kill_after(100)))
    # Every checkpoint counts the evaluation rows of step 0; keep fewer than those.
    _truncate_metrics(run_dir / "metrics.jsonl", 1)
    with pytest.warns(UserWarning) as caught:
        summary = resume_run(run_dir, hooks=fake_hooks())
    messages = [str(w.message) for w in caught]
    assert all("but the file holds 1 (damaged or truncated)" in m for m in messages[:-1])
    assert len(messages) == 3 and "no usable checkpoint, the run starts over" in messages[-1]
    assert summary["counters"]["env_steps"] == 600
    assert _shape(read_rows(run_dir / "metrics.jsonl")) == _shape(ref_rows)


def test_a_checkpoint_that_does_not_restore_falls_back_to_the_previous(tmp_path, reference):
    _, ref_rows = reference
    run_dir = tmp_path / "run"
    with pytest.raises(Killed):
        start_run(tiny_config(), run_dir, fake_hooks(kill_after(100)))
    newest = ckpt.list_checkpoints(run_dir / "checkpoints")[0]
    loaded = ckpt.load_checkpoint(newest)
    del loaded.groups["loop"]  # a verified checkpoint that lacks a piece
    ckpt.save_checkpoint(run_dir / "checkpoints", loaded, keep=5)
    with pytest.warns(CheckpointWarning, match=rf"{newest.name}: .*cannot restore \(KeyError: 'loop'\)"):
        resume_run(run_dir, hooks=fake_hooks())
    assert _shape(read_rows(run_dir / "metrics.jsonl")) == _shape(ref_rows)


def test_wall_clock_cadence_checkpoints_a_run_whose_step_cadence_never_comes(tmp_path):
    # checkpoint_every is beyond the run: only step 0 and the end would be written.
    # 100 vector steps of at least 5 ms (0.5 s) with a 60 ms wall-clock cadence:
    # at least 3 checkpoints in between, even on a loaded machine.
    config = tiny_config(steps=400, checkpoint_every=10**6, keep_checkpoints=100,
                         checkpoint_minutes=0.001)
    start_run(config, tmp_path / "run", fake_hooks(lambda trainer: time.sleep(0.005)))
    steps = sorted(int(p.name[len("ckpt-"):])
                   for p in ckpt.list_checkpoints(tmp_path / "run" / "checkpoints"))
    assert steps[0] == 0 and steps[-1] == 400 and len(steps) >= 5, steps


def test_default_cadence_loses_at_most_five_minutes():
    assert tiny_config().checkpoint_minutes == 5.0
    with pytest.raises(ConfigError, match="checkpoint_minutes must be a finite number"):
        tiny_config(checkpoint_minutes=float("inf"))


def test_the_trainer_sets_all_its_state_in_init(tmp_path):
    from rwrl.experiments.run import _build_trainer
    config = tiny_config(steps=120)
    trainer = _build_trainer(config, tmp_path, fake_hooks())
    declared = set(vars(trainer))
    (tmp_path / "metrics.jsonl").write_bytes(b"")
    trainer.init_fresh()
    trainer.run()
    assert set(vars(trainer)) == declared  # no attribute first set outside __init__
