"""BatchedTask: a domain's task on the batched engine, with no challenge.

Implements ``rwrl.envs.protocol.BatchedEnv``. Owns the per-env random
generators (seeded through ``reset``), the per-env physical parameter values
(a perturbed env runs on a model of its own, compiled texture-free) and the
step counters of the time limit.
"""

from __future__ import annotations

from typing import Sequence

import mujoco
import numpy as np

from rwrl.core.engine import BatchedPhysics
from rwrl.core.models import ModelFactory
from rwrl.core.seeding import env_rng, fresh_seed
from rwrl.domains import make_domain
from rwrl.domains.base import Domain


class BatchedTask:
    """N environments of one task, advanced together.

    Args:
      domain_name: one of ``rwrl.domains.DOMAINS``.
      task_name: a task of that domain.
      num_envs: N.
      num_threads: engine threads (None: one per core for N > 1).
      time_limit: episode length in control steps (default: the domain's 1000).
    """

    def __init__(self, domain_name: str, task_name: str, num_envs: int = 1,
                 num_threads: int | None = None, time_limit: int | None = None):
        self.domain: Domain = make_domain(domain_name, task_name)
        self.num_envs = int(num_envs)
        self.time_limit = int(self.domain.TIME_LIMIT if time_limit is None else time_limit)
        if self.time_limit < 1:
            raise ValueError(f"time_limit must be >= 1 control step, got {time_limit}")
        self.params = dict(self.domain.perturb_params())
        xml, assets = self.domain.model_xml()
        self.models = ModelFactory(xml, assets, {n: p.edit for n, p in self.params.items()})
        model = self.models.nominal
        self.control_timestep = self.domain.CONTROL_TIMESTEP
        n_sub = int(round(self.control_timestep / model.opt.timestep))
        self.physics = BatchedPhysics(model, self.num_envs, n_sub, num_threads)
        self.domain.setup(model)
        self.constraints = self.domain.constraints()
        self.constraint_names = tuple(c.name for c in self.constraints)
        self.safety_coeff = 1.0
        self._flags = np.ones((self.num_envs, len(self.constraints)), bool)
        limited = model.actuator_ctrllimited.astype(bool)
        self.action_low = np.where(limited, model.actuator_ctrlrange[:, 0], -np.inf)
        self.action_high = np.where(limited, model.actuator_ctrlrange[:, 1], np.inf)
        self.elapsed_steps = np.zeros(self.num_envs, np.int64)
        self._seeds: list[int | None] = [None] * self.num_envs
        self._rngs: list[np.random.Generator | None] = [None] * self.num_envs
        self._values: list[dict[str, float]] = [{} for _ in range(self.num_envs)]
        self.observation_spec = self._probe_observation_spec()

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
        obs = {k: v[ids] for k, v in self.domain.observation(self.physics).items()}
        return obs, self._info(ids)

    def step(self, actions: np.ndarray):
        self.physics.step(actions)
        self.elapsed_steps += 1
        obs = self.domain.observation(self.physics)
        return obs, self.domain.reward(self.physics), self._info(None)

    # -- safety ---------------------------------------------------------------------
    def _info(self, ids: np.ndarray | None) -> dict:
        safety_vars = self.domain.safety_vars(self.physics)
        flags = self.constraint_flags(safety_vars)
        if ids is not None:
            safety_vars = {k: v[ids] for k, v in safety_vars.items()}
            flags = flags[ids]
        cost = len(self.constraints) - flags.sum(axis=1, dtype=np.float64)
        return {"constraints": flags, "cost": cost, "safety_vars": safety_vars}

    def constraint_flags(self, safety_vars: dict[str, np.ndarray]) -> np.ndarray:
        """Return a new (N, K) array of the built-in constraints' satisfied flags."""
        flags = self._flags
        for k, constraint in enumerate(self.constraints):
            flags[:, k] = constraint.fn(safety_vars, self.safety_coeff)
        return flags.copy()

    # -- physical parameters -----------------------------------------------------
    def set_parameter(self, env_id: int, name: str, value: float) -> None:
        """Change env ``env_id``'s physical parameter ``name`` to ``value``.

        Takes effect at once (typically called just before that env's reset).
        Raises ValueError naming the parameter and the allowed names or range.
        """
        param = self.params.get(name)
        if param is None:
            raise ValueError(f"unknown parameter {name!r} for domain {self.domain.name!r}: "
                             f"allowed {sorted(self.params)}")
        if not 0 <= env_id < self.num_envs:
            raise ValueError(f"env_id {env_id} out of range [0, {self.num_envs - 1}]")
        value = param.check(value)
        values = self._values[env_id]
        if value == param.start:
            values.pop(name, None)
        else:
            values[name] = value
        model = self.models.compile(values) if values else None
        self.physics.set_env_model(env_id, model)

    def get_parameter(self, env_id: int, name: str) -> float:
        """Return env ``env_id``'s current value of parameter ``name``."""
        if name not in self.params:
            raise ValueError(f"unknown parameter {name!r} for domain {self.domain.name!r}: "
                             f"allowed {sorted(self.params)}")
        return self._values[env_id].get(name, self.params[name].start)

    # -- experts ------------------------------------------------------------------------
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
        obs = {k: v[ids] for k, v in self.domain.observation(self.physics).items()}
        return obs, self._info(ids)

    def render_model(self, env_id: int) -> mujoco.MjModel:
        """Return env ``env_id``'s model with textures, for rendering."""
        return self.models.compile_textured(self._values[env_id])

    def _probe_observation_spec(self):
        ids = np.arange(self.num_envs)
        self.physics.reset(ids)
        self.physics.forward(ids)
        obs = self.domain.observation(self.physics)
        return {k: (v.shape[1:], np.dtype(np.float64)) for k, v in obs.items()}
