"""BatchedTask: a domain's task on the batched engine, with no challenge.

Implements ``rwrl.tasks.protocol.BatchedEnv``. Owns the per-env random
generators (seeded through ``reset``), the per-env physical parameter values
(a perturbed env runs on a model of its own, compiled texture-free), the step
counters of the time limit, divergence, and the constraint evaluation.

Example:
  >>> task = BatchedTask("cartpole", "swingup", num_envs=2)
  >>> obs, info = task.reset(np.arange(2), [0, 1])
  >>> obs.shape, task.layout.slices["velocity"]
  ((2, 5), slice(3, 5, None))
  >>> obs, reward, truncated, info = task.step(np.zeros((2, 1)))
  >>> info["constraints"].shape, truncated.tolist()
  ((2, 3), [False, False])
"""

from __future__ import annotations

import functools
import numbers
from typing import Callable, Mapping, Sequence

import mujoco
import numpy as np

from rwrl.core.engine import BatchedPhysics
from rwrl.core.models import ModelFactory
from rwrl.core.seeding import (env_rng, fresh_seed, generators_array, generators_from_array,
                                seeds_array, seeds_from_array)
from rwrl.domains import make_domain
from rwrl.domains.base import Domain
from rwrl.tasks.constraints import ConstraintSet
from rwrl.core.env_state import EnvState, check_env_state, under, with_prefix
from rwrl.tasks.facts import domain_facts
from rwrl.core.layout import FlatLayout

#: the most environments one batch may hold, and the longest episode (control steps).
MAX_NUM_ENVS = 65_536
MAX_TIME_LIMIT = 10_000_000


