"""R-MPO and SR-MPO: the physics state in replay, the robust targets, the robust action, resume."""

from __future__ import annotations

import numpy as np
import pytest

from rwrl.agents.replay import NStepReplay


# ---------------------------------------------------------------- replay with physics states
def _fill(replay: NStepReplay, steps: int, rng: np.random.Generator) -> dict[int, np.ndarray]:
    """Add ``steps`` vector steps whose obs[0] names the step; return name -> its state."""
    n, states = replay.num_envs, {}
    for t in range(steps):
        ids = t * n + np.arange(n)
        obs = np.zeros((n, replay.obs_size), np.float32)
        obs[:, 0] = ids
        state = rng.normal(size=(n, replay.state_size)) * np.pi  # not representable in float32
        states.update(zip(ids.tolist(), state))
        truncated = np.full(n, t % 5 == 4)
        replay.add(obs, np.zeros((n, 1)), np.ones(n), obs + 0.5, np.zeros(n, bool), truncated,
                   state=state)
    return states


@pytest.mark.parametrize("n_step", [1, 3])
def test_the_replay_stores_the_physics_state_of_obs_tm1_exactly(n_step):
    rng = np.random.default_rng(0)
    replay = NStepReplay(100, 2, 1, num_envs=3, n_step=n_step, gamma=0.9, state_size=7)
    states = _fill(replay, 12, rng)
    batch = replay.sample(np.random.default_rng(1), 64)
    assert batch.state_tm1.dtype == np.float64
    for obs, state in zip(batch.obs_tm1, batch.state_tm1):
        np.testing.assert_array_equal(state, states[int(obs[0])])  # bit for bit

    copy = NStepReplay(100, 2, 1, num_envs=3, n_step=n_step, gamma=0.9, state_size=7)
    copy.load_state_dict(replay.state_dict())
    again = copy.sample(np.random.default_rng(1), 64)
    np.testing.assert_array_equal(again.state_tm1, batch.state_tm1)


def test_a_replay_without_states_is_unchanged_and_refuses_one():
    replay = NStepReplay(10, 2, 1, num_envs=1, n_step=1, gamma=0.9)
    replay.add(np.zeros((1, 2)), np.zeros((1, 1)), [1.0], np.zeros((1, 2)), [False], [False])
    assert replay.sample(np.random.default_rng(0), 2).state_tm1 is None
    assert "state_tm1" not in replay.state_dict()
    with pytest.raises(ValueError, match="state is given"):
        replay.add(np.zeros((1, 2)), np.zeros((1, 1)), [1.0], np.zeros((1, 2)), [False], [False],
                   state=np.zeros((1, 3)))
    stateful = NStepReplay(10, 2, 1, num_envs=1, n_step=1, gamma=0.9, state_size=3)
    with pytest.raises(ValueError, match="state is missing"):
        stateful.add(np.zeros((1, 2)), np.zeros((1, 1)), [1.0], np.zeros((1, 2)), [False], [False])
    with pytest.raises(ValueError, match="missing.*state_tm1"):
        stateful.load_state_dict(replay.state_dict())
