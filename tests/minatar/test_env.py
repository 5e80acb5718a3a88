"""The MinAtar adapter and replay: seeded episodes, the Gymnasium contract, the sticky memory
cleared on reset, one-line errors; the replay's sampling and incremental save."""

from __future__ import annotations

import numpy as np
import pytest

from rwrl.minatar import GAMES, check_game
from rwrl.minatar.env import MinAtarEnv
from rwrl.minatar.replay import FrameReplay


def _episode(env: MinAtarEnv, seed: int, actions: np.ndarray) -> tuple[list[np.ndarray], list[float]]:
    obs, _ = env.reset(seed=seed)
    frames, rewards = [obs], []
    for action in actions:
        obs, reward, terminated, truncated, _ = env.step(int(action))
        assert truncated is False
        frames.append(obs)
        rewards.append(reward)
        if terminated:
            break
    return frames, rewards


@pytest.mark.parametrize("game", GAMES)
def test_a_seed_makes_the_episode_whatever_came_before(game):
    actions = np.random.default_rng(0).integers(0, 6, 300)
    env = MinAtarEnv(game)
    assert env.action_space.n == 6 and env.observation_space.dtype == bool
    first = _episode(env, 7, actions)
    _episode(env, 8, actions[::-1])  # another episode, ending on another action in the sticky memory
    again = _episode(env, 7, actions)
    fresh = _episode(MinAtarEnv(game), 7, actions)
    for other in (again, fresh):
        assert other[1] == first[1]
        assert all(np.array_equal(a, b) for a, b in zip(other[0], first[0]))
    assert first[0][0].shape == env.observation_space.shape
    assert env.observation_space.contains(first[0][-1])
    other_seed = _episode(MinAtarEnv(game), 9, actions)
    assert len(other_seed[0]) != len(first[0]) or not all(
        np.array_equal(a, b) for a, b in zip(other_seed[0], first[0]))


def test_minimal_action_set_and_bad_input():
    assert MinAtarEnv("breakout", minimal_action_set=True).action_space.n == 3
    with pytest.raises(ValueError, match=r"^unknown game 'pong': allowed asterix, breakout, freeway, "
                                         r"seaquest, space_invaders$"):
        MinAtarEnv("pong")
    with pytest.raises(ValueError, match=r"^sticky_action_prob=1.5: must be in \[0, 1\]$"):
        MinAtarEnv("breakout", sticky_action_prob=1.5)
    assert check_game("freeway") == "freeway"


def test_replay_stores_discounts_samples_and_restores_incrementally():
    replay = FrameReplay(4, (10, 10, 1), gamma=0.9)
    frame = lambda k: np.full((10, 10, 1), k % 2 == 0)  # noqa: E731
    for k in range(6):  # 6 written into a ring of 4: transitions 2..5 kept
        replay.add(frame(k), k, float(k), k == 3, frame(k + 1))
    assert (len(replay), replay.written) == (4, 6)
    rows = replay.export_rows(2)
    np.testing.assert_array_equal(rows["action_tm1"], [2, 3, 4, 5])
    np.testing.assert_array_equal(rows["discount_t"], np.float32([0.9, 0.0, 0.9, 0.9]))
    copy = FrameReplay(4, (10, 10, 1), gamma=0.9)
    copy.load_position_state(replay.position_state())
    assert copy.import_rows(2, rows) == 4
    for name, values in copy.export_rows(2).items():
        np.testing.assert_array_equal(values, rows[name])
    batch = replay.sample_distinct(np.random.default_rng(0), 4)
    assert sorted(batch.action_tm1) == [2, 3, 4, 5]
    with pytest.raises(ValueError, match="replay state has"):
        FrameReplay(8, (10, 10, 1), 0.9).load_position_state(replay.position_state())
    with pytest.raises(ValueError, match=r"^count=5: the buffer holds 4 transitions$"):
        replay.sample_distinct(np.random.default_rng(0), 5)


def test_without_minatar_installed_the_cli_says_how_to_get_it_in_one_line(monkeypatch, tmp_path):
    import sys

    from typer.testing import CliRunner

    from rwrl.cli.app import app
    monkeypatch.setitem(sys.modules, "minatar", None)  # as if the extra were not installed
    result = CliRunner().invoke(app, ["minatar", "run", "--game", "breakout", "--agent", "dqn",
                                      "--frames", "10", "--out", str(tmp_path / "run")])
    assert result.exit_code == 2, result.output
    assert "pip install 'rwrl[minatar]'" in result.output and "GPL-3.0" in result.output
    assert len(result.output.strip().splitlines()) == 1
