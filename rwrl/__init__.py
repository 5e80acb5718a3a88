"""rwrl: the real-world reinforcement-learning challenge suite.

``import rwrl`` registers the Gymnasium ids ``rwrl/<domain>-<task>-v0``;
``rwrl.load(domain_name, task_name, ...)`` returns a dm_env environment.
"""

import os

# No display on servers: render offscreen unless the user chose a backend.
os.environ.setdefault("MUJOCO_GL", "egl")

from rwrl.envs.registration import register_envs  # noqa: E402
from rwrl.envs.dm_env_adapter import load  # noqa: E402

register_envs()

__version__ = "0.1.0"
__all__ = ["load", "register_envs"]
