"""The benchmarks run and print the JSON their readers expect (no timing is asserted)."""

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
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


def test_publish_makes_the_missing_folder_of_its_out_path_instead_of_losing_the_measurement(tmp_path, capsys):
    import results_page
    out = tmp_path / "not" / "yet" / "bench.json"
    results_page.publish({"x": 1}, out, lambda path: path.with_suffix(".md"))
    assert json.loads(out.read_text()) == {"x": 1}
    assert "page: " in capsys.readouterr().err


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
    assert "No agent run has finished yet." in text and "| dataset |  |" not in text


def test_offline_benchmark_skips_a_task_without_behaviour_policy_and_names_the_command(tmp_path, capsys):
    import offline
    from rwrl.datasets.shipped_policies import shipped_tasks

    assert "humanoid-walk-easy" not in shipped_tasks()  # the pair this test relies on having none
    assert offline.main(["--root", str(tmp_path), "--out", str(tmp_path / "out"), "--tasks", "humanoid-walk",
                         "--challenges", "easy", "--sizes", "5", "--stages", "datasets,agents"]) == 0
    out = capsys.readouterr().out
    for stage in ("datasets", "agents"):
        assert (f"{stage}: humanoid-walk easy skipped: no behaviour policy in {tmp_path / 'policies'} and none "
                f"shipped (train one: `python benchmarks/offline.py --root {tmp_path} --tasks humanoid-walk "
                "--challenges easy --stages policies`)") in out
    assert not (tmp_path / "sweeps").exists() and not (tmp_path / "datasets").exists()
    # a shipped pair resolves to the shipped manifest; ROOT's own run wins over it
    assert offline.behaviour_manifest(tmp_path, "humanoid-walk", "none").parent.name == "humanoid-walk-none"
    (tmp_path / "policies" / "humanoid-walk-none").mkdir(parents=True)
    (tmp_path / "policies" / "humanoid-walk-none" / "manifest.json").write_text("{}")
    assert offline.behaviour_manifest(tmp_path, "humanoid-walk", "none") == (
        tmp_path / "policies" / "humanoid-walk-none" / "manifest.json")


def test_offline_sweep_file_trains_on_every_task_with_its_own_dataset():
    import offline
    from rwrl.experiments.sweeps.plan import load_plan

    runs = load_plan(offline.SWEEP_FILE).runs
    assert {r.config.env for r in runs} == set(offline.TASKS)
    assert len(runs) == 3 * 4 * 4 * 3  # agents x tasks x (challenge, size) x seeds
    for run in runs:
        assert run.config.dataset == f"rwrl/{run.config.env}-{run.level}-v0"


def test_offline_dataset_score_is_the_mean_episode_return_normalized(tmp_path, monkeypatch):
    import offline
    from tests.agents.offline_fixtures import buffers_dataset

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    episodes = [{"observations": np.zeros((n + 1, 2)), "actions": np.zeros((n, 1)), "rewards": np.full(n, r),
                 "terminations": np.zeros(n, bool), "truncations": np.arange(n) == n - 1}
                for n, r in ((4, 1.0), (2, 3.0))]  # returns 4 and 6
    buffers_dataset("toy/score-v0", episodes, obs_size=2, action_size=1)
    score = offline.dataset_score("toy/score-v0", {"ref_min_score": 1.0, "ref_max_score": 9.0})
    assert score == {"mean_return": 5.0, "score": 50.0}  # 100 * (5 - 1) / (9 - 1)


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


def test_offline_page_names_the_command_a_reader_runs_and_what_is_unfinished(tmp_path):
    import offline

    out = tmp_path / "out"
    assert offline.main(["--root", str(tmp_path / "root"), "--out", str(out), "--summarize-only",
                         "--tasks", "cartpole-swingup", "--sizes", "5", "--workers", "2",
                         "--archive", "benchmarks/results/archive/none-here"]) == 0
    header = (out / "offline.md").read_text().splitlines()[2]
    assert header.startswith("`python benchmarks/offline.py --root R --tasks cartpole-swingup --sizes 5 "
                             "--workers 2 --archive benchmarks/results/archive/none-here` (in progress: "
                             "6 of the plan's 6 cells have fewer than 3 seeds finished)")
    args = offline.argparse.Namespace(tasks=["cartpole-swingup"], challenges=["none"], sizes=[5, 40], seeds=2)
    scores = {("rwrl/cartpole-swingup-none-5pct-v0", "bc"): [1.0, 2.0],
              ("rwrl/cartpole-swingup-none-5pct-v0", "crr"): [1.0]}
    assert offline._unfinished_cells(args, scores) == (2, 3)  # crr has 1 seed, iql none; 40 % is not trained on


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


