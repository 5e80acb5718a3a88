"""The real-world challenges: batched transforms with explicit state.

One module per challenge (safety, delay, noise, perturb, dimensionality,
multiobj, realtime, combined), ``specs`` for parsing the spec dictionaries and
``pipeline.ChallengeEnv``, which applies them to a ``BatchedTask`` in the
reference's order (docs/challenges.md).
"""

from rwrl.challenges.multiobj import OBJECTIVES, Objective, SafetyObjective
from rwrl.challenges.pipeline import ACTION_PATH, OBSERVATION_PATH, REWARD_PATH, ChallengeEnv
from rwrl.challenges.specs import SCHEDULERS, ChallengeSpecs, parse_specs

__all__ = ["ACTION_PATH", "OBSERVATION_PATH", "REWARD_PATH", "ChallengeEnv", "ChallengeSpecs",
           "OBJECTIVES", "Objective", "SafetyObjective", "SCHEDULERS", "parse_specs"]
