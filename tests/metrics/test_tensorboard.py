"""TensorBoard mirror: each batch of rows one point per column, the mean, at the run's clock."""

import numpy as np
import pytest

from rwrl.experiments.run import start_run
from rwrl.metrics.episode_file import read_rows
from rwrl.metrics.tensorboard import read_scalars, scalar_points
from tests.experiments.fakes import fake_hooks, tiny_config


def test_a_batch_of_rows_is_one_point_per_column_the_mean():
    rows = [{"phase": "train", "env_steps": 40, "updates": 3, "episode": 7, "env_index": 0,
             "wall_time": 1.5, "return": 2.0, "violations/pos": 1, "diverged": 0, "note": "x"},
            {"phase": "train", "env_steps": 40, "updates": 3, "episode": 8, "env_index": 1,
             "wall_time": 1.5, "return": 5.0, "violations/pos": 4, "diverged": 1}]
    # (2 + 5) / 2 = 3.5; (1 + 4) / 2 = 2.5; ids, clocks, wall time and strings are not plotted
    assert scalar_points(rows) == {"train/return": (40, 3.5), "train/violations/pos": (40, 2.5),
                                   "train/diverged": (40, 0.5)}


def test_a_run_writes_event_files_that_hold_its_rows_means(tmp_path):
    start_run(tiny_config(), tmp_path / "run", fake_hooks())
    scalars = read_scalars(tmp_path / "run" / "tensorboard")
    rows = read_rows(tmp_path / "run" / "metrics.jsonl")
    for phase in ("train", "eval"):
        steps = sorted({r["env_steps"] for r in rows if r["phase"] == phase})
        expected = [np.mean([r["return"] for r in rows if r["phase"] == phase and r["env_steps"] == s])
                    for s in steps]
        points = scalars[f"{phase}/return"]
        assert [s for s, _ in points] == steps
        np.testing.assert_allclose([v for _, v in points], expected, rtol=1e-6)  # stored as float32
    assert "eval/cost" in scalars and not any(tag.endswith("/episode") for tag in scalars)
