"""Curvature of a flax model's loss at a solution, and the quadratic penalties built from it.

Yin, Farajtabar, Li, Levine and Mott, "Optimization and Generalization of
Regularization-Based Continual Learning: a Loss Approximation Viewpoint"
(arXiv 2006.10974): when task k' ends at weights ``w_k'``, its loss is replaced by
the second-order Taylor model ``0.5 (w - w_k')^T H_k' (w - w_k')`` (the constant
and the gradient term dropped), and task k minimises its own loss plus
``lambda`` times the sum of these over k' < k. The methods differ in ``H``:

* ``"identity"``: ``H = I``, the L2 penalty; nothing is estimated.
* ``"diagonal"``: the diagonal of the Fisher, EWC (Kirkpatrick et al. 2017).
* ``"kfac"``: one Kronecker product ``A (x) G`` per ``nn.Dense`` layer,
  KF-Laplace (Ritter et al. 2018) with K-FAC's factors (Martens and Grosse 2015).
* ``"full"``: the whole Fisher (Gauss-Newton) matrix over all parameters, the
  reference; :func:`hessian` gives the exact Hessian of the loss instead.

The model's output is a distribution, and the Fisher is that of its
log-likelihood (``output``):

* ``"categorical"``: the last axis holds logits (a digits classifier, a D4PG
  critic's logits over return atoms). The gradient of ``log p(y | x)`` with
  respect to the logits is ``onehot(y) - p``.
* ``"gaussian"``: the output is the mean of a unit-variance Gaussian (an
  actor's mean action); the gradient with respect to the mean is ``y - mean``,
  and the Fisher is the Gauss-Newton matrix ``J^T J``.

Every estimate is ``F = mean over examples of sum_v (J^T v)(J^T v)^T`` with
``J`` the Jacobian of one example's output with respect to the parameters and
``v`` a set of output-space vectors chosen by ``fisher``:

* ``"sampled"`` (default): the true Fisher by Monte Carlo, labels drawn from
  the model, ``num_samples`` per example, ``v = (onehot(y) - p) / sqrt(S)``
  (Gaussian: ``v = noise / sqrt(S)``, noise ~ N(0, I)). What EWC and KF-Laplace use.
* ``"exact"``: the expectation over labels in closed form: ``v_c = sqrt(p_c)
  (onehot(c) - p)`` for every class c, since ``sum_c v_c v_c^T = diag(p) - p p^T``
  (Gaussian: the unit vectors). One backward pass per class.
* ``"empirical"``: the given labels, ``v = onehot(label) - p`` (Gaussian:
  ``label - mean``): the empirical Fisher, cheap but biased (Kunstner et al. 2019).

Choices, fixed here:

* Parameters: every leaf of ``params``, the first argument of
  ``module.apply(params, *inputs)`` (give a variables dict holding only the
  ``"params"`` collection). The flat order is ``jax.flatten_util.ravel_pytree``'s.
* Per example: ``inputs`` are batched on axis 0; each example is applied as a
  batch of one, and the output must be ``(batch, outputs)``. Examples are
  processed ``chunk`` at a time (a ``lax.scan``), so memory is ``chunk`` examples'
  gradients, not the whole batch's. Labels are sampled with one key per example
  (split from ``key``), so an estimate does not depend on ``chunk``, and the
  three estimators draw the same labels from the same key: EWC's diagonal is
  exactly the diagonal of the full matrix of the same key.
* KFAC, own implementation rather than kfac-jax: K-FAC is a few lines here
  (two outer products per Dense layer, captured with ``flax.linen.intercept_methods``),
  kfac-jax is an optimiser package built around its own graph scanning and would
  be a new dependency for one function, and the penalty needs the raw factors,
  not kfac-jax's damped inverses. Per Dense: ``A = E[a a^T]`` with ``a`` the
  layer's input and a last entry 1 for the bias (no entry without a bias), and
  ``G = E[sum_v g g^T]`` with ``g = d(v . output) / d(pre-activation output)``
  (the layer's output plus a zero perturbation, differentiated with respect to
  that perturbation). The kernel-and-bias block of a Dense with ``in`` inputs and
  ``out`` outputs is ``A (x) G`` over the ``(in + 1, out)`` matrix of the kernel
  stacked over the bias, rows first. Every other parameter (LayerNorm, conv, a
  Dense called more than once or on inputs of more than 2 axes: refused) gets the
  diagonal Fisher, from the same pass.
* Full: refused above ``limit`` parameters (``FULL_LIMIT``): the matrix is
  ``P^2`` floats and costs ``N S P^2`` multiply-adds.
* Wall time: every estimate carries ``seconds``, measured around the jitted
  computation with ``block_until_ready``; the first estimate of a shape includes
  the compilation.
* Penalty: ``QuadraticPenalty.value(w) = weight * 0.5 (w - w*)^T H (w - w*)``,
  through :func:`matvec`, which never forms ``H`` for the identity, diagonal and
  KFAC forms (KFAC: ``0.5 tr(dW^T A dW G)`` per Dense). ``QuadraticPenalty.grad``
  is ``weight * H (w - w*)`` by one product (``H`` is symmetric). Penalties of
  past tasks are summed from a list or from a stacked penalty (leading axis).
* Approximation error: ``||H - H_approx||_F / ||H||_F`` between dense matrices;
  for the identity, of the best multiple ``c I`` (``c = tr(H) / P``), since an L2
  penalty has no scale of its own (its lambda is its scale).

Shapes: N examples, P parameters, S label samples per example, C outputs.

Example (one Dense layer of 3 inputs and 2 logits: one Kronecker block)::

    >>> import flax.linen as nn, jax, jax.numpy as jnp
    >>> net, x = nn.Dense(2), jnp.ones((4, 3))
    >>> params = net.init(jax.random.PRNGKey(0), x)
    >>> fisher = kfac(net, params, (x,), jax.random.PRNGKey(1), output="categorical", fisher="exact")
    >>> [(f.a.shape, f.g.shape) for f in fisher.factors]
    [((4, 4), (2, 2))]
    >>> penalty = quadratic_penalty(params, fisher, weight=10.0)
    >>> float(penalty.value(params))
    0.0
"""

