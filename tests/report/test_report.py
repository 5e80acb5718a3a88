"""The HTML report renders from finished runs, runs in progress and several seeds."""

from __future__ import annotations

import base64
import re

import numpy as np
import pytest
from typer.testing import CliRunner

from rwrl.experiments.run import start_run
from rwrl.report.html import write_report
from rwrl.report.plots import seed_band
from tests.experiments.fakes import fake_hooks, tiny_config

PNG = re.compile(r'<img class="figure" alt="(\w+)" src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


class Stop(Exception):
    pass


def _stop_after(vector_steps):
    count = {"n": 0}

    def hook(trainer):
        count["n"] += 1
        if count["n"] == vector_steps:
            raise Stop()
    return hook


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    for seed in (0, 1):
        start_run(tiny_config(seed=seed, report=True), root / f"seed{seed}", fake_hooks())
    with pytest.raises(Stop):
        start_run(tiny_config(seed=2), root / "partial", fake_hooks(_stop_after(70)))
    with open(root / "partial" / "metrics.jsonl", "a") as f:
        f.write('{"phase": "tra')  # torn row of a writer still at work
    return root


def _figures(text):
    found = {alt: base64.b64decode(data) for alt, data in PNG.findall(text)}
    assert all(png.startswith(b"\x89PNG\r\n\x1a\n") for png in found.values())
    return found


def test_a_finished_run_writes_its_report_on_completion(runs):
    text = (runs / "seed0" / "report.html").read_text()
    assert set(_figures(text)) == {"returns", "violations"}
    assert "finished, 600 env steps" in text
    table = text[text.index("<h2>Evaluators</h2>"):text.index("<h2>Evaluation returns</h2>")]
    for key in ("return/final", "return/convergence_episode", "violations/small_action",
                "violation_rate/positive_action", "eval_return/last", "outside_learner_share"):
        assert f"<td>{key}</td>" in table
    assert '"num_envs": 4' in text  # the run's config
    curve = text[text.index("<h2>Evaluation returns</h2>"):text.index("<h2>Configuration</h2>")]
    for steps in (0, 200, 400, 600):  # eval_every 200, and at the end
        assert f"<tr><td>{steps}</td>" in curve


def test_a_run_in_progress_renders(runs, tmp_path):
    assert not (runs / "partial" / "report.html").exists()
    text = write_report([runs / "partial"], tmp_path / "partial.html").read_text()
    assert "in progress" in text and "of 600 env steps" in text
    assert set(_figures(text)) == {"returns", "violations"}
    assert "<td>return/final</td>" in text


def test_seeds_of_one_configuration_share_a_table_with_mean_and_std(runs, tmp_path):
    text = write_report([runs / "seed0", runs / "seed1"], tmp_path / "both.html").read_text()
    assert text.count("<h3>") == 2  # one group: its evaluators and its evaluation returns
    assert "<th>seed0</th><th>seed1</th><th>mean</th><th>std</th>" in text
    assert len(_figures(text)) == 2


def test_seed_band_averages_on_the_range_every_seed_covers():
    a = (np.array([0.0, 10.0, 20.0]), np.array([0.0, 10.0, 20.0]))
    b = (np.array([0.0, 10.0]), np.array([2.0, 4.0]))
    grid, mean, low, high = seed_band([a, b])
    assert grid[0] == 0.0 and grid[-1] == 10.0  # b stops at 10: the mean stops there too
    np.testing.assert_allclose(mean[[0, -1]], [1.0, 7.0])  # (0 + 2) / 2, (10 + 4) / 2
    np.testing.assert_allclose(low[[0, -1]], [0.0, 4.0])
    np.testing.assert_allclose(high[[0, -1]], [2.0, 10.0])


def test_the_report_command(runs, tmp_path):
    import typer

    from rwrl.cli.run import register
    app = typer.Typer()
    register(app)
    out = tmp_path / "cli.html"
    result = CliRunner().invoke(app, ["report", str(runs / "seed0"), str(runs / "seed1"),
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert f"report: {out}" in result.output
    assert len(_figures(out.read_text())) == 2
    missing = CliRunner().invoke(app, ["report", str(tmp_path / "nothing"), "--out", str(out)])
    assert missing.exit_code == 2 and "config.json is missing" in missing.output


SCRIPT = "<script>alert(1)</script>"


def test_everything_read_from_files_is_escaped(runs, tmp_path):
    # A run whose files carry markup: config values, summary values, its name, column names.
    import json
    import shutil
    crafted = tmp_path / "<b>run</b>"
    shutil.copytree(runs / "seed0", crafted)
    config = json.loads((crafted / "config.json").read_text())
    config["run"]["steps"] = SCRIPT
    config["run"]["env"] = SCRIPT
    (crafted / "config.json").write_text(json.dumps(config))
    summary = json.loads((crafted / "summary.json").read_text())
    summary["counters"]["env_steps"] = SCRIPT
    summary["update_ms"] = SCRIPT
    (crafted / "summary.json").write_text(json.dumps(summary))
    with open(crafted / "metrics.jsonl", "a") as f:
        f.write(json.dumps({"phase": "train", "env_steps": 600, "return": 1.0, "length": 10,
                            f"violations/{SCRIPT}": 1, f"violation_rate/{SCRIPT}": 0.1}) + "\n")
    text = write_report([crafted], tmp_path / "crafted.html").read_text()
    assert "<script" not in text and "<b>run" not in text
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    assert f"finished, {escaped} env steps" in text  # summary value
    assert f"<td>violations/{escaped}</td>" in text  # column name
    assert f"<td>update_ms</td><td>{escaped}</td>" in text  # summary value in the table
    assert "&lt;b&gt;run&lt;/b&gt;" in text  # run name
    (crafted / "summary.json").unlink()  # in progress: the config's steps are shown
    text = write_report([crafted], tmp_path / "crafted.html").read_text()
    assert "<script" not in text and f"of {escaped} env steps" in text
