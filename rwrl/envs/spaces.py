"""Observation spaces: a flat Box by default, a Dict on request.

The batched env hands over flat (n, D) observations laid out by its
``FlatLayout`` (``rwrl.core.layout``); in 'flat' mode the agent gets them
as they are, in 'dict' mode split into named entries (views), with the
'constraints' entry as bool, as documented and as the published suite gives it.
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces

from rwrl.core.layout import FlatLayout

OBSERVATION_MODES = ("flat", "dict")


def _entry_space(shape: tuple[int, ...], dtype: np.dtype) -> spaces.Box:
    if dtype == np.bool_:
        return spaces.Box(0, 1, shape, np.bool_)
    return spaces.Box(-np.inf, np.inf, shape, np.float64)


class ObservationLayout:
    """Maps a batched flat observation to the Gymnasium observation.

    Args:
      layout: the batched env's ``FlatLayout``.
      mode: 'flat' (one float64 vector, entries concatenated in layout order) or 'dict'.
    """

    def __init__(self, layout: FlatLayout, mode: str = "flat"):
        if mode not in OBSERVATION_MODES:
            raise ValueError(f"observation_mode {mode!r} is not allowed: use one of "
                             f"{list(OBSERVATION_MODES)}")
        self.layout, self.mode = layout, mode
        self.slices = dict(layout.slices)

    def space(self) -> spaces.Space:
        """Return the observation space of one env."""
        if self.mode == "flat":
            return spaces.Box(-np.inf, np.inf, (self.layout.size,), np.float64)
        return spaces.Dict({name: _entry_space(shape, dtype)
                            for name, (shape, dtype) in self.layout.spec.items()})

    def batch(self, obs: np.ndarray):
        """Return the batched observation: the (n, D) array, or a dict of (n, ...)."""
        return obs if self.mode == "flat" else self.layout.unflatten(obs)

    def single(self, obs: np.ndarray):
        """Return env 0's observation of a batch of one."""
        if self.mode == "flat":
            return obs[0]
        return {k: v[0] for k, v in self.layout.unflatten(obs).items()}
