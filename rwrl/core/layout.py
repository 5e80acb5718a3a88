"""The flat observation layout: named entries concatenated into one float64 vector.

The one implementation of flattening, shared by the task (which flattens its
domain's observation once per step), the challenge layer (which appends
entries) and the adapters (which hand the flat vector to the agent, or split
it back into named entries for ``observation_mode="dict"``).

Example:
  >>> layout = FlatLayout({"position": ((2,), np.float64), "constraints": ((1,), bool)})
  >>> flat = layout.flatten({"position": np.array([[1.0, 2.0]]), "constraints": np.array([[True]])})
  >>> flat
  array([[1., 2., 1.]])
  >>> layout.unflatten(flat)["constraints"]
  array([[ True]])
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

#: name -> (per-env shape, dtype), in layout order.
Spec = Mapping[str, tuple[tuple[int, ...], Any]]


class FlatLayout:
    """Where each named entry sits in the flat (n, size) float64 observation.

    Args:
      spec: ordered name -> (per-env shape, dtype). Entries of dtype bool are
        stored as 0.0 / 1.0 and come back as bool from ``unflatten``.
    """

    def __init__(self, spec: Spec):
        self.spec = {name: (tuple(shape), np.dtype(dtype)) for name, (shape, dtype) in spec.items()}
        self.slices: dict[str, slice] = {}
        start = 0
        for name, (shape, _) in self.spec.items():
            size = int(np.prod(shape, dtype=np.int64))
            self.slices[name] = slice(start, start + size)
            start += size
        self.size = start

    def extended(self, name: str, shape: tuple[int, ...], dtype: Any) -> "FlatLayout":
        """Return this layout with one entry appended at the end."""
        if name in self.spec:
            raise ValueError(f"observation entry {name!r} exists already")
        return FlatLayout({**self.spec, name: (tuple(shape), dtype)})

    def flatten(self, obs: Mapping[str, np.ndarray]) -> np.ndarray:
        """Return the (n, size) float64 concatenation of the entries of ``obs``, in order."""
        n = next(iter(obs.values())).shape[0]
        return np.concatenate([np.reshape(obs[k], (n, -1)) for k in self.spec], axis=1,
                              dtype=np.float64)

    def unflatten(self, flat: np.ndarray) -> dict[str, np.ndarray]:
        """Return name -> (n, *shape) entries of a flat (n, size) batch (views, bools as bool)."""
        n = flat.shape[0]
        out = {}
        for name, (shape, dtype) in self.spec.items():
            entry = flat[:, self.slices[name]].reshape((n,) + shape)
            out[name] = entry > 0.5 if dtype == np.bool_ else entry
        return out
