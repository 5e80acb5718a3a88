"""Plan with iLQR for ``z' = f(z, u)`` under a quadratic cost, and replan every step (receding horizon).

iLQR (iterative linear-quadratic regulator): Li and Todorov 2004, "Iterative linear quadratic
regulator design for nonlinear biological movement systems"; the backward pass with its
regularised gains and the value update as in Tassa, Erez and Todorov 2012, "Synthesis and
stabilization of complex behaviors through online trajectory optimization", eqs. 5 and 11.
The settings are those of the PCC experiments as the unofficial PCC-pytorch code has them
(VinAIResearch/PCC-pytorch@1127f83, ``ilqr.py``, ``ilqr_utils.py``, ``ilqr_config/*.json``;
PAPERS.md section 4, [C]); the PCC paper's own iLQR settings were not found.

The problem (shapes: z is (n,), u is (m,), a plan of T actions is (T, m), its trajectory (T+1, n))::

    minimise over u_0..u_{T-1}
        J = sum_{t<T} [(z_t - g)^T Q (z_t - g) + u_t^T R u_t] + (z_T - g)^T Q_T (z_T - g)
    subject to z_{t+1} = f(z_t, u_t), z_0 given.

Every choice, and where it came from:

* Cost: as the code's ``latent_cost``: no factor 1/2 (the derivatives are 2 Q (z - g) and
  2 R u), the state term counted at z_0 .. z_{T-1} and the terminal term at z_T. The code uses
  Q for the terminal term too (``Q_T = Q``, the default here); ``QuadraticCost`` takes any.
* Linearisation: ``A_t = df/dz``, ``B_t = df/du`` at the nominal (z_t, u_t), by ``jax.jacfwd``
  (forward mode: n and m are small), or a given ``linearize(params, z, u) -> (A, B)`` (PCC's
  amortised dynamics give their A, B heads).
* Backward pass: ``V_z = 2 Q_T (z_T - g)``, ``V_zz = 2 Q_T``; for t = T-1 .. 0::

      Q_z  = 2 Q (z_t - g) + A^T V_z        Q_u  = 2 R u_t + B^T V_z
      Q_zz = 2 Q + A^T V_zz A               Q_uu = 2 R + B^T V_zz B       Q_uz = B^T V_zz A
      k = -(Q_uu + mu I)^{-1} Q_u           K = -(Q_uu + mu I)^{-1} Q_uz
      V_z  = Q_z + K^T Q_uu k + K^T Q_u + Q_uz^T k
      V_zz = Q_zz + K^T Q_uu K + K^T Q_uz + Q_uz^T K    (then symmetrised)

  Regularisation ``mu I`` on Q_uu, as the code (``pinv_init`` 1e-5, x2 on a rejected
  iteration, back to 1e-5 on an accepted one, stop when above 10). The value update is
  Tassa's eq. 11, which stays right when mu > 0; the code's shorter ``V_z = Q_z + Q_uz^T k``,
  ``V_zz = Q_zz + Q_uz^T K`` equals it at mu = 0 only (a departure, on purpose).
* Forward pass: ``u_t = ubar_t + alpha k_t + K_t (z_t - zbar_t)``, ``z_{t+1} = f(z_t, u_t)``
  through the nonlinear f (as the code, whose comment says otherwise); line search from
  ``alpha = 1``, halving, over every alpha > 1e-4 (1, 1/2, ..., 2^-13: 14 tries, the code's
  ``while alpha > alpha_min``); the first alpha whose cost is strictly lower is accepted, in
  order (a ``lax.while_loop``, so untried alphas cost nothing).
* Iterations: a fixed number (4, the code's ``ilqr_iters``), each linearising at the current
  plan; after the regularisation passes ``mu_max`` the plan is left as it is. Unconstrained
  actions, as the code: the environment clips what it executes.
* Receding horizon (``RecedingHorizon``): every step, iLQR from the current latent on each of
  several plans (3 drawn uniformly in the action box, 3 "extreme": each component at a bound
  chosen at random), all in one ``vmap``; the plan with the lowest cost gives the action
  (its first). The next step's plans: that plan shifted by one with its last action repeated
  (the warm start), the others drawn afresh. Two departures from the code: (1) the best plan
  is the lowest cost after iLQR, also when no iteration improved it (the code gives a plan with
  no accepted iteration cost inf, and takes plan 0 when none was accepted); (2) the plan length
  stays ``plan_len`` to the end of the episode (the code shortens it to the steps left, which
  would recompile for each length).

Example (a scalar integrator, z' = z + u, driven from 0 toward 1)::

    >>> import jax.numpy as jnp
    >>> cost = QuadraticCost.isotropic(q=1.0, r=0.1, n=1, m=1)
    >>> f = lambda params, z, u: z + u
    >>> out = ilqr(f, None, jnp.zeros(1), jnp.zeros((3, 1)), jnp.ones(1), cost, ILQRConfig(iterations=1))
    >>> [round(float(v), 2) for v in out.z[:, 0]]   # one step most of the way, then the rest
    [0.0, 0.92, 0.99, 1.0]
    >>> round(float(out.cost), 3)   # J of the plan of zeros was 4 (z stays 0: four state terms)
    1.092
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from rwrl.core.checks import count

#: a dynamics function ``f(params, z, u) -> z'`` (pure, traceable by JAX).
Dynamics = Callable[[Any, jax.Array, jax.Array], jax.Array]
#: a linearisation ``linearize(params, z, u) -> (A (n, n), B (n, m))``.
Linearize = Callable[[Any, jax.Array, jax.Array], tuple[jax.Array, jax.Array]]


@dataclasses.dataclass(frozen=True)
class ILQRConfig:
    """iLQR's iteration, regularisation and line-search settings (defaults: PCC-pytorch's ilqr_config)."""

    #: iLQR iterations per plan (the code's ``ilqr_iters``).
    iterations: int = 4
    #: initial regularisation mu added to Q_uu, and its value after an accepted iteration (``pinv_init``).
    mu_init: float = 1e-5
    #: factor on mu after a rejected iteration (``pinv_mult``).
    mu_mult: float = 2.0
    #: iterations stop once mu exceeds this (``pinv_max``).
    mu_max: float = 10.0
    #: first line-search step (``alpha_init``).
    alpha_init: float = 1.0
    #: factor on the step after a rejected try (``alpha_mult``).
    alpha_mult: float = 0.5
    #: steps at or below this are not tried (``alpha_min``).
    alpha_min: float = 1e-4

    def __post_init__(self):
        count("iterations", self.iterations)
        if not self.mu_init >= 0.0:
            raise ValueError(f"mu_init = {self.mu_init!r} is not allowed: a float >= 0")
        if not self.mu_mult > 1.0:
            raise ValueError(f"mu_mult = {self.mu_mult!r} is not allowed: a float > 1")
        if not 0.0 < self.alpha_mult < 1.0:
            raise ValueError(f"alpha_mult = {self.alpha_mult!r} is not allowed: a float in (0, 1)")
        if not self.alpha_init > self.alpha_min >= 0.0:
            raise ValueError(f"alpha_init = {self.alpha_init!r}, alpha_min = {self.alpha_min!r} are not "
                             "allowed: alpha_init > alpha_min >= 0")

    def alphas(self) -> tuple[float, ...]:
        """Return the line search's steps in the order tried: alpha_init * alpha_mult^i while > alpha_min."""
        out, alpha = [], self.alpha_init
        while alpha > self.alpha_min:
            out.append(alpha)
            alpha *= self.alpha_mult
        return tuple(out)


