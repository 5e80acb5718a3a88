"""Flax networks for the agents: torso, deterministic and Gaussian policies, C51 critic.

The architecture follows acme's control-suite agents (Hoffman et al. 2020,
"Acme", https://arxiv.org/abs/2006.00979): a first dense layer followed by
layer norm and tanh, which keeps the features bounded whatever the scale of
the raw observations (the suite does not normalise them), then dense + ELU
layers.

Shapes: networks take (..., obs_size) observations and (..., action_size)
actions with any leading batch axes.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

# Uniform fan-in variance scaling, as acme's LayerNormMLP.
_HIDDEN_INIT = nn.initializers.variance_scaling(1.0, "fan_in", "uniform")
# Output layers start near zero so that the first policy is near the centre of
# the action range and the first critic near uniform over atoms.
_OUTPUT_INIT = nn.initializers.variance_scaling(1e-4, "fan_in", "uniform")


class LayerNormMLP(nn.Module):
    """Dense -> LayerNorm -> tanh, then (Dense -> ELU) for each further size."""

    hidden_sizes: Sequence[int]

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = nn.Dense(self.hidden_sizes[0], kernel_init=_HIDDEN_INIT)(x)
        x = jnp.tanh(nn.LayerNorm()(x))
        for size in self.hidden_sizes[1:]:
            x = nn.elu(nn.Dense(size, kernel_init=_HIDDEN_INIT)(x))
        return x


class DeterministicPolicy(nn.Module):
    """The D4PG actor: observation -> action in (-1, 1) through a tanh."""

    action_size: int
    hidden_sizes: Sequence[int]

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        h = LayerNormMLP(self.hidden_sizes)(obs)
        return jnp.tanh(nn.Dense(self.action_size, kernel_init=_OUTPUT_INIT)(h))


class GaussianPolicy(nn.Module):
    """The MPO policy: observation -> (mean, stddev) of a diagonal Gaussian.

    The mean is unbounded by default (MPO's action penalisation keeps it in
    range, and the environment clips); ``tanh_mean`` bounds it to (-1, 1)
    instead (acme's ``tanh_mean`` option). The stddev is ``softplus(x) *
    init_scale / softplus(0) + min_scale``, so it starts at about
    ``init_scale`` and never reaches zero (acme's MultivariateNormalDiagHead).
    """

    action_size: int
    hidden_sizes: Sequence[int]
    init_scale: float = 0.7
    min_scale: float = 1e-6
    tanh_mean: bool = False

    @nn.compact
    def __call__(self, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        h = LayerNormMLP(self.hidden_sizes)(obs)
        mean = nn.Dense(self.action_size, kernel_init=_OUTPUT_INIT)(h)
        if self.tanh_mean:
            mean = jnp.tanh(mean)
        raw_scale = nn.Dense(self.action_size, kernel_init=_OUTPUT_INIT)(h)
        stddev = jax.nn.softplus(raw_scale) * self.init_scale / jax.nn.softplus(0.0)
        return mean, stddev + self.min_scale


def gaussian_action(policy: GaussianPolicy, params, obs: jax.Array, key: jax.Array,
                    explore: bool) -> jax.Array:
    """Return a sample of the Gaussian ``policy`` (explore) or its mean (evaluate), clipped to [-1, 1]."""
    mean, stddev = policy.apply(params, obs)
    action = mean + stddev * jax.random.normal(key, mean.shape) if explore else mean
    return jnp.clip(action, -1.0, 1.0)


class DistributionalCritic(nn.Module):
    """The C51 critic: (observation, action) -> logits over K atoms.

    Actions are clipped to [-1, 1] first: a Gaussian policy's samples may fall
    outside, but the environment only ever executes the clipped action.
    """

    hidden_sizes: Sequence[int]
    num_atoms: int

    @nn.compact
    def __call__(self, obs: jax.Array, action: jax.Array) -> jax.Array:
        x = jnp.concatenate([obs, jnp.clip(action, -1.0, 1.0)], axis=-1)
        h = LayerNormMLP(self.hidden_sizes)(x)
        return nn.Dense(self.num_atoms, kernel_init=_OUTPUT_INIT)(h)
