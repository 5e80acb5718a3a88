"""Video clips rendered from the suite's tasks, for the rate-control corpus (``rwrl.video.corpus``).

Each clip films one or two tasks through their Gymnasium envs
(``render_mode='rgb_array'``) from one of the domain's cameras, under a random
policy (uniform actions every step: jerky, often falling bodies) or a smooth
one (a sinusoid per action, 0.3 to 2 Hz). A clip of two shots joins them with a
scene cut between a third and two thirds of its length. Frames are sampled at
the clip's rate: at 30 frames/s, cartpole (100 control steps/s) advances 3
steps a frame, walker and humanoid (40/s) 1.

Rendered content adds what the procedural kinds lack: articulated bodies with
shading and shadows, a textured floor seen in perspective, a tracking camera
(the floor sliding under a static body) and egocentric views. It is still
synthetic: no sensor noise, no natural textures, simulated motion (see
``rwrl.video.corpus``). This module sits on the datasets floor because
``rwrl.video`` may not import the tasks; ``build_corpus(rendered=rendered_clips)``
joins them.

Cost: one frame at 176x144 takes about 40 to 80 ms to render (software EGL on
2 CPU cores, most in the renderer), so a 60-frame clip about 3 to 5 s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import gymnasium
import numpy as np

from rwrl.core.seeding import stream_id
from rwrl.domains.names import env_id
from rwrl.tasks.task import MAX_TIME_LIMIT

#: the cameras of each domain's model (by name): a clip's camera is drawn from these.
CAMERAS = {
    "cartpole": ("fixed", "lookatcart"),
    "walker": ("side", "back"),
    "quadruped": ("global", "x", "y", "egocentric"),
    "humanoid": ("back", "side", "egocentric"),
    "manipulator": ("fixed", "hand"),
}
#: action policies: uniform random actions each step, or a smooth sinusoid per action.
POLICIES = ("random", "sine")
#: control steps run, unfilmed, before a shot starts: drawn in [0, this), so that shots
#: start in varied states, not only at the reset pose.
MAX_WARMUP_STEPS = 50


@dataclass(frozen=True)
class Shot:
    """One continuous shot: a task filmed under a policy."""

    domain: str
    task: str
    policy: str


@dataclass(frozen=True)
class RenderRecipe:
    """A rendered clip's recipe: one shot, or two joined by a scene cut."""

    label: str
    shots: tuple[Shot, ...]

    @property
    def kind(self) -> str:
        return "cut" if len(self.shots) > 1 else self.shots[0].domain


#: rendered clip i follows RENDER_RECIPES[i % len(RENDER_RECIPES)], with its own random stream.
RENDER_RECIPES = (
    RenderRecipe("walker-walk", (Shot("walker", "walk", "sine"),)),
    RenderRecipe("quadruped-run", (Shot("quadruped", "run", "random"),)),
    RenderRecipe("humanoid-walk", (Shot("humanoid", "walk", "random"),)),
    RenderRecipe("cartpole-swingup", (Shot("cartpole", "swingup", "sine"),)),
    RenderRecipe("cut-walker-quadruped", (Shot("walker", "run", "random"),
                                          Shot("quadruped", "walk", "sine"))),
    RenderRecipe("cut-humanoid-cartpole", (Shot("humanoid", "stand", "sine"),
                                           Shot("cartpole", "balance", "random"))),
)
#: rendered clips of a default corpus: each recipe once.
DEFAULT_COUNT = len(RENDER_RECIPES)


@dataclass(frozen=True)
class _ShotPlan:
    """Everything random about a shot, drawn before any rendering."""

    shot: Shot
    camera: str
    reset_seed: int
    warmup: int
    action_seed: int
    frames: int


