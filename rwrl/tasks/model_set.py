"""A model uncertainty set: K variants of one task stepped from given states in one call.

Robust MPO (Mankowitz et al. 2019) bootstraps its critic from the next state
under every model of a set, from the same state and action. ``ModelSet`` holds
one batched task of B x K environments, env ``b * K + k`` running model k
(the task's perturbable ``parameter`` at ``values[k]``, compiled once), and
``step`` puts all K copies of each of the B given states into their envs,
applies each state's action to its K copies and advances all B x K envs in one
engine call. The result equals K separate single-env steps from that state
bit for bit (tests/tasks/test_model_set.py).

A state is (qpos, qvel) plus the constraint solver's warm start
(``qacc_warmstart``, zeros unless given): the whole state of the suite's
domains (no activations, no mocap). The warm start is part of it because it
changes a contact-rich step in the last bits (walker), so a look-ahead that
left it to whatever the env held before would depend on the previous call.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np

from rwrl.tasks.task import BatchedTask, check_count


class ModelSetStep(NamedTuple):
    """Outcome of one ``ModelSet.step``, indexed [state b, model k]."""

    obs: np.ndarray  # (B, K, D) flat observations
    reward: np.ndarray  # (B, K)
    qpos: np.ndarray  # (B, K, nq) next positions
    qvel: np.ndarray  # (B, K, nv) next velocities
    diverged: np.ndarray  # (B, K) bool: that model's simulation went unstable (reward 0)


class ModelSet:
    """K models of one task that differ in one perturbable parameter.

    Args:
      domain_name, task_name: the task (``rwrl envs`` lists them).
      parameter: a perturbable parameter of the domain (``pole_length``, ``thigh_length``...).
      values: its K values (each checked against the parameter's range).
      batch_size: B, the states stepped per call.
    """

    def __init__(self, domain_name: str, task_name: str, parameter: str,
                 values: Sequence[float], batch_size: int):
        values = list(values)
        if not values:
            raise ValueError("values is empty: give the parameter's K >= 1 values")
        self.num_models = len(values)
        self.batch_size = check_count("batch_size", batch_size, 100_000)
        self.task = BatchedTask(domain_name, task_name, self.batch_size * self.num_models)
        self.parameter = parameter
        for env_id in range(self.task.num_envs):
            self.task.set_parameter(env_id, parameter, values[env_id % self.num_models])
        self.values = tuple(self.task.get_parameter(k, parameter) for k in range(self.num_models))
        self._ids = np.arange(self.task.num_envs)

    def step(self, qpos: np.ndarray, qvel: np.ndarray, actions: np.ndarray,
             warmstart: np.ndarray | None = None) -> ModelSetStep:
        """Step every model from each state (B, nq), (B, nv) with its action (B, A).

        ``warmstart`` (B, nv): the solver's starting accelerations (default zeros).
        """
        B, K = self.batch_size, self.num_models
        actions = np.asarray(actions, np.float64)
        if actions.shape != (B, len(self.task.action_low)):
            raise ValueError(f"actions shape {actions.shape}: expected "
                             f"{(B, len(self.task.action_low))} (batch_size, action size)")
        qpos = np.asarray(qpos, np.float64)
        qvel = np.asarray(qvel, np.float64)
        if qpos.shape[0] != B or qvel.shape[0] != B:
            raise ValueError(f"qpos and qvel need {B} rows (batch_size), got "
                             f"{qpos.shape[0]} and {qvel.shape[0]}")
        self.task.set_state(self._ids, np.repeat(qpos, K, axis=0), np.repeat(qvel, K, axis=0))
        start = self.task.physics.field("qacc_warmstart")
        start[...] = 0.0 if warmstart is None else np.repeat(np.asarray(warmstart, np.float64), K, 0)
        self.task.elapsed_steps[:] = 0  # a one-step look-ahead, never at the time limit
        obs, reward, _, info = self.task.step(np.repeat(actions, K, axis=0))
        physics = self.task.physics
        return ModelSetStep(obs.reshape(B, K, -1), np.asarray(reward).reshape(B, K),
                            physics.qpos.reshape(B, K, -1).copy(),
                            physics.qvel.reshape(B, K, -1).copy(),
                            np.asarray(info["diverged"]).reshape(B, K))
