"""Safety constraints as a challenge: choose them, tighten them, observe them.

Defined in Dulac-Arnold et al. (2020) (RWRL_REFERENCE.md, "Safety
constraints"). The constraints are evaluated in one place, the task's
``ConstraintSet`` (``rwrl.tasks.constraints``); the safety challenge
configures it from ``safety_spec`` (which constraints, in which order, user
constraints, ``safety_coeff``) and, with ``safety_spec['observations']`` on,
appends the K satisfied flags to the observation as the entry 'constraints'
(bool; stored as 0.0 / 1.0 in the flat vector). The entry is delayed with the
rest of the observation; ``info`` always carries the current flags.

Spec: ``safety_spec`` (keys enable, constraints, observations, safety_coeff
in [0, 1]); ``constraints`` names the domain's built-in constraints
(``TaskFacts.constraint_names``, with or without the published
``_constraint`` suffix), the opt-in 'action_roc', or maps a name of the
user's to fn(safety_vars) -> (N,) bool.

Example:
  >>> observe = ConstraintObservation(2)
  >>> frame = Frame(info={"constraints": np.array([[True, False]])})
  >>> observe(np.array([[0.5]]), frame)
  array([[0.5, 1. , 0. ]])
  >>> facts = TaskFacts("cartpole", ("slider_pos", "balance_velocity"), {})
  >>> parse_safety({"constraints": ["slider_pos_constraint", "action_roc"]}, facts).constraints
  ('slider_pos', 'action_roc')
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from rwrl.challenges.challenge import OBSERVATIONS, Challenge, StageMakers
from rwrl.challenges.spec_checks import boolean, check_keys, choice, is_on, number, show
from rwrl.challenges.stage import Frame, Stateless
from rwrl.tasks.constraints import ACTION_ROC
from rwrl.tasks.facts import TaskFacts

_SUFFIX = "_constraint"


@dataclasses.dataclass(frozen=True)
class SafetySpec:
    """Active constraints, in output order; each name is built-in, 'action_roc' or a user's."""

    constraints: tuple[str, ...]
    #: name -> fn(safety_vars) -> (N,) bool, for the user constraints among ``constraints``.
    user_constraints: Mapping[str, Callable]
    safety_coeff: float = 1.0
    #: add the K satisfied flags as the observation entry 'constraints'.
    observations: bool = True


def configure(task, spec: SafetySpec) -> None:
    """Make ``task`` (a ``BatchedEnv``) evaluate the constraints of a ``SafetySpec``."""
    task.configure_constraints(spec.constraints, spec.user_constraints, spec.safety_coeff)


class ConstraintObservation(Stateless):
    """Append the (n, K) satisfied flags of ``info['constraints']`` to the observation."""

    name = "constraints"
    uniforms = normals = 0

    def __init__(self, num_constraints: int):
        self.entry = ("constraints", (num_constraints,), np.bool_)

    def reset(self, ids: np.ndarray) -> None:
        """Nothing to clear: the flags are the task's."""

    def __call__(self, x: np.ndarray, frame: Frame) -> np.ndarray:
        return np.concatenate([x, frame.info["constraints"]], axis=1, dtype=np.float64)


# -- the spec ---------------------------------------------------------------------
def parse_safety(spec: Mapping, facts: TaskFacts) -> SafetySpec | None:
    """Parse ``safety_spec`` (keys enable, constraints, observations, safety_coeff)."""
    where = "safety_spec"
    if isinstance(spec, Mapping) and "limits" in spec:
        raise ValueError(
            "safety_spec['limits'] is not supported: the limits are domain facts scaled by "
            "safety_spec['safety_coeff']; write a user constraint for other limits "
            "(docs/compatibility.md)")
    spec = check_keys(where, spec, ("enable", "constraints", "observations", "safety_coeff"))
    if not is_on(where, spec):
        return None
    coeff = number(f"{where}['safety_coeff']", spec.get("safety_coeff", 1.0), 0.0, 1.0)
    names, user = _parse_constraints(spec.get("constraints"), facts)
    return SafetySpec(constraints=names, user_constraints=user, safety_coeff=coeff,
                      observations=boolean(f"{where}['observations']",
                                           spec.get("observations", True)))


def _parse_constraints(value: Any, facts: TaskFacts) -> tuple[tuple[str, ...], dict]:
    """Return (names in order, user constraints) of ``safety_spec['constraints']``."""
    builtin = facts.constraint_names + (ACTION_ROC,)
    if value is None:
        return facts.constraint_names, {}
    if isinstance(value, str) or not isinstance(value, (Mapping, Sequence)):
        raise ValueError(f"safety_spec['constraints'] = {show(value)} is not allowed: give a list "
                         "of names or a dict name -> None (built-in) or fn(safety_vars)")
    items = value.items() if isinstance(value, Mapping) else ((v, None) for v in value)
    names, user = [], {}
    for key, fn in items:
        if not isinstance(key, str):
            raise ValueError(f"safety_spec['constraints']: {show(key)} is not a constraint name")
        name = key[:-len(_SUFFIX)] if key.endswith(_SUFFIX) else key
        if fn is None:
            choice(f"safety_spec['constraints'] entry {show(key)} (domain {facts.domain!r})",
                   name, builtin)
        elif name in builtin:
            raise ValueError(
                f"safety_spec['constraints'][{show(key)}] names a built-in constraint: give it "
                f"the value None (or list the names) to select it, or rename your own constraint")
        elif not callable(fn):
            raise ValueError(f"safety_spec['constraints'][{show(key)}] = {show(fn)} is not "
                             "callable: allowed None (built-in) or fn(safety_vars) -> (N,) bool")
        else:
            user[name] = fn
        if name in names:
            raise ValueError(f"safety_spec['constraints'] lists {show(name)} twice")
        names.append(name)
    return tuple(names), user


def safety_stages(spec: SafetySpec, task) -> StageMakers:
    """Return the 'constraints' observation entry, when observed (after ``configure``)."""
    if not spec.observations:
        return {}
    return {OBSERVATIONS: {"constraints": lambda shape: ConstraintObservation(
        len(task.constraint_names))}}


CHALLENGE = Challenge("safety", parse_safety, safety_stages, configure)
