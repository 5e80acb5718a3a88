"""Parse and validate the challenge spec dictionaries into typed, frozen specs.

The dictionaries are those of the published suite (Dulac-Arnold et al. 2020,
``realworldrl_suite/environments/realworld_env.py``), plus rwrl's
``realtime_spec``. Each is parsed once, when the environment is built:

* an unknown key raises a ValueError naming the key and the keys allowed;
* a value out of range raises a ValueError naming the field, the value and
  the range (``noise_spec['dropped']['observations_prob'] = 1.5 is out of
  range: allowed [0.0, 1.0]``);
* a spec that is not None or a dict (``safety_spec=True``) raises a
  ValueError naming the spec.

ValueError is the only error parsing raises, whatever the input (a user's
``Objective`` class or latency callable may raise its own when called).

Every field has a bounded range, so that no spec can ask for unbounded memory
or time, nor put non-finite numbers into the outputs:

==========================================  =================================
field                                       allowed
==========================================  =================================
delay_spec actions/observations/rewards     integers in [0, MAX_DELAY_STEPS]
noise_spec ``*_steps`` (run lengths)        integers in [1, MAX_RUN_STEPS]
noise_spec ``*_prob``                       [0, 1]
noise_spec gaussian actions/observations    [0, MAX_STD]
perturb_spec period                         integers in [1, MAX_PERIOD]
perturb_spec min/max/start                  the parameter's range (domain)
perturb_spec std                            [0, MAX_STD]
perturb_spec values (scheduler 'uniform')   a non-empty list in the parameter's range
num_random_state_observations               integers in [0, MAX_RANDOM_OBSERVATIONS]
safety_coeff, multiobj coeff                [0, 1]
realtime_spec budget, latency (seconds)     [0, MAX_SECONDS]
realtime_spec max_missed                    integers in [0, MAX_MISSED]
==========================================  =================================

Integers may be given as integral floats (``3.0``); bools, NaN, infinities,
strings and non-integral values are rejected. The largest buffer a spec can
ask for is the observation delay's: (MAX_DELAY_STEPS + 1) x observation size
x 8 bytes per env, about 0.6 MB per env for humanoid's observation.

A spec given as a non-empty dict is on unless it says ``'enable': False``
(the published suite needed ``'enable': True``; both spellings work). A
disabled spec parses to None.

Example:
  >>> specs = parse_specs(TaskFacts("cartpole", ("slider_pos",), {}),
  ...                     delay_spec={"enable": True, "actions": 3})
  >>> specs.delay
  DelaySpec(actions=3, observations=0, rewards=0)
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import reprlib
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from rwrl.challenges import combined as combined_lib
from rwrl.challenges.multiobj import OBJECTIVES, Objective
from rwrl.tasks.constraints import ACTION_ROC
from rwrl.challenges.perturb import SCHEDULERS
from rwrl.tasks.protocol import TaskFacts

_SUFFIX = "_constraint"

#: most control steps of a delay: one default episode (the FIFO holds d + 1 items per env).
MAX_DELAY_STEPS = 1000
#: most steps of one dropped, stuck or repeated run: one default episode.
MAX_RUN_STEPS = 1000
#: most resets between two perturbation scheduler steps.
MAX_PERIOD = 10**6
#: most extra N(0, 1) observation features (8 bytes each per env and step).
MAX_RANDOM_OBSERVATIONS = 10_000
#: most control periods one late action may miss (each runs one physics step).
MAX_MISSED = 1000
#: largest standard deviation of gaussian noise and of a perturbation step; noise
#: of this size keeps every observation finite, in float32 too.
MAX_STD = 1e6
#: largest real-time budget and simulated latency, seconds (an hour: longer
#: latencies miss max_missed periods all the same).
MAX_SECONDS = 3600.0


# -- typed specs --------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class SafetySpec:
    """Active constraints, in output order; each name is built-in, 'action_roc' or a user's."""

    constraints: tuple[str, ...]
    #: name -> fn(safety_vars) -> (N,) bool, for the user constraints among ``constraints``.
    user_constraints: Mapping[str, Callable]
    safety_coeff: float = 1.0
    #: add the K satisfied flags as the observation entry 'constraints'.
    observations: bool = True


@dataclasses.dataclass(frozen=True)
class DelaySpec:
    """Delays in control steps."""

    actions: int = 0
    observations: int = 0
    rewards: int = 0


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


@dataclasses.dataclass(frozen=True)
class PerturbSpec:
    """One perturbed physical parameter and its scheduler."""

    param: str
    scheduler: str
    period: int
    start: float
    min: float
    max: float
    std: float
    #: a discrete set: the 'uniform' scheduler draws one of them per step (rwrl's own key).
    values: tuple[float, ...] | None = None


