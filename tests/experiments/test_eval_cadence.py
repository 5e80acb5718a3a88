"""Evaluation draws its own random keys: how often a run is evaluated does not change its training."""

from __future__ import annotations

from rwrl.experiments.run import start_run
from rwrl.metrics.episode_file import read_rows
from tests.experiments.fakes import fake_hooks, tiny_config


def _training(run_dir):
    return [(r["episode"], r["env_index"], r["return"])
            for r in read_rows(run_dir / "metrics.jsonl") if r["phase"] == "train"]


def test_how_often_a_run_is_evaluated_does_not_change_its_training(tmp_path):
    start_run(tiny_config(eval_every=40), tmp_path / "often", fake_hooks())
    start_run(tiny_config(eval_every=600), tmp_path / "rarely", fake_hooks())
    often, rarely = _training(tmp_path / "often"), _training(tmp_path / "rarely")
    assert len(often) == 60 and often == rarely