class QuadraticCost(NamedTuple):
    """The weights of ``J``: Q (n, n) on z - g at t < T, R (m, m) on u, Q_T (n, n) on z_T - g."""

    Q: jax.Array
    R: jax.Array
    Q_final: jax.Array

    @classmethod
    def isotropic(cls, q: float, r: float, n: int, m: int, q_final: float | None = None) -> QuadraticCost:
        """Return ``Q = q I_n``, ``R = r I_m``, ``Q_T = q_final I_n`` (``q_final`` defaults to q, as the code)."""
        q_final = q if q_final is None else q_final
        return cls(q * jnp.eye(n), r * jnp.eye(m), q_final * jnp.eye(n))


class ILQRResult(NamedTuple):
    """A plan and what iLQR knows of it."""

    #: the actions, (T, m).
    u: jax.Array
    #: the trajectory f gives from z_0 under u, (T+1, n).
    z: jax.Array
    #: its cost J, scalar.
    cost: jax.Array
    #: feedforward terms of the last backward pass, (T, m).
    k: jax.Array
    #: feedback gains of the last backward pass, (T, m, n).
    K: jax.Array
    #: how many iterations were accepted (int scalar).
    accepted: jax.Array


def trajectory_cost(z: jax.Array, u: jax.Array, z_goal: jax.Array, cost: QuadraticCost) -> jax.Array:
    """Return J of a trajectory z (T+1, n) under actions u (T, m)."""
    d = z - z_goal
    state = jnp.einsum("ti,ij,tj->", d[:-1], cost.Q, d[:-1])
    action = jnp.einsum("ti,ij,tj->", u, cost.R, u)
    return state + action + d[-1] @ cost.Q_final @ d[-1]


