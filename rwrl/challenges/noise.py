"""Noise on actions and observations: gaussian, dropped, stuck, repetition.

Defined in Dulac-Arnold et al. (2020) and the published
``realworld_env.Base`` (RWRL_REFERENCE.md, "Challenge semantics"), per
component of an (N, D) batch:

* ``GaussianNoise``: x + N(0, sigma).
* ``DroppedNoise``: an idle component starts, with probability p, a run of
  ``steps`` steps at 0.
* ``StuckNoise``: same trigger; during the run the component holds the value
  it had on the step before the run.
* ``ActionRepetition`` (whole action vector): an idle env, with probability
  p, holds its current action for ``steps`` steps in total (steps = 1: no
  effect).

Every draw comes from the frame's counter-based draws (``rwrl.core.seeding``),
so env i of a batch sees the numbers a single env with the same seed sees.
``frame.ids`` selects the envs of a reset; None is the whole batch.

On camera frames (the pixel path, when the env observes pixels), per env
and whole frame, on (N, H, W, 3) uint8:

* ``PixelGaussianNoise``: x + N(0, sigma) per channel value, sigma in
  intensity levels (``gaussian['pixels']``: the state's ``observations``
  sigma is in the state's units), rounded and clipped to [0, 255];
* ``DroppedFrames``: an env whose frame is not in a run starts, with
  probability p (``dropped['observations_prob']``), a run of ``steps``
  black frames;
* ``StuckFrames``: same trigger (``stuck``); during the run the env's
  frame holds the frame it returned on the step before the run.

Spec: ``noise_spec``, sub-dicts ``gaussian`` (enable, actions, observations:
sigma in [0, MAX_STD]; pixels: sigma in intensity levels, [0, MAX_PIXEL_STD]), ``dropped`` and ``stuck`` (enable, actions_prob,
actions_steps, observations_prob, observations_steps: probabilities in
[0, 1], run lengths integers in [1, MAX_RUN_STEPS]) and ``repetition``
(enable, actions_prob, actions_steps); a noise is off where it is absent,
empty or disabled.

Example:
  >>> drop = DroppedNoise(prob=1.0, steps=2, num_envs=1, size=1)
  >>> drop.reset(np.array([0]))
  >>> frame = Frame(draws=CounterRandom(1))
  >>> [float(drop(np.array([[5.0]]), frame)[0, 0]) for _ in range(2)]
  [0.0, 0.0]
  >>> parse_noise({"gaussian": {"actions": 0.1}}, facts=None).gaussian
  GaussianSpec(actions=0.1, observations=0.0, pixels=0.0)
  >>> stuck = StuckFrames(prob=1.0, steps=3, num_envs=1, shape=(1, 1, 3))
  >>> stuck.reset(np.array([0]))
  >>> [int(stuck(np.full((1, 1, 1, 3), v, np.uint8), frame)[0, 0, 0, 0]) for v in (7, 8, 9)]
  [7, 7, 7]
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Mapping

import numpy as np

from rwrl.challenges.challenge import ACTIONS, OBSERVATIONS, PIXELS, Challenge, StageMakers
from rwrl.challenges.spec_checks import MAX_STD, check_keys, integer, is_on, number
from rwrl.challenges.stage import Frame, Stateless
from rwrl.core.seeding import CounterRandom  # noqa: F401  (the docstring example)
from rwrl.tasks.facts import TaskFacts

#: most steps of one dropped, stuck or repeated run: one default episode.
MAX_RUN_STEPS = 1000
#: largest gaussian sigma on pixels, in intensity levels (one full range).
MAX_PIXEL_STD = 255.0


def _check_prob(name: str, prob: float) -> None:
    if not 0.0 <= prob <= 1.0:
        raise ValueError(f"{name} prob = {prob!r} is out of range: allowed [0, 1]")


def _check_steps(name: str, steps: int) -> None:
    if int(steps) != steps or steps < 1:
        raise ValueError(f"{name} steps = {steps!r} is out of range: allowed integers >= 1")


def _select(frame: Frame):
    return slice(None) if frame.ids is None else frame.ids


def advance_runs(counter: np.ndarray, uniform: np.ndarray, prob: float,
                 steps: int) -> np.ndarray:
    """Start runs in idle components, count every run down; return the active mask.

    A component with ``counter == 0`` whose draw is below ``prob`` starts a run
    of ``steps`` steps; the mask is True on each step of a run. ``counter`` is
    updated in place.
    """
    start = (counter == 0) & (uniform < prob)
    counter[start] = steps
    active = counter > 0
    counter -= active
    return active


class GaussianNoise(Stateless):
    """Add white Gaussian noise N(0, sigma) to every component."""

    name = "gaussian"
    uniforms = 0

    def __init__(self, sigma: float, num_envs: int, size: int):
        if not sigma >= 0.0:
            raise ValueError(f"gaussian sigma = {sigma!r} is out of range: allowed >= 0")
        self.sigma = float(sigma)
        self.size = size
        self.normals = size

    def reset(self, ids: np.ndarray) -> None:
        """Nothing to clear: the noise has no state."""

    def __call__(self, x: np.ndarray, frame: Frame) -> np.ndarray:
        """Return x (n, D) plus noise."""
        return x + self.sigma * frame.draws.normal((self.size,))


class _Runs:
    """Runs of ``steps`` steps, each started with probability p: one run per env and part.

    ``parts`` () counts one run per env (a whole frame), (D,) one per component; the
    draws are one uniform per run. ``_active`` advances the runs of the frame's envs
    and returns the mask of active runs, shaped to broadcast over an (n, ...) array.
    """

    normals = 0

    def _start_runs(self, name: str, prob: float, steps: int, num_envs: int,
                    parts: tuple[int, ...]) -> None:
        _check_prob(name, prob)
        _check_steps(name, steps)
        self.prob, self.steps, self._parts = float(prob), int(steps), tuple(parts)
        self.uniforms = int(np.prod(parts)) if parts else 1
        self._counter = np.zeros((num_envs,) + self._parts, np.int64)

    def reset(self, ids: np.ndarray) -> None:
        """End the runs of envs ``ids``."""
        self._counter[ids] = 0

    def _active(self, frame: Frame, ndim: int) -> np.ndarray:
        sel = _select(frame)
        counter = self._counter[sel]
        draws = frame.draws.uniform(self._parts) if self._parts else frame.draws.uniform((1,))[:, 0]
        active = advance_runs(counter, draws, self.prob, self.steps)
        self._counter[sel] = counter
        return active.reshape(active.shape + (1,) * (ndim - active.ndim))

    def state(self) -> dict[str, np.ndarray]:
        """Return a copy of the steps left in each run."""
        return {"counter": self._counter.copy()}

    def restore(self, state: dict[str, np.ndarray]) -> None:
        """Put the runs where ``state()`` saw them."""
        self._counter = np.array(state["counter"])


class _HeldRuns(_Runs):
    """Runs that hold the previous value (``_last``); an env's first value after a reset is held."""

    def _start_held(self, name, prob, steps, num_envs, parts, shape, dtype) -> None:
        self._start_runs(name, prob, steps, num_envs, parts)
        self._last = np.zeros((num_envs,) + tuple(shape), dtype)
        self._fresh = np.ones(num_envs, bool)

    def reset(self, ids: np.ndarray) -> None:
        """End the runs of envs ``ids``; their first value becomes the held one."""
        super().reset(ids)
        self._fresh[ids] = True

    def __call__(self, x: np.ndarray, frame: Frame) -> np.ndarray:
        """Return x (n, ...) with the parts of active runs held at their previous value."""
        sel = _select(frame)
        fresh = self._fresh[sel].reshape((-1,) + (1,) * (x.ndim - 1))
        last = np.where(fresh, x, self._last[sel])
        out = np.where(self._active(frame, x.ndim), last, x)
        self._last[sel], self._fresh[sel] = out, False
        return out

    def state(self) -> dict[str, np.ndarray]:
        """Return copies of the runs' steps left, the held values and the fresh marks (N,)."""
        return {**super().state(), "last": self._last.copy(), "fresh": self._fresh.copy()}

    def restore(self, state: dict[str, np.ndarray]) -> None:
        """Put the runs where ``state()`` saw them."""
        super().restore(state)
        self._last, self._fresh = np.array(state["last"]), np.array(state["fresh"])


