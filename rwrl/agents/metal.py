"""MetaL: RC-D4PG whose multiplier learning rate alpha_1 is adapted by meta-gradients.

Calian, Mankowitz, Zahavy, Xu, Oh, Levine and Mann (2021), "Balancing
Constraints and Rewards with Meta-Gradient D4PG", ICLR,
https://arxiv.org/abs/2010.06324, Section 4 and Algorithm 1 (MetaL). The
constrained problem, lambda, J_C, beta and psi are those of
``rwrl.agents.rcd4pg``; MetaL makes alpha_1, the learning rate of the
Lagrange multiplier, a meta-parameter. Per learner step, on a batch split
into a training part and a validation part:

1. Inner update (as RC-D4PG): lambda' = lambda + alpha_1 (J_C - beta) projected
   onto [0, max_lagrange], then the D4PG step on the training part with the
   reward r - lambda' c, giving the critic parameters theta_c'(alpha_1) (the
   paper's plain step theta_c - alpha_c grad L by default; the table below).
2. Outer loss: the distributional critic loss of the updated critic
   theta_c'(alpha_1) on the validation part with the unshaped reward r
   (the paper's J' = critic loss with r(s, a); the target networks are the
   ones the inner step used). It depends on alpha_1 only through lambda'
   and the inner critic step: d J'/d alpha_1 = dJ'/dtheta_c' . dtheta_c'/dlambda'
   . (J_C - beta), zero where the projection holds lambda' at 0 or at its bound.
3. Meta update: alpha_1 <- alpha_1 - alpha_eta dJ'/dalpha_1 (the paper's
   plain step; the table below lists the options); then lambda <- lambda',
   theta <- theta'.

Only alpha_1 is meta-learned: the paper's MetaL adapts the multiplier's
learning rate (its other method, MeSh, meta-learns a reward shaping, and is
not built here).

Against the paper. The paper's body (Algorithm 1, Section 5, the appendix)
could not be read here: the stored copies of arXiv 2010.06324 gave its
abstract and introduction only (``shared/papers/PAPERS.md`` section 6; the
digest of the search, issue 25). What rwrl takes as "the paper's" below is
the abstract, two secondary readings that agree (the meta-parameter is the
multiplier's learning rate; the outer loss is the critic loss with the
unshaped reward) and Algorithm 1 as this project read it when MetaL was
first built (the plain steps, the batch split, the J_C sample); the sibling
paper of the same group (robust constrained D4PG, ICLR 2021 submission)
gives the metrics (psi = max(0, J_C - beta); R - 1000 psi). Each row: the
paper, rwrl's default, the other choice kept as an option, and why.

============================  ==========================================  ==========================================
point                         the paper (as read; source)                 rwrl default / option (reason)
============================  ==========================================  ==========================================
meta-parameter                alpha_1, the multiplier's learning rate     alpha_1 itself, kept in [min, max]
                              (secondary readings; Algorithm 1)           (``min/max_lagrange_learning_rate``:
                                                                          the paper's alpha_1 > 0)
meta step                     plain gradient step                          ``meta_step="sgd"`` (default): the paper's;
                              alpha_1 <- alpha_1 - alpha_eta dJ'/dalpha_1 "adam": Adam on log alpha_1, epsilon 1e-20
                              (Algorithm 1)                               (scale-free: dJ'/dalpha_1 is tiny; this
                                                                          project's first version)
alpha_eta                     not found                                   ``meta_learning_rate`` = 0.02 for "sgd"
                                                                          (chosen, not tuned: see below); 1e-3 for
                                                                          "adam"
inner step the meta-gradient  plain gradient steps of critic and actor   ``meta_gradient_through="sgd"`` (default):
goes through                  (Algorithm 1)                               J' at theta_c - alpha_c grad L_train, the
                                                                          paper's step (alpha_c = critic_learning_rate);
                                                                          "optimiser": through the agent's own
                                                                          clipped-Adam step (exact for what is
                                                                          applied)
inner step applied            plain gradient steps (Algorithm 1)          the agent's clipped Adam, as every other
                                                                          agent here (no option: a plain-SGD D4PG
                                                                          would not be the D4PG the baselines are;
                                                                          the comparison isolates the meta-learning)
outer loss                    critic loss on the validation part with     the same, with D4PG's distributional
                              the unshaped reward (secondary; Alg. 1)     loss (the critic is distributional)
batch split                   one sampled batch split into training and   the first 1 - ``validation_fraction`` of
                              validation parts (Algorithm 1); the share   the batch trains, the rest validates;
                              not found                                   0.5 (chosen)
J_C                           one episode penalty sampled from the        ``cost_estimate="sample"`` (default), as
                              penalty replay buffer (Algorithm 1)         RC-D4PG; "mean": the buffer's mean
initial lambda, alpha_1       lambda = 0; alpha_1 not found               lambda 0; alpha_1 = 1e-3 (RC-D4PG's)
lambda's bound                [.]_+ only (Algorithm 1)                    [0, ``max_lagrange``] = [0, 5]: the atoms
                                                                          must hold the shaped return (rcd4pg)
kappa, psi                    psi = max(0, J_C - beta), R - 1000 psi      the same (benchmarks/constrained.py)
                              (sibling paper; the abstract's metric)
domains                       four MuJoCo domains (abstract)              cartpole, walker, quadruped, humanoid
safety coefficients and       not found                                   0.2 and 0.3; beta 0.05 and 0.15
thresholds                                                                (sweeps/constrained.toml; chosen earlier)
constraint per domain         not found                                   slider_pos, joint_velocity, joint_angle,
                                                                          joint_angle (rcd4pg.DEFAULT_COST_CONSTRAINTS)
training length               not found                                   the sweep file's: 200k (cartpole),
                                                                          300k (walker) env steps
============================  ==========================================  ==========================================

alpha_eta for the plain step: the paper's value was not found. Its unit is
that of alpha_1 squared over the outer loss, so no value carries over from
another setting; it was chosen from the size of the gradient before any run
was scored, by a rule fixed first: a step at the typical gradient moves
alpha_1 by 1 % of its start (1e-3). Measured with the look-ahead on a
48k-step cartpole-swingup run at safety_coeff 0.3 (``rwrl run --agent
metal --safety-coeff 0.3 --steps 48000``, 2026-12-06): dJ'/dalpha_1 of
3.4e-5, 2.2e-4, 7.7e-4 and 1.2e-3 at 16k, 24k, 32k and 40k steps (median
about 5e-4), so alpha_eta = 1e-5 / 5e-4 = 0.02. Nothing was tuned on
returns. The same run shows what the outer loss does: while J_C > beta the
gradient is positive (a smaller lambda' serves a critic of the unshaped
reward), so the plain step lowers alpha_1 whatever alpha_eta is, at 1.0 to
its floor within the first 8k steps with lambda frozen near 0.22.

Metrics: RC-D4PG's (``lambda``, ``lambda_learning_rate`` (alpha_1 used by
this step), ``cost_estimate``, ``overshoot``, ``cost_episodes``) plus
``outer_loss`` and ``meta_gradient`` (dJ'/dalpha_1).
"""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import optax

