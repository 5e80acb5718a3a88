"""The five domains of the real-world suite, on dm_control's models."""

from __future__ import annotations

import importlib

from rwrl.domains.base import Constraint, Domain, PerturbParam

#: domain name -> "module:Class"; modules are imported on first use.
DOMAINS = {
    "cartpole": "rwrl.domains.cartpole:Cartpole",
    "walker": "rwrl.domains.walker:Walker",
    "quadruped": "rwrl.domains.quadruped:Quadruped",
    "humanoid": "rwrl.domains.humanoid:Humanoid",
    "manipulator": "rwrl.domains.manipulator:Manipulator",
}


def domain_class(domain_name: str) -> type[Domain]:
    """Return the Domain subclass of ``domain_name``, or raise naming the allowed ones."""
    if domain_name not in DOMAINS:
        raise ValueError(f"unknown domain {domain_name!r}: allowed {sorted(DOMAINS)}")
    module, cls = DOMAINS[domain_name].split(":")
    return getattr(importlib.import_module(module), cls)


def make_domain(domain_name: str, task_name: str) -> Domain:
    """Return the domain object of one task."""
    return domain_class(domain_name)(task_name)


def available_tasks() -> list[tuple[str, str]]:
    """Return every (domain, task) pair whose domain module is present."""
    pairs = []
    for name in DOMAINS:
        try:
            cls = domain_class(name)
        except ImportError:
            continue
        pairs.extend((name, task) for task in cls.TASKS)
    return pairs


def env_names() -> dict[str, tuple[str, str]]:
    """Return {``<domain>-<task>``: (domain, task)} of every available task (dashes for underscores)."""
    return {f"{d}-{t.replace('_', '-')}": (d, t) for d, t in available_tasks()}


__all__ = ["Constraint", "Domain", "PerturbParam", "DOMAINS", "domain_class", "env_names", "make_domain",
           "available_tasks"]
