"""ChallengeEnv: a batched task with the real-world challenges applied.

The order of the stages (RWRL_REFERENCE.md, "Challenge semantics";
docs/challenges.md) is written down here and nowhere else in the code:

Episode start (before the task's reset)::

    perturbation (a scheduler step; the initial state is drawn on the new model)

Action path (agent action -> physics)::

    delay -> repetition -> gaussian -> dropped -> stuck -> clip to bounds
          -> real-time (fallback for missed periods, then the late action) -> physics

Reward path::

    multi-objective mix -> delay

Observation path (physics -> agent), on the flat observation::

    gaussian -> dropped -> stuck -> + 'constraints' entry -> delay
             -> + 'dummy' entry (extra dims) -> + 'multiobj' entry

The constraints are evaluated by the task on the undelayed physical state;
their observation entry is delayed with the rest of the observation, while
``info`` always carries the current flags. The 'dummy' and 'multiobj' entries
are neither noised nor delayed (as published). A reset runs the reward path
on a reward of 0 (so that ``info['multiobj']`` exists) and the observation
path on the reset observation (filling the observation delay).

Every stage has one call signature, ``stage(x, frame) -> x``
(``rwrl.challenges.stage``); the paths are lists built once from the parsed
specs, so a step runs three loops and no per-challenge branch.

``info`` keys added to the task's: 'perturbation' {param: (n,) value} when
perturbations are on; 'realtime' {'latency': (n,) s, 'missed': (n,) periods}
when real-time is on; 'multiobj' (n, 1 + M) [r, objectives] when
multi-objective is on.

``set_state`` moves the physics of some envs and restarts their stages as a
reset does (the observation delay refilled with the new observation, the
other delays and the noise runs cleared), without a scheduler step.

Example:
  >>> from rwrl.tasks.task import BatchedTask
  >>> env = ChallengeEnv(BatchedTask("cartpole", "swingup", 4), combined_challenge="hard",
  ...                    safety_spec={"enable": True, "safety_coeff": 0.5})
  >>> obs, info = env.reset(np.arange(4), [0, 1, 2, 3])
  >>> obs, reward, truncated, info = env.step(np.zeros((4, 1)))
  >>> sorted(info), obs.shape
  (['constraints', 'cost', 'diverged', 'perturbation', 'safety_vars'], (4, 58))
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from rwrl.challenges import safety
from rwrl.challenges.delay import Delay
from rwrl.challenges.dimensionality import RandomFeatures
from rwrl.challenges.multiobj import MultiObjective, ObserveObjectives
from rwrl.challenges.noise import ActionRepetition, DroppedNoise, GaussianNoise, StuckNoise
from rwrl.challenges.perturb import Perturbation
from rwrl.challenges.realtime import Immediate, RealTime
from rwrl.challenges.specs import ChallengeSpecs, parse_specs
from rwrl.challenges.stage import Frame
from rwrl.core.seeding import CounterRandom, box_muller, fresh_seed, stream_key
from rwrl.tasks.layout import FlatLayout

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
    """A step's draws from one counter-based call, handed out in request order.

    One (N, total) block of uniforms per step: the first ``uniforms`` columns
    serve ``uniform`` requests, the rest become ``normals`` normals (both
    outputs of each Box-Muller pair) that serve ``normal`` requests. A step
    thus costs one hash of the batch whatever the number of noises.
    """

    def __init__(self, rng: CounterRandom, uniforms: int, normals: int):
        self.rng, self.uniforms = rng, uniforms
        self._pairs = (normals + 1) // 2
        n = rng.keys.shape[0]
        self._uniforms, self._normals = np.zeros((n, 0)), np.zeros((n, 0))
        self._u = self._z = 0

    def refill(self) -> None:
        """Draw this step's block (call once per step, after ``rng.next_step``)."""
        total = self.uniforms + 2 * self._pairs
        if total:
            block = self.rng.uniform((total,))
            self._uniforms = block[:, :self.uniforms]
            pair = block[:, self.uniforms:].reshape(block.shape[0], 2, self._pairs)
            self._normals = np.concatenate(box_muller(pair[:, 0], pair[:, 1]), axis=1)
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


class _Clip:
    """Clip actions to the task's bounds (the last stage before the physics)."""

    name = "clip"
    uniforms = normals = 0

    def __init__(self, low: np.ndarray, high: np.ndarray):
        self.low, self.high = low, high

    def reset(self, ids: np.ndarray) -> None:
        """Nothing to clear."""

    def __call__(self, a: np.ndarray, frame: Frame) -> np.ndarray:
        return np.minimum(np.maximum(a, self.low), self.high)


