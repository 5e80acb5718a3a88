"""Runs: the typed run config, the actor-learner loop, checkpoints and resume.

Example::

    from rwrl.experiments import RunConfig, start_run, resume_run
    start_run(RunConfig(agent="d4pg", env="cartpole-swingup", steps=200_000), "runs/swingup")
    resume_run("runs/swingup")  # after a kill: continues to the same total step count

The names are imported on first use (PEP 562), so that ``rwrl.experiments.config``
(read by the CLI to build its options) does not pull in JAX.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ConfigError": "rwrl.experiments.config",
    "RunConfig": "rwrl.experiments.config",
    "RunHooks": "rwrl.experiments.run",
    "is_finished": "rwrl.experiments.run",
    "resume_run": "rwrl.experiments.run",
    "start_run": "rwrl.experiments.run",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'rwrl.experiments' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)


def __dir__() -> list[str]:
    return __all__
