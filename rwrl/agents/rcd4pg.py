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
   lambda' = min(lambda_max, max(0, lambda + alpha_1 (J_C - beta))) (the
   paper's [lambda - alpha_1 (beta - J_C)]_+, bounded above so that the
   critic's atoms hold every shaped return, below). ``mode="fixed"`` keeps
   lambda = ``lagrange_init`` throughout: the reward-shaping baseline with
   lambda a hyperparameter (0: D4PG on the reward alone).
2. The D4PG step (``d4pg.update_step``, its networks, losses and optimisers
   reused whole) on the batch whose reward is r - lambda' c; the n-step sums
   are linear, so shaping the sums shapes every step.

Choices where the paper leaves room (each tested in tests/agents/test_constrained.py):

* Shaped critic, as the paper's RC-D4PG (and RCPO): one distributional critic
  of the return of r - lambda c, no separate cost critic.
* The estimate of J_C (``cost_estimate``): "sample" (default, as the
  paper's Algorithm 1 is read here: "sample the episode penalty J_C from the
  penalty replay buffer") draws one of the last ``cost_buffer_size``
  finished training episodes (handed over by the loop through
  ``observe_episodes``) per learner step; "mean" takes their mean, the same
  quantity with less variance. The buffer's size is not found in the paper:
  10 episodes. Until an episode has finished lambda is not updated (its
  estimate would be nothing but a guess).
* Atoms that hold the shaped return (``shaped_return_support``): the paper
  gives none. With per-step rewards in [reward_min, reward_max] (the
  suite's: [0, 1]), costs in [0, max_cost] and lambda in [0, max_lagrange],
  every discounted return of r - lambda c lies in
  [(reward_min - max_lagrange max_cost) / (1 - discount), reward_max / (1 - discount)];
  v_min and v_max (when not given) are that interval widened by 5 % of its
  width on each side, as D4PG's [-5, 105] widens [0, 100]. The bound
  lambda_max = 5 is rwrl's: with r in [0, 1] and c in {0, 1}, any lambda
  above 1 already makes a violation cost more than the best step's reward,
  so 5 leaves room for the overshoot of the ascent without letting lambda
  grow without end (an unreachable threshold would do that, and then no
  fixed support holds the return). 101 atoms keep the spacing of the
  support acme's D4PG used for shaped returns ([-150, 150], 51 atoms,
  which clipped the shaped return once lambda passed about 2.5). With
  ``cost_constraint=None`` the cost counts the violated constraints, so
  ``max_cost`` must be at least their number: the run refuses to start
  otherwise.

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
COST_ESTIMATES = ("sample", "mean")
#: the constraint whose violation is the cost when a run names none, per domain: one per
#: domain, as the paper (which names its per-domain constraints in text not read here):
#: cartpole and walker as sweeps/constrained.toml, quadruped and humanoid rwrl's choice;
#: the rate-control family's only one (``rwrl.video.env``).
DEFAULT_COST_CONSTRAINTS = {"cartpole": "slider_pos", "walker": "joint_velocity",
                            "quadruped": "joint_angle", "humanoid": "joint_angle",
                            "ratecontrol": "bitrate"}
#: the support's margin on each side, a share of the return's range (D4PG's 5 of 100).
SUPPORT_MARGIN = 0.05


def shaped_return_support(config) -> tuple[float, float]:
    """Return (v_min, v_max): the range of every discounted return of r - lambda c, with margins.

    r in [reward_min, reward_max], c in [0, max_cost], lambda in [0, max_lagrange]:
    the per-step shaped reward lies in [reward_min - max_lagrange max_cost, reward_max]
    and a discounted sum of such rewards within 1 / (1 - discount) of it.
    """
    horizon = 1.0 / (1.0 - config.discount)
    low = (config.reward_min - config.max_lagrange * config.max_cost) * horizon
    high = config.reward_max * horizon
    margin = SUPPORT_MARGIN * (high - low)
    return low - margin, high + margin


@dataclasses.dataclass(frozen=True)
class RCD4PGConfig(d4pg.D4PGConfig):
    """D4PG's hyperparameters, wider atoms, and the constraint's."""

    v_min: float | None = None  # None: from the shaped return's range (shaped_return_support)
    v_max: float | None = None  # None: as v_min
    num_atoms: int = 101  # acme's spacing for shaped returns ([-150, 150], 51) over the wider range
    #: the per-step task reward's lowest value (the suite's rewards lie in [0, 1]).
    reward_min: float = 0.0
    #: the per-step task reward's highest value.
    reward_max: float = 1.0
    #: the largest per-step cost: 1 for one constraint's violation; K when the cost counts K constraints.
    max_cost: float = 1.0
    #: lambda's upper bound (the projection keeps lambda in [0, max_lagrange]).
    max_lagrange: float = 5.0
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
    #: "sample": J_C is one episode of the buffer per learner step (the paper's); "mean": their mean.
    cost_estimate: str = "sample"

    def __post_init__(self):
        if not self.reward_min < self.reward_max:
            raise ValueError(f"reward_min={self.reward_min!r}, reward_max={self.reward_max!r}: "
                             "need reward_min < reward_max")
        require_positive(self, "max_cost")
        require_positive(self, "max_lagrange")
        low, high = shaped_return_support(self)
        if self.v_min is None:
            object.__setattr__(self, "v_min", low)
        if self.v_max is None:
            object.__setattr__(self, "v_max", high)
        super().__post_init__()
        if self.cost_estimate not in COST_ESTIMATES:
            raise ValueError(f"cost_estimate={self.cost_estimate!r}: must be one of {COST_ESTIMATES}")
        if not self.lagrange_init <= self.max_lagrange:
            raise ValueError(f"lagrange_init={self.lagrange_init!r}: must be <= max_lagrange={self.max_lagrange!r}")
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
                    threshold: float, max_lagrange: float = float("inf")) -> jax.Array:
    """Return lambda + alpha_1 (J_C - beta) projected onto [0, max_lagrange] (Calian et al., Alg. 1)."""
    return jnp.clip(lagrange + learning_rate * (cost_estimate - threshold), 0.0, max_lagrange)


def cost_estimate(state: ConstrainedState, how: str = "mean",
                  key: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
    """Return (J_C, episodes): J_C of the ring's filled entries and their count (J_C = 0 at 0).

    ``how``: "mean" of the filled entries, or "sample" one of them drawn with ``key``.
    """
    size = state.episode_costs.shape[0]
    filled = jnp.minimum(state.episodes_seen, size)
    if how == "sample":
        index = jax.random.randint(key, (), 0, jnp.maximum(filled, 1))
        return jnp.where(filled > 0, state.episode_costs[index], 0.0), filled
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
    updated = lagrange_update(state.lagrange, learning_rate, cost, config.cost_threshold, config.max_lagrange)
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
    cost, episodes = cost_estimate(state, config.cost_estimate, key)
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