def _in_order(stages: dict, path: Sequence[str]) -> list:
    """Return the enabled stages (truthy values) of ``stages`` in the order of ``path``."""
    return [stages[name] for name in path if stages.get(name)]


def _noise_stages(specs: ChallengeSpecs, n: int, size: int, stream: str) -> dict:
    """Return the enabled gaussian/dropped/stuck stages of ``stream`` ('actions' or ...)."""
    noise, stages = specs.noise, {}
    if noise is None:
        return stages
    if noise.gaussian and getattr(noise.gaussian, stream) > 0:
        stages["gaussian"] = GaussianNoise(getattr(noise.gaussian, stream), n, size)
    for name, cls in (("dropped", DroppedNoise), ("stuck", StuckNoise)):
        run = getattr(noise, name)
        if run and getattr(run, f"{stream}_prob") > 0:
            stages[name] = cls(getattr(run, f"{stream}_prob"), getattr(run, f"{stream}_steps"),
                               n, size)
    return stages


def action_path(specs: ChallengeSpecs, n: int, low: np.ndarray, high: np.ndarray) -> list:
    """Return the action stages before the physics, in ``ACTION_PATH`` order."""
    delay, noise, nu = specs.delay, specs.noise, len(low)
    stages = _noise_stages(specs, n, nu, "actions")
    stages["delay"] = delay and delay.actions and Delay(delay.actions, n, (nu,))
    repetition = noise and noise.repetition
    stages["repetition"] = (repetition and repetition.actions_steps > 1 and ActionRepetition(
        repetition.actions_prob, repetition.actions_steps, n, nu))
    stages["clip"] = _Clip(low, high)
    return _in_order(stages, ACTION_PATH)


def reward_path(specs: ChallengeSpecs, n: int) -> list:
    """Return the reward stages, in ``REWARD_PATH`` order."""
    m, delay = specs.multiobj, specs.delay
    return _in_order({
        "multiobj": m and MultiObjective(m.objective, m.reward, m.coeff),
        "delay": delay and delay.rewards and Delay(delay.rewards, n, ()),
    }, REWARD_PATH)


def observation_path(specs: ChallengeSpecs, n: int, layout: FlatLayout,
                     num_constraints: int) -> list:
    """Return the observation stages, in ``OBSERVATION_PATH`` order."""
    stages = _noise_stages(specs, n, layout.size, "observations")
    observe_flags = specs.safety is not None and specs.safety.observations
    stages["constraints"] = observe_flags and safety.ConstraintObservation(num_constraints)
    delay, dims, m = specs.delay, specs.dimensionality, specs.multiobj
    delayed_size = layout.size + (num_constraints if observe_flags else 0)
    stages["delay"] = delay and delay.observations and Delay(
        delay.observations, n, (delayed_size,), fill_at_reset=True)
    stages["dummy"] = dims and RandomFeatures(dims.num_random_state_observations)
    stages["multiobj"] = m and m.observed and ObserveObjectives(1 + m.objective.num_objectives)
    return _in_order(stages, OBSERVATION_PATH)


