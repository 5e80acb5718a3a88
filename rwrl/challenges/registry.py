"""The registry of challenges: spec keyword -> what the challenge declares.

Every list of challenges reads this one: the keyword arguments that
``gymnasium.make``, ``gymnasium.make_vec``, ``rwrl.load`` and ``ChallengeEnv``
accept, the ``<spec>.<field>`` paths of a sweep file, the
``config.<spec>.<field>`` columns of sweep results.

Adding a challenge touches three places and nothing else:

1. its stage file, ``rwrl/challenges/<name>.py``: the stage classes, the spec
   dataclass, ``parse(spec, facts)``, ``stages(spec, task)`` and
   ``CHALLENGE = Challenge(<name>, parse, stages)`` (``rwrl.challenges.challenge``);
2. its line in ``CHALLENGES`` below;
3. its section of docs/challenges.md.

Its stages run after the stages that ``rwrl.challenges.pipeline`` lists for
their path (before the action clip), in registry order; a challenge whose
place among the published stages matters is given one in that path's order,
which is the pipeline's fact and written there once.

The latest added this way: ``regime_spec`` (continual learning: the physics
switches between regimes on a schedule), ``rwrl/challenges/regime.py``.

``BUNDLES`` are keywords that set several specs at once: ``combined_challenge``
sets the delay, noise, perturbation and dimensionality specs.

Example:
  >>> keywords()[:3], CHALLENGES["delay_spec"].name
  (('safety_spec', 'delay_spec', 'noise_spec'), 'delay')
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from rwrl.challenges import (combined, delay, dimensionality, multiobj, noise, perturb, realtime,
                             regime, safety)
from rwrl.challenges.challenge import Challenge
from rwrl.tasks.facts import TaskFacts

#: keyword -> challenge, in the order their specs are parsed and their unlisted stages run.
CHALLENGES: dict[str, Challenge] = {c.keyword: c for c in (
    safety.CHALLENGE,
    delay.CHALLENGE,
    noise.CHALLENGE,
    perturb.CHALLENGE,
    dimensionality.CHALLENGE,
    multiobj.CHALLENGE,
    realtime.CHALLENGE,
    regime.CHALLENGE,
)}

#: keyword -> fn(value, given spec dicts, facts) -> the spec dicts it sets.
BUNDLES: dict[str, Callable[[Any, Mapping[str, Any], TaskFacts], dict[str, dict]]] = {
    "combined_challenge": combined.expand,
}


def keywords() -> tuple[str, ...]:
    """Return every challenge keyword argument: the registered specs, then the bundles."""
    return (*CHALLENGES, *BUNDLES)
