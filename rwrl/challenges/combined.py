"""The combined challenges: easy, medium and hard bundles of four challenges.

Defined in Dulac-Arnold et al. (2020) and in the published
suite's ``get_combined_challenge``; the numbers are RWRL_REFERENCE.md's
"Combined challenges" table. A combined challenge sets the delay, noise,
perturbation and dimensionality specs; safety, multi-objective and real-time
specs may be passed beside it.

The perturbed parameter and its range at each level are domain facts
(``COMBINED_PERTURBATION`` in each domain file), handed over in
``TaskFacts.combined_perturbation``.

Example:
  >>> facts = TaskFacts("cartpole", (), {},
  ...                   combined_perturbation=("pole_length", {"hard": (0.5, 2.3, 0.15)}))
  >>> combined_specs("hard", facts)["perturb_spec"]["max"]
  2.3
"""

from __future__ import annotations

from typing import Any, Mapping

from rwrl.challenges.spec_checks import choice
from rwrl.tasks.facts import TaskFacts

#: level -> (delay actions, observations, rewards; gaussian sigma; dropped and stuck
#: observation (prob, steps); repetition (prob, steps); extra observation dims).
LEVELS = {
    "easy": dict(delay=(3, 3, 10), sigma=0.1, runs=(0.01, 1), repetition=(1.0, 1), dims=10),
    "medium": dict(delay=(6, 6, 20), sigma=0.3, runs=(0.05, 5), repetition=(1.0, 2), dims=20),
    "hard": dict(delay=(9, 9, 40), sigma=1.0, runs=(0.1, 10), repetition=(1.0, 3), dims=50),
}
#: the spec keywords a combined challenge sets.
SETS = ("delay_spec", "noise_spec", "perturb_spec", "dimensionality_spec")


def expand(level: Any, given: Mapping[str, Any], facts: TaskFacts) -> dict[str, dict]:
    """Return the spec dicts that ``combined_challenge=level`` sets (the registry's bundle).

    Raises:
      ValueError: for an unknown level, or when one of the specs it sets is
        given too (``given``: spec keyword -> dict or None).
    """
    choice("combined_challenge", level, tuple(LEVELS))
    clash = [keyword for keyword in SETS if given.get(keyword)]
    if clash:
        raise ValueError(f"combined_challenge={level!r} sets the delay, noise, perturbation and "
                         f"dimensionality specs; do not pass {clash} too")
    return combined_specs(level, facts)


def combined_specs(level: str, facts: TaskFacts) -> dict[str, dict]:
    """Return the delay, noise, perturbation and dimensionality spec dicts of a level.

    Args:
      level: 'easy', 'medium' or 'hard'.
      facts: the task's facts; ``facts.combined_perturbation`` gives the
        perturbed parameter and its range.

    Returns:
      {'delay_spec': ..., 'noise_spec': ..., 'perturb_spec': ...,
      'dimensionality_spec': ...}, in the published dictionary format.
    """
    row = LEVELS[choice("combined_challenge", level, tuple(LEVELS))]
    if not isinstance(facts, TaskFacts):
        raise TypeError(f"combined_specs takes the task's TaskFacts, got {facts!r}: build them "
                        "with rwrl.tasks.facts.domain_facts(rwrl.domains.make_domain(...))")
    if facts.combined_perturbation is None:
        raise ValueError(f"combined_challenge: domain {facts.domain!r} has no combined "
                         "perturbation (TaskFacts.combined_perturbation is None)")
    param, ranges = facts.combined_perturbation
    lo, hi, std = ranges[level]
    actions, observations, rewards = row["delay"]
    prob, steps = row["runs"]
    run = {"enable": True, "observations_prob": prob, "observations_steps": steps}
    return {
        "delay_spec": {"enable": True, "actions": actions, "observations": observations,
                       "rewards": rewards},
        "noise_spec": {
            "gaussian": {"enable": True, "actions": row["sigma"], "observations": row["sigma"]},
            "dropped": dict(run),
            "stuck": dict(run),
            "repetition": {"enable": True, "actions_prob": row["repetition"][0],
                           "actions_steps": row["repetition"][1]},
        },
        "perturb_spec": {"enable": True, "period": 1, "scheduler": "uniform", "param": param,
                         "min": lo, "max": hi, "std": std},
        "dimensionality_spec": {"enable": True, "num_random_state_observations": row["dims"]},
    }