from __future__ import annotations

import functools
import math
import numbers
import time
from typing import Any, Callable, Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from jax.flatten_util import ravel_pytree

#: the output distributions: logits of a categorical, or the mean of a unit-variance Gaussian.
OUTPUTS = ("categorical", "gaussian")
#: which output-space vectors an estimate averages over (module docstring).
FISHERS = ("sampled", "exact", "empirical")
#: the forms of H: L2, EWC, KFAC, the full matrix.
FORMS = ("identity", "diagonal", "kfac", "full")
#: the largest parameter count for which a full (P, P) matrix is formed (100 M floats at most).
FULL_LIMIT = 20_000
#: examples processed together by an estimate (memory: this many examples' gradients).
CHUNK = 64


@struct.dataclass
class KroneckerFactors:
    """K-FAC's factors of one ``nn.Dense``: its kernel-and-bias block of the Fisher is ``a (x) g``."""

    #: the Dense's names inside ``params["params"]`` (``()`` when the module is the Dense).
    path: tuple[str, ...] = struct.field(pytree_node=False)
    #: whether the layer has a bias (then ``a`` has the extra row and column of the ones entry).
    bias: bool = struct.field(pytree_node=False)
    a: jax.Array  # (in + bias, in + bias): E[a a^T] of the layer's input
    g: jax.Array  # (out, out): E[sum_v g g^T] of the pre-activation gradient


