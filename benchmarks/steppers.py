"""The things the throughput benchmark times: each is a call that advances some envs.

A stepper is ``(step, batch)``: one call of ``step()`` advances ``batch`` envs by
one control step. Every stepper is built from public interfaces only
(``gymnasium.make``, ``dm_control.suite``, ``mujoco``, ``envpool``), so the
benchmark keeps working while the challenge internals change.

Random controls are drawn once per stepper from a seeded generator and
cycled, so the draw costs nothing inside the timed loop.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import gymnasium
import mujoco
import numpy as np
from dm_control import suite
from mujoco import rollout as mj_rollout

import rwrl  # noqa: F401  (registers the rwrl/ ids)
from rwrl.domains.names import env_id

#: control steps of one episode of every task compared here (dm_control's 1000).
EPISODE_STEPS = 1000


class Stepper(NamedTuple):
    """One timed call: ``step()`` advances ``batch`` envs by one control step."""
    step: Callable[[], None]
    batch: int


def _controls(rng_seed: int, low, high, shape) -> np.ndarray:
    """Return a fixed table of uniform random controls of ``shape``."""
    return np.random.default_rng(rng_seed).uniform(low, high, shape)


def _nominal(domain: str, task: str):
    """Return (dm_control env reset with seed 0, substeps per control step)."""
    env = suite.load(domain, task, task_kwargs={"random": 0})
    env.reset()
    model = env.physics.model.ptr
    return env, int(round(env.control_timestep() / model.opt.timestep))


def raw_step(domain: str, task: str) -> Stepper:
    """Time a plain ``mj_step(model, data, nstep=n_sub)`` loop of the task's nominal model.

    The single-simulation floor: no task logic, no observation, no reward.
    The state goes back to dm_control's initial state every ``EPISODE_STEPS``
    control steps, so the physics sees the same regime as the envs it is
    compared with (a humanoid lying on the floor costs more than one falling).
    """
    env, n_sub = _nominal(domain, task)
    model, data = env.physics.model.ptr, mujoco.MjData(env.physics.model.ptr)
    kind = mujoco.mjtState.mjSTATE_FULLPHYSICS
    initial = np.empty(mujoco.mj_stateSize(model, kind))
    mujoco.mj_getState(model, env.physics.data.ptr, initial, kind)
    mujoco.mj_setState(model, data, initial, kind)
    spec = env.action_spec()
    controls = _controls(0, spec.minimum, spec.maximum, (EPISODE_STEPS, model.nu))
    t = [0]

    def step():
        data.ctrl[:] = controls[t[0]]
        mujoco.mj_step(model, data, nstep=n_sub)
        t[0] = (t[0] + 1) % EPISODE_STEPS
        if t[0] == 0:
            mujoco.mj_setState(model, data, initial, kind)
    return Stepper(step, 1)


def dm_control_single(domain: str, task: str) -> Stepper:
    """Time the dm_control.suite task stepped in a Python loop (the baseline)."""
    env, _ = _nominal(domain, task)
    spec = env.action_spec()
    actions = _controls(0, spec.minimum, spec.maximum, (EPISODE_STEPS, *spec.shape))
    t = [0]

    def step():
        ts = env.step(actions[t[0] % EPISODE_STEPS])
        t[0] += 1
        if ts.last():
            env.reset()
    return Stepper(step, 1)


def rwrl_single(domain: str, task: str, **specs) -> Stepper:
    """Time the rwrl single env made by ``gymnasium.make(id, **specs)``."""
    env = gymnasium.make(env_id(domain, task), **specs)
    env.reset(seed=0)
    actions = _controls(0, -1, 1, (EPISODE_STEPS, *env.action_space.shape))
    t = [0]

    def step():
        _, _, terminated, truncated, _ = env.step(actions[t[0] % EPISODE_STEPS])
        t[0] += 1
        if terminated or truncated:
            env.reset()
    return Stepper(step, 1)


def rwrl_vector(domain: str, task: str, n: int, threads: int, **specs) -> Stepper:
    """Time the rwrl vector env of ``n`` envs made by ``gymnasium.make_vec`` (it autoresets)."""
    env = gymnasium.make_vec(env_id(domain, task), num_envs=n, num_threads=threads, **specs)
    env.reset(seed=0)
    actions = _controls(0, -1, 1, (16, n, *env.single_action_space.shape))
    t = [0]

    def step():
        env.step(actions[t[0] % 16])
        t[0] += 1
    return Stepper(step, n)


def raw_rollout(domain: str, task: str, n: int, threads: int) -> Stepper:
    """Time ``mujoco.rollout`` of the nominal model: ``n`` envs, 10 control steps per call.

    Each call continues from the state the previous one reached; every
    ``EPISODE_STEPS`` control steps all envs restart from dm_control's initial state.
    """
    env, n_sub = _nominal(domain, task)
    model = env.physics.model.ptr
    kind = mujoco.mjtState.mjSTATE_FULLPHYSICS
    state = np.empty(mujoco.mj_stateSize(model, kind))
    mujoco.mj_getState(model, env.physics.data.ptr, state, kind)
    initial = np.tile(state, (n, 1))
    control_steps = 10
    control = _controls(0, -1, 1, (n, control_steps * n_sub, model.nu))
    datas = [mujoco.MjData(model) for _ in range(threads)]
    runner = mj_rollout.Rollout(nthread=threads)
    states = np.empty((n, control_steps * n_sub, initial.shape[1]))
    current, calls = initial.copy(), [0]

    def step():
        runner.rollout(model, datas, current, control, nstep=control_steps * n_sub, state=states)
        calls[0] += 1
        restart = calls[0] % (EPISODE_STEPS // control_steps) == 0
        current[:] = initial if restart else states[:, -1]
    return Stepper(step, n * control_steps)


def envpool_id(domain: str, task: str) -> str:
    """Return envpool's id of a dm_control task ('walker', 'walk' -> 'WalkerWalk-v1')."""
    return f"{domain.capitalize()}{task.capitalize()}-v1"


def envpool_unavailable(domain: str, task: str) -> str | None:
    """Return why envpool cannot run this task here, or None when it can."""
    try:
        import envpool
    except ImportError as err:  # optional: pip install 'rwrl[bench]'
        return f"envpool is not installed ({err}); pip install '.[bench]'"
    if envpool_id(domain, task) not in envpool.list_all_envs():
        return f"envpool has no {envpool_id(domain, task)}"
    return None


def envpool_vector(domain: str, task: str, n: int, threads: int) -> Stepper:
    """Time envpool's synchronous batch of ``n`` envs of the plain task (it autoresets)."""
    import envpool
    env = envpool.make(envpool_id(domain, task), env_type="gymnasium", num_envs=n,
                       batch_size=n, num_threads=threads, seed=0)
    env.reset()
    low, high = env.action_space.low, env.action_space.high
    actions = _controls(0, low, high, (16, n, *env.action_space.shape))
    t = [0]

    def step():
        env.step(actions[t[0] % 16])
        t[0] += 1
    return Stepper(step, n)