@pytest.mark.slow  # 15-30 s: it times real updates
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


def _fabricated_suite() -> dict:
    """distill_suite's results file for one task and two seeds, built so that the claim holds at 0.1 ms
    in simulated mode only (the teacher misses half its steps there, the 8-wide assistant-distilled
    student none, and it returns 300 and 320 against the direct 8-wide student's 100 and 120)."""
    # (method, width): median latency per seed (µs; p99 is twice it), return per seed (the same in
    # every mode and budget); the distillation action error is 0.01 for seed 0, 0.02 for seed 1
    policies = {("teacher", 128): ([60, 70], [800, 820]), ("direct", 32): ([40, 40], [500, 500]),
                ("direct", 8): ([15, 15], [100, 120]), ("assistant", 8): ([16, 16], [300, 320]),
                ("dagger", 8): ([14, 14], [200, 200])}
    # miss rate at the 0.1 ms budget per (method, mode); every policy meets the 10 ms control period
    misses = {("teacher", "simulated"): 0.5, ("teacher", "wallclock"): 1.0, ("assistant", "wallclock"): 0.2}
    budgets = [0.01, 0.0001]

    def evaluation(mode, budget, ret, method):
        miss = 0.0 if budget in (None, 0.01) else misses.get((method, mode), 0.0)
        return {"mode": mode, "budget_s": budget, "returns": [ret], "mean_return": ret, "miss_rate": miss,
                "steps": 1000, "missed_periods": 0, "median_latency_s": 0.0}

    items = {}
    for seed in (0, 1):
        rows = []
        for (method, width), (median_us, returns) in policies.items():
            evaluations = [evaluation("none", None, returns[seed], method)] + [
                evaluation(mode, b, returns[seed], method)
                for b in budgets for mode in ("simulated", "wallclock")]
            rows.append({"name": f"{method} {width}", "method": method, "width": width,
                         "task": "cartpole-swingup", "seed": seed, "hidden_sizes": [width, width],
                         "action_error": 0.01 * (seed + 1),
                         "latency": {"median_s": median_us[seed] * 1e-6, "p99_s": 2 * median_us[seed] * 1e-6},
                         "evaluations": evaluations})
        items[f"realtime|cartpole-swingup|{seed}"] = {"control_timestep_s": 0.01, "budgets_s": budgets,
                                                      "policies": rows}
        # R^2 per surrogate: linear 0.7, depth 1 0.5 / 0.7 (seed 0 / 1), depth 2 0.9
        surrogates = [("tree" if d else "linear", d, r2, 700.0 + 10 * seed)
                      for d, r2 in ((None, 0.7), (1, 0.5 + 0.2 * seed), (2, 0.9))]
        items[f"explain|cartpole-swingup|{seed}"] = {
            "teacher_return": 810.0, "weights": "uniform",
            "surrogates": [{"surrogate": s, "depth": d, "r2": r2, "action_error": 0.1, "return": ret}
                           for s, d, r2, ret in surrogates]}
    settings = {"tasks": ["cartpole-swingup"], "seeds": 2, "teacher_steps": {"cartpole-swingup": 100000},
                "preset": "fast", "distill_episodes": 4, "epochs": 50, "rounds": 3, "calls": 2000,
                "warmup": 200, "episodes": 3, "budgets_ms": [0.1], "fallback": "hold", "miss_tolerance": 0.01,
                "depths": [1, 2]}
    return {"settings": settings, "sessions": [{"date": "2026-12-07", "machine": "2 CPUs",
                                                "command": "python benchmarks/distill_suite.py"}],
            "teachers": {}, "items": items}


