"""The continual-digits benchmark driver: every unit saved, resumed without rerunning, its page and figure."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import continual_digits  # noqa: E402

from rwrl.continual import regularized as rg  # noqa: E402

#: a stand-in's final average accuracy per method, so that the claimed ordering holds by construction.
RANK = {"finetune": 0.5, "l2": 0.6, "ewc": 0.7, "kfac": 0.8, "full": 0.9, "multitask": 0.95}


class StandIn:
    """Records the runs asked for; returns a fixed result per (method, seed), or fails on call ``fail_at``."""

    def __init__(self, fail_at=None):
        self.calls, self.fail_at = [], fail_at

    def run(self, tasks, method, lam, seed, config):
        self.calls.append((method, seed))
        if len(self.calls) == self.fail_at:
            raise KeyboardInterrupt  # a kill in the middle of a run
        acc = RANK[method] + 0.01 * seed
        r = np.array([[0.9, 0.1], [1.8 * acc - 0.9 + (0.1 if method == "multitask" else 0), 0.9]])
        error = () if method in ("finetune", "multitask") else (1.0 - acc,)
        return rg.Result(method, lam, seed, r, acc, 0.9 - r[1, 0], error, (0.1,) * len(error),
                         (0.2,) * len(error), 1.0)

    @staticmethod
    def select(tasks, method, grid, seed, config):
        return grid[-1], {g: 0.5 for g in grid}


@pytest.fixture
def stand_in(monkeypatch):
    fake = StandIn()
    monkeypatch.setattr(rg, "run", fake.run)
    monkeypatch.setattr(rg, "select_lambda", fake.select)
    return fake


def test_the_driver_saves_every_unit_writes_the_page_and_figure_and_resumes(stand_in, tmp_path):
    out = tmp_path / "c.json"
    continual_digits.main(["--quick", "--seeds", "0", "1", "2", "--out", str(out)])
    results = json.loads(out.read_text())
    assert sorted(results["runs"]) == sorted(f"{m}/{s}" for m in continual_digits.METHODS for s in range(3))
    # the stand-in selection takes the last of --quick's two grid values
    assert {m: v["chosen"] for m, v in results["lambdas"].items()} == {"l2": 1e-3, "ewc": 10.0, "kfac": 10.0,
                                                                       "full": 10.0}
    page = out.with_suffix(".md").read_text()
    # the stand-in's accuracies are ordered with a seed-independent gap: every claim holds
    assert page.count("| holds |") == 2 * 4 and "| does not hold |" not in page
    assert "96.0 ± 0.0 (32 ep)" in page and "1,257 training images" in page
    assert out.with_suffix(".png").stat().st_size > 0
    # the same command again runs nothing; a fourth seed runs only its six units
    stand_in.calls.clear()
    continual_digits.main(["--quick", "--seeds", "0", "1", "2", "--out", str(out)])
    assert stand_in.calls == []
    continual_digits.main(["--quick", "--seeds", "0", "1", "2", "3", "--out", str(out)])
    assert stand_in.calls == [(m, 3) for m in continual_digits.METHODS]


def test_a_killed_run_keeps_the_finished_units_and_the_rerun_does_only_the_rest(monkeypatch, tmp_path):
    out = tmp_path / "c.json"
    killed = StandIn(fail_at=3)
    monkeypatch.setattr(rg, "run", killed.run)
    monkeypatch.setattr(rg, "select_lambda", StandIn.select)
    with pytest.raises(KeyboardInterrupt):
        continual_digits.main(["--quick", "--out", str(out)])
    assert sorted(json.loads(out.read_text())["runs"]) == ["finetune/0", "l2/0"]
    again = StandIn()
    monkeypatch.setattr(rg, "run", again.run)
    continual_digits.main(["--quick", "--out", str(out)])
    assert again.calls[0] == ("ewc", 0) and len(again.calls) == 2 * 6 - 2


def test_a_json_of_another_configuration_is_refused_in_one_line(stand_in, tmp_path):
    out = tmp_path / "c.json"
    continual_digits.main(["--quick", "--seeds", "0", "--out", str(out)])
    with pytest.raises(SystemExit, match="holds a run of another configuration") as error:
        continual_digits.main(["--quick", "--epochs", "3", "--seeds", "0", "--out", str(out)])
    assert "\n" not in str(error.value)


@pytest.mark.slow
def test_the_quick_benchmark_trains_every_method_for_real(tmp_path):
    out = tmp_path / "quick.json"
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "continual_digits.py"), "--quick", "--out",
                    str(out)], check=True, capture_output=True, text=True, timeout=600)
    results = json.loads(out.read_text())
    assert len(results["runs"]) == 2 * 6
    full = [r for r in results["runs"].values() if r["method"] == "full"]
    assert all(r["approximation_error"] == [0.0] for r in full)
    ewc = [r for r in results["runs"].values() if r["method"] == "ewc"]
    assert all(0.0 < r["approximation_error"][0] <= 1.0 for r in ewc)
    assert "## The ordering, claim by claim" in out.with_suffix(".md").read_text()
