"""Gymnasium registration: every task, ``rwrl/<domain>-<task>-v0``, and the rate-control family.

The rate-control family (``rwrl.video``: video encoding with the real x264, no
MuJoCo) has one id, ``RATECONTROL_ID``; its entry points are in
``rwrl.envs.ratecontrol``, imported only when an env is made.
"""

from __future__ import annotations

import gymnasium

from rwrl.domains import available_tasks
from rwrl.domains.names import env_id, env_id_of

#: the Gymnasium id of the rate-control family.
RATECONTROL_ID = env_id_of("ratecontrol")


def register_envs() -> list[str]:
    """Register (once) the single and vector entry points of every env; return the ids.

    The MuJoCo tasks first (``available_tasks`` order), then ``RATECONTROL_ID``.
    """
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
    ids.append(RATECONTROL_ID)
    if RATECONTROL_ID not in gymnasium.registry:
        gymnasium.register(
            id=RATECONTROL_ID,
            entry_point="rwrl.envs.ratecontrol:make_ratecontrol_env",
            vector_entry_point="rwrl.envs.ratecontrol:make_ratecontrol_vector_env",
            # an episode is one clip: the env truncates at the clip's last frame
            max_episode_steps=None,
            disable_env_checker=True,
        )
    return ids