def test_distill_suite_page_aggregates_seeds_and_checks_the_claim_budget_by_budget(tmp_path):
    import distill_suite

    out = tmp_path / "suite.json"
    out.write_text(json.dumps(_fabricated_suite()))
    assert distill_suite.main(["--page-only", "--out", str(out)]) == 0
    text = out.with_suffix(".md").read_text()
    # two seeds: the mean, and the percentile-bootstrap interval of two values is [min, max]
    # (a quarter of the resamples repeat each value, so the 2.5 % and 97.5 % points are them)
    assert "| teacher 128 | 128x128 | 2 | 65.0 [60.0, 70.0] | 130.0 [120.0, 140.0] | 810 [800, 820] | – |" \
        in text
    assert "| assistant 8 | 8x8 | 2 | 16.0 [16.0, 16.0] | 32.0 [32.0, 32.0] | 310 [300, 320] | " \
           "0.0150 [0.0100, 0.0200] |" in text
    # the policies in method order, widest first within a method
    order = re.findall(r"^\| (\w+ \d+) \| \d+x\d+ \|", text, re.MULTILINE)
    assert order == ["teacher 128", "direct 32", "direct 8", "assistant 8", "dagger 8"]
    assert "| 0.1 | teacher 128 | 810 [800, 820] | 50.00 [50.00, 50.00] | 810 [800, 820] | " \
           "100.00 [100.00, 100.00] |" in text
    # simulated: the teacher misses at 0.1 ms only; wallclock: the assistant misses there too
    assert "- simulated: holds at 0.1 ms (8 wide; return intervals apart)" in text
    assert "| 10 | 8 | 0.00 [0.00, 0.00] | 0.00 [0.00, 0.00] | 310 [300, 320] | 110 [100, 120] " \
           "| no | yes | yes | no |" in text
    assert "| 0.1 | 8 | 50.00 [50.00, 50.00] | 0.00 [0.00, 0.00] | 310 [300, 320] | 110 [100, 120] " \
           "| yes | yes | yes | yes |" in text
    assert "- wallclock: does not hold at any budget measured" in text
    assert "- DAgger-trained 8 wide returns more than direct 8 wide, no challenge: yes " \
           "(200 [200, 200] against 110 [100, 120]; intervals apart)" in text
    assert "| tree 1 | 2 | 0.600 [0.500, 0.700] | 0.100 [0.100, 0.100] | 705 [700, 710] |" in text
    assert "Teacher's return on the same episodes: 810 [810, 810]; VIPER sample weights: uniform." in text
    assert "- highest R^2: tree 2 (0.900); highest return: linear (705); R^2 rises with every depth step: yes" \
        in text
    assert (tmp_path / "suite.png").read_bytes()[:4] == b"\x89PNG"
    (tmp_path / "suite.md").write_text("stale")
    distill_suite.main(["--page-only", "--out", str(out)])
    assert out.with_suffix(".md").read_text() == text


def test_distill_suite_writes_a_teacher_sweep_with_steps_per_task_and_refuses_changed_settings(tmp_path):
    import argparse
    import distill_suite
    from rwrl.experiments.sweeps.plan import load_plan

    tasks = ["cartpole-swingup", "walker-walk"]
    spec = tmp_path / "teachers.toml"
    spec.write_text(distill_suite.teacher_spec(tasks, 3, distill_suite.parse_steps([], tasks), time_limit=50))
    runs = load_plan(spec).runs
    assert sorted((r.config.env, r.config.seed, r.config.steps) for r in runs) == [
        ("cartpole-swingup", s, 100_000) for s in range(3)] + [("walker-walk", s, 200_000) for s in range(3)]
    assert {r.config.agent_config["preset"] for r in runs} == {"fast"}
    assert {r.config.env_kwargs["time_limit"] for r in runs} == {50}
    with pytest.raises(SystemExit, match="--teacher-steps 'walker=5': give TASK=STEPS"):
        distill_suite.parse_steps(["walker=5"], tasks)
    # a results file continues only with the settings it was measured with; more seeds extend it
    args = distill_suite.parser().parse_args(["--tasks", "cartpole-swingup", "--seeds", "1"])
    out = tmp_path / "suite.json"
    distill_suite.results_page.save_results(distill_suite.load_results(out, distill_suite.settings_of(args)), out)
    grown = distill_suite.load_results(out, distill_suite.settings_of(argparse.Namespace(**{**vars(args),
                                                                                          "seeds": 3})))
    assert grown["settings"]["seeds"] == 3
    with pytest.raises(SystemExit, match=r"other settings \(episodes\)"):
        distill_suite.load_results(out, distill_suite.settings_of(argparse.Namespace(**{**vars(args),
                                                                                       "episodes": 5})))


