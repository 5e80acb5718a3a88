"""RC-D4PG and fixed-lambda reward shaping: D4PG on the shaped reward r - lambda c.

Calian, Mankowitz, Zahavy, Xu, Oh, Levine and Mann (2021), "Balancing
Constraints and Rewards with Meta-Gradient D4PG", ICLR,
https://arxiv.org/abs/2010.06324, Section 3: the soft-constrained problem
max_pi J_R subject to J_C <= beta, solved as the Lagrangian
min_{lambda >= 0} max_pi J_R - lambda (J_C - beta) in the manner of RCPO
(Tessler, Mankowitz and Mannor 2019), on D4PG (``rwrl.agents.d4pg``).

J_C is the average cost per step of a training episode, c_t being the
per-step cost the loop stores beside the reward (``info["cost"]``, the number
of violated constraints, or one named constraint's violation flag:
``cost_constraint``; the paper constrains one per domain). The overshoot of
the threshold beta is psi = max(0, J_C - beta); the paper scores a policy by
its penalized return R - kappa psi with kappa = 1000 (a report's business).

Per learner step, on a batch of n-step transitions:

1. Lagrange multiplier (``mode="rc"``): projected gradient ascent of the
   Lagrangian in lambda at the fixed learning rate alpha_1,
   lambda' = max(0, lambda + alpha_1 (J_C - beta)) (the paper's
   [lambda - alpha_1 (beta - J_C)]_+). ``mode="fixed"`` keeps
   lambda = ``lagrange_init`` throughout: the reward-shaping baseline with
   lambda a hyperparameter (0: D4PG on the reward alone).
2. The D4PG step (``d4pg.update_step``, its networks, losses and optimisers
   reused whole) on the batch whose reward is r - lambda' c; the n-step sums
   are linear, so shaping the sums shapes every step.

Choices where the paper leaves room (each tested in tests/agents/test_constrained.py):

* Shaped critic, as the paper's RC-D4PG (and RCPO): one distributional critic
  of the return of r - lambda c, no separate cost critic.
* The estimate of J_C: the paper samples "the episode penalty J_C from the
  penalty replay buffer" of recent actor episodes. Here it is the mean over
  the last ``cost_buffer_size`` finished training episodes (handed over by
  the loop through ``observe_episodes``), the same quantity with less
  variance than one sample. Until an episode has finished lambda is not
  updated (its estimate would be nothing but a guess).
* Atoms: v_min, v_max = -150, 150, acme's D4PG defaults: shaped returns are
  negative once lambda c exceeds r, which D4PG's [-5, 105] would clip.

Metrics (``learner/<name>`` columns of the run's rows): ``lambda`` (lambda' of
the step), ``lambda_learning_rate`` (alpha_1), ``cost_estimate`` (J_C),
``overshoot`` (psi = max(0, J_C - beta)) and ``cost_episodes`` (episodes in
the estimate; 0 means J_C is not yet known and reads 0).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from rwrl.agents import d4pg
from rwrl.agents.base import AgentFunctions
from rwrl.agents.capabilities import Capabilities
from rwrl.agents.config import require_int, require_positive
from rwrl.agents.types import Transition

MODES = ("fixed", "rc")


@dataclasses.dataclass(frozen=True)
class RCD4PGConfig(d4pg.D4PGConfig):
    """D4PG's hyperparameters, wider atoms, and the constraint's."""

    v_min: float = -150.0  # acme's D4PG default: shaped returns go below 0
    v_max: float = 150.0  # acme's D4PG default
    #: "rc": lambda learned by projected gradient (RC-D4PG); "fixed": lambda = lagrange_init.
    mode: str = "rc"
    #: beta, the threshold on J_C, the average cost per step of an episode.
    cost_threshold: float = 0.1
    #: lambda at the start ("rc") or throughout ("fixed"); >= 0.
    lagrange_init: float = 0.0
    #: alpha_1, the multiplier's learning rate: lambda moves alpha_1 * (J_C - beta) per learner step.
    lagrange_learning_rate: float = 1e-3
    #: None: c_t = info["cost"] (violated constraints); else the one constraint whose violation is c_t.
    cost_constraint: str | None = None
    #: finished training episodes whose average cost makes the estimate of J_C.
    cost_buffer_size: int = 10

    def __post_init__(self):
        super().__post_init__()
        if self.mode not in MODES:
            raise ValueError(f"mode={self.mode!r}: must be one of {MODES}")
        if not self.cost_threshold >= 0:
            raise ValueError(f"cost_threshold={self.cost_threshold!r}: must be >= 0")
        if not self.lagrange_init >= 0:
            raise ValueError(f"lagrange_init={self.lagrange_init!r}: must be >= 0")
        require_positive(self, "lagrange_learning_rate")
        require_int(self, "cost_buffer_size")
        if self.cost_constraint is not None and not isinstance(self.cost_constraint, str):
            raise ValueError(f"cost_constraint={self.cost_constraint!r}: must be a constraint name or None")


class ConstrainedState(NamedTuple):
    """D4PG's training state, the multiplier and the cost estimate; a pytree saved whole.

    The D4PG fields read through (``state.policy_params``, ``state.steps``, ...),
    so code written for a D4PG state reads this one.
    """

    d4pg: d4pg.TrainingState
    lagrange: jax.Array  # () float32, lambda >= 0
    lagrange_learning_rate: jax.Array  # () float32, alpha_1; MetaL adapts it
    meta_opt_state: optax.OptState  # MetaL's optimiser of log alpha_1; empty for RC-D4PG
    episode_costs: jax.Array  # (P,) float32, average cost per step of recent episodes (a ring)
    episodes_seen: jax.Array  # () int32, episodes written into the ring so far

    policy_params = property(lambda self: self.d4pg.policy_params)
    critic_params = property(lambda self: self.d4pg.critic_params)
    target_policy_params = property(lambda self: self.d4pg.target_policy_params)
    target_critic_params = property(lambda self: self.d4pg.target_critic_params)
    steps = property(lambda self: self.d4pg.steps)


def lagrange_update(lagrange: jax.Array, learning_rate: jax.Array, cost_estimate: jax.Array,
                    threshold: float) -> jax.Array:
    """Return max(0, lambda + alpha_1 (J_C - beta)): one projected ascent step (Calian et al., Alg. 1)."""
    return jnp.maximum(0.0, lagrange + learning_rate * (cost_estimate - threshold))


def cost_estimate(state: ConstrainedState) -> tuple[jax.Array, jax.Array]:
    """Return (J_C, episodes): the mean of the ring's filled entries and their count (J_C = 0 at 0)."""
    size = state.episode_costs.shape[0]
    filled = jnp.minimum(state.episodes_seen, size)
    mask = jnp.arange(size) < filled
    total = jnp.sum(jnp.where(mask, state.episode_costs, 0.0))
    return total / jnp.maximum(filled, 1), filled


