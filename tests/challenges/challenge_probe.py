"""A probe BatchedEnv for the challenge tests: it echoes what it is given.

Observation: 'counter' (1,) = steps since reset, 'action' (nu,) = the action
executed on the last step (0 after reset). Reward = the counter. Safety
variables: the executed action and the counter. Two built-in constraints and
one perturbable parameter, whose value shifts the counter's increment so that
a perturbation is visible in the next observation.
"""

from __future__ import annotations

import numpy as np

from rwrl.domains.base import Constraint, PerturbParam


class ProbeDomain:
    name = "cartpole"  # borrows cartpole's combined-challenge row
    ACTION_ROC_LIMIT = 1.0


class ProbeTask:
    """N echo envs implementing rwrl.envs.protocol.BatchedEnv."""

    def __init__(self, num_envs: int = 1, nu: int = 2, time_limit: int = 1000):
        self.domain = ProbeDomain()
        self.num_envs, self.time_limit = num_envs, time_limit
        self.control_timestep = 0.01
        self.action_low, self.action_high = -np.ones(nu), np.ones(nu)
        self.observation_spec = {"counter": ((1,), np.dtype(np.float64)),
                                 "action": ((nu,), np.dtype(np.float64))}
        self.constraints = (
            Constraint("small_action", lambda sv, c: np.abs(sv["actions"]).max(axis=1) < 0.5 * c),
            Constraint("early", lambda sv, c: sv["counter"] < 10 * c),
        )
        self.constraint_names = tuple(c.name for c in self.constraints)
        self.params = {"pole_length": PerturbParam("pole_length", 1.0, 0.3, 3.0, 0.3, None),
                       "pole_mass": PerturbParam("pole_mass", 0.1, 0.1, 10.0, 0.5, None)}
        self.values = {name: np.full(num_envs, p.start) for name, p in self.params.items()}
        self.set_calls: list[tuple[int, str, float]] = []
        self.counter = np.zeros(num_envs)
        self.executed = np.zeros((num_envs, nu))
        self.elapsed_steps = np.zeros(num_envs, np.int64)
        self.executed_log: list[np.ndarray] = []

    def set_parameter(self, env_id, name, value):
        self.params[name].check(value)
        self.values[name][env_id] = value
        self.set_calls.append((env_id, name, value))

    def get_parameter(self, env_id, name):
        return float(self.values[name][env_id])

    def _out(self, ids):
        sv = {"actions": self.executed[ids].copy(), "counter": self.counter[ids].copy()}
        flags = np.stack([c.fn(sv, 1.0) for c in self.constraints], axis=1)
        obs = {"counter": self.counter[ids, None].copy(), "action": self.executed[ids].copy()}
        return obs, {"constraints": flags, "cost": (~flags).sum(1).astype(float),
                     "safety_vars": sv}

    def reset(self, ids, seeds):
        ids = np.asarray(ids)
        self.counter[ids] = 0.0
        self.executed[ids] = 0.0
        self.elapsed_steps[ids] = 0
        return self._out(ids)

    def step(self, actions):
        self.executed = np.array(actions, np.float64)
        self.executed_log.append(self.executed.copy())
        self.counter += self.values["pole_length"]  # a perturbation shows in the next obs
        self.elapsed_steps += 1
        obs, info = self._out(slice(None))
        return obs, self.counter.copy(), info
