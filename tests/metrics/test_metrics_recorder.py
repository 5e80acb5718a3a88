"""EpisodeRecorder and VectorEpisodeRecorder on the probe env of metrics_probe_env.py."""

import json
import math

import gymnasium
import numpy as np
import pandas as pd
import pytest
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from rwrl.metrics import EpisodeRecorder, VectorEpisodeRecorder, export_parquet, read_episodes

from tests.metrics.metrics_probe_env import ProbeEnv

# One probe episode of length 6 (t = 1..6), derived from the rules in metrics_probe_env.py:
#   return 1+..+6 = 21; slider_pos violated at t = 2, 4, 6 (3), accel at 3, 6 (2);
#   cost 3 + 2 = 5; x = t: mean 3.5, population std sqrt(35/12), min 1, max 6;
#   q = [t, 2t]; multiobj: reward 21, safety sum of (3 - violated_t)/3 = (18 - 5)/3;
#   one missed deadline (t = 4); latency 0.01 t: mean 0.035, max 0.06.
STD_1_TO_6 = math.sqrt(35.0 / 12.0)
EPISODE_OF_6 = {
    "return": 21.0, "length": 6, "cost": 5.0,
    "violations/slider_pos": 3, "violations/accel": 2, "violations/roc": 0,
    "violation_rate/slider_pos": 0.5, "violation_rate/accel": 2 / 6, "violation_rate/roc": 0.0,
    "safety/x/mean": 3.5, "safety/x/std": STD_1_TO_6, "safety/x/min": 1.0, "safety/x/max": 6.0,
    "safety/q/0/mean": 3.5, "safety/q/0/std": STD_1_TO_6, "safety/q/0/min": 1.0, "safety/q/0/max": 6.0,
    "safety/q/1/mean": 7.0, "safety/q/1/std": 2 * STD_1_TO_6, "safety/q/1/min": 2.0, "safety/q/1/max": 12.0,
    "multiobj/reward": 21.0, "multiobj/safety": 13.0 / 3.0,
    "perturb/pole_length": 1.0,
    "deadline_misses": 1, "missed_periods": 1, "latency/mean": 0.035, "latency/max": 0.06,
}


def run_single(env, episodes: int, seed: int = 0) -> None:
    for e in range(episodes):
        env.reset(seed=seed + e)
        done = False
        while not done:
            _, _, terminated, truncated, _ = env.step(env.action_space.sample())
            done = terminated or truncated


def read_rows(path) -> list[dict]:
    return [json.loads(line) for line in open(path)]


def assert_row(row: dict, expected: dict) -> None:
    assert set(row) == set(expected), set(row) ^ set(expected)
    for key, value in expected.items():
        assert row[key] == pytest.approx(value), key


def test_single_env_row_has_exact_totals_and_reset_is_not_a_step(tmp_path):
    path = tmp_path / "ep.jsonl"
    env = EpisodeRecorder(ProbeEnv(length=6), path, fields={"phase": "train"})
    run_single(env, episodes=2)
    env.close()
    rows = read_rows(path)
    assert len(rows) == 2
    # The second episode differs only in its perturbation (one earlier reset: 1.1).
    assert_row(rows[0], {"episode": 0, "env_index": 0, **EPISODE_OF_6, "phase": "train"})
    assert_row(rows[1], {"episode": 1, "env_index": 0, **EPISODE_OF_6, "perturb/pole_length": 1.1,
                         "phase": "train"})


def test_termination_ends_an_episode_and_early_reset_drops_it(tmp_path):
    path = tmp_path / "ep.jsonl"
    env = EpisodeRecorder(ProbeEnv(length=6, terminate_at=2, optional=False), path)
    env.reset()
    env.step(env.action_space.sample())  # abandoned by the reset below: never written
    run_single(env, episodes=1)
    rows = read_rows(path)
    # t = 1, 2: return 3, slider_pos violated at 2; no optional groups reported.
    got = [(r["episode"], r["return"], r["length"], r["violations/slider_pos"]) for r in rows]
    assert got == [(0, 3.0, 2, 1)]
    assert not any(k.startswith(("multiobj/", "perturb/", "latency/", "deadline")) for k in rows[0])


