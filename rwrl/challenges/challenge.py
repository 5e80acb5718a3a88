"""What a challenge declares to the registry: its spec keyword, its parser, its stages.

A challenge is one module (``rwrl/challenges/delay.py``) holding its stage
classes, its spec dataclass, and one ``Challenge`` that names:

* ``parse(spec, facts) -> spec or None``: the spec dictionary (``{}`` when
  not given) checked against the task's ``TaskFacts`` into a frozen
  dataclass, None when the challenge is off; a ValueError naming the field,
  the value and what is allowed otherwise (as a Gymnasium wrapper validates
  its own arguments);
* ``stages(spec, task) -> {path: {stage name: make(shape) -> stage}}``: the
  stages it adds to each path, as makers that the pipeline calls in the
  path's order with the per-env shape of the stream at that place;
* ``configure(task, spec)`` (optional): what it sets on the task before any
  stage is made (the safety challenge chooses the task's constraints);
* ``parameters(spec) -> names`` (optional): the physical parameters its stages
  set on the task (perturbation, regimes); ``parse_specs`` refuses two
  challenges that set one parameter.
* ``state_observation_only`` (default False): its stages act on the state
  observation alone, so an env that returns pixels without the state
  (``observation_mode='pixels'``) refuses it rather than run it for nothing
  (dimensionality's extra features).

The paths (``rwrl.challenges.pipeline`` orders the stages of each):

==============  ==========================================  ===========
path            stage                                       shape
==============  ==========================================  ===========
EPISODE         ``begin(ids, seeds, task)`` before the      ()
                task's reset, ``annotate(frame)``
ACTIONS         ``stage(actions, frame)``, (n, nu)           (nu,)
PHYSICS         ``advance(task, actions, latency)``: runs   (nu,)
                the physics (one such stage at most)
REWARDS         ``stage(rewards, frame)``, (n,)              ()
OBSERVATIONS    ``stage(obs, frame)``, (n, D)                (D,) there
PIXELS          ``stage(frames, frame)``, (n, H, W, 3)       (H, W, 3)
                uint8 camera frames (built only when the
                env observes pixels)
==============  ==========================================  ===========
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping

from rwrl.tasks.facts import TaskFacts

EPISODE, ACTIONS, PHYSICS, REWARDS, OBSERVATIONS, PIXELS = (
    "episode", "actions", "physics", "rewards", "observations", "pixels")
PATHS = (EPISODE, ACTIONS, PHYSICS, REWARDS, OBSERVATIONS, PIXELS)

#: path -> stage name -> make(per-env shape of the stream there) -> stage.
StageMakers = Mapping[str, Mapping[str, Callable[[tuple[int, ...]], Any]]]


@dataclasses.dataclass(frozen=True)
class Challenge:
    """One challenge as the registry lists it (see the module docstring).

    Attributes:
      name: 'delay'; its keyword argument is ``delay_spec`` and its parsed
        spec the field ``delay`` of ``ChallengeSpecs``.
      parse: fn(spec dict, facts) -> parsed spec, or None when off.
      stages: fn(parsed spec, task) -> ``StageMakers``.
      configure: fn(task, parsed spec), run before any stage is made; None: nothing.
      parameters: fn(parsed spec) -> the physical parameters it sets; None: none.
      state_observation_only: its stages act on the state observation alone
        (refused where the agent gets pixels without the state).
    """

    name: str
    parse: Callable[[Mapping, TaskFacts], Any]
    stages: Callable[[Any, Any], StageMakers]
    configure: Callable[[Any, Any], None] | None = None
    parameters: Callable[[Any], tuple[str, ...]] | None = None
    state_observation_only: bool = False

    @property
    def keyword(self) -> str:
        """The keyword argument that switches the challenge on ('delay_spec')."""
        return f"{self.name}_spec"
