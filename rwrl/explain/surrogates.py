"""Surrogate policies: a ridge-linear map and a depth-limited regression tree.

Each ``fit_*`` takes states ``obs (N, D)``, the teacher's actions there
``actions (N, A)`` and per-state weights ``weights (N,)`` (VIPER's
importance weights, ``rwrl.explain.viper``; all ones for plain DAgger) and
returns a frozen, callable policy ``obs (N, D) -> actions (N, A)`` (float32).
One tree predicts every action dimension (sklearn's multi-output regression
tree: each leaf holds the weighted mean action vector of its states), so a
depth-k tree is k questions about the observation, whatever A is.

Example:
  >>> obs = np.array([[0.0], [1.0], [2.0]])
  >>> fit_linear(obs, 2 * obs + 1, np.ones(3)).coef.round(6).tolist()
  [[2.0]]
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

#: ridge penalty of the linear surrogate (on the raw coefficients). 0: plain weighted least
#: squares, so a linear teacher is recovered exactly; a collinear observation entry (a constant,
#: a duplicated cosine) still gets a well-defined answer, lstsq's minimum-norm solution.
DEFAULT_RIDGE = 0.0


def _check(obs: np.ndarray, actions: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, ...]:
    obs, actions = np.asarray(obs, np.float64), np.asarray(actions, np.float64)
    weights = np.asarray(weights, np.float64)
    if obs.ndim != 2 or actions.ndim != 2 or len(obs) != len(actions):
        raise ValueError(f"obs {obs.shape} and actions {actions.shape} must be (N, D) and (N, A)")
    if weights.shape != (len(obs),) or not np.all(np.isfinite(weights)) or np.any(weights < 0):
        raise ValueError(f"weights must be (N,) = ({len(obs)},), finite and >= 0; got {weights.shape}")
    if len(obs) == 0 or weights.sum() <= 0:
        raise ValueError("no state with a positive weight to fit to")
    return obs, actions, weights


@dataclasses.dataclass(frozen=True)
class LinearPolicy:
    """``actions = obs @ coef.T + intercept``; coef (A, D), intercept (A,)."""

    coef: np.ndarray
    intercept: np.ndarray

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        return (np.asarray(obs, np.float64) @ self.coef.T + self.intercept).astype(np.float32)


def fit_linear(obs: np.ndarray, actions: np.ndarray, weights: np.ndarray,
               ridge: float = DEFAULT_RIDGE) -> LinearPolicy:
    """Fit a linear policy by weighted ridge least squares (the intercept not penalised).

    Minimises sum_i w_i ||a_i - W s_i - b||^2 + ridge ||W||^2, solved in closed form
    on weight-centred data (``lstsq``: the minimum-norm solution when the
    observation entries are collinear and ``ridge`` is 0).
    """
    obs, actions, weights = _check(obs, actions, weights)
    if ridge < 0:
        raise ValueError(f"ridge = {ridge!r} must be >= 0")
    w = weights / weights.sum()
    mean_obs, mean_act = w @ obs, w @ actions
    x, y = obs - mean_obs, actions - mean_act
    gram = (x * w[:, None]).T @ x + ridge * np.eye(obs.shape[1])
    coef = np.linalg.lstsq(gram, (x * w[:, None]).T @ y, rcond=None)[0].T  # (A, D)
    return LinearPolicy(coef, mean_act - coef @ mean_obs)


@dataclasses.dataclass(frozen=True)
class TreePolicy:
    """A fitted sklearn ``DecisionTreeRegressor`` (multi-output) as a batched policy."""

    tree: Any
    action_size: int

    @property
    def depth(self) -> int:
        return int(self.tree.get_depth())

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        out = self.tree.predict(np.asarray(obs, np.float64))
        return np.reshape(out, (len(obs), self.action_size)).astype(np.float32)


def fit_tree(obs: np.ndarray, actions: np.ndarray, weights: np.ndarray, depth: int,
             seed: int = 0) -> TreePolicy:
    """Fit a regression tree of at most ``depth`` levels (weighted squared error).

    Args:
      depth: the maximum depth, >= 1 (a depth-1 tree asks one question).
      seed: sklearn's ``random_state``, which breaks ties between equally good splits.
    """
    from sklearn.tree import DecisionTreeRegressor

    obs, actions, weights = _check(obs, actions, weights)
    if isinstance(depth, bool) or not isinstance(depth, (int, np.integer)) or depth < 1:
        raise ValueError(f"depth = {depth!r} must be an integer >= 1")
    tree = DecisionTreeRegressor(max_depth=int(depth), random_state=seed)
    # a 1-column target is passed as (N,), so predict and the printed leaves give scalars
    tree.fit(obs, actions[:, 0] if actions.shape[1] == 1 else actions, sample_weight=weights)
    return TreePolicy(tree, actions.shape[1])


__all__ = ["DEFAULT_RIDGE", "LinearPolicy", "TreePolicy", "fit_linear", "fit_tree"]
