"""TaskFacts: what a challenge may know of a task's domain, built in one place.

A challenge knows nothing of a domain beyond these facts (DESIGN.md, "Layers"):
the spec parsers check names and ranges against them, and the combined
challenges read their perturbation from them. ``domain_facts`` is the only
builder; ``BatchedTask`` and the sweep validator both call it.

Example:
  >>> from rwrl.domains import make_domain
  >>> facts = domain_facts(make_domain("cartpole", "swingup"))
  >>> facts.constraint_names, facts.combined_perturbation[0]
  (('slider_pos', 'slider_accel', 'balance_velocity'), 'pole_length')
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:
    from rwrl.domains.base import Domain

#: (parameter, level -> (min, max, std)) of the combined challenges.
CombinedPerturbation = tuple[str, Mapping[str, tuple[float, float, float]]]


@dataclasses.dataclass(frozen=True)
class TaskFacts:
    """The domain facts a challenge needs to know of a task.

    Attributes:
      domain: domain name ('cartpole').
      constraint_names: the built-in constraints, in the published order.
      perturb_params: name -> ``rwrl.domains.PerturbParam`` (start, min, max,
        std), in reference order.
      action_roc_limit: the limit of the opt-in ``action_roc`` constraint at
        safety_coeff 1.
      combined_perturbation: the parameter the combined challenges perturb and
        its (min, max, std) per level ('easy', 'medium', 'hard'); None: the
        domain has none.
    """

    domain: str
    constraint_names: tuple[str, ...]
    perturb_params: Mapping[str, Any]
    action_roc_limit: float = float("inf")
    combined_perturbation: CombinedPerturbation | None = None


def domain_facts(domain: Domain) -> TaskFacts:
    """Return the ``TaskFacts`` of a domain object (``rwrl.domains.make_domain``)."""
    return TaskFacts(domain.name, tuple(c.name for c in domain.constraints()),
                     dict(domain.perturb_params()), domain.ACTION_ROC_LIMIT,
                     domain.COMBINED_PERTURBATION)
