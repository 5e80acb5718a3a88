"""A MinAtar run directory (rwrl.minatar.run) and ``rwrl minatar``: seeded reproducibility, the
refits at the steps the rule gives, resume after a kill, a finished run left alone, and bad input
as one line (exit 2) with nothing written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from rwrl.cli import app
from rwrl.metrics.episode_file import read_rows
from rwrl.minatar.run import MinAtarRunConfig, episode_seed, final_score, run_minatar
from rwrl.storage.checkpoint import load_latest

FRAMES = 1_200
#: LS-DQN at a tiny scale: updates from frame 200 on, a refit every 100 updates once the
#: replay holds 350 transitions, checkpoints every 300 frames.
AGENT = dict(replay_capacity=400, min_replay_size=200, ls_batch=350, ls_every=100,
             target_update_period=100, epsilon_decay_frames=500)


def _config(seed: int = 0, **changes) -> MinAtarRunConfig:
    return MinAtarRunConfig(**{"game": "breakout", "agent": "ls-dqn", "frames": FRAMES, "seed": seed,
                               "agent_config": AGENT, "checkpoint_every": 300, **changes})


def _rows(run_dir: Path, name: str = "metrics.jsonl") -> list[dict]:
    return [{k: v for k, v in row.items() if k != "wall_time"} for row in read_rows(run_dir / name)]


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("minatar") / "run"
    run_minatar(_config(), out, progress=False)
    return out


def test_a_run_writes_its_files_and_a_summary(finished):
    assert {p.name for p in finished.iterdir()} == {"config.json", "metrics.jsonl", "refits.jsonl",
                                                   "params.npz", "summary.json"}  # checkpoints removed
    with np.load(finished / "params.npz") as params:
        assert params["['params']['Dense_1']['kernel']"].shape == (128, 6)
    config = json.loads((finished / "config.json").read_text())
    assert config["kind"] == "minatar" and config["dqn_config"]["ls_every"] == 100
    rows = read_rows(finished / "metrics.jsonl")
    summary = json.loads((finished / "summary.json").read_text())
    assert summary["episodes"] == len(rows) > 10
    assert summary["frames"] == FRAMES == rows[-1]["env_steps"] + summary["unfinished_episode_frames"]
    assert sum(r["length"] for r in rows) == rows[-1]["env_steps"]
    assert [r["episode"] for r in rows] == list(range(len(rows)))
    assert summary["updates"] == FRAMES - AGENT["min_replay_size"] + 1  # one a frame from frame 200 on
    assert summary["final_return"] == final_score(rows, FRAMES)
    assert rows[0]["epsilon"] == 1.0 and rows[-1]["epsilon"] == 0.1


def test_refits_fall_on_the_steps_the_rule_gives(finished):
    # Update u runs after frame 199 + u, when the replay holds min(199 + u, 400) transitions; a
    # refit follows it when u % 100 == 0 and the replay holds 350: u = 100 (299 held) is skipped.
    first = AGENT["min_replay_size"] - 1
    expected = [u for u in range(1, FRAMES - first + 1)
                if u % 100 == 0 and min(first + u, AGENT["replay_capacity"]) >= AGENT["ls_batch"]]
    assert expected == [200, 300, 400, 500, 600, 700, 800, 900, 1000]
    refits = read_rows(finished / "refits.jsonl")
    assert [r["updates"] for r in refits] == expected
    assert [r["env_steps"] for r in refits] == [first + u for u in expected]
    assert [r["refit"] for r in refits] == list(range(len(expected)))
    assert all(r["refit_error_after"] <= r["refit_error_before"] for r in refits)
    assert json.loads((finished / "summary.json").read_text())["refits"] == len(expected)


def test_the_same_seed_gives_the_same_run_and_another_seed_another(finished, tmp_path):
    run_minatar(_config(), tmp_path / "again", progress=False)
    assert _rows(tmp_path / "again") == _rows(finished)
    assert _rows(tmp_path / "again", "refits.jsonl") == _rows(finished, "refits.jsonl")
    run_minatar(_config(seed=1), tmp_path / "other", progress=False)
    assert _rows(tmp_path / "other") != _rows(finished)
    assert episode_seed(0, 3) == episode_seed(0, 3) != episode_seed(1, 3)


def test_a_killed_run_resumes_into_the_uninterrupted_rows(finished, tmp_path):
    out = tmp_path / "killed"
    assert run_minatar(_config(), out, progress=False, stop_after=1_000) is None
    checkpoints = sorted(p.name for p in (out / "checkpoints").iterdir() if p.name.startswith("ckpt-"))
    assert len(checkpoints) == 2 and checkpoints[-1] < "ckpt-000000001000"
    assert not (out / "summary.json").exists()
    written = len(read_rows(out / "metrics.jsonl"))
    assert load_latest(out / "checkpoints").meta["metrics_rows"] < written  # rows to cut and write again
    summary = run_minatar(_config(), out, progress=False)
    assert summary["episodes"] == len(_rows(finished)) and written < summary["episodes"]
    assert _rows(out) == _rows(finished)
    assert _rows(out, "refits.jsonl") == _rows(finished, "refits.jsonl")


def test_a_checkpoint_after_the_replay_wrapped_saves_what_it_holds_and_resumes(finished, tmp_path):
    # checkpoint_every above the replay's capacity (the benchmark's 250,000 frames against 100,000):
    # by the first checkpoint the ring has dropped its oldest rows; it saves the 400 it holds.
    out = tmp_path / "wrapped"
    assert run_minatar(_config(checkpoint_every=700), out, progress=False, stop_after=1_000) is None
    checkpoint = load_latest(out / "checkpoints")
    assert checkpoint.step >= 700 and [c["count"] for c in checkpoint.meta["chunks"]] == [AGENT["replay_capacity"]]
    run_minatar(_config(checkpoint_every=700), out, progress=False)
    assert _rows(out) == _rows(finished)
    assert _rows(out, "refits.jsonl") == _rows(finished, "refits.jsonl")


def test_a_finished_run_is_left_alone_and_another_run_is_refused(finished, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(finished, out)
    before = (out / "metrics.jsonl").stat().st_mtime_ns
    assert run_minatar(_config(), out, progress=False) == json.loads((out / "summary.json").read_text())
    assert (out / "metrics.jsonl").stat().st_mtime_ns == before
    with pytest.raises(ValueError, match=r"holds a run with other settings \(frames\): pick another --out$"):
        run_minatar(_config(frames=2_000), out, progress=False)


@pytest.mark.parametrize("changes, message", [
    ({"game": "pong"}, r"^unknown game 'pong': allowed asterix, breakout, freeway, seaquest, space_invaders$"),
    ({"agent": "ddqn"}, r"^unknown agent 'ddqn': allowed dqn, ls-dqn, ls-dqn-adam, ls-dqn-adam-32$"),
    ({"frames": 0}, r"^frames = 0 is not allowed: an integer >= 1$"),
    ({"seed": -1}, r"^seed = -1 is not allowed: an integer in \[0, 4294967295\]$"),
    ({"agent_config": {"ls_every": 0}}, r"^ls_every = 0: must be an integer >= 1 \(or None: no refit\)$"),
    ({"agent_config": {"ls_lambda": -0.5}}, r"^ls_lambda = -0.5: must be finite and >= 0$"),
])
def test_bad_run_settings_are_one_line_errors(changes, message):
    with pytest.raises(ValueError, match=message):
        _config(**changes)


runner = CliRunner()


@pytest.mark.parametrize("args, message", [
    (["--game", "pong"], "error: unknown game 'pong': allowed asterix, breakout, freeway, seaquest, "
                         "space_invaders"),
    (["--game", "breakout", "--agent", "ls-dqn", "--set", "ls_every=0"],
     "error: ls_every = 0: must be an integer >= 1 (or None: no refit)"),
    (["--game", "breakout", "--agent", "ls-dqn", "--set", "ls_lambda=-1"],
     "error: ls_lambda = -1: must be finite and >= 0"),
    (["--game", "breakout", "--frames", "0"], "error: frames = 0 is not allowed: an integer >= 1"),
])
def test_cli_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, args, message):
    out = tmp_path / "run"
    result = runner.invoke(app, ["minatar", "run", "--out", str(out), "--no-progress", *args])
    assert result.exit_code == 2, result.output
    assert result.output.strip() == message
    assert not out.exists()


def test_cli_run_trains_and_the_same_command_finds_it_done(finished, tmp_path):
    out = tmp_path / "cli"
    args = ["minatar", "run", "--game", "breakout", "--agent", "ls-dqn", "--frames", str(FRAMES),
            "--out", str(out), "--checkpoint-every", "300", "--no-progress",
            *[a for k, v in AGENT.items() for a in ("--set", f"{k}={v}")]]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "done: ls-dqn on breakout, 1200 frames" in result.output and "9 refits" in result.output
    assert _rows(out) == _rows(finished)
    again = runner.invoke(app, args)
    assert again.exit_code == 0 and "finished already: nothing to run" in again.output
    listing = runner.invoke(app, ["minatar", "games"])
    assert listing.exit_code == 0 and "breakout" in listing.output and "10x10x4" in listing.output
