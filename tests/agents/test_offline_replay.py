"""The offline replay: exact n-step transitions of real Minari datasets, truncation vs termination."""

from __future__ import annotations

import numpy as np
import pytest

from rwrl.agents.offline_replay import OfflineReplay
from tests.agents.offline_fixtures import buffers_dataset, collect_cartpole


@pytest.fixture(autouse=True)
def _datasets_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "datasets"))


def _episode(obs, rewards, terminated):
    """An episode of len(rewards) steps; observations and actions are the step numbers."""
    steps = len(rewards)
    return {"observations": np.asarray(obs, np.float32)[:, None],
            "actions": np.arange(steps, dtype=np.float32)[:, None] / 10,
            "rewards": rewards,
            "terminations": [False] * (steps - 1) + [terminated],
            "truncations": [False] * (steps - 1) + [not terminated]}


def test_one_step_transitions_of_a_real_cartpole_dataset_are_the_episode_arrays():
    dataset = collect_cartpole("rwrl/cartpole-random-v0", episodes=3, time_limit=7)
    replay = OfflineReplay(dataset, n_step=1, gamma=0.9)
    assert (len(replay), replay.num_episodes, replay.obs_size, replay.action_size) == (21, 3, 5, 1)
    batch = replay.transitions(np.arange(len(replay)))
    for e, episode in enumerate(dataset.iterate_episodes()):
        rows = slice(7 * e, 7 * e + 7)
        np.testing.assert_array_equal(batch.obs_tm1[rows], episode.observations[:-1].astype(np.float32))
        np.testing.assert_array_equal(batch.obs_t[rows], episode.observations[1:].astype(np.float32))
        np.testing.assert_array_equal(batch.action_tm1[rows], episode.actions)
        np.testing.assert_allclose(batch.reward_t[rows], episode.rewards, rtol=1e-6)
        # Every episode is truncated by the time limit: gamma everywhere, the
        # last step bootstraps from the true final observation.
        assert episode.truncations[-1] and not episode.terminations.any()
        np.testing.assert_allclose(batch.discount_t[rows], 0.9)


def test_n_step_sums_and_discounts_stop_at_the_episode_end():
    # Episode 0: 3 steps, terminated; episode 1: 4 steps, truncated. n = 2, gamma = 0.5.
    episodes = [_episode([0, 1, 2, 3], [1.0, 2.0, 4.0], terminated=True),
                _episode([10, 11, 12, 13, 14], [1.0, 1.0, 1.0, 8.0], terminated=False)]
    replay = OfflineReplay(buffers_dataset("toy/nstep-v0", episodes, 1, 1), n_step=2, gamma=0.5)
    b = replay.transitions(np.arange(7))
    np.testing.assert_array_equal(b.obs_tm1[:, 0], [0, 1, 2, 10, 11, 12, 13])
    np.testing.assert_array_equal(b.obs_t[:, 0], [2, 3, 3, 12, 13, 14, 14])
    # 1 + 0.5*2, 2 + 0.5*4, 4 (one step left); 1 + 0.5, 1 + 0.5, 1 + 0.5*8, 8.
    np.testing.assert_allclose(b.reward_t, [2.0, 4.0, 4.0, 1.5, 1.5, 5.0, 8.0])
    # Terminal: discount 0 only where the window reaches the terminal step;
    # truncation: gamma**k with k the steps actually summed (2, or 1 at the end).
    np.testing.assert_allclose(b.discount_t, [0.25, 0.0, 0.0, 0.25, 0.25, 0.25, 0.5])
    np.testing.assert_allclose(b.action_tm1[:, 0], [0, 0.1, 0.2, 0, 0.1, 0.2, 0.3], rtol=1e-6)


def test_actions_are_mapped_onto_minus_one_one():
    episodes = [_episode([0, 1, 2], [0.0, 0.0], terminated=False)]
    episodes[0]["actions"] = np.array([[-2.0], [1.0]], np.float32)
    replay = OfflineReplay(buffers_dataset("toy/bounds-v0", episodes, 1, 1, action_bound=2.0))
    np.testing.assert_allclose(replay.transitions(np.arange(2)).action_tm1[:, 0], [-1.0, 0.5])


def test_sampling_is_uniform_and_seeded(tmp_path):
    episodes = [_episode(np.arange(11), np.ones(10), terminated=False) for _ in range(2)]
    replay = OfflineReplay(buffers_dataset("toy/uniform-v0", episodes, 1, 1))
    batch = replay.sample(np.random.default_rng(3), 20_000)
    counts = np.bincount((batch.obs_tm1[:, 0]).astype(int), minlength=10)
    assert counts.shape == (10,) and np.all(np.abs(counts / 20_000 - 0.1) < 0.01)
    again = replay.sample(np.random.default_rng(3), 20_000)
    np.testing.assert_array_equal(batch.obs_tm1, again.obs_tm1)


def test_opens_by_id_and_by_directory_and_names_a_missing_one(tmp_path):
    dataset = buffers_dataset("toy/open-v0", [_episode([0, 1], [1.0], terminated=True)], 1, 1)
    assert len(OfflineReplay("toy/open-v0")) == 1
    assert len(OfflineReplay(dataset.storage.data_path.parent)) == 1
    with pytest.raises(FileNotFoundError, match="'toy/missing-v0'"):
        OfflineReplay("toy/missing-v0")
    with pytest.raises(ValueError, match="n_step=0"):
        OfflineReplay(dataset, n_step=0)
