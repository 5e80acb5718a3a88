"""Uniform random batches of n-step transitions from a Minari dataset.

The offline counterpart of :class:`rwrl.agents.replay.NStepReplay`: the same
``Transition`` batches, drawn from a fixed dataset instead of a ring buffer.

How the dataset is held: each episode's arrays are read once (one
``iterate_episodes`` pass, one dict of arrays per episode, no per-step Python
objects) into flat float32 arrays: every observation of every episode in one
(total observations, obs_size) array, every action in one (total steps,
action_size) array. Each observation is stored once, not twice as obs_tm1
and obs_t, so the memory is about 4 bytes x (obs_size + action_size) per step.
An index of valid transitions holds, per stored step, the rows of its two
observations, its n-step reward sum and its discount, all computed with numpy
at load; sampling is ``rng.integers`` plus fancy indexing.

Transition semantics (as the online replay; Pardo et al. 2018, "Time Limits
in Reinforcement Learning"): step t of an episode of T steps sums the rewards
of the k = min(n, T - t) steps to its bootstrap observation t + k,
``sum_{j<k} gamma**j r_{t+j}``, with discount ``gamma**k``. Only a
termination ends the return: if the episode terminated at its last step and
t + k = T, the discount is 0. A truncation (the time limit) is not a
termination: discount ``gamma**k`` and the bootstrap is the episode's last
observation. An episode that ends neither terminated nor truncated (a
collector stopped mid-episode) is treated as truncated, the only honest
reading. Minari stores T + 1 observations per episode (the last is the true
final one), so every step has its bootstrap observation.

Choices: ``n_step`` defaults to 1 (the offline agents here are 1-step, as the
CRR and IQL papers); any n >= 1 works. Sampling is uniform over transitions
with replacement. Actions are mapped from the dataset's Box bounds onto
[-1, 1], the agents' action range (a no-op for the rwrl tasks, whose bounds are
already [-1, 1]). Only flat Box observation and action spaces are supported.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from rwrl.agents.types import Transition


def open_dataset(dataset: Any) -> Any:
    """Return a ``minari.MinariDataset`` for a dataset, a local dataset id, or a dataset directory.

    Args:
        dataset: a ``minari.MinariDataset``; a path to a dataset directory (the
            one holding ``data/``, or ``data/`` itself); or an id of a dataset
            under ``MINARI_DATASETS_PATH`` (never downloaded).

    Raises:
        FileNotFoundError: no local dataset of that id or path.
    """
    import minari
    if isinstance(dataset, minari.MinariDataset):
        return dataset
    path = Path(dataset)
    if path.is_dir():
        data = path / "data" if (path / "data").is_dir() else path
        return minari.MinariDataset(data)
    try:
        return minari.load_dataset(str(dataset), download=False)
    except (FileNotFoundError, ValueError) as err:
        root = os.environ.get("MINARI_DATASETS_PATH", "~/.minari/datasets")
        raise FileNotFoundError(f"dataset {dataset!r}: no local dataset of that id under {root} "
                                f"and no such directory ({err})") from err


def _box_bounds(space: Any, what: str) -> tuple[np.ndarray, np.ndarray]:
    import gymnasium
    if not isinstance(space, gymnasium.spaces.Box):
        raise ValueError(f"the dataset's {what} space is {space}; only a flat Box is supported")
    return np.asarray(space.low, np.float64).ravel(), np.asarray(space.high, np.float64).ravel()


class OfflineReplay:
    """n-step transitions of a Minari dataset, sampled uniformly (see the module docstring).

    Args:
        dataset: a ``minari.MinariDataset``, a local dataset id or a dataset directory.
        n_step: steps summed into one transition before bootstrapping, >= 1.
        gamma: per-step discount in (0, 1].
    """

    def __init__(self, dataset: Any, n_step: int = 1, gamma: float = 0.99):
        if int(n_step) != n_step or n_step < 1:
            raise ValueError(f"n_step={n_step!r}: must be an integer >= 1")
        if not 0.0 < gamma <= 1.0:
            raise ValueError(f"gamma={gamma!r}: must be in (0, 1]")
        self.n_step, self.gamma = int(n_step), float(gamma)
        self.dataset = open_dataset(dataset)
        _box_bounds(self.dataset.observation_space, "observation")
        self._action_low, self._action_high = _box_bounds(self.dataset.action_space, "action")
        if not (np.all(np.isfinite(self._action_low)) and np.all(np.isfinite(self._action_high))):
            raise ValueError(f"the dataset's action space {self.dataset.action_space} must be bounded")
        self._load()

    @property
    def obs_size(self) -> int:
        return self._obs.shape[1]

    @property
    def action_size(self) -> int:
        return self._actions.shape[1]

    @property
    def num_episodes(self) -> int:
        return len(self._episode_steps)

    def __len__(self) -> int:
        """Number of transitions (one per stored step)."""
        return len(self._actions)

    def _load(self) -> None:
        """Read every episode once into the flat arrays, then build the transition index."""
        obs, actions, rewards, steps, terminated = [], [], [], [], []
        for episode in self.dataset.iterate_episodes():
            length = len(episode.actions)
            if length == 0:
                continue
            obs.append(np.asarray(episode.observations, np.float32).reshape(length + 1, -1))
            actions.append(np.asarray(episode.actions, np.float64).reshape(length, -1))
            rewards.append(np.asarray(episode.rewards, np.float64))
            steps.append(length)
            terminated.append(bool(np.asarray(episode.terminations)[-1]))
        if not steps:
            raise ValueError(f"dataset {self.dataset.spec.dataset_id!r} holds no steps")
        self._obs = np.concatenate(obs)
        scaled = 2.0 * (np.concatenate(actions) - self._action_low) / (self._action_high - self._action_low) - 1.0
        self._actions = scaled.astype(np.float32)
        self._episode_steps = np.asarray(steps, np.int64)
        self._build_index(np.concatenate(rewards), np.asarray(terminated))

    def _build_index(self, rewards: np.ndarray, terminated: np.ndarray) -> None:
        """Compute, per step, its observation rows, n-step reward sum and discount."""
        steps = self._episode_steps
        first_step = np.concatenate([[0], np.cumsum(steps)[:-1]])  # of each episode, in step rows
        episode = np.repeat(np.arange(len(steps)), steps)
        t = np.arange(len(rewards)) - first_step[episode]  # step within its episode
        left = steps[episode] - t  # steps from t to the episode's end, >= 1
        k = np.minimum(self.n_step, left)
        reward_sum = np.zeros(len(rewards))
        for j in range(self.n_step):  # n is small: one vectorised pass per offset
            inside = j < k
            reward_sum[inside] += self.gamma ** j * rewards[np.flatnonzero(inside) + j]
        ends_in_terminal = terminated[episode] & (k == left)
        # Episode e's observations start at row first_step[e] + e (each has one more than steps).
        self._row_tm1 = first_step[episode] + episode + t
        self._row_t = self._row_tm1 + k
        self._reward_t = reward_sum.astype(np.float32)
        self._discount_t = np.where(ends_in_terminal, 0.0, self.gamma ** k).astype(np.float32)

    def transitions(self, indices: np.ndarray) -> Transition:
        """Return the transitions at ``indices`` (integers in [0, len(self))), leading axis B."""
        indices = np.asarray(indices)
        return Transition(
            obs_tm1=self._obs[self._row_tm1[indices]],
            action_tm1=self._actions[indices],
            reward_t=self._reward_t[indices],
            discount_t=self._discount_t[indices],
            obs_t=self._obs[self._row_t[indices]],
        )

    def sample(self, rng: np.random.Generator, batch_size: int) -> Transition:
        """Return ``batch_size`` transitions drawn uniformly with replacement."""
        return self.transitions(rng.integers(0, len(self), size=batch_size))

    def sample_many(self, rng: np.random.Generator, count: int, batch_size: int) -> Transition:
        """Return ``count`` batches of ``batch_size`` transitions, arrays (count, batch_size, ...).

        One draw of count x batch_size indices, uniform with replacement, taken
        batch by batch (not the indices of ``count`` calls to ``sample``: numpy's
        bounded draws are buffered per call), as the online replay's.
        """
        return self.transitions(rng.integers(0, len(self), size=(count, batch_size)))
