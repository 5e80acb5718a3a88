import numpy as np
import pytest
from dm_control.utils import rewards as dm_rewards

from rwrl.domains.rewards import tolerance

SIGMOIDS = ["gaussian", "hyperbolic", "long_tail", "reciprocal", "cosine", "linear",
            "quadratic", "tanh_squared"]


@pytest.mark.parametrize("sigmoid", SIGMOIDS)
@pytest.mark.parametrize("bounds,margin", [((0, 0), 1.0), ((-1, 2), 0.5), ((1, np.inf), 3.0),
                                           ((-0.5, 0.5), 0.0)])
def test_equals_dm_control(sigmoid, bounds, margin):
    x = np.random.default_rng(0).normal(0, 3, (64, 5))
    x[0, :3] = [bounds[0], bounds[1] if np.isfinite(bounds[1]) else 1e9, -1e9]
    expected = dm_rewards.tolerance(x, bounds, margin, sigmoid, 0.1)
    got = tolerance(x, bounds, margin, sigmoid, 0.1)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(got == 1.0, expected == 1.0)  # in bounds: exactly 1


def test_value_at_margin_and_range():
    assert tolerance(np.array([2.0]), (0, 0), 2.0, "gaussian", 0.3)[0] == pytest.approx(0.3)
    assert tolerance(np.array([1.0]), (0, 0), 1.0, "linear", 0.0)[0] == 0.0


@pytest.mark.parametrize("kwargs,match", [
    ({"bounds": (1, 0)}, "lower 1 must be <= upper 0"),
    ({"margin": -1}, "margin must be non-negative"),
    ({"margin": 1, "sigmoid": "gaussian", "value_at_margin": 0.0}, r"allowed \(0, 1\)"),
    ({"margin": 1, "sigmoid": "wavy"}, "unknown sigmoid 'wavy'"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        tolerance(np.zeros(3), **kwargs)
