"""ChallengeEnv: a BatchedTask with the real-world challenges applied.

The order of the transforms (RWRL_REFERENCE.md, "Challenge semantics";
docs/challenges.md) is written down here and nowhere else in the code:

Action path (agent action -> physics)::

    delay -> repetition -> gaussian -> dropped -> stuck -> clip to bounds
          -> real-time (fallback for missed periods, then the late action) -> physics

Observation path (physics -> agent)::

    gaussian -> dropped -> stuck -> + 'constraints' entry -> delay
             -> + 'dummy' entry (extra dims) -> + 'multiobj' entry

Reward path::

    multi-objective mix -> delay

Perturbations step at reset, before the task's reset, so that the episode's
initial state is drawn on the perturbed model. The constraints are evaluated
on the undelayed physical state; their observation entry is delayed with the
rest of the observation, while ``info`` always carries the current flags.
The 'dummy' and 'multiobj' entries are neither noised nor delayed (as
published).

Shapes: every array has a leading axis N (``num_envs``); ``ids`` are env
indices of a reset.

Example:
  >>> from rwrl.envs.task import BatchedTask
  >>> env = ChallengeEnv(BatchedTask("cartpole", "swingup", 4), combined_challenge="hard",
  ...                    safety_spec={"enable": True, "safety_coeff": 0.5})
  >>> obs, info = env.reset(np.arange(4), [0, 1, 2, 3])
  >>> obs, reward, info = env.step(np.zeros((4, 1)))
  >>> sorted(info)
  ['constraints', 'cost', 'perturbation', 'safety_vars']
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from rwrl.challenges.delay import Delay
from rwrl.challenges.dimensionality import RandomFeatures
from rwrl.challenges.multiobj import MultiObjective
from rwrl.challenges.noise import ActionRepetition, DroppedNoise, GaussianNoise, StuckNoise
from rwrl.challenges.perturb import Perturbation
from rwrl.challenges.realtime import RealTime
from rwrl.challenges.safety import SafetyConstraints
from rwrl.challenges.specs import ChallengeSpecs, TaskFacts, parse_specs
from rwrl.core.seeding import CounterRandom, fresh_seed, stream_key

#: stage names in application order (see the module docstring); tests read these.
ACTION_PATH = ("delay", "repetition", "gaussian", "dropped", "stuck", "clip", "realtime")
OBSERVATION_PATH = ("gaussian", "dropped", "stuck", "constraints", "delay", "dummy", "multiobj")
REWARD_PATH = ("multiobj", "delay")


class _SubsetRandom:
    """The draws of envs ``ids`` only, from a counter-based generator of the whole batch."""

    def __init__(self, rng: CounterRandom, ids: np.ndarray):
        self.rng, self.ids = rng, ids

    def uniform(self, shape):
        return self.rng.uniform(shape)[self.ids]

    def normal(self, shape):
        return self.rng.normal(shape)[self.ids]


class _BlockRandom:
    """A step's draws from one counter-based call, handed out in a fixed order.

    One (N, total) block of uniforms per step: the first ``num_uniforms``
    columns serve ``uniform`` requests, the rest become ``num_normals`` normals
    (Box-Muller, both outputs of each pair) that serve ``normal`` requests.
    A step thus costs one hash of the batch whatever the number of noises.
    """

    def __init__(self, rng: CounterRandom, num_uniforms: int, num_normals: int):
        self.rng, self.num_uniforms, self.num_normals = rng, num_uniforms, num_normals
        self._pairs = (num_normals + 1) // 2
        n = rng.keys.shape[0]
        self._uniforms, self._normals = np.zeros((n, 0)), np.zeros((n, 0))
        self._u = self._z = 0

    def refill(self) -> None:
        """Draw this step's block (call once per step, after ``rng.next_step``)."""
        total = self.num_uniforms + 2 * self._pairs
        if total:
            block = self.rng.uniform((total,))
            self._uniforms = block[:, :self.num_uniforms]
            u1 = block[:, self.num_uniforms:self.num_uniforms + self._pairs]
            u2 = block[:, self.num_uniforms + self._pairs:]
            radius = np.sqrt(-2.0 * np.log(1.0 - u1))  # 1 - u in (0, 1]: the log is finite
            angle = 2.0 * np.pi * u2
            self._normals = np.concatenate([radius * np.cos(angle), radius * np.sin(angle)],
                                           axis=1)
        self._u = self._z = 0

    def uniform(self, shape):
        size = math.prod(shape)
        out = self._uniforms[:, self._u:self._u + size]
        self._u += size
        return out.reshape((out.shape[0],) + tuple(shape))

    def normal(self, shape):
        size = math.prod(shape)
        out = self._normals[:, self._z:self._z + size]
        self._z += size
        return out.reshape((out.shape[0],) + tuple(shape))