class DroppedNoise(_Runs):
    """Set a component to 0 for runs of ``steps`` steps, each started with probability p."""

    name = "dropped"

    def __init__(self, prob: float, steps: int, num_envs: int, size: int):
        self._start_runs("dropped", prob, steps, num_envs, (size,))
        self.size = size

    def __call__(self, x: np.ndarray, frame: Frame) -> np.ndarray:
        """Return x (n, D) with the components of active runs at 0."""
        return np.where(self._active(frame, x.ndim), 0.0, x)


class StuckNoise(_HeldRuns):
    """Hold a component at its previous value for runs of ``steps`` steps (probability p)."""

    name = "stuck"

    def __init__(self, prob: float, steps: int, num_envs: int, size: int):
        self._start_held("stuck", prob, steps, num_envs, (size,), (size,), np.float64)
        self.size = size


class PixelGaussianNoise(Stateless):
    """Add N(0, sigma) intensity levels to every channel value of a frame, rounded, clipped.

    Args:
      sigma: standard deviation in intensity levels (of 0..255), >= 0.
      shape: (H, W, 3) of a frame.
    """

    name = "gaussian"
    uniforms = 0

    def __init__(self, sigma: float, shape: tuple[int, ...]):
        if not sigma >= 0.0:
            raise ValueError(f"gaussian pixels sigma = {sigma!r} is out of range: allowed >= 0")
        self.sigma, self.shape = float(sigma), tuple(shape)
        self.normals = int(np.prod(self.shape))

    def reset(self, ids: np.ndarray) -> None:
        """Nothing to clear: the noise has no state."""

    def __call__(self, frames: np.ndarray, frame: Frame) -> np.ndarray:
        """Return the (n, H, W, 3) uint8 frames plus noise."""
        noisy = frames + self.sigma * frame.draws.normal(self.shape)
        return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


