"""Runs: the typed run config, the actor-learner loop, checkpoints and resume.

Example::

    from rwrl.experiments import RunConfig, start_run, resume_run
    start_run(RunConfig(agent="d4pg", env="cartpole-swingup", steps=200_000), "runs/swingup")
    resume_run("runs/swingup")  # after a kill: continues to the same total step count
"""

from rwrl.experiments.config import ConfigError, RunConfig
from rwrl.experiments.run import RunHooks, is_finished, resume_run, start_run

__all__ = ["ConfigError", "RunConfig", "RunHooks", "is_finished", "resume_run", "start_run"]
