"""The five domains of the real-world suite, on dm_control's models.

The registry below names each domain's class and its tasks, so that listing and
registering the tasks (``import rwrl``) imports no domain module, nor dm_control:
a domain module loads when a task of it is made. Each class's ``TASKS`` holds the
same names with their settings (a test checks that the two agree).
"""

from __future__ import annotations

import importlib
from typing import Any

#: domain name -> "module:Class"; modules are imported on first use.
DOMAINS = {
    "cartpole": "rwrl.domains.cartpole:Cartpole",
    "walker": "rwrl.domains.walker:Walker",
    "quadruped": "rwrl.domains.quadruped:Quadruped",
    "humanoid": "rwrl.domains.humanoid:Humanoid",
    "manipulator": "rwrl.domains.manipulator:Manipulator",
}

#: domain name -> its task names, in the order the domain's ``TASKS`` lists them.
DOMAIN_TASKS = {
    "cartpole": ("swingup", "balance"),
    "walker": ("stand", "walk", "run"),
    "quadruped": ("walk", "run"),
    "humanoid": ("stand", "walk", "run"),
    "manipulator": ("bring_ball", "bring_peg", "insert_ball", "insert_peg"),
}

#: names re-exported from ``rwrl.domains.base``, loaded on first use (it imports MuJoCo).
_BASE_NAMES = ("Constraint", "Domain", "PerturbParam")


def __getattr__(name: str) -> Any:
    if name in _BASE_NAMES:
        return getattr(importlib.import_module("rwrl.domains.base"), name)
    raise AttributeError(f"module 'rwrl.domains' has no attribute {name!r}")


def domain_class(domain_name: str):
    """Return the Domain subclass of ``domain_name``, or raise naming the allowed ones."""
    if domain_name not in DOMAINS:
        raise ValueError(f"unknown domain {domain_name!r}: allowed {sorted(DOMAINS)}")
    module, cls = DOMAINS[domain_name].split(":")
    return getattr(importlib.import_module(module), cls)


def make_domain(domain_name: str, task_name: str):
    """Return the domain object of one task."""
    return domain_class(domain_name)(task_name)


def available_tasks() -> list[tuple[str, str]]:
    """Return every (domain, task) pair of the registry, without importing a domain module."""
    return [(domain, task) for domain, tasks in DOMAIN_TASKS.items() for task in tasks]


def env_names() -> dict[str, tuple[str, str]]:
    """Return {``<domain>-<task>``: (domain, task)} of every task (``rwrl.domains.names``)."""
    from rwrl.domains.names import env_name
    return {env_name(d, t): (d, t) for d, t in available_tasks()}


__all__ = ["Constraint", "Domain", "PerturbParam", "DOMAINS", "DOMAIN_TASKS", "domain_class",
           "env_names", "make_domain", "available_tasks"]
