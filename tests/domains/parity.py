"""Parity helpers for the domain tests: dm_control as the oracle."""

from __future__ import annotations

import mujoco
import numpy as np
from dm_control import suite

from rwrl.tasks.task import BatchedTask


def integration_state(physics) -> np.ndarray:
    """Return a dm_control physics' mjSTATE_INTEGRATION vector."""
    model, data = physics.model.ptr, physics.data.ptr
    state = np.empty(mujoco.mj_stateSize(model, mujoco.mjtState.mjSTATE_INTEGRATION))
    mujoco.mj_getState(model, data, state, mujoco.mjtState.mjSTATE_INTEGRATION)
    return state


def copy_dm_control_state(dm_env, task: BatchedTask, env_id: int = 0) -> None:
    """Put env ``env_id`` of ``task`` in the state of a dm_control environment."""
    task.physics.state[env_id] = integration_state(dm_env.physics)
    task.physics.forward(np.array([env_id]))


def flat_dm_observation(observation) -> np.ndarray:
    return np.concatenate([np.asarray(v, np.float64).ravel() for v in observation.values()])


def parity_errors(domain: str, task_name: str, seed: int = 0, steps: int = 200):
    """Step dm_control and rwrl from the same state; return max obs and reward errors.

    Errors are absolute, divided by max(1, |value|) so large values compare relatively.
    """
    dm = suite.load(domain, task_name, task_kwargs={"random": seed})
    dm.reset()
    task = BatchedTask(domain, task_name, 1)
    task.reset(np.array([0]), [seed])
    copy_dm_control_state(dm, task)
    rng = np.random.default_rng(seed)
    spec = dm.action_spec()
    obs_err = rew_err = 0.0
    for _ in range(steps):
        action = rng.uniform(spec.minimum, spec.maximum)
        ts = dm.step(action)
        obs, reward, _, _ = task.step(action[None])
        expected = flat_dm_observation(ts.observation)
        got = obs[0]
        obs_err = max(obs_err, np.max(np.abs(got - expected) / np.maximum(1, np.abs(expected))))
        rew_err = max(rew_err, abs(float(reward[0]) - ts.reward))
    return obs_err, rew_err


def perturbed_pair(domain: str, task_name: str, param: str, value: float,
                   seed: int = 5) -> BatchedTask:
    """Return a 2-env task whose env 1 runs with ``param`` = ``value``, both reset with ``seed``."""
    task = BatchedTask(domain, task_name, 2)
    task.set_parameter(1, param, value)
    task.reset(np.arange(2), [seed, seed])
    return task


def assert_follows_reference(task: BatchedTask, ref_model, steps: int, atol: float) -> None:
    """Step env 1 of ``task`` and an MjData of ``ref_model`` alike; assert equal states.

    Both start from env 1's state and take the same random actions; env 0
    (nominal) must end elsewhere, so the parameter changed the physics.
    """
    ref = mujoco.MjData(ref_model)
    ref.qpos[:], ref.qvel[:] = task.physics.qpos[1], task.physics.qvel[1]
    for action in np.random.default_rng(0).uniform(-1, 1, (steps, ref_model.nu)):
        task.step(np.repeat(action[None], 2, axis=0))
        ref.ctrl[:] = action
        mujoco.mj_step(ref_model, ref, nstep=task.physics.n_sub_steps)
    np.testing.assert_allclose(task.physics.qpos[1], ref.qpos, atol=atol)
    np.testing.assert_allclose(task.physics.qvel[1], ref.qvel, atol=atol)
    assert not np.allclose(task.physics.qpos[0], task.physics.qpos[1])  # env 0 is nominal
