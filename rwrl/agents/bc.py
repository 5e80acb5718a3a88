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
import numpy as np
import optax

from rwrl.agents.networks import DeterministicPolicy
from rwrl.agents.types import Transition, validate_offline_config


@dataclasses.dataclass(frozen=True)
class BCConfig:
    """BC hyperparameters."""

    #: hidden layer sizes of the policy network.
    policy_hidden_sizes: tuple[int, ...] = (256, 256, 256)
    #: transitions per learner step.
    batch_size: int = 256
    #: n of the n-step transitions the offline replay builds (BC ignores all but s and a).
    n_step: int = 1
    #: per-step discount (unused by the loss; the replay needs one).
    discount: float = 0.99
    #: Adam learning rate.
    learning_rate: float = 1e-4
    #: gradients are clipped to this global norm (acme's default).
    max_gradient_norm: float = 40.0

    def __post_init__(self):
        validate_offline_config(self)
        if not self.max_gradient_norm > 0:
            raise ValueError(f"max_gradient_norm={self.max_gradient_norm!r}: must be > 0")


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


def make_optimiser(config: BCConfig) -> optax.GradientTransformation:
    """Return global-norm clipping, then Adam."""
    return optax.chain(optax.clip_by_global_norm(config.max_gradient_norm),
                       optax.adam(config.learning_rate))


def init_state(policy: DeterministicPolicy, optimiser, obs_size: int, key: jax.Array) -> TrainingState:
    """Initialise the policy at random and the optimiser at zero."""
    params = policy.init(key, jnp.zeros((1, obs_size)))
    return TrainingState(params, optimiser.init(params), jnp.zeros((), jnp.int32))


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


class BC:
    """The BC agent: ``init``, ``act`` and ``update`` around the pure functions above.

    Args:
        obs_size: length of the flat observation.
        action_size: length of the action; actions are in [-1, 1].
        config: hyperparameters.
    """

    def __init__(self, obs_size: int, action_size: int, config: BCConfig = BCConfig()):
        self.config = config
        self.obs_size, self.action_size = obs_size, action_size
        self.policy = DeterministicPolicy(action_size, config.policy_hidden_sizes)
        optimiser = make_optimiser(config)
        self._init = jax.jit(functools.partial(init_state, self.policy, optimiser, obs_size))
        self._update = jax.jit(functools.partial(update_step, self.policy, optimiser))
        self._act = jax.jit(self.policy.apply)

    def init(self, key: jax.Array) -> TrainingState:
        """Return the initial training state for ``key``."""
        return self._init(key)

    def act(self, state: TrainingState, obs: np.ndarray, key: jax.Array, explore: bool) -> np.ndarray:
        """Return (B, action_size) float32 actions pi(obs) in (-1, 1); ``key``, ``explore`` unused."""
        del key, explore
        return np.asarray(self._act(state.policy_params, jnp.asarray(obs, jnp.float32)))

    def update(self, state: TrainingState, batch: Transition, key: jax.Array):
        """Return (new state, metrics) after one learner step on ``batch``."""
        return self._update(state, batch, key)
