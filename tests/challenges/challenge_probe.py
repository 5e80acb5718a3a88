"""A probe BatchedEnv for the challenge tests: it echoes what it is given.

Observation: 'counter' (1,) = steps since reset, 'action' (nu,) = the action
executed on the last step (0 after reset). Reward = the counter. Safety
variables: the executed action and the counter. Two built-in constraints
(evaluated by the real ``ConstraintSet``) and two perturbable parameters;
the value of 'pole_length' is the counter's increment, so that a
perturbation is visible in the next observation.
"""

from __future__ import annotations

import numpy as np

from rwrl.challenges.pipeline import ChallengeEnv
from rwrl.domains.base import Constraint, PerturbParam
from rwrl.domains.cartpole import Cartpole
from rwrl.tasks.constraints import ConstraintSet
from rwrl.core.layout import FlatLayout
from rwrl.tasks.facts import TaskFacts

BUILTIN = (
    Constraint("small_action", lambda sv, c: np.abs(sv["actions"]).max(axis=1) < 0.5 * c),
    Constraint("early", lambda sv, c: sv["counter"] < 10 * c),
)


class ProbeTask:
    """N echo envs implementing rwrl.tasks.protocol.BatchedEnv."""

    def __init__(self, num_envs: int = 1, nu: int = 2, time_limit: int = 1000):
        self.num_envs, self.time_limit = num_envs, time_limit
        self.control_timestep = 0.01
        self.action_low, self.action_high = -np.ones(nu), np.ones(nu)
        self.layout = FlatLayout({"counter": ((1,), np.float64), "action": ((nu,), np.float64)})
        self.params = {"pole_length": PerturbParam("pole_length", 1.0, 0.3, 3.0, 0.3, None),
                       "pole_mass": PerturbParam("pole_mass", 0.1, 0.1, 10.0, 0.5, None)}
        # borrows cartpole's name and combined perturbation (its row of combined challenges)
        self.facts = TaskFacts("cartpole", tuple(c.name for c in BUILTIN), self.params, 1.0,
                               Cartpole.COMBINED_PERTURBATION)
        self.configure_constraints(None, {}, 1.0)
        self.values = {name: np.full(num_envs, p.start) for name, p in self.params.items()}
        self.set_calls: list[tuple[int, str, float]] = []
        self.counter = np.zeros(num_envs)
        self.executed = np.zeros((num_envs, nu))
        self.elapsed_steps = np.zeros(num_envs, np.int64)
        self.executed_log: list[np.ndarray] = []
        self.physics = None

    def configure_constraints(self, names, user_constraints, safety_coeff):
        self.constraints = ConstraintSet(BUILTIN, self.facts.action_roc_limit, self.num_envs,
                                         names, user_constraints, safety_coeff)
        self.constraint_names = self.constraints.names

    def set_parameter(self, env_id, name, value):
        self.params[name].check(value)
        self.values[name][env_id] = value
        self.set_calls.append((env_id, name, value))

    def get_parameter(self, env_id, name):
        return float(self.values[name][env_id])

    def set_state(self, ids, qpos, qvel):  # the counter is the probe's whole state
        self.counter[ids] = np.asarray(qpos, float).reshape(len(ids))
        return self._out(ids, stepped=False)

    def _out(self, ids, stepped: bool):
        sv = {"actions": self.executed[ids].copy(), "counter": self.counter[ids].copy()}
        flags = self.constraints(sv, self.executed) if stepped \
            else self.constraints.at_reset(sv, len(sv["counter"]))
        obs = np.concatenate([self.counter[ids, None], self.executed[ids]], axis=1)
        info = {"constraints": flags, "cost": (~flags).sum(1).astype(float), "safety_vars": sv,
                "diverged": np.zeros(len(flags), bool)}
        return obs, info

    def reset(self, ids, seeds):
        ids = np.asarray(ids)
        self.counter[ids] = 0.0
        self.executed[ids] = 0.0
        self.elapsed_steps[ids] = 0
        self.constraints.reset(ids)
        return self._out(ids, stepped=False)

    def step(self, actions):
        self.executed = np.array(actions, np.float64)
        self.executed_log.append(self.executed.copy())
        self.counter += self.values["pole_length"]  # a perturbation shows in the next obs
        self.elapsed_steps += 1
        obs, info = self._out(slice(None), stepped=True)
        return obs, self.counter.copy(), self.elapsed_steps >= self.time_limit, info


def named(env, obs):
    """Return the named entries of a flat observation of ``env``."""
    return env.layout.unflatten(obs)


class Named:
    """A ChallengeEnv whose observations come back as named entries, for readable tests."""

    def __init__(self, env):
        self.env = env

    def __getattr__(self, name):
        return getattr(self.env, name)

    def reset(self, ids, seeds):
        obs, info = self.env.reset(ids, seeds)
        return self.env.layout.unflatten(obs), info

    def step(self, actions):
        obs, reward, truncated, info = self.env.step(actions)
        return self.env.layout.unflatten(obs), reward, truncated, info

    def set_state(self, ids, qpos, qvel):
        obs, info = self.env.set_state(ids, qpos, qvel)
        return self.env.layout.unflatten(obs), info


def challenge_env(task, **specs) -> Named:
    """Return ``ChallengeEnv(task, **specs)`` with named observations."""
    return Named(ChallengeEnv(task, **specs))
