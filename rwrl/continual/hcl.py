"""HCL: task-agnostic continual learning with a flow whose base has a component per (task, class).

Kirichenko, Farajtabar, Rao, Lakshminarayanan, Levine, Li, Hu, Wilson and Pascanu 2021,
"Task-agnostic Continual Learning with Hybrid Probabilistic Models" (arXiv 2106.12772, INNF+
workshop at ICML 2021). What was read: the abstract and OpenReview TL;DR (PAPERS.md, section 2):
one normalizing flow models "each task and each class"; it classifies, identifies task changes
by "anomaly detection techniques based on measuring the typicality of the model's statistics",
and avoids forgetting by generative replay (HCL-GR) or "a novel functional regularization"
(HCL-FR). The body was not readable and no code by the authors was found (searched: GitHub
code and issues, the paper's pages); the typicality test is Nalisnick, Matsukawa, Teh and
Lakshminarayanan 2019 (arXiv 1906.02994; its abstract read, the algorithm as recalled: the
statistic ``|-(1/M) sum_m log p(x_m) - H|`` of a batch of M inputs, H the mean negative
log-likelihood of the training data, against the alpha-quantile of that statistic over
bootstrap batches of held-out data). Every other detail below is chosen here, and says so.

The model (``rwrl.continual.flow``): one RealNVP ``f`` and a Gaussian-mixture base with one
component per (task, class), ``k = task * num_classes + class``, ``max_tasks * num_classes``
components allocated up front (tasks are discovered, not declared).

* Components: identity covariance, learned means (``flow``). A component's mean is placed when
  the component is first trained, at the mean latent ``f(x)`` of its inputs in that batch
  (data-dependent, like Glow's actnorm), then learned. Why (changed after a first
  measurement): Adam moves a mean about ``learning_rate`` per step, so a mean drawn at random
  stays where it was drawn for thousands of steps; drawn close to another task's (a synthetic
  6-d stream), the two tasks' densities overlapped and a return to the first task went
  unseen; drawn 8 apart, the flow could not carry the data that far within a task. At a
  declared change the new components are placed from the batch that declared it (the first
  waiting batch may still be the old task's).

* Training (the paper: "maximum likelihood"; the form chosen): each batch of the current task
  ``t`` takes ``steps_per_batch`` Adam steps on ``-mean_i log p(x_i | t, y_i)`` (nats per
  example), with the global gradient norm clipped at ``clip_norm``; no weight decay.
* Classification by Bayes' rule over the components seen so far, with a uniform prior over
  them: ``p(y | x) ∝ sum_t p(x | t, y)``, the sum over the tasks in which class y was seen
  (a class seen in two tasks has two components; both count). Test inputs use the centre of
  each pixel level (``flow.dequantize`` without noise).
* HCL-GR (chosen: Shin et al. 2017's generative replay with the flow as generator): at each task
  switch the parameters are copied (``snapshot``); every step adds ``replay_size`` samples
  ``x = f_snapshot^{-1}(mu_k + T eps)``, k uniform over the components seen before the
  switch and not in the current task, T = ``replay_temperature``, and their negative
  log-likelihood under their own component, ``-mean log p(x | k)``, with weight 1 (equal to
  the current task's term, one replay batch per data batch).
* HCL-FR (the paper's name; the loss chosen): the same generated ``x``, and the penalty
  ``fr_weight * mean_x |f(x) - f_snapshot(x)|^2`` (squared Euclidean distance of the
  latents, summed over the d latent coordinates, averaged over the samples): the flow must
  keep mapping earlier tasks' data where their components are. Old components' means get no
  gradient (no term uses them), so they stay. ``fr_weight`` = 1 by default: the penalty and the
  likelihood's ``|z - mu|^2 / 2`` are in the same units (not tuned).
* Fine-tuning (``mode="finetune"``): the same model and training with no replay and no penalty.
* Seeds: ``seed`` sets the initial weights, the replay noise, the dequantization
  noise and the bootstrap draws; the coupling masks are the same for every seed (mask seed 0),
  so that runs of different seeds share one compiled flow.
* Inputs: digits are dequantized with uniform noise and logit-squeezed (``preprocess="logit"``,
  ``flow`` module); continuous streams (``"standardize"``) are shifted and scaled by the mean
  and standard deviation of the FIRST batch seen, fixed afterwards (a fixed affine map, so
  likelihoods stay comparable across the stream; a coordinate whose first-batch deviation is
  below 1e-3 is scaled by 1); ``"none"`` leaves them. Log-likelihoods include the input
  transform's log|det|: they are densities of the data as given (dequantized for digits).

Task-change detection (typicality, after Nalisnick et al.; every constant chosen here):

* The statistic of a batch: ``ll = mean_i log p(x_i | t)`` with ``p(x | t)`` the current
  task's mixture over its seen classes (equal weights): labels are not used, so the same test
  runs on unlabelled streams. It is computed before the batch is trained on.
* The reference: the per-example scores ``log p(x | t)`` of the current task's last
  ``window`` (20) batches, each scored before it was trained on, like the batch under test.
  ``H`` = the value at the tested batch of the least-squares line through the window's batch
  means (against their order), and the threshold ``eps`` = ``c`` times the ``quantile``
  (0.99) of ``|mean of M pooled scores drawn with replacement - their mean|`` over
  ``bootstrap`` (256) draws, M the tested batch's size, ``c = sqrt(1 + 1/w + (w -
  mean(i))^2 / sum((i - mean(i))^2))`` (i = 0..w-1, w batches in the window) the line's
  prediction error in units of one batch mean's. A batch is atypical when ``|ll - H| > eps``
  (two-sided, as Nalisnick's: an input can be atypically likely). Two changes after a first
  measurement (digits, seed 0): (1) the scores are taken before training, not by rescoring
  stored inputs (tried first): a stream has no held-out set, and inputs the flow has just
  fitted scored some 4 nats above a batch not fitted since the last pass, about one ``eps``,
  which gave false alarms; (2) ``H`` follows a line, not the window's plain mean, because the
  flow still improves during a task (early on by more than ``eps`` over half a window), and
  the mean's lag gave false alarms on the high side. No inputs are stored.
* A return to an earlier task can look typical for the current task too (on a synthetic
  stream whose tasks differed only in the dynamics of ``(s, a, s' - s)``, a poorly fitted
  current task scored the returning inputs like its own: changed after that measurement). So
  a batch is also atypical when an earlier task j finds it typical (``r_j <=
  recognition_scale``, below) and explains it better than the current task by more than the
  threshold (``ll_j > ll + eps``). The component log-densities are computed once per batch,
  so this costs no extra pass of the flow.
* Warm-up: no test during the first ``warmup`` batches of a task (the new components are
  still being fitted); those batches train as the current task.
* A change is declared after ``patience`` (3) atypical batches in a row (at 1 - quantile
  per batch, a false alarm of a well-fitted task needs three one-in-a-hundred events in a
  row). Atypical batches wait unused; a typical batch ends the wait and the waiting batches
  are then trained as the current task.
* Recognition: at a change the current task's reference is kept (``H`` and the window's
  per-example scores: statistics, not data). For each earlier task ``j`` the waiting batches
  are scored under ``p(x | j)``: ``r_j = |ll_j - H_j| / sd_j``, ll_j their mean score and
  sd_j the standard deviation of task j's per-example reference scores. The task with the
  smallest ``r_j`` is resumed if ``r_j <= recognition_scale``; otherwise a new task starts.
  Per-example units, not the batch test's ``eps`` (about sd / 2 at M = 32), because the flow
  has moved since H_j was measured. ``recognition_scale`` = 5 was set after a pilot (digits,
  seed 0, one of the benchmark's seeds, 30 passes per task): after four other tasks the
  recurring task 0 scored r_0 = 2.0 (HCL-FR) and 2.8 (HCL-GR), 15 to 20 nats below H_0, and
  the new tasks' r_j were 14 or more; 5 sits between (the first choice, 3, was too close to
  HCL-GR's 2.8). With all ``max_tasks`` slots used, the smallest ``r_j`` is resumed regardless
  (``capacity_full`` in the step's report). Either way the parameters are snapshot for
  GR/FR, the waiting batches train as the new current task, and its warm-up starts.
* Detection delay (``detection_report``): ``d - b`` batches, b the index of the new task's
  first batch and d the batch at which the change is declared (the least is ``patience - 1``).
  A declaration is matched to the latest boundary before it if that boundary has none yet and
  (with ``tolerance``) ``d - b <= tolerance``; every other declaration is a false alarm.

``TaskDetector`` is the same machinery with one class (no labels) and standardised inputs, for
any (n, d) stream, e.g. an RL agent's transitions ``(s, a, s' - s)``.

Shapes: a batch is (n, d) float inputs and (n,) int labels 0..num_classes-1; log-likelihoods
are in nats per example. Times are wall-clock seconds (``time.perf_counter``).
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import json
import math
import numbers
import time
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from scipy.special import logsumexp

from rwrl.continual import flow as flows

MODES = ("fr", "gr", "finetune")
PREPROCESS = ("logit", "standardize", "none")
#: a coordinate whose first-batch standard deviation is below this is not rescaled (``"standardize"``).
MIN_SCALE = 1e-3


class HCLError(ValueError):
    """A bad HCL setting or input; the message is one line naming the field and what is allowed."""


@dataclasses.dataclass(frozen=True)
class HCLConfig:
    """Every setting of HCL and of its detector (module docstring for each choice)."""

    mode: str = "fr"  # "fr" (HCL-FR), "gr" (HCL-GR) or "finetune" (neither)
    num_classes: int = 10  # labels 0..num_classes-1; 1 for an unlabelled stream
    max_tasks: int = 8  # component slots: max_tasks * num_classes
    num_couplings: int = 6  # RealNVP affine couplings
    hidden: int = 128  # units of each coupling's two hidden layers
    preprocess: str = "logit"  # "logit" (pixels in [0, 1]), "standardize" or "none"
    pixel_levels: int = 17  # pixel values k / (levels - 1), k = 0..levels-1 (digits: 0..16)
    learning_rate: float = 1e-3  # Adam
    clip_norm: float = 10.0  # global gradient norm
    steps_per_batch: int = 1  # Adam steps per batch of the stream
    replay_size: int = 32  # generated examples per step (GR and FR)
    replay_temperature: float = 1.0  # T of the generated z = mu_k + T eps
    fr_weight: float = 1.0  # weight of HCL-FR's latent penalty
    warmup: int = 40  # batches of a task before its first test
    patience: int = 3  # atypical batches in a row that declare a change
    quantile: float = 0.99  # of the bootstrap statistic: the threshold
    bootstrap: int = 256  # bootstrap batches per threshold
    window: int = 20  # the current task's last batches whose scores form the reference (>= 3: a line is fitted)
    recognition_scale: float = 5.0  # an earlier task is resumed if r_j <= this
    seed: int = 0


def _fail(name: str, value: Any, allowed: str) -> HCLError:
    return HCLError(f"{name} = {value!r} is not allowed: {allowed}")


def _int_at_least(config: HCLConfig, name: str, low: int) -> None:
    value = getattr(config, name)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise _fail(name, value, f"give an integer >= {low}")


def _finite(config: HCLConfig, name: str, low: float, strict: bool, high: float | None = None) -> None:
    value = getattr(config, name)
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > low if strict else value >= low) and (high is None or value < high)
    if not ok:
        bound = f"{'>' if strict else '>='} {low:g}" + ("" if high is None else f" and < {high:g}")
        raise _fail(name, value, f"give a finite number {bound}")


def check_config(config: HCLConfig) -> HCLConfig:
    """Return ``config`` or raise a one-line HCLError naming the first bad field."""
    if not isinstance(config, HCLConfig):
        raise _fail("config", config, "give an HCLConfig")
    if config.mode not in MODES:
        raise _fail("mode", config.mode, f"give one of {', '.join(MODES)}")
    if config.preprocess not in PREPROCESS:
        raise _fail("preprocess", config.preprocess, f"give one of {', '.join(PREPROCESS)}")
    for name, low in (("num_classes", 1), ("max_tasks", 1), ("num_couplings", 1), ("hidden", 1),
                      ("pixel_levels", 2), ("steps_per_batch", 1), ("replay_size", 1), ("warmup", 1),
                      ("patience", 1), ("bootstrap", 2), ("window", 3), ("seed", 0)):
        _int_at_least(config, name, low)
    for name in ("learning_rate", "clip_norm", "replay_temperature", "recognition_scale"):
        _finite(config, name, 0.0, strict=True)
    _finite(config, "fr_weight", 0.0, strict=False)
    _finite(config, "quantile", 0.0, strict=True, high=1.0)
    return config


@dataclasses.dataclass(frozen=True)
class Step:
    """What ``HCL.observe`` did with one batch of the stream."""

    index: int  # the batch's place in the stream, from 0
    task: int | None  # the task it was trained as; None while it waits (atypical, change not declared)
    changed: bool  # a change was declared at this batch
    new_task: bool  # ... and a new task started
    recognised: int | None  # ... or this earlier task was resumed
    log_likelihood: float  # ll: mean log p(x | current task), nats per example (nan before it has a component)
    reference: float  # H of the current task's reference (nan in warm-up)
    statistic: float  # |ll - H|
    threshold: float  # eps: the bootstrap quantile
    atypical: bool
    pending: int  # atypical batches waiting after this one
    capacity_full: bool  # a change found every task slot used and resumed the closest task
    seconds: float


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """Accuracy of ``HCL.evaluate`` and the time it took."""

    accuracy: float
    seconds: float


@functools.partial(jax.jit, static_argnames=("flow",))
def _latents(flow: flows.RealNVP, params: Any, u: jax.Array) -> jax.Array:
    return flows.forward(flow, params, u)[0]


@functools.partial(jax.jit, static_argnames=("flow",))
def _log_probs(flow: flows.RealNVP, params: Any, u: jax.Array) -> jax.Array:
    return flows.log_prob(flow, params, u)


def _loss(flow: flows.RealNVP, mode: str, fr_weight: float, temperature: float, replay_size: int,
          params: Any, snapshot: Any, u: jax.Array, comps: jax.Array, old_logits: jax.Array,
          has_old: jax.Array, key: jax.Array) -> jax.Array:
    """Return the batch loss: the current task's NLL, plus GR's or FR's term on generated inputs."""
    rows = jnp.arange(u.shape[0])
    nll = -jnp.mean(flows.log_prob(flow, params, u)[rows, comps])
    if mode == "finetune":
        return nll
    pick, noise = jax.random.split(key)
    replay_comps = jax.random.categorical(pick, old_logits, shape=(replay_size,))
    replay = jax.lax.stop_gradient(flows.sample(flow, snapshot, noise, replay_comps, temperature))
    if mode == "gr":
        extra = -jnp.mean(flows.log_prob(flow, params, replay)[jnp.arange(replay_size), replay_comps])
    else:
        z_now, _ = flows.forward(flow, params, replay)
        z_then, _ = flows.forward(flow, snapshot, replay)
        extra = fr_weight * jnp.mean(jnp.sum((z_now - jax.lax.stop_gradient(z_then)) ** 2, axis=-1))
    return nll + has_old * extra


