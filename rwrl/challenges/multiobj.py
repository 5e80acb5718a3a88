"""Multi-objective rewards: an objective registry and the reward mix.

Defined in Dulac-Arnold et al. (2020) and the published
``utils/multiobj_objectives.py``. The built-in objective ``safety`` is
s_t = (satisfied constraints) / K; with ``reward`` on the reward becomes
r' = (1 - alpha) r + alpha s_t (alpha = ``coeff``); with ``observed`` on the
observation gains the entry 'multiobj' = [r, s_t] (r before the mix).

Two stages: ``MultiObjective`` on the reward path (it writes the (n, 1 + M)
vector [r, objectives] to ``info['multiobj']``, r before the mix, and returns
the mixed reward) and ``ObserveObjectives`` on the observation path (it
appends that vector). At a reset the reward is 0.

Spec: ``multiobj_spec`` (keys enable, objective: a name of ``OBJECTIVES`` or an
``Objective``, reward, coeff in [0, 1], observed).

Example:
  >>> mix = MultiObjective(SafetyObjective(), reward=True, coeff=0.5)
  >>> frame = Frame(info={"constraints": np.array([[True, False]]), "safety_vars": {}})
  >>> mix(np.array([1.0]), frame)        # 0.5 * 1 + 0.5 * 0.5
  array([0.75])
  >>> frame.info["multiobj"]
  array([[1. , 0.5]])
"""

from __future__ import annotations

import abc
import dataclasses
from typing import Mapping

import numpy as np

from rwrl.challenges.challenge import OBSERVATIONS, REWARDS, Challenge, StageMakers
from rwrl.challenges.spec_checks import boolean, check_keys, choice, is_on, number, show
from rwrl.challenges.stage import Frame, Stateless
from rwrl.tasks.facts import TaskFacts


class Objective(abc.ABC):
    """A family of extra objectives computed on the batch; subclass to add your own."""

    #: M, the number of objective values per env.
    num_objectives: int = 1

    @abc.abstractmethod
    def values(self, reward: np.ndarray, constraints: np.ndarray,
               safety_vars: dict[str, np.ndarray]) -> np.ndarray:
        """Return the (N, M) objective values.

        Args:
          reward: (N,) the task reward of this step.
          constraints: (N, K) bool satisfied flags of the active constraints.
          safety_vars: the domain's safety variables, name -> (N, ...).
        """

    def merge(self, reward: np.ndarray, values: np.ndarray, coeff: float) -> np.ndarray:
        """Return the (N,) mixed reward (1 - coeff) r + coeff mean(values)."""
        extra = values[:, 0] if values.shape[1] == 1 else values.mean(axis=1)
        return (1.0 - coeff) * reward + coeff * extra


class SafetyObjective(Objective):
    """The fraction of satisfied constraints, s_t = sum(flags) / K (1 when K = 0)."""

    def values(self, reward, constraints, safety_vars):
        k = constraints.shape[1]
        if k == 0:
            return np.ones((constraints.shape[0], 1))
        return constraints.sum(axis=1, keepdims=True) / float(k)


#: name -> objective; register your own with ``OBJECTIVES['name'] = MyObjective()``.
OBJECTIVES: dict[str, Objective] = {"safety": SafetyObjective()}


class MultiObjective(Stateless):
    """Mix an objective into the reward and report [r, objectives] in ``info['multiobj']``.

    Args:
      objective: an ``Objective``.
      reward: mix the objective into the reward.
      coeff: alpha in [0, 1].
    """

    name = "multiobj"
    uniforms = normals = 0

    def __init__(self, objective: Objective, reward: bool, coeff: float):
        if not 0.0 <= coeff <= 1.0:
            raise ValueError(f"multiobj coeff = {coeff!r} is out of range: allowed [0, 1]")
        self.objective = objective
        self.reward = reward
        self.coeff = coeff
        self.size = 1 + objective.num_objectives

    def reset(self, ids: np.ndarray) -> None:
        """Nothing to clear: the mix has no state."""

    def __call__(self, reward: np.ndarray, frame: Frame) -> np.ndarray:
        """Return the (n,) reward after the mix; write [r, objectives] to ``frame.info``."""
        info = frame.info
        values = np.asarray(self.objective.values(reward, info["constraints"],
                                                  info["safety_vars"]), np.float64)
        info["multiobj"] = np.concatenate([reward[:, None], values], axis=1)
        return self.objective.merge(reward, values, self.coeff) if self.reward else reward


class ObserveObjectives(Stateless):
    """Append ``info['multiobj']`` to the observation, as the entry 'multiobj'."""

    name = "multiobj"
    uniforms = normals = 0

    def __init__(self, size: int):
        self.entry = ("multiobj", (size,), np.float64)

    def reset(self, ids: np.ndarray) -> None:
        """Nothing to clear."""

    def __call__(self, x: np.ndarray, frame: Frame) -> np.ndarray:
        return np.concatenate([x, frame.info["multiobj"]], axis=1)


# -- the spec ---------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class MultiObjSpec:
    """Objective, and whether it mixes into the reward and/or is observed."""

    objective: Objective
    reward: bool = False
    coeff: float = 0.0
    observed: bool = False


def parse_multiobj(spec: Mapping, facts: TaskFacts) -> MultiObjSpec | None:
    """Parse ``multiobj_spec`` (keys enable, objective, reward, coeff, observed)."""
    where = "multiobj_spec"
    spec = check_keys(where, spec, ("enable", "objective", "reward", "coeff", "observed"))
    if not is_on(where, spec):
        return None
    objective = spec.get("objective", "safety")
    if isinstance(objective, str):
        objective = OBJECTIVES[choice(f"{where}['objective']", objective, tuple(OBJECTIVES))]
    elif isinstance(objective, type) and issubclass(objective, Objective):
        objective = objective()
    if not isinstance(objective, Objective):
        raise ValueError(f"{where}['objective'] = {show(objective)} is not an objective: allowed "
                         f"{sorted(OBJECTIVES)} or an rwrl.challenges.multiobj.Objective")
    return MultiObjSpec(objective=objective,
                        reward=boolean(f"{where}['reward']", spec.get("reward", False)),
                        coeff=number(f"{where}['coeff']", spec.get("coeff", 0.0), 0.0, 1.0),
                        observed=boolean(f"{where}['observed']", spec.get("observed", False)))


def multiobj_stages(spec: MultiObjSpec, task) -> StageMakers:
    """Return the reward mix and, when observed, the 'multiobj' observation entry."""
    stages = {REWARDS: {"multiobj": lambda shape: MultiObjective(spec.objective, spec.reward,
                                                                 spec.coeff)}}
    if spec.observed:
        stages[OBSERVATIONS] = {"multiobj": lambda shape: ObserveObjectives(
            1 + spec.objective.num_objectives)}
    return stages


CHALLENGE = Challenge("multiobj", parse_multiobj, multiobj_stages)
