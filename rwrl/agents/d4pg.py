"""D4PG: Distributed Distributional Deterministic Policy Gradients.

Barth-Maron et al. (2018), https://arxiv.org/abs/1804.08617, Algorithm 1, as
the real-world RL suite used it (Dulac-Arnold et al. 2020) and with acme's
control-suite choices. Per learner step, on a batch of n-step transitions:

1. Critic (Section 3, the distributional n-step update): the target
   distribution is the target critic's Z(s_t, pi_target(s_t)), shifted by the
   n-step reward sum, scaled by gamma**n (0 after termination) and projected
   onto the atoms; the online critic Z(s_tm1, a_tm1) is fitted to it by
   cross-entropy.
2. Actor (Section 3, the distributional policy gradient): the deterministic
   policy gradient through the mean of the online critic,
   E[Z(s_tm1, pi(s_tm1))].
3. Adam steps for both, then the target networks are copied from the online
   ones every ``target_update_period`` learner steps: the periodic hard update
   of the paper's Algorithm 1 and of acme, rather than DDPG's soft (Polyak)
   update; the bootstrap target stays fixed for that many steps.

Acting adds Gaussian noise N(0, sigma**2) to the policy's action and clips to
[-1, 1] (the paper's exploration; its N parallel actors are here the N envs of
a vector env).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from rwrl.agents import distributional
from rwrl.agents.base import AgentFunctions, JittedAgent, actor_critic_optimisers
from rwrl.agents.config import CriticSupportConfig, ExplorationNoiseConfig, LearnerConfig, ReplayConfig
from rwrl.agents.networks import DeterministicPolicy, DistributionalCritic
from rwrl.agents.types import Transition


@dataclasses.dataclass(frozen=True)
class D4PGConfig(LearnerConfig, CriticSupportConfig, ReplayConfig, ExplorationNoiseConfig):
    """D4PG hyperparameters: the pieces of ``rwrl.agents.config``; the defaults learn cartpole and walker."""

    n_step: int = 5  # acme's D4PG


class D4PGNetworks(NamedTuple):
    """The flax modules and the critic's support."""

    policy: DeterministicPolicy
    critic: DistributionalCritic
    q_atoms: jax.Array  # (K,)


class TrainingState(NamedTuple):
    """Everything the learner changes; a pytree, saved whole in checkpoints."""

    policy_params: dict
    critic_params: dict
    target_policy_params: dict
    target_critic_params: dict
    policy_opt_state: optax.OptState
    critic_opt_state: optax.OptState
    steps: jax.Array  # () int32, learner steps taken


class D4PGLosses(NamedTuple):
    critic_loss: Callable
    policy_loss: Callable


def make_networks(obs_size: int, action_size: int, config: D4PGConfig) -> D4PGNetworks:
    """Build the policy, the critic and the atoms (obs_size, action_size: flat vector lengths)."""
    del obs_size  # flax infers input sizes at init.
    return D4PGNetworks(
        policy=DeterministicPolicy(action_size, config.policy_hidden_sizes),
        critic=DistributionalCritic(config.critic_hidden_sizes, config.num_atoms),
        q_atoms=distributional.categorical_support(config.v_min, config.v_max, config.num_atoms),
    )


def make_losses(networks: D4PGNetworks, config: D4PGConfig) -> D4PGLosses:
    """Return the batch losses of steps 1 and 2 above, each a mean over the batch."""
    del config  # The n-step discount is already in the batch.

    def critic_loss(critic_params, target_policy_params, target_critic_params, batch: Transition,
                    stop_target_gradient: bool = True):
        """Distributional n-step TD loss (Barth-Maron et al. 2018, Section 3).

        ``stop_target_gradient=False`` keeps the target's gradient with respect to
        the batch's reward (for MetaL's meta-gradient); the gradient with respect
        to ``critic_params`` is the same, the target coming from the target networks.
        """
        a_t = networks.policy.apply(target_policy_params, batch.obs_t)
        q_logits_t = networks.critic.apply(target_critic_params, batch.obs_t, a_t)
        q_logits_tm1 = networks.critic.apply(critic_params, batch.obs_tm1, batch.action_tm1)
        p_t = jax.nn.softmax(q_logits_t, axis=-1)
        td_loss = jax.vmap(functools.partial(distributional.categorical_td_loss,
                                             stop_target_gradient=stop_target_gradient),
                           in_axes=(0, 0, 0, 0, None))
        return jnp.mean(td_loss(q_logits_tm1, batch.reward_t, batch.discount_t, p_t, networks.q_atoms))

    def policy_loss(policy_params, critic_params, batch: Transition):
        """Minus the mean critic value of the policy's action (Section 3); only the policy learns from it."""
        a_tm1 = networks.policy.apply(policy_params, batch.obs_tm1)
        q_logits = networks.critic.apply(critic_params, batch.obs_tm1, a_tm1)
        return -jnp.mean(distributional.categorical_mean(q_logits, networks.q_atoms))

    return D4PGLosses(critic_loss, policy_loss)


