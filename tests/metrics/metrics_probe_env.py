"""A probe env that emits the rwrl info contract from its step counter.

At step t = 1 .. length of an episode (the reset is t = 0):

* reward r_t = t;
* constraints ("slider_pos", "accel", "roc"): slider_pos violated when t is
  even, accel when t is a multiple of 3, roc never; cost = violated count;
* safety_vars: "x" = t (scalar), "q" = [t, 2t] (vector);
* multiobj = [t, satisfied / 3]; realtime: missed = 1 when t % 4 == 0,
  latency = 0.01 t s; perturbation: pole_length = 1.0 + 0.1 * (number of
  earlier resets of this env).

The reset info reports every constraint violated and x = 100, so a recorder
that wrongly counts the reset as a step gets visibly different totals.
"""

from __future__ import annotations

import gymnasium
import numpy as np

NAMES = ("slider_pos", "accel", "roc")


class ProbeEnv(gymnasium.Env):
    metadata = {"render_modes": []}

    def __init__(self, length: int = 6, terminate_at: int | None = None, optional: bool = True):
        self.length, self.terminate_at, self.optional = length, terminate_at, optional
        self.observation_space = gymnasium.spaces.Box(-np.inf, np.inf, (1,), np.float64)
        self.action_space = gymnasium.spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.constraint_names = NAMES
        self._t, self._resets = 0, 0

    def _info(self, satisfied: np.ndarray, x: float) -> dict:
        info = {
            "constraints": satisfied,
            "cost": float(np.sum(~satisfied)),
            "safety_vars": {"x": np.float64(x), "q": np.array([x, 2.0 * x])},
        }
        if self.optional:
            info["multiobj"] = np.array([float(self._t), satisfied.sum() / 3.0])
            info["perturbation"] = {"pole_length": 1.0 + 0.1 * (self._resets - 1)}
            info["realtime"] = {"missed": int(self._t > 0 and self._t % 4 == 0), "latency": 0.01 * self._t}
        return info

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._t = 0
        self._resets += 1
        return np.zeros(1), self._info(np.zeros(3, dtype=bool), 100.0)

    def step(self, action):
        self._t += 1
        t = self._t
        satisfied = np.array([t % 2 != 0, t % 3 != 0, True])
        terminated = self.terminate_at is not None and t == self.terminate_at
        truncated = t == self.length and not terminated
        return np.array([float(t)]), float(t), terminated, truncated, self._info(satisfied, float(t))

