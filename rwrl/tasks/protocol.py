"""The batched environment interface that every layer above the tasks speaks.

Shape convention (whole package): a leading axis N = ``num_envs`` on every
array; ``ids`` are env indices. A single Gymnasium env is a batch of one.

Layers::

    BatchedTask (rwrl.tasks.task: a domain on the batched MuJoCo engine, no challenge)
      -> ChallengeEnv (rwrl.challenges.pipeline: the real-world challenges)
        -> adapters (rwrl.envs: Gymnasium Env and VectorEnv, dm_env)

``BatchedTask`` and ``ChallengeEnv`` both implement ``PhysicsEnv`` (a
``BatchedEnv`` on MuJoCo), and the adapters use nothing else, so they need not
know whether challenges are on; the parts that need physics (``set_state``,
``info['physics_state']``, rendering) are the only ones that need ``PhysicsEnv``.

Observations are flat: one (n, D) float64 array per call, laid out by
``layout`` (``rwrl.core.layout.FlatLayout``: the named entries and their
slices; bool entries hold 0.0 or 1.0). An env built to observe through a
camera as well (a ``ChallengeEnv`` handed a ``Camera``; its ``pixels_shape``
is then not None) returns instead a dict ``{'state': (n, D) float64, 'pixels': (n, *pixels_shape)
uint8}``; the adapters ask for one only when their observation mode renders
(``rwrl.envs.pixels``).

``info`` keys, present on every step and on every reset with the same shapes:

* ``constraints``: (n, K) bool, True = satisfied, in ``constraint_names`` order.
* ``cost``: (n,) float64, the number of violated constraints.
* ``safety_vars``: dict name -> (n, ...) float64, the domain's safety variables.
* ``diverged``: (n,) bool, True on the step where that env's simulation
  became unstable (MuJoCo's bad position, velocity or acceleration warning,
  after which MuJoCo resets that simulation). That step ends the episode
  (``truncated``); the other envs are untouched.
* ``terminated`` (optional; (n,) bool, on every step and reset where present): the
  ends that are true terminal states, where nothing follows (a video clip's last
  frame). The MuJoCo tasks never terminate and omit it; the adapters take it out
  of ``info`` and report those ends as Gymnasium's ``terminated`` (dm_env:
  discount 0), every other end as a truncation (``rwrl.envs.autoreset.split_ends``).

Challenges add keys of their own (documented in rwrl.challenges.pipeline).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Protocol, Sequence

import mujoco
import numpy as np

from rwrl.core.engine import BatchedPhysics
from rwrl.tasks.facts import TaskFacts  # the type of ``BatchedEnv.facts``
from rwrl.core.layout import FlatLayout

Info = dict[str, Any]


class BatchedEnv(Protocol):
    """N environments advanced together: what every adapter needs (see the module docstring).

    Nothing here names MuJoCo: a family without physics (video rate control) or
    with rendered observations implements this and gets the Gymnasium, vector
    and dm_env adapters as they are. ``PhysicsEnv`` adds what MuJoCo envs have.
    """

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

    def reset(self, ids: np.ndarray, seeds: Sequence[int | None]) -> tuple[np.ndarray, Info]:
        """Start a new episode in envs ``ids``.

        A seed (non-negative int) reseeds that env's random streams; None
        continues them (the first reset without a seed draws OS entropy).

        Returns the (len(ids), D) observation and the info of those envs only.
        """

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, Info]:
        """Advance every env by one control step; actions (N, nu), already validated.

        Returns the (N, D) observation, the (N,) reward, the (N,) bool
        episode ends (time limit reached or simulation diverged: truncations;
        those ``info['terminated']`` marks: terminations) and info.
        """

    def env_state(self) -> dict[str, np.ndarray]:
        """Return copies of everything the next ``step`` and ``reset`` depend on.

        Flat string keys -> numpy arrays only (``rwrl.core.env_state``), so a
        snapshot goes into an npz file read with ``allow_pickle=False``.
        """

    def restore_env_state(self, state: dict[str, np.ndarray]) -> None:
        """Put every env where ``env_state()`` saw it, so that later steps repeat bit for bit.

        ``state`` comes from an env built with the same task, challenges and
        num_envs (seeds do not matter). Raises a ValueError naming the first
        missing, extra or mis-shaped key before anything changes.
        """

    def close(self) -> None:
        """Free what the envs hold outside Python (GL contexts, encoders); idempotent."""


class PhysicsEnv(BatchedEnv, Protocol):
    """A ``BatchedEnv`` on the MuJoCo engine: physics state, parameters, rendering.

    The adapters reach the physics only through these members (``set_state``,
    ``physics_state``, the renderer's ``render_model`` and ``copy_env_data``);
    ``physics`` itself is handed to experts as it is.
    """

    #: the batched engine, for experts (``physics.qpos[i]``, ``physics.env_model(i)``).
    physics: BatchedPhysics
    #: S = nq + 2 nv, the length of one row of ``physics_state()``.
    physics_state_size: int

    def physics_state(self) -> np.ndarray:
        """Return a (N, S) float64 copy of every env's state: qpos, qvel, qacc_warmstart.

        With the constraint solver's warm start the state determines the next
        step exactly (``rwrl.tasks.model_set.ModelSet.step``).
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

    def copy_env_data(self, env_id: int, data: mujoco.MjData) -> None:
        """Write env ``env_id``'s whole state into ``data`` (an MjData of ``render_model``)."""


class Camera(Protocol):
    """Renders envs of a batch: what a ``ChallengeEnv`` that observes pixels is handed.

    ``rwrl.envs.render.BatchRenderer`` is the one implementation (MuJoCo, offscreen GL).
    """

    #: (height, width, 3) of one frame.
    frame_shape: tuple[int, int, int]

    def render(self, ids: np.ndarray | None = None) -> np.ndarray:
        """Return the (n, height, width, 3) uint8 frames of envs ``ids`` (None: every env)."""

    def close(self) -> None:
        """Free the GL context."""
