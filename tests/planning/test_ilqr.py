"""iLQR (rwrl.planning.ilqr) against the finite-horizon Riccati solution and a direct QP solve.

References are float64 numpy; iLQR runs in float32, so comparisons allow about 1e-4 relative.
"""

import jax.numpy as jnp
import numpy as np
import pytest

from rwrl.planning.ilqr import (ILQRConfig, QuadraticCost, RecedingHorizon, RecedingHorizonConfig, draw_plans, ilqr,
                                jacobians, rollout, trajectory_cost)

RTOL, ATOL = 1e-4, 1e-4
EXACT = ILQRConfig(iterations=1, mu_init=0.0)   # one Newton step, no regularisation: LQ problems solved exactly


@pytest.fixture
def lq():
    """A 3-state, 2-action linear system with a non-symmetric A, horizon 6, and a PD cost."""
    rng = np.random.default_rng(0)
    A = np.eye(3) + 0.3 * rng.normal(size=(3, 3))
    B = rng.normal(size=(3, 2))
    Q, R, Qf = np.diag([1.0, 2.0, 0.5]), np.array([[1.0, 0.2], [0.2, 0.5]]), np.diag([3.0, 1.0, 2.0])
    return A, B, Q, R, Qf, rng.normal(size=3), rng.normal(size=(6, 2))


def riccati(A, B, Q, R, Qf, T):
    """Return the gains K_t (T, m, n) and P_0 of J = sum z'Qz + u'Ru + z_T'Qf z_T, z' = Az + Bu (float64)."""
    P, gains = Qf, []
    for _ in range(T):
        K = -np.linalg.solve(R + B.T @ P @ B, B.T @ P @ A)
        P = Q + A.T @ P @ A + A.T @ P @ B @ K
        gains.append(K)
    return np.array(gains[::-1]), P


def linear(params, z, u):
    A, B, c = params
    return A @ z + B @ u + c


def as_f32(*arrays):
    return tuple(jnp.asarray(a, jnp.float32) for a in arrays)


def test_one_iteration_returns_the_riccati_gains_actions_and_cost(lq):
    A, B, Q, R, Qf, z0, u_init = lq
    K_ref, P0 = riccati(A, B, Q, R, Qf, T=6)
    cost = QuadraticCost(*as_f32(Q, R, Qf))
    out = ilqr(linear, as_f32(A, B, np.zeros(3)), *as_f32(z0, u_init, np.zeros(3)), cost, EXACT)
    np.testing.assert_allclose(out.K, K_ref, rtol=RTOL, atol=ATOL)
    # the optimal closed loop: u_t = K_t z_t along its own trajectory
    z = z0
    for t in range(6):
        np.testing.assert_allclose(out.u[t], K_ref[t] @ z, rtol=RTOL, atol=ATOL)
        z = A @ z + B @ (K_ref[t] @ z)
    np.testing.assert_allclose(out.cost, z0 @ P0 @ z0, rtol=RTOL)
    assert int(out.accepted) == 1


def direct_qp(A, B, c, Q, R, Qf, z0, g, T):
    """Minimise J over the stacked actions: z_t = Phi_t z0 + sum_s G_ts u_s + d_t is affine in u (float64)."""
    n, m = B.shape
    H, h, const_z = np.zeros((T * m, T * m)), np.zeros(T * m), []
    z_lin = np.zeros((T + 1, n, T * m))   # dz_t / du
    z_off = np.zeros((T + 1, n))
    z_off[0] = z0
    for t in range(T):
        z_off[t + 1] = A @ z_off[t] + c
        z_lin[t + 1] = A @ z_lin[t]
        z_lin[t + 1][:, t * m:(t + 1) * m] += B
    for t in range(T + 1):
        W = Qf if t == T else Q
        H += z_lin[t].T @ W @ z_lin[t]
        h += z_lin[t].T @ W @ (z_off[t] - g)
    H += np.kron(np.eye(T), R)
    return np.linalg.solve(H, -h).reshape(T, m)


def test_one_iteration_solves_an_affine_tracking_problem_exactly(lq):
    A, B, Q, R, Qf, z0, u_init = lq
    c, g = np.array([0.1, -0.2, 0.05]), np.array([1.0, -1.0, 0.5])
    u_ref = direct_qp(A, B, c, Q, R, Qf, z0, g, T=6)
    out = ilqr(linear, as_f32(A, B, c), *as_f32(z0, u_init, g), QuadraticCost(*as_f32(Q, R, Qf)), EXACT)
    np.testing.assert_allclose(out.u, u_ref, rtol=RTOL, atol=ATOL)


def test_default_regularisation_lands_within_1e3_of_the_optimum(lq):
    A, B, Q, R, Qf, z0, u_init = lq
    u_ref = direct_qp(A, B, np.zeros(3), Q, R, Qf, z0, np.zeros(3), T=6)
    out = ilqr(linear, as_f32(A, B, np.zeros(3)), *as_f32(z0, u_init, np.zeros(3)), QuadraticCost(*as_f32(Q, R, Qf)))
    np.testing.assert_allclose(out.u, u_ref, atol=1e-3)


def test_a_given_linearisation_gives_what_autodiff_gives(lq):
    A, B, Q, R, Qf, z0, u_init = lq
    params, cost = as_f32(A, B, np.zeros(3)), QuadraticCost(*as_f32(Q, R, Qf))
    given = ilqr(linear, params, *as_f32(z0, u_init, np.zeros(3)), cost, EXACT, linearize=lambda p, z, u: (p[0], p[1]))
    auto = ilqr(linear, params, *as_f32(z0, u_init, np.zeros(3)), cost, EXACT)
    np.testing.assert_allclose(given.u, auto.u, rtol=1e-6, atol=1e-6)
    A_auto, B_auto = jacobians(linear)(params, *as_f32(z0, u_init[0]))
    np.testing.assert_allclose(A_auto, A, rtol=1e-6)
    np.testing.assert_allclose(B_auto, B, rtol=1e-6)


