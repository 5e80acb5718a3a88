"""`rwrl report SWEEP_DIR`: the page from a real tiny sweep, finished and partial; the statistics."""

from __future__ import annotations

import base64
import html
import json
import math
import re
import shutil

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from rwrl.cli.run import register
from rwrl.experiments.sweeps.plan import Overrides, load_plan
from rwrl.experiments.sweeps.run import run_sweep
from rwrl.report.aggregate import bootstrap_ci, estimate, iqm, iqm_statistic, plan_dimensions
from rwrl.report.sweep_report import write_sweep_report

PNG = re.compile(r'<img class="figure" alt="([^"]*)" src="data:image/png;base64,([A-Za-z0-9+/=]+)"')
SCRIPT = "<script>alert(1)</script>"

# 2 safety coefficients x 2 seeds of 200 env steps. min_replay_size above the run's
# steps: the learner never updates, which spares its compilation (the report reads
# rows; whether the agent learned is not what these tests check).
TINY = """
[sweep]
name = "tiny-report"
agents = ["d4pg"]
envs = ["cartpole-swingup"]
seeds = 2
steps = 200

[fixed]
num_envs = 2
eval_every = 100
eval_episodes = 1
checkpoint_every = 200
"env_kwargs.time_limit" = 50
agent_config = {batch_size = 16, min_replay_size = 10000, policy_hidden_sizes = [16], critic_hidden_sizes = [16]}

[axes]
safety_coeff = [1.0, 0.3]
"""


def _app():
    app = typer.Typer()
    register(app)
    app.command("noop", hidden=True)(lambda: None)  # a group with one command would be flattened
    return app


def _figures(page: str) -> list[str]:
    found = PNG.findall(page)
    for _, data in found:
        assert base64.b64decode(data)[:8] == b"\x89PNG\r\n\x1a\n"
    return [alt for alt, _ in found]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """The tiny sweep, run once for the module on the local backend with 2 workers."""
    tmp = tmp_path_factory.mktemp("sweep")
    (tmp / "tiny.toml").write_text(TINY)
    counts = run_sweep(load_plan(tmp / "tiny.toml"), tmp / "out", workers=2, progress=False)
    assert counts["done"] == 4, counts
    return tmp / "out"


def _copy(sweep, tmp_path):
    return shutil.copytree(sweep, tmp_path / "copy")


def _run_id(coeff: float, seed: int) -> str:
    return f"d4pg__cartpole-swingup__safety_coeff={coeff}__s{seed}"


# ---------------------------------------------------------------- statistics
def test_identical_values_give_a_zero_width_interval():
    assert bootstrap_ci([0.1] * 5) == (0.1, 0.1)
    assert bootstrap_ci([0.1] * 5, iqm_statistic) == (0.1, 0.1)


def test_two_seeds_give_the_interval_from_the_lower_to_the_higher():
    # Resamples of [0, 10] have mean 0 (p 1/4), 5 (1/2) or 10 (1/4): the 2.5th
    # percentile of 10,000 of them is 0 and the 97.5th is 10.
    result = estimate([0.0, 10.0])
    assert (result["n_seeds"], result["mean"]) == (2, 5.0)
    assert (result["ci_low"], result["ci_high"]) == (0.0, 10.0)


def test_the_interval_is_nan_for_one_seed_and_leaves_nan_out():
    result = estimate([3.0, math.nan])
    assert (result["n_seeds"], result["mean"], result["iqm"]) == (1, 3.0, 3.0)
    assert math.isnan(result["ci_low"]) and math.isnan(result["ci_high"])


def test_iqm_trims_a_quarter_from_each_end():
    # 8 values: 2 cut from each end, mean of 3, 4, 5, 6 = 4.5 (the mean is 16).
    assert iqm([7, 1, 100, 2, 3, 4, 5, 6]) == 4.5
    # 4 values: 1 cut from each end, mean of 1 and 2.
    assert iqm([0.0, 1.0, 2.0, 100.0]) == 1.5
    # 3 values: int(0.75) = 0 cut, the plain mean (as rliable's aggregate_iqm).
    assert iqm([0.0, 1.0, 5.0]) == 2.0
    result = estimate([1, 2, 3, 4, 5, 6, 7, 100])
    assert result["iqm"] == 4.5 and result["mean"] == 16.0
    assert result["iqm_ci_low"] <= 4.5 <= result["iqm_ci_high"] < result["ci_high"]


def test_the_paper_sweeps_have_their_dimensions():
    one = Overrides(envs=("cartpole-swingup",), seeds=1, agents=("d4pg",))
    combined = plan_dimensions(load_plan("sweeps/paper/combined.toml", one).to_dict())
    assert [(d.name, d.magnitudes, d.is_combined) for d in combined] == [
        ("level", ("none", "easy", "medium", "hard"), True)]
    safety = plan_dimensions(load_plan("sweeps/paper/safety.toml", one).to_dict())
    assert [(d.name, d.numeric, d.is_safety) for d in safety] == [("safety_coeff", True, True)]
    assert safety[0].magnitudes == ("0.3", "0.5", "0.7", "0.9", "1.0")


