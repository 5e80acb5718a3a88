"""The rate-control family's entry points: ``rwrl/ratecontrol-v0`` (Gymnasium, vector, dm_env).

``rwrl.video.env.RateControlEnv`` (a ``BatchedEnv`` without MuJoCo) behind the
same adapters as the MuJoCo tasks: ``RwrlEnv.from_batched`` and
``RwrlVectorEnv.from_batched``, and ``load_dm_env`` for dm_env. The clips come
from a corpus:

* ``corpus='procedural'`` (default): the procedural clips of
  ``rwrl.video.corpus.procedural_corpus`` built in memory (no files), of
  ``corpus_seed``, ``clip_count`` clips of ``frames`` frames of ``width`` x
  ``height`` (QCIF, 60 frames, 16 clips by default), kept in memory for the
  next env of the same arguments (building the default corpus takes seconds);
* ``corpus=<folder>``: a corpus built by ``rwrl video corpus`` (its manifest's
  clips of ``split``).

``split``: 'train' (default) or 'test', the corpus's fixed split by clip
(``rwrl.video.corpus.assign_splits``).

Other keyword arguments go to ``RateControlEnv`` (target_kbps, target_qps,
reward, preset, lookahead, reference_qp, keyint, feature_cache_dir) and to the
adapters (observation_mode, info_layout; the vector env's autoreset_mode).
Rendering is not offered (the observation is not an image of the clip).
``RUN_KWARGS`` are the ones a training run may set (``rwrl run --env ratecontrol
--env-kwarg KEY=VALUE``), ``check_run_kwargs`` checks their names.

Example::

    import gymnasium, rwrl
    env = gymnasium.make("rwrl/ratecontrol-v0", frames=8, width=64, height=48)
    obs, info = env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step([32.0])  # reward: PSNR (dB)
    info["budget"]["bits"], info["budget"]["budget"]
"""

from __future__ import annotations

import functools
import inspect
import os
from typing import Any, Mapping

from gymnasium.vector import AutoresetMode

from rwrl.core.seeding import check_seed
from rwrl.envs.dm_env_adapter import RwrlDmEnv
from rwrl.envs.gym_env import RwrlEnv
from rwrl.envs.registration import RATECONTROL_ID
from rwrl.envs.vector_env import RwrlVectorEnv
from rwrl.video.clip import Clip
from rwrl.video.corpus import (DEFAULT_FRAMES, DEFAULT_HEIGHT, DEFAULT_NUM_PROCEDURAL,
                               DEFAULT_WIDTH, SPLITS, load_clips, procedural_corpus)
from rwrl.video.env import RateControlEnv, check_options

#: the ``corpus`` value of the in-memory procedural corpus.
PROCEDURAL = "procedural"
#: the corpus's keyword arguments (``corpus_clips``).
CORPUS_KWARGS = ("corpus", "split", "corpus_seed", "clip_count", "frames", "width", "height")
#: the keyword arguments a training run may give (``rwrl run``): the corpus's and
#: ``RateControlEnv``'s. Not the adapters' (observation_mode, info_layout,
#: autoreset_mode): the run loop needs their defaults; nor render_mode (nothing to render).
#: ``RateControlEnv``'s options (``rwrl.video.env.check_options``).
OPTION_KWARGS = tuple(inspect.signature(check_options).parameters)
RUN_KWARGS = CORPUS_KWARGS + OPTION_KWARGS + ("feature_cache_dir",)
__all__ = ["CORPUS_KWARGS", "PROCEDURAL", "RATECONTROL_ID", "RUN_KWARGS", "RateControlDmEnv",
           "check_run_kwargs", "corpus_clips", "load_dm_env", "make_ratecontrol_env",
           "make_ratecontrol_vector_env"]


@functools.lru_cache(maxsize=4)
def _procedural(seed: int, count: int, frames: int, width: int, height: int,
                split: str) -> tuple[Clip, ...]:
    clips = tuple(procedural_corpus(seed, count=count, split=split, frames=frames, width=width,
                                    height=height))
    for clip in clips:  # shared by every env made with these arguments: read-only
        for plane in (clip.y, clip.u, clip.v):
            plane.flags.writeable = False
    return clips


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split {split!r} is not allowed: one of {', '.join(SPLITS)}")


def corpus_clips(corpus: str | os.PathLike = PROCEDURAL, split: str = "train", *,
                 corpus_seed: int = 0, clip_count: int | None = None, frames: int | None = None,
                 width: int | None = None, height: int | None = None) -> list[Clip]:
    """Return the clips of ``split`` of a corpus (see the module docstring).

    ``corpus_seed``, ``clip_count``, ``frames``, ``width`` and ``height`` shape the
    procedural corpus only; given with a corpus folder they are an error.
    """
    _check_split(split)
    sizes = {"clip_count": clip_count, "frames": frames, "width": width, "height": height}
    if corpus == PROCEDURAL:
        clips = _procedural(corpus_seed,
                            DEFAULT_NUM_PROCEDURAL if clip_count is None else clip_count,
                            DEFAULT_FRAMES if frames is None else frames,
                            DEFAULT_WIDTH if width is None else width,
                            DEFAULT_HEIGHT if height is None else height, split)
    elif isinstance(corpus, (str, os.PathLike)):
        given = sorted(name for name, value in sizes.items() if value is not None)
        if given or corpus_seed != 0:
            name = given[0] if given else "corpus_seed"
            raise ValueError(f"{name} is not allowed with corpus={str(corpus)!r}: it shapes the "
                             f"procedural corpus only (a built corpus has its sizes)")
        clips = load_clips(corpus, split)
    else:
        raise ValueError(f"corpus {corpus!r} is not allowed: {PROCEDURAL!r} or the folder of "
                         f"a corpus built by `rwrl video corpus`")
    if not clips:
        raise ValueError(f"corpus {str(corpus)!r} has no clip in split {split!r}: allowed a "
                         f"corpus with at least one (more clip_count for the procedural one)")
    return list(clips)


