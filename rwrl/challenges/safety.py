"""Safety constraints as a challenge: choose them, tighten them, observe them.

Defined in Dulac-Arnold et al. (2020) (RWRL_REFERENCE.md, "Safety
constraints"). The constraints are evaluated in one place, the task's
``ConstraintSet`` (``rwrl.tasks.constraints``); the safety challenge
configures it from ``safety_spec`` (which constraints, in which order, user
constraints, ``safety_coeff``) and, with ``safety_spec['observations']`` on,
appends the K satisfied flags to the observation as the entry 'constraints'
(bool; stored as 0.0 / 1.0 in the flat vector). The entry is delayed with the
rest of the observation; ``info`` always carries the current flags.

Example:
  >>> observe = ConstraintObservation(2)
  >>> frame = Frame(info={"constraints": np.array([[True, False]])})
  >>> observe(np.array([[0.5]]), frame)
  array([[0.5, 1. , 0. ]])
"""

from __future__ import annotations

import numpy as np

from rwrl.challenges.stage import Frame


def configure(task, spec) -> None:
    """Make ``task`` (a ``BatchedEnv``) evaluate the constraints of a ``SafetySpec``."""
    task.configure_constraints(spec.constraints, spec.user_constraints, spec.safety_coeff)


class ConstraintObservation:
    """Append the (n, K) satisfied flags of ``info['constraints']`` to the observation."""

    name = "constraints"
    uniforms = normals = 0

    def __init__(self, num_constraints: int):
        self.entry = ("constraints", (num_constraints,), np.bool_)

    def reset(self, ids: np.ndarray) -> None:
        """Nothing to clear: the flags are the task's."""

    def __call__(self, x: np.ndarray, frame: Frame) -> np.ndarray:
        return np.concatenate([x, frame.info["constraints"]], axis=1, dtype=np.float64)
