"""Build the batched environment of a task with its challenges."""

from __future__ import annotations

from typing import Any

from rwrl.challenges.pipeline import ChallengeEnv
from rwrl.challenges.registry import keywords
from rwrl.domains.names import published_task
from rwrl.envs.pixels import PixelOptions, check_pixel_challenges
from rwrl.envs.render import PIXELS_NAMES, BatchRenderer
from rwrl.tasks.task import BatchedTask


def make_batched_env(domain_name: str, task_name: str, num_envs: int = 1, *,
                     num_threads: int | None = None, time_limit: int | None = None,
                     pixels: PixelOptions | None = None, **challenges: Any):
    """Return a ``BatchedEnv`` of ``num_envs`` envs of one task with its challenges.

    Args:
      domain_name, task_name: the task ('cartpole', 'swingup').
      num_envs: N.
      num_threads: engine threads.
      time_limit: episode length in control steps (default 1000).
      pixels: the env also observes pixels (``rwrl.envs.pixels``): a
        ``ChallengeEnv`` with a camera (even without challenges), whose GL
        context is made here so that a machine that cannot render fails now;
        None: state only.
      **challenges: the challenge specs (``rwrl.challenges.registry.keywords()``);
        an unknown keyword argument raises a TypeError (Python's convention, which
        frameworks such as TorchRL rely on to drop optional keywords) naming it and
        the allowed ones; a bad value of a known one raises a ValueError.
    """
    unknown = sorted(set(challenges) - set(keywords()))
    if unknown:
        # Python's own wording ("unexpected keyword argument 'x'"), which TorchRL matches
        names = ", ".join(repr(name) for name in unknown)
        raise TypeError(f"unexpected keyword argument {names}: allowed "
                        f"{sorted(keywords())} and num_threads, time_limit")
    task = BatchedTask(domain_name, published_task(task_name), num_envs,
                       num_threads=num_threads, time_limit=time_limit)
    active = {k: v for k, v in challenges.items() if v is not None}
    if pixels is None:
        if not active:  # no challenge: the adapters drive the task directly, at no cost
            return task
        return ChallengeEnv(task, **active)
    check_pixel_challenges(pixels, active, task.facts)
    camera = BatchRenderer(task, pixels.width, pixels.height,
                           task.domain.PIXELS_CAMERA if pixels.camera is None else pixels.camera,
                           names=PIXELS_NAMES)
    env = ChallengeEnv(task, camera=camera, frame_stack=pixels.frame_stack, **active)
    camera.open()
    return env