@struct.dataclass
class Curvature:
    """One estimate of H at a solution, in one of ``FORMS`` (a pytree; usable inside ``jit``)."""

    form: str = struct.field(pytree_node=False)
    #: "diagonal": H's diagonal, shaped as params; "kfac": the diagonal of every parameter that
    #: no Kronecker block covers, zeros at the Dense kernels and biases; otherwise None.
    diagonal: Any = None
    #: "kfac": one entry per Dense layer; otherwise ().
    factors: tuple[KroneckerFactors, ...] = ()
    #: "full": (P, P) in ravel_pytree order; otherwise None.
    matrix: jax.Array | None = None
    #: wall time of the estimate in seconds (0 for the identity).
    seconds: Any = 0.0


@struct.dataclass
class QuadraticPenalty:
    """``weight * 0.5 (w - anchor)^T H (w - anchor)``: a past task's loss, as its Taylor model."""

    anchor: Any  # the parameters at the end of the task, shaped as params
    curvature: Curvature
    weight: Any = 1.0  # lambda, finite and >= 0 (checked by quadratic_penalty)

    def value(self, params: Any) -> jax.Array:
        """Return the penalty at ``params`` (a scalar), without forming H unless the form is full."""
        delta = _sub(params, self.anchor)
        return 0.5 * self.weight * _vdot(delta, matvec(self.curvature, delta))

    def grad(self, params: Any) -> Any:
        """Return the penalty's gradient ``weight * H (params - anchor)``, shaped as params."""
        delta = _sub(params, self.anchor)
        return jax.tree_util.tree_map(lambda h: self.weight * h, matvec(self.curvature, delta))


# ---------------------------------------------------------------------------------------------
# validation


def _show(value: Any) -> str:
    return str(value) if isinstance(value, numbers.Number) else repr(value)


def _check_choice(name: str, value: Any, allowed: Sequence[str]) -> None:
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{name} = {value!r} is not allowed: give one of {', '.join(map(repr, allowed))}")


def check_weight(weight: Any, name: str = "weight") -> float:
    """Return ``weight`` as a float, or raise a one-line ValueError unless it is finite and >= 0."""
    try:
        value = float(weight)
    except (TypeError, ValueError):
        value = math.nan
    if isinstance(weight, bool) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} = {_show(weight)} is not allowed: give a finite number >= 0")
    return value


def _check_count(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} = {_show(value)} is not allowed: give an integer >= 1")
    return int(value)


def num_params(params: Any) -> int:
    """Return the number of scalars in ``params``."""
    return int(sum(np.size(leaf) for leaf in jax.tree_util.tree_leaves(params)))


def _check_size(params: Any, limit: int, what: str) -> int:
    size = num_params(params)
    if size > limit:
        raise ValueError(f"{what}: the model has {size:,} parameters, above limit = {limit:,}: "
                         f"use form 'kfac' or 'diagonal', or raise limit")
    return size


def _check_inputs(inputs: Any) -> tuple[jax.Array, ...]:
    if not isinstance(inputs, tuple) or not inputs:
        raise ValueError(f"inputs = {type(inputs).__name__} is not allowed: give a non-empty tuple of arrays "
                         f"batched on axis 0 (module.apply(params, *inputs))")
    arrays = tuple(jnp.asarray(x) for x in inputs)
    sizes = {x.shape[0] if x.ndim else None for x in arrays}
    if len(sizes) != 1 or None in sizes or 0 in sizes:
        raise ValueError(f"inputs have batch sizes {sorted(map(str, sizes))}: give arrays of one batch "
                         f"size >= 1 on axis 0")
    return arrays


# ---------------------------------------------------------------------------------------------
# pytree helpers


def _sub(a: Any, b: Any) -> Any:
    return jax.tree_util.tree_map(jnp.subtract, a, b)


def _vdot(a: Any, b: Any) -> jax.Array:
    return sum(jnp.vdot(x, y) for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)))


def _key_names(keypath: Sequence[Any]) -> tuple[Any, ...]:
    return tuple(getattr(k, "key", getattr(k, "name", getattr(k, "idx", k))) for k in keypath)


def _get(tree: Any, names: Sequence[Any]) -> Any:
    for name in names:
        tree = tree[name]
    return tree