from rwrl.agents import d4pg, rcd4pg
from rwrl.agents.base import AgentFunctions, make_optimiser
from rwrl.agents.config import require_positive
from rwrl.agents.rcd4pg import ConstrainedState
from rwrl.agents.types import Transition

#: Adam's epsilon on log alpha_1 (``meta_step="adam"``): far below the meta-gradients met
#: (1e-11 and up), so that the step stays scale-free; 1e-8, the default, would swallow them.
META_ADAM_EPS = 1e-20
META_STEPS = ("sgd", "adam")
META_GRADIENT_THROUGH = ("sgd", "optimiser")


@dataclasses.dataclass(frozen=True)
class MetaLConfig(rcd4pg.RCD4PGConfig):
    """RC-D4PG's hyperparameters (mode "rc" only) and the meta-learner's.

    ``lagrange_learning_rate`` is alpha_1's initial value, then meta-learned.
    """

    #: "sgd": alpha_1 <- alpha_1 - alpha_eta dJ'/dalpha_1 (the paper's); "adam": Adam on log alpha_1.
    meta_step: str = "sgd"
    #: alpha_eta, the meta step's learning rate; None: 0.02 for "sgd", 1e-3 for "adam".
    meta_learning_rate: float | None = None
    #: "sgd": J' after the paper's plain critic step; "optimiser": after the agent's own Adam step.
    meta_gradient_through: str = "sgd"
    #: share of each batch held out for the outer loss, in (0, 1).
    validation_fraction: float = 0.5
    #: alpha_1 is kept at or above this.
    min_lagrange_learning_rate: float = 1e-6
    #: alpha_1 is kept at or below this.
    max_lagrange_learning_rate: float = 1.0

    def __post_init__(self):
        super().__post_init__()
        if self.mode != "rc":
            raise ValueError(f"mode={self.mode!r}: MetaL learns lambda, so only 'rc'")
        if self.meta_step not in META_STEPS:
            raise ValueError(f"meta_step={self.meta_step!r}: must be one of {META_STEPS}")
        if self.meta_gradient_through not in META_GRADIENT_THROUGH:
            raise ValueError(f"meta_gradient_through={self.meta_gradient_through!r}: must be one of "
                             f"{META_GRADIENT_THROUGH}")
        if self.meta_learning_rate is None:
            object.__setattr__(self, "meta_learning_rate", 0.02 if self.meta_step == "sgd" else 1e-3)
        require_positive(self, "meta_learning_rate")
        validation = round(self.batch_size * self.validation_fraction)
        if not 0 < self.validation_fraction < 1 or not 0 < validation < self.batch_size:
            raise ValueError(f"validation_fraction={self.validation_fraction!r}: must leave both parts of "
                             f"batch_size={self.batch_size} non-empty")
        low, high = self.min_lagrange_learning_rate, self.max_lagrange_learning_rate
        if not 0 < low <= self.lagrange_learning_rate <= high:
            raise ValueError(f"lagrange_learning_rate={self.lagrange_learning_rate!r}: must lie in "
                             f"[min_lagrange_learning_rate={low!r}, max_lagrange_learning_rate={high!r}], "
                             "with the minimum > 0")


