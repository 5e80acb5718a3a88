"""Pixel observations: the options, their checks, and the camera of a batched env.

``observation_mode='pixels'`` gives the agent a (H, W, 3k) uint8 image,
``'pixels_state'`` a Dict of that image ('pixels') and the flat state
('state'); ``rwrl.load(..., pixels=True)`` adds the 'pixels' key to the
dm_env observation as dm_control's ``pixels.Wrapper`` does. The options
(``pixels_width``, ``pixels_height``, ``pixels_camera``, ``frame_stack``) are
checked here into a ``PixelOptions``; the frames are rendered by
``rwrl.envs.render.BatchRenderer`` and run through the challenges' pixel path
and the frame stack by ``rwrl.challenges.pipeline.ChallengeEnv``.

Defaults are those of dm_control's pixel benchmarks (PlaNet, DrQ, DrQ-v2,
Dreamer): 84 x 84 images, the domain's ``PIXELS_CAMERA`` (camera 0, camera 2
for quadruped: DrQ ``train.py``, DrQ-v2 ``dmc.py``), one frame (DrQ stacks
3: ``frame_stack=3``).

Example:
  >>> pixel_options("pixels", None, 64, None, 3)
  PixelOptions(width=84, height=64, camera=None, frame_stack=3, with_state=False)
  >>> pixel_options("flat", None, None, None, None) is None
  True
"""

from __future__ import annotations

import dataclasses
import numbers
from typing import Any, Mapping

import numpy as np

from rwrl.challenges.registry import CHALLENGES
from rwrl.tasks.facts import TaskFacts

#: the observation modes that render: the image alone, or the image and the flat state.
PIXEL_MODES = ("pixels", "pixels_state")
#: image width and height by default (pixels), as dm_control's pixel benchmarks.
DEFAULT_SIZE = 84
#: most frames in a stack (channels 3k).
MAX_FRAME_STACK = 64


@dataclasses.dataclass(frozen=True)
class PixelOptions:
    """How an env renders its pixel observation.

    Attributes:
      width, height: image size in pixels (checked against the model's
        offscreen buffer when the env is made).
      camera: camera id or name; None: the domain's ``PIXELS_CAMERA``.
      frame_stack: the last k frames on the channel axis (H, W, 3k), oldest first.
      with_state: the agent also gets the flat state ('pixels_state'; dm_env:
        ``pixels_only=False``).
    """

    width: int = DEFAULT_SIZE
    height: int = DEFAULT_SIZE
    camera: int | str | None = None
    frame_stack: int = 1
    with_state: bool = False


def _check_frame_stack(value) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) \
            or not 1 <= value <= MAX_FRAME_STACK:
        raise ValueError(f"frame_stack = {value!r} is not allowed: give an integer in "
                         f"[1, {MAX_FRAME_STACK}]")
    return int(value)


def _check_camera(value) -> int | str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise ValueError(f"pixels_camera = {value!r} is not allowed: give a camera id, a "
                         "camera name or None (the domain's default camera)")
    return int(value)


def pixel_options(observation_mode: str, width, height, camera, frame_stack) -> PixelOptions | None:
    """Return the ``PixelOptions`` of an env's keyword arguments, or None when it does not render.

    ``width``, ``height``, ``camera``, ``frame_stack``: None for their defaults
    (84, 84, the domain's camera, 1); given with a mode that does not render,
    a ValueError naming the option. Sizes are checked against the model later.
    """
    if observation_mode not in PIXEL_MODES:
        given = {"pixels_width": width, "pixels_height": height, "pixels_camera": camera,
                 "frame_stack": frame_stack}
        for name, value in given.items():
            if value is not None:
                raise ValueError(f"{name} = {value!r} is for the pixel observation modes "
                                 f"{list(PIXEL_MODES)}, not observation_mode "
                                 f"{observation_mode!r}")
        return None
    return PixelOptions(DEFAULT_SIZE if width is None else width,
                        DEFAULT_SIZE if height is None else height,
                        _check_camera(camera),
                        1 if frame_stack is None else _check_frame_stack(frame_stack),
                        with_state=observation_mode == "pixels_state")


def dm_env_pixel_options(pixels: bool, pixels_only: bool, width, height, camera, frame_stack,
                         render_kwargs: Mapping[str, Any] | None) -> PixelOptions | None:
    """Return the ``PixelOptions`` of ``rwrl.load``'s arguments (None: no pixels).

    ``render_kwargs`` is dm_control's ``pixels.Wrapper`` argument (keys
    'height', 'width', 'camera_id'), accepted for porting; each of its keys
    sets the option of the same meaning.
    """
    if render_kwargs is not None:
        unknown = sorted(set(render_kwargs) - {"height", "width", "camera_id"})
        if unknown:
            raise ValueError(f"render_kwargs key(s) {unknown} are not allowed: allowed "
                             "'height', 'width', 'camera_id'")
        width = render_kwargs.get("width", width)
        height = render_kwargs.get("height", height)
        camera = render_kwargs.get("camera_id", camera)
    if not isinstance(pixels, (bool, np.bool_)) or not isinstance(pixels_only, (bool, np.bool_)):
        raise ValueError(f"pixels = {pixels!r}, pixels_only = {pixels_only!r}: give True or False")
    mode = ("pixels" if pixels_only else "pixels_state") if pixels else "flat"
    if not pixels and render_kwargs is not None:
        raise ValueError("render_kwargs is for pixels=True")
    return pixel_options(mode, width, height, camera, frame_stack)


def check_pixel_challenges(options: PixelOptions, challenges: Mapping[str, Any],
                           facts: TaskFacts) -> None:
    """Raise a ValueError if the agent gets no state and a challenge that acts on it alone is on.

    Only challenges given by their own keyword are refused
    (``Challenge.state_observation_only``: ``dimensionality_spec``); those a
    bundle sets (``combined_challenge``'s extra dimensions) stay in the state
    part, which the agent does not get.
    """
    if options.with_state:
        return
    for keyword, value in challenges.items():
        challenge = CHALLENGES.get(keyword)
        if challenge is None or not challenge.state_observation_only \
                or not isinstance(value, Mapping):
            continue  # a spec of the wrong type is the challenge parser's error
        if challenge.parse(value, facts) is not None:
            raise ValueError(f"{keyword} acts on the state observation only, which "
                             "observation_mode='pixels' does not return: use "
                             "observation_mode='pixels_state' (rwrl.load: pixels_only=False) "
                             f"or leave {keyword} out")
