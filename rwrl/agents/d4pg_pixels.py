"""D4PG from pixels: DrQ's convolutional encoder and random shifts under D4PG's learner.

The model-free pixel baseline: D4PG (``rwrl.agents.d4pg``; Barth-Maron et al.
2018) learning from stacked camera frames with the encoder and the image
augmentation of DrQ (Kostrikov, Yarats and Fergus 2020, "Image Augmentation
Is All You Need", https://arxiv.org/abs/2004.13649). Per learner step, on a
batch of n-step transitions of uint8 images:

1. Random shift (DrQ's augmentation with K = M = 1: one shifted copy of each
   observation, no averaging over copies): each image of
   ``obs_tm1`` and of ``obs_t`` is padded by ``shift_pad`` (4) pixels,
   replicating its border, and cropped back to its size at a random offset,
   one offset per image and all its stacked frames, drawn independently for
   ``obs_tm1`` and ``obs_t`` (drq's replay buffer: ``nn.ReplicationPad2d
   (image_pad)`` then ``kornia.augmentation.RandomCrop``, applied to obs and
   next obs each).
2. Critic: D4PG's distributional n-step loss on the shifted images (step 1
   of ``rwrl.agents.d4pg``); its gradient trains the encoder.
3. Actor: D4PG's deterministic policy gradient through the critic's mean, on
   the shifted ``obs_tm1``, with the encoder's convolutions behind a stop
   gradient: the actor never trains them (drq.py, ``update_actor_and_alpha``:
   "detach conv filters, so we don't update them with the actor loss").
4. Adam steps and the periodic hard copy into the targets, as D4PG
   (``d4pg.update_step``, which this module calls after step 1).

The encoder is drq.py's ``Encoder`` (denisyarats/drq, read 2026-12-06): pixel
values / 255, four 3 x 3 convolutions of 32 filters, stride 2 then 1, no
padding, each followed by ReLU (84 x 84 -> 41, 39, 37, 35), flattened, then
a head Linear(50) -> LayerNorm -> tanh. As in drq.py the convolutions are
one set, the critic's (the actor's are tied to them,
``copy_conv_weights_from``), while the actor and the critic each have their
own head (a Linear(50) -> LayerNorm -> tanh of their own); the critic's and
the actor's D4PG torsos (``rwrl.agents.networks``) take the head's 50
features. Initialisation as drq's ``utils.weight_init``: orthogonal, with
the ReLU gain sqrt(2) for the convolutions, biases zero. (The stored copy of
denisyarats/drq lacks ``replay_buffer.py`` and ``utils.py``; the pad-and-crop
and the initialisation are read from copies of them in other repositories.)

Where it differs from DrQ, and why:

* D4PG's learner, not SAC's: a deterministic policy with Gaussian
  exploration noise, a C51 critic, n-step returns, the hard target copy every
  ``target_update_period`` steps (DrQ: soft updates with tau 0.01 every 2
  steps, actor every 2 steps), and both losses taken at the step's starting
  parameters (DrQ steps the actor after the critic). The target policy acts
  on the target critic's convolutions (the targets are a copy of everything
  at the last period).
* No action repeat: rwrl's envs have no action-repeat option, so each env
  step is one control step (DrQ repeats each action 8 times on cartpole,
  after PlaNet; a run here sees 8 times as many steps per second of
  simulated time, and its episodes are 1000 agent steps long, not 125).
* The replay keeps both observations of a transition as uint8 images, as
  drq's (``obses`` and ``next_obses``): 2 x 84 x 84 x 9 bytes = 127 KB per
  transition at DrQ's size, hence ``replay_capacity`` 100,000 (drq's
  ``replay_buffer_capacity``; 12.7 GB when full), not D4PG's 10**6.

The other hyperparameters are D4PG's (``D4PGConfig``: learning rates 1e-4,
batch 256, 5-step returns, sigma 0.3; DrQ: lr 1e-3, batch 128 in drq's
config.yaml, 512 in the paper).

Shapes: images (B, H, W, C) uint8, C = 3 x the frame stack (the env's
(H, W, 3k) pixels, oldest frame first); the replay and the loop hand them
flattened, (B, H * W * C), and they are reshaped here. The env gives them
with ``observation_mode='pixels'``, which ``rwrl run`` sets for this agent's
``pixels`` capability (frame stack 3, DrQ's).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import NamedTuple, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from rwrl.agents import d4pg, distributional
from rwrl.agents.base import AgentFunctions, JittedAgent, actor_critic_optimisers
from rwrl.agents.capabilities import Capabilities
from rwrl.agents.config import require_int
from rwrl.agents.d4pg import D4PGConfig, D4PGLosses, TrainingState
from rwrl.agents.networks import DeterministicPolicy, DistributionalCritic
from rwrl.agents.types import Transition

#: filters of each convolution (drq.py ``Encoder.num_filters``).
CONV_FILTERS = 32
#: the stride of each 3 x 3 convolution, first to last (drq.py: 2, then 1, 1, 1).
CONV_STRIDES = (2, 1, 1, 1)
#: the smallest image side the four convolutions leave at least one pixel of: (15 - 3) // 2 + 1 - 6 = 1.
MIN_IMAGE_SIDE = 15
# drq's utils.weight_init: orthogonal, ReLU gain for the convolutions, biases zero (flax's default).
_CONV_INIT = nn.initializers.orthogonal(math.sqrt(2.0))
_HEAD_INIT = nn.initializers.orthogonal(1.0)


@dataclasses.dataclass(frozen=True)
class D4PGPixelsConfig(D4PGConfig):
    """D4PG's hyperparameters, DrQ's encoder and shift, and a replay capped for images."""

    # Two uint8 images per transition (127 KB at 84 x 84 x 9): 100,000, drq's
    # replay_buffer_capacity, take 12.7 GB when full; D4PG's 10**6 would take 127 GB.
    replay_capacity: int = 100_000
    #: size of the encoder head's output, the features the actor's and the critic's torsos take
    #: (drq's ``feature_dim``).
    feature_size: int = 50
    #: pixels of replicated border of the random shift (drq's ``image_pad``): each image moves
    #: by up to this many pixels each way; 0: no augmentation.
    shift_pad: int = 4

    def __post_init__(self):
        super().__post_init__()
        require_int(self, "feature_size")
        require_int(self, "shift_pad", 0)


def image_shape(obs_size) -> tuple[int, int, int]:
    """Return ``obs_size`` as an image shape (H, W, C), or raise a ValueError saying what is needed."""
    shape = tuple(obs_size) if isinstance(obs_size, (tuple, list)) else (obs_size,)
    if len(shape) != 3 or any(not isinstance(n, (int, np.integer)) or n < 1 for n in shape):
        raise ValueError(f"d4pg-pixels learns from images: obs_size must be the image shape "
                         f"(H, W, C), got {obs_size!r} (make its env with observation_mode='pixels')")
    if min(shape[:2]) < MIN_IMAGE_SIDE:
        raise ValueError(f"image shape {shape}: d4pg-pixels' convolutions need H and W >= "
                         f"{MIN_IMAGE_SIDE} pixels")
    return tuple(int(n) for n in shape)


# ------------------------------------------------------------------ augmentation


def shift_image(image: jax.Array, dy: jax.Array, dx: jax.Array, pad: int) -> jax.Array:
    """Return ``image`` (H, W, C) moved down by ``dy`` and right by ``dx`` pixels, borders replicated.

    DrQ's pad-and-crop: the image padded by ``pad`` replicated pixels, cropped
    back to (H, W) at offset (pad - dy, pad - dx); ``out[i, j] = image[i - dy,
    j - dx]`` with indices clipped to the image. |dy|, |dx| <= ``pad``.
    """
    padded = jnp.pad(image, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
    return jax.lax.dynamic_slice(padded, (pad - dy, pad - dx, 0), image.shape)


def random_shift(images: jax.Array, key: jax.Array, pad: int) -> jax.Array:
    """Return each image of ``images`` (B, H, W, C) shifted by its own uniform (dy, dx) in [-pad, pad]^2.

    The (2 pad + 1)^2 offsets of DrQ's random crop of the padded image, drawn
    per image; the stacked frames of an image move together.
    """
    shifts = jax.random.randint(key, (images.shape[0], 2), -pad, pad + 1)
    return jax.vmap(shift_image, in_axes=(0, 0, 0, None))(images, shifts[:, 0], shifts[:, 1], pad)


# ------------------------------------------------------------------ networks


class ConvEncoder(nn.Module):
    """drq.py's convolutions: (..., H, W, C) uint8 images -> (..., F) flattened ReLU features."""

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        x = obs.astype(jnp.float32) / 255.0
        for stride in CONV_STRIDES:
            x = nn.relu(nn.Conv(CONV_FILTERS, (3, 3), strides=(stride, stride), padding="VALID",
                                kernel_init=_CONV_INIT)(x))
        return x.reshape(*x.shape[:-3], -1)