@functools.partial(jax.jit, static_argnames=("flow", "mode", "fr_weight", "temperature", "replay_size",
                                             "learning_rate", "clip_norm"))
def _train_step(flow: flows.RealNVP, mode: str, fr_weight: float, temperature: float, replay_size: int,
                learning_rate: float, clip_norm: float, params: Any, opt_state: Any, snapshot: Any,
                u: jax.Array, comps: jax.Array, old_logits: jax.Array, has_old: jax.Array,
                key: jax.Array) -> tuple[Any, Any, jax.Array]:
    optimiser = _optimiser(learning_rate, clip_norm)
    loss, grads = jax.value_and_grad(_loss, argnums=5)(flow, mode, fr_weight, temperature, replay_size, params,
                                                       snapshot, u, comps, old_logits, has_old, key)
    change, opt_state = optimiser.update(grads, opt_state, params)
    return optax.apply_updates(params, change), opt_state, loss


def _optimiser(learning_rate: float, clip_norm: float) -> optax.GradientTransformation:
    return optax.chain(optax.clip_by_global_norm(clip_norm), optax.adam(learning_rate))



#: the fields of a waiting batch, in the order ``HCL._pending`` keeps them.
_PENDING_FIELDS = ("u", "logdet", "y", "scores", "lp")


