"""Divergence: the ``diverged`` column of episode rows and the ``divergences`` count.

The envs report ``info["diverged"]``, (N,) bool, on every step and reset: True
on the step where that env's simulation diverged, which also ends its episode
(truncated). Envs that do not report it never diverge.
"""

import json

import dm_env
import numpy as np
import pytest

from rwrl.metrics import evaluate_episodes, evaluate_run, read_episodes
from rwrl.metrics.accumulator import EpisodeAccumulator
from rwrl.metrics.recorder import DmEnvEpisodeRecorder


def info(diverged=None, n=2):
    base = {"constraints": np.ones((n, 1), bool), "cost": np.zeros(n)}
    if diverged is not None:
        base["diverged"] = np.asarray(diverged, bool)
    return base


def test_the_step_that_diverged_marks_its_episode_only():
    acc = EpisodeAccumulator(2, ("c",))
    acc.observe_reset(slice(None), info([False, False]))
    acc.add_step(np.array([True, True]), np.ones(2), info([False, False]))
    acc.add_step(np.array([True, True]), np.ones(2), info([False, True]))  # env 1 diverges
    assert (acc.row(0)["diverged"], acc.row(1)["diverged"]) == (0, 1)
    acc.clear(np.array([False, True]))  # env 1's episode ended there; a new one begins
    acc.add_step(np.array([True, True]), np.ones(2), info([False, False]))
    assert (acc.row(0)["diverged"], acc.row(1)["diverged"]) == (0, 0)


def test_a_masked_env_does_not_take_the_flag():
    acc = EpisodeAccumulator(2, ("c",))
    acc.add_step(np.array([True, False]), np.ones(2), info([False, True]))  # env 1: autoreset step
    assert acc.row(1)["diverged"] == 0


def test_envs_without_the_key_have_no_column():
    acc = EpisodeAccumulator(2, ("c",))
    acc.add_step(np.ones(2, bool), np.ones(2), info())
    assert "diverged" not in acc.row(0)


def _rows(path, diverged):
    rows = [{"episode": i, "return": 1.0, "length": 10} for i in range(len(diverged))]
    for row, flag in zip(rows, diverged):
        if flag is not None:
            row["diverged"] = flag
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.mark.parametrize("diverged, expected", [
    ([0, 1, 0, 1, 1], 3),
    ([None, None], 0),  # an older file, or an env that does not report it
    ([None, 1], 1),  # concatenated with an older file: missing means not diverged
])
def test_evaluators_count_divergences(tmp_path, diverged, expected):
    path = _rows(tmp_path / "run.jsonl", diverged)
    assert evaluate_run(path, window=1)["divergences"] == expected
    assert evaluate_episodes(read_episodes(path), window=1)["divergences"] == expected


class DivergingDmEnv:
    """A dm_env-shaped env of one env: episodes of 3 steps, the second episode diverges at step 2.

    It exposes what the rwrl dm_env adapter does: ``constraint_names`` and the
    batched ``info`` of the last reset or step; it has no ``batched`` attribute.
    """

    constraint_names = ("c",)

    def __init__(self):
        self.episode, self.t, self.info = -1, 0, None

    def _info(self, diverged: bool) -> dict:
        return {"constraints": np.array([[True]]), "cost": np.zeros(1),
                "diverged": np.array([diverged])}

    def reset(self):
        self.episode, self.t = self.episode + 1, 0
        self.info = self._info(False)
        return dm_env.restart(np.zeros(1))

    def step(self, action):
        if self.t == -1:  # after a LAST step the adapter resets itself
            return self.reset()
        self.t += 1
        diverged = self.episode == 1 and self.t == 2
        self.info = self._info(diverged)
        if diverged or self.t == 3:
            self.t = -1
            return dm_env.truncation(1.0, np.zeros(1))
        return dm_env.transition(1.0, np.zeros(1))

    def close(self):
        pass


def test_the_dm_env_recorder_records_divergence_without_reaching_under_the_adapter(tmp_path):
    path = tmp_path / "episodes.jsonl"
    env = DmEnvEpisodeRecorder(DivergingDmEnv(), path)
    env.reset()
    for _ in range(3 + 1 + 2):  # episode 0 (3 steps), the reset step, episode 1 (2 steps)
        env.step(np.zeros(1))
    env.close()
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(r["length"], r["diverged"]) for r in rows] == [(3, 0), (2, 1)]
    assert rows[1]["violations/c"] == 0


def test_importing_rwrl_metrics_imports_neither_pandas_nor_scipy():
    import subprocess
    import sys
    # Only what rwrl.metrics itself brings: the layers below (envs) are imported first.
    code = ("import sys, rwrl.envs.autoreset, rwrl.storage.atomic_files; before = set(sys.modules); "
            "import rwrl.metrics; new = set(sys.modules) - before; "
            "print(sorted(m for m in new if m.split('.')[0] in ('pandas', 'scipy', 'jax')))")
    import os
    from pathlib import Path
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env=env)
    assert out.stdout.strip() == "[]", out.stdout
