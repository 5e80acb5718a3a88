"""Consolidation across regimes for D4PG: past regimes' losses kept as quadratic penalties.

The shared piece of ``d4pg-ewc``, ``d4pg-kfac`` and ``d4pg-hcl``. Yin et al.
(arXiv 2006.10974) replace the loss of a finished task by its second-order
Taylor model at the weights it ended with, ``0.5 (w - w_k)^T H_k (w - w_k)``,
and learn the next task on its own loss plus ``lambda`` times those models;
``rwrl.continual.curvature`` estimates ``H_k`` (diagonal Fisher: EWC; Kronecker
factors: KFAC) and builds the penalties. This module puts them into D4PG:

1. At a regime switch (``observe_regime``; which switch is the agent's: the
   regime reported in ``info['regime']`` for ``d4pg-ewc`` and ``d4pg-kfac``, a
   detector for ``d4pg-hcl``), the curvature of both networks is estimated at
   their current weights on the replay's ``consolidation_batch`` newest
   transitions (the end of the regime that just ended) and written, with those
   weights as its anchor, into the next of ``max_consolidations`` slots.
2. Every learner step adds ``consolidation_weight`` times the sum of the slots'
   penalties to the critic's loss and to the policy's loss (empty slots weigh 0).
3. The run loop then empties the replay (``reset_replay_at_switch``), so that the
   next regime is learned from its own data only, as a continual learner without
   a memory of past tasks does (Continual World resets the buffer at each task for
   its regularisation methods); with the replay kept, old data alone fights
   forgetting and the comparison with plain fine-tuning would measure the replay.

Choices (none tuned):

* Both networks are consolidated. The critic's loss is the C51 cross-entropy,
  so its curvature is the Fisher of its categorical output over the return atoms
  at the regime's (s, a) (``output="categorical"``, labels sampled from the
  critic: the true Fisher, one label per transition). The policy's loss is not a
  likelihood; its curvature is the Gauss-Newton matrix of its action
  (``output="gaussian"``: the Fisher of a unit-variance Gaussian around it).
  Continual World and COOM regularise only the actor by default
  (``--regularize_critic`` is an option there); the loss-approximation view
  applies to every loss the agent minimises, so both here
  (``consolidate_critic=False`` gives theirs).
* ``consolidation_weight`` = 250: COOM's EWC coefficient for SAC
  (TTomilin/COOM, CL/README.md: ``--cl_method ewc --cl_reg_coef=250``), taken
  as published, the same for KFAC (both approximate one Fisher). The penalty is
  added to batch-mean losses, as there.
* ``max_consolidations`` = 8 slots, so the state has static shapes and one
  update compiles once; the ninth switch overwrites the oldest slot (said in
  ``consolidations``; a schedule of more regimes keeps the 8 latest).
* The penalty of a slot is built by ``curvature.quadratic_penalty`` and summed
  by ``curvature.total_penalty`` (H is never formed for EWC and KFAC).
* The empty slots' arrays are zeros of the structure a real estimate has; that
  structure is found once per agent by tracing an estimate on one dummy
  transition (``jax.eval_shape``: nothing is compiled or computed).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from rwrl.agents import d4pg
from rwrl.agents.config import AgentConfig, require_int
from rwrl.agents.replay import NStepReplay
from rwrl.agents.types import Transition
from rwrl.continual import curvature


@dataclasses.dataclass(frozen=True)
class ConsolidationConfig(AgentConfig):
    """How past regimes are consolidated (module docstring)."""

    #: lambda, the weight of the past regimes' penalties; finite and >= 0 (0: plain fine-tuning
    #: with the same replay resets, the baseline the consolidating agents are compared with).
    consolidation_weight: float = 250.0
    #: slots for past regimes' penalties; the oldest is overwritten when they are full.
    max_consolidations: int = 8
    #: the replay's newest transitions the curvature is estimated on.
    consolidation_batch: int = 1024
    #: whether the critic is consolidated too (the policy always is).
    consolidate_critic: bool = True
    #: whether the run loop empties the replay after a switch.
    reset_replay_at_switch: bool = True

    def __post_init__(self):
        super().__post_init__()
        curvature.check_weight(self.consolidation_weight, "consolidation_weight")
        require_int(self, "max_consolidations")
        require_int(self, "consolidation_batch")


class ConsolidatedState(NamedTuple):
    """D4PG's training state, the penalties' slots and the switch bookkeeping; a pytree saved whole.

    The D4PG fields read through (``state.policy_params``, ``state.steps``, ...).
    """

    d4pg: d4pg.TrainingState
    critic_penalty: curvature.QuadraticPenalty  # stacked, a leading axis of max_consolidations slots
    policy_penalty: curvature.QuadraticPenalty
    consolidations: jax.Array  # () int32, switches consolidated so far
    regime: jax.Array  # () int32, the regime the agent believes it is learning (-1: none yet)
    extra: Any  # what a subclass keeps (the detector's state of d4pg-hcl); () otherwise

    policy_params = property(lambda self: self.d4pg.policy_params)
    critic_params = property(lambda self: self.d4pg.critic_params)
    target_policy_params = property(lambda self: self.d4pg.target_policy_params)
    target_critic_params = property(lambda self: self.d4pg.target_critic_params)
    steps = property(lambda self: self.d4pg.steps)


def penalised_losses(losses: d4pg.D4PGLosses, state: ConsolidatedState) -> d4pg.D4PGLosses:
    """Return D4PG's losses plus the sum of ``state``'s penalties on each network (step 2)."""

    def critic_loss(critic_params, *args, **kwargs):
        return (losses.critic_loss(critic_params, *args, **kwargs)
                + curvature.total_penalty(state.critic_penalty, critic_params))

    def policy_loss(policy_params, critic_params, batch: Transition):
        return (losses.policy_loss(policy_params, critic_params, batch)
                + curvature.total_penalty(state.policy_penalty, policy_params))

    return d4pg.D4PGLosses(critic_loss, policy_loss)


def update_step(losses: d4pg.D4PGLosses, optimisers, config, state: ConsolidatedState, batch: Transition,
                key: jax.Array) -> tuple[ConsolidatedState, dict[str, jax.Array]]:
    """One D4PG step on the penalised losses; the metrics add each network's penalty and the count."""
    d4pg_state, metrics = d4pg.update_step(penalised_losses(losses, state), optimisers, config, state.d4pg,
                                           batch, key)
    metrics.update(
        critic_penalty=curvature.total_penalty(state.critic_penalty, state.d4pg.critic_params),
        policy_penalty=curvature.total_penalty(state.policy_penalty, state.d4pg.policy_params),
        consolidations=state.consolidations.astype(jnp.float32))
    return state._replace(d4pg=d4pg_state), metrics


