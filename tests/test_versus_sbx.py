"""benchmarks/versus_sbx.py: its summaries, page, resumable sitting, and a short sbx run."""

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import versus_sbx  # noqa: E402

TIMING = {"learner": 8.0, "compile": 2.0, "eval": 5.0, "total": 25.0, "env": 6.0}


def _run(contestant, seed, steps, wall, task="cartpole-swingup", updates=1001):
    """A hand-made result: reached at ``steps`` (None: not) in ``wall`` seconds."""
    return {"task": task, "contestant": contestant, "seed": seed, "threshold": 750.0,
            "cap": 150_000, "reached": steps is not None, "steps_to_threshold": steps,
            "wall_clock_to_threshold_s": wall if steps is not None else None,
            "final_eval_return": 800.0 if steps is not None else 412.5, "env_steps": steps or 150_000,
            "eval_curve": [], "wall_clock_s": wall, "updates": updates, "compiles": 1,
            "time_per_update_ms": 2.0, "updates_per_s": 100.0, "outside_learner_share": 0.25,
            "timing_s": TIMING, "measured": {"date": "2026-12-06", "machine": "test cpu",
                                             "command": "python benchmarks/versus_sbx.py"}}


def _runs():
    return [_run("rwrl-d4pg-fast", 0, 20_000, 30.0), _run("rwrl-d4pg-fast", 1, 10_000, 10.0),
            _run("rwrl-d4pg-fast", 2, 30_000, 50.0),
            _run("sbx-sac", 0, 50_000, 200.0), _run("sbx-sac", 1, None, 900.0),
            _run("sbx-sac", 2, 40_000, 100.0)]


def test_speed_figures_are_over_the_wall_clock_less_evaluation():
    figures = versus_sbx.speed_figures(TIMING, updates=1001, compiles=1)
    assert figures["wall_clock_s"] == 20.0
    assert figures["time_per_update_ms"] == pytest.approx(8.0)  # 8 s / 1000 updates
    assert figures["updates_per_s"] == pytest.approx(1001 / 20.0)
    assert figures["outside_learner_share"] == pytest.approx(0.5)


def test_a_run_reaches_at_its_first_evaluation_at_or_above_the_threshold():
    curve = [[0, 10.0], [5000, 760.0], [10000, 740.0]]
    result = versus_sbx.run_record("cartpole-swingup", "sbx-sac", 0, 750.0, 150_000, curve,
                                   10_001, TIMING, 1001, 1)
    assert result["reached"] and result["steps_to_threshold"] == 5000
    assert result["wall_clock_to_threshold_s"] == 20.0 and result["final_eval_return"] == 740.0
    missed = versus_sbx.run_record("cartpole-swingup", "sbx-sac", 0, 800.0, 150_000, curve,
                                   10_001, TIMING, 1001, 1)
    assert not missed["reached"] and missed["steps_to_threshold"] is None
    assert missed["wall_clock_to_threshold_s"] is None


def test_summary_takes_exact_medians_and_counts_a_seed_that_missed_as_never():
    groups = versus_sbx.group(_runs())
    assert list(groups["cartpole-swingup"]) == ["rwrl-d4pg-fast", "sbx-sac"]
    rwrl = versus_sbx.summarise(groups["cartpole-swingup"]["rwrl-d4pg-fast"])
    assert (rwrl["reached"], rwrl["seeds"]) == (3, 3)
    assert rwrl["steps"]["median"] == 20_000 and rwrl["wall_clock_s"]["median"] == 30.0
    assert 10_000 <= rwrl["steps"]["low"] <= 20_000 <= rwrl["steps"]["high"] <= 30_000
    sbx = versus_sbx.summarise(groups["cartpole-swingup"]["sbx-sac"])
    assert (sbx["reached"], sbx["seeds"]) == (2, 3)
    # 40k, 50k and never: the median is 50k; no interval with a seed that missed
    assert sbx["steps"] == {"median": 50_000.0, "low": None, "high": None}
    assert sbx["wall_clock_s"]["median"] == 200.0
    assert sbx["updates"] == 1001 and sbx["outside_learner_share"] == 0.25


def test_a_median_of_mostly_missing_seeds_is_not_reached():
    assert versus_sbx.median_interval([None, None, 5.0])["median"] is None
    assert versus_sbx.median_interval([3.0, 3.0, 3.0]) == {"median": 3.0, "low": 3.0, "high": 3.0}


def test_the_ratio_line_compares_the_fastest_rwrl_contestant_with_sbx():
    runs = _runs() + [_run("rwrl-dmpo-paper", s, 90_000, 190.0) for s in range(3)]
    summaries = {name: versus_sbx.summarise(rs)
                 for name, rs in versus_sbx.group(runs)["cartpole-swingup"].items()}
    line = versus_sbx.ratio_line("cartpole-swingup", summaries)
    assert line == ("cartpole-swingup: rwrl-d4pg-fast / sbx-sac median wall-clock to the threshold "
                    "= 30.0 s / 200.0 s = 0.15; the goal (<= 1/3) holds.")
    slow = {name: versus_sbx.summarise(rs) for name, rs in versus_sbx.group(
        runs[3:])["cartpole-swingup"].items()}
    assert versus_sbx.ratio_line("cartpole-swingup", slow).endswith("= 0.95; the goal (<= 1/3) does not hold.")
    missed = {"sbx-sac": versus_sbx.summarise([_run("sbx-sac", s, None, 900.0) for s in range(3)]),
              "rwrl-d4pg-fast": summaries["rwrl-d4pg-fast"]}
    assert "sbx-sac's median does not reach" in versus_sbx.ratio_line("cartpole-swingup", missed)