# ---------------------------------------------------------------------------------------------
# the per-example pass


@struct.dataclass
class _Layer:
    path: tuple[str, ...] = struct.field(pytree_node=False)
    inputs: int = struct.field(pytree_node=False)
    outputs: int = struct.field(pytree_node=False)
    bias: bool = struct.field(pytree_node=False)


def _name(path: Sequence[str]) -> str:
    return "/".join(path)


def _apply(module: nn.Module, params: Any, x: tuple[jax.Array, ...],
           perturb: dict[str, jax.Array] | None) -> tuple[jax.Array, dict[str, list[jax.Array]], dict]:
    """Apply ``module``, recording every Dense call's input (and adding ``perturb`` to its output)."""
    seen: dict[str, list[jax.Array]] = {}
    layers: dict[str, tuple[nn.Dense, jax.Array]] = {}

    def record(next_fun, args, kwargs, context):
        if not (isinstance(context.module, nn.Dense) and context.method_name == "__call__"):
            return next_fun(*args, **kwargs)
        name = _name(context.module.path)
        out = next_fun(*args, **kwargs)
        seen.setdefault(name, []).append(args[0])
        layers[name] = (context.module, out)
        if perturb is not None and name in perturb:
            out = out + perturb[name]
        return out

    with nn.intercept_methods(record):
        y = module.apply(params, *x)
    return y, seen, layers


def _dense_layers(module: nn.Module, params: Any, inputs: tuple[jax.Array, ...]) -> tuple[_Layer, ...]:
    """Return the Dense layers that one example's apply calls, checked for K-FAC."""
    found: list[_Layer] = []

    def probe(p, x):
        _, seen, layers = _apply(module, p, tuple(a[:1] for a in x), None)
        for name, calls in seen.items():
            dense, out = layers[name]
            if len(calls) != 1:
                raise ValueError(f"kfac: the Dense at {name!r} is called {len(calls)} times; this K-FAC "
                                 f"handles one call per Dense (use form 'diagonal')")
            if calls[0].ndim != 2:
                raise ValueError(f"kfac: the Dense at {name!r} gets inputs of shape {calls[0].shape}; this "
                                 f"K-FAC handles (batch, features) inputs (use form 'diagonal')")
            found.append(_Layer(tuple(dense.path), calls[0].shape[-1], out.shape[-1], bool(dense.use_bias)))
        return 0

    jax.eval_shape(probe, params, inputs)
    if found and not (isinstance(params, Mapping) and "params" in params):
        raise ValueError("kfac: params has no 'params' collection: give the variables dict that "
                         "module.apply takes")
    return tuple(found)


def _targets(output: str, fisher: str, y: jax.Array, key: jax.Array, label: jax.Array,
             num_samples: int) -> jax.Array:
    """Return the output-space vectors v (V, C) of one example whose sum of v v^T is its Fisher weight."""
    if output == "categorical":
        p = jax.nn.softmax(y)
        if fisher == "sampled":
            drawn = jax.random.categorical(key, y, shape=(num_samples,))
            return (jax.nn.one_hot(drawn, y.shape[-1], dtype=y.dtype) - p) / math.sqrt(num_samples)
        if fisher == "exact":
            return jnp.sqrt(p)[:, None] * (jnp.eye(y.shape[-1], dtype=y.dtype) - p)
        return (jax.nn.one_hot(label, y.shape[-1], dtype=y.dtype) - p)[None]
    if fisher == "sampled":
        return jax.random.normal(key, (num_samples, y.shape[-1]), y.dtype) / math.sqrt(num_samples)
    if fisher == "exact":
        return jnp.eye(y.shape[-1], dtype=y.dtype)
    return (label - y)[None]