def _flatten(tree: Any, prefix: str) -> dict[str, np.ndarray]:
    """Return the leaves of ``tree`` as numpy arrays keyed ``prefix/<tree path>``."""
    flat, _ = jax.tree_util.tree_flatten_with_path(tree)
    return {f"{prefix}/{jax.tree_util.keystr(path)}": np.asarray(leaf) for path, leaf in flat}


def _unflatten_like(template: Any, d: dict[str, np.ndarray], prefix: str) -> Any:
    """Rebuild a pytree shaped like ``template`` from ``_flatten``'s arrays; ValueError if one does not fit."""
    flat, treedef = jax.tree_util.tree_flatten_with_path(template)
    leaves = []
    for path, ref in flat:
        name = f"{prefix}/{jax.tree_util.keystr(path)}"
        value = np.asarray(d[name])
        if value.shape != np.shape(ref) or value.dtype != np.asarray(ref).dtype:
            raise ValueError(f"{name}: {value.shape} {value.dtype}, expected {np.shape(ref)} {np.asarray(ref).dtype}")
        leaves.append(jnp.asarray(value))
    return jax.tree_util.tree_unflatten(treedef, leaves)


class HCL:
    """HCL on a stream of batches without task labels (module docstring).

    Example (labelled batches of digits, no task labels; ``TaskDetector`` for unlabelled ones)::

        model = HCL(dim=64, config=HCLConfig(mode="fr"))
        for x, y in stream:
            step = model.observe(x, y)   # step.changed, step.task, step.statistic, ...
        model.evaluate(x_test, y_test).accuracy
    """

    def __init__(self, dim: int, config: HCLConfig = HCLConfig()) -> None:
        self.config = check_config(config)
        if isinstance(dim, bool) or not isinstance(dim, numbers.Integral) or dim < 2:
            raise _fail("dim", dim, "give an integer >= 2 (the inputs' width)")
        self.dim = int(dim)
        c = self.config
        self.flow = flows.make_flow(self.dim, c.max_tasks * c.num_classes, c.num_couplings, c.hidden,
                                    mask_seed=0)
        self._key, init_key = jax.random.split(jax.random.PRNGKey(c.seed))
        self.params = flows.init_params(self.flow, init_key)
        self.opt_state = _optimiser(c.learning_rate, c.clip_norm).init(self.params)
        self.snapshot = self.params
        self._rng = np.random.default_rng(c.seed)
        self.seen = np.zeros(c.max_tasks * c.num_classes, bool)  # components trained so far
        self._old = np.zeros_like(self.seen)  # components replayed: seen before the last switch, not current
        self.task, self.num_tasks = 0, 1
        self._shift: np.ndarray | None = None
        self._scale: np.ndarray | None = None
        self._window: collections.deque[np.ndarray] = collections.deque(maxlen=c.window)  # scores per batch
        self.references: dict[int, tuple[float, np.ndarray]] = {}  # each earlier task's (H, scores) at its last switch
        # waiting batches: (inputs, log|det|, labels, scores, component log-densities), as when they came
        self._pending: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None, np.ndarray]] = []
        self._in_task = 0  # batches trained as the current task since it (re)started
        self.index = 0

    # ------------------------------------------------------------------ inputs
    def _check_x(self, x: Any) -> np.ndarray:
        x = np.asarray(x, np.float32)
        if x.ndim != 2 or x.shape[0] < 1 or x.shape[1] != self.dim:
            raise HCLError(f"x: shape {x.shape} is not allowed: give (n, {self.dim}) with n >= 1")
        if not np.all(np.isfinite(x)):
            raise HCLError("x: non-finite values are not allowed: give finite inputs")
        if self.config.preprocess == "logit" and (x.min() < 0.0 or x.max() > 1.0):
            raise HCLError(f"x: values in [{x.min():g}, {x.max():g}] are not allowed with preprocess "
                           "'logit': give pixels in [0, 1]")
        return x

    def _check_batch(self, x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
        x = self._check_x(x)
        if y is None:
            if self.config.num_classes != 1:
                raise HCLError(f"y = None is not allowed with num_classes = {self.config.num_classes}: "
                               "give (n,) labels")
            return x, np.zeros(len(x), np.int32)
        y = np.asarray(y)
        if y.shape != (len(x),) or not np.issubdtype(y.dtype, np.integer):
            raise HCLError(f"y: shape {y.shape} of {y.dtype} is not allowed: give ({len(x)},) integer labels")
        if y.min() < 0 or y.max() >= self.config.num_classes:
            raise HCLError(f"y: labels {y.min()}..{y.max()} are not allowed: give labels 0.."
                           f"{self.config.num_classes - 1}")
        return x, y.astype(np.int32)

    def _prepare(self, x: np.ndarray, noisy: bool) -> tuple[np.ndarray, np.ndarray]:
        """Return the flow's inputs and (n,) log|det| of the input transform (module docstring)."""
        c = self.config
        if c.preprocess == "logit":
            u, logdet = flows.logit(flows.dequantize(x, c.pixel_levels, self._rng if noisy else None))
            return np.asarray(u), np.asarray(logdet)
        if c.preprocess == "standardize":
            if self._shift is None:
                std = x.std(axis=0)
                self._shift, self._scale = x.mean(axis=0), np.where(std < MIN_SCALE, 1.0, std).astype(np.float32)
            logdet = np.full(len(x), -np.sum(np.log(self._scale)), np.float32)
            return ((x - self._shift) / self._scale).astype(np.float32), logdet
        return x, np.zeros(len(x), np.float32)

    # ------------------------------------------------------------------ scores
    def _component_log_probs(self, u: np.ndarray) -> np.ndarray:
        return np.asarray(_log_probs(self.flow, self.params, jnp.asarray(u)), np.float64)

    def _task_scores(self, lp: np.ndarray, logdet: np.ndarray, task: int) -> np.ndarray:
        """Return (n,) log p(x | task) from (n, K) component log-densities ``lp`` of the flow's inputs:
        the mixture of the task's seen classes with equal weights, plus the input transform's log|det|."""
        cols = task * self.config.num_classes + np.flatnonzero(self._seen_classes(task))
        return logsumexp(lp[:, cols], axis=1) - math.log(len(cols)) + logdet

    def _seen_classes(self, task: int) -> np.ndarray:
        c = self.config.num_classes
        return self.seen[task * c:(task + 1) * c]

    def _reference(self, n: int) -> tuple[float, float, np.ndarray]:
        """Return (H, eps, pooled scores) of the window for a batch of ``n`` (module docstring)."""
        means = np.array([scores.mean() for scores in self._window])
        w = len(means)
        pos = np.arange(w, dtype=np.float64)
        slope, intercept = np.polyfit(pos, means, 1)
        # the variance of a fitted line's value at the next position, in units of one batch mean's
        inflation = math.sqrt(1.0 + 1.0 / w + (w - pos.mean()) ** 2 / np.sum((pos - pos.mean()) ** 2))
        pooled = np.concatenate(self._window)
        return float(intercept + slope * w), inflation * self._threshold(pooled, n), pooled

    def _threshold(self, scores: np.ndarray, n: int) -> float:
        """Return the ``quantile`` of |mean of n scores drawn with replacement - mean(scores)|."""
        draws = scores[self._rng.integers(0, len(scores), size=(self.config.bootstrap, n))]
        return float(np.quantile(np.abs(draws.mean(axis=1) - scores.mean()), self.config.quantile))

    # ------------------------------------------------------------------ learning
    def _place_new_components(self, u: np.ndarray, comps: np.ndarray) -> None:
        """Set each component seen for the first time to the mean latent of its inputs in this batch."""
        new = [k for k in np.unique(comps) if not self.seen[k]]
        if not new:
            return
        z = np.asarray(_latents(self.flow, self.params, jnp.asarray(u)))
        means = np.array(self.params["means"])
        for k in new:
            means[k] = z[comps == k].mean(axis=0)
        self.params = {**self.params, "means": jnp.asarray(means)}
        self.seen[new] = True

    def _train(self, u: np.ndarray, logdet: np.ndarray, y: np.ndarray, scores: np.ndarray | None) -> None:
        """Train one batch as the current task; its scores (taken before, if any) join the window."""
        comps = self.task * self.config.num_classes + y
        self._place_new_components(u, comps)
        self._fit(u, comps)
        if scores is not None:
            self._window.append(scores)
        self._in_task += 1

    def _fit(self, u: np.ndarray, comps: np.ndarray) -> None:
        c = self.config
        has_old = bool(self._old.any())
        old_logits = jnp.asarray(np.where(self._old, 0.0, -1e9) if has_old else np.zeros(len(self._old)),
                                 jnp.float32)
        for _ in range(c.steps_per_batch):
            self._key, key = jax.random.split(self._key)
            self.params, self.opt_state, _ = _train_step(
                self.flow, c.mode, float(c.fr_weight), float(c.replay_temperature), c.replay_size,
                float(c.learning_rate), float(c.clip_norm), self.params, self.opt_state, self.snapshot,
                jnp.asarray(u), jnp.asarray(comps), old_logits, jnp.float32(has_old), key)

    def train_supervised(self, x: Any, y: Any, tasks: Any) -> float:
        """Train one batch with known tasks ``tasks`` (n,) (the joint upper bound); return the seconds.

        No detection, no replay, no penalty: the batch's own components' likelihood only.
        """
        start = time.perf_counter()
        x, y = self._check_batch(x, y)
        tasks = np.asarray(tasks)
        if tasks.shape != y.shape or not np.issubdtype(tasks.dtype, np.integer) or tasks.min() < 0 \
                or tasks.max() >= self.config.max_tasks:
            raise HCLError(f"tasks: {tasks.shape} of {tasks.dtype} is not allowed: give ({len(y)},) integers "
                           f"0..{self.config.max_tasks - 1}")
        comps = tasks.astype(np.int32) * self.config.num_classes + y
        self.num_tasks = max(self.num_tasks, int(tasks.max()) + 1)
        saved, self._old = self._old, np.zeros_like(self._old)
        u = self._prepare(x, noisy=True)[0]
        self._place_new_components(u, comps)
        self._fit(u, comps)
        self._old = saved
        return time.perf_counter() - start

    # ------------------------------------------------------------------ the stream
    def observe(self, x: Any, y: Any = None) -> Step:
        """Test, then learn from, the next batch of the stream (no task label); return what happened.

        Args:
          x: (n, d) inputs (pixels in [0, 1] with ``preprocess="logit"``).
          y: (n,) labels 0..num_classes-1; None for an unlabelled stream (``num_classes = 1``).
        """
        start = time.perf_counter()
        x, y = self._check_batch(x, y)
        u, logdet = self._prepare(x, noisy=True)
        index, self.index = self.index, self.index + 1
        c, nan = self.config, float("nan")
        lp = self._component_log_probs(u)
        scores = self._task_scores(lp, logdet, self.task) if self._seen_classes(self.task).any() else None
        ll = nan if scores is None else float(scores.mean())
        if self._in_task < c.warmup or len(self._window) < 3:
            self._train(u, logdet, y, scores)
            return Step(index, self.task, False, False, None, ll, nan, nan, nan, False, 0, False,
                        time.perf_counter() - start)
        reference, threshold, window = self._reference(len(x))
        statistic = abs(ll - reference)
        atypical = statistic > threshold or self._returning(lp, logdet, ll + threshold)
        fields = dict(log_likelihood=ll, reference=reference, statistic=statistic, threshold=threshold,
                      atypical=atypical, capacity_full=False)
        if not atypical:
            for waiting in self._pending:
                self._train(*waiting[:4])
            self._pending = []
            self._train(u, logdet, y, scores)
            return Step(index, self.task, False, False, None, pending=0, seconds=time.perf_counter() - start,
                        **fields)
        self._pending.append((u, logdet, y, scores, lp))
        if len(self._pending) < c.patience:
            return Step(index, None, False, False, None, pending=len(self._pending),
                        seconds=time.perf_counter() - start, **fields)
        recognised, fields["capacity_full"] = self._switch(reference, window)
        # the first waiting batch may be the old task's (a chance atypical batch just before the change):
        # new components take their place from the batch that declared the change
        self._place_new_components(u, self.task * c.num_classes + y)
        for u_w, ld_w, y_w, _, _ in self._pending:
            self._train(u_w, ld_w, y_w, None)  # their scores were under the task just left
        self._pending = []
        return Step(index, self.task, True, recognised is None, recognised, pending=0,
                    seconds=time.perf_counter() - start, **fields)

    def recognition_ratios(self, batches: Sequence[tuple[np.ndarray, np.ndarray]]) -> dict[int, tuple[float, float]]:
        """Return ``{j: (r_j, ll_j)}`` for every earlier task j over the pooled ``batches``.

        Args:
          batches: (lp, logdet) pairs: (n, K) component log-densities and (n,) input log|det|.

        ``ll_j`` is the batches' mean log p(x | j) and ``r_j = |ll_j - H_j| / sd_j`` (module docstring).
        """
        ratios = {}
        for j, (centre, scores) in self.references.items():
            if j != self.task:
                ll = float(np.mean(np.concatenate([self._task_scores(lp, ld, j) for lp, ld in batches])))
                ratios[j] = (abs(ll - centre) / max(float(scores.std()), 1e-12), ll)
        return ratios

    def _returning(self, lp: np.ndarray, logdet: np.ndarray, above: float) -> bool:
        """Return whether an earlier task j finds the batch typical (r_j within the recognition scale)
        and explains it better than the current task does by more than the threshold (ll_j > ``above``)."""
        ratios = self.recognition_ratios([(lp, logdet)])
        return any(r <= self.config.recognition_scale and ll > above for r, ll in ratios.values())

    def _switch(self, reference: float, window: np.ndarray) -> tuple[int | None, bool]:
        """Keep the current task's reference, pick the next task, snapshot; return (recognised, full)."""
        c = self.config
        self.references[self.task] = (reference, window)
        waiting = [(lp, ld) for _, ld, _, _, lp in self._pending]
        ratios = {j: r for j, (r, _) in self.recognition_ratios(waiting).items()}
        best = min(ratios, key=ratios.get) if ratios else None
        full = False
        if best is not None and ratios[best] <= c.recognition_scale:
            recognised, self.task = best, best
        elif self.num_tasks < c.max_tasks:
            recognised, self.task = None, self.num_tasks
            self.num_tasks += 1
        else:
            recognised, self.task, full = best, best, True
        self.snapshot = self.params
        self._old = self.seen.copy()
        self._old[self.task * c.num_classes:(self.task + 1) * c.num_classes] = False
        self._in_task = 0
        self._window.clear()
        return recognised, full

    # ------------------------------------------------------------------ saving
    def state_dict(self) -> dict[str, np.ndarray]:
        """Return everything ``observe`` reads and writes as flat numpy arrays (keys joined by '/').

        The pytrees (``params``, ``snapshot``, the Adam state) are keyed by their tree paths and
        rebuilt into the structure of a fresh HCL of the same ``dim`` and config; the numpy
        generator's state is JSON bytes in a uint8 array; the window, the references and the
        waiting batches are numbered entries beside their counts (``None`` fields are absent).
        Plain arrays only: ``np.savez`` writes it and ``np.load(allow_pickle=False)`` reads it.
        """
        d: dict[str, np.ndarray] = {"dim": np.array(self.dim)}
        for name in ("params", "snapshot", "opt_state"):
            d.update(_flatten(getattr(self, name), name))
        d["key"] = np.asarray(self._key)
        d["rng"] = np.frombuffer(json.dumps(self._rng.bit_generator.state).encode(), np.uint8).copy()
        d["seen"], d["old"] = self.seen.copy(), self._old.copy()
        d["counters"] = np.array([self.task, self.num_tasks, self._in_task, self.index], np.int64)
        if self._shift is not None:
            d["shift"], d["scale"] = self._shift.copy(), self._scale.copy()
        d["window/count"] = np.array(len(self._window))
        for i, scores in enumerate(self._window):
            d[f"window/{i}"] = np.asarray(scores).copy()
        d["references/tasks"] = np.array(sorted(self.references), np.int64)
        for j, (centre, scores) in self.references.items():
            d[f"references/{j}/centre"], d[f"references/{j}/scores"] = np.array(centre), np.asarray(scores).copy()
        d["pending/count"] = np.array(len(self._pending))
        for i, waiting in enumerate(self._pending):
            for name, value in zip(_PENDING_FIELDS, waiting):
                if value is not None:
                    d[f"pending/{i}/{name}"] = np.asarray(value).copy()
        return d

    def load_state_dict(self, d: dict[str, np.ndarray]) -> None:
        """Restore the state ``state_dict`` returned, on an HCL made with the same ``dim`` and config.

        Raises:
          HCLError: the state is another width's, or a piece is missing or of another shape
            (nothing changes then).
        """
        try:
            if int(d["dim"]) != self.dim:
                raise HCLError(f"state: dim {int(d['dim'])} is not allowed: this HCL's is {self.dim}")
            trees = {name: _unflatten_like(getattr(self, name), d, name)
                     for name in ("params", "snapshot", "opt_state")}
            rng = np.random.default_rng()
            rng.bit_generator.state = json.loads(np.asarray(d["rng"], np.uint8).tobytes().decode())
            seen, old = np.asarray(d["seen"], bool), np.asarray(d["old"], bool)
            if seen.shape != self.seen.shape or old.shape != self.seen.shape:
                raise HCLError(f"state: {seen.shape[0]} components is not allowed: this HCL has {len(self.seen)}")
            task, num_tasks, in_task, index = (int(v) for v in d["counters"])
            window = [np.asarray(d[f"window/{i}"]) for i in range(int(d["window/count"]))]
            references = {int(j): (float(d[f"references/{j}/centre"]), np.asarray(d[f"references/{j}/scores"]))
                          for j in d["references/tasks"]}
            pending = [tuple(None if f"pending/{i}/{name}" not in d else np.asarray(d[f"pending/{i}/{name}"])
                             for name in _PENDING_FIELDS) for i in range(int(d["pending/count"]))]
            key = jnp.asarray(d["key"], jnp.uint32)
            shift = np.asarray(d["shift"], np.float32) if "shift" in d else None
            scale = np.asarray(d["scale"], np.float32) if "scale" in d else None
        except (KeyError, ValueError, TypeError) as err:
            raise HCLError(f"state: cannot restore ({type(err).__name__}: {err})") from err
        self.params, self.snapshot, self.opt_state = trees["params"], trees["snapshot"], trees["opt_state"]
        self._key, self._rng, self.seen, self._old = key, rng, seen.copy(), old.copy()
        self.task, self.num_tasks, self._in_task, self.index = task, num_tasks, in_task, index
        self._shift, self._scale = shift, scale
        self._window = collections.deque(window, maxlen=self.config.window)
        self.references, self._pending = references, pending

    # ------------------------------------------------------------------ classification
    def class_log_probs(self, x: Any) -> np.ndarray:
        """Return (n, num_classes) log p(y | x) by Bayes' rule over the seen components (-inf: unseen class)."""
        u, _ = self._prepare(self._check_x(x), noisy=False)
        c = self.config
        lp = np.where(self.seen, self._component_log_probs(u), -np.inf).reshape(len(u), c.max_tasks, c.num_classes)
        with np.errstate(invalid="ignore"):
            joint = logsumexp(lp, axis=1)
            return joint - logsumexp(joint, axis=1, keepdims=True)

    def predict(self, x: Any) -> np.ndarray:
        """Return (n,) the most probable class of each input."""
        return np.argmax(self.class_log_probs(x), axis=1)

    def evaluate(self, x: Any, y: Any) -> Evaluation:
        """Return the fraction of ``x`` classified as ``y`` and the seconds it took."""
        start = time.perf_counter()
        y = np.asarray(y)
        accuracy = float(np.mean(self.predict(x) == y))
        return Evaluation(accuracy, time.perf_counter() - start)


def detector_config(**overrides: Any) -> HCLConfig:
    """Return the ``TaskDetector`` defaults (one class, standardised inputs, a smaller flow), overridden."""
    defaults = dict(mode="fr", num_classes=1, preprocess="standardize", num_couplings=4, hidden=64)
    return check_config(HCLConfig(**{**defaults, **overrides}))


class TaskDetector:
    """HCL's task-change detector on any (n, d) stream: ``update(batch)`` returns a ``Step``.

    ``step.changed``, ``step.new_task`` / ``step.recognised`` (the earlier task resumed),
    ``step.statistic`` and ``step.threshold``; ``step.task`` is the task the batch was fitted
    as. The flow keeps a component per task (HCL-FR by default) so earlier tasks stay
    recognisable.
    """

    def __init__(self, dim: int, config: HCLConfig | None = None) -> None:
        config = detector_config() if config is None else check_config(config)
        if config.num_classes != 1:
            raise _fail("num_classes", config.num_classes, "give 1 for a TaskDetector (no labels)")
        self.model = HCL(dim, config)

    def update(self, x: Any) -> Step:
        """Test, then fit, the next (n, d) batch; return what happened."""
        return self.model.observe(x, None)

    @property
    def task(self) -> int:
        return self.model.task

    def state_dict(self) -> dict[str, np.ndarray]:
        """The model's state (``HCL.state_dict``)."""
        return self.model.state_dict()

    def load_state_dict(self, d: dict[str, np.ndarray]) -> None:
        """Restore ``state_dict``'s state on a detector of the same ``dim`` and config."""
        self.model.load_state_dict(d)


def state_bytes_bound(dim: int, config: HCLConfig, batch: int) -> int:
    """Return an upper bound on the bytes of ``np.savez`` of an HCL's ``state_dict`` for batches of ``batch``.

    The parts: four copies of the parameters (params, snapshot, Adam's two moments), the
    window (``window`` batches of float64 scores), a reference per task (``window * batch``
    scores), ``patience`` waiting batches (inputs, log|det|, labels, scores, and ``K`` component
    log-densities per input), the small arrays, and 512 bytes of zip and .npy headers per entry.
    """
    c = check_config(config)
    flow = flows.make_flow(dim, c.max_tasks * c.num_classes, c.num_couplings, c.hidden, mask_seed=0)
    shapes = jax.eval_shape(lambda: flows.init_params(flow, jax.random.PRNGKey(0)))
    leaves = jax.tree_util.tree_leaves(shapes)
    params = sum(int(np.prod(x.shape)) * 4 for x in leaves)
    components = c.max_tasks * c.num_classes
    waiting = batch * (dim * 4 + 4 + 4 + 8 + components * 8)
    data = (4 * params + c.window * batch * 8 + c.max_tasks * (c.window * batch * 8 + 8)
            + c.patience * waiting + 2 * components + 2 * dim * 4 + 1024)
    entries = 4 * len(leaves) + 8 + c.window + 2 * c.max_tasks + 5 * c.patience + 16
    return data + 512 * entries


@dataclasses.dataclass(frozen=True)
class DetectionReport:
    """How declared changes match true task boundaries (module docstring)."""

    delays: tuple[int | None, ...]  # per boundary: d - b, or None if missed
    false_alarms: int
    missed: int
    detections: tuple[int, ...]

    @property
    def mean_delay(self) -> float:
        found = [d for d in self.delays if d is not None]
        return float(np.mean(found)) if found else float("nan")


def detection_report(detections: Sequence[int], boundaries: Sequence[int],
                     tolerance: int | None = None) -> DetectionReport:
    """Match declared changes to true boundaries; return the delays, false alarms and misses.

    Args:
      detections: indices of the batches at which a change was declared (``Step.changed``).
      boundaries: indices of the first batch of each task after the first, ascending.
      tolerance: the longest delay counted as a detection (None: until the next boundary).
    """
    detections, boundaries = [int(d) for d in detections], [int(b) for b in boundaries]
    if any(b < 1 for b in boundaries) or boundaries != sorted(set(boundaries)):
        raise _fail("boundaries", boundaries, "give ascending, distinct batch indices >= 1")
    if tolerance is not None and (isinstance(tolerance, bool) or not isinstance(tolerance, numbers.Integral)
                                  or tolerance < 0):
        raise _fail("tolerance", tolerance, "give an integer >= 0 or None")
    delays: list[int | None] = [None] * len(boundaries)
    false_alarms = 0
    for d in sorted(detections):
        before = [i for i, b in enumerate(boundaries) if b <= d]
        i = before[-1] if before else None
        if i is not None and delays[i] is None and (tolerance is None or d - boundaries[i] <= tolerance):
            delays[i] = d - boundaries[i]
        else:
            false_alarms += 1
    return DetectionReport(tuple(delays), false_alarms, sum(d is None for d in delays), tuple(sorted(detections)))


__all__ = ["MODES", "PREPROCESS", "DetectionReport", "Evaluation", "HCL", "HCLConfig", "HCLError", "Step",
           "TaskDetector", "check_config", "detection_report", "detector_config", "state_bytes_bound"]
