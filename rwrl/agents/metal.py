"""MetaL: RC-D4PG whose multiplier learning rate alpha_1 is adapted by meta-gradients.

Calian, Mankowitz, Zahavy, Xu, Oh, Levine and Mann (2021), "Balancing
Constraints and Rewards with Meta-Gradient D4PG", ICLR,
https://arxiv.org/abs/2010.06324, Section 4 and Algorithm 1 (MetaL). The
constrained problem, lambda, J_C, beta and psi are those of
``rwrl.agents.rcd4pg``; MetaL makes alpha_1, the learning rate of the
Lagrange multiplier, a meta-parameter. Per learner step, on a batch split
into a training part and a validation part:

1. Inner update (as RC-D4PG): lambda' = max(0, lambda + alpha_1 (J_C - beta)),
   then the D4PG step on the training part with the reward r - lambda' c,
   giving the critic parameters theta_c'(alpha_1) (and the actor's step).
2. Outer loss: the distributional critic loss of the updated critic
   theta_c'(alpha_1) on the validation part with the unshaped reward r
   (the paper's J' = critic loss with r(s, a); the target networks are the
   ones the inner step used). It depends on alpha_1 only through lambda'
   and the inner critic step: d J'/d alpha_1 = dJ'/dtheta_c' . dtheta_c'/dlambda'
   . (J_C - beta), zero where the projection holds lambda' at 0.
3. Meta update: alpha_1 <- alpha_1 - alpha_eta dJ'/dalpha_1, as the paper,
   with the choices below; then lambda <- lambda', theta <- theta'.

Only alpha_1 is meta-learned: the paper's MetaL adapts the multiplier's
learning rate (its other method, MeSh, meta-learns a reward shaping, and is
not built here).

Choices where the paper leaves room (each tested in tests/agents/test_constrained.py):

* The inner update differentiated is the agent's real one: D4PG's critic
  step with global-norm clipping and Adam (the paper writes the inner step as
  plain gradient descent); the meta-gradient is exact for it (checked
  against central finite differences).
* The meta-parameter is log alpha_1, so that alpha_1 stays positive (the
  paper's alpha_1 > 0), stepped by Adam with learning rate
  ``meta_learning_rate`` (alpha_eta) and epsilon 1e-20: the step hardly
  depends on the scale of dJ'/dalpha_1, which is tiny and varies by orders
  of magnitude (measured here: 1e-11 to 1e-9 in a short tiny-network
  cartpole run, 1e-5 on the toy task of the tests), so the paper's plain
  step alpha_eta * dJ'/dalpha_1 would need alpha_eta tuned per task, and
  Adam's default epsilon (1e-8) would swallow such gradients. (A sign-based
  step, Lion, was tried: it drove alpha_1 to its bound on the toy task.)
  log alpha_1 is kept within [log min_lagrange_learning_rate,
  log max_lagrange_learning_rate].
* The split: the first ``1 - validation_fraction`` of the batch (replay
  samples are uniform, so any split is a random one) trains, the rest
  validates.
* J_C and lambda's start: as RC-D4PG (mean over recent training episodes;
  lambda = lagrange_init = 0 by default, the paper's lambda = 0).

Metrics: RC-D4PG's (``lambda``, ``lambda_learning_rate`` (alpha_1 used by
this step), ``cost_estimate``, ``overshoot``, ``cost_episodes``) plus
``outer_loss`` and ``meta_gradient`` (dJ'/dlog alpha_1).
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

#: Adam's epsilon on log alpha_1: far below the meta-gradients met (1e-11 and up), so that
#: the step stays scale-free; 1e-8, the default, would swallow them.
META_ADAM_EPS = 1e-20


@dataclasses.dataclass(frozen=True)
class MetaLConfig(rcd4pg.RCD4PGConfig):
    """RC-D4PG's hyperparameters (mode "rc" only) and the meta-learner's.

    ``lagrange_learning_rate`` is alpha_1's initial value, then meta-learned.
    """

    #: alpha_eta, Adam's learning rate on log alpha_1.
    meta_learning_rate: float = 1e-3
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
               train: Transition, validate: Transition, key: jax.Array, log_learning_rate: jax.Array):
    """Return J'(alpha_1) (steps 1 and 2) and, as auxiliaries, the inner update's results.

    Args:
        log_learning_rate: () log alpha_1, the variable of the meta-gradient.

    Returns:
        (outer loss, (D4PG state after the inner step, lambda', inner metrics, J_C, episodes)).
    """
    cost, episodes = rcd4pg.cost_estimate(state)
    lagrange = rcd4pg.next_lagrange(config, state, jnp.exp(log_learning_rate), cost, episodes)
    # D4PG's loss stops the target's gradient, which would cut the path from lambda'
    # through the shaped reward to the inner critic step: here it is kept.
    inner_losses = losses._replace(critic_loss=functools.partial(losses.critic_loss, stop_target_gradient=False))
    d4pg_state, metrics = d4pg.update_step(losses=inner_losses, optimisers=optimisers, config=config,
                                           state=state.d4pg, batch=rcd4pg.shaped(train, lagrange), key=key)
    loss = losses.critic_loss(d4pg_state.critic_params, state.d4pg.target_policy_params,
                              state.d4pg.target_critic_params, validate)
    return loss, (d4pg_state, lagrange, metrics, cost, episodes)


def update_step(losses: d4pg.D4PGLosses, optimisers, meta_optimiser: optax.GradientTransformation,
                config: MetaLConfig, state: ConstrainedState, batch: Transition,
                key: jax.Array) -> tuple[ConstrainedState, dict[str, jax.Array]]:
    """One MetaL learner step: inner update, outer loss, meta-gradient step on log alpha_1."""
    train, validate = split_batch(batch, config.validation_fraction)
    log_rate = jnp.log(state.lagrange_learning_rate)
    loss_fn = functools.partial(outer_loss, losses, optimisers, config, state, train, validate, key)
    (loss, (d4pg_state, lagrange, metrics, cost, episodes)), meta_grad = jax.value_and_grad(
        loss_fn, has_aux=True)(log_rate)
    updates, meta_opt_state = meta_optimiser.update(meta_grad, state.meta_opt_state, log_rate)
    new_log_rate = jnp.clip(log_rate + updates, math.log(config.min_lagrange_learning_rate),
                            math.log(config.max_lagrange_learning_rate))
    metrics.update(rcd4pg.constraint_metrics(config, lagrange, state.lagrange_learning_rate, cost, episodes))
    metrics.update(outer_loss=loss, meta_gradient=meta_grad)
    new_state = state._replace(d4pg=d4pg_state, lagrange=lagrange, meta_opt_state=meta_opt_state,
                               lagrange_learning_rate=jnp.exp(new_log_rate))
    return new_state, metrics


class MetaL(rcd4pg.RCD4PG):
    """MetaL: RC-D4PG with alpha_1 meta-learned; acts as D4PG."""

    config_class = MetaLConfig

    def make_functions(self, obs_size: int, action_size: int, config: MetaLConfig) -> AgentFunctions:
        """RC-D4PG's functions, with the meta-optimiser's state and the MetaL update."""
        functions = super().make_functions(obs_size, action_size, config)
        meta_optimiser = make_optimiser(config.meta_learning_rate, eps=META_ADAM_EPS)
        meta_opt_state = meta_optimiser.init(jnp.zeros((), jnp.float32))
        return functions._replace(
            init=functools.partial(rcd4pg.init_state, self.networks, self.optimisers, config, meta_opt_state,
                                   obs_size, action_size),
            update=functools.partial(update_step, self.losses, self.optimisers, meta_optimiser, config))