def split_batch(batch: Transition, validation_fraction: float) -> tuple[Transition, Transition]:
    """Return (training part, validation part): the first B - round(B * fraction) rows, the rest."""
    size = batch.reward_t.shape[0]
    cut = size - round(size * validation_fraction)
    if not 0 < cut < size:
        raise ValueError(f"a batch of {size} leaves an empty part at validation_fraction={validation_fraction}")
    return (jax.tree.map(lambda x: x[:cut], batch), jax.tree.map(lambda x: x[cut:], batch))


def outer_loss(losses: d4pg.D4PGLosses, optimisers, config: MetaLConfig, state: ConstrainedState,
               train: Transition, validate: Transition, key: jax.Array, learning_rate: jax.Array):
    """Return J'(alpha_1) (steps 1 and 2) and, as auxiliaries, the inner update's results.

    Args:
        learning_rate: () alpha_1, the variable of the meta-gradient.

    Returns:
        (outer loss, (D4PG state after the applied inner step, lambda', inner metrics, J_C, episodes)).
    """
    cost, episodes = rcd4pg.cost_estimate(state, config.cost_estimate, key)
    lagrange = rcd4pg.next_lagrange(config, state, learning_rate, cost, episodes)
    # D4PG's loss stops the target's gradient, which would cut the path from lambda'
    # through the shaped reward to the inner critic step: here it is kept.
    inner_loss = functools.partial(losses.critic_loss, stop_target_gradient=False)
    shaped_train = rcd4pg.shaped(train, lagrange)
    if config.meta_gradient_through == "optimiser":  # J' after the step that is applied
        d4pg_state, metrics = d4pg.update_step(losses._replace(critic_loss=inner_loss), optimisers, config,
                                               state.d4pg, shaped_train, key)
        critic_params = d4pg_state.critic_params
    else:  # J' after the paper's plain step; the applied step (Adam) carries no meta-gradient
        d4pg_state, metrics = d4pg.update_step(losses, optimisers, config, state.d4pg,
                                               jax.lax.stop_gradient(shaped_train), key)
        grads = jax.grad(inner_loss)(state.critic_params, state.target_policy_params,
                                     state.target_critic_params, shaped_train)
        critic_params = jax.tree.map(lambda p, g: p - config.critic_learning_rate * g, state.critic_params, grads)
    loss = losses.critic_loss(critic_params, state.target_policy_params, state.target_critic_params, validate)
    return loss, (d4pg_state, lagrange, metrics, cost, episodes)


