"""Parse every challenge spec of one environment, through the registry, into typed specs.

``parse_specs(facts, **specs)`` takes the keyword arguments of an env
(``safety_spec=...``, ``combined_challenge=...``: ``rwrl.challenges.registry``),
expands the bundles (``combined_challenge`` sets four specs), and hands each
spec dictionary to its challenge's parser (beside its stage: ``parse_delay``
in ``rwrl/challenges/delay.py``, which lists its keys and bounds). Each is
parsed once, when the environment is built, before any state exists:

* an unknown keyword argument, or a spec that is not None or a dict
  (``safety_spec=True``), raises a ValueError naming it (an env's
  constructor refuses an unknown keyword first, with a TypeError: Python's
  convention, which frameworks such as TorchRL rely on);
* an unknown key or a value out of range raises a ValueError naming the
  field, the value and what is allowed (``rwrl.challenges.spec_checks``);
* two challenges that would set one physical parameter (``Challenge.parameters``:
  a ``regime_spec`` regime and ``perturb_spec``) raise a ValueError naming both.

ValueError is the only error parsing raises, whatever the input (a user's
``Objective`` class or latency callable may raise its own when called).
Every field has a bounded range, so that no spec can ask for unbounded memory
or time, nor put non-finite numbers into the outputs.

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
import functools
from typing import Any, Mapping

from rwrl.challenges.challenge import Challenge
from rwrl.challenges.registry import BUNDLES, CHALLENGES, keywords
from rwrl.challenges.spec_checks import show
from rwrl.tasks.facts import TaskFacts


class ChallengeSpecs:
    """Every challenge of one environment; None where off.

    One field per registered challenge, named as the challenge ('delay':
    its parsed ``DelaySpec``), and one per bundle ('combined_challenge': the
    value given). Instances are frozen dataclasses made by ``parse_specs``.
    """

    def active(self) -> list[tuple[Challenge, Any]]:
        """Return (challenge, parsed spec) of every challenge that is on, in registry order."""
        return [(c, getattr(self, c.name)) for c in CHALLENGES.values()
                if getattr(self, c.name, None) is not None]

    def __reduce__(self):
        """Pickle as the field values, rebuilt on the dataclass of the same fields."""
        fields = tuple(f.name for f in dataclasses.fields(self))
        return _rebuild, (fields, tuple(getattr(self, f) for f in fields))


def _rebuild(fields: tuple[str, ...], values: tuple) -> ChallengeSpecs:
    """Return the ``ChallengeSpecs`` of these fields and values (unpickling)."""
    return _specs_class(fields)(*values)


@functools.lru_cache(maxsize=8)
def _specs_class(fields: tuple[str, ...]) -> type[ChallengeSpecs]:
    """Return the frozen dataclass of ``ChallengeSpecs`` with these fields (default None)."""
    cls = dataclasses.make_dataclass("ChallengeSpecs", [(f, Any, None) for f in fields],
                                     bases=(ChallengeSpecs,), frozen=True)
    cls.__module__ = __name__
    return cls


def parse_specs(facts: TaskFacts, **specs: Any) -> ChallengeSpecs:
    """Return the validated specs of one environment.

    Args:
      facts: the task's domain facts (``TaskFacts``).
      **specs: the challenge keyword arguments (``rwrl.challenges.registry.keywords()``):
        the spec dictionaries (None or {}: off) and the bundles
        (``combined_challenge``: None, 'easy', 'medium' or 'hard'; it sets the
        delay, noise, perturbation and dimensionality specs, so passing any of
        those beside it raises).

    Raises:
      ValueError: naming the spec or field, the value and what is allowed;
        the only error raised, whatever the arguments.
    """
    unknown = sorted(set(specs) - set(keywords()))
    if unknown:
        raise ValueError(f"unknown challenge keyword argument(s) {unknown}: allowed "
                         f"{sorted(keywords())}")
    dicts = {keyword: specs.get(keyword) for keyword in CHALLENGES}
    for keyword, value in dicts.items():
        if value is not None and not isinstance(value, Mapping):
            raise ValueError(f"{keyword} must be a dict or None, got {type(value).__name__} "
                             f"{show(value)}")
    bundles = {keyword: specs.get(keyword) for keyword in BUNDLES}
    for keyword, value in bundles.items():
        if value is not None:
            dicts.update(BUNDLES[keyword](value, dicts, facts))
    parsed = {c.name: c.parse(dicts[keyword] or {}, facts) for keyword, c in CHALLENGES.items()}
    _check_parameters_set_once(parsed)
    return _specs_class((*parsed, *bundles))(**parsed, **bundles)


def _check_parameters_set_once(parsed: Mapping[str, Any]) -> None:
    """Raise a ValueError naming both challenges when two set one physical parameter."""
    setters: dict[str, str] = {}
    for challenge in CHALLENGES.values():
        spec = parsed[challenge.name]
        if spec is None or challenge.parameters is None:
            continue
        for name in challenge.parameters(spec):
            if name in setters:
                raise ValueError(f"{challenge.keyword}: parameter {name!r} is set by "
                                 f"{setters[name]} too: give each parameter to one challenge")
            setters[name] = challenge.keyword