class DroppedFrames(_Runs):
    """Black out an env's whole frame for runs of ``steps`` steps, each started with probability p."""

    name = "dropped"

    def __init__(self, prob: float, steps: int, num_envs: int, shape: tuple[int, ...]):
        self._start_runs("dropped", prob, steps, num_envs, ())

    def __call__(self, frames: np.ndarray, frame: Frame) -> np.ndarray:
        """Return the (n, H, W, 3) frames, black in the envs of an active run."""
        return np.where(self._active(frame, frames.ndim), np.uint8(0), frames)


class StuckFrames(_HeldRuns):
    """Hold an env's frame at its previous one for runs of ``steps`` steps (probability p)."""

    name = "stuck"

    def __init__(self, prob: float, steps: int, num_envs: int, shape: tuple[int, ...]):
        self._start_held("stuck", prob, steps, num_envs, (), shape, np.uint8)


class ActionRepetition:
    """Hold an env's whole action for ``steps`` steps in total, with probability p."""

    name = "repetition"
    normals = 0

    def __init__(self, prob: float, steps: int, num_envs: int, size: int):
        _check_prob("repetition", prob)
        _check_steps("repetition", steps)
        self.prob, self.steps = float(prob), int(steps)
        self.uniforms = 1
        self._counter = np.zeros(num_envs, np.int64)
        self._held = np.zeros((num_envs, size))

    def reset(self, ids: np.ndarray) -> None:
        """End the repetitions of envs ``ids``."""
        self._counter[ids] = 0

    def __call__(self, a: np.ndarray, frame: Frame) -> np.ndarray:
        """Return the (N, nu) actions after repetition (actions pass only in steps)."""
        idle = self._counter == 0
        start = idle & (frame.draws.uniform((1,))[:, 0] < self.prob)
        # This step is the first of the ``steps`` steps of a repetition.
        self._counter[start] = self.steps - 1
        self._counter -= ~idle
        self._held = np.where(idle[:, None], a, self._held)
        return self._held.copy()

    def state(self) -> dict[str, np.ndarray]:
        """Return copies of the steps left in each repetition (N,) and the held actions (N, nu)."""
        return {"counter": self._counter.copy(), "held": self._held.copy()}

    def restore(self, state: dict[str, np.ndarray]) -> None:
        """Put the repetitions where ``state()`` saw them."""
        self._counter, self._held = np.array(state["counter"]), np.array(state["held"])


# -- the spec ---------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class GaussianSpec:
    """Standard deviations of additive white noise (pixels: in intensity levels)."""

    actions: float = 0.0
    observations: float = 0.0
    pixels: float = 0.0


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """Per-component runs (dropped or stuck): start probability and run length in steps."""

    actions_prob: float = 0.0
    actions_steps: int = 1
    observations_prob: float = 0.0
    observations_steps: int = 1


@dataclasses.dataclass(frozen=True)
class RepetitionSpec:
    """Probability of holding the action, and the steps it is held in total."""

    actions_prob: float = 0.0
    actions_steps: int = 1


