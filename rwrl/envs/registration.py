"""Gymnasium registration of every task: ``rwrl/<domain>-<task>-v0``."""

from __future__ import annotations

import gymnasium

from rwrl.domains import available_tasks
from rwrl.domains.names import env_id


def register_envs() -> list[str]:
    """Register (once) the single and vector entry points of every task; return the ids."""
    ids = []
    for domain_name, task_name in available_tasks():
        name = env_id(domain_name, task_name)
        ids.append(name)
        if name in gymnasium.registry:
            continue
        gymnasium.register(
            id=name,
            entry_point="rwrl.envs.gym_env:RwrlEnv",
            vector_entry_point="rwrl.envs.vector_env:RwrlVectorEnv",
            kwargs={"domain_name": domain_name, "task_name": task_name},
            # The time limit lives in the env (a truncation at 1000 steps), so
            # no TimeLimit wrapper is added; pass time_limit= to change it.
            max_episode_steps=None,
            disable_env_checker=True,
        )
    return ids