class ConsolidatingD4PG(d4pg.D4PG):
    """D4PG with consolidation at regime switches; a subclass sets ``form`` and how switches are found.

    ``observe_regime`` is the run loop's call (the ``continual`` capability);
    this class's finds switches in the reported regime.
    """

    #: the curvature's form, one of ``rwrl.continual.curvature.FORMS``.
    form: str = "diagonal"

    def make_functions(self, obs_size: int, action_size: int, config) -> d4pg.AgentFunctions:
        """D4PG's functions with the consolidated state and the penalised update."""
        functions = super().make_functions(obs_size, action_size, config)
        self._empty = self._empty_penalties(obs_size, action_size, config)
        return functions._replace(
            init=functools.partial(self._init_state, functions.init),
            update=functools.partial(update_step, self.losses, self.optimisers, config))

    # ------------------------------------------------------------ state
    def _init_state(self, d4pg_init, key: jax.Array) -> ConsolidatedState:
        critic_slots, policy_slots = self._empty
        return ConsolidatedState(d4pg=d4pg_init(key), critic_penalty=critic_slots, policy_penalty=policy_slots,
                                 consolidations=jnp.zeros((), jnp.int32), regime=jnp.full((), -1, jnp.int32),
                                 extra=self.init_extra())

    def init_extra(self) -> Any:
        """What a subclass keeps in the state beside the penalties (a pytree); nothing here."""
        return ()

    def _estimate(self, critic_params, policy_params, batch: Transition, key: jax.Array, weight: float):
        """Return (critic penalty, policy penalty) anchored at the given weights, on ``batch``."""
        critic_key, policy_key = jax.random.split(key)
        obs, action = jnp.asarray(batch.obs_tm1), jnp.asarray(batch.action_tm1)
        critic_h = curvature.estimate(self.form, self.networks.critic, critic_params, (obs, action), critic_key,
                                      output="categorical")
        policy_h = curvature.estimate(self.form, self.networks.policy, policy_params, (obs,), policy_key,
                                      output="gaussian")
        critic_weight = weight if self.config.consolidate_critic else 0.0
        return (curvature.quadratic_penalty(critic_params, critic_h, critic_weight),
                curvature.quadratic_penalty(policy_params, policy_h, weight))

    def _empty_penalties(self, obs_size: int, action_size: int, config):
        """Return (critic, policy) stacks of ``max_consolidations`` zero-weight slots (module docstring)."""
        key = jax.random.PRNGKey(0)
        obs, action = jnp.zeros((1, obs_size), jnp.float32), jnp.zeros((1, action_size), jnp.float32)
        critic_params = self.networks.critic.init(key, obs, action)
        policy_params = self.networks.policy.init(key, obs)
        dummy = Transition(obs_tm1=obs, action_tm1=action, reward_t=jnp.zeros(1), discount_t=jnp.zeros(1),
                           obs_t=obs)
        shapes = jax.eval_shape(lambda c, p: self._estimate(c, p, dummy, key, 0.0), critic_params, policy_params)
        zero = jax.tree_util.tree_map(lambda s: np.zeros(s.shape, s.dtype), shapes)
        return tuple(curvature.padded_stack([], config.max_consolidations, like=p) for p in zero)

    # ------------------------------------------------------------ switches
    def consolidate(self, state: ConsolidatedState, batch: Transition, key: jax.Array
                    ) -> tuple[ConsolidatedState, dict[str, float]]:
        """Write the current weights' penalties, estimated on ``batch``, into the next slot (step 1)."""
        critic, policy = self._estimate(state.critic_params, state.policy_params, batch, key,
                                        self.config.consolidation_weight)
        slot = int(state.consolidations) % self.config.max_consolidations

        def put(stacked, new):
            return jax.tree_util.tree_map(lambda s, x: s.at[slot].set(x), stacked, new)

        state = state._replace(critic_penalty=put(state.critic_penalty, critic),
                               policy_penalty=put(state.policy_penalty, policy),
                               consolidations=state.consolidations + 1)
        seconds = float(critic.curvature.seconds) + float(policy.curvature.seconds)
        return state, {"consolidations": float(state.consolidations), "curvature_seconds": seconds}

    def observe_regime(self, state: ConsolidatedState, replay: NStepReplay, regime: int | None,
                       key: jax.Array) -> tuple[ConsolidatedState, dict[str, float] | None]:
        """The loop's call after training envs reset: consolidate when the reported regime changed.

        Returns the new state and, at a switch, the event's numbers (``switched`` 1.0
        and ``consolidate``'s); None otherwise.

        Raises:
          ValueError: no regime is reported (the env has no ``regime_spec``).
        """
        if regime is None:
            raise ValueError(f"{type(self).__name__} consolidates at the switches of info['regime']: give "
                             f"the env a regime_spec (docs/challenges.md)")
        known = int(state.regime)
        state = state._replace(regime=jnp.asarray(regime, jnp.int32))
        if known < 0 or regime == known or len(replay) == 0:
            return state, None
        state, event = self.consolidate(state, replay.latest(self.config.consolidation_batch), key)
        return state, {"switched": 1.0, **event}


__all__ = ["ConsolidatedState", "ConsolidatingD4PG", "ConsolidationConfig", "penalised_losses", "update_step"]
