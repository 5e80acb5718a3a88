"""A RealNVP normalizing flow over a Gaussian-mixture base: HCL's density model, in flax.

HCL (Kirichenko et al. 2021, arXiv 2106.12772) models "the distribution of each task and
each class with a normalizing flow": one invertible map ``f`` shared by everything, and a
base distribution with one component per (task, class), so that ``log p(x | k) =
log N(f(x); mu_k, I) + log |det df/dx|`` (the FlowGMM construction of Izmailov, Kirichenko,
Finzi and Wilson 2020, which HCL builds on). This module holds the flow, the mixture and the
fixed input transforms; ``rwrl.continual.hcl`` trains it on a stream.

Choices (the paper's flow family, depth and widths were not read: PAPERS.md, section 2):

* Library: none. distrax (its bijectors and mixtures build on tensorflow-probability, which is
  not installed here) and flowjax (built on equinox, where this project's networks are flax)
  were considered; the project's dependencies may not change for this module, and an affine
  coupling flow is some sixty lines, so the flow is written here in flax. The lead may revisit.
* Flow: RealNVP (Dinh, Sohl-Dickstein and Bengio 2017) affine couplings on vectors. Coupling
  ``l`` keeps the inputs where ``mask_l = 1`` and maps the others ``x -> x * exp(s) + t`` with
  ``(s, t)`` a ReLU MLP (two hidden layers of ``hidden`` units) of the kept inputs; log|det| is
  exactly ``sum(s)`` over the changed inputs. Masks come in pairs: coupling ``2i`` keeps a
  random half of the inputs (a permutation drawn from ``mask_seed``), coupling ``2i + 1``
  keeps the other half, so every input is changed once per pair. No batch norm or actnorm
  (the flow must be a fixed function of its parameters for the typicality test and for HCL-FR).
* Scales: ``s = scale * tanh(raw)`` per input with ``scale`` learned (initial 1): bounded
  per coupling, which keeps the inverse finite when sampling; the last Dense of each coupling
  starts at zero, so the flow starts as the identity.
* Base: one Gaussian per component with a learned mean ``mu_k`` and the identity covariance,
  shared by all components (FlowGMM's choice; the flow can rescale space itself, and a shared
  covariance keeps Bayes' rule over components a comparison of distances in ``z``). Means
  start from N(0, ``mean_scale``^2 I), drawn at ``init``; ``rwrl.continual.hcl`` moves each
  to its data when the component is first used.
* Inputs (digits): pixels are k/16, k = 0..16 (17 levels). ``dequantize`` adds uniform
  noise inside each level, ``(k + u) / 17`` with u ~ U[0, 1), so a density on [0, 1]^d is
  meaningful (Theis et al. 2016); ``centre`` puts u = 1/2 for a deterministic input
  (classification). ``logit`` then maps [0, 1] to the real line as RealNVP does for images,
  ``y = logit(alpha + (1 - 2 alpha) x)``, alpha = 0.05 (RealNVP's value; the symmetric form
  here shrinks both ends), with its exact log|det| so likelihoods stay densities of ``x``.
  Continuous inputs (RL transitions) skip both; ``rwrl.continual.hcl`` standardises them.

Shapes: ``x`` and ``z`` are (n, d), d >= 2; a mixture of K components has means (K, d);
per-component log-densities are (n, K), in nats.

Example::

    >>> import jax, jax.numpy as jnp
    >>> flow = make_flow(dim=4, num_components=2, num_couplings=2, hidden=8)
    >>> params = init_params(flow, jax.random.PRNGKey(0))
    >>> x = jnp.ones((3, 4))
    >>> z, logdet = forward(flow, params, x)
    >>> bool(jnp.allclose(inverse(flow, params, z), x, atol=1e-6)), log_prob(flow, params, x).shape
    (True, (3, 2))
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

#: RealNVP's logit squeeze for images (Dinh et al. 2017, section 4.1).
LOGIT_ALPHA = 0.05


class FlowConfigError(ValueError):
    """A bad flow setting or input; the message is one line naming the field and what is allowed."""


def _check_int(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise FlowConfigError(f"{name} = {value!r} is not allowed: give an integer >= {low}")
    return int(value)


def _check_positive(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
        raise FlowConfigError(f"{name} = {value!r} is not allowed: give a finite number > 0")
    return float(value)


def coupling_masks(dim: int, num_couplings: int, mask_seed: int = 0) -> np.ndarray:
    """Return (num_couplings, dim) float32 masks, 1 where a coupling keeps its input (module docstring)."""
    rng = np.random.default_rng(mask_seed)
    masks = np.zeros((num_couplings, dim), np.float32)
    for layer in range(num_couplings):
        if layer % 2 == 0:
            keep = rng.permutation(dim)[: dim // 2]
            masks[layer, keep] = 1.0
        else:
            masks[layer] = 1.0 - masks[layer - 1]
    return masks


class CouplingNet(nn.Module):
    """The (s, t) network of one affine coupling: a ReLU MLP of the kept inputs."""

    dim: int
    hidden: int

    @nn.compact
    def __call__(self, kept: jax.Array) -> tuple[jax.Array, jax.Array]:
        h = nn.relu(nn.Dense(self.hidden)(kept))
        h = nn.relu(nn.Dense(self.hidden)(h))
        out = nn.Dense(2 * self.dim, kernel_init=nn.initializers.zeros)(h)
        raw, shift = jnp.split(out, 2, axis=-1)
        scale = self.param("scale", nn.initializers.ones, (self.dim,))
        return scale * jnp.tanh(raw), shift


class RealNVP(nn.Module):
    """RealNVP affine couplings with a Gaussian-mixture base of ``num_components`` learned means.

    ``__call__`` (and ``forward``) map x -> (z, log|det dz/dx|); ``inverse`` maps z -> x.
    """

    dim: int
    num_components: int
    num_couplings: int = 6
    hidden: int = 128
    mean_scale: float = 1.0
    mask_seed: int = 0

    def setup(self) -> None:
        self.masks = jnp.asarray(coupling_masks(self.dim, self.num_couplings, self.mask_seed))
        self.nets = [CouplingNet(self.dim, self.hidden) for _ in range(self.num_couplings)]
        self.means = self.param("means", nn.initializers.normal(self.mean_scale),
                                (self.num_components, self.dim))

    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        return self.forward(x)

    def forward(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Return ``(z, logdet)``: (n, d) latents and (n,) log|det dz/dx|."""
        logdet = jnp.zeros(x.shape[:-1], x.dtype)
        for layer, net in enumerate(self.nets):
            mask = self.masks[layer]
            s, t = net(x * mask)
            s, t = s * (1.0 - mask), t * (1.0 - mask)
            x = x * jnp.exp(s) + t
            logdet = logdet + jnp.sum(s, axis=-1)
        return x, logdet

    def inverse(self, z: jax.Array) -> jax.Array:
        """Return the x with ``forward(x)[0] == z``: the couplings undone in reverse order."""
        for layer in reversed(range(self.num_couplings)):
            mask = self.masks[layer]
            s, t = self.nets[layer](z * mask)
            s, t = s * (1.0 - mask), t * (1.0 - mask)
            z = (z - t) * jnp.exp(-s)
        return z

    def component_log_prob(self, x: jax.Array) -> jax.Array:
        """Return (n, K) ``log p(x | k) = log N(f(x); mu_k, I) + log|det df/dx|``."""
        z, logdet = self.forward(x)
        return mixture_log_prob(z, self.means) + logdet[:, None]


