"""Extra observation dims: n fresh N(0, 1) features per env and step, in the entry 'dummy'."""

import numpy as np

from tests.challenges.challenge_probe import ProbeTask, challenge_env



def test_random_features_are_fresh_standard_normal_draws():
    env = challenge_env(ProbeTask(16, nu=1),
                       dimensionality_spec={"num_random_state_observations": 7})
    assert env.observation_spec["dummy"] == ((7,), np.dtype(np.float64))
    obs, _ = env.reset(np.arange(16), list(range(16)))
    draws = [obs["dummy"]] + [env.step(np.zeros((16, 1)))[0]["dummy"] for _ in range(200)]
    draws = np.array(draws)  # (steps, envs, features)
    assert draws.shape == (201, 16, 7)
    assert abs(draws.mean()) < 0.03 and abs(draws.std() - 1.0) < 0.03
    # Independent across steps, envs and features: no correlation between neighbours.
    flat = draws.reshape(201, -1)
    assert abs(np.corrcoef(flat[:-1].ravel(), flat[1:].ravel())[0, 1]) < 0.03
    assert abs(np.corrcoef(draws[..., 0].ravel(), draws[..., 1].ravel())[0, 1]) < 0.05
    # The task's own entries are untouched.
    np.testing.assert_array_equal(env.step(np.zeros((16, 1)))[0]["counter"][:, 0], 201.0)


def test_zero_features_is_off():
    env = challenge_env(ProbeTask(1, nu=1), dimensionality_spec={"num_random_state_observations": 0})
    assert "dummy" not in env.observation_spec
