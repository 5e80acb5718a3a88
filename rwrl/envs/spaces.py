"""Observation spaces: a flat Box by default, a Dict on request, an image when the env renders.

The batched env hands over flat (n, D) observations laid out by its
``FlatLayout`` (``rwrl.core.layout``); in 'flat' mode the agent gets them
as they are, in 'dict' mode split into named entries (views), with the
'constraints' entry as bool, as documented and as the published suite gives it.

A batched env that renders (``rwrl.envs.pixels``) hands over
``{'state': (n, D), 'pixels': (n, H, W, C)}`` instead: 'pixels' mode gives
the agent the uint8 image, 'pixels_state' a Dict of 'pixels' and 'state'
(the flat state, as in 'flat' mode).

``take_rows`` and ``merge_rows`` select and write the rows of a batched
observation or info, an array or a dict of them, whatever the mode.
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces

from rwrl.core.layout import FlatLayout
from rwrl.envs.pixels import PIXEL_MODES

OBSERVATION_MODES = ("flat", "dict", *PIXEL_MODES)


def _entry_space(shape: tuple[int, ...], dtype: np.dtype) -> spaces.Box:
    if dtype == np.bool_:
        return spaces.Box(0, 1, shape, np.bool_)
    return spaces.Box(-np.inf, np.inf, shape, np.float64)


def take_rows(tree, index):
    """Return copies of rows ``index`` of every array of ``tree`` (an array or nested dict)."""
    if isinstance(tree, dict):
        return {key: take_rows(value, index) for key, value in tree.items()}
    return np.array(np.asarray(tree)[index])


def merge_rows(full, part, ids: np.ndarray):
    """Return a copy of ``full`` with rows ``ids`` taken from ``part`` (arrays or nested dicts)."""
    if isinstance(full, dict):
        return {key: merge_rows(value, part[key], ids) for key, value in full.items()}
    value = np.array(full)
    value[ids] = part
    return value


class ObservationLayout:
    """Maps a batched observation to the Gymnasium observation.

    Args:
      layout: the batched env's ``FlatLayout``.
      mode: 'flat' (one float64 vector, entries concatenated in layout order),
        'dict', 'pixels' or 'pixels_state'.
      pixels_shape: the per-env (H, W, C) of the rendered observation; the
        pixel modes need it (an env made to render), the others refuse it.
    """

    def __init__(self, layout: FlatLayout, mode: str = "flat",
                 pixels_shape: tuple[int, int, int] | None = None):
        self.check_mode(mode)
        if (mode in PIXEL_MODES) != (pixels_shape is not None):
            raise ValueError(f"observation_mode {mode!r} needs an env made to render its "
                             f"observation (gymnasium.make(id, observation_mode={mode!r})), "
                             "and only the pixel modes take one")
        self.layout, self.mode, self.pixels_shape = layout, mode, pixels_shape
        self.slices = dict(layout.slices)

    @staticmethod
    def check_mode(mode) -> None:
        """Raise a ValueError unless ``mode`` is one of ``OBSERVATION_MODES``."""
        if mode not in OBSERVATION_MODES:
            raise ValueError(f"observation_mode {mode!r} is not allowed: use one of "
                             f"{list(OBSERVATION_MODES)}")

    def space(self) -> spaces.Space:
        """Return the observation space of one env."""
        state = spaces.Box(-np.inf, np.inf, (self.layout.size,), np.float64)
        if self.mode == "flat":
            return state
        if self.mode == "dict":
            return spaces.Dict({name: _entry_space(shape, dtype)
                                for name, (shape, dtype) in self.layout.spec.items()})
        pixels = spaces.Box(0, 255, self.pixels_shape, np.uint8)
        if self.mode == "pixels":
            return pixels
        return spaces.Dict({"pixels": pixels, "state": state})

    def batch(self, obs):
        """Return the batched observation: the (n, D) array, a dict of (n, ...), or the images."""
        if self.mode == "flat":
            return obs
        if self.mode == "dict":
            return self.layout.unflatten(obs)
        if self.mode == "pixels":
            return obs["pixels"]
        return {"pixels": obs["pixels"], "state": obs["state"]}

    def single(self, obs):
        """Return env 0's observation of a batch of one."""
        batch = self.batch(obs)
        if isinstance(batch, dict):
            return {k: v[0] for k, v in batch.items()}
        return batch[0]

    def zeros(self, n: int):
        """Return a batched env's observation of ``n`` envs, all zero (shapes and dtypes)."""
        state = np.zeros((n, self.layout.size))
        if self.pixels_shape is None:
            return state
        return {"state": state, "pixels": np.zeros((n,) + tuple(self.pixels_shape), np.uint8)}