def mixture_log_prob(z: jax.Array, means: jax.Array) -> jax.Array:
    """Return (n, K) ``log N(z; mu_k, I) = -|z - mu_k|^2 / 2 - d/2 log(2 pi)``."""
    d = z.shape[-1]
    sq = jnp.sum((z[:, None, :] - means[None, :, :]) ** 2, axis=-1)
    return -0.5 * sq - 0.5 * d * math.log(2.0 * math.pi)


def make_flow(dim: int, num_components: int, num_couplings: int = 6, hidden: int = 128,
              mean_scale: float = 1.0, mask_seed: int = 0) -> RealNVP:
    """Return a checked ``RealNVP`` (one-line FlowConfigError naming a bad field)."""
    _check_int("dim", dim, 2)
    _check_int("num_components", num_components, 1)
    _check_int("num_couplings", num_couplings, 1)
    _check_int("hidden", hidden, 1)
    _check_positive("mean_scale", mean_scale)
    _check_int("mask_seed", mask_seed, 0)
    return RealNVP(int(dim), int(num_components), int(num_couplings), int(hidden), float(mean_scale),
                   int(mask_seed))


def init_params(flow: RealNVP, key: jax.Array) -> Any:
    """Return the flow's initial parameters (the identity map; means drawn from ``key``)."""
    return jax.jit(flow.init)(key, jnp.zeros((1, flow.dim), jnp.float32))["params"]


