"""The names of a task, written once: its env name, its Gymnasium id, and back.

A task is (domain, task), e.g. ('manipulator', 'bring_ball'). Its env name is
``<domain>-<task>`` with dashes for underscores ('manipulator-bring-ball'),
the form run configs, sweep files and dataset ids use; its Gymnasium id is
``rwrl/<env name>-v0``. The published suite names tasks 'realworld_<task>';
``published_task`` accepts that form too.

Example:
  >>> env_id("manipulator", "bring_ball")
  'rwrl/manipulator-bring-ball-v0'
  >>> split_env_name("manipulator-bring-ball")
  ('manipulator', 'bring_ball')
  >>> env_id_of("cartpole-swingup"), published_task("realworld_swingup")
  ('rwrl/cartpole-swingup-v0', 'swingup')
"""

from __future__ import annotations

#: namespace and version of every Gymnasium id of rwrl.
ID_PREFIX, ID_SUFFIX = "rwrl/", "-v0"
#: the published suite's prefix of task names.
PUBLISHED_PREFIX = "realworld_"


def env_name(domain_name: str, task_name: str) -> str:
    """Return ``<domain>-<task>`` (underscores of the task become dashes)."""
    return f"{domain_name}-{task_name.replace('_', '-')}"


def env_id(domain_name: str, task_name: str) -> str:
    """Return the Gymnasium id of a task, ``rwrl/<domain>-<task>-v0``."""
    return env_id_of(env_name(domain_name, task_name))


def env_id_of(name: str) -> str:
    """Return the Gymnasium id of an env name (``cartpole-swingup`` -> ``rwrl/cartpole-swingup-v0``)."""
    return f"{ID_PREFIX}{name}{ID_SUFFIX}"


def split_env_name(name: str) -> tuple[str, str]:
    """Return (domain, task) of an env name, or raise a ValueError naming the allowed ones."""
    from rwrl.domains import env_names
    names = env_names()
    if name not in names:
        raise ValueError(f"unknown env {name!r}; allowed: {sorted(names)}")
    return names[name]


def published_task(task_name: str) -> str:
    """Return the task name without the published suite's 'realworld_' prefix."""
    return task_name.removeprefix(PUBLISHED_PREFIX)


def domain_of(name: str) -> str:
    """Return the domain of an env name (domain names hold no dash)."""
    return name.split("-", 1)[0]