def _example(module, output, fisher, num_samples, layers, params, x, key, label, mask):
    """Return one example's per-vector parameter gradients (V, ...), layer inputs and layer gradients."""
    x = tuple(a[None] for a in x)
    perturb = {_name(l.path): jnp.zeros((1, l.outputs)) for l in layers}

    def forward(p, e):
        y, seen, _ = _apply(module, p, x, e)
        if y.ndim != 2:
            raise ValueError(f"the module's output has shape {y.shape} for one example: give a module whose "
                             f"output is one array (batch, outputs)")
        return y[0], {name: calls[0][0] for name, calls in seen.items()}

    y, backward, acts = jax.vjp(forward, params, perturb, has_aux=True)
    v = _targets(output, fisher, y, key, label, num_samples) * mask
    grads, layer_grads = jax.vmap(backward)(v)
    return grads, acts, {name: g[:, 0] for name, g in layer_grads.items()}


def _ones_column(a: jax.Array, bias: bool) -> jax.Array:
    return jnp.concatenate([a, jnp.ones(a.shape[:-1] + (1,), a.dtype)], -1) if bias else a


def _statistics(kind: str, module: nn.Module, params: Any, inputs: tuple[jax.Array, ...], key: jax.Array,
                labels: jax.Array | None, output: str, fisher: str, num_samples: int, chunk: int) -> Any:
    """Validate, then run the jitted pass; return the sums divided by the number of examples, and the
    Dense layers (``kind == "kfac"``)."""
    _check_choice("output", output, OUTPUTS)
    _check_choice("fisher", fisher, FISHERS)
    num_samples = _check_count("num_samples", num_samples)
    chunk = _check_count("chunk", chunk)
    inputs = _check_inputs(inputs)
    n = inputs[0].shape[0]
    if fisher == "empirical":
        if labels is None:
            raise ValueError("labels = None is not allowed with fisher = 'empirical': give the batch's labels "
                             "(classes (N,) for categorical, targets (N, C) for gaussian)")
        labels = jnp.asarray(labels)
    else:
        labels = jnp.zeros((n,), jnp.int32)
    if labels.shape[0] != n:
        raise ValueError(f"labels have {labels.shape[0]} rows for {n} examples: give one label per example")
    layers = _dense_layers(module, params, inputs) if kind == "kfac" else ()
    return _pass(kind, module, output, fisher, num_samples, min(chunk, n), layers, params, inputs, key,
                 labels), layers


def _pad(x: jax.Array, total: int) -> jax.Array:
    return jnp.concatenate([x, jnp.repeat(x[-1:], total - x.shape[0], axis=0)]) if total > x.shape[0] else x


