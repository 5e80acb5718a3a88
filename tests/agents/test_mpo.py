"""The MPO pieces of rwrl.agents.dmpo: Gaussian helpers, E-step dual, M-step KL bounds."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from rwrl.agents import dmpo

# softplus(LOG_ONE) = 1: the dual variable that means a multiplier of 1.
LOG_ONE = float(np.log(np.e - 1.0))


def test_gaussian_log_prob_and_kl_hand_values():
    # log N(0; 0, 1) = -log(2 pi) / 2 = -0.918939; two such dimensions sum.
    assert float(dmpo.gaussian_log_prob(jnp.zeros(2), jnp.zeros(2), jnp.ones(2))) == pytest.approx(-1.837877, rel=1e-6)
    # KL(N(0, 1) || N(1, 1)) = (mean difference)**2 / 2 = 0.5.
    assert float(dmpo.gaussian_kl(0.0, 1.0, 1.0, 1.0)) == pytest.approx(0.5)
    # KL(N(0, 1) || N(0, 2**2)) = log 2 + 1 / (2 * 4) - 1/2 = 0.318147.
    assert float(dmpo.gaussian_kl(0.0, 1.0, 0.0, 2.0)) == pytest.approx(0.318147, rel=1e-5)


def test_e_step_hand_case():
    # Q = (0, log 3) at temperature 1: weights exp(Q) / sum = (1/4, 3/4); the
    # dual is eta * eps + eta * log mean exp(Q / eta) = 0.1 + log((1 + 3) / 2).
    weights, dual = dmpo.e_step(jnp.array([0.0, np.log(3.0)], jnp.float32), jnp.float32(LOG_ONE), 0.1)
    np.testing.assert_allclose(weights, [0.25, 0.75], rtol=1e-5)
    assert float(dual) == pytest.approx(0.1 + np.log(2.0), rel=1e-5)


def optimal_temperature(q: np.ndarray, epsilon: float) -> float:
    """Solve the E-step dual in closed form, by bisection on its stationarity condition.

    g(eta) = eta * eps + eta * mean_b log mean_s exp(q_bs / eta) has derivative
    g'(eta) = eps - mean_b KL(softmax(q_b / eta) || uniform), and the KL falls
    monotonically from log S (eta -> 0) to 0 (eta -> inf), so the minimiser
    is the eta at which the mean KL equals eps.
    """
    def mean_kl(eta):
        z = q / eta
        w = np.exp(z - z.max(axis=1, keepdims=True))
        w /= w.sum(axis=1, keepdims=True)
        return np.mean(np.sum(w * np.log(q.shape[1] * w + 1e-300), axis=1))

    lo, hi = 1e-3, 1e3
    for _ in range(200):
        mid = np.sqrt(lo * hi)
        lo, hi = (mid, hi) if mean_kl(mid) > epsilon else (lo, mid)
    return float(np.sqrt(lo * hi))


def batch_dual(log_temperature, q, epsilon):
    return jnp.mean(jax.vmap(lambda q_b: dmpo.e_step(q_b, log_temperature, epsilon)[1])(q))


def test_temperature_dual_minimum_matches_closed_form_and_grid_search():
    epsilon = 0.1
    q = np.random.default_rng(0).normal(0.0, 3.0, (4, 20)).astype(np.float32)
    eta_star = optimal_temperature(q.astype(np.float64), epsilon)

    # Grid search over eta (through the inverse softplus) finds the same minimum.
    etas = np.exp(np.linspace(np.log(eta_star / 4), np.log(eta_star * 4), 401))
    log_etas = jnp.asarray(np.log(np.expm1(etas)), jnp.float32)
    duals = jax.vmap(batch_dual, in_axes=(0, None, None))(log_etas, jnp.asarray(q), epsilon)
    assert etas[int(jnp.argmin(duals))] == pytest.approx(eta_star, rel=0.01)

    # Adam on the dual, from the default initial value, converges to it too,
    # and at the optimum the weights' KL to the target policy meets the bound.
    log_temperature = jnp.float32(1.0)
    optimiser = optax.adam(0.05)
    opt_state = optimiser.init(log_temperature)
    grad_fn = jax.jit(jax.grad(batch_dual), static_argnums=2)
    for _ in range(1000):
        updates, opt_state = optimiser.update(grad_fn(log_temperature, jnp.asarray(q), epsilon), opt_state)
        log_temperature = optax.apply_updates(log_temperature, updates)
    assert float(dmpo.positive(log_temperature)) == pytest.approx(eta_star, rel=0.02)
    weights = jax.vmap(lambda q_b: dmpo.e_step(q_b, log_temperature, epsilon)[0])(jnp.asarray(q))
    kl = jnp.mean(jnp.sum(weights * jnp.log(20 * weights), axis=1))
    assert float(kl) == pytest.approx(epsilon, rel=0.05)


B, S, A = 16, 32, 2
EPS_MEAN, EPS_STDDEV = 1e-2, 1e-3


def m_step_toy(learn_alphas: bool, steps: int = 1000):
    """Optimise a state-independent Gaussian (mean, stddev) with the MPO loss.

    The target policy is N(0, 0.5**2) per dimension; Q = 10 (a_0 - a_1)
    rewards moving the mean to +inf in dimension 0 and -inf in dimension 1,
    so the weighted likelihood alone moves the mean far from the target, and
    only the KL constraints hold it back. Returns the per-dimension KLs of
    the mean and stddev parts over the last 200 steps, (200, A) each.
    """
    config = dmpo.DMPOConfig(epsilon=0.1, epsilon_mean=EPS_MEAN, epsilon_stddev=EPS_STDDEV,
                             action_penalization=False)
    target_mean, target_stddev = jnp.zeros((B, A)), jnp.full((B, A), 0.5)
    actions = target_mean[:, None] + target_stddev[:, None] * jax.random.normal(jax.random.PRNGKey(0), (B, S, A))
    q = 10.0 * (actions[..., 0] - actions[..., 1])
    per_state = jax.vmap(functools.partial(dmpo.mpo_policy_loss, config=config), in_axes=(0, 0, 0, 0, 0, 0, None))

    def loss(params, duals):
        mean = jnp.broadcast_to(params["mean"], (B, A))
        stddev = jnp.broadcast_to(0.5 * jax.nn.softplus(params["raw_stddev"]) / jax.nn.softplus(0.0), (B, A))
        kls = (dmpo.gaussian_kl(target_mean, target_stddev, mean, target_stddev)[0],
               dmpo.gaussian_kl(target_mean, target_stddev, target_mean, stddev)[0])
        return jnp.mean(per_state(mean, stddev, target_mean, target_stddev, actions, q, duals)[0]), kls

    log_alpha = 1.0 if learn_alphas else -18.0  # -18: multipliers of ~1e-8, no constraint
    duals = dmpo.DualParams(jnp.float32(1.0), jnp.full(A, log_alpha), jnp.full(A, log_alpha), jnp.float32(1.0))
    params = {"mean": jnp.zeros(A), "raw_stddev": jnp.zeros(A)}
    policy_opt, dual_opt = optax.adam(1e-2), optax.adam(5e-2)

    @jax.jit
    def step(params, duals, policy_state, dual_state):
        (_, kls), (policy_grads, dual_grads) = jax.value_and_grad(loss, (0, 1), has_aux=True)(params, duals)
        if not learn_alphas:
            dual_grads = dual_grads._replace(log_alpha_mean=jnp.zeros(A), log_alpha_stddev=jnp.zeros(A))
        updates, policy_state = policy_opt.update(policy_grads, policy_state)
        params = optax.apply_updates(params, updates)
        updates, dual_state = dual_opt.update(dual_grads, dual_state)
        duals = jax.tree.map(lambda x: jnp.maximum(x, -18.0), optax.apply_updates(duals, updates))
        return params, duals, policy_state, dual_state, kls

    policy_state, dual_state, history = policy_opt.init(params), dual_opt.init(duals), []
    for _ in range(steps):
        params, duals, policy_state, dual_state, kls = step(params, duals, policy_state, dual_state)
        history.append(np.asarray(kls))
    return np.array(history[-200:])[:, 0], np.array(history[-200:])[:, 1]


def test_m_step_kl_bounds_hold_after_optimisation():
    kl_mean, kl_stddev = m_step_toy(learn_alphas=True)
    # The mean constraint is active (the likelihood pulls hard) and met: the
    # KL sits at its bound, within the small oscillation of coordinate ascent.
    assert np.all(kl_mean <= 1.05 * EPS_MEAN), kl_mean.max(axis=0)
    assert np.all(kl_mean >= 0.8 * EPS_MEAN), kl_mean.min(axis=0)
    assert np.all(kl_stddev <= 1.05 * EPS_STDDEV), kl_stddev.max(axis=0)
    # The same optimisation without the multipliers moves far beyond the bound,
    # so the bound above is the constraint's doing.
    free_kl_mean, _ = m_step_toy(learn_alphas=False)
    assert np.all(free_kl_mean[-1] > 4 * EPS_MEAN), free_kl_mean[-1]


def test_policy_loss_vmap_equals_loop():
    config = dmpo.DMPOConfig()
    rng = np.random.default_rng(0)
    args = [jnp.asarray(x, jnp.float32) for x in (
        rng.normal(size=(5, A)), rng.uniform(0.2, 1.0, (5, A)), rng.normal(size=(5, A)),
        rng.uniform(0.2, 1.0, (5, A)), rng.normal(0, 1.5, (5, S, A)), rng.normal(size=(5, S)))]
    duals = dmpo.DualParams(jnp.float32(0.3), jnp.array([0.1, 2.0]), jnp.array([5.0, 3.0]), jnp.float32(-1.0))
    loss_fn = functools.partial(dmpo.mpo_policy_loss, config=config)
    batched, _ = jax.vmap(loss_fn, in_axes=(0, 0, 0, 0, 0, 0, None))(*args, duals)
    single = jax.jit(loss_fn)
    looped = [single(*(x[i] for x in args), duals)[0] for i in range(5)]
    np.testing.assert_allclose(batched, looped, rtol=1e-5)


def test_the_tanh_mean_option_bounds_the_policy_mean_and_leaves_the_stddev():
    from rwrl.agents.networks import GaussianPolicy
    obs = 100.0 * jax.random.normal(jax.random.PRNGKey(1), (64, 7))  # large inputs, large means
    plain = GaussianPolicy(2, (16,))
    params = plain.init(jax.random.PRNGKey(0), obs)
    mean, stddev = plain.apply(params, obs)
    bounded_mean, bounded_stddev = GaussianPolicy(2, (16,), tanh_mean=True).apply(params, obs)
    np.testing.assert_allclose(bounded_mean, np.tanh(mean), rtol=1e-6)
    assert np.abs(bounded_mean).max() < 1.0
    np.testing.assert_array_equal(bounded_stddev, stddev)
