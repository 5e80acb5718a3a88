"""Dimensionality: extra observation features of pure noise.

Defined in Dulac-Arnold et al. (2020) (published
``num_random_state_observations``): n features, each a fresh N(0, 1) draw
every step, in the observation entry 'dummy' of shape (n,) (the published
suite adds n scalar entries 'dummy-0' ... 'dummy-{n-1}').

Spec: ``dimensionality_spec`` (keys enable, num_random_state_observations, an
integer in [0, MAX_RANDOM_OBSERVATIONS]; 0 is off).

The features are state, not pixels: with ``observation_mode='pixels_state'``
they are in the state part; ``observation_mode='pixels'`` (and
``rwrl.load(..., pixels=True)``, pixels only) refuses an explicit
``dimensionality_spec``, and the extra dimensions of ``combined_challenge``
stay in the state part the agent does not get.

Example:
  >>> features = RandomFeatures(3)
  >>> features(np.zeros((2, 4)), Frame(draws=CounterRandom(2))).shape
  (2, 7)
"""

from __future__ import annotations

import dataclasses
from typing import Mapping

import numpy as np

from rwrl.challenges.challenge import OBSERVATIONS, Challenge, StageMakers
from rwrl.challenges.spec_checks import check_keys, integer, is_on
from rwrl.challenges.stage import Frame, Stateless
from rwrl.core.seeding import CounterRandom  # noqa: F401  (the docstring example)
from rwrl.tasks.facts import TaskFacts

#: most extra N(0, 1) observation features (8 bytes each per env and step).
MAX_RANDOM_OBSERVATIONS = 10_000


class RandomFeatures(Stateless):
    """Append n N(0, 1) features per env and call, as the observation entry 'dummy'.

    Args:
      num_features: n >= 1.
    """

    name = "dummy"
    uniforms = 0

    def __init__(self, num_features: int):
        if int(num_features) != num_features or num_features < 1:
            raise ValueError(f"num_random_state_observations = {num_features!r} is out of "
                             "range: allowed integers >= 1")
        self.num_features = self.normals = int(num_features)
        self.entry = ("dummy", (self.num_features,), np.float64)

    def reset(self, ids: np.ndarray) -> None:
        """Nothing to clear: the features have no state."""

    def __call__(self, x: np.ndarray, frame: Frame) -> np.ndarray:
        """Return the (n, D) observation with (n, num_features) fresh draws appended."""
        return np.concatenate([x, frame.draws.normal((self.num_features,))], axis=1)


@dataclasses.dataclass(frozen=True)
class DimensionalitySpec:
    """Number of extra N(0, 1) observation features."""

    num_random_state_observations: int


def parse_dimensionality(spec: Mapping, facts: TaskFacts) -> DimensionalitySpec | None:
    """Parse ``dimensionality_spec`` (keys enable, num_random_state_observations)."""
    where = "dimensionality_spec"
    spec = check_keys(where, spec, ("enable", "num_random_state_observations"))
    if not is_on(where, spec):
        return None
    n = integer(f"{where}['num_random_state_observations']",
                spec.get("num_random_state_observations", 0), 0, MAX_RANDOM_OBSERVATIONS)
    return DimensionalitySpec(n) if n else None


def dimensionality_stages(spec: DimensionalitySpec, task) -> StageMakers:
    """Return the 'dummy' observation entry."""
    return {OBSERVATIONS: {"dummy": lambda shape: RandomFeatures(
        spec.num_random_state_observations)}}


#: its features are state observation entries: an env returning pixels alone refuses it.
CHALLENGE = Challenge("dimensionality", parse_dimensionality, dimensionality_stages,
                      state_observation_only=True)
