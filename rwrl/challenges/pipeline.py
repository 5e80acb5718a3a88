"""ChallengeEnv: a batched task with the real-world challenges applied.

The order of the stages (RWRL_REFERENCE.md, "Challenge semantics";
docs/challenges.md) is written down here and nowhere else in the code:

Episode start (before the task's reset)::

    perturbation (a scheduler step; the initial state is drawn on the new model)
          -> regime (the episode's regime's parameters; they never overlap the perturbed one)

Action path (agent action -> physics)::

    delay -> repetition -> gaussian -> dropped -> stuck -> clip to bounds
          -> real-time (fallback for missed periods, then the late action) -> physics

Reward path::

    multi-objective mix -> delay

Observation path (physics -> agent), on the flat observation::

    gaussian -> dropped -> stuck -> + 'constraints' entry -> delay
             -> + 'dummy' entry (extra dims) -> + 'multiobj' entry

Pixel path (camera -> agent), on the (n, H, W, 3) uint8 frames of an env that
observes pixels (built with a ``Camera``)::

    gaussian -> dropped -> stuck -> delay -> frame stack (the last k frames, k > 1)

The constraints are evaluated by the task on the undelayed physical state;
their observation entry is delayed with the rest of the observation, while
``info`` always carries the current flags. The 'dummy' and 'multiobj' entries
are neither noised nor delayed (as published). A reset runs the reward path
on a reward of 0 (so that ``info['multiobj']`` exists) and the observation
path on the reset observation (filling the observation delay).

Pixels: handed a ``Camera`` (``rwrl.tasks.protocol.Camera``: the adapters'
``rwrl.envs.render.BatchRenderer``), the env renders every env's frame after
each step and reset, from the physics state of the returned observation,
and runs the pixel path on the frames: the observation challenges' pixel
stages (their units on frames: ``rwrl.challenges.noise``,
``rwrl.challenges.delay``), then the frame stack. ``reset``, ``step`` and
``set_state`` then return ``{'state': (n, D), 'pixels': (n, H, W, 3k)}``.
The frames are the true rendering of each step and the challenges act on
that stream, exactly as on the state stream: a delay of d returns the frame
of d steps before, a stuck frame is the frame returned the step before. The
pixel stages draw from the same per-env counter-based generators, after the
state stages' draws, so turning pixels on changes no state observation.

Every stage has one call signature, ``stage(x, frame) -> x``
(``rwrl.challenges.stage``). Each registered challenge (``rwrl.challenges.registry``)
says which stages it adds to which path; the paths are lists built once from
the parsed specs in the orders below, so a step runs three loops and no
per-challenge branch. A stage that its path's order does not name (a newly
registered challenge's) runs after the named ones, in registry order; on the
action path that is still before the clip to bounds.

``info`` keys added to the task's: 'perturbation' {param: (n,) value} when
perturbations are on; 'regime' (n,) int64 when regimes are on; 'realtime'
{'latency': (n,) s, 'missed': (n,) periods} when real-time is on; 'multiobj'
(n, 1 + M) [r, objectives] when multi-objective is on.

``env_state()`` saves everything the next step depends on as flat arrays
(``rwrl.core.env_state``): the task's 'task/...' state, the pipeline's
seeds, episode counts and counter-based generators ('challenge/seeds',
'challenge/step_rng/...'), each stage's ``state()`` under
'challenge/<path>/<stage name>/<field>' ('challenge/actions/delay/buffer'),
and the '<path>/<stage name>' list of every stage ('challenge/stages', an
identity); ``restore_env_state`` checks a snapshot against it and puts
everything back.

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
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import numpy as np

from rwrl.challenges.challenge import (ACTIONS, EPISODE, OBSERVATIONS, PATHS, PHYSICS, PIXELS,
                                       REWARDS)
from rwrl.challenges.realtime import Immediate
from rwrl.challenges.specs import ChallengeSpecs, parse_specs
from rwrl.challenges.stage import Frame, Stateless
from rwrl.core.seeding import (CounterRandom, box_muller, fresh_seed, seeds_array,
                                seeds_from_array, stream_key)
from rwrl.core.env_state import EnvState, check_env_state, under, with_prefix

if TYPE_CHECKING:
    from rwrl.tasks.protocol import Camera

#: stage names in application order (see the module docstring); tests read these.
EPISODE_PATH = ("perturbation", "regime")
ACTION_PATH = ("delay", "repetition", "gaussian", "dropped", "stuck", "clip", "realtime")
OBSERVATION_PATH = ("gaussian", "dropped", "stuck", "constraints", "delay", "dummy", "multiobj")
REWARD_PATH = ("multiobj", "delay")
PIXEL_PATH = ("gaussian", "dropped", "stuck", "delay")


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


class _Clip(Stateless):
    """Clip actions to the task's bounds (the last stage before the physics)."""

    name = "clip"
    uniforms = normals = 0

    def __init__(self, low: np.ndarray, high: np.ndarray):
        self.low, self.high = low, high

    def reset(self, ids: np.ndarray) -> None:
        """Nothing to clear."""

    def __call__(self, a: np.ndarray, frame: Frame) -> np.ndarray:
        return np.minimum(np.maximum(a, self.low), self.high)