def rollout(f: Dynamics, params: Any, z0: jax.Array, u: jax.Array) -> jax.Array:
    """Return the trajectory (T+1, n) of f from z0 under the actions u (T, m)."""
    def step(z, u_t):
        z_next = f(params, z, u_t)
        return z_next, z_next
    _, zs = jax.lax.scan(step, z0, u)
    return jnp.concatenate([z0[None], zs])


def jacobians(f: Dynamics) -> Linearize:
    """Return ``linearize(params, z, u) -> (df/dz, df/du)`` of f by forward-mode autodiff."""
    return lambda params, z, u: jax.jacfwd(lambda z_, u_: f(params, z_, u_), argnums=(0, 1))(z, u)


def backward_pass(A: jax.Array, B: jax.Array, z: jax.Array, u: jax.Array, z_goal: jax.Array,
                  cost: QuadraticCost, mu: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Return the feedforward terms k (T, m) and gains K (T, m, n) about the nominal (z, u).

    Args:
      A: (T, n, n) and B: (T, n, m), the linearisation at (z_t, u_t).
      z: (T+1, n) nominal trajectory; u: (T, m) nominal actions.
      mu: the regularisation added to Q_uu for the gains.
    """
    m = u.shape[-1]

    def step(carry, inputs):
        v_z, v_zz = carry
        a, b, z_t, u_t = inputs
        q_z = 2.0 * cost.Q @ (z_t - z_goal) + a.T @ v_z
        q_u = 2.0 * cost.R @ u_t + b.T @ v_z
        q_zz = 2.0 * cost.Q + a.T @ v_zz @ a
        q_uu = 2.0 * cost.R + b.T @ v_zz @ b
        q_uz = b.T @ v_zz @ a
        gains = -jnp.linalg.solve(q_uu + mu * jnp.eye(m), jnp.concatenate([q_u[:, None], q_uz], axis=1))
        k, K = gains[:, 0], gains[:, 1:]
        v_z = q_z + K.T @ q_uu @ k + K.T @ q_u + q_uz.T @ k
        v_zz = q_zz + K.T @ q_uu @ K + K.T @ q_uz + q_uz.T @ K
        return (v_z, 0.5 * (v_zz + v_zz.T)), (k, K)

    terminal = (2.0 * cost.Q_final @ (z[-1] - z_goal), 2.0 * cost.Q_final)
    _, (k, K) = jax.lax.scan(step, terminal, (A, B, z[:-1], u), reverse=True)
    return k, K


def forward_pass(f: Dynamics, params: Any, z: jax.Array, u: jax.Array, k: jax.Array, K: jax.Array,
                 alpha: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Return the new trajectory (T+1, n) and actions (T, m) of the step ``alpha`` from the nominal (z, u)."""
    def step(z_new, inputs):
        z_t, u_t, k_t, K_t = inputs
        u_new = u_t + alpha * k_t + K_t @ (z_new - z_t)
        z_next = f(params, z_new, u_new)
        return z_next, (z_next, u_new)
    _, (zs, us) = jax.lax.scan(step, z[0], (z[:-1], u, k, K))
    return jnp.concatenate([z[:1], zs]), us


def line_search(f: Dynamics, params: Any, z: jax.Array, u: jax.Array, k: jax.Array, K: jax.Array,
                z_goal: jax.Array, cost: QuadraticCost, current: jax.Array, alphas: jax.Array):
    """Return (accepted, z, u, J) of the first step in ``alphas`` that lowers J below ``current``."""
    def cond(state):
        i, accepted = state[0], state[1]
        return jnp.logical_and(~accepted, i < alphas.shape[0])

    def body(state):
        i = state[0]
        z_new, u_new = forward_pass(f, params, z, u, k, K, alphas[i])
        j_new = trajectory_cost(z_new, u_new, z_goal, cost)
        return i + 1, j_new < current, z_new, u_new, j_new

    init = (jnp.asarray(0), jnp.asarray(False), z, u, current)
    _, accepted, z_new, u_new, j_new = jax.lax.while_loop(cond, body, init)
    return accepted, z_new, u_new, j_new


def ilqr(f: Dynamics, params: Any, z0: jax.Array, u_init: jax.Array, z_goal: jax.Array, cost: QuadraticCost,
         config: ILQRConfig = ILQRConfig(), linearize: Linearize | None = None) -> ILQRResult:
    """Improve the plan ``u_init`` (T, m) from ``z0`` (n,) toward ``z_goal`` by iLQR; pure and jittable.

    Args:
      f: the dynamics ``f(params, z, u) -> z'``.
      params: passed to f (and to ``linearize``) unchanged: a model's parameters, or None.
      linearize: ``(params, z, u) -> (A, B)``; by default ``jax.jacfwd`` of f.
    """
    linearize = jacobians(f) if linearize is None else linearize
    alphas = jnp.asarray(config.alphas(), dtype=z0.dtype)
    z = rollout(f, params, z0, u_init)
    current = trajectory_cost(z, u_init, z_goal, cost)
    n, m = z0.shape[0], u_init.shape[-1]
    zeros_k = jnp.zeros_like(u_init)
    zeros_K = jnp.zeros((u_init.shape[0], m, n), z0.dtype)

    def iteration(carry, _):
        z, u, current, mu, stopped, k_last, K_last, accepted_count = carry
        A, B = jax.vmap(lambda z_t, u_t: linearize(params, z_t, u_t))(z[:-1], u)
        k, K = backward_pass(A, B, z, u, z_goal, cost, mu)
        accepted, z_new, u_new, j_new = line_search(f, params, z, u, k, K, z_goal, cost, current, alphas)
        accepted = jnp.logical_and(accepted, ~stopped)
        keep = lambda new, old: jnp.where(accepted, new, old)
        k_last = jnp.where(stopped, k_last, k)
        K_last = jnp.where(stopped, K_last, K)
        mu = jnp.where(stopped, mu, jnp.where(accepted, config.mu_init, mu * config.mu_mult))
        stopped = jnp.logical_or(stopped, mu > config.mu_max)
        carry = (keep(z_new, z), keep(u_new, u), keep(j_new, current), mu, stopped, k_last, K_last,
                 accepted_count + accepted.astype(jnp.int32))
        return carry, None

    init = (z, u_init, current, jnp.asarray(config.mu_init, z0.dtype), jnp.asarray(False), zeros_k, zeros_K,
            jnp.asarray(0, jnp.int32))
    (z, u, current, _, _, k, K, accepted), _ = jax.lax.scan(iteration, init, None, length=config.iterations)
    return ILQRResult(u=u, z=z, cost=current, k=k, K=K, accepted=accepted)


# ----------------------------------------------------------------- receding horizon


@dataclasses.dataclass(frozen=True)
class RecedingHorizonConfig:
    """How the receding-horizon controller plans (defaults: PCC-pytorch's planar ilqr_config)."""

    #: actions per plan (the code's ``plan_len``).
    plan_len: int = 10
    #: plans drawn uniformly in the action box (``uniform_trajs``).
    num_uniform: int = 3
    #: plans with each action component at a random bound (``extreme_trajs``).
    num_extreme: int = 3
    #: the iLQR settings of every plan.
    ilqr: ILQRConfig = ILQRConfig()

    def __post_init__(self):
        count("plan_len", self.plan_len)
        count("num_uniform", self.num_uniform, low=0)
        count("num_extreme", self.num_extreme, low=0)
        count("num_uniform + num_extreme", self.num_uniform + self.num_extreme)


def draw_plans(rng: np.random.Generator, count_uniform: int, count_extreme: int, plan_len: int,
               low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Return ``count_uniform`` uniform then ``count_extreme`` extreme plans, (P, plan_len, m) float32."""
    low, high = np.asarray(low, np.float64), np.asarray(high, np.float64)
    uniform = rng.uniform(low, high, size=(count_uniform, plan_len, low.size))
    extreme = np.where(rng.integers(0, 2, size=(count_extreme, plan_len, low.size)) == 1, high, low)
    return np.concatenate([uniform, extreme]).astype(np.float32)


class RecedingHorizon:
    """Replan by iLQR from the current latent every step; act with the best plan's first action.

    One controller serves any parameters of the same dynamics (``act`` takes them), so a
    benchmark compiles the planner once for all its models.

    Args:
      f: the dynamics ``f(params, z, u) -> z'``.
      cost: the quadratic cost (its Q, R, Q_T).
      action_low, action_high: (m,) the box the initial plans are drawn in.
      config: plan length, how many plans, iLQR settings.
      linearize: ``(params, z, u) -> (A, B)``; by default ``jax.jacfwd`` of f.
    """

    def __init__(self, f: Dynamics, cost: QuadraticCost, action_low: np.ndarray, action_high: np.ndarray,
                 config: RecedingHorizonConfig = RecedingHorizonConfig(), linearize: Linearize | None = None):
        self.config = config
        self.cost = cost
        self.low = np.asarray(action_low, np.float32).reshape(-1)
        self.high = np.asarray(action_high, np.float32).reshape(-1)
        if self.low.shape != self.high.shape or not np.all(self.low < self.high):
            raise ValueError(f"action_low = {action_low!r}, action_high = {action_high!r}: need low < high, "
                             "both of shape (m,)")
        solve = lambda params, z0, u, z_goal, cost: ilqr(f, params, z0, u, z_goal, cost, config.ilqr, linearize)
        self._solve = jax.jit(jax.vmap(solve, in_axes=(None, None, 0, None, None)))
        self._rng: np.random.Generator | None = None
        self._plans: np.ndarray | None = None

    def reset(self, seed: int) -> None:
        """Start an episode: seed the plan draws and draw the first plans."""
        c = self.config
        self._rng = np.random.default_rng(seed)
        self._plans = draw_plans(self._rng, c.num_uniform, c.num_extreme, c.plan_len, self.low, self.high)

    def plan(self, params: Any, z: np.ndarray, z_goal: np.ndarray) -> ILQRResult:
        """Return iLQR's result for every current plan (leading axis: plans), without advancing."""
        if self._plans is None:
            raise RuntimeError("call reset(seed) before planning")
        return self._solve(params, jnp.asarray(z, jnp.float32), jnp.asarray(self._plans),
                           jnp.asarray(z_goal, jnp.float32), self.cost)

    def act(self, params: Any, z: np.ndarray, z_goal: np.ndarray) -> np.ndarray:
        """Return the action (m,) for the latent ``z`` (n,), and prepare the next step's plans."""
        result = self.plan(params, z, z_goal)
        best = int(np.argmin(np.asarray(result.cost)))
        u = np.asarray(result.u)
        c = self.config
        plans = draw_plans(self._rng, c.num_uniform, c.num_extreme, c.plan_len, self.low, self.high)
        plans[best] = np.concatenate([u[best, 1:], u[best, -1:]])
        self._plans = plans
        return u[best, 0].copy()


__all__ = ["ILQRConfig", "QuadraticCost", "ILQRResult", "trajectory_cost", "rollout", "jacobians", "backward_pass",
           "forward_pass", "line_search", "ilqr", "RecedingHorizonConfig", "draw_plans", "RecedingHorizon"]