def test_the_page_has_a_table_per_task_the_ratio_and_the_seeds(tmp_path):
    runs = _runs() + [_run("sbx-sac", 0, None, 1800.0, task="walker-walk")]
    text = versus_sbx.page({"runs": runs, "measured": runs[0]["measured"]}, str(tmp_path / "v.json"))
    assert "## cartpole-swingup: return >= 750" in text and "## walker-walk: return >= 750" in text
    assert "| rwrl-d4pg-fast | 3 of 3 | 20,000 [" in text
    assert "| sbx-sac | 2 of 3 | 50,000 | 200.0 | 1,001 | 2.00 | 100 | 0.25 |" in text
    assert "| sbx-sac | 0 of 1 | not reached | not reached |" in text
    assert "= 0.15; the goal (<= 1/3) holds." in text
    assert "## Per seed" in text and "| cartpole-swingup | sbx-sac | 1 | 150,000 | not reached |" in text
    assert "- Command: `python benchmarks/versus_sbx.py`" in text and "test cpu" in text


def test_page_only_rewrites_the_page_of_the_results(tmp_path):
    results = tmp_path / "versus_sbx.json"
    results.write_text(json.dumps({"runs": _runs(), "measured": _runs()[0]["measured"]}))
    assert versus_sbx.main(["--page-only", "--results", str(results)]) == 0
    assert "rwrl-d4pg-fast" in results.with_suffix(".md").read_text()


def test_a_sitting_skips_finished_runs_and_writes_each_result_and_the_page(tmp_path):
    root = tmp_path / "root"
    versus_sbx._write_json(versus_sbx.result_path(root, "cartpole-swingup", "sbx-sac", 0),
                           _run("sbx-sac", 0, 50_000, 200.0))
    calls = []

    def runner(task, contestant, seed, threshold, cap, run_dir, eval_every):
        calls.append((task, contestant, seed, threshold, cap, eval_every))
        return _run(contestant, seed, 10_000, 10.0)

    out = root / "versus_sbx.json"
    versus_sbx.sitting(["cartpole-swingup"], ["rwrl-d4pg-fast", "sbx-sac"], [0, 1], root, out,
                       ["--seeds", "0", "1"], cap=3000, eval_every=100, runner=runner)
    assert calls == [("cartpole-swingup", "rwrl-d4pg-fast", 0, 750.0, 3000, 100),
                     ("cartpole-swingup", "rwrl-d4pg-fast", 1, 750.0, 3000, 100),
                     ("cartpole-swingup", "sbx-sac", 1, 750.0, 3000, 100)]
    overview = json.loads(out.read_text())
    assert len(overview["runs"]) == 4
    assert overview["measured"]["command"] == "python benchmarks/versus_sbx.py --seeds 0 1"
    assert "| rwrl-d4pg-fast | 2 of 2 |" in out.with_suffix(".md").read_text()
    calls.clear()
    versus_sbx.sitting(["cartpole-swingup"], ["rwrl-d4pg-fast", "sbx-sac"], [0, 1], root, out,
                       [], runner=runner)
    assert calls == []


def test_contestant_names_are_checked():
    assert versus_sbx.parse_contestant("sbx-sac") is None
    assert versus_sbx.parse_contestant("rwrl-dmpo-paper") == ("dmpo", "paper")
    assert versus_sbx.agent_config_for("fast") == {"preset": "fast"}
    for bad in ("rwrl-d4pg", "rwrl-nope-fast", "rwrl-d4pg-slow", "rwrl-dmpo-fast", "sac"):
        with pytest.raises(ValueError, match="contestant"):
            versus_sbx.parse_contestant(bad)
    with pytest.raises(SystemExit):
        versus_sbx.main(["--contestants", "rwrl-d4pg-slow"])


def test_sbx_sac_runs_to_its_cap_with_an_evaluation_every_100_steps(tmp_path):
    pytest.importorskip("sbx")
    result = versus_sbx.run_sbx("cartpole-swingup", "sbx-sac", 0, 1e9, 300, tmp_path, eval_every=100)
    assert [step for step, _ in result["eval_curve"]] == [100, 200, 300]
    assert not result["reached"] and result["env_steps"] == 300
    # sbx's defaults: learning starts after 100 steps, one gradient step per env step
    assert (result["updates"], result["compiles"]) == (200, 1)
    assert result["timing_s"]["eval"] > 0 and result["timing_s"]["compile"] > 0
    assert 0 < result["outside_learner_share"] < 1


def test_an_rwrl_run_stops_at_its_first_evaluation_reaching_the_threshold(tmp_path):
    run_dir = tmp_path / "runs" / "rwrl-d4pg-paper-seed0"
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text("{}")  # an interrupted run: started again from scratch
    result = versus_sbx.run_rwrl("cartpole-swingup", "rwrl-d4pg-paper", 0, -1e9, 300, run_dir,
                                 eval_every=100)
    assert result["reached"] and result["steps_to_threshold"] == 0
    assert result["eval_curve"][0][0] == 0 and len(result["eval_curve"]) == 1
    assert result["env_steps"] < 300 and result["timing_s"]["eval"] > 0
    assert result["wall_clock_to_threshold_s"] == result["timing_s"]["total"] - result["timing_s"]["eval"]


def test_without_sbx_the_sitting_stops_before_any_run_naming_the_extra(monkeypatch, capsys):
    monkeypatch.setattr(versus_sbx.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(SystemExit):
        versus_sbx.main(["--seeds", "7", "--root", "/nonexistent/never-written"])
    assert "sbx-sac needs sbx: pip install -e '.[integrations]'" in capsys.readouterr().err
