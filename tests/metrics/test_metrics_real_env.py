"""The recorders on the real cartpole env: rows agree with the per-step infos."""

import json

import gymnasium
import numpy as np
import pytest

import rwrl  # noqa: F401  (registers the rwrl/... Gymnasium ids)
from rwrl.metrics import EpisodeRecorder, VectorEpisodeRecorder, episode_violations, safety_var_stats

ENV_ID = "rwrl/cartpole-balance-v0"


def test_single_cartpole_row_matches_its_step_infos(tmp_path):
    # The test keeps its own record of the 4 steps and derives the row from it.
    env = EpisodeRecorder(gymnasium.make(ENV_ID, time_limit=4), tmp_path / "ep.jsonl")
    env.reset(seed=3)
    rewards, flags, slider_pos, actions = [], [], [], []
    for _ in range(4):
        _, reward, terminated, truncated, info = env.step(env.action_space.sample())
        rewards.append(reward)
        flags.append(info["constraints"])
        slider_pos.append(info["safety_vars"]["slider_pos"])
        actions.append(info["safety_vars"]["actions"])
    assert truncated and not terminated
    (row,) = [json.loads(line) for line in open(tmp_path / "ep.jsonl")]
    names = env.unwrapped.constraint_names
    assert row["length"] == 4 and row["return"] == pytest.approx(sum(rewards))
    assert [row[f"violations/{n}"] for n in names] == episode_violations(np.array(flags)).tolist()
    for stat, value in safety_var_stats(np.array(slider_pos)).items():
        assert row[f"safety/slider_pos/{stat}"] == pytest.approx(float(value))
    # "actions" is (1,) per step: one component column group.
    assert row["safety/actions/0/max"] == pytest.approx(float(np.max(actions)))


def test_vector_cartpole_skips_autoreset_steps(tmp_path):
    venv = gymnasium.make_vec(ENV_ID, num_envs=2, time_limit=4)
    env = VectorEpisodeRecorder(venv, tmp_path / "vec.jsonl")
    env.reset(seed=0)
    rewards = []
    for _ in range(9):  # episodes on steps 1-4 and 6-9; step 5 is the autoreset
        rewards.append(env.step(env.action_space.sample())[1])
    rewards = np.array(rewards)
    rows = [json.loads(line) for line in open(tmp_path / "vec.jsonl")]
    got = [(r["episode"], r["env_index"], r["length"]) for r in rows]
    assert got == [(0, 0, 4), (1, 1, 4), (2, 0, 4), (3, 1, 4)]
    assert rewards[4].tolist() == [0.0, 0.0]
    expected = [rewards[:4, 0].sum(), rewards[:4, 1].sum(), rewards[5:, 0].sum(), rewards[5:, 1].sum()]
    assert [r["return"] for r in rows] == pytest.approx(expected)
