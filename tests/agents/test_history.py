"""ObservationHistory: exact stacks, episode starts, NEXT_STEP autoresets, bad k."""

import gymnasium
import numpy as np
import pytest

import rwrl  # noqa: F401  (registers the ids)
from rwrl.agents.history import ObservationHistory

ID = "rwrl/cartpole-swingup-v0"  # observation 5, action 1


def _pair(num_envs=2, time_limit=1000):
    """A plain vector env and a history-wrapped twin, reset alike."""
    plain = gymnasium.make_vec(ID, num_envs=num_envs, time_limit=time_limit)
    stacked = ObservationHistory(gymnasium.make_vec(ID, num_envs=num_envs,
                                                    time_limit=time_limit), 3)
    return plain, stacked


def _split(obs):
    """Return (observations (n, 3, 5), actions (n, 3, 1)) of a k = 3 stack."""
    return obs[:, :15].reshape(-1, 3, 5), obs[:, 15:].reshape(-1, 3, 1)


def test_the_stack_holds_the_last_k_observations_and_actions_newest_first():
    plain, stacked = _pair()
    seen = [plain.reset(seed=1)[0]]
    first, _ = stacked.reset(seed=1)
    observations, actions = _split(first)
    # at the first step: three copies of the first observation, no action yet
    np.testing.assert_array_equal(observations, np.repeat(seen[0][:, None], 3, axis=1))
    assert not actions.any()
    taken = [np.full((2, 1), 0.1), np.full((2, 1), -0.2), np.full((2, 1), 0.3),
             np.full((2, 1), 0.4)]
    for a in taken:
        seen.append(plain.step(a)[0])
        obs = stacked.step(a)[0]
    observations, actions = _split(obs)
    np.testing.assert_array_equal(observations, np.stack(seen[::-1][:3], axis=1))
    np.testing.assert_array_equal(actions[:, :, 0], [[0.4, 0.3, -0.2]] * 2)


def test_an_autoreset_starts_a_fresh_history_for_that_env_alone():
    plain, stacked = _pair(time_limit=2)
    plain.reset(seed=3)
    stacked.reset(seed=3)
    a = np.full((2, 1), 0.5)
    for _ in range(2):  # the second step ends both episodes (time limit 2)
        plain.step(a)
        obs, *_, truncated, _ = stacked.step(a)
    assert truncated.all()
    new_first = plain.step(a)[0]  # the NEXT_STEP reset step
    observations, actions = _split(stacked.step(a)[0])
    np.testing.assert_array_equal(observations, np.repeat(new_first[:, None], 3, axis=1))
    assert not actions.any()


def test_the_space_and_bad_k():
    _, stacked = _pair()
    assert stacked.single_observation_space.shape == (18,)
    assert stacked.observation_space.shape == (2, 18)
    with pytest.raises(ValueError, match=r"observation history k = 0 is not allowed"):
        ObservationHistory(gymnasium.make_vec(ID, num_envs=1), 0)


def test_the_history_refuses_an_env_that_does_not_autoreset_on_the_next_step():
    vec = gymnasium.make_vec("rwrl/cartpole-swingup-v0", num_envs=2, autoreset_mode="SAME_STEP")
    with pytest.raises(ValueError, match="ObservationHistory needs autoreset_mode NEXT_STEP"):
        ObservationHistory(vec, 2)