def test_set_fields_changes_following_rows(tmp_path):
    path = tmp_path / "ep.jsonl"
    env = EpisodeRecorder(ProbeEnv(length=2), path, fields={"phase": "train"})
    run_single(env, episodes=1)
    env.set_fields(phase="eval", seed=3)
    run_single(env, episodes=1)
    frame = pd.read_json(path, lines=True)
    assert frame["phase"].tolist() == ["train", "eval"]
    assert frame["seed"].isna().tolist() == [True, False]


@pytest.mark.parametrize("fields, message", [
    ({"return": 1}, "'return' is reserved"),
    ({"violations/x": 1}, "'violations/x' is reserved"),
    ({"phase": [1, 2]}, "'phase' must be a scalar"),
])
def test_bad_fields_raise(tmp_path, fields, message):
    with pytest.raises(ValueError, match=message):
        EpisodeRecorder(ProbeEnv(), tmp_path / "ep.jsonl", fields=fields)


def test_constraint_name_count_must_match_flags(tmp_path):
    env = ProbeEnv()
    env.constraint_names = ("a", "b")
    with pytest.raises(ValueError, match="constraint_names has 2 names"):
        EpisodeRecorder(env, tmp_path / "ep.jsonl").reset()


def test_step_before_reset_raises(tmp_path):
    env = EpisodeRecorder(ProbeEnv(), tmp_path / "ep.jsonl")
    with pytest.raises(gymnasium.error.ResetNeeded):
        env.step(np.zeros(1, dtype=np.float32))


def test_reopened_file_continues_numbering_and_drops_partial_line(tmp_path):
    path = tmp_path / "ep.jsonl"
    env = EpisodeRecorder(ProbeEnv(length=2), path)
    run_single(env, episodes=2)
    env.close()
    with open(path, "a") as f:
        f.write('{"episode": 2, "ret')  # a write killed midway
    env = EpisodeRecorder(ProbeEnv(length=2), path)
    run_single(env, episodes=1)
    frame = pd.read_json(path, lines=True)
    assert frame["episode"].tolist() == [0, 1, 2]
    assert frame["return"].tolist() == [3.0, 3.0, 3.0]


def test_non_finite_values_are_written_as_null(tmp_path):
    class NanReward(gymnasium.Wrapper):
        def step(self, action):
            obs, _, terminated, truncated, info = self.env.step(action)
            return obs, math.nan, terminated, truncated, info

    path = tmp_path / "ep.jsonl"
    run_single(EpisodeRecorder(NanReward(ProbeEnv(length=1)), path), episodes=1)
    assert '"return": null' in path.read_text()
    assert math.isnan(pd.read_json(path, lines=True)["return"][0])


def test_parquet_export_round_trips(tmp_path):
    path = tmp_path / "ep.jsonl"
    run_single(EpisodeRecorder(ProbeEnv(length=6), path, fields={"phase": "train"}), episodes=2)
    target = export_parquet(path)
    assert target == tmp_path / "ep.parquet"
    # read_episodes keeps JSON's floats as floats (pd.read_json turns 21.0 into an int).
    assert read_episodes(path)["return"].dtype == np.float64
    pd.testing.assert_frame_equal(pd.read_parquet(target), read_episodes(path))
    pd.testing.assert_frame_equal(read_episodes([path, target]).iloc[2:].reset_index(drop=True),
                                  read_episodes(path))


# ------------------------------------------------------------------ vector


def make_vector(lengths, **kwargs) -> SyncVectorEnv:
    return SyncVectorEnv([lambda n=n: ProbeEnv(length=n) for n in lengths], **kwargs)


