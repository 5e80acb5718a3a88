"""The batched environment interface that every layer above the tasks speaks.

Shape convention (whole package): a leading axis N = ``num_envs`` on every
array; ``ids`` are env indices. A single Gymnasium env is a batch of one.

Layers::

    BatchedTask (rwrl.tasks.task: a domain on the batched MuJoCo engine, no challenge)
      -> ChallengeEnv (rwrl.challenges.pipeline: the real-world challenges)
        -> adapters (rwrl.envs: Gymnasium Env and VectorEnv, dm_env)

``BatchedTask`` and ``ChallengeEnv`` both implement ``BatchedEnv``, and the
adapters use nothing else, so they need not know whether challenges are on.

Observations are flat: one (n, D) float64 array per call, laid out by
``layout`` (``rwrl.tasks.layout.FlatLayout``: the named entries and their
slices; bool entries hold 0.0 or 1.0).

``info`` keys, present on every step and on every reset with the same shapes:

* ``constraints``: (n, K) bool, True = satisfied, in ``constraint_names`` order.
* ``cost``: (n,) float64, the number of violated constraints.
* ``safety_vars``: dict name -> (n, ...) float64, the domain's safety variables.
* ``diverged``: (n,) bool, True on the step where that env's simulation
  became unstable (MuJoCo's bad position, velocity or acceleration warning,
  after which MuJoCo resets that simulation). That step ends the episode
  (``truncated``); the other envs are untouched.

Challenges add keys of their own (documented in rwrl.challenges.pipeline).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping, Protocol, Sequence

import mujoco
import numpy as np

from rwrl.core.engine import BatchedPhysics
from rwrl.tasks.layout import FlatLayout

Info = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class TaskFacts:
    """The domain facts a challenge needs to know of a task.

    Attributes:
      domain: domain name ('cartpole').
      constraint_names: the built-in constraints, in the published order.
      perturb_params: name -> ``rwrl.domains.PerturbParam`` (start, min, max,
        std), in reference order.
      action_roc_limit: the limit of the opt-in ``action_roc`` constraint at
        safety_coeff 1.
    """

    domain: str
    constraint_names: tuple[str, ...]
    perturb_params: Mapping[str, Any]
    action_roc_limit: float = float("inf")


class BatchedEnv(Protocol):
    """N environments advanced together; see the module docstring."""

    num_envs: int
    facts: TaskFacts
    #: where each named observation entry sits in the flat observation.
    layout: FlatLayout
    #: per-env action bounds, (nu,) each.
    action_low: np.ndarray
    action_high: np.ndarray
    #: names of the K flags of ``info['constraints']``.
    constraint_names: tuple[str, ...]
    #: control period in seconds; episode length in steps (a truncation).
    control_timestep: float
    time_limit: int
    #: (N,) control steps since each env's reset (read-only).
    elapsed_steps: np.ndarray
    #: the batched engine, for renderers and experts.
    physics: BatchedPhysics

    def reset(self, ids: np.ndarray, seeds: Sequence[int | None]) -> tuple[np.ndarray, Info]:
        """Start a new episode in envs ``ids``.

        A seed (non-negative int) reseeds that env's random streams; None
        continues them (the first reset without a seed draws OS entropy).

        Returns the (len(ids), D) observation and the info of those envs only.
        """

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, Info]:
        """Advance every env by one control step; actions (N, nu), already validated.

        Returns the (N, D) observation, the (N,) reward, the (N,) bool
        truncation flags (time limit reached or simulation diverged) and info.
        """

    def set_state(self, ids: np.ndarray, qpos: np.ndarray,
                  qvel: np.ndarray) -> tuple[np.ndarray, Info]:
        """Put envs ``ids`` at positions (n, nq) and velocities (n, nv).

        Returns their observation and info at the new state.
        """

    def set_parameter(self, env_id: int, name: str, value: float) -> None:
        """Change env ``env_id``'s physical parameter ``name`` (effective at once)."""

    def get_parameter(self, env_id: int, name: str) -> float:
        """Return env ``env_id``'s current value of physical parameter ``name``."""

    def configure_constraints(self, names: Sequence[str],
                              user_constraints: Mapping[str, Callable],
                              safety_coeff: float) -> None:
        """Choose the constraints of ``info['constraints']`` (see ``ConstraintSet``)."""

    def render_model(self, env_id: int) -> mujoco.MjModel:
        """Return env ``env_id``'s model with textures, for rendering."""