class _FlatLayout:
    """Flatten a dict of (n, ...) entries to one (n, D) float array and back."""

    def __init__(self, spec: dict[str, tuple[tuple[int, ...], Any]]):
        self.shapes = {name: tuple(shape) for name, (shape, _) in spec.items()}
        self.slices, start = {}, 0
        for name, shape in self.shapes.items():
            size = int(np.prod(shape, dtype=np.int64))
            self.slices[name] = slice(start, start + size)
            start += size
        self.size = start

    def flatten(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        n = next(iter(obs.values())).shape[0]
        return np.concatenate([np.reshape(obs[k], (n, -1)) for k in self.shapes], axis=1,
                              dtype=np.float64)

    def unflatten(self, flat: np.ndarray) -> dict[str, np.ndarray]:
        n = flat.shape[0]
        return {k: flat[:, sl].reshape((n,) + self.shapes[k]) for k, sl in self.slices.items()}


def task_facts(task) -> TaskFacts:
    """Return the domain facts of a BatchedTask that spec validation needs."""
    return TaskFacts(domain=task.domain.name, constraint_names=tuple(task.constraint_names),
                     perturb_params=dict(getattr(task, "params", {})))


class ChallengeEnv:
    """A ``BatchedEnv`` that applies the real-world challenges to a task.

    Args:
      task: a ``BatchedEnv`` with ``domain.name``, ``constraints``, ``params``
        and ``set_parameter`` (``rwrl.envs.task.BatchedTask``).
      safety_spec, delay_spec, noise_spec, perturb_spec, dimensionality_spec,
        multiobj_spec, realtime_spec: the spec dictionaries (None: off).
      combined_challenge: None, 'easy', 'medium' or 'hard'.

    ``info`` keys added: 'constraints' and 'cost' follow the active
    constraints; 'perturbation' {param: (N,) value} when perturbations are on;
    'realtime' {'latency': (N,) s, 'missed': (N,) periods} when real-time is
    on; 'multiobj' (N, 1 + M) [r, objectives] when multi-objective is on.
    """

    def __init__(self, task, *, safety_spec=None, delay_spec=None, noise_spec=None,
                 perturb_spec=None, dimensionality_spec=None, multiobj_spec=None,
                 realtime_spec=None, combined_challenge=None):
        self.task = task
        self.specs: ChallengeSpecs = parse_specs(
            task_facts(task), safety_spec=safety_spec, delay_spec=delay_spec,
            noise_spec=noise_spec, perturb_spec=perturb_spec,
            dimensionality_spec=dimensionality_spec, multiobj_spec=multiobj_spec,
            realtime_spec=realtime_spec, combined_challenge=combined_challenge)
        self.num_envs = n = task.num_envs
        self.action_low, self.action_high = task.action_low, task.action_high
        self.control_timestep, self.time_limit = task.control_timestep, task.time_limit
        self._nu = nu = len(task.action_low)
        self._resettables: list = []
        self._build_safety()
        self._build_action_path(n, nu)
        self._build_observation_path(n)
        self._build_others(n)
        self._step_rng, self._reset_rng = CounterRandom(n), CounterRandom(n)
        drawing = self._action_stages + self._obs_noise + [self._dims]
        self._draws = _BlockRandom(self._step_rng,
                                   sum(getattr(s, "uniforms_per_call", 0) for s in drawing),
                                   sum(getattr(s, "normals_per_call", 0) for s in drawing))
        self._seeds: list[int | None] = [None] * n
        self._episodes = np.zeros(n, np.int64)
        self._executed = np.zeros((n, nu))

    # -- construction ---------------------------------------------------------------
    def _keep(self, challenge):
        self._resettables.append(challenge)
        return challenge

    def _build_safety(self) -> None:
        spec = self.specs.safety
        self.safety = None if spec is None else self._keep(SafetyConstraints(
            spec.constraints, spec.user_constraints, spec.safety_coeff,
            self.task.constraints, getattr(self.task.domain, "ACTION_ROC_LIMIT", np.inf),
            self.num_envs))
        self.constraint_names = (self.task.constraint_names if spec is None
                                 else self.safety.names)

    def _build_action_path(self, n: int, nu: int) -> None:
        delay, noise = self.specs.delay, self.specs.noise
        stages = {}
        if delay and delay.actions:
            d = self._keep(Delay(delay.actions, n, (nu,)))
            stages["delay"] = lambda a, rng: d(a)
        if noise and noise.repetition and noise.repetition.actions_steps > 1:
            stages["repetition"] = self._keep(ActionRepetition(
                noise.repetition.actions_prob, noise.repetition.actions_steps, n, nu))
        stages.update(self._noise_stages(n, nu, "actions"))
        low, high = self.action_low, self.action_high
        stages["clip"] = lambda a, rng: np.clip(a, low, high)
        self._action_stages = [stages[k] for k in ACTION_PATH if k in stages]
        self.action_stage_names = tuple(k for k in ACTION_PATH if k in stages)

    def _noise_stages(self, n: int, size: int, path: str) -> dict:
        """Return the enabled gaussian/dropped/stuck stages of ``path`` ('actions', ...)."""
        noise, stages = self.specs.noise, {}
        if noise is None:
            return stages
        if noise.gaussian and getattr(noise.gaussian, path) > 0:
            stages["gaussian"] = GaussianNoise(getattr(noise.gaussian, path), n, size)
        for name, cls in (("dropped", DroppedNoise), ("stuck", StuckNoise)):
            run = getattr(noise, name)
            if run and getattr(run, f"{path}_prob") > 0:
                stages[name] = self._keep(cls(getattr(run, f"{path}_prob"),
                                              getattr(run, f"{path}_steps"), n, size))
        return stages

    def _build_observation_path(self, n: int) -> None:
        spec = dict(self.task.observation_spec)
        self._task_layout = _FlatLayout(spec)
        stages = self._noise_stages(n, self._task_layout.size, "observations")
        self._obs_noise = [stages[k] for k in OBSERVATION_PATH if k in stages]
        self._observe_constraints = bool(self.safety and self.specs.safety.observations)
        if self._observe_constraints:
            spec["constraints"] = ((len(self.constraint_names),), np.dtype(bool))
        self._layout = _FlatLayout(spec)
        delay = self.specs.delay
        self._obs_delay = (self._keep(Delay(delay.observations, n, (self._layout.size,)))
                           if delay and delay.observations else None)
        self._flatten = bool(self._obs_noise or self._obs_delay)
        self._dims = (RandomFeatures(self.specs.dimensionality.num_random_state_observations)
                      if self.specs.dimensionality else None)
        if self._dims:
            spec["dummy"] = ((self._dims.num_features,), np.dtype(np.float64))
        m = self.specs.multiobj
        self.multiobj = m and MultiObjective(m.objective, m.reward, m.coeff, m.observed)
        if m and m.observed:
            spec["multiobj"] = ((self.multiobj.size,), np.dtype(np.float64))
        self.observation_spec = spec
        self.observation_stage_names = tuple(
            k for k in OBSERVATION_PATH
            if k in stages or (k == "constraints" and self._observe_constraints)
            or (k == "delay" and self._obs_delay) or (k == "dummy" and self._dims)
            or (k == "multiobj" and m and m.observed))

    def _build_others(self, n: int) -> None:
        delay = self.specs.delay
        self._reward_delay = (self._keep(Delay(delay.rewards, n, ()))
                              if delay and delay.rewards else None)
        self.perturbation = self.specs.perturb and Perturbation(self.specs.perturb, n)
        rt = self.specs.realtime
        self.realtime = rt and RealTime(rt.mode, rt.budget, rt.fallback, rt.latency,
                                        self.control_timestep, rt.max_missed)

    # -- BatchedEnv -------------------------------------------------------------------
    def reset(self, ids: np.ndarray, seeds: Sequence[int | None]):
        """Start new episodes in envs ``ids``; see ``BatchedEnv.reset``."""
        ids = np.asarray(ids, dtype=np.int64)
        seeds = list(seeds)
        values = None
        if self.perturbation:
            values = self.perturbation.reset(ids, seeds, self.task.set_parameter)
        obs, info = self.task.reset(ids, seeds)
        self._reseed(ids, seeds)
        for challenge in self._resettables:
            challenge.reset(ids)
        self._executed[ids] = 0.0
        zeros = np.zeros((len(ids), self._nu))
        flags = (self.safety(info["safety_vars"], zeros, zeros, ids) if self.safety
                 else info["constraints"])
        vector = None
        if self.multiobj:  # no reward before the first step: r = 0
            _, vector = self.multiobj(np.zeros(len(ids)), flags, info["safety_vars"])
        obs = self._observe(obs, flags, vector, _SubsetRandom(self._reset_rng, ids), ids)
        info = self._info(info, flags, vector, values, 0.0, 0)
        if self.realtime:
            self.realtime.observation_returned()
        return obs, info

    def step(self, actions: np.ndarray):
        """Advance every env by one agent step; see ``BatchedEnv.step``."""
        self._step_rng.next_step()
        rng = self._draws
        rng.refill()
        action = np.asarray(actions, np.float64)
        for stage in self._action_stages:
            action = stage(action, rng)
        obs, reward, info, previous, latency, missed = self._advance(action)
        flags = (self.safety(info["safety_vars"], action, previous) if self.safety
                 else info["constraints"])
        vector = None
        if self.multiobj:
            reward, vector = self.multiobj(reward, flags, info["safety_vars"])
        if self._reward_delay:
            reward = self._reward_delay(reward)
        obs = self._observe(obs, flags, vector, rng, None)
        info = self._info(info, flags, vector, None, latency, missed)
        if self.realtime:
            self.realtime.observation_returned()
        return obs, reward, info

    # -- the paths --------------------------------------------------------------------
    def _advance(self, action: np.ndarray):
        """Run the real-time stage and the physics; return the task's step and timing."""
        latency, missed = 0.0, 0
        if self.realtime:
            latency = self.realtime.next_latency()
            missed = self.realtime.missed(latency)
            elapsed = getattr(self.task, "elapsed_steps", None)
            if elapsed is not None:  # the physical time limit still ends the episode
                missed = int(max(0, min(missed, self.time_limit - 1 - int(elapsed.max()))))
            for _ in range(missed):
                fallback = self.realtime.fallback_action(self._executed, self.action_low,
                                                         self.action_high)
                self.task.step(fallback)
                self._executed = fallback
        previous = self._executed
        obs, reward, info = self.task.step(action)
        self._executed = action
        return obs, reward, info, previous, latency, missed

    def _observe(self, obs: dict, flags: np.ndarray, vector, rng, ids) -> dict:
        """Apply the observation path to the task's observation of envs ``ids`` (None: all)."""
        if self._flatten:
            x = self._task_layout.flatten(obs)
            for stage in self._obs_noise:
                x = stage(x, rng, ids)
            if self._observe_constraints:
                x = np.concatenate([x, flags], axis=1)
            if self._obs_delay:
                x = self._obs_delay(x) if ids is None else self._obs_delay.reset(ids, x)
            out = self._layout.unflatten(x)
            if self._observe_constraints:
                out["constraints"] = out["constraints"] > 0.5
        else:
            out = dict(obs)
            if self._observe_constraints:
                out["constraints"] = flags.copy()
        if self._dims:
            out["dummy"] = self._dims(rng)
        if vector is not None and self.multiobj.observed:
            out["multiobj"] = vector
        return out

    def _info(self, info: dict, flags, vector, values, latency: float, missed: int) -> dict:
        n = flags.shape[0]
        if self.safety:
            info["constraints"] = flags
            info["cost"] = (~flags).sum(axis=1).astype(np.float64)
        if self.perturbation:
            value = self.perturbation.values.copy() if values is None else values
            info["perturbation"] = {self.perturbation.spec.param: value}
        if self.realtime:
            info["realtime"] = {"latency": np.full(n, latency),
                                "missed": np.full(n, missed, np.int64)}
        if vector is not None:
            info["multiobj"] = vector
        return info

    def _reseed(self, ids: np.ndarray, seeds: Sequence[int | None]) -> None:
        """Key the noise streams of envs ``ids``: a seed restarts them, None continues."""
        step_keys, reset_keys = [], []
        for env_id, seed in zip(ids, seeds):
            if seed is not None or self._seeds[env_id] is None:
                self._seeds[env_id] = fresh_seed() if seed is None else int(seed)
                self._episodes[env_id] = 0
            else:
                self._episodes[env_id] += 1
            stream = f"challenges/{self._episodes[env_id]}"
            step_keys.append(stream_key(self._seeds[env_id], stream + "/step"))
            reset_keys.append(stream_key(self._seeds[env_id], stream + "/reset"))
        self._step_rng.reset(ids, step_keys)
        self._reset_rng.reset(ids, reset_keys)
        self._reset_rng.next_step()  # restarts the per-step draw index of reset draws