class ChallengeEnv:
    """A ``BatchedEnv`` that applies the real-world challenges to a task.

    Args:
      task: a ``BatchedEnv`` without challenges (``rwrl.tasks.task.BatchedTask``);
        the ChallengeEnv owns it from now on (it configures its constraints
        and parameters).
      safety_spec, delay_spec, noise_spec, perturb_spec, dimensionality_spec,
        multiobj_spec, realtime_spec: the spec dictionaries (None: off).
      combined_challenge: None, 'easy', 'medium' or 'hard'.
    """

    def __init__(self, task, *, safety_spec=None, delay_spec=None, noise_spec=None,
                 perturb_spec=None, dimensionality_spec=None, multiobj_spec=None,
                 realtime_spec=None, combined_challenge=None):
        self.specs: ChallengeSpecs = parse_specs(
            task.facts, safety_spec=safety_spec, delay_spec=delay_spec,
            noise_spec=noise_spec, perturb_spec=perturb_spec,
            dimensionality_spec=dimensionality_spec, multiobj_spec=multiobj_spec,
            realtime_spec=realtime_spec, combined_challenge=combined_challenge)
        self.task, specs, n = task, self.specs, task.num_envs
        if specs.safety is not None:
            safety.configure(task, specs.safety)
        for name in ("num_envs", "facts", "action_low", "action_high", "control_timestep",
                     "time_limit", "constraint_names"):
            setattr(self, name, getattr(task, name))
        self._action_path = action_path(specs, n, task.action_low, task.action_high)
        self._reward_path = reward_path(specs, n)
        self._observation_path = observation_path(specs, n, task.layout,
                                                  len(task.constraint_names))
        self.layout = task.layout
        for stage in self._observation_path:
            if hasattr(stage, "entry"):
                self.layout = self.layout.extended(*stage.entry)
        rt = specs.realtime
        self._clock = RealTime(rt.mode, rt.budget, rt.fallback, rt.latency,
                               task.control_timestep, rt.max_missed, n,
                               len(task.action_low)) if rt else Immediate()
        self._episode_stages = [Perturbation(specs.perturb, n)] if specs.perturb else []
        self._annotators = self._episode_stages + ([self._clock] if rt else [])
        drawing = self._action_path + self._reward_path + self._observation_path
        self._stages = drawing + [self._clock]
        self._step_rng, self._reset_rng = CounterRandom(n), CounterRandom(n)
        self._draws = _BlockRandom(self._step_rng, sum(s.uniforms for s in drawing),
                                   sum(s.normals for s in drawing))
        self._seeds: list[int | None] = [None] * n
        self._episodes = np.zeros(n, np.int64)

    @property
    def action_stage_names(self) -> tuple[str, ...]:
        """The enabled action stages, in order (the physics-side real-time stage last)."""
        names = tuple(s.name for s in self._action_path)
        return names + (("realtime",) if isinstance(self._clock, RealTime) else ())

    @property
    def observation_stage_names(self) -> tuple[str, ...]:
        """The enabled observation stages, in order."""
        return tuple(s.name for s in self._observation_path)

    @property
    def observation_spec(self) -> dict:
        """Ordered name -> (per-env shape, dtype) of the observation entries."""
        return self.layout.spec

    @property
    def elapsed_steps(self) -> np.ndarray:
        return self.task.elapsed_steps

    @property
    def physics(self):
        return self.task.physics

    @property
    def physics_state_size(self) -> int:
        return self.task.physics_state_size

    def physics_state(self) -> np.ndarray:
        """The true physics state (see ``PhysicsEnv``), whatever the observation challenges do."""
        return self.task.physics_state()

    # -- BatchedEnv -------------------------------------------------------------------
    def reset(self, ids: np.ndarray, seeds: Sequence[int | None]):
        """Start new episodes in envs ``ids``; see ``BatchedEnv.reset``."""
        ids = np.asarray(ids, dtype=np.int64)
        seeds = list(seeds)
        for stage in self._episode_stages:
            stage.begin(ids, seeds, self.task)
        obs, info = self.task.reset(ids, seeds)
        self._reseed(ids, seeds)
        return self._restart(ids, obs, info)

    def step(self, actions: np.ndarray):
        """Advance every env by one agent step; see ``BatchedEnv.step``."""
        latency = self._clock.latency()  # first: a bad latency must move no state
        self._step_rng.next_step()
        self._draws.refill()
        frame = Frame(None, self._draws)
        for stage in self._action_path:
            actions = stage(actions, frame)
        obs, reward, truncated, frame.info = self._clock.advance(self.task, actions, latency)
        obs, reward = self._finish(obs, reward, frame)
        return obs, reward, truncated, frame.info

    def set_state(self, ids: np.ndarray, qpos: np.ndarray, qvel: np.ndarray):
        """Move envs ``ids`` to a physics state; their observation path restarts there."""
        ids = np.asarray(ids, dtype=np.int64)
        obs, info = self.task.set_state(ids, qpos, qvel)
        self._reset_rng.next_step()
        return self._restart(ids, obs, info)

    def set_parameter(self, env_id: int, name: str, value: float) -> None:
        self.task.set_parameter(env_id, name, value)

    def get_parameter(self, env_id: int, name: str) -> float:
        return self.task.get_parameter(env_id, name)

    def configure_constraints(self, names, user_constraints, safety_coeff) -> None:
        raise RuntimeError("the constraints of a ChallengeEnv come from its safety_spec")

    def render_model(self, env_id: int):
        return self.task.render_model(env_id)

    def copy_env_data(self, env_id: int, data) -> None:
        self.task.copy_env_data(env_id, data)

    # -- internals --------------------------------------------------------------------
    def _restart(self, ids: np.ndarray, obs: np.ndarray, info: dict):
        """Restart every stage of envs ``ids`` and run the paths on their observation."""
        for stage in self._stages:
            stage.reset(ids)
        frame = Frame(ids, _SubsetRandom(self._reset_rng, ids), info)
        obs, _ = self._finish(obs, np.zeros(len(ids)), frame)
        return obs, frame.info

    def _finish(self, obs: np.ndarray, reward: np.ndarray, frame: Frame):
        """Run the reward and observation paths and the info annotations of a frame."""
        for stage in self._reward_path:
            reward = stage(reward, frame)
        for stage in self._observation_path:
            obs = stage(obs, frame)
        for stage in self._annotators:
            stage.annotate(frame)
        self._clock.observation_returned()
        return obs, reward

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
