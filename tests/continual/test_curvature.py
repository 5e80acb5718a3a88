"""Curvature estimates and quadratic penalties: hand-computed values, equivalences, bad input in one line."""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from rwrl.continual import curvature as cv


class TwoLayer(nn.Module):
    """A small MLP with a tanh (smooth, so its Hessian is not its Gauss-Newton matrix)."""

    outputs: int = 3

    @nn.compact
    def __call__(self, x):
        return nn.Dense(self.outputs)(jnp.tanh(nn.Dense(4)(x)))


class Twice(nn.Module):
    @nn.compact
    def __call__(self, x):
        layer = nn.Dense(3)
        return layer(layer(x))


def _model(module, batch, width=3, seed=0):
    x = jax.random.normal(jax.random.PRNGKey(seed + 1), (batch, width))
    return module, module.init(jax.random.PRNGKey(seed), x), x


def _jacobians(module, params, x):
    """(N, C, P): each example's output Jacobian with respect to the flat parameters."""
    flat, unravel = ravel_pytree(params)
    return jax.jacobian(lambda w: module.apply(unravel(w), x))(flat)


# ---------------------------------------------------------------------------------------------
# the penalties, by hand, on a Dense(1) of one input: params {bias (1,), kernel (1, 1)}

ANCHOR = {"params": {"bias": jnp.array([-1.0]), "kernel": jnp.array([[0.5]])}}
# w - w* : kernel 1, bias 2; ravel order is (bias, kernel), so the flat change is [2, 1].
PARAMS = {"params": {"bias": jnp.array([1.0]), "kernel": jnp.array([[1.5]])}}
KFAC = cv.Curvature("kfac", diagonal=jax.tree_util.tree_map(jnp.zeros_like, PARAMS),
                    factors=(cv.KroneckerFactors((), True, jnp.array([[2.0, 1.0], [1.0, 3.0]]),
                                                 jnp.array([[4.0]])),))
HAND = [
    # identity: 0.5 (1^2 + 2^2) = 2.5
    (cv.Curvature("identity"), 2.5),
    # diagonal (kernel 3, bias 0.5): 0.5 (3 * 1 + 0.5 * 4) = 2.5
    (cv.Curvature("diagonal", diagonal={"params": {"bias": jnp.array([0.5]), "kernel": jnp.array([[3.0]])}}),
     2.5),
    # kfac: dW = [kernel; bias] = [1, 2]; dW^T A dW = 2 + 2 * 1 * 2 + 3 * 4 = 18; times G = 4: 72; half: 36
    (KFAC, 36.0),
    # full over (bias, kernel) = [[1, .5], [.5, 2]]: d^T M d = 4 + 2 * .5 * 2 + 2 = 8; half: 4
    (cv.Curvature("full", matrix=jnp.array([[1.0, 0.5], [0.5, 2.0]])), 4.0),
]


@pytest.mark.parametrize("curv, expected", HAND, ids=[c.form for c, _ in HAND])
def test_each_penalty_equals_its_hand_computed_value_and_its_gradient_is_autodiffs(curv, expected):
    penalty = cv.quadratic_penalty(ANCHOR, curv, weight=2.0)
    assert float(penalty.value(PARAMS)) == pytest.approx(2.0 * expected)
    auto = jax.grad(penalty.value)(PARAMS)
    for a, b in zip(jax.tree_util.tree_leaves(auto), jax.tree_util.tree_leaves(penalty.grad(PARAMS))):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    # the matrix-free value equals the dense one: 0.5 d^T H d with H from dense()
    d = ravel_pytree(PARAMS)[0] - ravel_pytree(ANCHOR)[0]
    assert float(0.5 * d @ cv.dense(curv, PARAMS) @ d) == pytest.approx(expected)


def test_kfac_dense_matrix_is_a_kron_g_in_ravel_order():
    # rows (kernel, bias) of A (x) G = 4 A = [[8, 4], [4, 12]]; in ravel order (bias, kernel): [[12, 4], [4, 8]]
    np.testing.assert_allclose(cv.dense(KFAC, PARAMS), [[12.0, 4.0], [4.0, 8.0]])


