"""The constraints of a task: which are active, at which ``safety_coeff``.

Defined in Dulac-Arnold et al. (2020) (RWRL_REFERENCE.md, "Safety
constraints"). The built-in predicates are domain facts
(``rwrl.domains.Constraint.fn(safety_vars, coeff)``). A ``ConstraintSet``
selects some of them, adds the opt-in ``action_roc`` (all |a_t - a_{t-1}| <
L * c on the executed actions; satisfied on an episode's first step, which has
no a_{t-1}) and the user's constraints ``fn(safety_vars) -> (N,) bool``, and
returns the (N, K) flags, True = satisfied, in its order. This is the only
place where constraints are evaluated; the safety challenge configures it.

Example:
  >>> from rwrl.domains import Constraint
  >>> builtin = (Constraint("x_pos", lambda sv, c: abs(sv["x"]) < 2 * c),)
  >>> flags = ConstraintSet(builtin, 1.5, 1, ("x_pos", "action_roc"), safety_coeff=0.5)
  >>> flags.reset(np.array([0]))
  >>> flags({"x": np.array([1.5])}, np.array([[0.2]]))  # |1.5| >= 1; roc: first step
  array([[False,  True]])
  >>> flags({"x": np.array([0.5])}, np.array([[1.2]]))  # |1.2 - 0.2| >= 0.75
  array([[ True, False]])
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np

ACTION_ROC = "action_roc"


class ConstraintSet:
    """Evaluate the active constraints on a batch.

    Args:
      builtin: the domain's ``Constraint`` objects.
      action_roc_limit: L of ``action_roc`` at c = 1 (the domain's).
      num_envs: N.
      names: the active constraints in output order (built-in names,
        'action_roc', user names); None: every built-in one.
      user_constraints: name -> fn(safety_vars) -> (N,) bool.
      safety_coeff: c in [0, 1], passed to the built-in predicates.
      action_size: nu, the width of the actions ``action_roc`` compares (0: the
        first actions' width).
    """

    def __init__(self, builtin: Sequence, action_roc_limit: float, num_envs: int,
                 names: Sequence[str] | None = None,
                 user_constraints: Mapping[str, Callable] | None = None,
                 safety_coeff: float = 1.0, action_size: int = 0):
        if not 0.0 <= safety_coeff <= 1.0:
            raise ValueError(f"safety_coeff = {safety_coeff!r} is out of range: allowed [0, 1]")
        by_name = {c.name: c.fn for c in builtin}
        user_constraints = dict(user_constraints or {})
        self.names = tuple(by_name) if names is None else tuple(names)
        self.safety_coeff = c = float(safety_coeff)
        self._fns: list[Callable[[dict], np.ndarray] | None] = []
        for name in self.names:
            if name in by_name:
                self._fns.append(lambda sv, fn=by_name[name]: fn(sv, c))
            elif name in user_constraints:
                self._fns.append(user_constraints[name])
            elif name == ACTION_ROC:
                self._fns.append(None)
            else:
                raise ValueError(f"unknown constraint {name!r}: allowed "
                                 f"{sorted(by_name) + [ACTION_ROC] + sorted(user_constraints)}")
        #: whether evaluation needs the executed actions (``action_roc`` is active).
        self.uses_actions = ACTION_ROC in self.names
        self._roc_limit = float(action_roc_limit) * c
        self._previous = np.zeros((num_envs, action_size))
        self._first = np.ones(num_envs, bool)
        self._flags = np.empty((num_envs, len(self._fns)), bool)

    def reset(self, ids: np.ndarray) -> None:
        """Mark envs ``ids`` as starting an episode (no previous action)."""
        self._first[ids] = True

    def __call__(self, safety_vars: dict, action: np.ndarray | None = None) -> np.ndarray:
        """Return a new (N, K) array of the satisfied flags after a step of the batch.

        Args:
          safety_vars: name -> (N, ...) arrays.
          action: (N, nu) the action executed on this step (needed with ``action_roc``).
        """
        flags = self._flags
        for k, fn in enumerate(self._fns):
            flags[:, k] = self._action_roc(action) if fn is None else fn(safety_vars)
        self._first[:] = False
        return flags.copy()

    def at_reset(self, safety_vars: dict, n: int) -> np.ndarray:
        """Return the (n, K) flags of envs just reset (``action_roc`` holds: no history)."""
        flags = np.empty((n, len(self._fns)), bool)
        for k, fn in enumerate(self._fns):
            flags[:, k] = True if fn is None else np.asarray(fn(safety_vars), bool).reshape(n)
        return flags

    def state(self) -> dict[str, np.ndarray]:
        """Return copies of the previous actions (N, nu) and the episode-start marks (N,)."""
        return {"previous": self._previous.copy(), "first": self._first.copy()}

    def restore(self, state) -> None:
        """Put the set where ``state()`` saw it."""
        self._previous = np.array(state["previous"], np.float64)
        self._first = np.array(state["first"], bool)

    def _action_roc(self, action: np.ndarray) -> np.ndarray:
        if self._previous.shape != action.shape:  # first use: no history anywhere
            self._previous = np.zeros_like(action)
        change = np.abs(action - self._previous).max(axis=1, initial=0.0)
        self._previous = action.copy()
        return (change < self._roc_limit) | self._first