class _FrameStack:
    """The last k frames on the channel axis, oldest first, as DrQ's ``FrameStack``.

    A reset fills the k slots with the episode's first frame. Not a
    challenge: the last stage of the pixel path, as the clip ends the action path.
    """

    name = "stack"
    uniforms = normals = 0

    def __init__(self, k: int, num_envs: int, shape: tuple[int, int, int]):
        if int(k) != k or k < 2:
            raise ValueError(f"frame_stack = {k!r} is out of range: a stage stacks k >= 2 frames")
        height, width, self.channels = shape
        self.k = int(k)
        self._stack = np.zeros((num_envs, height, width, self.channels * self.k), np.uint8)

    def reset(self, ids: np.ndarray) -> None:
        """Nothing to clear: the reset's frame fills the stack of envs ``ids``."""

    def __call__(self, frames: np.ndarray, frame: Frame) -> np.ndarray:
        """Push the (n, H, W, C) frames; return the (n, H, W, C k) stacks."""
        if frame.ids is not None:
            self._stack[frame.ids] = np.tile(frames, (1, 1, 1, self.k))
            return self._stack[frame.ids]
        c = self.channels
        self._stack[..., :-c] = self._stack[..., c:]
        self._stack[..., -c:] = frames
        return self._stack.copy()

    def state(self) -> dict[str, np.ndarray]:
        """Return a copy of the stacks (N, H, W, C k)."""
        return {"frames": self._stack.copy()}

    def restore(self, state: dict[str, np.ndarray]) -> None:
        """Put the stacks where ``state()`` saw them."""
        self._stack = np.array(state["frames"])


def stage_makers(specs: ChallengeSpecs, task) -> dict[str, dict[str, Callable]]:
    """Return path -> stage name -> maker of every challenge that is on, in registry order.

    The challenges that configure the task (safety) do so first, so that every
    maker sees the configured task.
    """
    active = specs.active()
    for challenge, spec in active:
        if challenge.configure is not None:
            challenge.configure(task, spec)
    makers: dict[str, dict[str, Callable]] = {path: {} for path in PATHS}
    for challenge, spec in active:
        for path, stages in challenge.stages(spec, task).items():
            if path not in makers:
                raise ValueError(f"{challenge.keyword}: stages of unknown path {path!r}: "
                                 f"allowed {list(PATHS)}")
            for name in stages:
                if name in makers[path]:
                    raise ValueError(f"{challenge.keyword}: the {path} path has a stage "
                                     f"{name!r} already")
            makers[path].update(stages)
    return makers