def test_a_list_and_a_stack_of_penalties_sum_the_same():
    penalties = [cv.quadratic_penalty(ANCHOR, c, w) for (c, _), w in zip(HAND[1:2] * 3, (1.0, 0.0, 3.0))]
    # weights 1 + 0 + 3 of the diagonal penalty 2.5
    assert float(cv.total_penalty(penalties, PARAMS)) == pytest.approx(10.0)
    assert float(jax.jit(cv.total_penalty)(cv.stack(penalties), PARAMS)) == pytest.approx(10.0)
    listed, stacked = cv.total_grad(penalties, PARAMS), cv.total_grad(cv.stack(penalties), PARAMS)
    for a, b in zip(jax.tree_util.tree_leaves(listed), jax.tree_util.tree_leaves(stacked)):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_padded_slots_add_nothing_and_keep_the_stacks_shape():
    penalties = [cv.quadratic_penalty(ANCHOR, HAND[1][0], 1.0)]
    padded = cv.padded_stack(penalties, 4)
    assert jax.tree_util.tree_leaves(padded)[0].shape[0] == 4
    assert float(cv.total_penalty(padded, PARAMS)) == pytest.approx(2.5)  # the diagonal penalty alone
    empty = cv.padded_stack([], 3, like=penalties[0])
    assert jax.tree_util.tree_leaves(empty)[0].shape[0] == 3
    assert float(cv.total_penalty(empty, PARAMS)) == 0.0


def test_relative_error_by_hand():
    # H = [[2, 1], [1, 2]]; its diagonal and its best identity (tr H / P = 2) both miss the off-diagonal:
    # ||[[0, 1], [1, 0]]|| / ||H|| = sqrt(2) / sqrt(10)
    full = cv.Curvature("full", matrix=jnp.array([[2.0, 1.0], [1.0, 2.0]]))
    diag = cv.Curvature("diagonal", diagonal=jax.tree_util.tree_map(lambda x: 2 * jnp.ones_like(x), PARAMS))
    for approx in (diag, cv.identity(PARAMS)):
        assert cv.relative_error(approx, full, PARAMS) == pytest.approx(math.sqrt(0.2), rel=1e-6)
    assert cv.relative_error(full, full, PARAMS) == 0.0


# ---------------------------------------------------------------------------------------------
# the estimates against their definitions


@pytest.mark.parametrize("output, fisher", [("categorical", "exact"), ("categorical", "sampled"),
                                            ("gaussian", "exact")])
def test_kfac_equals_the_full_fisher_of_one_dense_layer_at_batch_one(output, fisher):
    # One example: every gradient of the Dense's [kernel; bias] is a~ g^T with the same input a~, so
    # F = E_v[(a~ (x) g)(a~ (x) g)^T] = a~ a~^T (x) E_v[g g^T] = A (x) G exactly (same key: same labels).
    module, params, x = _model(nn.Dense(4), batch=1)
    key = jax.random.PRNGKey(7)
    options = dict(output=output, fisher=fisher, num_samples=3)
    full = cv.full_fisher(module, params, (x,), key, **options)
    factored = cv.kfac(module, params, (x,), key, **options)
    np.testing.assert_allclose(cv.dense(factored, params), full.matrix, atol=1e-6)
    # Two different inputs: the inputs and the gradients no longer factorise, so K-FAC approximates,
    # except for the exact Gaussian Fisher of a linear layer, whose g runs over the unit vectors whatever
    # the input: F = E[a~ a~^T] (x) I = A (x) G for any batch.
    module, params, x = _model(nn.Dense(4), batch=2)
    full = cv.full_fisher(module, params, (x,), key, **options)
    error = cv.relative_error(cv.kfac(module, params, (x,), key, **options), full, params)
    assert error < 1e-6 if (output, fisher) == ("gaussian", "exact") else error > 0.01


