"""The batched MuJoCo engine: N simulations of one model, stepped in C.

Built on ``mujoco.batch.Batch`` (persistent: one MjData per simulation), whose
``step`` advances every simulation on a thread pool in one Python call. After a
control step the position- and velocity-dependent fields (xpos, xmat,
position and velocity sensors) describe the new state and the
acceleration-dependent ones (touch and force sensors, qacc) the last substep,
exactly as dm_control's ``Physics.step`` leaves them (its "legacy step": mj_step
then mj_step1), so that observations and rewards match dm_control bit for bit.

Per-environment models: an env whose physical parameters differ from nominal
runs on a model of its own (``set_env_model``); the others share the nominal
model. Batch fields are bound lazily and cached: ``physics.field("xpos")`` is a
live read-only (N, nbody, 3) array refreshed by every step.
"""

from __future__ import annotations

import os
import mujoco
import numpy as np
from mujoco import batch as mj_batch

_STAGE_VEL = mujoco.mjtStage.mjSTAGE_VEL.value
_STAGE_ACC = mujoco.mjtStage.mjSTAGE_ACC.value
_STAGE_NONE = mujoco.mjtStage.mjSTAGE_NONE.value
#: the warnings after which MuJoCo resets an unstable simulation (consecutive in mjtWarning).
_UNSTABLE = slice(int(mujoco.mjtWarning.mjWARN_BADQPOS), int(mujoco.mjtWarning.mjWARN_BADQACC) + 1)
#: the MjData fields of a simulation's state row (mjSTATE_INTEGRATION: the full physics
#: state, the user inputs and the solver's warm start), everything its next step reads.
STATE_FIELDS = ("time", "qpos", "qvel", "act", "history", "qacc_warmstart", "ctrl",
                "qfrc_applied", "xfrc_applied", "eq_active", "mocap_pos", "mocap_quat",
                "userdata", "plugin_state")


def default_num_threads(num_envs: int) -> int:
    """Return the engine threads for a batch: one per core, one for a single env."""
    if num_envs == 1:
        return 1  # a thread hand-off costs more than one small simulation
    return max(1, min(num_envs, os.cpu_count() or 1))


class BatchedPhysics:
    """N MuJoCo simulations advanced together.

    Args:
      model: the nominal compiled model.
      num_envs: N.
      n_sub_steps: physics steps per control step.
      num_threads: engine threads; None picks ``default_num_threads``.
    """

    def __init__(self, model: mujoco.MjModel, num_envs: int, n_sub_steps: int,
                 num_threads: int | None = None):
        if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)) \
                or num_envs < 1:
            raise ValueError(f"num_envs = {num_envs!r} is not allowed: give an integer >= 1")
        self.model = model
        self.num_envs = num_envs
        self.n_sub_steps = n_sub_steps
        threads = default_num_threads(num_envs) if num_threads is None else num_threads
        self._batch = mj_batch.Batch(model, num_envs, nthread=threads, persistent=True)
        self._env_models: list[mujoco.MjModel | None] = [None] * num_envs
        self._fields: dict[str, np.ndarray] = {}
        self.qpos = self._batch.bind("qpos")
        self.qvel = self._batch.bind("qvel")
        self.ctrl = self._batch.bind("ctrl")
        self.act = self._batch.bind("act")
        # live (N, 3) view of the instability warning counts (mjWarningStat.number)
        self._unstable = self._batch.warning[:, _UNSTABLE, 1]

    def field(self, name: str) -> np.ndarray:
        """Return the live (N, ...) array of an MjData field (read-only for outputs)."""
        arr = self._fields.get(name)
        if arr is None:
            arr = self._fields[name] = self._batch.bind(name)
        return arr

    def step(self, ctrl: np.ndarray) -> None:
        """Apply controls (N, nu) and advance every env by one control step."""
        self.ctrl[...] = ctrl
        self._batch.step(nstep=self.n_sub_steps, stage=_STAGE_VEL)

    def take_diverged(self) -> np.ndarray:
        """Return (N,) bool: the envs that diverged since the last call, and clear their counts."""
        diverged = self._unstable.any(axis=1)
        if diverged.any():
            self._unstable[diverged] = 0
        return diverged

    def reset(self, ids: np.ndarray) -> None:
        """Reset envs ``ids`` to the model defaults (qpos0, zero velocity, no forward)."""
        self._batch.reset(ids, stage=_STAGE_NONE)
        self._unstable[ids] = 0

    def forward(self, ids: np.ndarray | None = None) -> None:
        """Recompute every derived field of envs ``ids`` at their state (mj_forward)."""
        self._batch.forward(ids, stage=_STAGE_ACC)

    def set_state(self, ids: np.ndarray, qpos: np.ndarray, qvel: np.ndarray) -> None:
        """Set positions (n, nq) and velocities (n, nv) of envs ``ids`` and forward."""
        self.qpos[ids] = qpos
        self.qvel[ids] = qvel
        self.forward(ids)

    @property
    def state(self) -> np.ndarray:
        """The (N, nstate) mjSTATE_INTEGRATION rows (writable: the next step starts there)."""
        return self._batch.state

    def state_fields(self) -> dict[str, np.ndarray]:
        """Return a copy of every env's state row by field, (N, ...) each (empty fields left out).

        Together they are the whole mjSTATE_INTEGRATION row: with the same
        models, ``set_state_fields`` makes the next step bit-identical.
        """
        fields = {name: self._batch.bind(name) for name in STATE_FIELDS}
        return {name: value.copy() for name, value in fields.items() if value.size}

    def set_state_fields(self, fields: dict[str, np.ndarray]) -> None:
        """Write every env's state rows from ``state_fields()`` output and recompute derived fields."""
        for name, value in fields.items():
            self._batch.bind(name)[...] = value
        self._unstable[...] = 0
        self.forward()

    def env_model(self, env_id: int) -> mujoco.MjModel:
        """Return the model env ``env_id`` runs on."""
        return self._env_models[env_id] or self.model

    def set_env_model(self, env_id: int, model: mujoco.MjModel | None) -> None:
        """Run env ``env_id`` on ``model`` (same sizes as nominal); None: nominal."""
        self._env_models[env_id] = model
        if all(m is None for m in self._env_models):
            self._batch.set_models(None)
        else:
            self._batch.set_models([m or self.model for m in self._env_models])

    def env_data(self, env_id: int, data: mujoco.MjData | None = None) -> mujoco.MjData:
        """Return a copy of env ``env_id``'s whole MjData (for rendering, experts)."""
        return self._batch.get_data(env_id, data)
