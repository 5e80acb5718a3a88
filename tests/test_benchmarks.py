"""The benchmarks run and print the JSON their readers expect (no timing is asserted)."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import throughput  # noqa: E402

#: the ladder of public configurations whose per-step cost the benchmark reports.
STAGES = ("plain", "layer_only", "delay", "gaussian", "dropped", "stuck", "repetition",
          "dimensionality", "perturb", "safety", "hard", "hard+safety")


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """Run the benchmark once in --quick mode on cartpole; return (JSON, stdout)."""
    out = tmp_path_factory.mktemp("bench") / "throughput.json"
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "throughput.py"),
                           "--domains", "cartpole", "--quick", "--out", str(out)],
                          check=True, capture_output=True, text=True, timeout=300)
    return json.loads(out.read_text()), done.stdout, out


def _finite_positive(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def test_throughput_benchmark_reports_every_figure_and_ratio_of_one_run(quick_run):
    result, _, _ = quick_run
    row = result["domains"]["cartpole"]
    for key in ("raw_step", "dm_control", "rwrl_single", "hard_single", "rwrl_vector_4",
                "raw_rollout_4", "rwrl_vector_64", "raw_rollout_64", "hard_vector_64",
                "ratio_dm_control_over_raw_step", "ratio_single_over_raw_step",
                "ratio_hard_single_over_raw_step", "ratio_single_over_dm_control",
                "ratio_hard_single_over_dm_control", "ratio_vector_over_raw_4",
                "ratio_hard_vector_over_raw_64"):
        assert _finite_positive(row[key]), key
    # ratios are of figures of the same run (each rounded to 3 decimals after division)
    assert row["ratio_single_over_raw_step"] == pytest.approx(
        row["rwrl_single"] / row["raw_step"], abs=1e-3)
    assert row["ratio_hard_vector_over_raw_64"] == pytest.approx(
        row["hard_vector_64"] / row["raw_rollout_64"], abs=1e-3)


def test_throughput_benchmark_reports_the_cost_of_each_stage_of_hard(quick_run):
    costs = quick_run[0]["domains"]["cartpole"]["stage_costs"]
    assert tuple(costs) == STAGES
    for name, cost in costs.items():
        assert _finite_positive(cost["us_per_step"]), name
        assert math.isfinite(cost["extra_us_over_plain"]), name
    assert costs["plain"]["extra_us_over_plain"] == 0.0


def test_throughput_benchmark_compares_with_envpool_or_says_why_not(quick_run):
    result, stdout, _ = quick_run
    row = result["domains"]["cartpole"]
    if "cartpole" in result["envpool"]["skipped"]:
        assert "envpool" in result["envpool"]["skipped"]["cartpole"]
        assert "envpool_64" not in row
    else:
        for key in ("envpool_64", "ratio_vector_over_envpool_64",
                    "ratio_hard_vector_over_envpool_64"):
            assert _finite_positive(row[key]), key
    assert "Stage costs at N=1" in stdout and "Goals" in stdout


def test_throughput_benchmark_states_each_goal_with_its_value_and_verdict(quick_run):
    goals = quick_run[0]["domains"]["cartpole"]["goals"]
    names = {g["goal"] for g in goals}
    assert {"single / dm_control", "hard single / dm_control"} <= names
    for g in goals:
        assert math.isfinite(g["value"]) and g["op"] in ("<=", ">=")
        assert g["met"] == (g["value"] <= g["bound"] if g["op"] == "<="
                            else g["value"] >= g["bound"])


def test_throughput_benchmark_writes_its_results_page_and_page_only_rewrites_the_same(quick_run):
    result, _, out = quick_run
    page = out.with_suffix(".md").read_text()
    assert result["measured"]["command"].startswith("python benchmarks/throughput.py --domains cartpole")
    assert f"- Date: {result['measured']['date']}\n" in page
    assert "| cartpole | N |" not in page and "| domain | N | rwrl vector | raw rollout | ratio |" in page
    out.with_suffix(".md").write_text("stale")
    throughput.main(["--page-only", "--out", str(out)])
    assert out.with_suffix(".md").read_text() == page


def test_goals_compare_vector_figures_with_the_stored_run_normalised_by_raw_rollout():
    # stored: vector/raw 0.8; now 0.76 (= 0.95 of it: met) and 0.7 (0.875: missed)
    base = {"ratio_vector_over_raw_64": 0.8}
    row = {"ratio_single_over_dm_control": 1.6, "ratio_vector_over_raw_64": 0.76}
    (stored,) = [g for g in throughput.goals("cartpole", row, base) if "stored" in g["goal"]]
    assert stored["value"] == pytest.approx(0.95) and stored["met"]
    row["ratio_vector_over_raw_64"] = 0.7
    (stored,) = [g for g in throughput.goals("cartpole", row, base) if "stored" in g["goal"]]
    assert stored["value"] == pytest.approx(0.875) and not stored["met"]


def test_walker_goal_is_the_single_env_time_over_the_raw_step_time():
    row = {"ratio_single_over_raw_step": 0.8}  # 1.25x the raw step time: within 1.3x
    (goal,) = throughput.goals("walker", row, None)
    assert goal["value"] == pytest.approx(1.25) and goal["op"] == "<=" and goal["met"]


def test_claim_tables_are_strict_json_with_missing_figures_as_null(tmp_path, capsys):
    import numpy as np
    import sweep_file

    table = [{"mean": np.float64(812.5), "ci_low": math.nan, "ci_high": float("inf"),
              "n_seeds": np.int64(1), "per_seed": (1.0, math.nan)}]
    path = sweep_file.write_tables(tmp_path / "out", "claim", ["# claim", "| a |"], table)
    assert path == tmp_path / "out" / "claim.md"
    assert path.read_text() == "# claim\n| a |\n"
    assert "# claim" in capsys.readouterr().out
    text = (tmp_path / "out" / "claim.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == [{"mean": 812.5, "ci_low": None, "ci_high": None, "n_seeds": 1,
                                 "per_seed": [1.0, None]}]
    # a rerun rewrites the table and keeps the notes written by hand below the marker
    import results_page
    path.write_text(path.read_text() + "\n" + results_page.NOTES_MARKER + "\n\nWhy.\n")
    sweep_file.write_tables(tmp_path / "out", "claim", ["# claim", "| b |"], table)
    assert path.read_text() == "# claim\n| b |\n\n" + results_page.NOTES_MARKER + "\n\nWhy.\n"


def test_paper_table_reads_the_task_reward_of_the_last_evaluation_not_the_multiobjective_mix():
    import pandas as pd
    import paper_sweeps

    episodes = pd.DataFrame({
        "run_id": ["plain", "plain", "plain", "mix", "mix", "mix"],
        "phase": ["eval", "eval", "train", "eval", "eval", "eval"],
        "env_steps": [1000, 2000, 2500, 2000, 2000, 1000],
        "return": [100.0, 300.0, 999.0, 700.0, 720.0, 5.0],
        # under a multi-objective reward the return is the mix; the task reward is its own column
        "multiobj/reward": [math.nan, math.nan, math.nan, 400.0, 420.0, 1.0],
    })
    got = paper_sweeps.final_task_reward(episodes)
    assert got.to_dict() == {"mix": 410.0, "plain": 300.0}


def test_paper_verdicts_check_the_direction_level_by_level():
    import pandas as pd
    import paper_sweeps

    def verdict(means, lows, highs, direction):
        order = [str(i) for i in range(len(means))]
        table = pd.DataFrame({"magnitude": order, "mean": means, "ci_low": lows,
                              "ci_high": highs, "n_seeds": [2] * len(means)})
        _, stats = paper_sweeps._cells(table, str)
        return paper_sweeps._verdict(order, stats, direction)

    assert verdict([800, 500, 200], [780, 400, 150], [820, 600, 250], "falls") == \
        "yes (first and last intervals apart)"
    assert verdict([800, 850, 200], [700, 800, 100], [900, 900, 750], "falls") == \
        "partly: first vs last, not level by level (intervals overlap)"
    assert verdict([1.0, 5.0, 30.0], [0.0, 2.0, 20.0], [2.0, 8.0, 40.0], "rises") == \
        "yes (first and last intervals apart)"
    assert verdict([1.0, 5.0, 30.0], [0.0, 2.0, 20.0], [2.0, 8.0, 40.0], "falls") == \
        "no (intervals overlap)"
    assert verdict([800, math.nan], [780, math.nan], [820, math.nan], "falls") == \
        "not yet (too few levels finished)"
    # a level not finished yet: the verdict reads the finished ones and says so
    assert verdict([858, 716, math.nan, math.nan], [852, 649, math.nan, math.nan],
                   [865, 784, math.nan, math.nan], "falls") == \
        "yes (first and last intervals apart); 2 of 4 levels finished"


def test_robust_table_reports_the_held_out_return_beside_the_loss(tmp_path, monkeypatch):
    import argparse
    import robust

    # a robust agent good everywhere but best at nominal loses more than a baseline poor everywhere
    table = {"rmpo": {1.0: [600.0, 600.0], 1.125: [400.0, 400.0], 2.0: [300.0, 300.0]},
             "dmpo (nominal)": {1.0: [200.0, 200.0], 1.125: [190.0, 190.0], 2.0: [150.0, 150.0]}}
    monkeypatch.setattr(robust, "returns_by_length", lambda args: table)
    monkeypatch.setattr(robust.sweep_file, "scale_of", lambda root: "test scale")
    args = argparse.Namespace(root=tmp_path, out=tmp_path / "out", evaluations=2)
    text = robust.summarize(args).read_text()
    assert "| rmpo | " in text and "| 200 | 300 | 400 | 300 |" in text  # losses, then means
    assert "- rmpo, held-out inside: dmpo (nominal): no (200 vs 10)" in text
    assert "- rmpo returns more, held-out outside: dmpo (nominal): yes (300 vs 150)" in text
    summary = json.loads((tmp_path / "out" / "robust.json").read_text())
    assert summary["rmpo"]["mean_inside"] == 400.0 and summary["dmpo (nominal)"]["loss_outside"] == 50.0


def test_offline_benchmark_makes_every_published_dataset_but_trains_only_the_sweep_files(tmp_path, capsys):
    import offline
    from rwrl.datasets.behaviour_policies import MANIFEST_FORMAT, write_manifest

    with pytest.raises(SystemExit):
        offline.main(["--root", str(tmp_path), "--tasks", "pendulum-swingup"])
    err = capsys.readouterr().err
    assert "pendulum-swingup" in err and "humanoid-walk" in err and "100" in err
    # quadruped at 40 % is a dataset to make, not one the sweep file trains on: no sweep starts
    snapshot = {"fraction": 0.75, "env_steps": 200_000, "mean_return": 512.0, "path": "run/c", "sha256": "0"}
    (tmp_path / "policies" / "quadruped-walk-none").mkdir(parents=True)
    write_manifest(tmp_path / "policies" / "quadruped-walk-none" / "manifest.json",
                   {"format": MANIFEST_FORMAT, "task": "quadruped-walk", "challenge": "none",
                    "steps": 300_000, "best_return": 700.0, "snapshots": [snapshot]})
    assert offline.main(["--root", str(tmp_path), "--out", str(tmp_path / "out"), "--tasks", "quadruped-walk",
                         "--challenges", "none", "--sizes", "40", "--stages", "agents"]) == 0
    assert not (tmp_path / "sweeps").exists()
    text = (tmp_path / "out" / "offline.md").read_text()
    assert "| quadruped-walk | none | 300000 | 700.0 | 200000: 512.0 |" in text


def test_offline_merge_fills_what_root_lacks_and_roots_figures_win(tmp_path):
    import offline
    from rwrl.datasets.behaviour_policies import MANIFEST_FORMAT, write_manifest

    previous = tmp_path / "previous.json"
    previous.write_text(json.dumps({
        "scores": {"rwrl/walker-walk-none-5pct-v0|bc": [50.0, 60.0]},
        "datasets": {"rwrl/walker-walk-none-5pct-v0": {"episodes": 250, "bytes": 4e7, "steps_per_s": 4871},
                     "rwrl/quadruped-walk-none-40pct-v0": {"episodes": 1, "bytes": 1, "steps_per_s": 1}},
        "policies": [{"task": "walker-walk", "challenge": "none", "steps": 300_000, "best_return": 830.0,
                      "snapshot_step": 232_000, "snapshot_return": 575.0},
                     {"task": "quadruped-walk", "challenge": "none", "steps": 1, "best_return": 1.0,
                      "snapshot_step": 1, "snapshot_return": 1.0}],
        "updates": [20000]}))
    root = tmp_path / "root"
    (root / "policies" / "quadruped-walk-none").mkdir(parents=True)
    snapshot = {"fraction": 0.75, "env_steps": 200_000, "mean_return": 512.0, "path": "run/c", "sha256": "0"}
    write_manifest(root / "policies" / "quadruped-walk-none" / "manifest.json",
                   {"format": MANIFEST_FORMAT, "task": "quadruped-walk", "challenge": "none",
                    "steps": 300_000, "best_return": 700.0, "snapshots": [snapshot]})
    (root / offline.DATASETS_FILE).write_text(json.dumps(
        {"rwrl/quadruped-walk-none-40pct-v0": {"episodes": 200, "bytes": 8e7, "steps_per_s": 3588}}))
    out = tmp_path / "out"
    assert offline.main(["--root", str(root), "--out", str(out), "--summarize-only",
                         "--merge", str(previous)]) == 0
    table = json.loads((out / "offline.json").read_text())
    assert table["scores"] == {"rwrl/walker-walk-none-5pct-v0|bc": [50.0, 60.0]}
    assert table["datasets"]["rwrl/quadruped-walk-none-40pct-v0"]["episodes"] == 200  # ROOT's wins
    assert table["datasets"]["rwrl/walker-walk-none-5pct-v0"]["steps_per_s"] == 4871  # carried over
    assert [(p["task"], p["best_return"]) for p in table["policies"]] == [("quadruped-walk", 700.0),
                                                                         ("walker-walk", 830.0)]
    assert "carried over from an earlier table by `--merge`: 1 of 1" in (out / "offline.md").read_text()


def test_constrained_table_scores_penalized_return_and_checks_metal_per_setting(tmp_path, monkeypatch):
    import argparse
    import constrained

    def score(label, beta, seed, R, J_C):
        return {"env": "cartpole-swingup", "safety_coeff": 0.3, "beta": beta, "label": label,
                "seed": seed, "learns_lambda": label == "metal", "R": R, "J_C": J_C}

    scores = []
    for seed in (0, 1):
        for beta in (0.05, 0.15):  # the reward-only baseline is scored at both thresholds
            scores.append(score("d4pg (reward only)", beta, seed, 400.0, 0.25))
        # at beta=0.05 MetaL overshoots by 0.05: R_pen 300 - 50 = 250, above D4PG's 400 - 200 = 200
        scores.append(score("metal", 0.05, seed, 300.0, 0.10))
        # at beta=0.15 MetaL is within the threshold but returns less than D4PG's penalized 300
        scores.append(score("metal", 0.15, seed, 250.0, 0.10))
    monkeypatch.setattr(constrained, "run_scores", lambda args: scores)
    monkeypatch.setattr(constrained.sweep_file, "scale_of", lambda root: "test scale")
    args = argparse.Namespace(root=tmp_path, out=tmp_path / "out", evaluations=2)
    text = constrained.summarize(args).read_text()
    rows = {line.split(" | ")[2]: line for line in text.splitlines() if line.startswith("| cartpole")}
    assert "(R 400, psi 0.200)" in rows["0.05"] and "(R 300, psi 0.050)" in rows["0.05"]
    assert rows["0.05"].endswith("| yes |")  # 250 >= 200
    assert "(R 250, psi 0.000)" in rows["0.15"] and rows["0.15"].endswith("| no |")  # 250 < 300
    table = json.loads((tmp_path / "out" / "constrained.json").read_text())
    pen = {(r["agent"], r["beta"]): r["R_pen"]["mean"] for r in table}
    assert pen == {("d4pg (reward only)", 0.05): 200.0, ("metal", 0.05): 250.0,
                   ("d4pg (reward only)", 0.15): 300.0, ("metal", 0.15): 250.0}
    assert (tmp_path / "out" / "constrained.png").stat().st_size > 0


def test_learner_benchmark_counts_an_updates_work_and_times_it_fused_and_not(tmp_path):
    import learner
    row = learner.measure_config("d4pg-fast", "cartpole-swingup", reps=1)
    # Two layers of 128, batch 128: about 235k multiply-adds per sample (target actor and critic,
    # critic forward and backward, actor through the critic), 2 x 235k x 128 = 60 MFLOP.
    assert 50 < row["mflop_per_update"] < 75 and row["batch_size"] == 128
    assert set(row["ms_per_update"]) == {"1", "2", "16"} and min(row["ms_per_update"].values()) > 0
    overlap = {"act_and_step": 0.5, "in_turn": 10.0, "overlapped": 9.8}
    results = {"measured": {"date": "2026-12-06", "machine": "2 CPUs", "command": "python x.py"},
               "settings": {"default": {"rows": [row], "matmul_gflops": {"256": 100.0, "1024": 200.0},
                                        "overlap_ms_per_vector_step": {"cartpole-swingup": overlap}}}}
    text = learner.page(results, str(tmp_path / "learner.json"))
    assert "| cartpole-swingup | 0.50 | 10.00 | 9.80 | 2 % |" in text
    assert "100 GFLOP/s at 256 x 256" in text


def test_paper_sweeps_name_their_page_and_refuse_unknown_levels(capsys):
    import argparse
    import paper_sweeps

    def args(**kw):
        return argparse.Namespace(**{"envs": ("cartpole-swingup",), "agents": ("d4pg",), "page": None, **kw})
    assert paper_sweeps.page_name(args()) == "cartpole-swingup"  # the issue-8 page keeps its name
    assert paper_sweeps.page_name(args(agents=("dmpo",), page="walker-hard")) == "walker-hard"
    with pytest.raises(SystemExit, match="--page: needed when the sweeps hold several envs"):
        paper_sweeps.page_name(args(envs=("walker-walk", "quadruped-walk")))
    with pytest.raises(SystemExit):
        paper_sweeps.main(["--levels", "none,extreme", "--summarize-only"])
    assert "--levels: unknown ['extreme']; allowed none, easy, medium, hard" in capsys.readouterr().err


def test_bandits_benchmark_fits_slopes_and_states_its_verdicts(tmp_path):
    import bandits
    import numpy as np
    rng = np.random.default_rng(0)
    horizons = [1000, 10000, 100000]
    per_seed = np.outer(np.ones(5), [10.0, 100.0, 1000.0])
    fit = bandits.slope_interval(horizons, per_seed, rng)  # R = T / 100: slope 1 exactly
    assert abs(fit["slope"] - 1) < 1e-12 and abs(fit["low"] - 1) < 1e-12
    assert 0.69 < bandits.bound_slope(horizons) < 0.72  # T^(2/3) ln^(1/3): a little above 2/3
    # the order at the end (a above b) holds from step 30 on
    assert bandits._crossover([1, 10, 30, 100], [1.0, 0.5, 2.0, 3.0], [1.0, 1.0, 1.0, 1.0]) == 30
    assert bandits._crossover([1, 10], [1.0, 1.0], [1.0, 1.0]) is None
    linear = {"slope": {"slope": 1.05, "low": 1.0, "high": 1.1}, "last_slope": {"low": 0.5}}
    assert bandits.step_verdicts("ucb1", linear, 0.7) == [
        ("linear: slope >= 0.9, over the range and its last segment", "does not hold")]
    out = tmp_path / "bandits.json"
    bandits.main(["--parts", "step", "--seeds", "4", "--horizons", "200", "800", "--out", str(out)])
    text = (tmp_path / "bandits.md").read_text()
    assert "| step (scaled switch) | SWA: sublinear: slope < 1 |" in text
    assert f"--parts step --seeds 4 --horizons 200 800 --out {out}" in text
    assert (tmp_path / "bandits-step.png").is_file()


def test_realtime_distill_latency_summary_is_the_median_and_p99_of_the_recorded_samples():
    import realtime_distill
    samples = [float(k) for k in range(1, 101)]  # 1 .. 100 "seconds", shuffled below
    rng = __import__("numpy").random.default_rng(0)
    summary = realtime_distill.latency_summary(list(rng.permutation(samples)))
    assert summary["count"] == 100
    assert summary["median_s"] == 50.5
    assert summary["p99_s"] == pytest.approx(99.01)  # linear interpolation between 99 and 100
    assert summary["max_s"] == 100.0 and summary["mean_s"] == 50.5
    with pytest.raises(ValueError, match="non-empty"):
        realtime_distill.latency_summary([])


def test_realtime_distill_miss_rate_counts_steps_with_missed_periods_and_methods_follow_the_teacher(tmp_path):
    import realtime_distill
    assert realtime_distill.miss_rate([0, 3, 0, 1]) == 0.5
    assert realtime_distill.miss_rate([0, 0]) == 0.0
    teacher = tmp_path / "run" / "checkpoints" / "ckpt-1"
    assert realtime_distill.method_of(str(teacher), str(teacher)) == "direct"
    assert realtime_distill.method_of(str(tmp_path / "out" / "student-1-32"), str(teacher)) == "assistant"