def meta_update(meta_optimiser: optax.GradientTransformation, config: MetaLConfig, learning_rate: jax.Array,
                meta_grad: jax.Array, opt_state: optax.OptState) -> tuple[jax.Array, optax.OptState]:
    """Return (alpha_1 after the meta step, the optimiser's state), alpha_1 kept in its bounds.

    "sgd" steps alpha_1 itself; "adam" steps log alpha_1 with the gradient
    dJ'/dlog alpha_1 = alpha_1 dJ'/dalpha_1.
    """
    low, high = config.min_lagrange_learning_rate, config.max_lagrange_learning_rate
    if config.meta_step == "sgd":
        updates, opt_state = meta_optimiser.update(meta_grad, opt_state, learning_rate)
        return jnp.clip(learning_rate + updates, low, high), opt_state
    log_rate = jnp.log(learning_rate)
    updates, opt_state = meta_optimiser.update(learning_rate * meta_grad, opt_state, log_rate)
    return jnp.exp(jnp.clip(log_rate + updates, math.log(low), math.log(high))), opt_state


def update_step(losses: d4pg.D4PGLosses, optimisers, meta_optimiser: optax.GradientTransformation,
                config: MetaLConfig, state: ConstrainedState, batch: Transition,
                key: jax.Array) -> tuple[ConstrainedState, dict[str, jax.Array]]:
    """One MetaL learner step: inner update, outer loss, meta-gradient step on alpha_1."""
    train, validate = split_batch(batch, config.validation_fraction)
    rate = state.lagrange_learning_rate
    loss_fn = functools.partial(outer_loss, losses, optimisers, config, state, train, validate, key)
    (loss, (d4pg_state, lagrange, metrics, cost, episodes)), meta_grad = jax.value_and_grad(
        loss_fn, has_aux=True)(rate)
    new_rate, meta_opt_state = meta_update(meta_optimiser, config, rate, meta_grad, state.meta_opt_state)
    metrics.update(rcd4pg.constraint_metrics(config, lagrange, rate, cost, episodes))
    metrics.update(outer_loss=loss, meta_gradient=meta_grad)
    new_state = state._replace(d4pg=d4pg_state, lagrange=lagrange, meta_opt_state=meta_opt_state,
                               lagrange_learning_rate=new_rate)
    return new_state, metrics


def make_meta_optimiser(config: MetaLConfig) -> optax.GradientTransformation:
    """The meta step's optimiser: plain gradient descent, or Adam with epsilon ``META_ADAM_EPS``."""
    if config.meta_step == "sgd":
        return optax.sgd(config.meta_learning_rate)
    return make_optimiser(config.meta_learning_rate, eps=META_ADAM_EPS)


class MetaL(rcd4pg.RCD4PG):
    """MetaL: RC-D4PG with alpha_1 meta-learned; acts as D4PG."""

    config_class = MetaLConfig

    def make_functions(self, obs_size: int, action_size: int, config: MetaLConfig) -> AgentFunctions:
        """RC-D4PG's functions, with the meta-optimiser's state and the MetaL update."""
        functions = super().make_functions(obs_size, action_size, config)
        meta_optimiser = make_meta_optimiser(config)
        meta_opt_state = meta_optimiser.init(jnp.zeros((), jnp.float32))
        return functions._replace(
            init=functools.partial(rcd4pg.init_state, self.networks, self.optimisers, config, meta_opt_state,
                                   obs_size, action_size),
            update=functools.partial(update_step, self.losses, self.optimisers, meta_optimiser, config))
