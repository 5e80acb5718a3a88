"""Tiny real Minari datasets for the offline tests (written under a tmp MINARI_DATASETS_PATH).

``collect_cartpole``: episodes of the real ``rwrl/cartpole-swingup-v0`` with
a short time limit, recorded by ``minari.DataCollector`` (infos included).
``buffers_dataset``: a dataset built from hand-made episode buffers
(``minari.create_dataset_from_buffers``), for cases the suite's tasks never
produce (a termination) and for toy tasks with a known optimal action.
"""

from __future__ import annotations

import warnings
from typing import Callable

import gymnasium
import numpy as np


def collect_cartpole(dataset_id: str, episodes: int, time_limit: int,
                     policy: Callable[[np.ndarray, np.random.Generator], np.ndarray] | None = None,
                     seed: int = 0):
    """Record ``episodes`` episodes of cartpole-swingup (random actions unless ``policy``)."""
    import minari
    import rwrl  # noqa: F401  (registers the ids)
    env = minari.DataCollector(gymnasium.make("rwrl/cartpole-swingup-v0", time_limit=time_limit),
                               record_infos=True)
    rng = np.random.default_rng(seed)
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed + episode)
        done = False
        while not done:
            action = (rng.uniform(-1, 1, size=1) if policy is None else policy(obs, rng)).astype(np.float32)
            obs, _, terminated, truncated, _ = env.step(action)
            done = terminated or truncated
    with warnings.catch_warnings():  # minari asks for an author, a permalink, ...
        warnings.simplefilter("ignore")
        return env.create_dataset(dataset_id, algorithm_name="random" if policy is None else "policy")


def buffers_dataset(dataset_id: str, episodes: list[dict], obs_size: int, action_size: int,
                    action_bound: float = 1.0):
    """Write a dataset from episodes given as dicts of arrays (observations has T + 1 rows)."""
    import minari
    from minari.data_collector import EpisodeBuffer
    buffers = [EpisodeBuffer(id=i, observations=np.asarray(e["observations"], np.float32),
                             actions=np.asarray(e["actions"], np.float32),
                             rewards=np.asarray(e["rewards"], np.float64),
                             terminations=np.asarray(e["terminations"], bool),
                             truncations=np.asarray(e["truncations"], bool), infos={})
               for i, e in enumerate(episodes)]
    obs_space = gymnasium.spaces.Box(-np.inf, np.inf, (obs_size,), np.float32)
    action_space = gymnasium.spaces.Box(-action_bound, action_bound, (action_size,), np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return minari.create_dataset_from_buffers(dataset_id, buffers, observation_space=obs_space,
                                                  action_space=action_space, algorithm_name="toy")