def init_state(networks: D4PGNetworks, optimisers, obs_size: int, action_size: int, key: jax.Array) -> TrainingState:
    """Initialise online parameters at random, targets as copies, optimisers at zero."""
    policy_key, critic_key = jax.random.split(key)
    obs, action = jnp.zeros((1, obs_size)), jnp.zeros((1, action_size))
    return state_of(networks.policy.init(policy_key, obs), networks.critic.init(critic_key, obs, action),
                    optimisers)


def state_of(policy_params, critic_params, optimisers) -> TrainingState:
    """Return the first training state of these online parameters: targets as copies, optimisers at zero."""
    policy_optimiser, critic_optimiser = optimisers
    return TrainingState(
        policy_params=policy_params,
        critic_params=critic_params,
        target_policy_params=policy_params,
        target_critic_params=critic_params,
        policy_opt_state=policy_optimiser.init(policy_params),
        critic_opt_state=critic_optimiser.init(critic_params),
        steps=jnp.zeros((), jnp.int32),
    )


def update_step(losses: D4PGLosses, optimisers, config: D4PGConfig, state: TrainingState,
                batch: Transition, key: jax.Array) -> tuple[TrainingState, dict[str, jax.Array]]:
    """One learner step of Algorithm 1 (learner part); deterministic, ``key`` unused."""
    del key
    policy_optimiser, critic_optimiser = optimisers
    critic_loss, critic_grads = jax.value_and_grad(losses.critic_loss)(
        state.critic_params, state.target_policy_params, state.target_critic_params, batch)
    policy_loss, policy_grads = jax.value_and_grad(losses.policy_loss)(
        state.policy_params, state.critic_params, batch)

    critic_updates, critic_opt_state = critic_optimiser.update(critic_grads, state.critic_opt_state)
    critic_params = optax.apply_updates(state.critic_params, critic_updates)
    policy_updates, policy_opt_state = policy_optimiser.update(policy_grads, state.policy_opt_state)
    policy_params = optax.apply_updates(state.policy_params, policy_updates)

    steps = state.steps + 1
    new_state = TrainingState(
        policy_params=policy_params,
        critic_params=critic_params,
        target_policy_params=optax.periodic_update(
            policy_params, state.target_policy_params, steps, config.target_update_period),
        target_critic_params=optax.periodic_update(
            critic_params, state.target_critic_params, steps, config.target_update_period),
        policy_opt_state=policy_opt_state,
        critic_opt_state=critic_opt_state,
        steps=steps,
    )
    metrics = {
        "critic_loss": critic_loss,
        "policy_loss": policy_loss,
        "critic_grad_norm": optax.global_norm(critic_grads),
        "policy_grad_norm": optax.global_norm(policy_grads),
    }
    return new_state, metrics


def select_action(networks: D4PGNetworks, sigma: float, policy_params, obs: jax.Array, key: jax.Array,
                  explore: bool) -> jax.Array:
    """Return pi(obs), plus N(0, sigma**2) noise when exploring, clipped to [-1, 1]."""
    action = networks.policy.apply(policy_params, obs)
    if explore:
        action = action + sigma * jax.random.normal(key, action.shape)
    return jnp.clip(action, -1.0, 1.0)


class D4PG(JittedAgent):
    """The D4PG agent: the pure functions above, jitted once by ``base.JittedAgent``."""

    config_class = D4PGConfig

    def make_functions(self, obs_size: int, action_size: int, config: D4PGConfig) -> AgentFunctions:
        """Build the networks, optimisers and losses (kept for the agents built on D4PG)."""
        self.networks = make_networks(obs_size, action_size, config)
        self.optimisers = actor_critic_optimisers(config)
        self.losses = make_losses(self.networks, config)
        return AgentFunctions(
            init=functools.partial(init_state, self.networks, self.optimisers, obs_size, action_size),
            update=functools.partial(update_step, self.losses, self.optimisers, config),
            act=functools.partial(select_action, self.networks, config.sigma))