@functools.partial(jax.jit, static_argnums=(0, 1, 2, 3, 4, 5, 6))
def _pass(kind, module, output, fisher, num_samples, chunk, layers, params, inputs, key, labels):
    n = inputs[0].shape[0]
    total = -(-n // chunk) * chunk
    keys = _pad(jax.random.split(key, n), total)
    mask = (jnp.arange(total) < n).astype(jnp.float32)
    xs = tuple(_pad(a, total).reshape((-1, chunk) + a.shape[1:]) for a in inputs)
    batch = (xs, keys.reshape((-1, chunk) + keys.shape[1:]), _pad(labels, total).reshape((-1, chunk) +
             labels.shape[1:]), mask.reshape(-1, chunk))
    per_example = jax.vmap(lambda x, k, y, m: _example(module, output, fisher, num_samples, layers, params,
                                                       x, k, y, m))
    flat_size = ravel_pytree(params)[0].size

    def zeros():
        out: dict[str, Any] = {"diag": jax.tree_util.tree_map(jnp.zeros_like, params)}
        if kind == "full":
            out["full"] = jnp.zeros((flat_size, flat_size))
        for l in layers:
            size = l.inputs + l.bias
            out[_name(l.path)] = (jnp.zeros((size, size)), jnp.zeros((l.outputs, l.outputs)))
        return out

    def step(total_, part):
        x, k, y, m = part
        grads, acts, layer_grads = per_example(x, k, y, m)
        new = dict(total_)
        new["diag"] = jax.tree_util.tree_map(lambda s, g: s + jnp.sum(g ** 2, axis=(0, 1)), total_["diag"], grads)
        if kind == "full":
            rows = jax.vmap(jax.vmap(lambda g: ravel_pytree(g)[0]))(grads).reshape(-1, flat_size)
            new["full"] = total_["full"] + jnp.matmul(rows.T, rows, precision=jax.lax.Precision.HIGHEST)
        for l in layers:
            name = _name(l.path)
            a = _ones_column(acts[name], l.bias) * jnp.sqrt(m)[:, None]
            g = layer_grads[name].reshape(-1, l.outputs)
            a_sum, g_sum = total_[name]
            new[name] = (a_sum + a.T @ a, g_sum + g.T @ g)
        return new, None

    sums, _ = jax.lax.scan(step, zeros(), batch)
    return jax.tree_util.tree_map(lambda s: s / n, sums)


def _timed(fn: Callable[[], tuple[Any, Any]]) -> tuple[tuple[Any, Any], float]:
    """Return ``fn()`` (arrays, static part) and the seconds until its arrays were ready."""
    start = time.perf_counter()
    arrays, static = fn()
    jax.block_until_ready(arrays)
    return (arrays, static), time.perf_counter() - start


# ---------------------------------------------------------------------------------------------
# the estimates


def identity(params: Any) -> Curvature:
    """Return ``H = I`` (the L2 penalty): nothing is estimated."""
    del params
    return Curvature("identity")


def diagonal_fisher(module: nn.Module, params: Any, inputs: tuple[jax.Array, ...], key: jax.Array, *,
                    output: str, fisher: str = "sampled", num_samples: int = 1, labels: Any = None,
                    chunk: int = CHUNK) -> Curvature:
    """Return the diagonal of the Fisher, averaged over the examples (EWC).

    Args:
      module, params: the model; ``module.apply(params, *inputs)`` gives ``(N, C)``.
      inputs: the task's inputs, a tuple of arrays batched on axis 0.
      key: PRNG key of the sampled labels (unused unless ``fisher == "sampled"``).
      output: one of ``OUTPUTS``.
      fisher: one of ``FISHERS`` (module docstring).
      num_samples: labels drawn per example (``fisher == "sampled"``).
      labels: (N,) classes or (N, C) targets, for ``fisher == "empirical"``.
      chunk: examples per step of the pass (memory, not the result).
    """
    (stats, _), seconds = _timed(lambda: _statistics("diagonal", module, params, inputs, key, labels, output,
                                                     fisher, num_samples, chunk))
    return Curvature("diagonal", diagonal=stats["diag"], seconds=seconds)


def kfac(module: nn.Module, params: Any, inputs: tuple[jax.Array, ...], key: jax.Array, *, output: str,
         fisher: str = "sampled", num_samples: int = 1, labels: Any = None, chunk: int = CHUNK) -> Curvature:
    """Return K-FAC's factors per Dense layer, and the diagonal Fisher of every other parameter.

    Arguments as :func:`diagonal_fisher`. Raises ValueError if a Dense is called
    more than once or on inputs of more than two axes.
    """
    (stats, layers), seconds = _timed(lambda: _statistics("kfac", module, params, inputs, key, labels, output,
                                                          fisher, num_samples, chunk))
    diag = stats["diag"]
    covered = {("params", *l.path, leaf) for l in layers for leaf in ("kernel", "bias")}
    diag = jax.tree_util.tree_map_with_path(
        lambda kp, d: jnp.zeros_like(d) if _key_names(kp) in covered else d, diag)
    factors = tuple(KroneckerFactors(l.path, l.bias, *stats[_name(l.path)]) for l in layers)
    return Curvature("kfac", diagonal=diag, factors=factors, seconds=seconds)


def full_fisher(module: nn.Module, params: Any, inputs: tuple[jax.Array, ...], key: jax.Array, *,
                output: str, fisher: str = "sampled", num_samples: int = 1, labels: Any = None,
                chunk: int = CHUNK, limit: int = FULL_LIMIT) -> Curvature:
    """Return the full (P, P) Fisher (Gauss-Newton for ``"gaussian"``) over the flattened parameters.

    Arguments as :func:`diagonal_fisher`; refused (ValueError) above ``limit`` parameters.
    """
    _check_size(params, limit, "full")
    (stats, _), seconds = _timed(lambda: _statistics("full", module, params, inputs, key, labels, output,
                                                     fisher, num_samples, chunk))
    return Curvature("full", matrix=stats["full"], seconds=seconds)


def hessian(module: nn.Module, params: Any, inputs: tuple[jax.Array, ...], labels: Any, *, output: str,
            limit: int = FULL_LIMIT) -> Curvature:
    """Return the exact (P, P) Hessian of the mean negative log-likelihood of ``labels``.

    The loss is the cross-entropy of the logits (``"categorical"``, labels (N,)
    classes) or ``0.5 ||label - mean||^2`` (``"gaussian"``, labels (N, C)). Unlike
    the Fisher it may be indefinite, so a penalty built on it may be unbounded below.
    Refused (ValueError) above ``limit`` parameters.
    """
    _check_choice("output", output, OUTPUTS)
    _check_size(params, limit, "hessian")
    inputs = _check_inputs(inputs)
    labels = jnp.asarray(labels)
    flat, unravel = ravel_pytree(params)

    def loss(w):
        y = module.apply(unravel(w), *inputs)
        if output == "categorical":
            return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(y), labels[:, None], axis=-1))
        return 0.5 * jnp.mean(jnp.sum((labels - y) ** 2, axis=-1))

    (matrix, _), seconds = _timed(lambda: (jax.jit(jax.hessian(loss))(flat), None))
    return Curvature("full", matrix=matrix, seconds=seconds)