def check_run_kwargs(kwargs: Mapping[str, Any]) -> None:
    """Raise a ValueError naming the key and the allowed ones unless ``kwargs`` are ``RUN_KWARGS``.

    Cheap: no clip is built. The env's own options are checked by value too
    (``rwrl.video.env.check_options``), the split by name; the corpus and its sizes
    where the env is made, by ``corpus_clips`` (each error one line naming the argument).
    """
    unknown = sorted(set(kwargs) - set(RUN_KWARGS))
    if unknown:
        raise ValueError(f"unknown key(s) {unknown} for {RATECONTROL_ID}: allowed {list(RUN_KWARGS)}")
    _check_split(kwargs.get("split", "train"))
    check_options(**{k: v for k, v in kwargs.items() if k in OPTION_KWARGS})


def _batched(num_envs: int, corpus, split, corpus_seed, clip_count, frames, width, height,
             env_kwargs: dict) -> RateControlEnv:
    clips = corpus_clips(corpus, split, corpus_seed=corpus_seed, clip_count=clip_count,
                         frames=frames, width=width, height=height)
    return RateControlEnv(clips, num_envs, **env_kwargs)


def _check_no_render(render_mode) -> None:
    if render_mode is not None:
        raise ValueError(f"render_mode {render_mode!r} is not allowed: the rate-control env "
                         f"has no rendering (None only)")


def make_ratecontrol_env(*, corpus: str | os.PathLike = PROCEDURAL, split: str = "train",
                         corpus_seed: int = 0, clip_count: int | None = None,
                         frames: int | None = None, width: int | None = None,
                         height: int | None = None, observation_mode: str = "flat",
                         info_layout: str = "nested", render_mode: str | None = None,
                         **env_kwargs: Any) -> RwrlEnv:
    """Return one rate-control env: ``gymnasium.make("rwrl/ratecontrol-v0", ...)``'s entry point."""
    _check_no_render(render_mode)
    batched = _batched(1, corpus, split, corpus_seed, clip_count, frames, width, height,
                       env_kwargs)
    return RwrlEnv.from_batched(batched, observation_mode=observation_mode,
                                info_layout=info_layout)


def make_ratecontrol_vector_env(num_envs: int = 1, *, corpus: str | os.PathLike = PROCEDURAL,
                                split: str = "train", corpus_seed: int = 0,
                                clip_count: int | None = None, frames: int | None = None,
                                width: int | None = None, height: int | None = None,
                                observation_mode: str = "flat", info_layout: str = "nested",
                                render_mode: str | None = None,
                                autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
                                **env_kwargs: Any) -> RwrlVectorEnv:
    """Return ``num_envs`` rate-control envs in one vector env: ``gymnasium.make_vec``'s entry."""
    _check_no_render(render_mode)
    batched = _batched(num_envs, corpus, split, corpus_seed, clip_count, frames, width, height,
                       env_kwargs)
    return RwrlVectorEnv.from_batched(batched, observation_mode=observation_mode,
                                      info_layout=info_layout, autoreset_mode=autoreset_mode)


class RateControlDmEnv(RwrlDmEnv):
    """The rate-control env behind the dm_env interface (``RwrlDmEnv``'s behaviour).

    Observations are an OrderedDict of the layout's entries; the clip's last
    frame is a termination (discount 0.0); the info of the last step is ``env.info``.
    """

    def __init__(self, batched: RateControlEnv, seed: int | None = None):
        # RwrlDmEnv.__init__ builds a MuJoCo task: set what it sets, from a batched env given
        self.batched = batched
        self._seed = check_seed(seed)
        self._reset_next_step = True
        self.info: dict = {}

    @property
    def physics(self):
        raise AttributeError("the rate-control env has no physics")

    def set_state(self, qpos, qvel) -> None:
        raise AttributeError("the rate-control env has no physics state to set")


def load_dm_env(*, seed: int | None = None, corpus: str | os.PathLike = PROCEDURAL,
                split: str = "train", corpus_seed: int = 0, clip_count: int | None = None,
                frames: int | None = None, width: int | None = None, height: int | None = None,
                **env_kwargs: Any) -> RateControlDmEnv:
    """Return a dm_env rate-control env; ``seed`` seeds its first episode (the corpus: as above)."""
    batched = _batched(1, corpus, split, corpus_seed, clip_count, frames, width, height,
                       env_kwargs)
    return RateControlDmEnv(batched, seed)