def _plan(index: int, seed: int, frames: int) -> tuple[str, str, list[_ShotPlan]]:
    """Return (name, kind, shot plans) of rendered clip ``index`` of ``seed``."""
    recipe = RENDER_RECIPES[index % len(RENDER_RECIPES)]
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(stream_id("video/rendered"), index)))
    lengths = [frames]
    if len(recipe.shots) == 2 and frames >= 2:
        cut = int(rng.integers(-(-frames // 3), max(1, 2 * frames // 3) + 1))
        lengths = [cut, frames - cut]
    plans = [_ShotPlan(shot, str(rng.choice(CAMERAS[shot.domain])), int(rng.integers(2**31)),
                       int(rng.integers(MAX_WARMUP_STEPS)), int(rng.integers(2**31)), length)
             for shot, length in zip(recipe.shots, lengths)]
    cameras = "-".join(plan.camera for plan in plans)
    return f"r{index:02d}-{recipe.label}-{cameras}", recipe.kind, plans


def _film(plan: _ShotPlan, width: int, height: int, fps: int) -> np.ndarray:
    """Return (plan.frames, height, width, 3) uint8 frames of one shot."""
    shot = plan.shot
    # the longest episode: a shot must not be truncated (and reset) while it is filmed
    env = gymnasium.make(env_id(shot.domain, shot.task), render_mode="rgb_array",
                         render_width=width, render_height=height, camera=plan.camera,
                         time_limit=MAX_TIME_LIMIT)
    try:
        # a frame every `per_frame` control steps keeps simulated time at the clip's rate
        per_frame = max(1, round(env.metadata["render_fps"] / fps))
        env.reset(seed=plan.reset_seed)
        act = _policy(shot.policy, env.action_space, env.metadata["render_fps"], plan.action_seed)
        out = np.empty((plan.frames, height, width, 3), np.uint8)
        for step in range(plan.warmup + plan.frames * per_frame):
            truncated = env.step(act(step))[3]
            if truncated:  # the physics diverged (the time limit is out of reach): go on afresh
                env.reset(seed=(plan.reset_seed + step) % 2**31)
            if step >= plan.warmup and (step - plan.warmup + 1) % per_frame == 0:
                out[(step - plan.warmup) // per_frame] = env.render()
        return out
    finally:
        env.close()


def _policy(name: str, space: gymnasium.spaces.Box, steps_per_second: float,
            seed: int) -> Callable[[int], np.ndarray]:
    """Return step -> action of the policy ``name`` (``POLICIES``) in the action box."""
    rng = np.random.default_rng(seed)
    low, high = space.low.astype(np.float64), space.high.astype(np.float64)
    if name == "random":
        return lambda step: rng.uniform(low, high).astype(np.float32)
    size = low.shape
    freq, phase = rng.uniform(0.3, 2.0, size), rng.uniform(0, 2 * np.pi, size)
    amplitude = rng.uniform(0.5, 1.0, size)
    mid, half = (low + high) / 2, (high - low) / 2
    return lambda step: (mid + half * amplitude * np.sin(
        2 * np.pi * freq * step / steps_per_second + phase)).astype(np.float32)


def render_clip(index: int, seed: int = 0, *, frames: int = 60, width: int = 176,
                height: int = 144, fps: int = 30) -> tuple[str, str, np.ndarray]:
    """Return (name, kind, frames (T, H, W, 3) uint8) of rendered clip ``index`` of ``seed``."""
    name, kind, plans = _plan(index, seed, frames)
    return name, kind, np.concatenate([_film(plan, width, height, fps) for plan in plans])


def rendered_clips(seed: int = 0, frames: int = 60, width: int = 176, height: int = 144,
                   fps: int = 30, count: int = DEFAULT_COUNT
                   ) -> list[tuple[str, str, Callable[[], np.ndarray]]]:
    """Return the rendered clips 0 .. count-1 of ``seed`` as ``rwrl.video.corpus.build_corpus``
    takes them: (name, kind, a function rendering the frames (T, H, W, 3) uint8).

    Names and kinds cost nothing; a clip is rendered only when its function is
    called (``build_corpus`` skips the clips it has already). Clip i is the same
    whatever ``count`` is.

    Example::

        from functools import partial
        build_corpus(root, rendered=partial(rendered_clips, count=4))
    """
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 0:
        raise ValueError(f"count = {count!r} is not allowed: give an int >= 0")
    clips = []
    for index in range(count):
        name, kind, _ = _plan(index, seed, frames)
        clips.append((name, kind, lambda index=index: render_clip(
            index, seed, frames=frames, width=width, height=height, fps=fps)[2]))
    return clips


__all__ = ["CAMERAS", "DEFAULT_COUNT", "POLICIES", "RENDER_RECIPES", "RenderRecipe", "Shot",
           "render_clip", "rendered_clips"]
