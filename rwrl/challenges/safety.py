"""Safety constraints: which constraints are active, at which ``safety_coeff``.

Defined in Dulac-Arnold et al. (2020) (RWRL_REFERENCE.md,
"Safety constraints"). The built-in predicates are domain facts
(``rwrl.domains``, ``Constraint.fn(safety_vars, coeff)``); this challenge
selects them, adds the opt-in ``action_roc`` (all |a_t - a_{t-1}| < L * c,
on the executed actions; satisfied on an episode's first step, which has no
a_{t-1}) and the user's constraints ``fn(safety_vars) -> (N,) bool``, and
returns the (N, K) flags, True = satisfied, in the spec's order.

Example:
  >>> from rwrl.domains import Constraint
  >>> builtin = (Constraint("x_pos", lambda sv, c: abs(sv["x"]) < 2 * c),)
  >>> safety = SafetyConstraints(("x_pos", "action_roc"), {}, 0.5, builtin, 1.5, 1)
  >>> safety.reset(np.array([0]))
  >>> sv = {"x": np.array([1.5])}
  >>> safety(sv, np.array([[0.2]]), np.array([[0.0]]))   # |1.5| >= 1; roc: first step
  array([[False,  True]])
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np

ACTION_ROC = "action_roc"


class SafetyConstraints:
    """Evaluate the active constraints on a batch.

    Args:
      names: the active constraints in output order (built-in, 'action_roc', user).
      user_constraints: name -> fn(safety_vars) -> (N,) bool.
      safety_coeff: c in [0, 1], passed to the built-in predicates.
      builtin: the domain's ``Constraint`` objects.
      action_roc_limit: L of ``action_roc`` at c = 1 (the domain's).
      num_envs: N.
    """

    def __init__(self, names: Sequence[str], user_constraints: Mapping[str, Callable],
                 safety_coeff: float, builtin: Sequence, action_roc_limit: float,
                 num_envs: int):
        if not 0.0 <= safety_coeff <= 1.0:
            raise ValueError(f"safety_coeff = {safety_coeff!r} is out of range: allowed [0, 1]")
        by_name = {c.name: c.fn for c in builtin}
        self.names = tuple(names)
        self.safety_coeff = float(safety_coeff)
        self._fns: list[Callable[[dict], np.ndarray]] = []
        for name in self.names:
            if name in by_name:
                self._fns.append(lambda sv, fn=by_name[name]: fn(sv, self.safety_coeff))
            elif name in user_constraints:
                self._fns.append(user_constraints[name])
            elif name != ACTION_ROC:
                raise ValueError(f"unknown constraint {name!r}: allowed "
                                 f"{sorted(by_name) + [ACTION_ROC] + sorted(user_constraints)}")
            else:
                self._fns.append(None)
        self._roc_limit = float(action_roc_limit) * self.safety_coeff
        self._first = np.ones(num_envs, bool)

    def reset(self, ids: np.ndarray) -> None:
        """Mark envs ``ids`` as starting an episode (no previous action)."""
        self._first[ids] = True

    def __call__(self, safety_vars: dict, action: np.ndarray,
                 previous_action: np.ndarray, ids=None) -> np.ndarray:
        """Return the (n, K) satisfied flags.

        Args:
          safety_vars: name -> (n, ...) arrays.
          action: (n, nu) the action executed this step.
          previous_action: (n, nu) the action executed on the step before.
          ids: the envs of a reset (their flags are evaluated without action_roc
            history); None is the whole batch in a step.
        """
        n = action.shape[0]
        flags = np.empty((n, len(self._fns)), bool)
        for k, fn in enumerate(self._fns):
            if fn is None:
                flags[:, k] = self._action_roc(action, previous_action, ids)
            else:
                flags[:, k] = np.asarray(fn(safety_vars), bool).reshape(n)
        if ids is None:
            self._first[:] = False
        return flags

    def _action_roc(self, action, previous_action, ids) -> np.ndarray:
        if ids is not None:
            return np.ones(action.shape[0], bool)
        change = np.abs(action - previous_action).max(axis=1, initial=0.0)
        return (change < self._roc_limit) | self._first
