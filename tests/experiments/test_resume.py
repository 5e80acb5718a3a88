"""Kill-and-resume: the very same run, every metrics row exactly once (the toy env and agent).

The real agent and task, killed by SIGKILL through ``rwrl run``: test_fault_matrix.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import numpy as np

from rwrl.agents.replay import NStepReplay
from rwrl.storage import checkpoint as ckpt
from rwrl.storage.checkpoint import Checkpoint, CheckpointWarning
from rwrl.experiments.config import ConfigError
from rwrl.storage.run_lock import RunLockedError
from rwrl.experiments.run import ResumeWarning, is_finished, resume_run, start_run
from rwrl.metrics.episode_file import read_rows
from tests.experiments.fakes import (Killed, TinyConfig, fake_hooks, kill_after, stateless_env_factory,
                                     tiny_config)
from tests.experiments.lock_holder import start_lock_holder
from tests.experiments.run_compare import assert_same_run

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
    """An uninterrupted run of the tiny config: (summary, rows, its directory)."""
    run_dir = tmp_path_factory.mktemp("reference") / "run"
    summary = start_run(tiny_config(), run_dir, fake_hooks())
    return summary, read_rows(run_dir / "metrics.jsonl"), run_dir


# Vector steps at which the process dies: before the first checkpoint after 0,
# mid-episode, right at a checkpoint (episode boundary) and near the end.
@pytest.mark.parametrize("kill_at", [5, 33, 34, 100, 160])
def test_a_killed_run_resumes_to_the_very_same_run(tmp_path, reference, kill_at):
    config = tiny_config()
    with pytest.raises(Killed):
        start_run(config, tmp_path / "run", fake_hooks(kill_after(kill_at)))
    assert not is_finished(tmp_path / "run")
    summary = resume_run(tmp_path / "run", hooks=fake_hooks())
    rows = read_rows(tmp_path / "run" / "metrics.jsonl")
    _assert_unbroken(rows, config)
    assert_same_run(tmp_path / "run", reference[2])
    assert summary["counters"]["session"] == 1


def test_killed_twice_and_with_a_torn_last_row(tmp_path, reference):
    run_dir = tmp_path / "run"
    with pytest.raises(Killed):
        start_run(tiny_config(), run_dir, fake_hooks(kill_after(40)))
    with pytest.raises(Killed):
        resume_run(run_dir, hooks=fake_hooks(kill_after(50)))
    with open(run_dir / "metrics.jsonl", "a") as f:
        f.write('{"phase": "train", "epis')  # a writer killed mid-line
    summary = resume_run(run_dir, hooks=fake_hooks())
    assert (run_dir / "metrics.jsonl").read_bytes().endswith(b"\n")
    assert_same_run(run_dir, reference[2])
    assert summary["counters"]["session"] == 2


def _checkpoint_steps(run_dir):
    return sorted(int(p.name[len("ckpt-"):]) for p in ckpt.list_checkpoints(run_dir / "checkpoints"))


def test_checkpoints_are_taken_when_due_mid_episode_too(tmp_path):
    # Episodes of the 4 envs end together every 40 env steps; checkpoints are
    # due every 100 and taken then (mid-episode), the env's state with them.
    config = tiny_config(checkpoint_every=100, keep_checkpoints=10)
    start_run(config, tmp_path / "run", fake_hooks())
    assert _checkpoint_steps(tmp_path / "run") == [0, 100, 200, 300, 400, 500, 600]


def test_for_an_env_without_env_state_a_due_checkpoint_waits_for_the_episode_boundary(tmp_path):
    # As before env states were saved: each waits for the next multiple of 40.
    config = tiny_config(checkpoint_every=100, keep_checkpoints=10)
    start_run(config, tmp_path / "run", fake_hooks(env_factory=stateless_env_factory))
    assert _checkpoint_steps(tmp_path / "run") == [0, 120, 200, 320, 400, 520, 600]


# Episodes of 50 steps: 200 env steps over the 4 envs, so the checkpoints
# due every 100 steps fall mid-episode for a restorable env.
_LONG_EPISODES = dict(checkpoint_every=100, eval_every=1000, env_kwargs={"time_limit": 50})


def test_a_checkpoint_mid_episode_loses_no_row(tmp_path):
    config = tiny_config(**_LONG_EPISODES)
    start_run(config, tmp_path / "reference", fake_hooks())
    with pytest.raises(Killed):
        start_run(config, tmp_path / "run", fake_hooks(kill_after(46)))
    assert ckpt.load_latest(tmp_path / "run" / "checkpoints").step == 100  # mid-episode
    resume_run(tmp_path / "run", hooks=fake_hooks())
    assert_same_run(tmp_path / "run", tmp_path / "reference")
    train = [r for r in read_rows(tmp_path / "run" / "metrics.jsonl") if r["phase"] == "train"]
    assert [r["env_steps"] for r in train] == [200] * 4 + [400] * 4 + [600] * 4


def test_an_env_without_env_state_is_reset_and_its_open_episodes_abandoned(tmp_path):
    # The checkpoint due at 100 is overdue at 150 and taken mid-episode at 152
    # (vector step 38).
    config, hooks = tiny_config(**_LONG_EPISODES), fake_hooks(env_factory=stateless_env_factory)
    with pytest.raises(Killed):
        start_run(config, tmp_path / "run", fake_hooks(kill_after(46), stateless_env_factory))
    assert ckpt.load_latest(tmp_path / "run" / "checkpoints").step == 152
    with pytest.warns(ResumeWarning, match=r"the training env \(StatelessTargetVectorEnv\) or one it "
                                           r"wraps has no env_state\(\): the training envs restart at "
                                           r"env step 152"):
        summary = resume_run(tmp_path / "run", hooks=hooks)
    rows = read_rows(tmp_path / "run" / "metrics.jsonl")
    _assert_unbroken(rows, config)
    assert summary["counters"]["env_steps"] == config.steps
    # The resumed session restarts the 4 open episodes at 152: they end at 352
    # and 552, and the 4 open at 600 never end: 8 rows where an
    # uninterrupted run writes 12 (episodes ending at 200, 400 and 600).
    train = [r for r in rows if r["phase"] == "train"]
    assert [r["env_steps"] for r in train] == [352] * 4 + [552] * 4


def test_without_save_replay_the_resume_says_learning_differs_and_keeps_every_row(tmp_path, reference):
    config = tiny_config(save_replay=False)
    with pytest.raises(Killed):
        start_run(config, tmp_path / "run", fake_hooks(kill_after(100)))
    assert "replay" not in ckpt.load_latest(tmp_path / "run" / "checkpoints").groups
    with pytest.warns(ResumeWarning, match=r"save_replay is off: the replay buffer restarts empty "
                                           r"at env step 360"):
        summary = resume_run(tmp_path / "run", hooks=fake_hooks())
    rows = read_rows(tmp_path / "run" / "metrics.jsonl")
    assert _shape(rows) == _shape(reference[1])
    # 32 transitions (min_replay_size) before learning starts again: fewer updates.
    assert summary["counters"]["updates"] < reference[0]["counters"]["updates"]


def test_a_corrupted_latest_checkpoint_falls_back_to_the_previous(tmp_path, reference):
    run_dir = tmp_path / "run"
    with pytest.raises(Killed):
        start_run(tiny_config(), run_dir, fake_hooks(kill_after(100)))
    newest = ckpt.list_checkpoints(run_dir / "checkpoints")[0]
    state = newest / "state.npz"
    state.write_bytes(state.read_bytes()[:-7])
    with pytest.warns(CheckpointWarning, match=rf"{newest.name}: .*state\.npz.*truncated"):
        resume_run(run_dir, hooks=fake_hooks())
    assert_same_run(run_dir, reference[2])


def _chunk_files(run_dir):
    return sorted(p.name for p in (run_dir / "checkpoints" / ckpt.CHUNK_DIR).iterdir())


def test_each_checkpoint_adds_only_the_new_transitions_as_a_chunk(tmp_path):
    # A ring of 200 transitions, checkpoints every 120 env steps (one
    # transition each): each adds one chunk of the 120 stored since the
    # previous one and lists again the older chunks the ring still holds rows of.
    config = tiny_config(keep_checkpoints=10, agent_config={"replay_capacity": 200})
    run_dir = tmp_path / "run"
    start_run(config, run_dir, fake_hooks())
    listed = {}
    for path in ckpt.list_checkpoints(run_dir / "checkpoints"):
        checkpoint = ckpt.load_checkpoint(path)
        step, spans = checkpoint.step, checkpoint.groups["replay"]["chunk_spans"].tolist()
        assert spans == [[a, a + 120] for a in range(0, step, 120) if a + 120 > step - 200]
        listed[step] = [entry["file"] for entry in checkpoint.chunks]
    assert listed[0] == [] and listed[120][0].startswith("replay_000000000000_000000000120_")
    assert listed[240][1] == listed[360][0]  # the chunk of 120..239, written once, listed twice
    assert _chunk_files(run_dir) == sorted({f for files in listed.values() for f in files})
    # Pruned to the 2 newest checkpoints (600, 480): only their chunks are left.
    resume_run(run_dir, steps=600, hooks=fake_hooks())  # finished: nothing to do
    newest = ckpt.load_checkpoint(ckpt.list_checkpoints(run_dir / "checkpoints")[0])
    ckpt.save_checkpoint(run_dir / "checkpoints", newest, keep=2)
    assert _chunk_files(run_dir) == sorted(set(listed[600]) | set(listed[480]))


def test_a_missing_or_damaged_replay_chunk_skips_the_checkpoints_that_list_it(tmp_path, reference):
    run_dir = tmp_path / "run"
    with pytest.raises(Killed):
        start_run(tiny_config(), run_dir, fake_hooks(kill_after(100)))
    newest = ckpt.load_checkpoint(ckpt.list_checkpoints(run_dir / "checkpoints")[0])
    chunk = run_dir / "checkpoints" / ckpt.CHUNK_DIR / newest.chunks[-1]["file"]
    chunk.unlink()  # listed by the newest checkpoint only
    with pytest.warns(CheckpointWarning, match=rf"{newest.path.name}: .*{chunk.name}: missing file"):
        resume_run(run_dir, hooks=fake_hooks())
    assert_same_run(run_dir, reference[2])


def _as_previous_format(path, n_step=TinyConfig.n_step, gamma=TinyConfig.discount):
    """Rewrite a checkpoint as the previous format did: no session, env or learner state, no
    chunks, the whole replay buffer in its group."""
    new = ckpt.load_checkpoint(path)
    replay = NStepReplay(TinyConfig.replay_capacity, 3, 1, 4, n_step, gamma)
    replay.load_position_state(new.groups["replay"])
    for (first, _), entry in zip(new.groups["replay"]["chunk_spans"].tolist(), new.chunks):
        replay.import_rows(first, new.read_chunk(entry))
    old_replay = {k: v for k, v in replay.state_dict().items() if k != "written"}
    loop = {k: v for k, v in new.groups["loop"].items() if k.startswith("key_")}
    groups = {"state": new.groups["state"], "loop": loop, "replay": old_replay}
    import shutil
    shutil.rmtree(path)
    ckpt.save_checkpoint(path.parent, Checkpoint(new.step, groups, new.meta), keep=100)


def test_a_checkpoint_of_the_previous_format_resumes_the_old_way(tmp_path, reference):
    run_dir = tmp_path / "run"
    with pytest.raises(Killed):
        start_run(tiny_config(), run_dir, fake_hooks(kill_after(100)))
    for path in ckpt.list_checkpoints(run_dir / "checkpoints"):
        _as_previous_format(path)
    assert not list((run_dir / "checkpoints" / ckpt.CHUNK_DIR).iterdir())
    with pytest.warns(ResumeWarning, match=r"the checkpoint is of the previous format: the training "
                                           r"envs restart at env step 360"):
        summary = resume_run(run_dir, hooks=fake_hooks())
    rows = read_rows(run_dir / "metrics.jsonl")
    # At 360 every episode had just ended: the reset abandons nothing, and the
    # replay came back whole. The reset replaces the autoreset vector step
    # (which stores nothing but earns its one update): one update fewer.
    assert _shape(rows) == _shape(reference[1])
    assert summary["counters"]["updates"] == reference[0]["counters"]["updates"] - 1
    assert rows != reference[1]  # the envs were reseeded: another run from 360 on


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
    assert summary["counters"]["env_steps"] == 600
    assert_same_run(run_dir, reference[2])  # nothing lost, nothing twice


def test_metrics_shorter_than_every_checkpoint_start_over(tmp_path, reference):
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
    assert_same_run(run_dir, reference[2])  # from scratch: the same seed, the same run


def test_a_checkpoint_that_does_not_restore_falls_back_to_the_previous(tmp_path, reference):
    run_dir = tmp_path / "run"
    with pytest.raises(Killed):
        start_run(tiny_config(), run_dir, fake_hooks(kill_after(100)))
    newest = ckpt.list_checkpoints(run_dir / "checkpoints")[0]
    loaded = ckpt.load_checkpoint(newest)
    del loaded.groups["loop"]  # a verified checkpoint that lacks a piece
    ckpt.save_checkpoint(run_dir / "checkpoints", loaded, keep=5)
    with pytest.warns(CheckpointWarning, match=rf"{newest.name}: .*cannot restore \(KeyError: 'loop'\)"):
        resume_run(run_dir, hooks=fake_hooks())
    assert_same_run(run_dir, reference[2])


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
