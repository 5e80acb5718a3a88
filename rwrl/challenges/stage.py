"""What every challenge stage shares: one call signature and the frame it reads.

A stage is one challenge's transform of one stream (actions, observations or
rewards): ``stage(x, frame) -> x`` on an (n, ...) batch, with ``reset(ids)``
clearing the state of envs starting an episode. The challenge layer
(``rwrl.challenges.pipeline``) puts the stages of each path in their
documented order once, when the env is built; a step runs the lists.

A ``Frame`` carries what the stages of one step, or of one reset, share:
which envs (``ids``: None for a step of the whole batch, the env indices for
a reset), this call's random draws and the task's ``info`` (constraint
flags, safety variables), to which stages may add keys.

Stages that draw random numbers declare how many per env and call
(``uniforms``, ``normals``), so that a step's draws come from one block;
stages that append an observation entry declare it (``entry``: name, shape,
dtype).

A stage saves what it carries from one step to the next (``state()``: field
name -> array, copies) and puts it back (``restore(state)``, given arrays of
the shapes and dtypes its own ``state()`` has, already checked); a stage with
nothing to carry is ``Stateless``. The pipeline collects them by path and
stage name for ``env_state()``.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np


class Draws(Protocol):
    """A call's random numbers: (n, *shape) arrays, handed out in request order."""

    def uniform(self, shape: tuple[int, ...]) -> np.ndarray: ...

    def normal(self, shape: tuple[int, ...]) -> np.ndarray: ...


class Frame:
    """What the stages of one step (``ids`` None) or one reset (``ids`` given) share."""

    __slots__ = ("ids", "draws", "info")

    def __init__(self, ids: np.ndarray | None = None, draws: Draws | None = None,
                 info: dict[str, Any] | None = None):
        self.ids, self.draws, self.info = ids, draws, info


class Stage(Protocol):
    """One challenge's transform of one stream; see the module docstring."""

    name: str
    uniforms: int
    normals: int

    def reset(self, ids: np.ndarray) -> None:
        """Clear the state of envs ``ids`` (a new episode)."""

    def __call__(self, x: np.ndarray, frame: Frame) -> np.ndarray:
        """Return the transformed (n, ...) batch."""

    def state(self) -> dict[str, np.ndarray]:
        """Return copies of what the stage carries between steps, by field name."""

    def restore(self, state: dict[str, np.ndarray]) -> None:
        """Put the stage where ``state()`` saw it."""


class Stateless:
    """A stage that carries nothing from one step to the next: an empty snapshot."""

    def state(self) -> dict[str, np.ndarray]:
        """Return no fields: nothing to save."""
        return {}

    def restore(self, state: dict[str, np.ndarray]) -> None:
        """Nothing to put back."""