@dataclasses.dataclass(frozen=True)
class DimensionalitySpec:
    """Number of extra N(0, 1) observation features."""

    num_random_state_observations: int


@dataclasses.dataclass(frozen=True)
class MultiObjSpec:
    """Objective, and whether it mixes into the reward and/or is observed."""

    objective: Objective
    reward: bool = False
    coeff: float = 0.0
    observed: bool = False


@dataclasses.dataclass(frozen=True)
class RealtimeSpec:
    """The real-time inference challenge (rwrl's own; docs/challenges.md)."""

    mode: str
    budget: float
    fallback: str = "hold"
    #: simulated mode: seconds per step (float, sequence, or callable(step_index) -> float).
    latency: Any = 0.0
    #: most control periods that one late action may miss (bounds a stalled controller).
    max_missed: int = 100


@dataclasses.dataclass(frozen=True)
class ChallengeSpecs:
    """Every challenge of one environment; None where off."""

    safety: SafetySpec | None = None
    delay: DelaySpec | None = None
    noise: NoiseSpec | None = None
    perturb: PerturbSpec | None = None
    dimensionality: DimensionalitySpec | None = None
    multiobj: MultiObjSpec | None = None
    realtime: RealtimeSpec | None = None
    combined_challenge: str | None = None


# -- field checks -------------------------------------------------------------------
_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 60  # a message names the value, never pages of it
_REPR.maxlong = 40


def _show(value: Any) -> str:
    """Return a short repr of ``value`` for a message."""
    return _REPR.repr(value)


def _check_keys(where: str, spec: Any, allowed: Sequence[str]) -> dict:
    if not isinstance(spec, Mapping):
        raise ValueError(f"{where} must be a dict, got {type(spec).__name__} {_show(spec)}")
    unknown = [k for k in spec if not isinstance(k, str) or k not in allowed]
    if unknown:
        raise ValueError(f"{where}: unknown key {_show(unknown[0])}; "
                         f"allowed keys: {sorted(allowed)}")
    return dict(spec)


def _enabled(where: str, spec: Mapping) -> bool:
    return _bool(f"{where}['enable']", spec.get("enable", True))


def _bool(field: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_, numbers.Integral)) or value not in (0, 1):
        raise ValueError(f"{field} = {_show(value)} is not a bool: allowed True or False")
    return bool(value)


def _is_finite_real(value: Any) -> bool:
    """Return whether ``value`` is a finite real number and not a bool."""
    if not isinstance(value, numbers.Real) or isinstance(value, (bool, np.bool_)):
        return False
    if isinstance(value, (np.timedelta64, np.datetime64)):
        return False  # numpy registers timedelta64 as a signed integer
    if isinstance(value, numbers.Integral):
        return True  # math.isfinite overflows on ints beyond the float range
    try:
        return math.isfinite(value)
    except OverflowError:  # a Fraction beyond the float range
        return False


def _number(field: str, value: Any, lo: float, hi: float) -> float:
    if not _is_finite_real(value):
        raise ValueError(f"{field} = {_show(value)} is not a finite number: "
                         f"allowed [{lo}, {hi}]")
    if not lo <= value <= hi:
        raise ValueError(f"{field} = {_show(value)} is out of range: allowed [{lo}, {hi}]")
    return float(value)


def _integer(field: str, value: Any, lo: int, hi: int) -> int:
    allowed = f"allowed integers in [{lo}, {hi}]"
    if not _is_finite_real(value) or value != math.floor(value):
        raise ValueError(f"{field} = {_show(value)} is not an integer: {allowed}")
    if not lo <= value <= hi:
        raise ValueError(f"{field} = {_show(value)} is out of range: {allowed}")
    return int(value)


