"""Each challenge class validates its own arguments (for use without the spec parser)."""

import numpy as np
import pytest

from rwrl.challenges.combined import combined_specs
from rwrl.challenges.delay import Delay
from rwrl.challenges.dimensionality import RandomFeatures
from rwrl.challenges.multiobj import MultiObjective, SafetyObjective
from rwrl.challenges.noise import ActionRepetition, DroppedNoise, GaussianNoise, StuckNoise
from rwrl.challenges.perturb import step_scheduler
from rwrl.challenges.realtime import RealTime
from rwrl.domains import make_domain
from rwrl.tasks.constraints import ConstraintSet
from rwrl.tasks.facts import TaskFacts, domain_facts


def _facts(domain_name: str) -> TaskFacts:
    """The facts of a domain's swingup task (the domain lookup names unknown domains)."""
    return domain_facts(make_domain(domain_name, "swingup"))


@pytest.mark.parametrize("build, match", [
    (lambda: Delay(-1, 1, ()), r"delay steps = -1 is out of range: allowed integers >= 0"),
    (lambda: GaussianNoise(-0.5, 1, 1), r"gaussian sigma = -0.5 is out of range: allowed >= 0"),
    (lambda: DroppedNoise(1.5, 1, 1, 1), r"dropped prob = 1.5 is out of range: allowed \[0, 1\]"),
    (lambda: StuckNoise(0.1, 0, 1, 1), r"stuck steps = 0 is out of range: allowed integers >= 1"),
    (lambda: ActionRepetition(0.5, 2.5, 1, 1),
     r"repetition steps = 2.5 is out of range: allowed integers >= 1"),
    (lambda: RandomFeatures(0), r"num_random_state_observations = 0 is out of range"),
    (lambda: MultiObjective(SafetyObjective(), True, 1.2),
     r"multiobj coeff = 1.2 is out of range: allowed \[0, 1\]"),
    (lambda: RealTime("async", 0.01, "hold", 0.0, 0.01, 10, 1, 1), r"realtime mode = 'async' is unknown"),
    (lambda: RealTime("simulated", 0.01, "last", 0.0, 0.01, 10, 1, 1),
     r"realtime fallback = 'last' is unknown: allowed \['hold', 'zero'\]"),
    (lambda: RealTime("simulated", -1.0, "hold", 0.0, 0.01, 10, 1, 1),
     r"realtime budget = -1.0 is out of range: allowed >= 0"),
    (lambda: ConstraintSet((), 1.0, 1, ("x",), {}, 0.5),
     r"unknown constraint 'x': allowed \['action_roc'\]"),
    (lambda: ConstraintSet((), 1.0, 1, (), {}, 1.5),
     r"safety_coeff = 1.5 is out of range: allowed \[0, 1\]"),
    (lambda: step_scheduler("sine", 1.0, 1.0, np.random.default_rng(0), start=1.0, lo=0.0,
                            hi=2.0, std=0.1),
     r"scheduler = 'sine' is unknown: allowed \['constant'"),
    (lambda: combined_specs("hard", _facts("pendulum")), r"unknown domain 'pendulum': allowed \["),
    (lambda: combined_specs("extreme", _facts("cartpole")),
     r"combined_challenge = 'extreme' is unknown"),
    (lambda: combined_specs("hard", TaskFacts("pendulum", (), {})),
     r"combined_challenge: domain 'pendulum' has no combined perturbation"),
])
def test_invalid_argument_raises_naming_it(build, match):
    with pytest.raises(ValueError, match=match):
        build()