@dataclasses.dataclass(frozen=True)
class NoiseSpec:
    """The four noises; None where a noise is off."""

    gaussian: GaussianSpec | None = None
    dropped: RunSpec | None = None
    stuck: RunSpec | None = None
    repetition: RepetitionSpec | None = None


_RUN_KEYS = ("enable", "actions_prob", "actions_steps", "observations_prob", "observations_steps")
_NOISE_KEYS = {
    "gaussian": ("enable", "actions", "observations", "pixels"),
    "dropped": _RUN_KEYS,
    "stuck": _RUN_KEYS,
    "repetition": ("enable", "actions_prob", "actions_steps"),
}
_SPEC_CLASSES = {"gaussian": GaussianSpec, "dropped": RunSpec, "stuck": RunSpec,
                 "repetition": RepetitionSpec}


def parse_noise(spec: Mapping, facts: TaskFacts) -> NoiseSpec | None:
    """Parse ``noise_spec`` (sub-dicts gaussian, dropped, stuck, repetition)."""
    spec = check_keys("noise_spec", spec, tuple(_NOISE_KEYS))
    parsed = {}
    for kind, sub in spec.items():
        where = f"noise_spec[{kind!r}]"
        sub = check_keys(where, sub, _NOISE_KEYS[kind])
        if is_on(where, sub):
            parsed[kind] = _SPEC_CLASSES[kind](**{
                key: _field(f"{where}[{key!r}]", key, sub) for key in _NOISE_KEYS[kind][1:]})
    return NoiseSpec(**parsed) if parsed else None


def _field(field: str, key: str, sub: Mapping):
    """Return the checked value of one key of a noise sub-spec (its default if absent)."""
    if key.endswith("_steps"):
        return integer(field, sub.get(key, 1), 1, MAX_RUN_STEPS)
    if key.endswith("_prob"):
        return number(field, sub.get(key, 0.0), 0.0, 1.0)
    if key == "pixels":
        return number(field, sub.get(key, 0.0), 0.0, MAX_PIXEL_STD)
    return number(field, sub.get(key, 0.0), 0.0, MAX_STD)


# -- the stages -------------------------------------------------------------------
def noise_stages(spec: NoiseSpec, task) -> StageMakers:
    """Return the noises that are on, per path (a noise of zero size is off)."""
    n = task.num_envs
    stages = {ACTIONS: _stream_stages(spec, n, "actions"),
              OBSERVATIONS: _stream_stages(spec, n, "observations"),
              PIXELS: _pixel_stages(spec, n)}
    rep = spec.repetition
    if rep and rep.actions_steps > 1:
        stages[ACTIONS]["repetition"] = _sized(ActionRepetition, rep.actions_prob,
                                               rep.actions_steps, n)
    return stages


def _stream_stages(spec: NoiseSpec, n: int, stream: str) -> dict:
    """Return the gaussian/dropped/stuck makers of ``stream`` ('actions' or 'observations')."""
    stages = {}
    sigma = spec.gaussian and getattr(spec.gaussian, stream)
    if sigma:
        stages["gaussian"] = _sized(GaussianNoise, sigma, n)
    for name, cls in (("dropped", DroppedNoise), ("stuck", StuckNoise)):
        run = getattr(spec, name)
        if run and getattr(run, f"{stream}_prob") > 0:
            stages[name] = _sized(cls, getattr(run, f"{stream}_prob"),
                                  getattr(run, f"{stream}_steps"), n)
    return stages


def _pixel_stages(spec: NoiseSpec, n: int) -> dict:
    """Return the gaussian/dropped/stuck makers of the camera frames (each made with (H, W, 3))."""
    stages = {}
    sigma = spec.gaussian and spec.gaussian.pixels
    if sigma:
        stages["gaussian"] = functools.partial(PixelGaussianNoise, sigma)
    for name, cls in (("dropped", DroppedFrames), ("stuck", StuckFrames)):
        run = getattr(spec, name)
        if run and run.observations_prob > 0:
            stages[name] = _frame_runs(cls, run, n)
    return stages


def _frame_runs(cls, run: RunSpec, n: int):
    """Return make(shape) -> ``cls`` with the observation runs of ``run``, on frames of that shape."""
    return lambda shape: cls(run.observations_prob, run.observations_steps, n, shape)


def _sized(cls, *args):
    """Return make(shape) -> ``cls(*args, size)``, size being the stream's per-env width."""
    return lambda shape: cls(*args, shape[0])


CHALLENGE = Challenge("noise", parse_noise, noise_stages)
