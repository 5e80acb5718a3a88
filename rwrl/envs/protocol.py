"""The batched environment interface that every layer above the domains speaks.

Shape convention (whole package): a leading axis N = ``num_envs`` on every
array. A single Gymnasium env is a batch of one.

Layers::

    BatchedTask (rwrl.envs.task: domain + batched MuJoCo engine, no challenge)
      -> ChallengeEnv (rwrl.challenges.pipeline: the real-world challenges)
        -> adapters (rwrl.envs.gym_env, vector_env, dm_env_adapter)

Both ``BatchedTask`` and ``ChallengeEnv`` implement ``BatchedEnv``, so the
adapters need not know whether challenges are on.

``info`` keys, present on every step and on every reset with the same shapes:

* ``constraints``: (N, K) bool, True = satisfied, in ``constraint_names`` order.
* ``cost``: (N,) float64, the number of violated constraints.
* ``safety_vars``: dict name -> (N, ...) float64, the domain's safety variables.

Challenges add keys of their own (documented in rwrl.challenges).
"""

from __future__ import annotations

from typing import Any, Protocol, Sequence

import numpy as np

Observation = dict[str, np.ndarray]
Info = dict[str, Any]


class BatchedEnv(Protocol):
    """N environments advanced together; see the module docstring."""

    num_envs: int
    #: ordered name -> (per-env shape, dtype) of the observation entries.
    observation_spec: dict[str, tuple[tuple[int, ...], np.dtype]]
    #: per-env action bounds, (nu,) each.
    action_low: np.ndarray
    action_high: np.ndarray
    constraint_names: tuple[str, ...]
    #: control period in seconds and episode length in steps (a truncation).
    control_timestep: float
    time_limit: int

    def reset(self, ids: np.ndarray, seeds: Sequence[int | None]) -> tuple[Observation, Info]:
        """Start a new episode in envs ``ids``.

        A seed (non-negative int) reseeds that env's random streams; None
        continues them (the first reset without a seed draws OS entropy).

        Returns the observation and info of those envs only: arrays with a
        leading axis of len(ids).
        """

    def step(self, actions: np.ndarray) -> tuple[Observation, np.ndarray, Info]:
        """Advance every env by one control step; actions (N, nu), already validated.

        Returns observation dict (N, ...), reward (N,) and info.
        """
