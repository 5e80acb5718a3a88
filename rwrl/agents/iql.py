"""IQL: Implicit Q-Learning.

Kostrikov, Nair and Levine (2021), https://arxiv.org/abs/2110.06169,
Algorithm 1, with the paper's locomotion hyperparameters. Per learner step,
on a batch of n-step transitions, in the order of the authors' code:

1. Value (Eq. 5): fit V(s) to the tau-expectile of the target critics'
   minimum, ``L_2^tau(min_i Q_target_i(s, a) - V(s))`` with
   ``L_2^tau(u) = |tau - 1(u < 0)| u**2``, tau = 0.7. The expectile makes V
   an in-sample soft maximum over the dataset's actions: no action outside
   the data is ever evaluated.
2. Policy (Eq. 7, advantage-weighted regression): maximise
   ``min(exp(beta * (min_i Q_target_i(s, a) - V(s))), 100) * log pi(a | s)``
   with the new V, beta = 3 (the paper's "temperature" is this inverse one).
3. Critics (Eq. 6): twin Q_i(s, a) regressed onto ``r + discount * V(s')``
   (the n-step reward and gamma**n, 0 after termination, from the batch),
   using the new V; the loss is the sum of both squared errors.
4. Targets: Polyak averaging of the critics, ``target += 0.005 (online - target)``.

Choices (left open by the paper or changed to fit this project):

* Networks: the project's layer-norm torso (``networks.LayerNormMLP``) with
  two hidden layers of 256 rather than the paper's plain ReLU MLP, so every
  agent here handles unnormalised observations the same way.
* The policy is ``networks.GaussianPolicy`` with a tanh-bounded mean and a
  state-dependent stddev (the paper's has a state-independent log stddev); no
  tanh squashing of samples, as the paper. Evaluation acts with the mean.
* Adam at 3e-4 for all three networks, without the paper's cosine decay of
  the policy's rate (its schedule needs the run length, which the agent does
  not know) and without gradient clipping (none in the paper).
* No reward rescaling (the paper rescales D4RL locomotion rewards by
  1000 / return range; suite rewards are already in [0, 1]).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import NamedTuple, Sequence

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from rwrl.agents.base import AgentFunctions, JittedAgent, make_optimiser
from rwrl.agents.capabilities import Capabilities
from rwrl.agents.config import ActorCriticConfig, OfflineBatchConfig, PolyakConfig, require_positive, require_sizes
from rwrl.agents.dmpo import gaussian_log_prob
from rwrl.agents.networks import GaussianPolicy, LayerNormMLP, gaussian_action
from rwrl.agents.types import Transition


@dataclasses.dataclass(frozen=True)
class IQLConfig(ActorCriticConfig, OfflineBatchConfig, PolyakConfig):
    """IQL hyperparameters (the paper's locomotion settings; see the module docstring)."""

    #: hidden layer sizes of the value network.
    value_hidden_sizes: tuple[int, ...] = (256, 256)
    #: Adam learning rate of the value network.
    value_learning_rate: float = 3e-4
    #: tau of the expectile value loss, in (0, 1); 0.5 is the mean (SARSA's V).
    expectile: float = 0.7
    #: beta, the inverse temperature of the advantage weights.
    beta: float = 3.0
    #: upper clip of the advantage weights.
    max_weight: float = 100.0
    # The paper's two hidden layers and learning rate for the policy and Q networks too.
    policy_hidden_sizes: tuple[int, ...] = (256, 256)
    critic_hidden_sizes: tuple[int, ...] = (256, 256)
    policy_learning_rate: float = 3e-4
    critic_learning_rate: float = 3e-4

    def __post_init__(self):
        super().__post_init__()
        require_sizes(self, "value_hidden_sizes")
        require_positive(self, "policy_learning_rate", "critic_learning_rate", "value_learning_rate", "beta",
                         "max_weight")
        if not 0.0 < self.expectile < 1.0:
            raise ValueError(f"expectile={self.expectile!r}: must be in (0, 1)")


class ScalarCritic(nn.Module):
    """Q(s, a) -> () through the layer-norm torso (actions clipped to [-1, 1], as the C51 critic)."""

    hidden_sizes: Sequence[int]

    @nn.compact
    def __call__(self, obs: jax.Array, action: jax.Array) -> jax.Array:
        x = jnp.concatenate([obs, jnp.clip(action, -1.0, 1.0)], axis=-1)
        return nn.Dense(1)(LayerNormMLP(self.hidden_sizes)(x))[..., 0]


class StateValue(nn.Module):
    """V(s) -> () through the layer-norm torso."""

    hidden_sizes: Sequence[int]

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        return nn.Dense(1)(LayerNormMLP(self.hidden_sizes)(obs))[..., 0]


class IQLNetworks(NamedTuple):
    policy: GaussianPolicy
    critic: ScalarCritic  # applied to stacked twin parameters with vmap
    value: StateValue


class TrainingState(NamedTuple):
    """Everything the learner changes; a pytree, saved whole in checkpoints."""

    policy_params: dict
    critic_params: dict  # twin: every leaf has a leading axis of 2
    target_critic_params: dict
    value_params: dict
    policy_opt_state: optax.OptState
    critic_opt_state: optax.OptState
    value_opt_state: optax.OptState
    steps: jax.Array  # () int32


def expectile_loss(diff: jax.Array, expectile: float) -> jax.Array:
    """Return L_2^tau(u) = |tau - 1(u < 0)| * u**2 of Kostrikov et al. (2021), Eq. 5, for one () u."""
    chex.assert_rank(diff, 0)
    weight = jnp.where(diff < 0, 1.0 - expectile, expectile)
    return weight * jnp.square(diff)


def awr_weight(q: jax.Array, v: jax.Array, beta: float, max_weight: float) -> jax.Array:
    """Return min(exp(beta * (q - v)), max_weight), the AWR weight of Eq. 7, without gradient."""
    return jax.lax.stop_gradient(jnp.minimum(jnp.exp(beta * (q - v)), max_weight))


def _twin_q(networks: IQLNetworks, critic_params, obs: jax.Array, action: jax.Array) -> jax.Array:
    """Return (2, B) Q values of both critics."""
    return jax.vmap(networks.critic.apply, in_axes=(0, None, None))(critic_params, obs, action)


def value_loss(networks: IQLNetworks, config: IQLConfig, value_params, target_critic_params, batch: Transition):
    """Step 1: the batch mean of the expectile loss of min_i Q_target_i(s, a) - V(s)."""
    q = jnp.min(_twin_q(networks, target_critic_params, batch.obs_tm1, batch.action_tm1), axis=0)
    v = networks.value.apply(value_params, batch.obs_tm1)
    diff = jax.lax.stop_gradient(q) - v
    return jnp.mean(jax.vmap(expectile_loss, in_axes=(0, None))(diff, config.expectile))


def policy_loss(networks: IQLNetworks, config: IQLConfig, policy_params, value_params, target_critic_params,
                batch: Transition):
    """Step 2: minus the AWR-weighted log-likelihood of the dataset actions."""
    q = jnp.min(_twin_q(networks, target_critic_params, batch.obs_tm1, batch.action_tm1), axis=0)
    v = networks.value.apply(value_params, batch.obs_tm1)
    weight = awr_weight(q, v, config.beta, config.max_weight)
    mean, stddev = networks.policy.apply(policy_params, batch.obs_tm1)
    return -jnp.mean(weight * gaussian_log_prob(batch.action_tm1, mean, stddev)), weight


def critic_loss(networks: IQLNetworks, critic_params, value_params, batch: Transition):
    """Step 3: the sum over both critics of the batch mean of (Q_i(s, a) - (r + discount V(s')))**2."""
    target = batch.reward_t + batch.discount_t * networks.value.apply(value_params, batch.obs_t)
    q = _twin_q(networks, critic_params, batch.obs_tm1, batch.action_tm1)
    return jnp.sum(jnp.mean(jnp.square(q - jax.lax.stop_gradient(target)), axis=1))


def make_networks(action_size: int, config: IQLConfig) -> IQLNetworks:
    return IQLNetworks(GaussianPolicy(action_size, config.policy_hidden_sizes, tanh_mean=True),
                       ScalarCritic(config.critic_hidden_sizes), StateValue(config.value_hidden_sizes))


def make_optimisers(config: IQLConfig) -> tuple[optax.GradientTransformation, ...]:
    """Return (policy, critic, value) Adam optimisers, without clipping (none in the paper)."""
    return tuple(make_optimiser(rate) for rate in
                 (config.policy_learning_rate, config.critic_learning_rate, config.value_learning_rate))


def init_state(networks: IQLNetworks, optimisers, obs_size: int, action_size: int, key: jax.Array) -> TrainingState:
    """Initialise every network at random (the two critics independently), targets as copies."""
    policy_key, critic_key, value_key = jax.random.split(key, 3)
    obs, action = jnp.zeros((1, obs_size)), jnp.zeros((1, action_size))
    policy_params = networks.policy.init(policy_key, obs)
    critic_params = jax.vmap(networks.critic.init, in_axes=(0, None, None))(
        jax.random.split(critic_key), obs, action)
    value_params = networks.value.init(value_key, obs)
    policy_opt, critic_opt, value_opt = optimisers
    return TrainingState(policy_params, critic_params, critic_params, value_params,
                         policy_opt.init(policy_params), critic_opt.init(critic_params),
                         value_opt.init(value_params), jnp.zeros((), jnp.int32))


def _step(optimiser, grads, opt_state, params):
    updates, opt_state = optimiser.update(grads, opt_state)
    return optax.apply_updates(params, updates), opt_state


def update_step(networks: IQLNetworks, optimisers, config: IQLConfig, state: TrainingState,
                batch: Transition, key: jax.Array) -> tuple[TrainingState, dict[str, jax.Array]]:
    """One learner step of Algorithm 1 (steps 1-4 above, in order); deterministic, ``key`` unused."""
    del key
    policy_opt, critic_opt, value_opt = optimisers
    v_loss, v_grads = jax.value_and_grad(functools.partial(value_loss, networks, config))(
        state.value_params, state.target_critic_params, batch)
    value_params, value_opt_state = _step(value_opt, v_grads, state.value_opt_state, state.value_params)
    (p_loss, weight), p_grads = jax.value_and_grad(functools.partial(policy_loss, networks, config), has_aux=True)(
        state.policy_params, value_params, state.target_critic_params, batch)
    policy_params, policy_opt_state = _step(policy_opt, p_grads, state.policy_opt_state, state.policy_params)
    q_loss, q_grads = jax.value_and_grad(functools.partial(critic_loss, networks))(
        state.critic_params, value_params, batch)
    critic_params, critic_opt_state = _step(critic_opt, q_grads, state.critic_opt_state, state.critic_params)
    target = optax.incremental_update(critic_params, state.target_critic_params, config.target_polyak)
    new_state = TrainingState(policy_params, critic_params, target, value_params, policy_opt_state,
                              critic_opt_state, value_opt_state, state.steps + 1)
    metrics = {"value_loss": v_loss, "policy_loss": p_loss, "critic_loss": q_loss,
               "weight_mean": jnp.mean(weight)}
    return new_state, metrics


class IQL(JittedAgent):
    """The IQL agent: the pure functions above, jitted once by ``base.JittedAgent``."""

    capabilities = Capabilities(offline=True)
    config_class = IQLConfig

    def make_functions(self, obs_size: int, action_size: int, config: IQLConfig) -> AgentFunctions:
        """Build the networks and optimisers."""
        self.networks = make_networks(action_size, config)
        optimisers = make_optimisers(config)
        return AgentFunctions(
            init=functools.partial(init_state, self.networks, optimisers, obs_size, action_size),
            update=functools.partial(update_step, self.networks, optimisers, config),
            act=functools.partial(gaussian_action, self.networks.policy))
