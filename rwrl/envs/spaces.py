"""Observation layout: a flat Box by default, a Dict on request."""

from __future__ import annotations

import numpy as np
from gymnasium import spaces

OBSERVATION_MODES = ("flat", "dict")


class ObservationLayout:
    """Maps a batched observation dict to the Gymnasium observation.

    Args:
      spec: ordered name -> (per-env shape, dtype), as ``BatchedEnv.observation_spec``.
      mode: 'flat' (one float64 vector, entries concatenated in spec order) or 'dict'.
    """

    def __init__(self, spec: dict, mode: str = "flat"):
        if mode not in OBSERVATION_MODES:
            raise ValueError(f"observation_mode {mode!r} is not allowed: use one of "
                             f"{list(OBSERVATION_MODES)}")
        self.spec = dict(spec)
        self.mode = mode
        self.slices: dict[str, slice] = {}
        start = 0
        for name, (shape, _) in self.spec.items():
            size = int(np.prod(shape, dtype=np.int64))
            self.slices[name] = slice(start, start + size)
            start += size
        self.size = start

    def space(self) -> spaces.Space:
        """Return the observation space of one env."""
        if self.mode == "flat":
            return spaces.Box(-np.inf, np.inf, (self.size,), np.float64)
        return spaces.Dict({
            name: spaces.Box(-np.inf, np.inf, shape, np.float64)
            for name, (shape, _) in self.spec.items()})

    def batch(self, obs: dict[str, np.ndarray]):
        """Return the batched observation: (n, size) array, or dict of (n, ...)."""
        if self.mode == "flat":
            n = next(iter(obs.values())).shape[0]
            return np.concatenate([obs[k].reshape(n, -1) for k in self.spec], axis=1)
        return {k: np.asarray(obs[k], np.float64) for k in self.spec}

    def single(self, obs: dict[str, np.ndarray]):
        """Return env 0's observation of a batch of one."""
        batched = self.batch(obs)
        if self.mode == "flat":
            return batched[0]
        return {k: v[0] for k, v in batched.items()}
