"""The least-squares head refit (rwrl.agents.shallow) against numpy closed forms and by hand.

References are float64 numpy solves; the refit runs in float32 unless JAX has x64
enabled, so comparisons allow 1e-4 relative error on problems of condition <~ 1e3.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rwrl.agents.networks import DistributionalCritic, GaussianPolicy
from rwrl.agents.shallow import ShallowConfigError, check_refit, head_features, refit_head, ridge_solve

RTOL = 1e-4


def numpy_ridge(phi, y, w0, lam):
    """(Phi^T Phi + lam I)^{-1} (Phi^T y + lam w0) in float64."""
    phi, y, w0 = (np.asarray(a, np.float64) for a in (phi, y, w0))
    return np.linalg.solve(phi.T @ phi + lam * np.eye(phi.shape[1]), phi.T @ y + lam * w0)


def with_ones(x):
    return np.concatenate([x, np.ones((len(x), 1))], axis=1)


class MLP(nn.Module):
    """Dense(8) -> relu -> Dense(6) -> relu -> Dense(outputs)."""

    outputs: int = 1

    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Dense(8)(x))
        x = nn.relu(nn.Dense(6)(x))
        return nn.Dense(self.outputs)(x)


@pytest.fixture
def linear_problem():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3)).astype(np.float32)
    y = (x @ np.array([1.0, -2.0, 0.5]) + 3.0 + 0.1 * rng.normal(size=200)).astype(np.float32)
    net = nn.Dense(1)
    params = net.init(jax.random.PRNGKey(1), x)
    w0 = np.append(np.asarray(params["params"]["kernel"])[:, 0], np.asarray(params["params"]["bias"])[0])
    return net, params, x, y, w0


def head_weights(params, path=()):
    node = params["params"]
    for name in path:
        node = node[name]
    return np.asarray(node["kernel"]), np.asarray(node["bias"])


def test_ridge_solve_by_hand():
    # Phi = [[1], [1]], y = [1, 3]: Phi^T Phi = 2, Phi^T y = 4; with lam = 2:
    # w0 = 0 -> (2 + 2)^-1 (4 + 0) = 1;  w0 = 4 -> (2 + 2)^-1 (4 + 2 * 4) = 3.
    phi, y = jnp.array([[1.0], [1.0]]), jnp.array([1.0, 3.0])
    assert float(ridge_solve(phi, y, jnp.array([0.0]), 2.0)[0]) == pytest.approx(1.0)
    assert float(ridge_solve(phi, y, jnp.array([4.0]), 2.0)[0]) == pytest.approx(3.0)


def test_ridge_solve_equals_the_numpy_closed_form():
    rng = np.random.default_rng(3)
    phi, y, w0 = rng.normal(size=(50, 4)), rng.normal(size=50), rng.normal(size=4)
    np.testing.assert_allclose(ridge_solve(phi, y, w0, 0.7), numpy_ridge(phi, y, w0, 0.7), rtol=RTOL)


def test_ridge_solve_is_float64_where_jax_allows_it():
    rng = np.random.default_rng(4)
    phi, y, w0 = rng.normal(size=(30, 3)), rng.normal(size=30), rng.normal(size=3)
    assert ridge_solve(phi, y, w0, 1.0).dtype == jnp.float32
    with jax.enable_x64(True):
        w = ridge_solve(jnp.asarray(phi, jnp.float64), jnp.asarray(y, jnp.float64), jnp.asarray(w0, jnp.float64), 1.0)
        assert w.dtype == jnp.float64
        np.testing.assert_allclose(w, numpy_ridge(phi, y, w0, 1.0), rtol=1e-12)


def test_refit_of_a_linear_model_equals_the_closed_form_with_the_bias_as_a_feature(linear_problem):
    net, params, x, y, w0 = linear_problem
    features, path = head_features(net, params, x)
    np.testing.assert_array_equal(features, x)  # a lone Dense: its input is the data
    fitted = refit_head(params, path, features, y, lam=5.0)
    kernel, bias = head_weights(fitted)
    expected = numpy_ridge(with_ones(x), y, w0, 5.0)  # bias drawn toward its current value too
    np.testing.assert_allclose(np.append(kernel[:, 0], bias), expected, rtol=RTOL)


def test_small_lambda_gives_least_squares_and_large_lambda_keeps_the_current_weights(linear_problem):
    net, params, x, y, w0 = linear_problem
    least_squares = np.linalg.lstsq(with_ones(x), y.astype(np.float64), rcond=None)[0]
    kernel, bias = head_weights(refit_head(params, (), x, y, lam=1e-6))
    np.testing.assert_allclose(np.append(kernel[:, 0], bias), least_squares, rtol=RTOL, atol=1e-5)
    kernel, bias = head_weights(refit_head(params, (), x, y, lam=1e9))
    np.testing.assert_allclose(np.append(kernel[:, 0], bias), w0, rtol=RTOL, atol=1e-6)
    # in between, the fit error falls monotonically as lambda falls
    errors = []
    for lam in (1e4, 1e2, 1.0, 1e-2):
        kernel, bias = head_weights(refit_head(params, (), x, y, lam=lam))
        errors.append(np.sum((x @ kernel[:, 0] + bias[0] - y) ** 2))
    assert all(a > b for a, b in zip(errors, errors[1:]))


def test_the_bias_is_drawn_toward_its_current_value_not_toward_zero():
    # features all 0: only the bias column (ones) fits. N = 4 targets of 2: sum y = 8, sum 1 = 4.
    # bias = (4 + lam)^-1 (8 + lam * b0); lam = 4, b0 = 1 -> 12 / 8 = 1.5 (toward 0 it would be 1.0);
    # the kernel sees no data: (0 + lam)^-1 (0 + lam * k0) = k0.
    params = {"params": {"kernel": jnp.array([[0.25]]), "bias": jnp.array([1.0])}}
    fitted = refit_head(params, (), jnp.zeros((4, 1)), jnp.full(4, 2.0), lam=4.0)
    kernel, bias = head_weights(fitted)
    assert bias[0] == pytest.approx(1.5) and kernel[0, 0] == pytest.approx(0.25)


def test_head_features_finds_the_last_dense_of_an_mlp():
    x = jax.random.normal(jax.random.PRNGKey(0), (5, 7, 3))  # leading axes are flattened
    net = MLP()
    params = net.init(jax.random.PRNGKey(1), x)
    features, path = head_features(net, params, x)
    assert path == ("Dense_2",) and features.shape == (35, 6)
    kernel, bias = head_weights(params, path)
    # the head reproduces the network's output from the features
    np.testing.assert_allclose(features @ kernel + bias, net.apply(params, x).reshape(35, 1), rtol=1e-5, atol=1e-6)


def test_head_features_finds_the_head_of_rwrl_networks():
    obs, action = jax.random.normal(jax.random.PRNGKey(0), (9, 4)), jnp.zeros((9, 2))
    critic = DistributionalCritic(hidden_sizes=(16, 8), num_atoms=5)
    params = critic.init(jax.random.PRNGKey(1), obs, action)
    features, path = head_features(critic, params, obs, action)
    # the head, not the torso's Dense layers at ("LayerNormMLP_0", "Dense_k")
    assert path == ("Dense_0",) and features.shape == (9, 8)
    kernel, bias = head_weights(params, path)
    np.testing.assert_allclose(features @ kernel + bias, critic.apply(params, obs, action), rtol=1e-5, atol=1e-6)
    # the last Dense CALLED: the Gaussian policy's stddev head comes after its mean head
    policy = GaussianPolicy(action_size=2, hidden_sizes=(8,))
    _, path = head_features(policy, policy.init(jax.random.PRNGKey(2), obs), obs)
    assert path == ("Dense_1",)


def test_head_features_and_refit_work_under_jit(linear_problem):
    net, params, x, y, _ = linear_problem

    @jax.jit
    def refit(params, x, y):
        features, path = head_features(net, params, x)
        return refit_head(params, path, features, y, lam=5.0)

    jitted, eager = refit(params, x, y), refit_head(params, (), x, y, lam=5.0)
    for a, b in zip(head_weights(jitted), head_weights(eager)):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_a_per_column_refit_changes_only_that_column_and_reads_only_its_rows():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(40, 3)).astype(np.float32)
    actions = rng.integers(0, 3, size=40)
    y = rng.normal(size=40).astype(np.float32)
    net = MLP(outputs=3)
    params = net.init(jax.random.PRNGKey(0), x)
    features, path = head_features(net, params, x)
    kernel, bias = head_weights(params, path)
    rows = actions == 1
    fitted = refit_head(params, path, features, y, lam=2.0, column=1, rows=jnp.asarray(rows))
    new_kernel, new_bias = head_weights(fitted, path)
    for k in (0, 2):
        np.testing.assert_array_equal(new_kernel[:, k], kernel[:, k])
        assert new_bias[k] == bias[k]
    expected = numpy_ridge(with_ones(np.asarray(features))[rows], y[rows], np.append(kernel[:, 1], bias[1]), 2.0)
    np.testing.assert_allclose(np.append(new_kernel[:, 1], new_bias[1]), expected, rtol=RTOL, atol=1e-6)
    # the other rows' targets do not matter
    y_other = np.where(rows, y, 100.0).astype(np.float32)
    again = refit_head(params, path, features, y_other, lam=2.0, column=1, rows=jnp.asarray(rows))
    np.testing.assert_allclose(head_weights(again, path)[0], new_kernel, rtol=1e-6)
    # the input pytree is left as it was, the torso shared
    np.testing.assert_array_equal(head_weights(params, path)[0], kernel)
    assert fitted["params"]["Dense_0"] is params["params"]["Dense_0"]


def test_a_singular_system_keeps_the_current_head():
    # lam = 0 with a constant feature collinear with the bias column: Phi^T Phi is singular.
    params = {"params": {"kernel": jnp.array([[0.5]]), "bias": jnp.array([0.25])}}
    fitted = refit_head(params, (), jnp.ones((6, 1)), jnp.arange(6.0), lam=0.0)
    for new, old in zip(head_weights(fitted), head_weights(params)):
        np.testing.assert_array_equal(new, old)


class NoDense(nn.Module):
    @nn.compact
    def __call__(self, x):
        return x * self.param("scale", nn.initializers.ones, (x.shape[-1],))


@pytest.mark.parametrize("every, lam, match", [
    (0, 1.0, r"^ls_every = 0: must be an integer >= 1 \(or None: no refit\)$"),
    (2.5, 1.0, r"^ls_every = 2.5: must be an integer >= 1"),
    (True, 1.0, r"^ls_every = True: must be an integer >= 1"),
    ("10", 1.0, r"^ls_every = '10': must be an integer >= 1"),
    (None, float("nan"), r"^ls_lambda = nan: must be finite and >= 0$"),
    (10, -1.0, r"^ls_lambda = -1.0: must be finite and >= 0$"),
    (10, float("inf"), r"^ls_lambda = inf: must be finite and >= 0$"),
    (10, "big", r"^ls_lambda = 'big': must be finite and >= 0$"),
])
def test_bad_refit_settings_are_one_line_errors(every, lam, match):
    with pytest.raises(ShallowConfigError, match=match):
        check_refit(every, lam)


def test_good_refit_settings_pass():
    check_refit(None, 0.0)
    check_refit(1, 1e6)
    check_refit(np.int64(100), np.float32(0.5))


def test_bad_refit_inputs_are_one_line_errors():
    x = jnp.ones((4, 3))
    net = MLP(outputs=3)
    params = net.init(jax.random.PRNGKey(0), x)
    features, path = head_features(net, params, x)
    y = jnp.zeros(4)
    cases = [
        (lambda: refit_head(params, path, features, y, 1.0), r"column = None: the head at \('Dense_2',\) has 3 outputs"),
        (lambda: refit_head(params, path, features, y, 1.0, column=3), r"column = 3: must be an integer in \[0, 3\)"),
        (lambda: refit_head(params, path, x, y, 1.0, column=0), r"features of shape \(4, 3\).*takes \(N, 6\)"),
        (lambda: refit_head(params, path, features, jnp.zeros(5), 1.0, column=0), r"targets of shape \(5,\)"),
        (lambda: refit_head(params, path, features, y, 1.0, column=0, rows=jnp.ones(4)), r"rows .*bool mask"),
        (lambda: refit_head(params, path, features, y, -2.0, column=0), r"^lam = -2.0: must be finite and >= 0$"),
        (lambda: refit_head(params, ("Dense_9",), features, y, 1.0), r"path = \('Dense_9',\): no Dense kernel"),
        (lambda: head_features(NoDense(), NoDense().init(jax.random.PRNGKey(0), x), x),
         r"^the network has no Dense layer"),
    ]
    for call, match in cases:
        with pytest.raises(ShallowConfigError, match=match) as error:
            call()
        assert "\n" not in str(error.value)
