"""Whole episodes of a batched policy on the rwrl vector env, kept as arrays.

One function, :func:`run_episodes`, serves both the evaluation of behaviour
policies (no noise, only the returns matter) and dataset generation (noise,
every array kept). The policy is called once per vector step on the whole
batch: ``policy(obs (B, D)) -> actions (B, A)`` in the env's action units.

Shapes: B episodes run side by side, T = the env's time limit (1000 control
steps), D observation size, A action size, K constraints. Episode e of a call
is reset with ``seeds[e]``, so ``gymnasium.make(env_id, **kwargs).reset(seed=
seeds[e])`` followed by the recorded actions replays it exactly (the vector env
seeds env i as the single env with the same seed; a seeded reset also restarts
a perturbation schedule, ``rwrl.challenges.perturb``).

Behaviour noise: Gaussian with standard deviation ``noise`` times the action
half-range, added to the policy's action and clipped to the action bounds,
drawn from ``rng`` (one (B, A) draw per vector step).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import numpy as np

from rwrl.core.seeding import stream_id
from rwrl.tasks.action_scaling import half_range

#: obs (B, D) float32 -> actions (B, A) float32 in the env's action bounds.
BatchedPolicy = Callable[[np.ndarray], np.ndarray]


def derived_seeds(seed: int, purpose: str, start: int, count: int) -> list[int]:
    """Return ``count`` seeds ``start, start+1, ...`` of one named use of ``seed``.

    Each is independent of how the episodes are split into batches, so a
    resumed generation draws the same seeds as an uninterrupted one.
    """
    return [int(np.random.SeedSequence([seed, stream_id(purpose), i]).generate_state(1)[0])
            for i in range(start, start + count)]


@dataclasses.dataclass
class EpisodeArrays:
    """B finished episodes, padded to T steps; rows past ``lengths[e]`` are zeros.

    Attributes:
      observations: (B, T+1, D) float32, from the reset observation to the last.
      actions: (B, T, A) float32, the actions executed (noise included).
      rewards: (B, T) float64.
      terminations, truncations: (B, T) bool (the tasks never terminate).
      constraints: (B, T+1, K) bool, ``info["constraints"]`` (True = satisfied).
      cost: (B, T+1) float64, ``info["cost"]`` (violated constraints per step).
      lengths: (B,) int64, steps of each episode.
      seeds: (B,) uint64, the reset seed of each episode.
    """

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    terminations: np.ndarray
    truncations: np.ndarray
    constraints: np.ndarray
    cost: np.ndarray
    lengths: np.ndarray
    seeds: np.ndarray

    def returns(self) -> np.ndarray:
        """Return (B,) undiscounted episode returns."""
        return self.rewards.sum(axis=1)

    def as_dict(self) -> dict[str, np.ndarray]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, arrays: dict[str, np.ndarray]) -> "EpisodeArrays":
        return cls(**{f.name: np.asarray(arrays[f.name]) for f in dataclasses.fields(cls)})


def _allocate(n: int, steps: int, obs_size: int, action_size: int, k: int,
              seeds: list[int]) -> EpisodeArrays:
    return EpisodeArrays(
        observations=np.zeros((n, steps + 1, obs_size), np.float32),
        actions=np.zeros((n, steps, action_size), np.float32),
        rewards=np.zeros((n, steps), np.float64),
        terminations=np.zeros((n, steps), bool), truncations=np.zeros((n, steps), bool),
        constraints=np.zeros((n, steps + 1, k), bool), cost=np.zeros((n, steps + 1), np.float64),
        lengths=np.zeros(n, np.int64), seeds=np.asarray(seeds, np.uint64))


def run_episodes(env: Any, policy: BatchedPolicy, seeds: list[int], noise: float = 0.0,
                 rng: np.random.Generator | None = None) -> EpisodeArrays:
    """Run one episode per env of ``env`` (``len(seeds)`` envs) with ``policy``; return them.

    Args:
      env: an rwrl Gymnasium vector env of ``len(seeds)`` envs (NEXT_STEP autoreset).
      policy: the batched policy (see the module docstring).
      seeds: the reset seed of each episode.
      noise: behaviour noise, standard deviation in action half-ranges (0: none).
      rng: the noise generator (required when ``noise > 0``).
    """
    n = len(seeds)
    if env.num_envs != n:
        raise ValueError(f"seeds has {n} entries, the vector env {env.num_envs} envs")
    if noise < 0 or (noise > 0 and rng is None):
        raise ValueError(f"noise = {noise!r} must be >= 0, and > 0 needs an rng")
    space = env.single_action_space
    low, high = np.asarray(space.low, np.float32), np.asarray(space.high, np.float32)
    steps = int(env.unwrapped.time_limit)
    obs, info = env.reset(seed=list(seeds))
    obs = np.asarray(obs, np.float32)
    out = _allocate(n, steps, obs.shape[1], low.shape[0], info["constraints"].shape[1], seeds)
    out.observations[:, 0], out.constraints[:, 0], out.cost[:, 0] = obs, info["constraints"], info["cost"]
    done = np.zeros(n, bool)
    for t in range(steps):
        actions = np.asarray(policy(obs), np.float32)
        if noise > 0:
            jitter = noise * half_range(low, high) * rng.standard_normal(actions.shape)
            actions = np.clip(actions + jitter, low, high).astype(np.float32)
        obs, reward, terminated, truncated, info = env.step(actions)
        obs = np.asarray(obs, np.float32)
        live = np.flatnonzero(~done)  # finished envs are autoresetting: not recorded
        out.actions[live, t], out.rewards[live, t] = actions[live], np.asarray(reward)[live]
        out.terminations[live, t], out.truncations[live, t] = terminated[live], truncated[live]
        out.observations[live, t + 1] = obs[live]
        out.constraints[live, t + 1], out.cost[live, t + 1] = info["constraints"][live], info["cost"][live]
        ended = live[(terminated | truncated)[live]]
        out.lengths[ended] = t + 1
        done[ended] = True
        if done.all():
            break
    return out
