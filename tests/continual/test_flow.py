"""The RealNVP flow: exact inverse, exact log|det| (against jax.jacfwd), the mixture by hand, bad input."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rwrl.continual import flow as flows


def _tiny(dim=4, couplings=4, seed=0):
    """A tiny flow whose parameters are moved off the identity it starts as (its last layers start at 0)."""
    f = flows.make_flow(dim=dim, num_components=3, num_couplings=couplings, hidden=8)
    params = flows.init_params(f, jax.random.PRNGKey(seed))
    leaves, tree = jax.tree_util.tree_flatten(params)
    keys = jax.random.split(jax.random.PRNGKey(seed + 1), len(leaves))
    leaves = [leaf + 0.3 * jax.random.normal(k, leaf.shape) for leaf, k in zip(leaves, keys)]
    return f, jax.tree_util.tree_unflatten(tree, leaves)


@pytest.fixture(scope="module")
def tiny():
    """A tiny flow off the identity and its jitted forward (z, logdet) and inverse."""
    f, params = _tiny()
    return f, params, jax.jit(lambda v: flows.forward(f, params, v)), jax.jit(lambda v: flows.inverse(f, params, v))


def test_inverse_undoes_forward_and_forward_undoes_inverse(tiny):
    _, _, forward, inverse = tiny
    x = jax.random.normal(jax.random.PRNGKey(2), (16, 4)) * 2.0
    z = forward(x)[0]
    assert float(jnp.max(jnp.abs(z - x))) > 0.1  # the flow is not the identity here
    np.testing.assert_allclose(inverse(z), x, atol=1e-5)
    np.testing.assert_allclose(forward(inverse(x))[0], x, atol=1e-5)


@pytest.mark.parametrize("dim, couplings", [(3, 2)])
def test_logdet_equals_the_log_abs_determinant_of_the_jacobian(dim, couplings):
    f, params = _tiny(dim, couplings)
    x = jax.random.normal(jax.random.PRNGKey(3), (5, dim))
    _, logdet = jax.jit(lambda v: flows.forward(f, params, v))(x)

    def one(v):
        return flows.forward(f, params, v[None])[0][0]

    sign, expected = jnp.linalg.slogdet(jax.jit(jax.vmap(jax.jacfwd(one)))(x))
    assert bool(jnp.all(sign != 0.0))
    np.testing.assert_allclose(logdet, expected, atol=1e-4)


def test_a_new_flow_is_the_identity():
    f = flows.make_flow(dim=4, num_components=3, num_couplings=4, hidden=8)
    params = flows.init_params(f, jax.random.PRNGKey(0))
    x = jax.random.normal(jax.random.PRNGKey(1), (16, 4))
    z, logdet = jax.jit(lambda v: flows.forward(f, params, v))(x)
    np.testing.assert_allclose(z, x, atol=1e-6)
    np.testing.assert_allclose(logdet, 0.0, atol=1e-6)


def test_mixture_log_prob_by_hand():
    z = jnp.array([[0.0, 0.0], [1.0, 1.0]])
    means = jnp.array([[0.0, 0.0], [1.0, 2.0]])
    # log N(z; mu, I) in 2-d = -|z - mu|^2 / 2 - log(2 pi); log(2 pi) = 1.8378771
    # |z - mu|^2: row 0: 0 and 1 + 4 = 5; row 1: 1 + 1 = 2 and 0 + 1 = 1
    expected = np.array([[-1.8378771, -2.5 - 1.8378771], [-1.0 - 1.8378771, -0.5 - 1.8378771]])
    np.testing.assert_allclose(flows.mixture_log_prob(z, means), expected, atol=1e-6)


def test_log_prob_is_the_mixture_of_the_latent_plus_logdet(tiny):
    f, params, forward, _ = tiny
    x = jax.random.normal(jax.random.PRNGKey(4), (16, 4))
    z, logdet = forward(x)
    expected = flows.mixture_log_prob(z, params["means"]) + logdet[:, None]
    got = jax.jit(lambda v: flows.log_prob(f, params, v))(x)
    assert got.shape == (16, 3)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-5)


def test_samples_of_a_component_map_back_to_its_gaussian(tiny):
    f, params, forward, _ = tiny
    comps = jnp.full((4000,), 1)
    x = jax.jit(lambda k: flows.sample(f, params, k, comps, temperature=0.5))(jax.random.PRNGKey(5))
    z = jax.jit(lambda v: flows.forward(f, params, v)[0])(x)
    # z = mu_1 + 0.5 eps: mean mu_1 (standard error 0.5 / sqrt(4000) = 0.008), std 0.5
    np.testing.assert_allclose(z.mean(axis=0), params["means"][1], atol=0.04)
    np.testing.assert_allclose(z.std(axis=0), 0.5, atol=0.03)


def test_coupling_masks_come_in_complementary_halves():
    masks = flows.coupling_masks(7, 4, mask_seed=3)
    assert masks.shape == (4, 7) and set(np.unique(masks)) == {0.0, 1.0}
    np.testing.assert_array_equal(masks[0] + masks[1], 1.0)
    np.testing.assert_array_equal(masks[2] + masks[3], 1.0)
    assert masks[0].sum() == 3 and not np.array_equal(masks[0], masks[2])
    np.testing.assert_array_equal(masks, flows.coupling_masks(7, 4, mask_seed=3))


def test_dequantize_keeps_each_pixel_in_its_level():
    x = np.array([[0.0, 1.0 / 16, 0.5, 1.0]])
    noisy = flows.dequantize(x, 17, np.random.default_rng(0))
    # level k = x * 16 becomes (k + u) / 17 with u in [0, 1)
    k = np.array([[0, 1, 8, 16]])
    assert np.all(noisy >= k / 17) and np.all(noisy < (k + 1) / 17)
    np.testing.assert_allclose(flows.dequantize(x, 17, None), (k + 0.5) / 17, atol=1e-7)


def test_logit_logdet_and_inverse():
    x = jnp.array([[0.01, 0.3, 0.97]])
    y, logdet = flows.logit(x, 0.05)
    jac = jax.jacfwd(lambda v: flows.logit(v[None], 0.05)[0][0])(x[0])
    np.testing.assert_allclose(logdet[0], jnp.linalg.slogdet(jac)[1], atol=1e-5)
    np.testing.assert_allclose(flows.logit_inverse(y, 0.05), x, atol=1e-6)
    # at x = 1/2: p = 1/2, dy/dx = 0.9 / (1/2 * 1/2) = 3.6 per input
    np.testing.assert_allclose(flows.logit(jnp.full((1, 2), 0.5), 0.05)[1], 2 * math.log(3.6), atol=1e-5)


@pytest.mark.parametrize("kwargs, message", [
    (dict(dim=1, num_components=2), r"dim = 1 is not allowed: give an integer >= 2"),
    (dict(dim=4, num_components=0), r"num_components = 0 is not allowed"),
    (dict(dim=4, num_components=2, hidden=2.5), r"hidden = 2.5 is not allowed"),
    (dict(dim=4, num_components=2, mean_scale=float("nan")), r"mean_scale = nan is not allowed: give a finite"),
    (dict(dim=4, num_components=2, num_couplings=True), r"num_couplings = True is not allowed"),
])
def test_bad_flow_settings_are_one_line(kwargs, message):
    with pytest.raises(flows.FlowConfigError, match=message) as error:
        flows.make_flow(**kwargs)
    assert "\n" not in str(error.value)