def forward(flow: RealNVP, params: Any, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Return ``(z, logdet)`` of (n, d) ``x``."""
    return flow.apply({"params": params}, x, method=RealNVP.forward)


def inverse(flow: RealNVP, params: Any, z: jax.Array) -> jax.Array:
    """Return the (n, d) ``x`` that the flow maps to ``z``."""
    return flow.apply({"params": params}, z, method=RealNVP.inverse)


def log_prob(flow: RealNVP, params: Any, x: jax.Array) -> jax.Array:
    """Return (n, K) log-densities of ``x`` under each component, in nats."""
    return flow.apply({"params": params}, x, method=RealNVP.component_log_prob)


def sample(flow: RealNVP, params: Any, key: jax.Array, components: jax.Array,
           temperature: float = 1.0) -> jax.Array:
    """Return (n, d) samples ``f^{-1}(mu_k + temperature * eps)``, one per entry of (n,) ``components``."""
    means = params["means"][components]
    eps = jax.random.normal(key, means.shape, means.dtype)
    return inverse(flow, params, means + temperature * eps)


def dequantize(x: np.ndarray, levels: int, rng: np.random.Generator | None) -> np.ndarray:
    """Return ``(k + u) / levels`` for pixels ``x = k / (levels - 1)``: u ~ U[0, 1), or 1/2 without ``rng``."""
    k = np.rint(np.asarray(x, np.float64) * (levels - 1))
    u = 0.5 if rng is None else rng.random(k.shape)
    return ((k + u) / levels).astype(np.float32)


def logit(x: jax.Array, alpha: float = LOGIT_ALPHA) -> tuple[jax.Array, jax.Array]:
    """Return ``(y, logdet)``: ``y = logit(alpha + (1 - 2 alpha) x)`` and (n,) log|det dy/dx|."""
    p = alpha + (1.0 - 2.0 * alpha) * x
    y = jnp.log(p) - jnp.log1p(-p)
    logdet = jnp.sum(math.log(1.0 - 2.0 * alpha) - jnp.log(p) - jnp.log1p(-p), axis=-1)
    return y, logdet


def logit_inverse(y: jax.Array, alpha: float = LOGIT_ALPHA) -> jax.Array:
    """Return the ``x`` in [0, 1] that ``logit`` maps to ``y``."""
    return (jax.nn.sigmoid(y) - alpha) / (1.0 - 2.0 * alpha)


__all__ = ["LOGIT_ALPHA", "CouplingNet", "FlowConfigError", "RealNVP", "coupling_masks", "dequantize",
           "forward", "init_params", "inverse", "log_prob", "logit", "logit_inverse", "make_flow",
           "mixture_log_prob", "sample"]