def _choice(field: str, value: Any, allowed: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{field} = {_show(value)} is unknown: allowed {list(allowed)}")
    return value


# -- one parser per spec ------------------------------------------------------------
def parse_safety(spec: Mapping, facts: TaskFacts) -> SafetySpec | None:
    """Parse ``safety_spec`` (keys enable, constraints, observations, safety_coeff)."""
    where = "safety_spec"
    if isinstance(spec, Mapping) and "limits" in spec:
        raise ValueError(
            "safety_spec['limits'] is not supported: the limits are domain facts scaled by "
            "safety_spec['safety_coeff']; write a user constraint for other limits "
            "(docs/compatibility.md)")
    spec = _check_keys(where, spec, ("enable", "constraints", "observations", "safety_coeff"))
    if not spec or not _enabled(where, spec):
        return None
    coeff = _number(f"{where}['safety_coeff']", spec.get("safety_coeff", 1.0), 0.0, 1.0)
    names, user = _parse_constraints(spec.get("constraints"), facts)
    return SafetySpec(constraints=names, user_constraints=user, safety_coeff=coeff,
                      observations=_bool(f"{where}['observations']",
                                         spec.get("observations", True)))


def _parse_constraints(value: Any, facts: TaskFacts) -> tuple[tuple[str, ...], dict]:
    """Return (names in order, user constraints) of ``safety_spec['constraints']``."""
    builtin = facts.constraint_names + (ACTION_ROC,)
    if value is None:
        return facts.constraint_names, {}
    if isinstance(value, str) or not isinstance(value, (Mapping, Sequence)):
        raise ValueError(f"safety_spec['constraints'] = {_show(value)} is not allowed: give a list "
                         "of names or a dict name -> None (built-in) or fn(safety_vars)")
    items = value.items() if isinstance(value, Mapping) else ((v, None) for v in value)
    names, user = [], {}
    for key, fn in items:
        if not isinstance(key, str):
            raise ValueError(f"safety_spec['constraints']: {_show(key)} is not a constraint name")
        name = key[:-len(_SUFFIX)] if key.endswith(_SUFFIX) else key
        if fn is None:
            _choice(f"safety_spec['constraints'] entry {_show(key)} (domain {facts.domain!r})",
                    name, builtin)
        elif name in builtin:
            raise ValueError(
                f"safety_spec['constraints'][{_show(key)}] names a built-in constraint: give it "
                f"the value None (or list the names) to select it, or rename your own constraint")
        elif not callable(fn):
            raise ValueError(f"safety_spec['constraints'][{_show(key)}] = {_show(fn)} is not "
                             "callable: allowed None (built-in) or fn(safety_vars) -> (N,) bool")
        else:
            user[name] = fn
        if name in names:
            raise ValueError(f"safety_spec['constraints'] lists {_show(name)} twice")
        names.append(name)
    return tuple(names), user


def parse_delay(spec: Mapping) -> DelaySpec | None:
    """Parse ``delay_spec`` (keys enable, actions, observations, rewards)."""
    where = "delay_spec"
    spec = _check_keys(where, spec, ("enable", "actions", "observations", "rewards"))
    if not spec or not _enabled(where, spec):
        return None
    return DelaySpec(**{k: _integer(f"{where}[{k!r}]", spec.get(k, 0), 0, MAX_DELAY_STEPS)
                        for k in ("actions", "observations", "rewards")})


_RUN_KEYS = ("enable", "actions_prob", "actions_steps", "observations_prob", "observations_steps")
_NOISE_KEYS = {
    "gaussian": ("enable", "actions", "observations"),
    "dropped": _RUN_KEYS,
    "stuck": _RUN_KEYS,
    "repetition": ("enable", "actions_prob", "actions_steps"),
}


def parse_noise(spec: Mapping) -> NoiseSpec | None:
    """Parse ``noise_spec`` (sub-dicts gaussian, dropped, stuck, repetition)."""
    spec = _check_keys("noise_spec", spec, tuple(_NOISE_KEYS))
    parsed = {}
    for kind, sub in spec.items():
        where = f"noise_spec[{kind!r}]"
        sub = _check_keys(where, sub, _NOISE_KEYS[kind])
        if not sub or not _enabled(where, sub):
            continue
        fields = {}
        for key in _NOISE_KEYS[kind][1:]:
            field = f"{where}[{key!r}]"
            if key.endswith("_steps"):
                fields[key] = _integer(field, sub.get(key, 1), 1, MAX_RUN_STEPS)
            elif key.endswith("_prob"):
                fields[key] = _number(field, sub.get(key, 0.0), 0.0, 1.0)
            else:
                fields[key] = _number(field, sub.get(key, 0.0), 0.0, MAX_STD)
        cls = {"gaussian": GaussianSpec, "repetition": RepetitionSpec}.get(kind, RunSpec)
        parsed[kind] = cls(**fields)
    return NoiseSpec(**parsed) if parsed else None


_PERTURB_KEYS = ("enable", "period", "param", "scheduler", "start", "min", "max", "std", "values")


def parse_perturb(spec: Mapping, facts: TaskFacts) -> PerturbSpec | None:
    """Parse ``perturb_spec``; defaults are the domain's (RWRL_REFERENCE.md table)."""
    where = "perturb_spec"
    spec = _check_keys(where, spec, _PERTURB_KEYS)
    if not spec or not _enabled(where, spec):
        return None
    params = facts.perturb_params
    if not params:
        raise ValueError(f"{where}: domain {facts.domain!r} has no perturbable parameter")
    name = _choice(f"{where}['param'] (domain {facts.domain!r})",
                   spec.get("param", next(iter(params))), tuple(params))
    p = params[name]
    scheduler = _choice(f"{where}['scheduler']", spec.get("scheduler", "constant"), SCHEDULERS)
    values = _perturb_values(where, name, spec.get("values"), scheduler, p)
    lo = _number(f"{where}['min'] ({name})", spec.get("min", min(values or [p.min])), p.min, p.max)
    hi = _number(f"{where}['max'] ({name})", spec.get("max", max(values or [p.max])), lo, p.max)
    if values and not lo <= min(values) <= max(values) <= hi:
        raise ValueError(f"{where}['values'] = {list(values)} ({name}): must lie in [min, max] = "
                         f"[{lo}, {hi}]")
    start = spec.get("start", min(max(p.start, lo), hi))
    return PerturbSpec(
        param=name,
        scheduler=scheduler,
        values=values,
        period=_integer(f"{where}['period']", spec.get("period", 1), 1, MAX_PERIOD),
        start=_number(f"{where}['start'] ({name})", start, lo, hi),
        min=lo, max=hi,
        std=_number(f"{where}['std'] ({name})", spec.get("std", p.std), 0.0, MAX_STD))


def _perturb_values(where: str, name: str, values: Any, scheduler: str, p) -> tuple[float, ...] | None:
    """Check ``perturb_spec['values']``: None, or a non-empty list in the parameter's range."""
    if values is None:
        return None
    field = f"{where}['values'] ({name})"
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
        raise ValueError(f"{field} = {_show(values)} is not allowed: give a non-empty list of "
                         f"values in [{p.min}, {p.max}]")
    if scheduler != "uniform":
        raise ValueError(f"{field}: a discrete set is drawn by scheduler 'uniform' only, "
                         f"got scheduler {scheduler!r}")
    return tuple(_number(f"{field}[{i}]", v, p.min, p.max) for i, v in enumerate(values))


def parse_dimensionality(spec: Mapping) -> DimensionalitySpec | None:
    """Parse ``dimensionality_spec`` (keys enable, num_random_state_observations)."""
    where = "dimensionality_spec"
    spec = _check_keys(where, spec, ("enable", "num_random_state_observations"))
    if not spec or not _enabled(where, spec):
        return None
    n = _integer(f"{where}['num_random_state_observations']",
                 spec.get("num_random_state_observations", 0), 0, MAX_RANDOM_OBSERVATIONS)
    return DimensionalitySpec(n) if n else None


def parse_multiobj(spec: Mapping) -> MultiObjSpec | None:
    """Parse ``multiobj_spec`` (keys enable, objective, reward, coeff, observed)."""
    where = "multiobj_spec"
    spec = _check_keys(where, spec, ("enable", "objective", "reward", "coeff", "observed"))
    if not spec or not _enabled(where, spec):
        return None
    objective = spec.get("objective", "safety")
    if isinstance(objective, str):
        objective = OBJECTIVES[_choice(f"{where}['objective']", objective, tuple(OBJECTIVES))]
    elif isinstance(objective, type) and issubclass(objective, Objective):
        objective = objective()
    if not isinstance(objective, Objective):
        raise ValueError(f"{where}['objective'] = {_show(objective)} is not an objective: allowed "
                         f"{sorted(OBJECTIVES)} or an rwrl.challenges.multiobj.Objective")
    return MultiObjSpec(objective=objective,
                        reward=_bool(f"{where}['reward']", spec.get("reward", False)),
                        coeff=_number(f"{where}['coeff']", spec.get("coeff", 0.0), 0.0, 1.0),
                        observed=_bool(f"{where}['observed']", spec.get("observed", False)))


def parse_realtime(spec: Mapping) -> RealtimeSpec | None:
    """Parse ``realtime_spec`` (keys enable, mode, budget, fallback, latency, max_missed)."""
    where = "realtime_spec"
    spec = _check_keys(where, spec,
                       ("enable", "mode", "budget", "fallback", "latency", "max_missed"))
    if not spec or not _enabled(where, spec):
        return None
    mode = _choice(f"{where}['mode']", spec.get("mode", "simulated"), ("wallclock", "simulated"))
    if mode == "wallclock" and "latency" in spec:
        raise ValueError(f"{where}['latency'] is only allowed in 'simulated' mode "
                         "(wallclock mode measures the latency)")
    if "budget" not in spec:
        raise ValueError(f"{where}['budget'] is required: the deadline in seconds, "
                         f"allowed [0.0, {MAX_SECONDS}]")
    return RealtimeSpec(mode=mode,
                        budget=_number(f"{where}['budget']", spec["budget"], 0.0, MAX_SECONDS),
                        fallback=_choice(f"{where}['fallback']", spec.get("fallback", "hold"),
                                         ("hold", "zero")),
                        latency=_parse_latency(spec.get("latency", 0.0)),
                        max_missed=_integer(f"{where}['max_missed']",
                                            spec.get("max_missed", 100), 0, MAX_MISSED))


_LATENCY = "realtime_spec['latency']"


def _parse_latency(value: Any) -> float | tuple[float, ...] | Callable:
    """Return a latency as a float, a non-empty tuple of floats, or the callable given."""
    if callable(value):
        return value  # its values are checked as they come (``checked_latency``)
    if _is_finite_real(value):
        return _number(_LATENCY, value, 0.0, MAX_SECONDS)
    if isinstance(value, (list, tuple)) or (isinstance(value, np.ndarray) and value.ndim == 1):
        if len(value) == 0:
            raise ValueError(f"{_LATENCY} is an empty sequence: give at least one latency "
                             f"in [0.0, {MAX_SECONDS}] seconds")
        return tuple(_number(f"{_LATENCY}[{i}]", v, 0.0, MAX_SECONDS)
                     for i, v in enumerate(value))
    raise ValueError(f"{_LATENCY} = {_show(value)} is not allowed: give seconds in "
                     f"[0.0, {MAX_SECONDS}], a list of them, or a callable(step) -> seconds")


def checked_latency(value: Any, step: int) -> float:
    """Return the latency a ``realtime_spec['latency']`` callable returned, as seconds.

    Call it before any state moves, so a bad value leaves the env as it was.

    Args:
      value: what the callable returned for ``step``.
      step: the step count passed to the callable.

    Raises:
      ValueError: naming the call and the value, when it is not a real number in
        [0, MAX_SECONDS].

    Example:
      >>> checked_latency(0.02, 3)
      0.02
    """
    return _number(f"{_LATENCY}({step})", value, 0.0, MAX_SECONDS)


def parse_specs(facts: TaskFacts, *, safety_spec=None, delay_spec=None, noise_spec=None,
                perturb_spec=None, dimensionality_spec=None, multiobj_spec=None,
                realtime_spec=None, combined_challenge=None) -> ChallengeSpecs:
    """Return the validated specs of one environment.

    Args:
      facts: the task's domain facts (``TaskFacts``).
      safety_spec ... realtime_spec: the spec dictionaries (None or {}: off).
      combined_challenge: None, 'easy', 'medium' or 'hard'; it supplies the
        delay, noise, perturbation and dimensionality specs, so passing any of
        those beside it raises.

    Raises:
      ValueError: naming the spec or field, the value and what is allowed;
        the only error raised, whatever the arguments.
    """
    given_specs = dict(safety_spec=safety_spec, delay_spec=delay_spec, noise_spec=noise_spec,
                       perturb_spec=perturb_spec, dimensionality_spec=dimensionality_spec,
                       multiobj_spec=multiobj_spec, realtime_spec=realtime_spec)
    for name, value in given_specs.items():
        if value is not None and not isinstance(value, Mapping):
            raise ValueError(f"{name} must be a dict or None, got {type(value).__name__} "
                             f"{_show(value)}")
    if combined_challenge is not None:
        _choice("combined_challenge", combined_challenge, tuple(combined_lib.LEVELS))
        given = [name for name, value in (("delay_spec", delay_spec), ("noise_spec", noise_spec),
                                          ("perturb_spec", perturb_spec),
                                          ("dimensionality_spec", dimensionality_spec)) if value]
        if given:
            raise ValueError(f"combined_challenge={combined_challenge!r} sets the delay, noise, "
                             f"perturbation and dimensionality specs; do not pass {given} too")
        specs = combined_lib.combined_specs(combined_challenge, facts.domain)
        delay_spec, noise_spec = specs["delay_spec"], specs["noise_spec"]
        perturb_spec, dimensionality_spec = specs["perturb_spec"], specs["dimensionality_spec"]
    return ChallengeSpecs(
        safety=parse_safety(safety_spec or {}, facts),
        delay=parse_delay(delay_spec or {}),
        noise=parse_noise(noise_spec or {}),
        perturb=parse_perturb(perturb_spec or {}, facts),
        dimensionality=parse_dimensionality(dimensionality_spec or {}),
        multiobj=parse_multiobj(multiobj_spec or {}),
        realtime=parse_realtime(realtime_spec or {}),
        combined_challenge=combined_challenge)