def check_count(field: str, value, high: int) -> int:
    """Return ``value`` as an int in [1, high], or raise a ValueError naming ``field``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) \
            or not 1 <= value <= high:
        raise ValueError(f"{field} = {value!r} is not allowed: give an integer in [1, {high}]")
    return int(value)


@functools.lru_cache(maxsize=32)
def _model_factory(domain_name: str, task_name: str) -> ModelFactory:
    """One factory per task, shared by its envs: the nominal compile (textures) costs ~60 ms."""
    domain = make_domain(domain_name, task_name)
    xml, assets = domain.model_xml()
    return ModelFactory(xml, assets, {n: p.edit for n, p in domain.perturb_params().items()})


class BatchedTask:
    """N environments of one task, advanced together.

    Args:
      domain_name: one of ``rwrl.domains.DOMAINS``.
      task_name: a task of that domain.
      num_envs: N, an integer in [1, MAX_NUM_ENVS].
      num_threads: engine threads (None: one per core for N > 1).
      time_limit: episode length in control steps (default: the domain's 1000).
    """

    def __init__(self, domain_name: str, task_name: str, num_envs: int = 1,
                 num_threads: int | None = None, time_limit: int | None = None):
        self.domain: Domain = make_domain(domain_name, task_name)
        self.num_envs = check_count("num_envs", num_envs, MAX_NUM_ENVS)
        self.time_limit = check_count(
            "time_limit", self.domain.TIME_LIMIT if time_limit is None else time_limit,
            MAX_TIME_LIMIT)
        self.params = dict(self.domain.perturb_params())
        self.models = _model_factory(domain_name, task_name)
        model = self.models.nominal
        self.control_timestep = self.domain.CONTROL_TIMESTEP
        n_sub = int(round(self.control_timestep / model.opt.timestep))
        self.physics = BatchedPhysics(model, self.num_envs, n_sub, num_threads)
        self.domain.setup(model)
        builtin = self.domain.constraints()
        self.facts = domain_facts(self.domain)
        self._builtin = builtin
        self.configure_constraints(None, {}, 1.0)
        limited = model.actuator_ctrllimited.astype(bool)
        self.action_low = np.where(limited, model.actuator_ctrlrange[:, 0], -np.inf)
        self.action_high = np.where(limited, model.actuator_ctrlrange[:, 1], np.inf)
        self.elapsed_steps = np.zeros(self.num_envs, np.int64)
        self._seeds: list[int | None] = [None] * self.num_envs
        self._rngs: list[np.random.Generator | None] = [None] * self.num_envs
        self._values: list[dict[str, float]] = [{} for _ in range(self.num_envs)]
        self.layout = FlatLayout(self._probe_observation_spec())

    @property
    def observation_spec(self) -> dict:
        """Ordered name -> (per-env shape, dtype) of the observation entries."""
        return self.layout.spec

    # -- BatchedEnv ---------------------------------------------------------------
    def reset(self, ids: np.ndarray, seeds: Sequence[int | None]):
        ids = np.asarray(ids, dtype=np.int64)
        rngs = []
        for env_id, seed in zip(ids, seeds):
            if seed is not None or self._rngs[env_id] is None:
                self._seeds[env_id] = fresh_seed() if seed is None else int(seed)
                self._rngs[env_id] = env_rng(self._seeds[env_id], "task")
            rngs.append(self._rngs[env_id])
        self.physics.reset(ids)
        self.domain.initialize_episode(self.physics, ids, rngs)
        self.physics.forward(ids)
        self.elapsed_steps[ids] = 0
        self._constraints.reset(ids)
        return self._observe(ids)

    def step(self, actions: np.ndarray):
        physics = self.physics
        physics.step(actions)
        self.elapsed_steps += 1
        diverged = physics.take_diverged()
        obs = self.layout.flatten(self.domain.observation(physics))
        reward = self.domain.reward(physics)
        safety_vars = self.domain.safety_vars(physics)
        flags = self._constraints(safety_vars, actions)
        truncated = self.elapsed_steps >= self.time_limit
        if diverged.any():  # MuJoCo reset those envs mid-step: no outcome to reward
            truncated |= diverged
            reward = np.where(diverged, 0.0, reward)
        return obs, reward, truncated, self._info(flags, safety_vars, diverged)

    def set_state(self, ids: np.ndarray, qpos: np.ndarray, qvel: np.ndarray):
        """Set envs ``ids`` to positions (n, nq) and velocities (n, nv).

        Returns the observation and info of those envs at the new state.
        """
        ids = np.asarray(ids, dtype=np.int64)
        model = self.physics.model
        qpos = np.asarray(qpos, np.float64).reshape(len(ids), -1)
        qvel = np.asarray(qvel, np.float64).reshape(len(ids), -1)
        if qpos.shape[1] != model.nq or qvel.shape[1] != model.nv:
            raise ValueError(f"set_state expects qpos of size nq={model.nq} and qvel of "
                             f"size nv={model.nv}, got {qpos.shape[1]} and {qvel.shape[1]}")
        if not (np.isfinite(qpos).all() and np.isfinite(qvel).all()):
            raise ValueError("set_state: qpos and qvel must be finite")
        self.physics.set_state(ids, qpos, qvel)
        return self._observe(ids)

    # -- constraints --------------------------------------------------------------
    def configure_constraints(self, names: Sequence[str] | None,
                              user_constraints: Mapping[str, Callable],
                              safety_coeff: float) -> None:
        """Choose the constraints of ``info['constraints']`` (None: every built-in one)."""
        self._constraints = ConstraintSet(self._builtin, self.domain.ACTION_ROC_LIMIT,
                                          self.num_envs, names, user_constraints, safety_coeff,
                                          action_size=self.physics.model.nu)
        self.constraint_names = self._constraints.names

    def _observe(self, ids: np.ndarray):
        """Return the observation and info of envs ``ids`` at their current state."""
        obs = self.domain.observation(self.physics)
        obs = self.layout.flatten({k: v[ids] for k, v in obs.items()})
        safety_vars = {k: v[ids] for k, v in self.domain.safety_vars(self.physics).items()}
        flags = self._constraints.at_reset(safety_vars, len(ids))
        return obs, self._info(flags, safety_vars, np.zeros(len(ids), bool))

    def _info(self, flags: np.ndarray, safety_vars: dict, diverged: np.ndarray) -> dict:
        cost = flags.shape[1] - flags.sum(axis=1, dtype=np.float64)
        return {"constraints": flags, "cost": cost, "safety_vars": safety_vars,
                "diverged": diverged}

    # -- physical parameters -----------------------------------------------------
    def _param(self, name: str):
        param = self.params.get(name)
        if param is None:
            raise ValueError(f"unknown parameter {name!r} for domain {self.domain.name!r}: "
                             f"allowed {sorted(self.params)}")
        return param

    def set_parameter(self, env_id: int, name: str, value: float) -> None:
        """Change env ``env_id``'s physical parameter ``name`` to ``value``.

        Takes effect at once (typically called just before that env's reset).
        Raises ValueError naming the parameter and the allowed names or range.
        """
        param = self._param(name)
        if not 0 <= env_id < self.num_envs:
            raise ValueError(f"env_id {env_id} out of range [0, {self.num_envs - 1}]")
        value = param.check(value)
        values = dict(self._values[env_id])
        if value == param.start:
            values.pop(name, None)
        else:
            values[name] = value
        self._set_values(env_id, values)

    def _set_values(self, env_id: int, values: dict[str, float]) -> None:
        """Run env ``env_id`` on the model of its non-nominal parameter ``values``."""
        self._values[env_id] = values
        model = self.models.compile(values) if values else None
        self.physics.set_env_model(env_id, model)

    def get_parameter(self, env_id: int, name: str) -> float:
        """Return env ``env_id``'s current value of parameter ``name``."""
        return self._values[env_id].get(name, self._param(name).start)

    def render_model(self, env_id: int) -> mujoco.MjModel:
        """Return env ``env_id``'s model with textures, for rendering."""
        return self.models.compile_textured(self._values[env_id])

    def copy_env_data(self, env_id: int, data: mujoco.MjData) -> None:
        """Write env ``env_id``'s whole state into ``data`` (an MjData of ``render_model``)."""
        self.physics.env_data(env_id, data)

    def close(self) -> None:
        """Nothing to free: the engine's memory is Python's."""

    # -- physics state ------------------------------------------------------------
    @property
    def physics_state_size(self) -> int:
        """S = nq + 2 nv: qpos, qvel and the solver's warm start (qacc_warmstart)."""
        model = self.physics.model
        return int(model.nq + 2 * model.nv)

    def physics_state(self) -> np.ndarray:
        """Return the (N, S) float64 state rows: qpos, qvel, qacc_warmstart (a copy)."""
        physics = self.physics
        return np.concatenate([physics.qpos, physics.qvel, physics.field("qacc_warmstart")], axis=1)

    # -- env state snapshots ------------------------------------------------------
    def env_state(self) -> EnvState:
        """Return copies of everything the next step depends on, as 'task/...' arrays.

        The physics state rows by field ('task/physics/qpos', ...: the whole
        mjSTATE_INTEGRATION row, warm start included), 'task/elapsed_steps',
        the per-env seeds and initial-state generators, the perturbable
        parameters' values (N, P), the constraint set's action history, and
        'task/name' ('cartpole-swingup', an identity: checked, not written).
        """
        state = with_prefix("physics/", self.physics.state_fields())
        state.update(with_prefix("constraints/", self._constraints.state()))
        state.update({
            "name": np.array(f"{self.domain.name}-{self.domain.task}"),
            "elapsed_steps": self.elapsed_steps.copy(),
            "seeds": seeds_array(self._seeds),
            "rngs": generators_array(self._rngs),
            "params": np.array([[self.get_parameter(i, name) for name in self.params]
                                for i in range(self.num_envs)], np.float64).reshape(
                                    self.num_envs, len(self.params))})
        return with_prefix("task/", state)

    def restore_env_state(self, state: EnvState) -> None:
        """Put every env where ``env_state()`` saw it; raise a ValueError naming a bad key first."""
        check_env_state(self.env_state(), state)
        state = under("task/", state)
        values = [self._checked_values(i, row) for i, row in enumerate(state["params"])]
        for env_id, env_values in enumerate(values):
            if env_values != self._values[env_id]:
                self._set_values(env_id, env_values)
        self.physics.set_state_fields(under("physics/", state))
        self._constraints.restore(under("constraints/", state))
        self.elapsed_steps[...] = state["elapsed_steps"]
        self._seeds = seeds_from_array(state["seeds"])
        self._rngs = generators_from_array(state["rngs"])

    def _checked_values(self, env_id: int, row: np.ndarray) -> dict[str, float]:
        """Return env ``env_id``'s non-nominal parameter values of a 'task/params' row."""
        values = {}
        for name, value in zip(self.params, row):
            param = self.params[name]
            try:
                value = param.check(value)
            except ValueError as error:
                raise ValueError(f"env state 'task/params' (env {env_id}): {error}") from None
            if value != param.start:
                values[name] = value
        return values

    def _probe_observation_spec(self):
        ids = np.arange(self.num_envs)
        self.physics.reset(ids)
        self.physics.forward(ids)
        obs = self.domain.observation(self.physics)
        return {k: (v.shape[1:], np.dtype(np.float64)) for k, v in obs.items()}
