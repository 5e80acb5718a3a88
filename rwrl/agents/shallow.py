"""Shallow updates: re-solve the last Dense layer of a deep value network by regularised least squares.

Levine, Zahavy, Mankowitz, Tamar and Mannor 2017, "Shallow Updates for Deep
Reinforcement Learning" (NeurIPS; arXiv 1705.07461), LS-DQN: every so many
gradient steps, treat the network's last hidden layer as fixed features
``phi(x)`` (the INPUT of the head Dense), re-solve the head's weights by the
fitted-Q least-squares problem over a large batch with a Gaussian prior centred
at the current weights, then go on with deep training from the refitted head::

    w = (Phi^T Phi + lam I)^{-1} (Phi^T y + lam w_current)

the minimiser of ``||Phi w - y||^2 + lam ||w - w_current||^2``. One piece for
every user: LS-DQN (one solve per action), LS-FQE (``rwrl.ope.fqe``, the FQE
critic) and the TD3 critic.

Example (a linear model, whose head input is the data itself)::

    >>> import flax.linen as nn, jax, jax.numpy as jnp
    >>> net = nn.Dense(1)
    >>> x = jnp.array([[0.0], [1.0], [2.0]])
    >>> params = net.init(jax.random.PRNGKey(0), x)
    >>> features, path = head_features(net, params, x)
    >>> path
    ()
    >>> fitted = refit_head(params, path, features, jnp.array([1.0, 3.0, 5.0]), lam=1e-6)
    >>> [round(float(v), 3) for v in (fitted["params"]["kernel"][0, 0], fitted["params"]["bias"][0])]
    [2.0, 1.0]

Sources read: the paper's abstract and introduction (NeurIPS proceedings page,
deepai.org), and the authors' code, ``NeuralQLearnerShallow.lua`` of
github.com/Shallow-Updates-for-Deep-RL/Shallow_Updates_for_Deep_RL (its
``fitted_q_update``); the body of the paper was not available, so what its
sections say is not quoted here. What they fix, and what is chosen:

* Regularisation: the authors' code averages over the N refit samples,
  ``A = (1/N) sum phi phi^T``, ``b = (1/N) sum phi y``, then solves
  ``(A + lambda I) w = b + lambda w_prior`` with ``lambda = 1`` by default and the
  prior the current last layer. ``ridge_solve`` and ``refit_head`` take SUMS (the
  formula above), so the paper's ``lambda`` is ``lam / N`` here: a caller that
  states its lambda per sample, as LS-FQE does (``ls_lambda``), passes
  ``lam = ls_lambda * N`` (N the whole batch, also in a per-action solve).
* Batch: the whole replay memory (``N = replay_memory - 10``, 1M transitions in
  DQN's Atari setting). The abstract attributes the gain to this large batch:
  "the performance improvement can be attributed to the large batch size used
  by the LS method when optimizing the last layer". Each caller states its own.
* How often: every ``between_SRL = 50`` target-network updates (10,000 steps
  each: every 500,000 steps), right before the target copy, so the target
  network takes the refitted head. Each caller states its own.
* Bias: included, as a feature of ones per action, and in the prior: the
  bias is regularised toward its CURRENT value, like the kernel (not toward 0).
  Same here (a head without bias is refitted without one).
* Per action (DQN): the features are placed in a block per action, so
  ``A`` is block diagonal and the problem splits into one solve per action over
  the samples that took it, all with the same lambda: ``column=k``,
  ``rows=(actions == k)``, one call per action.
* Gradient-step refit (the paper's ablation of how the head is re-solved): not
  read here beyond the abstract's sentence above; this module gives the
  closed-form solve only.
* Solve: Cholesky factorisation of ``Phi^T Phi + lam I`` (symmetric positive
  definite for ``lam > 0``), never an explicit inverse (the authors' code uses a
  least-squares solve, ``torch.gels``). In float64 when JAX runs with x64
  enabled; otherwise in float32 with the Gram matrix at HIGHEST matmul precision
  (a GPU would otherwise use TF32, about 1e-3 relative error). The float32
  solution's relative error is about ``cond(Phi^T Phi + lam I) * 6e-8``; the
  tests hold it to 1e-4 of a float64 numpy solve for conditions up to about 1e3.
* ``lam = 0`` is plain least squares and needs features of full column rank; a
  system singular to working precision (a squared Cholesky pivot below F * eps of
  the largest diagonal entry) gives NaN from ``ridge_solve``, and ``refit_head``
  then keeps the current head (it cannot raise under ``jit``). With ``lam > 0``
  every pivot is at least ``lam``, so this happens only for ``lam`` that small.
* The refit assumes the network's output IS the head Dense's output (as the FQE
  scalar critic, whose output is Q / value_scale); a transform after the head
  (tanh, softmax) is not undone: express the targets in the head's units.

Shapes: N samples, F_in inputs of the head Dense, K its outputs; with the bias as
a last feature column of ones the solve has F = F_in + 1 unknowns.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax.core import FrozenDict


class ShallowConfigError(ValueError):
    """A bad refit setting or input; the message is one line naming the field and what is allowed."""


def _show(value: Any) -> str:
    return str(value) if isinstance(value, numbers.Number) else repr(value)


def _check_lambda(lam: Any, name: str) -> None:
    if isinstance(lam, jax.core.Tracer):
        return  # a traced lambda is checked where it was made
    try:
        value = float(lam)
    except (TypeError, ValueError):
        value = math.nan
    if isinstance(lam, bool) or not math.isfinite(value) or value < 0:
        raise ShallowConfigError(f"{name} = {_show(lam)}: must be finite and >= 0")


def check_refit(every: int | None, lam: float) -> None:
    """Raise ShallowConfigError unless ``every`` (steps between refits) and ``lam`` are valid.

    Args:
      every: gradient steps between two refits, an integer >= 1, or None (no refit).
      lam: the prior weight, finite and >= 0 (checked also when ``every`` is None).
    """
    if every is not None and (isinstance(every, bool) or not isinstance(every, numbers.Integral)
                              or every < 1):
        raise ShallowConfigError(f"ls_every = {_show(every)}: must be an integer >= 1 (or None: no refit)")
    _check_lambda(lam, "ls_lambda")


def _solve_dtype():
    """float64 where JAX runs with x64 enabled, float32 otherwise."""
    return jax.dtypes.canonicalize_dtype(jnp.float64)


def ridge_solve(features: jax.Array, targets: jax.Array, current: jax.Array, lam: float) -> jax.Array:
    """Return ``(Phi^T Phi + lam I)^{-1} (Phi^T y + lam w_current)`` by a Cholesky solve.

    The ridge regression of ``targets`` on ``features`` with a Gaussian prior
    centred at ``current`` (Levine et al. 2017, the FQI form of the LS update).
    Sums, not means: the paper's per-sample lambda is ``lam / N``.

    Args:
      features: (N, F) Phi.
      targets: (N,) y.
      current: (F,) w_current, the prior's centre.
      lam: prior weight, finite and >= 0 (0 needs Phi of full column rank).

    Returns:
      (F,) weights, float64 if JAX has x64 enabled, else float32 (see the module docstring);
      all NaN where ``Phi^T Phi + lam I`` is singular to working precision (a squared
      Cholesky pivot below F * eps of its largest diagonal entry).
    """
    phi, y, w0 = jnp.asarray(features), jnp.asarray(targets), jnp.asarray(current)
    if phi.ndim != 2 or y.shape != phi.shape[:1] or w0.shape != phi.shape[1:]:
        raise ShallowConfigError(f"features (N, F), targets (N,) and current (F,) expected, got "
                                 f"{phi.shape}, {y.shape}, {w0.shape}")
    _check_lambda(lam, "lam")
    dtype = _solve_dtype()
    phi, y, w0 = phi.astype(dtype), y.astype(dtype), w0.astype(dtype)
    highest = jax.lax.Precision.HIGHEST
    gram = jnp.matmul(phi.T, phi, precision=highest) + lam * jnp.eye(phi.shape[1], dtype=dtype)
    rhs = jnp.matmul(phi.T, y, precision=highest) + lam * w0
    cholesky = jnp.linalg.cholesky(gram)  # lower; NaN where gram is not positive definite
    # a pivot this small relative to the largest diagonal entry: singular to working precision
    tiny = phi.shape[1] * jnp.finfo(dtype).eps * jnp.max(jnp.diagonal(gram))
    solved = jax.scipy.linalg.cho_solve((cholesky, True), rhs)
    return jnp.where(jnp.all(jnp.diagonal(cholesky) ** 2 > tiny), solved, jnp.nan)


def head_features(module: nn.Module, params, *args, **kwargs) -> tuple[jax.Array, tuple[str, ...]]:
    """Return the input of the last ``nn.Dense`` that ``module.apply`` calls, and that Dense's path.

    Runs ``module.apply(params, *args, **kwargs)`` once with a method interceptor
    (``flax.linen.intercept_methods``), so it works on any flax network, and under ``jit``.

    Returns:
      features: (N, F_in), the head's input with all leading axes flattened into N.
      path: the head's names inside ``params["params"]`` (``()`` if ``module`` is the Dense).

    Raises:
      ShallowConfigError: the network called no Dense layer.
    """
    calls = []

    def record(next_fun, call_args, call_kwargs, context):
        if isinstance(context.module, nn.Dense) and context.method_name == "__call__":
            calls.append((call_args[0], tuple(context.module.path)))
        return next_fun(*call_args, **call_kwargs)

    with nn.intercept_methods(record):
        module.apply(params, *args, **kwargs)
    if not calls:
        raise ShallowConfigError(f"the network has no Dense layer: {type(module).__name__} called none, "
                                 f"so it has no last layer to refit")
    inputs, path = calls[-1]
    return inputs.reshape(-1, inputs.shape[-1]), path


def _head(params, path: Sequence[str]) -> Mapping[str, Any]:
    node = params.get("params") if isinstance(params, Mapping) else None
    for name in path:
        node = node.get(name) if isinstance(node, Mapping) else None
    if not isinstance(node, Mapping) or "kernel" not in node or np.ndim(node["kernel"]) != 2:
        raise ShallowConfigError(f"path = {tuple(path)!r}: no Dense kernel at params['params'] there "
                                 f"(give the path head_features returns)")
    return node


def _replace(tree: Mapping[str, Any], keys: Sequence[str], value: Any) -> Mapping[str, Any]:
    """Return a copy of the nested mapping ``tree`` with ``tree[k0][k1]... = value`` (no mutation)."""
    if not keys:
        return value
    new = dict(tree)
    new[keys[0]] = _replace(tree[keys[0]], keys[1:], value)
    return FrozenDict(new) if isinstance(tree, FrozenDict) else new


def refit_head(params, path: Sequence[str], features: jax.Array, targets: jax.Array, lam: float,
               column: int | None = None, rows: jax.Array | None = None):
    """Return ``params`` with the head Dense at ``path`` re-solved by ``ridge_solve`` (a new pytree).

    The bias is a last feature column of ones and, like the kernel, is drawn
    toward its current value by the prior (as in the authors' code).

    Args:
      params: the network's variables, ``{"params": ...}``.
      path: the head's names inside ``params["params"]`` (from ``head_features``).
      features: (N, F_in) the head's inputs (from ``head_features``).
      targets: (N,) what the head's output should be, in its units.
      lam: prior weight on SUMS over the N samples (the paper's per-sample lambda times N).
      column: None: the head has one output, refitted; k: refit output k only (DQN: action k),
        the other outputs unchanged.
      rows: (N,) bool mask of the samples to fit (DQN: those that took action k); None: all.

    Returns:
      New params; the head unchanged where the solve is not finite (lam = 0, singular features).
    """
    head = _head(params, path)
    kernel, bias = jnp.asarray(head["kernel"]), head.get("bias")
    fan_in, outputs = kernel.shape
    phi, y = jnp.asarray(features), jnp.asarray(targets)
    if phi.ndim != 2 or phi.shape[1] != fan_in:
        raise ShallowConfigError(f"features of shape {phi.shape}: the head at {tuple(path)!r} takes "
                                 f"(N, {fan_in})")
    if y.shape != phi.shape[:1]:
        raise ShallowConfigError(f"targets of shape {y.shape}: must be ({phi.shape[0]},), one per feature row")
    if column is None:
        if outputs != 1:
            raise ShallowConfigError(f"column = None: the head at {tuple(path)!r} has {outputs} outputs; "
                                     f"pass column=k (0 <= k < {outputs}) to refit output k")
        column = 0
    elif isinstance(column, bool) or not isinstance(column, numbers.Integral) or not 0 <= column < outputs:
        raise ShallowConfigError(f"column = {_show(column)}: must be an integer in [0, {outputs})")
    if rows is not None:
        rows = jnp.asarray(rows)
        if rows.shape != y.shape or rows.dtype != jnp.bool_:
            raise ShallowConfigError(f"rows of shape {rows.shape} and dtype {rows.dtype}: must be a bool "
                                     f"mask of shape ({phi.shape[0]},)")
    current = kernel[:, column]
    if bias is not None:
        phi = jnp.concatenate([phi, jnp.ones((phi.shape[0], 1), phi.dtype)], axis=1)
        current = jnp.append(current, jnp.asarray(bias)[column])
    if rows is not None:  # a masked-out row adds 0 to Phi^T Phi and to Phi^T y
        phi, y = phi * rows[:, None].astype(phi.dtype), y * rows.astype(y.dtype)
    solved = ridge_solve(phi, y, current, lam)
    solved = jnp.where(jnp.all(jnp.isfinite(solved)), solved, current.astype(solved.dtype))
    new_head = dict(head, kernel=kernel.at[:, column].set(solved[:fan_in].astype(kernel.dtype)))
    if bias is not None:
        bias = jnp.asarray(bias)
        new_head["bias"] = bias.at[column].set(solved[fan_in].astype(bias.dtype))
    if isinstance(head, FrozenDict):
        new_head = FrozenDict(new_head)
    return _replace(params, ("params", *path), new_head)
