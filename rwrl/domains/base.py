"""What every domain defines: model, task logic, safety facts, parameters.

A domain is one module with a ``Domain`` subclass. It knows nothing of the
challenges: it computes, on (N, ...) arrays read from a ``BatchedPhysics``,
the observation, the reward, the safety variables and its built-in constraint
predicates, and it names its perturbable physical parameters with the spec
edit that sets each. Task variants are constructor arguments.
"""

from __future__ import annotations

import abc
import dataclasses
from typing import Callable, ClassVar, Mapping, Sequence

import mujoco
import numpy as np

from rwrl.core.engine import BatchedPhysics
from rwrl.core.models import SpecEdit

SafetyVars = dict[str, np.ndarray]


@dataclasses.dataclass(frozen=True)
class Constraint:
    """A safety constraint: ``fn(safety_vars, coeff)`` is (N,) bool, True = satisfied.

    ``coeff`` is ``safety_coeff`` in [0, 1]: 1 gives the nominal limits, smaller
    values tighter ones.
    """

    name: str
    fn: Callable[[SafetyVars, float], np.ndarray]
    doc: str = ""


@dataclasses.dataclass(frozen=True)
class PerturbParam:
    """A perturbable physical parameter and its default scheduler settings.

    ``start`` is the nominal value (the value in dm_control's XML); ``min`` and
    ``max`` bound every value the parameter may take; ``std`` is the default
    scheduler step (RWRL_REFERENCE.md, perturbable parameters).
    """

    name: str
    start: float
    min: float
    max: float
    std: float
    edit: SpecEdit
    unit: str = ""

    def check(self, value: float) -> float:
        """Return ``value`` as a float, or raise naming the allowed range."""
        value = float(value)
        if not np.isfinite(value) or not self.min <= value <= self.max:
            raise ValueError(
                f"parameter {self.name!r} = {value!r} is out of range: allowed "
                f"[{self.min}, {self.max}]")
        return value


def set_joint_damping(spec: mujoco.MjSpec, names: Sequence[str], value: float) -> None:
    """Set the damping of the named joints in a spec."""
    for name in names:
        joint = spec.joint(name)
        damping = np.array(joint.damping, dtype=float).ravel()
        damping[0] = value
        joint.damping = damping if damping.size > 1 else float(value)


def set_geom_friction(spec: mujoco.MjSpec, value: float, geoms: Sequence[str] | None = None) -> None:
    """Set the sliding friction of the named geoms (all geoms if None)."""
    targets = spec.geoms if geoms is None else [spec.geom(g) for g in geoms]
    for geom in targets:
        friction = np.array(geom.friction, dtype=float)
        friction[0] = value
        geom.friction = friction


class Domain(abc.ABC):
    """Base of the five domains; see the module docstring.

    Subclasses set the class attributes and implement the abstract methods;
    every method works on the whole batch.
    """

    name: ClassVar[str]
    #: task name -> constructor keyword arguments of the task variant.
    TASKS: ClassVar[Mapping[str, Mapping[str, object]]]
    #: seconds per control step.
    CONTROL_TIMESTEP: ClassVar[float]
    #: episode length in control steps (a truncation, never a termination).
    TIME_LIMIT: ClassVar[int] = 1000
    #: limit of the opt-in ``action_roc`` constraint at safety_coeff 1.
    ACTION_ROC_LIMIT: ClassVar[float]
    #: the combined challenges' perturbation: (parameter, level -> (min, max, std)),
    #: levels 'easy', 'medium' and 'hard' (RWRL_REFERENCE.md, "Combined challenges").
    COMBINED_PERTURBATION: ClassVar[tuple[str, Mapping[str, tuple[float, float, float]]]]
    #: camera of the pixel observations by default: the one the pixel benchmarks
    #: on dm_control render (DrQ ``train.py``, DrQ-v2 ``dmc.py``, after Dreamer:
    #: ``camera_id = 2 if domain == 'quadruped' else 0``).
    PIXELS_CAMERA: ClassVar[int] = 0

    def __init__(self, task: str):
        if task not in self.TASKS:
            raise ValueError(
                f"unknown task {task!r} for domain {self.name!r}: allowed "
                f"{sorted(self.TASKS)}")
        self.task = task
        self.task_kwargs = dict(self.TASKS[task])

    # -- model -------------------------------------------------------------
    @abc.abstractmethod
    def model_xml(self) -> tuple[str, Mapping[str, bytes]]:
        """Return the model XML and its assets (dm_control's)."""

    def perturb_params(self) -> Mapping[str, PerturbParam]:
        """Return the perturbable parameters, by name, in reference order."""
        return {}

    def constraints(self) -> tuple[Constraint, ...]:
        """Return the built-in constraints in the published order."""
        return ()

    # -- task logic (batched) ----------------------------------------------
    def setup(self, model: mujoco.MjModel) -> None:
        """Resolve names to indices once the nominal model exists."""

    @abc.abstractmethod
    def initialize_episode(self, physics: BatchedPhysics, ids: np.ndarray,
                           rngs: Sequence[np.random.Generator]) -> None:
        """Write the initial qpos/qvel (and model-free state) of envs ``ids``.

        The caller has reset those envs to the model defaults and runs mj_forward
        afterwards. ``rngs[j]`` is the task generator of env ``ids[j]``.
        """

    @abc.abstractmethod
    def observation(self, physics: BatchedPhysics) -> dict[str, np.ndarray]:
        """Return the observation entries, each (N, ...) float64, in spec order."""

    @abc.abstractmethod
    def reward(self, physics: BatchedPhysics) -> np.ndarray:
        """Return the (N,) reward in [0, 1]."""

    def safety_vars(self, physics: BatchedPhysics) -> SafetyVars:
        """Return the safety variables, name -> (N, ...) float64."""
        return {}
