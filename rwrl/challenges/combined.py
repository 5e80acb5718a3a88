"""The combined challenges: easy, medium and hard bundles of four challenges.

Defined in Dulac-Arnold et al. (2020) and in the published
suite's ``get_combined_challenge``; the numbers are RWRL_REFERENCE.md's
"Combined challenges" table. A combined challenge sets the delay, noise,
perturbation and dimensionality specs; safety, multi-objective and real-time
specs may be passed beside it.

The perturbed parameter and its range at each level are domain facts
(``COMBINED_PERTURBATION`` in each domain file).

Example:
  >>> combined_specs("hard", "cartpole")["perturb_spec"]["max"]
  2.3
"""

from __future__ import annotations

from rwrl.domains import domain_class

#: level -> (delay actions, observations, rewards; gaussian sigma; dropped and stuck
#: observation (prob, steps); repetition (prob, steps); extra observation dims).
LEVELS = {
    "easy": dict(delay=(3, 3, 10), sigma=0.1, runs=(0.01, 1), repetition=(1.0, 1), dims=10),
    "medium": dict(delay=(6, 6, 20), sigma=0.3, runs=(0.05, 5), repetition=(1.0, 2), dims=20),
    "hard": dict(delay=(9, 9, 40), sigma=1.0, runs=(0.1, 10), repetition=(1.0, 3), dims=50),
}


def combined_specs(level: str, domain: str) -> dict[str, dict]:
    """Return the delay, noise, perturbation and dimensionality spec dicts of a level.

    Args:
      level: 'easy', 'medium' or 'hard'.
      domain: the domain name; its ``COMBINED_PERTURBATION`` gives the
        perturbed parameter and its range.

    Returns:
      {'delay_spec': ..., 'noise_spec': ..., 'perturb_spec': ...,
      'dimensionality_spec': ...}, in the published dictionary format.
    """
    if level not in LEVELS:
        raise ValueError(f"combined_challenge = {level!r} is unknown: allowed {list(LEVELS)}")
    try:
        cls = domain_class(domain)
    except ValueError as err:
        raise ValueError(f"combined_challenge: {err}") from None
    row = LEVELS[level]
    actions, observations, rewards = row["delay"]
    prob, steps = row["runs"]
    run = {"enable": True, "observations_prob": prob, "observations_steps": steps}
    param, ranges = cls.COMBINED_PERTURBATION
    lo, hi, std = ranges[level]
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