def estimate(form: str, module: nn.Module, params: Any, inputs: tuple[jax.Array, ...], key: jax.Array,
             **options: Any) -> Curvature:
    """Return the curvature of ``form`` (one of ``FORMS``); ``options`` as :func:`diagonal_fisher`."""
    _check_choice("form", form, FORMS)
    if form == "identity":
        return identity(params)
    return {"diagonal": diagonal_fisher, "kfac": kfac, "full": full_fisher}[form](
        module, params, inputs, key, **options)


# ---------------------------------------------------------------------------------------------
# products, penalties, dense matrices


def _kfac_blocks(curvature: Curvature, tangent: Any) -> dict[tuple[Any, ...], jax.Array]:
    """Return ``A dW G`` of every Dense, split back into its kernel and bias, keyed by leaf path."""
    blocks = {}
    for f in curvature.factors:
        base = ("params", *f.path)
        node = _get(tangent, base)
        dw = jnp.concatenate([node["kernel"], node["bias"][None]]) if f.bias else node["kernel"]
        product = f.a @ dw @ f.g
        rows = node["kernel"].shape[0]
        blocks[base + ("kernel",)] = product[:rows]
        if f.bias:
            blocks[base + ("bias",)] = product[rows]
    return blocks


def matvec(curvature: Curvature, tangent: Any) -> Any:
    """Return ``H @ tangent``, shaped as ``tangent`` (the parameters' pytree); H is never formed."""
    form = curvature.form
    if form == "identity":
        return tangent
    if form == "diagonal":
        return jax.tree_util.tree_map(jnp.multiply, curvature.diagonal, tangent)
    if form == "full":
        flat, unravel = ravel_pytree(tangent)
        return unravel(curvature.matrix @ flat)
    _check_choice("form", form, FORMS)
    blocks = _kfac_blocks(curvature, tangent)
    return jax.tree_util.tree_map_with_path(
        lambda kp, d, t: blocks.get(_key_names(kp), d * t), curvature.diagonal, tangent)


