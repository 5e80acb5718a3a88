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

Spec: ``noise_spec``, sub-dicts ``gaussian`` (enable, actions, observations:
sigma in [0, MAX_STD]), ``dropped`` and ``stuck`` (enable, actions_prob,
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
  GaussianSpec(actions=0.1, observations=0.0)
"""

from __future__ import annotations

import dataclasses
from typing import Mapping

import numpy as np

from rwrl.challenges.challenge import ACTIONS, OBSERVATIONS, Challenge, StageMakers
from rwrl.challenges.spec_checks import MAX_STD, check_keys, integer, is_on, number
from rwrl.challenges.stage import Frame, Stateless
from rwrl.core.seeding import CounterRandom  # noqa: F401  (the docstring example)
from rwrl.tasks.facts import TaskFacts

#: most steps of one dropped, stuck or repeated run: one default episode.
MAX_RUN_STEPS = 1000


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


class DroppedNoise:
    """Set a component to 0 for runs of ``steps`` steps, each started with probability p."""

    name = "dropped"
    normals = 0

    def __init__(self, prob: float, steps: int, num_envs: int, size: int):
        _check_prob("dropped", prob)
        _check_steps("dropped", steps)
        self.prob, self.steps, self.size = float(prob), int(steps), size
        self.uniforms = size
        self._counter = np.zeros((num_envs, size), np.int64)

    def reset(self, ids: np.ndarray) -> None:
        """End the runs of envs ``ids``."""
        self._counter[ids] = 0

    def __call__(self, x: np.ndarray, frame: Frame) -> np.ndarray:
        """Return x (n, D) with the components of active runs at 0."""
        sel = _select(frame)
        counter = self._counter[sel]
        active = advance_runs(counter, frame.draws.uniform((self.size,)), self.prob, self.steps)
        self._counter[sel] = counter
        return np.where(active, 0.0, x)

    def state(self) -> dict[str, np.ndarray]:
        """Return a copy of the steps left in each component's run (N, D)."""
        return {"counter": self._counter.copy()}

    def restore(self, state: dict[str, np.ndarray]) -> None:
        """Put the runs where ``state()`` saw them."""
        self._counter = np.array(state["counter"])


class StuckNoise:
    """Hold a component at its previous value for runs of ``steps`` steps (probability p)."""

    name = "stuck"
    normals = 0

    def __init__(self, prob: float, steps: int, num_envs: int, size: int):
        _check_prob("stuck", prob)
        _check_steps("stuck", steps)
        self.prob, self.steps, self.size = float(prob), int(steps), size
        self.uniforms = size
        self._counter = np.zeros((num_envs, size), np.int64)
        self._last = np.zeros((num_envs, size))
        self._fresh = np.ones(num_envs, bool)

    def reset(self, ids: np.ndarray) -> None:
        """End the runs of envs ``ids``; their first value becomes the held one."""
        self._counter[ids] = 0
        self._fresh[ids] = True

    def __call__(self, x: np.ndarray, frame: Frame) -> np.ndarray:
        """Return x (n, D) with the components of active runs held."""
        sel = _select(frame)
        fresh = self._fresh[sel]
        last = np.where(fresh[:, None], x, self._last[sel])
        counter = self._counter[sel]
        active = advance_runs(counter, frame.draws.uniform((self.size,)), self.prob, self.steps)
        out = np.where(active, last, x)
        self._counter[sel], self._last[sel], self._fresh[sel] = counter, out, False
        return out

    def state(self) -> dict[str, np.ndarray]:
        """Return copies of the runs' steps left and held values (N, D), the fresh marks (N,)."""
        return {"counter": self._counter.copy(), "last": self._last.copy(),
                "fresh": self._fresh.copy()}

    def restore(self, state: dict[str, np.ndarray]) -> None:
        """Put the runs where ``state()`` saw them."""
        self._counter, self._last = np.array(state["counter"]), np.array(state["last"])
        self._fresh = np.array(state["fresh"])


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
    """Standard deviations of additive white noise."""

    actions: float = 0.0
    observations: float = 0.0


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
    "gaussian": ("enable", "actions", "observations"),
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
    return number(field, sub.get(key, 0.0), 0.0, MAX_STD)


# -- the stages -------------------------------------------------------------------
def noise_stages(spec: NoiseSpec, task) -> StageMakers:
    """Return the noises that are on, per path (a noise of zero size is off)."""
    n = task.num_envs
    stages = {ACTIONS: _stream_stages(spec, n, "actions"),
              OBSERVATIONS: _stream_stages(spec, n, "observations")}
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


def _sized(cls, *args):
    """Return make(shape) -> ``cls(*args, size)``, size being the stream's per-env width."""
    return lambda shape: cls(*args, shape[0])


CHALLENGE = Challenge("noise", parse_noise, noise_stages)