def test_the_diagonal_fisher_is_the_diagonal_of_the_full_one_for_the_same_labels():
    module, params, x = _model(TwoLayer(), batch=9)
    options = dict(output="categorical", fisher="sampled", num_samples=2)
    key = jax.random.PRNGKey(3)
    full = cv.full_fisher(module, params, (x,), key, **options)
    diag = cv.diagonal_fisher(module, params, (x,), key, chunk=4, **options)  # chunking changes nothing
    np.testing.assert_allclose(ravel_pytree(diag.diagonal)[0], np.diag(full.matrix), rtol=1e-5, atol=1e-8)
    assert full.seconds > 0 and diag.seconds > 0


def test_the_exact_fisher_is_the_gauss_newton_matrix_and_sampling_converges_to_it():
    module, params, x = _model(TwoLayer(), batch=5)
    jac = _jacobians(module, params, x)
    p = jax.nn.softmax(module.apply(params, x))
    # categorical: mean_n J_n^T (diag p_n - p_n p_n^T) J_n
    expected = jnp.einsum("ncp,ncd,ndq->pq", jac, jax.vmap(jnp.diag)(p) - p[:, :, None] * p[:, None, :], jac) / 5
    exact = cv.full_fisher(module, params, (x,), jax.random.PRNGKey(0), output="categorical", fisher="exact")
    np.testing.assert_allclose(exact.matrix, expected, atol=1e-6)
    sampled = cv.full_fisher(module, params, (x,), jax.random.PRNGKey(0), output="categorical",
                             num_samples=4000)
    assert cv.relative_error(sampled, exact, params) < 0.1
    # gaussian (unit variance): mean_n J_n^T J_n
    gauss = cv.full_fisher(module, params, (x,), jax.random.PRNGKey(0), output="gaussian", fisher="exact")
    np.testing.assert_allclose(gauss.matrix, jnp.einsum("ncp,ncq->pq", jac, jac) / 5, atol=1e-6)


def test_the_empirical_fisher_uses_the_given_labels():
    module, params, x = _model(TwoLayer(), batch=4)
    labels = jnp.array([0, 2, 1, 2])
    flat, unravel = ravel_pytree(params)

    def log_likelihood(w, xi, yi):
        return jax.nn.log_softmax(module.apply(unravel(w), xi[None])[0])[yi]

    g = jax.vmap(jax.grad(log_likelihood), in_axes=(None, 0, 0))(flat, x, labels)
    got = cv.full_fisher(module, params, (x,), jax.random.PRNGKey(0), output="categorical", fisher="empirical",
                         labels=labels)
    np.testing.assert_allclose(got.matrix, g.T @ g / 4, atol=1e-6)


@pytest.mark.parametrize("output", ["categorical", "gaussian"])
def test_the_hessian_of_a_linear_model_is_its_exact_fisher(output):
    # A model linear in its parameters has no second term in its Hessian: H = J^T (d2 loss / d out2) J,
    # the Gauss-Newton matrix, which is the exact Fisher of both outputs.
    module, params, x = _model(nn.Dense(3), batch=6)
    labels = jnp.array([0, 1, 2, 0, 1, 1]) if output == "categorical" else jax.random.normal(
        jax.random.PRNGKey(2), (6, 3))
    h = cv.hessian(module, params, (x,), labels, output=output)
    f = cv.full_fisher(module, params, (x,), jax.random.PRNGKey(0), output=output, fisher="exact")
    np.testing.assert_allclose(h.matrix, f.matrix, atol=1e-5)


