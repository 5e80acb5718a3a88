"""Task sequences on scikit-learn's digits: permuted digits and split digits (nothing downloaded).

The papers' benchmarks are permuted and split MNIST; this module builds the same two kinds of
sequence from ``sklearn.datasets.load_digits`` (1,797 grey 8 x 8 images, 10 classes, shipped
with scikit-learn). Choices, fixed before any measurement:

* One stratified train/test split of the 1,797 images (``test_fraction`` 0.3, split seed 0):
  1,257 to train, 540 to test. Pixels scaled from 0..16 to 0..1 and flattened to 64 inputs.
* Permuted digits (Yin et al. use 20 permuted-MNIST tasks): task t shows every image through
  one fixed permutation of its 64 pixels, drawn from ``perm_seed`` (task 0 keeps the identity,
  as in the usual construction, so task 0 is plain digits). All 10 classes in every task: one
  shared output head ("domain-incremental").
* Split digits (HCL's split MNIST): five tasks of two classes each, (0, 1), (2, 3), ...,
  (8, 9), in that order; labels keep their digit (0..9), so a single-head classifier must
  tell tasks apart ("class-incremental", the setting HCL reports).

Every array is float32 (images) or int32 (labels); a ``Task`` carries its own train and test
rows, so a learner sees a task's training data only while that task lasts.
"""

from __future__ import annotations

import dataclasses

import numpy as np

#: pixel values of load_digits run 0..16.
PIXEL_MAX = 16.0
NUM_CLASSES = 10
NUM_PIXELS = 64
#: split digits' tasks: the class pairs, in order.
SPLIT_CLASSES: tuple[tuple[int, ...], ...] = ((0, 1), (2, 3), (4, 5), (6, 7), (8, 9))


@dataclasses.dataclass(frozen=True)
class Task:
    """One task of a sequence: (n, 64) float32 inputs in [0, 1] and (n,) int32 labels 0..9."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    #: the labels the task contains, ascending.
    classes: tuple[int, ...]


def _check_fraction(name: str, value: float) -> float:
    if not (isinstance(value, (int, float)) and 0.0 < float(value) < 1.0):
        raise ValueError(f"{name} = {value!r} is not allowed: give a number in (0, 1)")
    return float(value)


def load(test_fraction: float = 0.3, split_seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return ``(x_train, y_train, x_test, y_test)``: the stratified split of all 1,797 digits."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    test_fraction = _check_fraction("test_fraction", test_fraction)
    digits = load_digits()
    x = (digits.data / PIXEL_MAX).astype(np.float32)
    y = digits.target.astype(np.int32)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=test_fraction, random_state=split_seed,
                                              stratify=y)
    return x_tr, y_tr, x_te, y_te


def permutations(num_tasks: int, perm_seed: int = 0) -> np.ndarray:
    """Return (num_tasks, 64) pixel orders: row 0 the identity, row t a permutation from ``perm_seed``."""
    if isinstance(num_tasks, bool) or not isinstance(num_tasks, (int, np.integer)) or num_tasks < 1:
        raise ValueError(f"num_tasks = {num_tasks!r} is not allowed: give an integer >= 1")
    rng = np.random.default_rng(perm_seed)
    rows = [np.arange(NUM_PIXELS)] + [rng.permutation(NUM_PIXELS) for _ in range(num_tasks - 1)]
    return np.stack(rows)


def permuted_digits(num_tasks: int = 10, perm_seed: int = 0, test_fraction: float = 0.3,
                    split_seed: int = 0) -> list[Task]:
    """Return ``num_tasks`` permuted-digits tasks (module docstring); task 0 is plain digits."""
    x_tr, y_tr, x_te, y_te = load(test_fraction, split_seed)
    classes = tuple(range(NUM_CLASSES))
    return [Task(f"permuted-{t}", x_tr[:, order], y_tr, x_te[:, order], y_te, classes)
            for t, order in enumerate(permutations(num_tasks, perm_seed))]


def split_digits(classes: tuple[tuple[int, ...], ...] = SPLIT_CLASSES, test_fraction: float = 0.3,
                 split_seed: int = 0) -> list[Task]:
    """Return split-digits tasks, one per group of ``classes`` (default: the five pairs, in order)."""
    groups = tuple(tuple(int(c) for c in group) for group in classes)
    if not groups or any(not group for group in groups):
        raise ValueError(f"classes = {classes!r} is not allowed: give non-empty groups of labels 0..9")
    flat = [c for group in groups for c in group]
    if any(not 0 <= c < NUM_CLASSES for c in flat) or len(set(flat)) != len(flat):
        raise ValueError(f"classes = {classes!r} is not allowed: labels must be 0..9, each in one group")
    x_tr, y_tr, x_te, y_te = load(test_fraction, split_seed)
    tasks = []
    for group in groups:
        train, test = np.isin(y_tr, group), np.isin(y_te, group)
        tasks.append(Task("split-" + "".join(map(str, group)), x_tr[train], y_tr[train], x_te[test],
                          y_te[test], tuple(sorted(group))))
    return tasks


__all__ = ["NUM_CLASSES", "NUM_PIXELS", "SPLIT_CLASSES", "Task", "load", "permutations", "permuted_digits",
           "split_digits"]