def test_vector_rows_skip_the_autoreset_step(tmp_path):
    # env 0 (length 3) and env 1 (length 5), NEXT_STEP autoreset:
    #   step 3: env 0 finishes (episode 0); step 4: env 0 resets (not a step);
    #   step 5: env 1 finishes (episode 1); step 7: env 0 finishes again (episode 2),
    #   whose perturbation comes from its second reset (1.1) on the autoreset step.
    path = tmp_path / "vec.jsonl"
    env = VectorEpisodeRecorder(make_vector([3, 5]), path)
    env.reset(seed=0)
    for _ in range(7):
        env.step(env.action_space.sample())
    rows = read_rows(path)
    got = [(r["episode"], r["env_index"], r["return"], r["length"], r["perturb/pole_length"]) for r in rows]
    assert got == [(0, 0, 6.0, 3, 1.0), (1, 1, 15.0, 5, 1.0), (2, 0, 6.0, 3, 1.1)]
    # Length 3: slider_pos violated at t = 2, accel at t = 3; x = 1, 2, 3.
    assert rows[2]["violations/slider_pos"] == 1 and rows[2]["violations/accel"] == 1
    assert rows[2]["safety/x/min"] == 1.0 and rows[2]["safety/x/max"] == 3.0


def test_vector_env_equals_single_envs(tmp_path):
    # Each vector row equals the row a single recorder writes for the same env.
    lengths = [2, 3, 5]
    env = VectorEpisodeRecorder(make_vector(lengths), tmp_path / "vec.jsonl")
    env.reset(seed=0)
    for _ in range(12):
        env.step(env.action_space.sample())
    vector_rows = read_rows(tmp_path / "vec.jsonl")
    for i, length in enumerate(lengths):
        single_path = tmp_path / f"single{i}.jsonl"
        mine = [r for r in vector_rows if r["env_index"] == i]
        run_single(EpisodeRecorder(ProbeEnv(length=length), single_path), episodes=len(mine))
        for vec_row, single_row in zip(mine, read_rows(single_path), strict=True):
            drop = ("episode", "env_index")
            assert {k: v for k, v in vec_row.items() if k not in drop} == \
                   {k: v for k, v in single_row.items() if k not in drop}
    # An env of length L finishes on steps L, 2L + 1, 3L + 2, ... (one autoreset step between):
    # L=2: 2, 5, 8, 11; L=3: 3, 7, 11; L=5: 5, 11. Same-step rows go in env order.
    assert [r["env_index"] for r in vector_rows] == [0, 1, 0, 2, 1, 0, 0, 1, 2]


def test_vector_partial_reset_clears_only_masked_envs(tmp_path):
    path = tmp_path / "vec.jsonl"
    env = VectorEpisodeRecorder(make_vector([4, 4], autoreset_mode=AutoresetMode.NEXT_STEP), path)
    env.reset(seed=0)
    env.step(env.action_space.sample())
    # Resetting env 1 alone restarts it: it finishes one step after env 0.
    env.reset(options={"reset_mask": np.array([False, True])})
    for _ in range(4):
        env.step(env.action_space.sample())
    got = [(r["env_index"], r["length"], r["return"]) for r in read_rows(path)]
    assert got == [(0, 4, 10.0), (1, 4, 10.0)]


def test_vector_requires_next_step_autoreset(tmp_path):
    with pytest.raises(ValueError, match="autoreset_mode must be NEXT_STEP"):
        VectorEpisodeRecorder(make_vector([2], autoreset_mode=AutoresetMode.SAME_STEP), tmp_path / "v.jsonl")


def test_closing_a_recorder_whose_constructor_raised_closes_the_env_it_wraps():
    # The state the constructor leaves when it raises on the autoreset mode: wrapped, no file yet.
    env = make_vector([2], autoreset_mode=AutoresetMode.SAME_STEP)
    recorder = VectorEpisodeRecorder.__new__(VectorEpisodeRecorder)
    gymnasium.vector.VectorWrapper.__init__(recorder, env)
    recorder.close()
    assert env.closed