def pendulum_like(params, z, u):
    """A nonlinear 2-state system: angle and velocity, a sine in the acceleration."""
    return jnp.array([z[0] + 0.1 * z[1], z[1] + 0.1 * (jnp.sin(z[0]) + u[0])])


def test_on_a_nonlinear_system_every_iteration_keeps_or_lowers_the_cost():
    cost = QuadraticCost.isotropic(q=1.0, r=0.1, n=2, m=1)
    z0, goal = jnp.array([2.5, 0.0]), jnp.zeros(2)
    u_init = jnp.asarray(np.random.default_rng(1).uniform(-1, 1, (15, 1)), jnp.float32)
    before = float(trajectory_cost(rollout(pendulum_like, None, z0, u_init), u_init, goal, cost))
    costs = [float(ilqr(pendulum_like, None, z0, u_init, goal, cost, ILQRConfig(iterations=i)).cost) for i in (1, 2, 4)]
    assert before >= costs[0] >= costs[1] >= costs[2]
    assert costs[2] < 0.8 * before
    # the reported cost is the cost of the reported plan
    out = ilqr(pendulum_like, None, z0, u_init, goal, cost)
    np.testing.assert_allclose(out.cost, trajectory_cost(rollout(pendulum_like, None, z0, out.u), out.u, goal, cost),
                               rtol=1e-5)


def test_an_optimal_plan_stays_and_a_plan_that_cannot_improve_is_not_accepted(lq):
    A, B, Q, R, Qf, z0, _ = lq
    params, cost = as_f32(A, B, np.zeros(3)), QuadraticCost(*as_f32(Q, R, Qf))
    u_opt = jnp.asarray(direct_qp(A, B, np.zeros(3), Q, R, Qf, z0, np.zeros(3), 6), jnp.float32)
    out = ilqr(linear, params, jnp.asarray(z0, jnp.float32), u_opt, jnp.zeros(3), cost)
    np.testing.assert_allclose(out.u, u_opt, atol=1e-6)   # float32 rounding may still gain a little
    # at rest on the goal with no action J = 0 exactly: no step can lower it
    rest = ilqr(integrator, None, jnp.zeros(2), jnp.zeros((4, 2)), jnp.zeros(2), QuadraticCost.isotropic(1, 1, 2, 2))
    np.testing.assert_array_equal(rest.u, np.zeros((4, 2)))
    assert int(rest.accepted) == 0


def test_line_search_tries_alpha_from_one_halving_down_to_1e4():
    alphas = ILQRConfig().alphas()
    assert alphas[0] == 1.0 and len(alphas) == 14 and alphas[-1] == 2.0 ** -13
    assert all(b == a / 2 for a, b in zip(alphas, alphas[1:]))


@pytest.mark.parametrize("field, value, match", [
    ("iterations", 0, "iterations = 0"), ("mu_init", -1.0, "mu_init = -1.0"), ("mu_mult", 1.0, "mu_mult = 1.0"),
    ("alpha_mult", 1.5, "alpha_mult = 1.5"), ("alpha_min", 2.0, "alpha_init = 1.0, alpha_min = 2.0")])
def test_bad_ilqr_settings_are_refused_by_name(field, value, match):
    with pytest.raises(ValueError, match=match):
        ILQRConfig(**{field: value})


def test_plans_are_three_uniform_then_three_extreme_in_the_box():
    low, high = np.array([-3.0, -1.0]), np.array([3.0, 1.0])
    plans = draw_plans(np.random.default_rng(0), 3, 3, 10, low, high)
    assert plans.shape == (6, 10, 2) and plans.dtype == np.float32
    assert np.all((plans[:3] >= low) & (plans[:3] <= high)) and not np.all(np.isin(plans[:3], [-3, -1, 1, 3]))
    assert np.all((plans[3:] == low) | (plans[3:] == high))
    np.testing.assert_array_equal(plans, draw_plans(np.random.default_rng(0), 3, 3, 10, low, high))


def integrator(params, z, u):
    return z + u


def test_receding_horizon_acts_with_the_best_plan_and_warm_starts_it():
    controller = RecedingHorizon(integrator, QuadraticCost.isotropic(1.0, 0.01, 2, 2), -np.ones(2), np.ones(2),
                                 RecedingHorizonConfig(plan_len=5))
    controller.reset(seed=3)
    z, goal = np.zeros(2), np.array([2.5, -1.5])
    result = controller.plan(None, z, goal)
    best = int(np.argmin(result.cost))
    u = controller.act(None, z, goal)
    np.testing.assert_array_equal(u, result.u[best, 0])
    np.testing.assert_array_equal(controller._plans[best], np.concatenate([result.u[best, 1:], result.u[best, -1:]]))


def test_receding_horizon_drives_an_integrator_to_its_goal():
    controller = RecedingHorizon(integrator, QuadraticCost.isotropic(10.0, 1.0, 2, 2), -np.ones(2), np.ones(2))
    controller.reset(seed=0)
    z, goal = np.zeros(2), np.array([4.0, -3.0])
    for _ in range(15):
        z = z + np.clip(controller.act(None, z, goal), -1, 1)   # the environment clips, as PCC's tasks
    np.testing.assert_allclose(z, goal, atol=0.1)


def test_the_controller_refuses_a_bad_action_box():
    with pytest.raises(ValueError, match="need low < high"):
        RecedingHorizon(integrator, QuadraticCost.isotropic(1.0, 1.0, 2, 2), np.ones(2), -np.ones(2))