class FeatureHead(nn.Module):
    """drq.py's encoder head: Linear -> LayerNorm -> tanh, (..., F) -> (..., feature_size)."""

    feature_size: int

    @nn.compact
    def __call__(self, conv: jax.Array) -> jax.Array:
        return jnp.tanh(nn.LayerNorm()(nn.Dense(self.feature_size, kernel_init=_HEAD_INIT)(conv)))


class PixelCritic(nn.Module):
    """The critic of images: the shared convolutions, its own head, D4PG's C51 critic; logits (..., K)."""

    feature_size: int
    hidden_sizes: Sequence[int]
    num_atoms: int

    def setup(self):
        self.encoder = ConvEncoder()
        self.head = FeatureHead(self.feature_size)
        self.critic = DistributionalCritic(self.hidden_sizes, self.num_atoms)

    def __call__(self, obs: jax.Array, action: jax.Array) -> jax.Array:
        return self.from_conv(self.encoder(obs), action)

    def encode(self, obs: jax.Array) -> jax.Array:
        """Return the convolutions' features of ``obs``, the input of both heads."""
        return self.encoder(obs)

    def from_conv(self, conv: jax.Array, action: jax.Array) -> jax.Array:
        """Return the logits from the convolutions' features (the actor's loss: behind a stop gradient)."""
        return self.critic(self.head(conv), action)