# ---------------------------------------------------------------- the page
def test_the_report_of_a_finished_sweep(sweep):
    result = CliRunner().invoke(_app(), ["report", str(sweep)])
    assert result.exit_code == 0, result.output
    page = (sweep / "report.html").read_text()
    assert f"report: {sweep / 'report.html'}" in result.output
    # one figure for the one dimension, violations (it is safety_coeff), learning curves
    assert _figures(page) == ["final return: safety_coeff", "violations", "learning curves"]
    assert page.count('<h2 class="dimension">') == 1
    assert '<table class="aggregate">' in page and '<table class="evaluators">' in page
    assert "4 runs:</b> done 4 · failed 0 · running 0 · partial 0 · pending 0" in page
    assert "scipy.stats.bootstrap" in page and "<script" not in page
    # the CSV: per coefficient the mean of the two seeds' final returns, and with two
    # seeds the interval runs from the lower to the higher (see the test above)
    table = pd.read_csv(sweep / "report-final-returns.csv")
    runs = pd.read_parquet(sweep / "results" / "runs.parquet").set_index("run_id")
    assert table["magnitude"].tolist() == [0.3, 1.0] and set(table["n_seeds"]) == {2}
    for _, row in table.iterrows():
        finals = [runs.loc[_run_id(row["magnitude"], s), "return/final"] for s in (0, 1)]
        assert row["mean"] == pytest.approx(np.mean(finals))
        assert (row["ci_low"], row["ci_high"]) == pytest.approx((min(finals), max(finals)))


def test_a_run_directory_keeps_the_run_report_and_a_sweep_goes_alone(sweep, tmp_path):
    run = _copy(sweep, tmp_path) / "runs" / _run_id(1.0, 0)
    result = CliRunner().invoke(_app(), ["report", str(run)])
    assert result.exit_code == 0, result.output
    assert "<h1>rwrl report</h1>" in (run / "report.html").read_text()
    mixed = CliRunner().invoke(_app(), ["report", str(sweep), str(run), "--out", str(tmp_path / "x.html")])
    assert mixed.exit_code == 2 and "give one sweep directory alone" in mixed.output


def test_a_partial_sweep_renders_with_its_status(sweep, tmp_path):
    copy = _copy(sweep, tmp_path)
    failed, partial = (copy / "runs" / _run_id(1.0, s) for s in (0, 1))
    (failed / "summary.json").unlink()
    (failed / "error.txt").write_text("RuntimeError: <boom> at step 7\nTraceback ...\n")
    (partial / "summary.json").unlink()  # started, not running: partial, eval rows kept
    shutil.rmtree(copy / "runs" / _run_id(0.3, 0))  # never started: pending, no rows
    page_path, csv = write_sweep_report(copy, tmp_path / "page" / "partial.html")
    page = page_path.read_text()
    assert "4 runs:</b> done 1 · failed 1 · running 0 · partial 1 · pending 1" in page
    assert f"{_run_id(1.0, 0)}</code>: RuntimeError: &lt;boom&gt; at step 7" in page
    assert _figures(page) == ["final return: safety_coeff", "violations", "learning curves"]
    assert ">0 of 2<" in page and ">1 of 2<" in page  # seeds done per setting
    table = pd.read_csv(csv).set_index("magnitude")
    assert csv.name == "partial-final-returns.csv"
    assert table.loc[1.0, "n_seeds"] == 0 and math.isnan(table.loc[1.0, "mean"])
    assert table.loc[0.3, "n_seeds"] == 1 and math.isnan(table.loc[0.3, "ci_low"])


def test_combined_levels_get_bars_and_every_name_is_escaped(sweep, tmp_path):
    # The same runs, recorded as two named levels (the second a combined challenge
    # with a hostile name): the report reads levels and settings from sweep.json.
    copy = _copy(sweep, tmp_path)
    plan = json.loads((copy / "sweep.json").read_text())
    names = {1.0: "none", 0.3: SCRIPT}
    plan.update(axes=[], levels=list(names.values()), name="x$y</title>")
    for run in plan["runs"]:
        coeff = run["settings"]["safety_coeff"]
        run.update(level=names[coeff], level_index=list(names).index(coeff),
                   settings={} if coeff == 1.0 else {"combined_challenge": "easy"})
    (copy / "sweep.json").write_text(json.dumps(plan))
    page_path, csv = write_sweep_report(copy)
    page = page_path.read_text()
    assert _figures(page) == ["final return: the levels", "bars: the levels", "learning curves"]
    assert SCRIPT not in page and page.count("</title>") == 1
    assert html.escape(SCRIPT) in page and "x$y&lt;/title&gt;" in page
    assert pd.read_csv(csv)["magnitude"].tolist() == ["none", SCRIPT]  # the CSV keeps raw text
