"""rwrl: the real-world reinforcement-learning challenge suite.

``import rwrl`` registers the Gymnasium ids ``rwrl/<domain>-<task>-v0``;
``rwrl.load(domain_name, task_name, ...)`` returns a dm_env environment, as
the published suite's ``realworldrl_suite.environments.load`` does.

Registering reads the task names from the domain registry and imports no
domain module: ``import rwrl`` (and so ``import rwrl.core.seeding``) loads
gymnasium, not MuJoCo's models, dm_control, JAX or pandas; an env's layers load
when it is made, agents, runs and reports when used.
"""

import os

# No display on servers: render offscreen unless the user chose a backend.
os.environ.setdefault("MUJOCO_GL", "egl")

from rwrl.envs.registration import register_envs  # noqa: E402

register_envs()

__version__ = "0.1.0"
__all__ = ["load", "register_envs"]


def load(domain_name: str, task_name: str, *, log_output: str | None = None, **kwargs):
    """Return a dm_env environment of one task (``rwrl.envs.dm_env_adapter.load``).

    Args:
      domain_name, task_name, **kwargs: as ``rwrl.envs.dm_env_adapter.load``
        (seed or random, task_kwargs, time_limit, environment_kwargs, the pixel
        observation's pixels, pixels_only, pixels_width, ..., and the challenge specs).
      log_output: path of a JSON-lines file receiving one row per finished
        episode (``rwrl.metrics.recorder.DmEnvEpisodeRecorder``).
    """
    from rwrl.envs import dm_env_adapter
    env = dm_env_adapter.load(domain_name, task_name, **kwargs)
    if log_output is None:
        return env
    from rwrl.metrics.recorder import DmEnvEpisodeRecorder  # metrics sits above envs
    return DmEnvEpisodeRecorder(env, log_output)
