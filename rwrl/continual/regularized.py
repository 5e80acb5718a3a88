"""Regularization-based continual learning of a digits classifier: finetune, L2, EWC, KFAC, full, multi-task.

Yin, Farajtabar, Li, Levine and Mott (arXiv 2006.10974) view a quadratic
regulariser as the second-order Taylor model of each past task's loss, and
compare the approximations of its Hessian on permuted MNIST (20 tasks, an MLP
of two hidden layers, learning rate 1e-3, batch 10, lambda tuned per method).
This module trains one classifier over a task sequence of
``rwrl.continual.digits`` and measures what the paper measures, plus forgetting
and the approximation error of each curvature. Methods (``METHODS``):

* ``"finetune"``: the new task's loss alone (the paper's "SGD").
* ``"l2"``, ``"ewc"``, ``"kfac"``, ``"full"``: plus ``lam`` times the sum over
  past tasks of ``0.5 (w - w_k)^T H_k (w - w_k)``, with ``H_k`` the identity,
  the diagonal Fisher, K-FAC, or the full Fisher (``rwrl.continual.curvature``),
  estimated at the end of task k on its training images.
* ``"multitask"``: every task seen so far replayed (the paper's upper bound).

Choices, fixed before any measurement:

* Network: ReLU MLP, two hidden layers of 32 units (``Config.hidden``), 10
  logits, flax's default initialisation: 3,466 parameters, so the full Fisher
  (3,466 x 3,466) is formed. The paper's widths were not read.
* Optimiser: Adam (optax defaults), learning rate 1e-3 and batch 10 (the
  paper's numbers; its optimiser was not read). Adam because the penalty's
  scale differs by orders of magnitude between methods and lambdas, and plain
  SGD at 1e-3 would diverge for a stiff ``lam * H`` or barely move for a weak
  one. Its state is reset at the start of every task; the weights carry over.
* Epochs: ``Config.epochs`` passes over the task's 1,257 training images per
  task, each a fresh permutation, the last batch filled from its start; a
  task's whole training is one jitted ``lax.scan`` over its batches.
* Curvature: the Fisher with labels sampled from the model, one per image
  (``fisher="sampled"``, ``num_samples=1``), over the task's training images,
  at the task's end. The key depends on (seed, task) only, so EWC's diagonal,
  K-FAC and the full matrix of one task end use the same labels; the
  approximation error then measures structure, not sampling noise. With one
  label per image the full Fisher has rank at most 1,257 (< 3,466): it
  constrains only the directions the task's images can see.
* Lambda: one per penalty, the same for every past task (the paper's form).
  Chosen by :func:`select_lambda` (the benchmark states the rule it uses).
* Penalty gradient: ``lam * H_k (w - w_k)`` by one product per past task
  (``curvature.total_grad``), on a stack with a slot per task (empty slots
  weigh 0), so a sequence compiles once. The full form is summed up front
  (``sum_k lam M_k`` and ``sum_k lam M_k w_k``), one (P, P) product per step
  instead of one per past task; ``merged_full_grad`` equals the stack's.
* Multi-task: at stage i, each epoch draws as many batches as the other
  methods (ceil(n / batch)) from a permutation of the union of tasks 0..i: the
  same number of steps, all data seen so far.
* Metrics: ``R[i, j]`` the test accuracy on task j after training task i;
  final average accuracy ``mean_j R[T-1, j]``; forgetting (Chaudhry et al. 2018)
  ``mean over j < T-1 of (max over i in j..T-2 of R[i, j]) - R[T-1, j]``
  (0 for one task); approximation error ``||F - H||_F / ||F||_F`` against the
  full Fisher of the same labels at each of the T-1 task ends that make a
  penalty (0 for ``"full"``; L2's identity best scaled, see ``curvature``).
* Seeds: the initial weights, batch orders and sampled labels come from
  ``numpy.random.SeedSequence(seed)``: the same seed gives the same ``R``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
import time
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

from rwrl.continual import curvature
from rwrl.continual.digits import NUM_CLASSES, Task

#: the training methods, in the order the paper's claims rank them (plus the two references).
METHODS = ("finetune", "l2", "ewc", "kfac", "full", "multitask")
#: the curvature form of each regularised method.
FORMS = {"l2": "identity", "ewc": "diagonal", "kfac": "kfac", "full": "full"}
#: the lambdas :func:`select_lambda` tries by default: the Fisher penalties from 1 (the Taylor model
#: of the mean loss, untouched) up by decades; L2 on its own scale (its H has no units of the loss).
LAMBDA_GRID: dict[str, tuple[float, ...]] = {
    "l2": (1e-4, 1e-3, 1e-2, 1e-1, 1.0),
    "ewc": (1.0, 10.0, 100.0, 1e3, 1e4),
    "kfac": (1.0, 10.0, 100.0, 1e3, 1e4),
    "full": (1.0, 10.0, 100.0, 1e3, 1e4),
}


@dataclasses.dataclass(frozen=True)
class Config:
    """How the classifier is trained and its curvature estimated (module docstring)."""

    hidden: tuple[int, ...] = (32, 32)  # hidden widths of the ReLU MLP
    epochs: int = 5  # passes over a task's training images
    batch_size: int = 10  # images per Adam step (the paper's)
    learning_rate: float = 1e-3  # Adam's (the paper's)
    fisher: str = "sampled"  # curvature.FISHERS: labels drawn from the model
    num_samples: int = 1  # labels drawn per image
    measure_error: bool = True  # also estimate the full Fisher at each task end, for the error


@dataclasses.dataclass(frozen=True)
class Result:
    """One run over a task sequence."""

    method: str
    lam: float
    seed: int
    #: (T, T): accuracy[i, j], the test accuracy on task j after training task i.
    accuracy: np.ndarray
    average_accuracy: float  # mean of the last row
    forgetting: float  # Chaudhry et al.'s, module docstring
    #: ||F - H||_F / ||F||_F at each of the T-1 task ends that make a penalty (empty if not measured
    #: or not a regularised method).
    approximation_error: tuple[float, ...]
    #: seconds of the method's own curvature estimate at each of those ends (0 for L2).
    curvature_seconds: tuple[float, ...]
    #: seconds of the full Fisher estimated for the error at each end (empty if not measured).
    full_seconds: tuple[float, ...]
    seconds: float  # the whole run, wall time


class MLP(nn.Module):
    """The classifier: flattened inputs, dense ReLU layers of ``hidden`` widths, then 10 logits."""

    hidden: tuple[int, ...]

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = x.reshape(x.shape[0], -1)
        for width in self.hidden:
            x = nn.relu(nn.Dense(width)(x))
        return nn.Dense(NUM_CLASSES)(x)


def check_config(config: Config) -> Config:
    """Return ``config``, or raise a one-line ValueError naming the first bad field."""
    hidden = config.hidden
    if not isinstance(hidden, tuple) or not hidden or any(
            isinstance(w, bool) or not isinstance(w, numbers.Integral) or w < 1 for w in hidden):
        raise ValueError(f"hidden = {hidden!r} is not allowed: give a non-empty tuple of integers >= 1")
    for name in ("epochs", "batch_size", "num_samples"):
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ValueError(f"{name} = {value!r} is not allowed: give an integer >= 1")
    rate = config.learning_rate
    if isinstance(rate, bool) or not isinstance(rate, numbers.Real) or not math.isfinite(rate) or rate <= 0:
        raise ValueError(f"learning_rate = {rate!r} is not allowed: give a finite number > 0")
    if config.fisher not in curvature.FISHERS or config.fisher == "empirical":
        raise ValueError(f"fisher = {config.fisher!r} is not allowed: give 'sampled' or 'exact'")
    return config


def _check_method(method: str) -> str:
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"method = {method!r} is not allowed: give one of {', '.join(map(repr, METHODS))}")
    return method


def _check_tasks(tasks: Sequence[Task]) -> list[Task]:
    tasks = list(tasks)
    if not tasks:
        raise ValueError("tasks = [] is not allowed: give at least one task")
    widths = {t.x_train.shape[1:] for t in tasks} | {t.x_test.shape[1:] for t in tasks}
    if len(widths) != 1:
        raise ValueError(f"tasks have inputs of shapes {sorted(widths)}: give tasks of one input shape")
    return tasks


def average_accuracy(accuracy: np.ndarray) -> float:
    """Return the final average accuracy: the mean of the last row of ``R``."""
    return float(np.mean(np.asarray(accuracy)[-1]))


def forgetting(accuracy: np.ndarray) -> float:
    """Return Chaudhry et al.'s average forgetting: mean over j < T-1 of max_{j<=i<=T-2} R[i, j] - R[T-1, j]."""
    r = np.asarray(accuracy, float)
    last = len(r) - 1
    if last < 1:
        return 0.0
    return float(np.mean([r[j:last, j].max() - r[last, j] for j in range(last)]))


