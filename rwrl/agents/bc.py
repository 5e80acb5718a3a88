"""BC: behaviour cloning, the offline baseline published with the RL Unplugged datasets.

Gulcehre et al. (2020), "RL Unplugged" (https://arxiv.org/abs/2006.13888),
Section 5: regress the policy onto the dataset's actions. Per learner step,
on a batch of transitions: minimise the squared error between the policy's
action pi(s_tm1) and the dataset's action a_tm1, summed over action
dimensions and averaged over the batch; one Adam step with global-norm
clipping. Rewards, discounts and next observations are not used.

Choices:

* Deterministic regression (mean squared error), not a Gaussian maximum
  likelihood: the behaviour data here come from a deterministic policy plus
  Gaussian noise, whose mean is what the squared error recovers, and the
  evaluation acts with that mean anyway. The policy is the D4PG actor (tanh
  output, ``networks.DeterministicPolicy``), so actions stay in (-1, 1).
* Acting returns pi(obs) whether exploring or not: BC never collects data.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
import optax

from rwrl.agents.base import AgentFunctions, JittedAgent, make_optimiser
from rwrl.agents.capabilities import Capabilities
from rwrl.agents.config import GradientClipConfig, OfflineBatchConfig, PolicyNetConfig, require_positive
from rwrl.agents.networks import DeterministicPolicy
from rwrl.agents.types import Transition


@dataclasses.dataclass(frozen=True)
class BCConfig(PolicyNetConfig, GradientClipConfig, OfflineBatchConfig):
    """BC hyperparameters; of the batch fields BC reads only batch_size (the replay needs n and a discount)."""

    #: Adam learning rate.
    learning_rate: float = 1e-4

    def __post_init__(self):
        super().__post_init__()
        require_positive(self, "learning_rate")


class TrainingState(NamedTuple):
    """Everything the learner changes; a pytree, saved whole in checkpoints."""

    policy_params: dict
    policy_opt_state: optax.OptState
    steps: jax.Array  # () int32, learner steps taken


def bc_loss(action_pred: jax.Array, action_tm1: jax.Array) -> jax.Array:
    """Return sum_d (action_pred[d] - action_tm1[d])**2 for one example ((A,) arrays)."""
    chex.assert_rank([action_pred, action_tm1], 1)
    chex.assert_equal_shape([action_pred, action_tm1])
    return jnp.sum(jnp.square(action_pred - action_tm1))


def init_state(policy: DeterministicPolicy, optimiser, obs_size: int, key: jax.Array) -> TrainingState:
    """Initialise the policy at random and the optimiser at zero."""
    params = policy.init(key, jnp.zeros((1, obs_size)))
    return TrainingState(params, optimiser.init(params), jnp.zeros((), jnp.int32))


def select_action(policy: DeterministicPolicy, params, obs: jax.Array, key: jax.Array, explore: bool) -> jax.Array:
    """Return pi(obs) in (-1, 1), exploring or not (BC never collects data); ``key`` unused."""
    del key, explore
    return policy.apply(params, obs)


def update_step(policy: DeterministicPolicy, optimiser, state: TrainingState, batch: Transition,
                key: jax.Array) -> tuple[TrainingState, dict[str, jax.Array]]:
    """One Adam step on the batch mean of ``bc_loss``; deterministic, ``key`` unused."""
    del key

    def loss_fn(params):
        predicted = policy.apply(params, batch.obs_tm1)
        return jnp.mean(jax.vmap(bc_loss)(predicted, batch.action_tm1))

    loss, grads = jax.value_and_grad(loss_fn)(state.policy_params)
    updates, opt_state = optimiser.update(grads, state.policy_opt_state)
    params = optax.apply_updates(state.policy_params, updates)
    metrics = {"policy_loss": loss, "policy_grad_norm": optax.global_norm(grads)}
    return TrainingState(params, opt_state, state.steps + 1), metrics


class BC(JittedAgent):
    """The BC agent: the pure functions above, jitted once by ``base.JittedAgent``."""

    capabilities = Capabilities(offline=True)
    config_class = BCConfig

    def make_functions(self, obs_size: int, action_size: int, config: BCConfig) -> AgentFunctions:
        """Build the policy and its optimiser: global-norm clipping, then Adam."""
        self.policy = DeterministicPolicy(action_size, config.policy_hidden_sizes)
        optimiser = make_optimiser(config.learning_rate, config.max_gradient_norm)
        return AgentFunctions(
            init=functools.partial(init_state, self.policy, optimiser, obs_size),
            update=functools.partial(update_step, self.policy, optimiser),
            act=functools.partial(select_action, self.policy))
