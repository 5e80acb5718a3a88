"""A bandit over frozen controllers on a drifting plant (rwrl.experiments.controller_selection)."""

from __future__ import annotations

import numpy as np
import pytest

from rwrl.experiments.controller_selection import play, record_returns

ENV = "rwrl/cartpole-swingup-v0"
DRIFT = dict(time_limit=20, perturb_spec={"enable": True, "param": "pole_length", "scheduler": "drift_pos",
                                          "start": 0.5, "min": 0.3, "max": 3.0, "std": 0.1})


def push(force: float):
    """A controller that always pushes the cart with ``force`` (in the action's units)."""
    return lambda obs: np.full((len(obs), 1), force, np.float32)


def test_copies_of_an_instance_meet_the_same_plant_and_the_regret_is_the_realised_oracles():
    # Two identical controllers: their copies of one instance must return exactly the same.
    record = record_returns([push(0.3), push(0.3), push(-1.0)], ENV, DRIFT, episodes=5, instances=2, seed=0)
    np.testing.assert_array_equal(record.returns[:, :, 0], record.returns[:, :, 1])
    assert not np.array_equal(record.returns[:, 0], record.returns[:, 1])  # instances differ
    # drift_pos: each instance's pole grows from episode to episode
    assert np.all(np.diff(record.parameter, axis=0) > 0) and record.parameter.shape == (5, 2)
    result = play(record, "ucb1", seed=0)
    best = record.returns.max(axis=2)
    pulled = record.returns[np.arange(5)[:, None], np.arange(2)[None, :], result.chosen]
    np.testing.assert_allclose(result.regret(), np.cumsum(best - pulled, axis=0))
    assert np.all(np.diff(result.regret(), axis=0) >= 0)
    assert set(result.chosen[:3, 0]) == {0, 1, 2}  # UCB1 pulls each arm once first


def test_a_run_repeats_from_its_seed():
    a, b = (record_returns([push(0.5), push(-0.5)], ENV, DRIFT, episodes=4, instances=2, seed=3)
            for _ in range(2))
    np.testing.assert_array_equal(a.returns, b.returns)
    np.testing.assert_array_equal(play(a, "swa", seed=1).chosen, play(b, "swa", seed=1).chosen)


def test_bad_input_is_refused_in_one_line():
    with pytest.raises(ValueError, match="controllers: 1 given, a choice needs at least 2"):
        record_returns([push(0.0)], ENV, DRIFT, episodes=4, instances=1)
    with pytest.raises(ValueError, match="episodes=2: must be >= the 3 controllers"):
        record_returns([push(0.0)] * 3, ENV, DRIFT, episodes=2, instances=1)
