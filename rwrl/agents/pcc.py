"""PCC: learn a latent space for locally-linear control from images; control in it with iLQR.

Levine, Chow, Shu, Li, Ghavamzadeh and Bui 2020, "Prediction, Consistency, Curvature:
Representation Learning for Locally-Linear Control" (ICLR; arXiv 1909.01506). What was read
(PAPERS.md, section 4): the abstract [P] (three principles: prediction in observation space,
consistency of latent and observation dynamics, low curvature of the latent transitions; an
amortised variational bound) and the UNOFFICIAL VinAIResearch/PCC-pytorch@1127f83 [C]
(``pcc_model.py``, ``networks.py``, ``losses.py``, ``train_pcc.py``, ``ilqr*.py``). The paper's
body, equations, network sizes and training settings were not found: every choice below comes
from that code or is rwrl's, and says which.

Model (the code's ``networks.py``; shapes: x an image of ``obs_shape`` (flattened inside the
networks), z (n,), u (m,); per example, batched by ``vmap``):

* Encoder P(z_t | x_t), a diagonal Gaussian (mean, log std) from an MLP; the same network is
  Q(z_{t+1} | x_{t+1}). Decoder P(x | z): independent Bernoulli pixels (logits from an MLP
  mirroring the encoder's). Latent dynamics P(z_{t+1} | z_t, u_t): a diagonal Gaussian whose
  mean is ``z_t + MLP(z_t, u_t)`` (the code's skip connection). Backward encoder
  Q(z_t | z_{t+1}, u_t, x_t): linear embeddings of z_{t+1}, u_t and x_t, one ReLU layer, a
  Gaussian. Sizes per dataset in ``PRESETS`` (the code's: planar 300-300 / 20-20 / (5, 5, 100)
  then 100; pendulum 500-500 / 30-30 / (10, 10, 200) then 200). Weights and biases drawn as
  the code's torch ``nn.Linear``, uniform in +-1/sqrt(fan_in) (with flax's default zero biases
  the decoder's first ReLU layer is nearly flat in z near 0; a planar autoencoder built so
  stayed on the mean image for its first 20 epochs, measured here).
* Cartpole (``conv_channels``, the code's ``CartPole*`` networks; images (2, 80, 80)): the
  encoder is 5 x 5 ReLU convolutions of 32, 32, 32, 10 channels (strides 1, 2, 2, 2, padding 2;
  80 -> 80 -> 40 -> 20 -> 10), flattened to 1,000, a ReLU layer of 200, then (mean, log std);
  the decoder mirrors it: ReLU layers of 200 and 1,000 viewed as (10, 10, 10), three times a
  5 x 5 transposed convolution to 32 channels, nearest upsampling by 2 and a ReLU, then a 5 x 5
  transposed convolution to 2 channels (logits of 2 x 80 x 80 pixels). z = 8, dynamics 40-40,
  backward encoder (10, 10, 300) then 300. Convolutions initialised as torch's (``TorchConv``).
  Preset epochs 5,000: the model epoch its cartpole control loads (``ilqr_config/cartpole.json``);
  the losses' weights, optimiser and batch are the code's defaults, as for the other tasks (the
  code sets nothing else per task; its data size is a required argument, and rwrl's
  ``rwrl pcc run --samples`` default 5,000 is the PAPERS.md digest's default).
* Amortised dynamics (``amortized=True``, the code's "armotized"): heads A (n x n) and B
  (n x m) on the dynamics' hidden layer give the Jacobians that the curvature loss and iLQR use.
  Here ``A = I + head`` (rwrl's choice, like the skip connection). The code's amortised
  curvature takes only B from its head (it keeps autodiff for the z part), so its A head is
  never trained and iLQR then uses it untrained; here both heads are in the loss.

Losses (the code's ``compute_loss``; each a sum over latent or pixel coordinates, averaged over
the batch; z_hat ~ Q(.|x_{t+1}) and z_t ~ Q(.|z_hat, u_t, x_t) by reparameterisation)::

    consistency = KL(Q(z_t | z_hat, u_t, x_t) || P(z_t | x_t)) - H(Q(z_hat | x_{t+1}))
                  - log P(z_hat | z_t, u_t)
    prediction  = -log P(x_{t+1} | z_hat) + consistency
    curvature   = || f(z + ez, u + eu) - f(z, u) - (J_z ez + J_u eu) ||^2,  ez, eu ~ N(0, delta^2 I)
    total = lambda_p prediction + lambda_c consistency + lambda_cur curvature
            + vae_coeff vae_bound + determ_coeff deterministic

* f is the dynamics' mean; delta = 0.1; the curvature is taken at z ~ P(z_t | x_t) and the
  data's u_t, with z and u held fixed (``stop_gradient``, as the code's ``detach``): it trains
  the dynamics only. ``J eps`` is a Jacobian-vector product (``jax.jvp``) as the formula says.
  The code computes the z part with ``autograd.grad(f, z, grad_outputs=eps)``, a
  vector-Jacobian product ``J^T eps``: a departure on purpose (the two agree only for a
  symmetric J; for linear dynamics the loss here is exactly 0). The code also takes the
  curvature (and its VAE term) at a sample of the TRANSITION's output although its variable
  says P(z_t | x_t): here both use P(z_t | x_t), as stated.
* Extra terms of the code, named options, ON by default (``vae_coeff = 0.01``,
  ``determ_coeff = 0.3``): ``vae_bound = -log P(x_t | z) + KL(P(z | x_t) || N(0, I))`` with
  z ~ P(z | x_t), and ``deterministic = -log P(x_{t+1} | mean f(mean P(z | x_t), u_t))``. On
  because the numbers compared against (PCC-pytorch's README, PC3's re-run) were measured with
  them, because the deterministic term trains exactly the path control uses (encoder mean,
  then dynamics mean), and because the KL to N(0, I) fixes the latent scale, in which the
  curvature and the cost weight q are measured. Whether the paper has them: not found.
* Weights (lambda_p, lambda_c, lambda_cur) = (1, 8, 8), the code's defaults. Ablations
  (``ABLATIONS``): "no-curvature" (lambda_cur = 0) and "no-consistency" (lambda_c = 0; the
  prediction term still holds its own copy of the consistency terms, as the code's).
* Warm-up (``warmup_epochs``, an option, 0 in both presets): the first epochs minimise the
  reconstruction ``-log P(x_t | z)``, z ~ P(z | x_t), alone. The code warms planar up for 100
  epochs with a "plain autoencoder" that decodes x_t from its transition sample. Measured here
  (planar, 5,000 triples, seed 0): after 100 warm-up epochs (reconstruction 17 nats) the full
  loss pulled the latent map apart (prediction back at 51 nats, the mean image, recovering to
  29 by epoch 300; 0 % in the goal); the sharp posterior the autoencoder leaves makes the KL to
  the untrained backward encoder huge. Without warm-up the same run left the mean-image plateau
  at epoch 55 and reached 17 nats and 76.5 % in the goal by epoch 200. So no warm-up here.
* Bernoulli log-likelihoods from logits (``log sigmoid``), not the code's ``log(p + 1e-15)``.

Training (``train``): Adam, learning rate 5e-4, with L2 weight decay 1e-3 added to the gradient
before Adam (torch's ``Adam(weight_decay=)``: coupled, not AdamW), batches of 128 over shuffled
data, the last partial batch kept (``drop_last=False``), the code's 2,000 epochs by default.
float32 (the code runs in float64). A seed sets the initial weights, the batch order and the
noise. Parameters are saved with ``save_params`` as an ``.npz`` (no pickle) with the config.

Control (``evaluate``): encode the current observation (the encoder's mean), plan by iLQR in the
latent space toward the encoded goal image with the dynamics' mean, receding horizon
(``rwrl.planning.ilqr.RecedingHorizon``: 3 uniform + 3 extreme plans, 4 iterations), the task's
q, r, horizon and plan length (``rwrl.planning.pcc_tasks``). The metric: the percentage of the
episode's steps after which the true state is in the goal region, averaged over 10 random
start/goal tasks (the same tasks for every model, drawn from one seed, as the code).

Example (a small model, a few steps)::

    >>> from rwrl.planning.pcc_tasks import make_task
    >>> task = make_task("planar")
    >>> data = task.sample_triples(64, seed=0)
    >>> config = make_config("planar", encoder_hidden=(16,), dynamics_hidden=(8,), epochs=2, batch_size=32)
    >>> result = train(config, data.x, data.u, data.x_next, seed=0)
    >>> len(result.history), sorted(result.history[-1])[:3]
    (2, ['consistency', 'curvature', 'deterministic'])
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import traverse_util

from rwrl.agents.base import make_optimiser
from rwrl.core.checks import count
from rwrl.core.seeding import env_rng, spawn_seeds
from rwrl.planning import ilqr as ilqr_lib


@dataclasses.dataclass(frozen=True)
class PCCConfig:
    """Everything PCC's networks, losses and training depend on (defaults: PCC-pytorch's planar run)."""

    #: latent dimension n.
    z_dim: int = 2
    #: hidden widths of the encoder MLP (the decoder's are the same, reversed).
    encoder_hidden: tuple[int, ...] = (300, 300)
    #: output channels of the encoder's 5 x 5 convolutions (strides 1, then 2), before the MLP; the
    #: decoder mirrors them (``ConvEncoder``, ``ConvDecoder``). Empty: MLP encoder and decoder.
    conv_channels: tuple[int, ...] = ()
    #: hidden widths of the latent dynamics MLP.
    dynamics_hidden: tuple[int, ...] = (20, 20)
    #: widths of the backward encoder's linear embeddings of z_{t+1}, u_t and x_t.
    backward_embed: tuple[int, int, int] = (5, 5, 100)
    #: width of the backward encoder's ReLU layer.
    backward_hidden: int = 100
    #: dynamics with Jacobian heads A, B (used by the curvature loss and by iLQR).
    amortized: bool = False
    #: weight of the prediction loss.
    lambda_p: float = 1.0
    #: weight of the consistency loss (0: the "no-consistency" ablation).
    lambda_c: float = 8.0
    #: weight of the curvature loss (0: the "no-curvature" ablation).
    lambda_cur: float = 8.0
    #: standard deviation of the curvature loss's perturbations of z and u.
    delta: float = 0.1
    #: weight of the extra VAE bound of x_t (the code's ``vae_coeff``; 0 turns it off).
    vae_coeff: float = 0.01
    #: weight of the extra deterministic next-image loss (the code's ``determ_coeff``; 0 turns it off).
    determ_coeff: float = 0.3
    #: epochs of reconstruction-only warm-up at the start.
    warmup_epochs: int = 0
    #: Adam's step size.
    learning_rate: float = 5e-4
    #: L2 weight decay added to the gradient before Adam.
    weight_decay: float = 1e-3
    #: examples per batch.
    batch_size: int = 128
    #: passes over the data.
    epochs: int = 2000

    def __post_init__(self):
        count("z_dim", self.z_dim)
        for name in ("encoder_hidden", "conv_channels", "dynamics_hidden", "backward_embed"):
            for width in getattr(self, name):
                count(name, width)
        count("backward_hidden", self.backward_hidden)
        count("warmup_epochs", self.warmup_epochs, low=0)
        count("batch_size", self.batch_size)
        count("epochs", self.epochs)
        for name in ("lambda_p", "lambda_c", "lambda_cur", "vae_coeff", "determ_coeff", "weight_decay"):
            if not getattr(self, name) >= 0.0:
                raise ValueError(f"{name} = {getattr(self, name)!r} is not allowed: a float >= 0")
        for name in ("delta", "learning_rate"):
            if not getattr(self, name) > 0.0:
                raise ValueError(f"{name} = {getattr(self, name)!r} is not allowed: a float > 0")


#: network sizes per dataset (``rwrl.planning.pcc_tasks``: a task's ``dataset``), the code's.
PRESETS = {
    "planar": dict(z_dim=2, encoder_hidden=(300, 300), dynamics_hidden=(20, 20), backward_embed=(5, 5, 100),
                   backward_hidden=100, warmup_epochs=0),
    "pendulum": dict(z_dim=3, encoder_hidden=(500, 500), dynamics_hidden=(30, 30), backward_embed=(10, 10, 200),
                     backward_hidden=200, warmup_epochs=0),
    # the code's CartPole* networks (``networks.py``) and the epoch its cartpole control loads
    # (``ilqr_config/cartpole.json``: "epoch": "5000"); the rest is the code's defaults, as above
    "cartpole": dict(z_dim=8, conv_channels=(32, 32, 32, 10), encoder_hidden=(200,), dynamics_hidden=(40, 40),
                     backward_embed=(10, 10, 300), backward_hidden=300, warmup_epochs=0, epochs=5000),
}
#: the variants measured: full PCC and the two ablations.
ABLATIONS = {"pcc": {}, "no-curvature": {"lambda_cur": 0.0}, "no-consistency": {"lambda_c": 0.0}}


def make_config(dataset: str, ablation: str = "pcc", **overrides: Any) -> PCCConfig:
    """Return the config of ``dataset``'s preset with ``ablation``'s weights, then ``overrides``."""
    if dataset not in PRESETS:
        raise ValueError(f"dataset = {dataset!r} is not allowed: one of {sorted(PRESETS)}")
    if ablation not in ABLATIONS:
        raise ValueError(f"ablation = {ablation!r} is not allowed: one of {sorted(ABLATIONS)}")
    return PCCConfig(**{**PRESETS[dataset], **ABLATIONS[ablation], **overrides})


# ----------------------------------------------------------------- networks

class TorchDense(nn.Module):
    """A dense layer initialised like torch's ``nn.Linear``: kernel and bias uniform in +-1/sqrt(fan_in)."""

    features: int

    @nn.compact
    def __call__(self, x):
        bound = 1.0 / np.sqrt(x.shape[-1])
        init = lambda key, shape: jax.random.uniform(key, shape, jnp.float32, -bound, bound)
        kernel = self.param("kernel", init, (x.shape[-1], self.features))
        return x @ kernel + self.param("bias", init, (self.features,))


