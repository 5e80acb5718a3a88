"""benchmarks/lsdqn_minatar.py without training: which agent refits, the learning-curve bins,
the paired intervals and the verdicts on hand-made results, and its page."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import lsdqn_minatar as bench  # noqa: E402
from rwrl.metrics.mean_interval import mean_interval as interval  # noqa: E402


def test_ls_every_reaches_the_ls_agents_only():
    small = {"replay_capacity": 1000, "min_replay_size": 500, "target_update_period": 250, "ls_every": 500}
    assert bench._config("breakout", "dqn", 0, 2000, small).dqn_config().ls_every is None
    for agent in ("ls-dqn", "ls-dqn-adam", "ls-dqn-adam-32"):
        assert bench._config("breakout", agent, 0, 2000, small).dqn_config().ls_every == 500
    assert bench._config("breakout", "ls-dqn", 0, 2000, {}).dqn_config().ls_every == 50_000


def test_curve_bins_the_returns_by_the_frame_their_episode_ended():
    rows = [{"env_steps": 10, "return": 1.0}, {"env_steps": 40, "return": 3.0},
            {"env_steps": 100, "return": 5.0}]
    curve = bench._curve(rows, frames=2000)  # 20 bins of 100 frames: (0, 100], (100, 200], ...
    assert curve[0] == pytest.approx(3.0) and curve[1:] == [None] * 19


def _run(agent: str, seed: int, final: float) -> dict:
    return {"game": "breakout", "agent": agent, "seed": seed, "final_return": final, "mean_return": final,
            "episodes": 10, "refits": 0, "wall_clock_s": 1.0, "curve": [final] * bench.CURVE_BINS}


def test_paired_differences_and_verdicts_of_hand_made_results():
    finals = {"dqn": [1.0, 2.0, 3.0], "ls-dqn": [2.0, 3.1, 3.9], "ls-dqn-adam": [2.0, 3.0, 4.1],
              "ls-dqn-adam-32": [1.0, 2.5, 2.5]}
    per_agent = {a: {s: _run(a, s, v) for s, v in enumerate(values)} for a, values in finals.items()}
    table = bench._game_table(per_agent, interval)
    ls = table["versus_dqn"]["ls-dqn"]["final_return"]
    # seed by seed: 2 - 1, 3.1 - 2, 3.9 - 3 = 1, 1.1, 0.9: mean 1, s 0.1, half width
    # t(0.975, 2) s / sqrt(3) = 4.302653 * 0.1 / 1.732051 = 0.248414
    assert ls == pytest.approx({"mean": 1.0, "std": 0.1, "ci_low": 0.751586, "ci_high": 1.248414, "n": 3},
                               abs=1e-6)
    small = table["versus_dqn"]["ls-dqn-adam-32"]["final_return"]
    assert small["ci_low"] < 0  # differences 0, 0.5, -0.5
    results = {"by_game": {"breakout": table}, "runs": [r for by in per_agent.values() for r in by.values()],
               "frames": 2000, "minatar_frames": 5_000_000, "seeds": 3, "games": ["breakout"],
               "agents": list(finals), "overrides": {}, "interval": "95 % Student-t interval",
               "measured": {"date": "2026-12-06", "machine": "2 CPUs", "command": "python x"}}
    (line,) = bench.verdicts(results)
    assert line.startswith("- breakout: LS-DQN beats DQN: yes (paired difference of the final return 1.00 [")
    assert "the gain is the large batch (full-batch Adam beats DQN too, mini-batch Adam does not): yes" in line
    page = bench.page(results, "lsdqn_minatar.json")
    assert "| ls-dqn - dqn (paired) | 1.00 [" in page and "2,000 frames a run (0.0004 of MinAtar's" in page


SMOKE = ["--games", "breakout", "--agents", "dqn", "--seeds", "1", "--frames", "3000",
         "--set", "replay_capacity=1000", "--set", "min_replay_size=500", "--set", "target_update_period=250"]


def test_the_archive_keeps_finished_runs_and_restores_them_into_a_fresh_root(tmp_path):
    """A run archived as it finishes is summarised from a fresh ROOT exactly as from its own,
    and a plan at other settings does not take it for its own."""
    import json

    archive = tmp_path / "archive"
    assert bench.main(["--root", str(tmp_path / "a"), "--archive", str(archive), "--out", str(tmp_path / "a.json"),
                       *SMOKE]) == 0
    kept = archive / "breakout" / "dqn" / "seed0"
    assert sorted(p.name for p in kept.iterdir()) == ["config.json", "metrics.jsonl.gz", "refits.jsonl",
                                                      "summary.json"]
    assert bench.main(["--root", str(tmp_path / "b"), "--archive", str(archive), "--out", str(tmp_path / "b.json"),
                       "--summarize-only", *SMOKE]) == 0
    first, second = (json.loads((tmp_path / f"{x}.json").read_text()) for x in "ab")
    assert second["runs"] == first["runs"] and len(first["runs"]) == 1
    longer = [a if a != "3000" else "4000" for a in SMOKE]
    assert bench.main(["--root", str(tmp_path / "c"), "--archive", str(archive), "--out", str(tmp_path / "c.json"),
                       "--summarize-only", *longer]) == 1  # nothing restored: one run left
    assert not (tmp_path / "c" / "breakout" / "dqn" / "seed0" / "summary.json").exists()