@pytest.mark.slow
def test_distill_suite_runs_end_to_end_on_a_tiny_teacher_and_resumes_without_redoing_anything(tmp_path):
    # about 2 minutes on the shared 2-core machine: 600 teacher steps, 50-step episodes
    import distill_suite

    argv = ["--tasks", "cartpole-swingup", "--seeds", "1", "--teacher-steps", "cartpole-swingup=600",
            "--time-limit", "50", "--workers", "1", "--root", str(tmp_path / "root"), "--distill-episodes", "1",
            "--epochs", "5", "--rounds", "1", "--distill-eval-episodes", "1", "--calls", "50", "--warmup", "5",
            "--episodes", "1", "--budgets-ms", "0.05", "--depths", "1,2", "--explain-iterations", "1",
            "--explain-episodes", "1", "--explain-eval-episodes", "1"]
    assert distill_suite.main(argv) == 0
    out = tmp_path / "root" / "distill_suite.json"
    results = json.loads(out.read_text())
    assert sorted(results["items"]) == ["explain|cartpole-swingup|0", "realtime|cartpole-swingup|0"]
    policies = results["items"]["realtime|cartpole-swingup|0"]["policies"]
    # the fast preset's 128-wide teacher: assistant 128 / 4 = 32, student 128 / 16 = 8
    assert [(p["method"], p["width"]) for p in policies] == [
        ("teacher", 128), ("direct", 8), ("direct", 32), ("assistant", 8), ("dagger", 8)]
    for p in policies:
        assert [(e["mode"], e["budget_s"]) for e in p["evaluations"]] == [
            ("none", None), ("simulated", 0.01), ("wallclock", 0.01), ("simulated", 5e-5), ("wallclock", 5e-5)]
        # the time limit holds throughout: 50 control periods, each a controller step or a missed one
        assert all(e["steps"] + e["missed_periods"] == 50 for e in p["evaluations"])
    surrogates = results["items"]["explain|cartpole-swingup|0"]["surrogates"]
    assert [(s["surrogate"], s["depth"]) for s in surrogates] == [("linear", None), ("tree", 1), ("tree", 2)]
    assert "| teacher 128 | 128x128 | 1 |" in out.with_suffix(".md").read_text()
    before = out.read_text()
    assert distill_suite.main(argv) == 0  # everything is there: nothing is measured again
    after = json.loads(out.read_text())
    assert after["items"] == json.loads(before)["items"] and len(after["sessions"]) == 2


def test_continual_rl_matches_declarations_to_switches_and_counts_false_alarms():
    import continual_rl
    # env 0's episodes: regime 0 x3, 1 x3, 2 x3; declarations (consolidations going up) at 1, 4, 5
    regimes = [0, 0, 0, 1, 1, 1, 2, 2, 2]
    counts = [0, 1, 1, 1, 2, 3, 3, 3, 3]
    rows = [{"regime": r, "learner/consolidations": c} for r, c in zip(regimes, counts)]
    found = continual_rl.detection(rows)
    assert found["switches"] == [3, 6] and found["declared"] == [1, 4, 5]
    # switch 3 takes 4 (delay 1); switch 6 has none before the end (missed); 1 and 5 are false alarms
    assert found["delays"] == [1, None] and found["false_alarms"] == 2


def test_continual_rl_rebuilds_the_committed_numbers_from_the_committed_archive(tmp_path):
    import continual_rl
    out = tmp_path / "page" / "continual_rl.json"
    assert continual_rl.main(["--runs", str(tmp_path / "runs"), "--archive",
                              str(ROOT / "benchmarks/results/archive/continual"), "--out", str(out)]) == 0
    rebuilt = json.loads(out.read_text())["tasks"]
    committed = json.loads((ROOT / "benchmarks/results/continual_rl.json").read_text())["tasks"]
    assert rebuilt["cartpole-swingup"] == committed["cartpole-swingup"]  # every method, seed and detection
    assert len(rebuilt["walker-walk"]["d4pg|plain"]) >= 3