# ---------------------------------------------------------------------------------------------
# training


def _orders(rng: np.random.Generator, pool: np.ndarray, rows: int, config: Config) -> np.ndarray:
    """Return (epochs * steps, batch) row indices: per epoch a permutation of ``pool``, ``steps`` batches."""
    steps = -(-rows // config.batch_size)
    out = [np.resize(rng.permutation(pool), steps * config.batch_size).reshape(steps, config.batch_size)
           for _ in range(config.epochs)]
    return np.concatenate(out).astype(np.int32)


def merged_full(penalties: Sequence[curvature.QuadraticPenalty], params: Any) -> tuple[jax.Array, jax.Array]:
    """Return ``(sum_k weight_k M_k, sum_k weight_k M_k w_k)`` of full-form penalties (flat, ravel order)."""
    size = ravel_pytree(params)[0].size
    matrix, linear = jnp.zeros((size, size)), jnp.zeros((size,))
    for p in penalties:
        anchor = ravel_pytree(p.anchor)[0]
        matrix = matrix + p.weight * p.curvature.matrix
        linear = linear + p.weight * (p.curvature.matrix @ anchor)
    return matrix, linear


def merged_full_grad(merged: tuple[jax.Array, jax.Array], params: Any) -> Any:
    """Return the gradient of the summed full penalties at ``params``: ``M w - b``, shaped as params."""
    flat, unravel = ravel_pytree(params)
    matrix, linear = merged
    return unravel(matrix @ flat - linear)


def _penalty_grad(penalty: Any, params: Any) -> Any:
    if penalty is None:
        return jax.tree_util.tree_map(jnp.zeros_like, params)
    if isinstance(penalty, curvature.QuadraticPenalty):
        return curvature.total_grad(penalty, params)
    return merged_full_grad(penalty, params)


@functools.partial(jax.jit, static_argnames=("model", "learning_rate"))
def _fit(model: MLP, learning_rate: float, params: Any, penalty: Any, x: jax.Array, y: jax.Array,
         order: jax.Array) -> Any:
    """Return ``params`` after one Adam step per row of ``order`` (fresh optimiser state)."""
    optimiser = optax.adam(learning_rate)

    def loss(p, idx):
        logits = model.apply(p, x[idx])
        return optax.softmax_cross_entropy_with_integer_labels(logits, y[idx]).mean()

    def step(carry, idx):
        p, state = carry
        grads = jax.tree_util.tree_map(jnp.add, jax.grad(loss)(p, idx), _penalty_grad(penalty, p))
        change, state = optimiser.update(grads, state, p)
        return (optax.apply_updates(p, change), state), None

    (params, _), _ = jax.lax.scan(step, (params, optimiser.init(params)), order)
    return params


@functools.partial(jax.jit, static_argnames=("model",))
def _accuracy(model: MLP, params: Any, x: jax.Array, y: jax.Array) -> jax.Array:
    return jnp.mean(jnp.argmax(model.apply(params, x), axis=-1) == y)


def run(tasks: Sequence[Task], method: str, lam: float, seed: int, config: Config = Config()) -> Result:
    """Train one classifier over ``tasks`` in order with ``method``; return its accuracy matrix and metrics.

    Args:
      tasks: the sequence (``digits.permuted_digits``); each task's training rows are used only
        while it lasts (and by ``"multitask"`` afterwards).
      method: one of ``METHODS``.
      lam: the penalty's weight, finite and >= 0 (ignored by ``"finetune"`` and ``"multitask"``).
      seed: the initial weights, batch orders and sampled labels.
    """
    start = time.perf_counter()
    method, tasks, config = _check_method(method), _check_tasks(tasks), check_config(config)
    lam = curvature.check_weight(lam, "lam")
    model = MLP(tuple(config.hidden))
    init_seed, order_seed, key_seed = np.random.SeedSequence(seed).generate_state(3)
    rng = np.random.default_rng(int(order_seed))
    x = jnp.asarray(np.concatenate([t.x_train for t in tasks]))
    y = jnp.asarray(np.concatenate([t.y_train for t in tasks]))
    offsets = np.cumsum([0] + [len(t.y_train) for t in tasks])
    params = model.init(jax.random.PRNGKey(int(init_seed)), x[:1])
    form = FORMS.get(method)
    count = len(tasks)
    accuracy = np.zeros((count, count))
    penalties: list[curvature.QuadraticPenalty] = []
    errors, own_seconds, full_seconds = [], [], []
    penalty = None
    for i, task in enumerate(tasks):
        pool = np.arange(offsets[0] if method == "multitask" else offsets[i], offsets[i + 1])
        order = _orders(rng, pool, len(task.y_train), config)
        params = _fit(model, float(config.learning_rate), params, penalty, x, y, jnp.asarray(order))
        for j, other in enumerate(tasks):
            accuracy[i, j] = float(_accuracy(model, params, jnp.asarray(other.x_test), jnp.asarray(other.y_test)))
        if form is None or i == count - 1:
            continue
        key = jax.random.fold_in(jax.random.PRNGKey(int(key_seed)), i)
        options = dict(output="categorical", fisher=config.fisher, num_samples=config.num_samples)
        inputs = (jnp.asarray(task.x_train),)
        estimate = curvature.estimate(form, model, params, inputs, key, **options)
        own_seconds.append(float(estimate.seconds))
        if config.measure_error:
            full = estimate if form == "full" else curvature.full_fisher(model, params, inputs, key, **options)
            full_seconds.append(float(full.seconds))
            errors.append(0.0 if form == "full" else curvature.relative_error(estimate, full, params))
        penalties.append(curvature.quadratic_penalty(params, estimate, lam))
        penalty = merged_full(penalties, params) if form == "full" else curvature.padded_stack(penalties, count - 1)
    return Result(method, lam, int(seed), accuracy, average_accuracy(accuracy), forgetting(accuracy),
                  tuple(errors), tuple(own_seconds), tuple(full_seconds), time.perf_counter() - start)


def validation_tasks(tasks: Sequence[Task], count: int = 2, fraction: float = 0.2,
                     split_seed: int = 0) -> list[Task]:
    """Return the first ``count`` tasks with ``fraction`` of their training rows held out as their test rows.

    The same rows are held out in every task (the permuted tasks show the same
    images), drawn from ``split_seed``; the tasks' own test rows are not used.
    """
    tasks = _check_tasks(tasks)
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction = {fraction!r} is not allowed: give a number in (0, 1)")
    if isinstance(count, bool) or not isinstance(count, numbers.Integral) or not 1 <= count <= len(tasks):
        raise ValueError(f"count = {count!r} is not allowed: give an integer in 1..{len(tasks)}")
    out = []
    for t in tasks[:count]:
        rows = np.random.default_rng(split_seed).permutation(len(t.y_train))
        held = rows[:int(round(fraction * len(rows)))]
        kept = np.sort(rows[len(held):])
        held = np.sort(held)
        out.append(Task(t.name + "-validation", t.x_train[kept], t.y_train[kept], t.x_train[held],
                        t.y_train[held], t.classes))
    return out


def select_lambda(tasks: Sequence[Task], method: str, grid: Sequence[float] | None = None, seed: int = 0,
                  config: Config = Config()) -> tuple[float, dict[float, float]]:
    """Return the lambda of ``grid`` with the best validation average accuracy, and every lambda's score.

    The rule: train on ``validation_tasks(tasks)`` (tasks 0 and 1, 80 % of their
    training rows), score each lambda by the mean accuracy on the held-out 20 %
    of both tasks after task 1; the best score wins, a tie goes to the smaller
    lambda. The approximation error is not measured here.
    """
    method = _check_method(method)
    if method not in FORMS:
        raise ValueError(f"method = {method!r} has no lambda: give one of {', '.join(map(repr, FORMS))}")
    grid = tuple(sorted(curvature.check_weight(v, "grid") for v in (LAMBDA_GRID[method] if grid is None else grid)))
    if not grid:
        raise ValueError("grid = () is not allowed: give at least one lambda")
    held = validation_tasks(tasks)
    quick = dataclasses.replace(config, measure_error=False)
    scores = {lam: run(held, method, lam, seed, quick).average_accuracy for lam in grid}
    best = max(scores.values())
    return next(lam for lam in grid if scores[lam] == best), scores


__all__ = ["FORMS", "LAMBDA_GRID", "METHODS", "MLP", "Config", "Result", "average_accuracy", "check_config",
           "forgetting", "merged_full", "merged_full_grad", "run", "select_lambda", "validation_tasks"]