def make_path(makers: Mapping[str, Callable], order: Sequence[str],
              shape: tuple[int, ...]) -> list:
    """Return the stages of ``makers`` in ``order`` (names it lacks last), each made in place.

    Each maker gets the per-env ``shape`` of the stream at its place: a stage
    that appends an observation entry widens it for the stages after it.
    """
    names = [n for n in order if n in makers] + [n for n in makers if n not in order]
    stages = []
    for name in names:
        stage = makers[name](shape)
        entry = getattr(stage, "entry", None)
        if entry is not None:
            shape = (shape[0] + math.prod(entry[1]),)
        stages.append(stage)
    return stages


class ChallengeEnv:
    """A ``BatchedEnv`` that applies the real-world challenges to a task.

    Args:
      task: a ``BatchedEnv`` without challenges (``rwrl.tasks.task.BatchedTask``);
        the ChallengeEnv owns it from now on (it configures its constraints
        and parameters).
      camera: a ``rwrl.tasks.protocol.Camera`` of ``task``: the env then
        observes pixels too (see the module docstring) and owns the camera
        (``close``); None: state only.
      frame_stack: with a camera, the frames stacked on the channel axis (k >= 1).
      **specs: the challenge keyword arguments (``rwrl.challenges.registry.keywords()``):
        the spec dictionaries (None: off) and ``combined_challenge`` (None,
        'easy', 'medium' or 'hard').
    """

    def __init__(self, task, camera: Camera | None = None, frame_stack: int = 1, **specs: Any):
        self.specs: ChallengeSpecs = parse_specs(task.facts, **specs)
        self.task, n = task, task.num_envs
        makers = stage_makers(self.specs, task)
        for name in ("num_envs", "facts", "action_low", "action_high", "control_timestep",
                     "time_limit", "constraint_names"):
            setattr(self, name, getattr(task, name))
        self._build_paths(makers)
        self._build_pixel_path(makers[PIXELS], camera, frame_stack)
        drawing = self._action_path + self._reward_path + self._observation_path
        self._stages = drawing + self._pixel_path + [self._clock]
        self._step_rng, self._reset_rng = CounterRandom(n), CounterRandom(n)
        self._draws = _BlockRandom(self._step_rng, sum(s.uniforms for s in drawing),
                                   sum(s.normals for s in drawing))
        self._seeds: list[int | None] = [None] * n
        self._episodes = np.zeros(n, np.int64)

    def _build_paths(self, makers: Mapping[str, Mapping[str, Callable]]) -> None:
        """Make the stages of every path, in their documented order; extend the layout."""
        task, nu = self.task, (len(self.task.action_low),)
        self._action_path = (make_path(makers[ACTIONS], ACTION_PATH, nu)
                             + [_Clip(task.action_low, task.action_high)])
        self._reward_path = make_path(makers[REWARDS], REWARD_PATH, ())
        self._observation_path = make_path(makers[OBSERVATIONS], OBSERVATION_PATH,
                                           (task.layout.size,))
        self.layout = task.layout
        for stage in self._observation_path:
            if hasattr(stage, "entry"):
                self.layout = self.layout.extended(*stage.entry)
        self._physics_stages = make_path(makers[PHYSICS], ACTION_PATH, nu)
        if len(self._physics_stages) > 1:
            raise ValueError(f"two challenge stages run the physics: "
                             f"{[s.name for s in self._physics_stages]}; allowed one")
        self._clock = self._physics_stages[0] if self._physics_stages else Immediate()
        self._episode_stages = make_path(makers[EPISODE], EPISODE_PATH, ())
        self._annotators = self._episode_stages + self._physics_stages

    def _build_pixel_path(self, makers: Mapping[str, Callable], camera: Camera | None,
                          frame_stack: int) -> None:
        """Make the pixel path when there is a camera; set ``pixels_shape`` (None without)."""
        self._camera, self._pixel_path = camera, []
        #: per-env shape of the 'pixels' observation (H, W, 3 k); None: no camera.
        self.pixels_shape: tuple[int, int, int] | None = None
        if camera is None:
            return
        if int(frame_stack) != frame_stack or frame_stack < 1:
            raise ValueError(f"frame_stack = {frame_stack!r} is out of range: allowed integers >= 1")
        shape = tuple(camera.frame_shape)
        self._pixel_path = make_path(makers, PIXEL_PATH, shape)
        if frame_stack > 1:
            self._pixel_path.append(_FrameStack(frame_stack, self.num_envs, shape))
        self.pixels_shape = (shape[0], shape[1], shape[2] * frame_stack)

    @property
    def action_stage_names(self) -> tuple[str, ...]:
        """The enabled action stages, in order (the physics-side real-time stage last)."""
        return tuple(s.name for s in self._action_path + self._physics_stages)

    @property
    def observation_stage_names(self) -> tuple[str, ...]:
        """The enabled observation stages, in order."""
        return tuple(s.name for s in self._observation_path)

    @property
    def pixel_stage_names(self) -> tuple[str, ...]:
        """The enabled pixel stages, in order (empty without a camera)."""
        return tuple(s.name for s in self._pixel_path)

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

    def close(self) -> None:
        """Free the camera's GL context and what the task holds."""
        if self._camera is not None:
            self._camera.close()
        self.task.close()

    # -- env state snapshots ----------------------------------------------------------
    def _stages_by_key(self) -> dict[str, Any]:
        """Return 'challenge/<path>/<stage name>/' -> stage, for every stage of every path."""
        paths = {EPISODE: self._episode_stages, ACTIONS: self._action_path,
                 PHYSICS: self._physics_stages, REWARDS: self._reward_path,
                 OBSERVATIONS: self._observation_path, PIXELS: self._pixel_path}
        return {f"challenge/{path}/{stage.name}/": stage
                for path, stages in paths.items() for stage in stages}

    def env_state(self) -> EnvState:
        """Return copies of everything the next step depends on (see the module docstring)."""
        state = self.task.env_state()
        state.update(with_prefix("challenge/step_rng/", self._step_rng.state()))
        state.update(with_prefix("challenge/reset_rng/", self._reset_rng.state()))
        state["challenge/seeds"] = seeds_array(self._seeds)
        state["challenge/episodes"] = self._episodes.copy()
        stages = self._stages_by_key()
        # an identity (checked, not written): stages without state change no other key
        state["challenge/stages"] = np.array([p[len("challenge/"):-1] for p in stages])
        for prefix, stage in stages.items():
            state.update(with_prefix(prefix, stage.state()))
        return state

    def restore_env_state(self, state: EnvState) -> None:
        """Put the task and every stage where ``env_state()`` saw them; check the keys first."""
        check_env_state(self.env_state(), state)
        self.task.restore_env_state({k: v for k, v in state.items() if k.startswith("task/")})
        self._step_rng.restore(under("challenge/step_rng/", state))
        self._reset_rng.restore(under("challenge/reset_rng/", state))
        self._seeds = seeds_from_array(state["challenge/seeds"])
        self._episodes = np.array(state["challenge/episodes"])
        for prefix, stage in self._stages_by_key().items():
            stage.restore(under(prefix, state))

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
        if self._camera is not None:
            obs = {"state": obs, "pixels": self._observe_pixels(frame)}
        for stage in self._annotators:
            stage.annotate(frame)
        self._clock.observation_returned()
        return obs, reward

    def _observe_pixels(self, frame: Frame) -> np.ndarray:
        """Render the frame's envs at their current physics state and run the pixel path.

        A step's pixel stages draw straight from the step generator (their
        thousands of draws per env would not fit the step's block), after the block.
        """
        frames = self._camera.render(frame.ids)
        draws = self._step_rng if frame.ids is None else frame.draws
        pixel_frame = Frame(frame.ids, draws, frame.info)
        for stage in self._pixel_path:
            frames = stage(frames, pixel_frame)
        return frames

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
