"""evaluate_run and evaluate_seeds on small hand-written episode files."""

import json
import math

import pytest

from rwrl.metrics import evaluate_run, evaluate_seeds, read_episodes

T975_DOF2 = 4.302652729911275  # Student-t 97.5 % quantile, 2 degrees of freedom


def write_rows(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def run_rows(returns, phase="train"):
    """Rows with returns as given; violations of "a" = episode index, length 10, misses 1."""
    return [{"episode": i, "env_index": 0, "return": r, "length": 10, "violations/a": i,
             "violation_rate/a": i / 10, "multiobj/reward": r, "multiobj/safety": 1.0,
             "deadline_misses": 1, "phase": phase} for i, r in enumerate(returns)]


def test_evaluate_run_gives_every_evaluator(tmp_path):
    # Returns [0, 2, 4, 3, 6], W = 3 -> windows [0,2,4]=2, [2,4,3]=3, [4,3,6]=13/3.
    # Final window [4,3,6]: mean 13/3, s^2 = ((-1/3)^2 + (-4/3)^2 + (5/3)^2) / 2 = 7/3,
    # sem = sqrt(7/9), lower = 13/3 - 4.3027 * sqrt(7)/3 = 0.5388, so window 0 (mean 2)
    # converges: regret 0, instability = share of episodes 1..4 below 0.5388 = 0.
    path = write_rows(tmp_path / "run.jsonl", run_rows([0.0, 2.0, 4.0, 3.0, 6.0]))
    summary = evaluate_run(path, window=3)
    assert summary == pytest.approx({
        "episodes": 5, "steps": 50,
        "return/final": 13 / 3, "return/convergence_episode": 0, "return/absolute_regret": 0.0,
        "return/normalized_regret": 0.0, "return/normalized_instability": 0.0,
        "violations/a": 0 + 1 + 2 + 3 + 4, "violation_rate/a": 0.2,
        "multiobj/reward": 3.0, "multiobj/safety": 1.0,
        "deadline_miss_rate": 0.1,
        "divergences": 0,  # the rows do not report divergence: none
    })
    assert 13 / 3 - T975_DOF2 * math.sqrt(7) / 3 < 2.0  # the convergence claim above


def test_evaluate_run_concatenates_files_and_filters_phase(tmp_path):
    # Train [1, 3] + eval [10] in two files; phase "train" keeps [1, 3]: W = 1 ->
    # final 3, convergence at episode 1 (first return >= 3), regret 3 - 1 = 2.
    first = write_rows(tmp_path / "a.jsonl", run_rows([1.0, 3.0]))
    second = write_rows(tmp_path / "b.jsonl", run_rows([10.0], phase="eval"))
    assert read_episodes([first, second])["return"].tolist() == [1.0, 3.0, 10.0]
    summary = evaluate_run([first, second], window=1, phase="train")
    assert (summary["episodes"], summary["return/final"], summary["return/absolute_regret"]) == (2, 3.0, 2.0)


def test_evaluate_seeds_mean_and_std(tmp_path):
    # Seed finals (W = 1, last return) 3 and 5: mean 4, population std 1.
    runs = [write_rows(tmp_path / f"s{seed}.jsonl", run_rows([1.0, final]))
            for seed, final in enumerate([3.0, 5.0])]
    summary = evaluate_seeds(runs, window=1)
    assert summary["return/final"] == {"mean": 4.0, "std": 1.0, "count": 2}
    assert summary["episodes"] == {"mean": 2.0, "std": 0.0, "count": 2}


def test_bad_runs_raise(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(ValueError, match="no episodes"):
        evaluate_run(empty)
    with pytest.raises(ValueError, match="path: no episode file"):
        evaluate_run(tmp_path / "missing.jsonl")
    no_phase = write_rows(tmp_path / "p.jsonl", [{"return": 1.0, "length": 3}])
    with pytest.raises(ValueError, match="missing column 'phase'"):
        evaluate_run(no_phase, phase="train")
    with pytest.raises(ValueError, match="phase: no episodes"):
        evaluate_run(write_rows(tmp_path / "q.jsonl", run_rows([1.0])), phase="eval")
    with pytest.raises(ValueError, match="missing column 'length'"):
        evaluate_run(write_rows(tmp_path / "r.jsonl", [{"return": 1.0}]))
    with pytest.raises(ValueError, match="window"):
        evaluate_run(no_phase, window=0)
    with pytest.raises(ValueError, match="runs: no seeds"):
        evaluate_seeds([])
