"""TAKD's ladder on scikit-learn's digits: a teacher, assistants, students of decreasing size.

Mirzadeh et al. (AAAI 2020, arXiv 1902.03393) distil a large network into
smaller ones directly ("BLKD") and through teacher assistants ("TAKD"),
against the same networks trained on labels alone ("NOKD"). This module runs
that ladder on ``sklearn.datasets.load_digits`` (1,797 8 x 8 grey images, 10
classes; it ships with scikit-learn, nothing is downloaded).

Choices, made before measuring:

* Data: a fixed stratified split (split seed 0): 20 % of the images (359) for
  training, the other 1,438 for testing. Digits are easy (scikit-learn's
  example SVM, gamma 0.001, reaches 98.8 % trained on half of them on this
  split, 96.4 % on 20 %), so a small training set keeps the accuracies off the
  ceiling. Pixels scaled from 0..16 to 0..1; no augmentation (the released
  code trains CIFAR without it).
* Training (the released code's plain-CNN settings): SGD, momentum 0.9,
  learning rate 0.01 constant, weight decay 1e-4 on every parameter, batch
  128, 160 epochs (its README's examples). The test accuracy reported is the
  last epoch's (the released code keeps the best epoch on the test set).
* KD: ``kd.kd_loss`` (Eq. 3), tau = 5 and lambda = 0.5, the pair the first
  author gives for ResNet110 -> ResNet20 on CIFAR-100 (issue #7 of the
  released code); the paper searched them per experiment and gives no single
  value. Each network of a chain learns from the one before it (its logits on
  the training images, computed once: without augmentation they do not
  change).

Then one change after a first measurement, before any KD result: the networks
are MLPs, not the paper's plain CNNs. The released code's CIFAR-10 plane10
(3 x 3 conv + batch norm + ReLU, the fourth pool dropped at 1 x 1) took 322 s
to train once on this shared 2-core machine, and reached 95.1 % against
plane2's 95.8 %: on 359 images the deep plain CNN was no better teacher than
the smallest student, and the ladder (17 networks per seed) would not fit in
minutes. The MLP ladder (``LADDER``) shrinks in width, from two hidden layers
of 256 units to one of 4, so the teacher-student gap is a real gap in
capacity; a seed's whole ladder trains in about half a minute.

A network's initial weights and batch order depend only on (seed, size), so
NOKD, BLKD and TAKD of one student and seed differ only in what it learns
from: the comparisons are paired.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from rwrl.distill import kd

#: size (width of the first hidden layer) -> hidden widths of a ReLU MLP: the ladder, largest first.
LADDER: dict[int, tuple[int, ...]] = {256: (256, 256), 64: (64,), 16: (16,), 8: (8,), 4: (4,)}
NUM_CLASSES = 10
#: pixel values of load_digits run 0..16.
PIXEL_MAX = 16.0


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """How every network of the ladder is trained (the released code's plain-CNN settings)."""

    epochs: int = 160  # passes over the training images
    batch_size: int = 128
    learning_rate: float = 0.01  # constant for plain CNNs in the released code
    momentum: float = 0.9
    weight_decay: float = 1e-4  # added to the gradient of every parameter, as torch's SGD does
    temperature: float = 5.0  # tau of Eq. 3
    lam: float = 0.5  # lambda of Eq. 3: the weight of the soft term


@dataclasses.dataclass(frozen=True)
class Split:
    """A fixed train/test split of the digits: images (n, 8, 8, 1) in [0, 1], labels (n,)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def load_split(train_fraction: float = 0.2, split_seed: int = 0) -> Split:
    """Return the stratified digits split: ``train_fraction`` of the images to train on, the rest to test."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    if not 0.0 < train_fraction < 1.0:
        raise ValueError(f"train_fraction = {train_fraction!r} is not allowed: give a number in (0, 1)")
    digits = load_digits()
    x = (digits.images / PIXEL_MAX).astype(np.float32)[..., None]
    x_tr, x_te, y_tr, y_te = train_test_split(x, digits.target.astype(np.int32), train_size=train_fraction,
                                              random_state=split_seed, stratify=digits.target)
    return Split(x_tr, y_tr, x_te, y_te)


class MLP(nn.Module):
    """A network of the ladder: dense ReLU layers of ``hidden`` widths, then the class logits."""

    hidden: tuple[int, ...]

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        x = x.reshape(x.shape[0], -1)
        for width in self.hidden:
            x = nn.relu(nn.Dense(width)(x))
        return nn.Dense(NUM_CLASSES)(x)


def network(size: int) -> MLP:
    """Return the ladder's network of ``size``."""
    if size not in LADDER:
        raise ValueError(f"size = {size!r} is not on the ladder: give one of {sorted(LADDER)}")
    return MLP(LADDER[size])


def check_chain(chain: Sequence[int]) -> tuple[int, ...]:
    """Return ``chain`` (teacher first, student last) as a tuple, or raise a one-line ValueError.

    A chain is non-empty, every size is on the ladder, and the sizes shrink strictly.
    """
    chain = tuple(chain)
    if not chain:
        raise ValueError("chain = () is empty: give the sizes from teacher to student, e.g. (256, 16, 4)")
    for size in chain:
        network(size)
    if any(b >= a for a, b in zip(chain, chain[1:])):
        raise ValueError(f"chain = {chain} does not shrink: each network must be smaller than the one before")
    return chain


def _batch_order(rng: np.random.Generator, n: int, config: TrainConfig) -> np.ndarray:
    """Return (steps, batch) indices: each epoch a fresh permutation, its last batch filled from its start."""
    per_epoch = -(-n // config.batch_size)
    rows = []
    for _ in range(config.epochs):
        order = rng.permutation(n)
        rows.append(np.resize(order, per_epoch * config.batch_size).reshape(per_epoch, config.batch_size))
    return np.concatenate(rows)


@functools.partial(jax.jit, static_argnames=("model", "config", "distil"))
def _fit(model: MLP, config: TrainConfig, distil: bool, variables: Any, x: jax.Array, y: jax.Array,
         soft_targets: jax.Array, order: jax.Array) -> Any:
    """Return the variables after SGD on ``order``'s batches: labels alone, or Eq. 3 when ``distil``."""
    optimiser = optax.chain(optax.add_decayed_weights(config.weight_decay),
                            optax.sgd(config.learning_rate, momentum=config.momentum))
    lam = config.lam if distil else 0.0

    def loss_fn(params, idx):
        logits = model.apply({"params": params}, x[idx], train=True)
        return kd.batch_kd_loss(logits, soft_targets[idx], y[idx], config.temperature, lam)

    def step(carry, idx):
        params, opt_state = carry
        change, opt_state = optimiser.update(jax.grad(loss_fn)(params, idx), opt_state, params)
        return (optax.apply_updates(params, change), opt_state), None

    params = variables["params"]
    (params, _), _ = jax.lax.scan(step, (params, optimiser.init(params)), order)
    return {"params": params}


def train(size: int, split: Split, seed: int, config: TrainConfig,
          teacher_logits: np.ndarray | None = None) -> Any:
    """Return the trained variables of the ``size`` network: on labels, or distilled from ``teacher_logits``.

    Args:
      teacher_logits: (n_train, classes) the teacher's eval-mode logits on the
        training images, or None to train on labels alone.
    """
    model = network(size)
    key = np.random.SeedSequence([seed, size])
    init_seed, order_seed = key.generate_state(2)
    variables = model.init(jax.random.PRNGKey(int(init_seed)), jnp.asarray(split.x_train[:1]), train=False)
    order = _batch_order(np.random.default_rng(int(order_seed)), len(split.y_train), config)
    distil = teacher_logits is not None
    soft = teacher_logits if distil else np.zeros((len(split.y_train), NUM_CLASSES), np.float32)
    return _fit(model, config, distil, variables, jnp.asarray(split.x_train), jnp.asarray(split.y_train),
                jnp.asarray(soft, jnp.float32), jnp.asarray(order))


def logits(size: int, variables: Any, x: np.ndarray) -> np.ndarray:
    """Return the ``size`` network's eval-mode logits (n, classes) on images ``x``."""
    return np.asarray(_apply(network(size), variables, jnp.asarray(x)))


@functools.partial(jax.jit, static_argnames=("model",))
def _apply(model: MLP, variables: Any, x: jax.Array) -> jax.Array:
    return model.apply(variables, x, train=False)


def accuracy(size: int, variables: Any, x: np.ndarray, y: np.ndarray) -> float:
    """Return the fraction of images ``x`` the network classifies as ``y``."""
    return float(np.mean(np.argmax(logits(size, variables, x), axis=1) == y))


def run_chains(chains: Sequence[Sequence[int]], split: Split, seed: int,
               config: TrainConfig = TrainConfig()) -> dict[tuple[int, ...], float]:
    """Train every chain (each network distilled from the one before it) and return test accuracies.

    Args:
      chains: sizes from the teacher to the student; a chain of one size is
        that network trained on labels alone (NOKD); (256, 4) is BLKD;
        (256, 16, 4) is TAKD with the 16-unit assistant.

    Returns:
      every prefix of every chain -> its last network's test accuracy. A
      shared prefix is trained once.
    """
    chains = [check_chain(chain) for chain in chains]
    trained: dict[tuple[int, ...], Any] = {}
    out: dict[tuple[int, ...], float] = {}
    for chain in chains:
        for end in range(1, len(chain) + 1):
            prefix = chain[:end]
            if prefix in trained:
                continue
            teacher = None
            if end > 1:
                teacher = logits(prefix[-2], trained[prefix[:-1]], split.x_train)
            trained[prefix] = train(prefix[-1], split, seed, config, teacher)
            out[prefix] = accuracy(prefix[-1], trained[prefix], split.x_test, split.y_test)
    return out


def ladder_chains(sizes: Sequence[int] = tuple(sorted(LADDER, reverse=True))) -> list[tuple[int, ...]]:
    """Return the chains that the three claims need, teacher ``sizes[0]``, students every smaller size.

    For each student: NOKD (alone), BLKD (teacher -> student), TAKD through each
    single assistant between them, and the full path through every size between.
    """
    sizes = check_chain(sizes)
    teacher, chains = sizes[0], [sizes[:1]]
    for i, student in enumerate(sizes[1:], start=1):
        between = sizes[1:i]
        chains += [(student,), (teacher, student)]
        chains += [(teacher, assistant, student) for assistant in between]
        if len(between) > 1:
            chains.append((teacher, *between, student))
    return chains