def test_the_rl_networks_critic_and_actor_get_kfac_blocks_and_a_diagonal_elsewhere():
    from rwrl.agents.networks import DeterministicPolicy, DistributionalCritic
    obs = jax.random.normal(jax.random.PRNGKey(0), (6, 3))
    action = jnp.tanh(jax.random.normal(jax.random.PRNGKey(1), (6, 2)))
    critic = DistributionalCritic((8, 8), num_atoms=5)
    params = critic.init(jax.random.PRNGKey(2), obs, action)
    key, options = jax.random.PRNGKey(3), dict(output="categorical", num_samples=2)
    factored = cv.kfac(critic, params, (obs, action), key, **options)
    diag = cv.diagonal_fisher(critic, params, (obs, action), key, **options)
    assert [f.path for f in factored.factors] == [("LayerNormMLP_0", "Dense_0"), ("LayerNormMLP_0", "Dense_1"),
                                                  ("Dense_0",)]
    assert [f.a.shape for f in factored.factors] == [(6, 6), (9, 9), (9, 9)]  # inputs + 1 for the bias
    # the LayerNorm's scale and bias keep EWC's diagonal; the Dense leaves are covered by their blocks
    norm = params["params"]["LayerNormMLP_0"]["LayerNorm_0"]
    for leaf in norm:
        np.testing.assert_allclose(factored.diagonal["params"]["LayerNormMLP_0"]["LayerNorm_0"][leaf],
                                   diag.diagonal["params"]["LayerNormMLP_0"]["LayerNorm_0"][leaf], rtol=1e-6)
    assert float(jnp.abs(factored.diagonal["params"]["Dense_0"]["kernel"]).max()) == 0.0
    # the actor: a mean action (tanh-squashed), unit-variance Gaussian; one block per Dense
    actor = DeterministicPolicy(2, (8,))
    actor_params = actor.init(jax.random.PRNGKey(4), obs)
    gauss = cv.kfac(actor, actor_params, (obs,), key, output="gaussian", fisher="exact")
    assert len(gauss.factors) == 2 and all(np.all(np.isfinite(f.g)) for f in gauss.factors)


# ---------------------------------------------------------------------------------------------
# bad input: one line naming the field and what is allowed

MODULE, MODEL_PARAMS, X = _model(nn.Dense(2), batch=2)
KEY = jax.random.PRNGKey(0)


@pytest.mark.parametrize("call, message", [
    (lambda: cv.diagonal_fisher(MODULE, MODEL_PARAMS, (X,), KEY, output="poisson"),
     "output = 'poisson' is not allowed: give one of 'categorical', 'gaussian'"),
    (lambda: cv.kfac(MODULE, MODEL_PARAMS, (X,), KEY, output="categorical", fisher="true"),
     "fisher = 'true' is not allowed: give one of 'sampled', 'exact', 'empirical'"),
    (lambda: cv.full_fisher(MODULE, MODEL_PARAMS, (X,), KEY, output="categorical", num_samples=0),
     "num_samples = 0 is not allowed: give an integer >= 1"),
    (lambda: cv.full_fisher(MODULE, MODEL_PARAMS, (X,), KEY, output="categorical", limit=5),
     "full: the model has 8 parameters, above limit = 5"),
    (lambda: cv.diagonal_fisher(MODULE, MODEL_PARAMS, (X,), KEY, output="categorical", fisher="empirical"),
     "labels = None is not allowed with fisher = 'empirical'"),
    (lambda: cv.diagonal_fisher(MODULE, MODEL_PARAMS, X, KEY, output="categorical"),
     "inputs = ArrayImpl is not allowed: give a non-empty tuple"),
    (lambda: cv.kfac(Twice(), Twice().init(KEY, X[:, :3]), (X[:, :3],), KEY, output="categorical"),
     "the Dense at 'Dense_0' is called 2 times"),
    (lambda: cv.quadratic_penalty(ANCHOR, HAND[0][0], weight=-1.0),
     "weight = -1.0 is not allowed: give a finite number >= 0"),
    (lambda: cv.quadratic_penalty(ANCHOR, HAND[0][0], weight=float("nan")),
     "weight = nan is not allowed: give a finite number >= 0"),
    (lambda: cv.estimate("hessian", MODULE, MODEL_PARAMS, (X,), KEY, output="categorical"),
     "form = 'hessian' is not allowed: give one of 'identity', 'diagonal', 'kfac', 'full'"),
])
def test_bad_input_is_one_line(call, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")) as error:
        call()
    assert "\n" not in str(error.value)
