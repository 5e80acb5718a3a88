"""The real-world challenges: batched transforms with explicit state.

One module per challenge (safety, delay, noise, perturb, dimensionality,
multiobj, realtime, regime), each holding its stages, its spec dataclass, the parser
of its spec dictionary and its ``Challenge`` declaration (``challenge``);
``registry`` lists them (and the ``combined`` bundle), ``specs`` parses an
env's keyword arguments through the registry (checks shared in
``spec_checks``), and ``pipeline.ChallengeEnv`` applies the stages to a
``BatchedTask`` in the reference's order (docs/challenges.md).

Adding a challenge touches its stage file, its line in
``rwrl.challenges.registry.CHALLENGES`` and its section of docs/challenges.md,
nothing else: ``gymnasium.make``, ``rwrl.load``, sweep files and sweep results
read the registry. The registry's docstring says what the stage file holds
and where the new stages run (``regime_spec`` was added this way).
"""

from rwrl.challenges.multiobj import OBJECTIVES, Objective, SafetyObjective
from rwrl.challenges.perturb import SCHEDULERS
from rwrl.challenges.pipeline import ACTION_PATH, OBSERVATION_PATH, REWARD_PATH, ChallengeEnv
from rwrl.challenges.registry import CHALLENGES, keywords
from rwrl.challenges.specs import ChallengeSpecs, parse_specs

__all__ = ["ACTION_PATH", "CHALLENGES", "OBSERVATION_PATH", "REWARD_PATH", "ChallengeEnv",
           "ChallengeSpecs", "OBJECTIVES", "Objective", "SafetyObjective", "SCHEDULERS",
           "keywords", "parse_specs"]