class PixelPolicy(nn.Module):
    """The actor: its own head on the critic's convolutions' features, then D4PG's policy; (..., A)."""

    action_size: int
    hidden_sizes: Sequence[int]
    feature_size: int

    @nn.compact
    def __call__(self, conv: jax.Array) -> jax.Array:
        return DeterministicPolicy(self.action_size, self.hidden_sizes)(FeatureHead(self.feature_size)(conv))


class D4PGPixelsNetworks(NamedTuple):
    """The flax modules, the critic's support and the image shape."""

    policy: PixelPolicy
    critic: PixelCritic
    q_atoms: jax.Array  # (K,)
    obs_shape: tuple[int, int, int]  # (H, W, C)


def make_networks(obs_shape: tuple[int, int, int], action_size: int,
                  config: D4PGPixelsConfig) -> D4PGPixelsNetworks:
    """Build the actor, the critic (which holds the convolutions) and the atoms."""
    return D4PGPixelsNetworks(
        policy=PixelPolicy(action_size, config.policy_hidden_sizes, config.feature_size),
        critic=PixelCritic(config.feature_size, config.critic_hidden_sizes, config.num_atoms),
        q_atoms=distributional.categorical_support(config.v_min, config.v_max, config.num_atoms),
        obs_shape=obs_shape,
    )


def as_images(obs: jax.Array, obs_shape: tuple[int, int, int]) -> jax.Array:
    """Return (B, H * W * C) or (B, H, W, C) observations as (B, H, W, C)."""
    return obs.reshape(obs.shape[0], *obs_shape)


# ------------------------------------------------------------------ learning


def make_losses(networks: D4PGPixelsNetworks, config: D4PGPixelsConfig) -> D4PGLosses:
    """Return steps 2 and 3 above, each a mean over a batch of shifted (B, H, W, C) images."""
    del config  # The n-step discount is already in the batch.
    critic, policy = networks.critic, networks.policy
    td_loss = jax.vmap(distributional.categorical_td_loss, in_axes=(0, 0, 0, 0, None))

    def critic_loss(critic_params, target_policy_params, target_critic_params, batch: Transition):
        """D4PG's distributional n-step TD loss (Barth-Maron et al. 2018, Section 3); it trains the encoder."""
        conv_t = critic.apply(target_critic_params, batch.obs_t, method=PixelCritic.encode)
        a_t = policy.apply(target_policy_params, conv_t)
        q_logits_t = critic.apply(target_critic_params, conv_t, a_t, method=PixelCritic.from_conv)
        q_logits_tm1 = critic.apply(critic_params, batch.obs_tm1, batch.action_tm1)
        p_t = jax.nn.softmax(q_logits_t, axis=-1)
        return jnp.mean(td_loss(q_logits_tm1, batch.reward_t, batch.discount_t, p_t, networks.q_atoms))

    def policy_loss(policy_params, critic_params, batch: Transition):
        """Minus the critic's mean at the policy's action (D4PG, Section 3), convolutions not trained (DrQ)."""
        conv = jax.lax.stop_gradient(critic.apply(critic_params, batch.obs_tm1, method=PixelCritic.encode))
        q_logits = critic.apply(critic_params, conv, policy.apply(policy_params, conv),
                                method=PixelCritic.from_conv)
        return -jnp.mean(distributional.categorical_mean(q_logits, networks.q_atoms))

    return D4PGLosses(critic_loss, policy_loss)


