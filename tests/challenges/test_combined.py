"""Combined challenges: each level's effective parameters per domain, as the reference table."""

import pytest

from rwrl.challenges.delay import DelaySpec
from rwrl.challenges.dimensionality import DimensionalitySpec
from rwrl.challenges.noise import GaussianSpec, RepetitionSpec, RunSpec
from rwrl.challenges.specs import parse_specs
from rwrl.domains import domain_class
from rwrl.domains.base import PerturbParam
from rwrl.tasks.facts import TaskFacts

# RWRL_REFERENCE.md, perturbable parameters: the first one of each domain.
DEFAULT_PARAMS = {
    "cartpole": PerturbParam("pole_length", 1.0, 0.3, 3.0, 0.3, None),
    "walker": PerturbParam("thigh_length", 0.225, 0.1, 0.7, 0.05, None),
    "quadruped": PerturbParam("shin_length", 0.25, 0.25, 2.0, 0.1, None),
    "humanoid": PerturbParam("contact_friction", 0.7, 0.05, 1.2, 0.1, None),
    "manipulator": PerturbParam("lower_arm_length", 0.12, 0.1, 0.25, 0.01, None),
}

# RWRL_REFERENCE.md, combined challenges table, row by row.
LEVELS = {
    "easy": (DelaySpec(3, 3, 10), 0.1, (0.01, 1), RepetitionSpec(1.0, 1), 10),
    "medium": (DelaySpec(6, 6, 20), 0.3, (0.05, 5), RepetitionSpec(1.0, 2), 20),
    "hard": (DelaySpec(9, 9, 40), 1.0, (0.1, 10), RepetitionSpec(1.0, 3), 50),
}
PERTURBATION = {  # (min, max, std) per domain and level
    ("cartpole", "easy"): (0.9, 1.1, 0.02), ("cartpole", "medium"): (0.7, 1.7, 0.1),
    ("cartpole", "hard"): (0.5, 2.3, 0.15),
    ("walker", "easy"): (0.225, 0.25, 0.002), ("walker", "medium"): (0.225, 0.4, 0.015),
    ("walker", "hard"): (0.225, 0.55, 0.04),
    ("quadruped", "easy"): (0.25, 0.3, 0.005), ("quadruped", "medium"): (0.25, 0.8, 0.05),
    ("quadruped", "hard"): (0.25, 1.4, 0.1),
    ("humanoid", "easy"): (0.6, 0.8, 0.02), ("humanoid", "medium"): (0.5, 0.9, 0.04),
    ("humanoid", "hard"): (0.4, 1.0, 0.06),
    ("manipulator", "easy"): (0.1, 0.25, 0.01), ("manipulator", "medium"): (0.1, 0.25, 0.01),
    ("manipulator", "hard"): (0.1, 0.25, 0.01),
}


@pytest.mark.parametrize("domain, level", sorted(PERTURBATION))
def test_combined_level_effective_parameters(domain, level):
    param = DEFAULT_PARAMS[domain]
    facts = TaskFacts(domain, (), {param.name: param},
                      combined_perturbation=domain_class(domain).COMBINED_PERTURBATION)
    specs = parse_specs(facts, combined_challenge=level)
    delay, sigma, (prob, steps), repetition, dims = LEVELS[level]
    assert specs.delay == delay
    assert specs.noise.gaussian == GaussianSpec(actions=sigma, observations=sigma)
    assert specs.noise.dropped == RunSpec(observations_prob=prob, observations_steps=steps)
    assert specs.noise.stuck == RunSpec(observations_prob=prob, observations_steps=steps)
    assert specs.noise.repetition == repetition
    assert specs.dimensionality == DimensionalitySpec(dims)
    lo, hi, std = PERTURBATION[domain, level]
    p = specs.perturb
    assert (p.param, p.scheduler, p.period) == (param.name, "uniform", 1)
    assert (p.min, p.max, p.std) == (lo, hi, std)
    assert lo <= p.start <= hi
