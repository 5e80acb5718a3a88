"""Dimensionality: extra observation features of pure noise.

Defined in Dulac-Arnold et al. (2020) (published
``num_random_state_observations``): n features, each a fresh N(0, 1) draw
every step, in the observation entry 'dummy' of shape (n,) (the published
suite adds n scalar entries 'dummy-0' ... 'dummy-{n-1}').

Example:
  >>> rng = CounterRandom(2)
  >>> RandomFeatures(3)(rng).shape
  (2, 3)
"""

from __future__ import annotations

import numpy as np

from rwrl.core.seeding import CounterRandom  # noqa: F401  (the docstring example)


class RandomFeatures:
    """Draw n N(0, 1) features per env and step.

    Args:
      num_features: n >= 1.
    """

    def __init__(self, num_features: int):
        if int(num_features) != num_features or num_features < 1:
            raise ValueError(f"num_random_state_observations = {num_features!r} is out of "
                             "range: allowed integers >= 1")
        self.num_features = int(num_features)
        self.normals_per_call = self.num_features

    def reset(self, ids: np.ndarray) -> None:
        """Nothing to clear: the features have no state."""

    def __call__(self, rng) -> np.ndarray:
        """Return (n_envs, num_features) fresh N(0, 1) draws."""
        return rng.normal((self.num_features,))
