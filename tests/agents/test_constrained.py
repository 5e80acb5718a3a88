"""The constrained agents (RC-D4PG, fixed-lambda shaping, MetaL) and the costs that feed them."""

from __future__ import annotations

import numpy as np
import pytest

from rwrl.agents.replay import NStepReplay
from rwrl.experiments.loop import episode_cost, step_cost

GAMMA = 0.5  # a power of two: every expected sum is exact in float32


# --- the per-step cost in the replay and the loop ------------------------------


def test_replay_sums_costs_like_rewards_and_defaults_to_zero():
    replay = NStepReplay(capacity=20, obs_size=1, action_size=1, num_envs=1, n_step=2, gamma=GAMMA)
    obs = [[0.0], [1.0], [2.0], [3.0]]
    costs = [1.0, 0.0, 2.0]
    for t in range(3):
        replay.add(np.array([obs[t]]), np.zeros((1, 1)), np.array([10.0]), np.array([obs[t + 1]]),
                   np.array([False]), np.array([t == 2]), cost=np.array([costs[t]]))
    d = replay.state_dict()
    by_obs = {float(o[0]): float(c) for o, c in zip(d["obs_tm1"], d["cost_t"])}
    # Step 0: 1 + 0.5 * 0 = 1; step 1: 0 + 0.5 * 2 = 1 (truncated window, 2 steps);
    # step 2: 2 (one step left at truncation). Rewards follow the same sums: 15, 15, 10.
    assert by_obs == {0.0: 1.0, 1.0: 1.0, 2.0: 2.0}
    assert sorted(d["reward_t"].tolist()) == [10.0, 15.0, 15.0]
    batch = replay.sample(np.random.default_rng(0), 8)
    assert batch.cost_t.shape == (8,) and batch.cost_t.dtype == np.float32
    # Without a cost argument (every agent before the constrained ones) costs are 0.
    plain = NStepReplay(capacity=20, obs_size=1, action_size=1, num_envs=1, n_step=2, gamma=GAMMA)
    plain.add(np.zeros((1, 1)), np.zeros((1, 1)), np.ones(1), np.ones((1, 1)), np.array([True]), np.array([False]))
    assert plain.sample(np.random.default_rng(0), 2).cost_t.tolist() == [0.0, 0.0]


def test_replay_state_from_before_costs_restores_with_zero_costs():
    replay = NStepReplay(capacity=10, obs_size=1, action_size=1, num_envs=1, n_step=1, gamma=GAMMA)
    replay.add(np.zeros((1, 1)), np.zeros((1, 1)), np.ones(1), np.ones((1, 1)), np.array([True]),
               np.array([False]), cost=np.array([3.0]))
    old = {k: v for k, v in replay.state_dict().items() if k not in ("cost_t", "pending_cost")}
    restored = NStepReplay(capacity=10, obs_size=1, action_size=1, num_envs=1, n_step=1, gamma=GAMMA)
    restored.load_state_dict(old)
    assert len(restored) == 1 and restored.sample(np.random.default_rng(0), 1).cost_t.tolist() == [0.0]
    with pytest.raises(ValueError, match="cost has shape"):
        replay.add(np.zeros((1, 1)), np.zeros((1, 1)), np.ones(1), np.ones((1, 1)), np.array([True]),
                   np.array([False]), cost=np.zeros(2))


def test_step_cost_is_info_cost_or_one_named_constraint():
    info = {"cost": np.array([2.0, 0.0, 1.0]),
            "constraints": np.array([[False, False], [True, True], [True, False]])}
    names = ("slider_pos", "slider_accel")
    np.testing.assert_array_equal(step_cost(info, names, None), [2.0, 0.0, 1.0])
    np.testing.assert_array_equal(step_cost(info, names, "slider_pos"), [1.0, 0.0, 0.0])
    np.testing.assert_array_equal(step_cost(info, names, "slider_accel"), [1.0, 0.0, 1.0])
    row = {"cost": 30.0, "length": 100, "violation_rate/slider_pos": 0.25}
    assert episode_cost(row, None) == pytest.approx(0.3)
    assert episode_cost(row, "slider_pos") == 0.25