def init_state(networks: D4PGPixelsNetworks, optimisers, action_size: int, key: jax.Array) -> TrainingState:
    """Initialise online parameters at random (the actor on the critic's features), targets as copies."""
    policy_key, critic_key = jax.random.split(key)
    obs = jnp.zeros((1, *networks.obs_shape), jnp.uint8)
    critic_params = networks.critic.init(critic_key, obs, jnp.zeros((1, action_size)))
    conv = networks.critic.apply(critic_params, obs, method=PixelCritic.encode)
    return d4pg.state_of(networks.policy.init(policy_key, conv), critic_params, optimisers)


def update_step(losses: D4PGLosses, optimisers, config: D4PGPixelsConfig, obs_shape: tuple[int, int, int],
                state: TrainingState, batch: Transition, key: jax.Array) -> tuple[TrainingState, dict]:
    """One learner step: DrQ's random shifts of ``obs_tm1`` and ``obs_t`` (step 1), then D4PG's."""
    key_tm1, key_t = jax.random.split(key)
    batch = batch._replace(
        obs_tm1=random_shift(as_images(batch.obs_tm1, obs_shape), key_tm1, config.shift_pad),
        obs_t=random_shift(as_images(batch.obs_t, obs_shape), key_t, config.shift_pad))
    return d4pg.update_step(losses, optimisers, config, state, batch, key)


def select_action(networks: D4PGPixelsNetworks, sigma: float, params, obs: jax.Array, key: jax.Array,
                  explore: bool) -> jax.Array:
    """Return pi(obs) for unshifted images, plus N(0, sigma**2) noise when exploring, clipped to [-1, 1].

    ``params``: (policy_params, critic_params), the actor acting on the critic's convolutions.
    """
    policy_params, critic_params = params
    conv = networks.critic.apply(critic_params, as_images(obs, networks.obs_shape), method=PixelCritic.encode)
    action = networks.policy.apply(policy_params, conv)
    if explore:
        action = action + sigma * jax.random.normal(key, action.shape)
    return jnp.clip(action, -1.0, 1.0)


class D4PGPixels(JittedAgent):
    """D4PG from pixels: the pure functions above, jitted once by ``base.JittedAgent``.

    Args:
        obs_size: the image shape (H, W, C) (``image_shape`` checks it).
        action_size: length of the action; actions are in [-1, 1].
        config: hyperparameters; None: ``D4PGPixelsConfig()``.
    """

    config_class = D4PGPixelsConfig
    capabilities = Capabilities(pixels=True)

    def make_functions(self, obs_size, action_size: int, config: D4PGPixelsConfig) -> AgentFunctions:
        """Build the networks, optimisers and losses for images of shape ``obs_size``."""
        obs_shape = image_shape(obs_size)
        self.networks = make_networks(obs_shape, action_size, config)
        self.optimisers = actor_critic_optimisers(config)
        self.losses = make_losses(self.networks, config)
        return AgentFunctions(
            init=functools.partial(init_state, self.networks, self.optimisers, action_size),
            update=functools.partial(update_step, self.losses, self.optimisers, config, obs_shape),
            act=functools.partial(select_action, self.networks, config.sigma))

    def act(self, state: TrainingState, obs: np.ndarray, key: jax.Array, explore: bool) -> np.ndarray:
        """Return (B, action_size) float32 actions for (B, H * W * C) or (B, H, W, C) images.

        The act function gets the critic's parameters too (the convolutions are
        the critic's), and uint8 images stay uint8 on their way to it.
        """
        params = (state.policy_params, state.critic_params)
        return np.asarray(self._act(params, jnp.asarray(obs), key, explore=bool(explore)))

    def update_many(self, state: TrainingState, batches: Transition, keys: jax.Array) -> tuple[TrainingState, dict]:
        """Return (new state, the last step's metrics) after K learner steps, one compiled ``update`` each.

        Not the shell's ``lax.scan``: XLA on CPU runs convolutions in a loop
        body far slower than outside one (jax-ml/jax#12868, open); here one
        update at batch 16 of 32 x 32 x 9 images took 23 ms alone and 221 ms
        per step scanned (K = 8, 2-core machine, 2026-12-06). Each step costs
        far more than a dispatch, so K calls lose nothing. The same steps,
        batches and keys as K ``update`` calls.
        """
        metrics = {}
        for k in range(len(keys)):
            state, metrics = self._update(state, batches.at(k), keys[k])
        return state, metrics


__all__ = ["ConvEncoder", "D4PGPixels", "D4PGPixelsConfig", "FeatureHead", "PixelCritic", "PixelPolicy",
           "image_shape", "random_shift", "shift_image"]