def observe_episodes(state: ConstrainedState, costs: jax.Array) -> ConstrainedState:
    """Write finished episodes' average costs per step, (E,), into the ring (the newest P kept)."""
    size = state.episode_costs.shape[0]
    costs = costs[-size:]
    index = (state.episodes_seen + jnp.arange(costs.shape[0])) % size
    return state._replace(episode_costs=state.episode_costs.at[index].set(costs),
                          episodes_seen=state.episodes_seen + costs.shape[0])


def shaped(batch: Transition, lagrange: jax.Array) -> Transition:
    """Return ``batch`` with the reward r - lambda c (n-step sums, so every step is shaped)."""
    if batch.cost_t is None:
        raise ValueError("the batch has no cost_t: a constrained agent learns from a replay that "
                         "records costs (rwrl.agents.replay.NStepReplay), not from this source")
    return batch._replace(reward_t=batch.reward_t - lagrange * batch.cost_t)


def next_lagrange(config: RCD4PGConfig, state: ConstrainedState, learning_rate: jax.Array,
                  cost: jax.Array, episodes: jax.Array) -> jax.Array:
    """Return lambda' of step 1: updated in mode "rc" once J_C is known, else unchanged."""
    if config.mode == "fixed":
        return state.lagrange
    updated = lagrange_update(state.lagrange, learning_rate, cost, config.cost_threshold)
    return jnp.where(episodes > 0, updated, state.lagrange)


def constraint_metrics(config: RCD4PGConfig, lagrange, learning_rate, cost, episodes) -> dict[str, jax.Array]:
    """Return the multiplier, its learning rate, J_C, psi and the episodes behind J_C."""
    return {"lambda": lagrange, "lambda_learning_rate": learning_rate, "cost_estimate": cost,
            "overshoot": jnp.maximum(0.0, cost - config.cost_threshold),
            "cost_episodes": episodes.astype(jnp.float32)}


def init_state(networks: d4pg.D4PGNetworks, optimisers, config: RCD4PGConfig, meta_opt_state,
               obs_size: int, action_size: int, key: jax.Array) -> ConstrainedState:
    """Initialise D4PG's state, lambda = lagrange_init and an empty cost ring."""
    return ConstrainedState(
        d4pg=d4pg.init_state(networks, optimisers, obs_size, action_size, key),
        lagrange=jnp.asarray(config.lagrange_init, jnp.float32),
        lagrange_learning_rate=jnp.asarray(config.lagrange_learning_rate, jnp.float32),
        meta_opt_state=meta_opt_state,
        episode_costs=jnp.zeros(config.cost_buffer_size, jnp.float32),
        episodes_seen=jnp.zeros((), jnp.int32),
    )


def update_step(losses: d4pg.D4PGLosses, optimisers, config: RCD4PGConfig, state: ConstrainedState,
                batch: Transition, key: jax.Array) -> tuple[ConstrainedState, dict[str, jax.Array]]:
    """One learner step: lambda' (step 1), then D4PG on r - lambda' c (step 2)."""
    cost, episodes = cost_estimate(state)
    lagrange = next_lagrange(config, state, state.lagrange_learning_rate, cost, episodes)
    d4pg_state, metrics = d4pg.update_step(losses, optimisers, config, state.d4pg, shaped(batch, lagrange), key)
    metrics.update(constraint_metrics(config, lagrange, state.lagrange_learning_rate, cost, episodes))
    return state._replace(d4pg=d4pg_state, lagrange=lagrange), metrics


class RCD4PG(d4pg.D4PG):
    """RC-D4PG (``mode="rc"``) or fixed-lambda shaping (``mode="fixed"``); acts as D4PG."""

    capabilities = Capabilities(cost_constrained=True)
    config_class = RCD4PGConfig

    def make_functions(self, obs_size: int, action_size: int, config: RCD4PGConfig) -> AgentFunctions:
        """D4PG's networks, optimisers, losses and acting; the constrained state, update and ring."""
        functions = super().make_functions(obs_size, action_size, config)
        return functions._replace(
            init=functools.partial(init_state, self.networks, self.optimisers, config, optax.EmptyState(),
                                   obs_size, action_size),
            update=functools.partial(update_step, self.losses, self.optimisers, config),
            observe_episodes=observe_episodes)

    def observe_episodes(self, state: ConstrainedState, costs: np.ndarray) -> ConstrainedState:
        """Return ``state`` with finished training episodes' average costs per step, (E,), recorded."""
        costs = np.asarray(costs, np.float32).reshape(-1)
        return state if costs.size == 0 else self._observe(state, jnp.asarray(costs))