def quadratic_penalty(anchor: Any, curvature: Curvature, weight: float = 1.0) -> QuadraticPenalty:
    """Return the penalty ``weight * 0.5 (w - anchor)^T H (w - anchor)``; ``weight`` finite and >= 0."""
    _check_choice("form", curvature.form, FORMS)
    return QuadraticPenalty(anchor, curvature, check_weight(weight))


def stack(penalties: Sequence[QuadraticPenalty]) -> QuadraticPenalty:
    """Return one penalty whose every array has a leading axis, one entry per penalty (same structure)."""
    if not penalties:
        raise ValueError("penalties = [] is not allowed: give at least one penalty to stack")
    return jax.tree_util.tree_map(lambda *xs: jnp.stack([jnp.asarray(x) for x in xs]), *penalties)


def padded_stack(penalties: Sequence[QuadraticPenalty], size: int,
                 like: QuadraticPenalty | None = None) -> QuadraticPenalty:
    """Return :func:`stack` of ``penalties`` padded to ``size`` slots with zero penalties.

    A zero penalty (every array zero, so its value is 0 at any parameters) has the
    structure of ``like``, by default of the first penalty. A fixed number of slots
    keeps a compiled update's shapes the same as penalties arrive.
    """
    template = penalties[0] if like is None else like
    empty = jax.tree_util.tree_map(jnp.zeros_like, template)
    return stack(list(penalties) + [empty] * (size - len(penalties)))


def total_penalty(penalties: QuadraticPenalty | Sequence[QuadraticPenalty], params: Any) -> jax.Array:
    """Return the sum of the penalties at ``params``: a list, or a stacked penalty (:func:`stack`)."""
    if isinstance(penalties, QuadraticPenalty):
        return jnp.sum(jax.vmap(lambda p: p.value(params))(penalties))
    return sum((p.value(params) for p in penalties), jnp.zeros(()))


def total_grad(penalties: QuadraticPenalty | Sequence[QuadraticPenalty], params: Any) -> Any:
    """Return the gradient of :func:`total_penalty` at ``params``, one product with each H."""
    if isinstance(penalties, QuadraticPenalty):
        grads = jax.vmap(lambda p: p.grad(params))(penalties)
        return jax.tree_util.tree_map(lambda g: jnp.sum(g, axis=0), grads)
    out = jax.tree_util.tree_map(jnp.zeros_like, params)
    for p in penalties:
        out = jax.tree_util.tree_map(jnp.add, out, p.grad(params))
    return out


def dense(curvature: Curvature, params: Any, limit: int = FULL_LIMIT) -> jax.Array:
    """Return H as a (P, P) matrix in ``ravel_pytree(params)`` order (small models: ``limit``)."""
    size = _check_size(params, limit, "dense")
    if curvature.form == "full":
        return curvature.matrix
    _, unravel = ravel_pytree(params)
    column = jax.jit(jax.vmap(lambda e: ravel_pytree(matvec(curvature, unravel(e)))[0]))
    return column(jnp.eye(size)).T


def relative_error(approx: Curvature, full: Curvature, params: Any, limit: int = FULL_LIMIT) -> float:
    """Return ``||H - H_approx||_F / ||H||_F`` with ``H = full``; the identity is scaled best (``tr H / P``)."""
    reference = dense(full, params, limit)
    if approx.form == "identity":
        size = reference.shape[0]
        other = jnp.trace(reference) / size * jnp.eye(size)
    else:
        other = dense(approx, params, limit)
    return float(jnp.linalg.norm(reference - other) / jnp.linalg.norm(reference))


__all__ = ["CHUNK", "FISHERS", "FORMS", "FULL_LIMIT", "OUTPUTS", "Curvature", "KroneckerFactors",
           "QuadraticPenalty", "check_weight", "dense", "diagonal_fisher", "estimate", "full_fisher", "hessian",
           "identity", "kfac", "matvec", "num_params", "padded_stack", "quadratic_penalty", "relative_error", "stack",
           "total_grad", "total_penalty"]