class MLP(nn.Module):
    """ReLU layers of the given widths."""

    widths: tuple[int, ...]

    @nn.compact
    def __call__(self, x):
        for width in self.widths:
            x = nn.relu(TorchDense(width)(x))
        return x


class Encoder(nn.Module):
    """P(z | x): (mean, log std), each (n,), of an image of any shape."""

    hidden: tuple[int, ...]
    z_dim: int

    @nn.compact
    def __call__(self, x):
        h = MLP(self.hidden)(x.reshape(-1))
        return TorchDense(self.z_dim)(h), TorchDense(self.z_dim)(h)


class Decoder(nn.Module):
    """P(x | z): Bernoulli logits, flattened (prod(obs_shape),)."""

    hidden: tuple[int, ...]
    obs_size: int

    @nn.compact
    def __call__(self, z):
        return TorchDense(self.obs_size)(MLP(self.hidden)(z))


class TorchConv(nn.Module):
    """A k x k convolution of one channel-first image (C, H, W), zero padding k // 2, initialised like torch.

    Kernel and bias uniform in +-1/sqrt(fan_in), torch's rule: fan_in = input channels * k^2 for
    ``nn.Conv2d``, OUTPUT channels * k^2 for ``nn.ConvTranspose2d`` (``transposed=True``). A
    transposed convolution of stride 1 and padding k // 2 is a convolution of the same size with
    its kernel flipped and its channel axes swapped; the kernel being learned (and its initial
    distribution symmetric), it is computed here as a plain convolution.
    """

    features: int
    stride: int = 1
    kernel: int = 5
    transposed: bool = False

    @nn.compact
    def __call__(self, x):
        channels, k = x.shape[0], self.kernel
        bound = 1.0 / np.sqrt((self.features if self.transposed else channels) * k * k)
        init = lambda key, shape: jax.random.uniform(key, shape, jnp.float32, -bound, bound)
        kernel = self.param("kernel", init, (self.features, channels, k, k))           # OIHW, torch's layout
        pad = ((k // 2, k // 2), (k // 2, k // 2))
        y = jax.lax.conv_general_dilated(x[None], kernel, (self.stride, self.stride), pad,
                                         dimension_numbers=("NCHW", "OIHW", "NCHW"))[0]
        return y + self.param("bias", init, (self.features,))[:, None, None]


class ConvEncoder(nn.Module):
    """P(z | x) of an image (C, H, W): 5 x 5 ReLU convolutions (stride 1, then 2), an MLP, (mean, log std).

    The code's ``CartPoleEncoder``: channels 32, 32, 32, 10 (padding 2), flattened (channel-first,
    as torch's ``view``), then a ReLU layer of 200.
    """

    channels: tuple[int, ...]
    hidden: tuple[int, ...]
    z_dim: int

    @nn.compact
    def __call__(self, x):
        for i, features in enumerate(self.channels):
            x = nn.relu(TorchConv(features, stride=1 if i == 0 else 2)(x))
        return Encoder(self.hidden, self.z_dim)(x)  # flattened channel-first, then the MLP encoder


class ConvDecoder(nn.Module):
    """P(x | z): Bernoulli logits (prod(obs_shape),) from an MLP and 5 x 5 convolutions mirroring ``ConvEncoder``.

    The code's ``CartPoleDecoder``: ReLU layers of 200 and 1000, viewed as (10, 10, 10); three times
    a transposed convolution to 32 channels, a nearest-neighbour upsampling by 2, a ReLU; a last
    transposed convolution to the image's channels. ``channels`` are the encoder's.
    """

    channels: tuple[int, ...]
    hidden: tuple[int, ...]
    obs_shape: tuple[int, int, int]

    @nn.compact
    def __call__(self, z):
        c, height, width = self.obs_shape
        scale = 2 ** (len(self.channels) - 1)
        top = (self.channels[-1], height // scale, width // scale)
        x = MLP(tuple(self.hidden) + (int(np.prod(top)),))(z).reshape(top)
        for features in reversed(self.channels[:-1]):
            x = TorchConv(features, transposed=True)(x)
            x = nn.relu(jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2))
        return TorchConv(c, transposed=True)(x).reshape(-1)


class Dynamics(nn.Module):
    """P(z' | z, u): (mean = z + MLP(z, u), log std, A, B); A, B the Jacobian heads, or None."""

    hidden: tuple[int, ...]
    amortized: bool

    @nn.compact
    def __call__(self, z, u):
        n, m = z.shape[-1], u.shape[-1]
        h = MLP(self.hidden)(jnp.concatenate([z, u], axis=-1))
        mean, log_std = z + TorchDense(n)(h), TorchDense(n)(h)
        if not self.amortized:
            return mean, log_std, None, None
        A = jnp.eye(n) + TorchDense(n * n)(h).reshape(n, n)
        return mean, log_std, A, TorchDense(n * m)(h).reshape(n, m)


class Backward(nn.Module):
    """Q(z | z', u, x): (mean, log std) from linear embeddings of z', u and x, then one ReLU layer."""

    embed: tuple[int, int, int]
    hidden: int
    z_dim: int

    @nn.compact
    def __call__(self, z_next, u, x):
        e_z, e_u, e_x = self.embed
        joint = jnp.concatenate([TorchDense(e_z)(z_next), TorchDense(e_u)(u), TorchDense(e_x)(x.reshape(-1))], axis=-1)
        h = nn.relu(TorchDense(self.hidden)(joint))
        return TorchDense(self.z_dim)(h), TorchDense(self.z_dim)(h)


class PCCModel(NamedTuple):
    """PCC's four networks as pure functions of (params, one example); ``params`` has one entry per network."""

    encode: Callable[..., tuple[jax.Array, jax.Array]]      # (params, x) -> mean, log_std
    decode: Callable[..., jax.Array]                         # (params, z) -> logits (obs_size,)
    transition: Callable[..., tuple]                         # (params, z, u) -> mean, log_std, A, B
    backward: Callable[..., tuple[jax.Array, jax.Array]]    # (params, z_next, u, x) -> mean, log_std
    init: Callable[[jax.Array], dict]                        # key -> params
    z_dim: int
    u_dim: int


def make_model(config: PCCConfig, obs_shape: tuple[int, ...], u_dim: int) -> PCCModel:
    """Return the networks of ``config`` for images of ``obs_shape`` and actions of ``u_dim``.

    Configs that differ only in their loss weights or training get the same model object, so
    that what is compiled for it (the planner, the encoder) is shared.
    """
    c = config
    obs_shape = tuple(int(d) for d in obs_shape)
    if c.conv_channels:
        scale = 2 ** (len(c.conv_channels) - 1)
        if len(obs_shape) != 3 or obs_shape[1] % scale or obs_shape[2] % scale:
            raise ValueError(f"obs_shape = {obs_shape} is not allowed with conv_channels = {c.conv_channels}: "
                             f"(channels, height, width), height and width multiples of {scale}")
    return _make_model(c.z_dim, tuple(c.encoder_hidden), tuple(c.dynamics_hidden), tuple(c.backward_embed),
                       c.backward_hidden, c.amortized, obs_shape, int(u_dim), tuple(c.conv_channels))


@functools.lru_cache(maxsize=None)
def _make_model(n, encoder_hidden, dynamics_hidden, backward_embed, backward_hidden, amortized, obs_shape,
                u_dim, conv_channels=()) -> PCCModel:
    if conv_channels:
        enc = ConvEncoder(conv_channels, encoder_hidden, n)
        dec = ConvDecoder(conv_channels, tuple(reversed(encoder_hidden)), obs_shape)
    else:
        enc = Encoder(encoder_hidden, n)
        dec = Decoder(tuple(reversed(encoder_hidden)), int(np.prod(obs_shape)))
    dyn = Dynamics(dynamics_hidden, amortized)
    back = Backward(backward_embed, backward_hidden, n)

    def init(key):
        k = jax.random.split(key, 4)
        x, z, u = jnp.zeros(obs_shape), jnp.zeros(n), jnp.zeros(u_dim)
        return {"encoder": enc.init(k[0], x), "decoder": dec.init(k[1], z), "dynamics": dyn.init(k[2], z, u),
                "backward": back.init(k[3], z, u, x)}

    return PCCModel(encode=lambda p, x: enc.apply(p["encoder"], x),
                    decode=lambda p, z: dec.apply(p["decoder"], z),
                    transition=lambda p, z, u: dyn.apply(p["dynamics"], z, u),
                    backward=lambda p, z_next, u, x: back.apply(p["backward"], z_next, u, x),
                    init=init, z_dim=n, u_dim=u_dim)


# ----------------------------------------------------------------- losses (one example each)


def bernoulli_log_prob(x: jax.Array, logits: jax.Array) -> jax.Array:
    """Return log P(x | logits) summed over pixels: x log sigmoid(l) + (1 - x) log sigmoid(-l)."""
    x = x.reshape(-1)
    return jnp.sum(x * jax.nn.log_sigmoid(logits) + (1.0 - x) * jax.nn.log_sigmoid(-logits))


def gaussian_log_prob(z: jax.Array, mean: jax.Array, log_std: jax.Array) -> jax.Array:
    """Return log N(z; mean, diag(exp(log_std))^2) summed over coordinates."""
    return jnp.sum(-0.5 * ((z - mean) / jnp.exp(log_std)) ** 2 - log_std - 0.5 * jnp.log(2 * jnp.pi))


def gaussian_entropy(log_std: jax.Array) -> jax.Array:
    """Return the entropy of a diagonal Gaussian: sum of 0.5 log(2 pi e) + log std."""
    return jnp.sum(0.5 * jnp.log(2 * jnp.pi * jnp.e) + log_std)


def gaussian_kl(mean_q: jax.Array, log_std_q: jax.Array, mean_p: jax.Array, log_std_p: jax.Array) -> jax.Array:
    """Return KL(q || p) of two diagonal Gaussians, summed over coordinates."""
    ratio = jnp.exp(2.0 * (log_std_q - log_std_p))
    return jnp.sum(0.5 * (ratio + ((mean_q - mean_p) / jnp.exp(log_std_p)) ** 2 - 1.0) + log_std_p - log_std_q)


class Noise(NamedTuple):
    """Standard normal draws of one example (the reparameterisations), so that a loss is a pure function."""

    z_hat: jax.Array       # (n,) z_hat ~ Q(. | x_{t+1})
    z_back: jax.Array      # (n,) z_t ~ Q(. | z_hat, u_t, x_t)
    z_prior: jax.Array     # (n,) z ~ P(. | x_t): VAE bound, warm-up, curvature point
    curv_z: jax.Array      # (n,) the curvature's perturbation of z, before the factor delta
    curv_u: jax.Array      # (m,) the same for u


def draw_noise(key: jax.Array, z_dim: int, u_dim: int) -> Noise:
    """Return one example's ``Noise``."""
    k = jax.random.split(key, 5)
    return Noise(*(jax.random.normal(k[i], (z_dim,)) for i in range(4)), jax.random.normal(k[4], (u_dim,)))


def _sample(mean, log_std, eps):
    return mean + jnp.exp(log_std) * eps


def prediction_consistency(model: PCCModel, params: dict, x_t: jax.Array, u_t: jax.Array, x_tp1: jax.Array,
                           noise: Noise) -> tuple[jax.Array, jax.Array]:
    """Return (prediction, consistency) losses of one transition (the code's ``compute_loss``)."""
    q_hat = model.encode(params, x_tp1)                                  # Q(z_hat | x_{t+1})
    z_hat = _sample(*q_hat, noise.z_hat)
    q_back = model.backward(params, z_hat, u_t, x_t)                     # Q(z_t | z_hat, u_t, x_t)
    z_t = _sample(*q_back, noise.z_back)
    p_z = model.encode(params, x_t)                                      # P(z_t | x_t)
    p_next_mean, p_next_log_std, _, _ = model.transition(params, z_t, u_t)
    consistency = (gaussian_kl(*q_back, *p_z) - gaussian_entropy(q_hat[1])
                   - gaussian_log_prob(z_hat, p_next_mean, p_next_log_std))
    prediction = -bernoulli_log_prob(x_tp1, model.decode(params, z_hat)) + consistency
    return prediction, consistency


def curvature(model: PCCModel, params: dict, z_t: jax.Array, u_t: jax.Array, eps_z: jax.Array, eps_u: jax.Array,
              delta: float, amortized: bool = False) -> jax.Array:
    """Return ||f(z + d ez, u + d eu) - f(z, u) - (J_z d ez + J_u d eu)||^2 of the dynamics' mean f.

    ``J`` is the Jacobian of f at (z_t, u_t) (a ``jax.jvp``), or with ``amortized`` the heads A, B.
    z_t and u_t are held fixed (no gradient reaches the encoder).
    """
    z_t, u_t = jax.lax.stop_gradient(z_t), jax.lax.stop_gradient(u_t)
    dz, du = delta * eps_z, delta * eps_u
    f = lambda z, u: model.transition(params, z, u)[0]
    if amortized:
        f_zu, _, A, B = model.transition(params, z_t, u_t)
        linear = A @ dz + B @ du
    else:
        f_zu, linear = jax.jvp(f, (z_t, u_t), (dz, du))
    return jnp.sum((f(z_t + dz, u_t + du) - f_zu - linear) ** 2)


def vae_bound(model: PCCModel, params: dict, x_t: jax.Array, eps: jax.Array) -> jax.Array:
    """Return -log P(x_t | z) + KL(P(z | x_t) || N(0, I)), z ~ P(z | x_t) (the code's extra VAE term)."""
    mean, log_std = model.encode(params, x_t)
    recon = -bernoulli_log_prob(x_t, model.decode(params, _sample(mean, log_std, eps)))
    return recon + gaussian_kl(mean, log_std, jnp.zeros_like(mean), jnp.zeros_like(log_std))


def reconstruction(model: PCCModel, params: dict, x_t: jax.Array, eps: jax.Array) -> jax.Array:
    """Return -log P(x_t | z), z ~ P(z | x_t) (the warm-up's plain autoencoder loss)."""
    return -bernoulli_log_prob(x_t, model.decode(params, _sample(*model.encode(params, x_t), eps)))


def deterministic_prediction(model: PCCModel, params: dict, x_t: jax.Array, u_t: jax.Array,
                             x_tp1: jax.Array) -> jax.Array:
    """Return -log P(x_{t+1} | mean f(mean P(z | x_t), u_t)) (the code's extra deterministic term)."""
    z_next = model.transition(params, model.encode(params, x_t)[0], u_t)[0]
    return -bernoulli_log_prob(x_tp1, model.decode(params, z_next))


#: the names of the terms a loss reports, in order.
TERMS = ("prediction", "consistency", "curvature", "vae", "deterministic", "total")


def pcc_loss(model: PCCModel, config: PCCConfig, params: dict, x_t: jax.Array, u_t: jax.Array, x_tp1: jax.Array,
             noise: Noise) -> dict[str, jax.Array]:
    """Return PCC's terms of one transition and their weighted ``total``."""
    prediction, consistency = prediction_consistency(model, params, x_t, u_t, x_tp1, noise)
    z_t = _sample(*model.encode(params, x_t), noise.z_prior)
    terms = {"prediction": prediction, "consistency": consistency,
             "curvature": curvature(model, params, z_t, u_t, noise.curv_z, noise.curv_u, config.delta,
                                    config.amortized),
             "vae": vae_bound(model, params, x_t, noise.z_prior) if config.vae_coeff else jnp.zeros(()),
             "deterministic": (deterministic_prediction(model, params, x_t, u_t, x_tp1) if config.determ_coeff
                               else jnp.zeros(()))}
    terms["total"] = (config.lambda_p * prediction + config.lambda_c * consistency
                      + config.lambda_cur * terms["curvature"] + config.vae_coeff * terms["vae"]
                      + config.determ_coeff * terms["deterministic"])
    return terms


def warmup_loss(model: PCCModel, config: PCCConfig, params: dict, x_t: jax.Array, u_t: jax.Array,
                x_tp1: jax.Array, noise: Noise) -> dict[str, jax.Array]:
    """Return the warm-up's terms of one transition: the reconstruction of x_t alone is the ``total``."""
    terms = {name: jnp.zeros(()) for name in TERMS}
    terms["total"] = reconstruction(model, params, x_t, noise.z_prior)
    return terms


# ----------------------------------------------------------------- training


class TrainingState(NamedTuple):
    """Everything training carries from batch to batch."""

    params: dict
    opt_state: Any
    key: jax.Array


class TrainResult(NamedTuple):
    """A trained model and how it went."""

    params: dict
    #: one dict per epoch: the mean of each of ``TERMS`` over its batches, and ``warmup`` (1.0 or 0.0).
    history: list
    #: wall-clock seconds of training (compilation included).
    seconds: float


def make_optimizer(config: PCCConfig) -> optax.GradientTransformation:
    """Return Adam with L2 weight decay added to the gradient first (torch ``Adam(weight_decay=)``)."""
    return optax.chain(optax.add_decayed_weights(config.weight_decay), make_optimiser(config.learning_rate))


def make_update(model: PCCModel, config: PCCConfig, warmup: bool) -> Callable:
    """Return ``update(state, x, u, x_next) -> (state, terms)``: one Adam step on a batch's mean loss."""
    per_example = warmup_loss if warmup else pcc_loss
    optimizer = make_optimizer(config)

    def batch_loss(params, x, u, x_next, key):
        noise = jax.vmap(lambda k: draw_noise(k, model.z_dim, model.u_dim))(jax.random.split(key, x.shape[0]))
        terms = jax.vmap(per_example, in_axes=(None, None, None, 0, 0, 0, 0))(model, config, params, x, u,
                                                                                x_next, noise)
        terms = {name: jnp.mean(value) for name, value in terms.items()}
        return terms["total"], terms

    def update(state, x, u, x_next):
        key, sub = jax.random.split(state.key)
        grads, terms = jax.grad(batch_loss, has_aux=True)(state.params, x, u, x_next, sub)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        return TrainingState(optax.apply_updates(state.params, updates), opt_state, key), terms

    return update


@functools.lru_cache(maxsize=None)
def make_epoch(model: PCCModel, config: PCCConfig, warmup: bool) -> Callable:
    """Return a jitted ``epoch(state, x, u, x_next, rows) -> (state, terms)``: one update per row of ``rows``.

    ``rows`` (batches, batch size) indexes the data; made once per model, config and ``warmup``.
    """
    update = make_update(model, config, warmup)

    def epoch(state, x, u, x_next, rows):
        def step(state, batch_rows):
            return update(state, x[batch_rows], u[batch_rows], x_next[batch_rows])
        return jax.lax.scan(step, state, rows)

    return jax.jit(epoch)


def init_state(model: PCCModel, config: PCCConfig, seed: int) -> TrainingState:
    """Return the initial state of ``seed``: its weights, fresh Adam moments, its noise key."""
    init_key, noise_key = jax.random.split(jax.random.PRNGKey(seed))
    params = model.init(init_key)
    return TrainingState(params, make_optimizer(config).init(params), noise_key)


def train(config: PCCConfig, x: np.ndarray, u: np.ndarray, x_next: np.ndarray, seed: int,
          progress: Callable[[int, dict], None] | None = None) -> TrainResult:
    """Train PCC on the transitions (x (N, *obs_shape), u (N, m), x_next) for ``config.epochs`` epochs.

    Args:
      seed: sets the initial weights, the batch order and every noise draw.
      progress: called after each epoch as ``progress(epoch, history_row)`` (epoch from 1).
    """
    start = time.perf_counter()
    model = make_model(config, x.shape[1:], u.shape[1])
    state = init_state(model, config, seed)
    x, u, x_next = (jnp.asarray(a, jnp.float32) for a in (x, u, x_next))
    n, size = x.shape[0], min(config.batch_size, x.shape[0])
    epochs = {warm: make_epoch(model, config, warm) for warm in (True, False)}
    order_rng = env_rng(seed, "pcc/batches")
    history = []
    for epoch in range(config.epochs):
        warm = epoch < config.warmup_epochs
        order = order_rng.permutation(n)
        full = (n // size) * size
        state, terms = epochs[warm](state, x, u, x_next, order[:full].reshape(-1, size))
        parts = [terms]
        if full < n:  # the last partial batch, as torch's drop_last=False
            state, rest = epochs[warm](state, x, u, x_next, order[full:][None])
            parts.append(rest)
        stacked = {k: np.concatenate([np.asarray(p[k]) for p in parts]) for k in TERMS}
        row = {k: float(np.mean(v)) for k, v in stacked.items()} | {"warmup": float(warm)}
        history.append(row)
        if progress is not None:
            progress(epoch + 1, row)
    return TrainResult(state.params, history, time.perf_counter() - start)


def save_params(path: str | os.PathLike, params: dict, config: PCCConfig, obs_shape: tuple[int, ...],
                u_dim: int) -> Path:
    """Write ``params`` and what rebuilds their model to ``path`` (.npz, no pickle), atomically."""
    path = Path(path)
    flat = {"/".join(k): np.asarray(v) for k, v in traverse_util.flatten_dict(params).items()}
    meta = {"config": dataclasses.asdict(config), "obs_shape": list(obs_shape), "u_dim": u_dim}
    flat["__meta__"] = np.array(json.dumps(meta))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "wb") as f:
        np.savez(f, **flat)
    os.replace(tmp, path)
    return path


def load_params(path: str | os.PathLike) -> tuple[dict, PCCConfig, tuple[int, ...], int]:
    """Return (params, config, obs_shape, u_dim) written by ``save_params``."""
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(str(data["__meta__"]))
        flat = {tuple(k.split("/")): jnp.asarray(data[k]) for k in data.files if k != "__meta__"}
    fields = {k: tuple(v) if isinstance(v, list) else v for k, v in meta["config"].items()}
    return traverse_util.unflatten_dict(flat), PCCConfig(**fields), tuple(meta["obs_shape"]), meta["u_dim"]


# ----------------------------------------------------------------- control


def encode_mean(model: PCCModel, params: dict, x: np.ndarray) -> np.ndarray:
    """Return the encoder's means (N, n) of images (N, *obs_shape)."""
    return np.asarray(_encode_batch(model, params, jnp.asarray(x, jnp.float32)))


@functools.partial(jax.jit, static_argnums=0)
def _encode_batch(model: PCCModel, params: dict, x: jax.Array) -> jax.Array:
    return jax.vmap(lambda x_i: model.encode(params, x_i)[0])(x)


def make_controller(model: PCCModel, task: Any, amortized: bool = False,
                    ilqr_config: ilqr_lib.ILQRConfig = ilqr_lib.ILQRConfig()) -> ilqr_lib.RecedingHorizon:
    """Return the receding-horizon iLQR of ``task``'s settings on the dynamics' mean of ``model``."""
    c = task.control
    f = lambda params, z, u: model.transition(params, z, u)[0]
    linearize = (lambda params, z, u: model.transition(params, z, u)[2:]) if amortized else None
    cost = ilqr_lib.QuadraticCost.isotropic(c.q, c.r, model.z_dim, model.u_dim)
    config = ilqr_lib.RecedingHorizonConfig(plan_len=c.plan_len, ilqr=ilqr_config)
    return ilqr_lib.RecedingHorizon(f, cost, task.action_low, task.action_high, config, linearize)


def run_episode(model: PCCModel, params: dict, task: Any, controller: ilqr_lib.RecedingHorizon,
                start: np.ndarray, goal: np.ndarray, seed: int) -> dict[str, Any]:
    """Control ``task`` from ``start`` toward the image of ``goal``; return the steps in the goal and the states."""
    z_goal = encode_mean(model, params, task.observe_still(goal)[None])[0]
    controller.reset(seed)
    s, obs, in_goal, states = np.asarray(start, np.float64), task.observe_still(start), 0, [start]
    for _ in range(task.control.horizon):
        z = encode_mean(model, params, obs[None])[0]
        s_next = task.step(s, controller.act(params, z, z_goal))
        obs, s = task.observe(s, s_next), s_next
        in_goal += task.in_goal(s, goal)
        states.append(s)
    return {"in_goal": int(in_goal), "percent": 100.0 * in_goal / task.control.horizon,
            "states": np.asarray(states)}


def evaluate(model: PCCModel, params: dict, task: Any, num_tasks: int = 10, seed: int = 2020,
             controller: ilqr_lib.RecedingHorizon | None = None, amortized: bool = False) -> dict[str, Any]:
    """Return the % of steps in the goal region of each of ``num_tasks`` random start/goal tasks, and their mean.

    The tasks depend on ``seed`` only (the same for every model); so do the plans' draws.
    """
    count("num_tasks", num_tasks)
    controller = make_controller(model, task, amortized) if controller is None else controller
    rng = np.random.default_rng(seed)
    episodes = [task.draw_episode(rng) for _ in range(num_tasks)]
    percents = [run_episode(model, params, task, controller, start, goal, plan_seed)["percent"]
                for (start, goal), plan_seed in zip(episodes, spawn_seeds(seed, num_tasks))]
    return {"percents": percents, "mean": float(np.mean(percents)),
            "starts": [e[0].tolist() for e in episodes], "goals": [e[1].tolist() for e in episodes]}


__all__ = ["PCCConfig", "PRESETS", "ABLATIONS", "make_config", "TorchConv", "ConvEncoder", "ConvDecoder",
           "PCCModel", "make_model", "Noise", "draw_noise",
           "bernoulli_log_prob", "gaussian_log_prob", "gaussian_entropy", "gaussian_kl", "prediction_consistency",
           "curvature", "vae_bound", "reconstruction", "deterministic_prediction", "pcc_loss", "warmup_loss",
           "TERMS", "TrainingState", "TrainResult", "make_optimizer", "make_update", "make_epoch", "init_state",
           "train", "save_params", "load_params", "encode_mean", "make_controller", "run_episode", "evaluate"]
