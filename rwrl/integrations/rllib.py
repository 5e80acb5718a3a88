"""Ray RLlib: rwrl ids in RLlib's env runners, and episode cost and violations in its metrics.

RLlib's env runners are processes that import nothing the driver imported, and Gymnasium 1.x
loads no plugins by itself, so a bare ``"rwrl/..."`` id is unknown there (RLlib reports
``NamespaceNotFound`` or ``IndexError`` in ``get_spaces``). Two calls work:

- Gymnasium's module-qualified id, no rwrl code: ``.environment("rwrl:rwrl/cartpole-balance-v0",
  env_config={...})`` (``gymnasium.make_vec`` imports ``rwrl`` in each runner first).
- ``register_rllib_envs()`` once in the driver, then the id as RLlib's docs write it:
  ``.environment("rwrl/cartpole-balance-v0", env_config={...})``. Ray hands registered env
  creators to every worker; with ``gym_env_vectorize_mode="vector_entry_point"`` the creator
  builds rwrl's batched vector env, one engine call per step for all of a runner's envs.

Example (one PPO iteration, cost in the results)::

    from ray.rllib.algorithms.ppo import PPOConfig
    from rwrl.integrations.rllib import RwrlMetricsCallback, register_rllib_envs

    register_rllib_envs()
    config = (PPOConfig()
              .environment("rwrl/cartpole-balance-v0",
                           env_config={"combined_challenge": "easy", "safety_spec": {"enable": True}})
              .callbacks(RwrlMetricsCallback))
    results = config.build_algo().train()
    results["env_runners"]["episode_cost"]
"""

from __future__ import annotations

import functools
from typing import Any, Mapping

import gymnasium
from ray.rllib.callbacks.callbacks import RLlibCallback
from ray.tune.registry import register_env

from rwrl.envs.registration import register_envs
from rwrl.integrations.episode import EpisodeCost, constraint_names

_KEY = "rwrl_cost"  # of episode.custom_data


def make_env(env_id: str, env_config: Mapping[str, Any]):
    """Make ``env_id`` from RLlib's ``env_config`` (an ``EnvContext``): the rwrl keyword arguments.

    RLlib adds ``num_envs`` when ``gym_env_vectorize_mode="vector_entry_point"``: then the
    result is rwrl's batched vector env of that many envs.
    """
    kwargs = dict(env_config)
    num_envs = kwargs.pop("num_envs", None)
    if num_envs is None:
        return gymnasium.make(env_id, **kwargs)
    return gymnasium.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point",
                              **kwargs)


def register_rllib_envs() -> list[str]:
    """Register every rwrl id as an RLlib env creator (Ray's registry reaches its workers); return the ids."""
    ids = register_envs()
    for env_id in ids:
        register_env(env_id, functools.partial(make_env, env_id))
    return ids


class RwrlMetricsCallback(RLlibCallback):
    """Add each episode's cost and per-constraint violation counts to RLlib's env-runner metrics.

    Keys in ``results["env_runners"]``: ``episode_cost`` and ``violations/<constraint name>``,
    each the mean over the episodes RLlib smooths its returns over.
    """

    def on_episode_step(self, *, episode, **kwargs) -> None:
        if _KEY not in episode.custom_data:
            episode.custom_data[_KEY] = EpisodeCost(1)
        episode.custom_data[_KEY].add(0, episode.get_infos(-1))

    def on_episode_end(self, *, episode, env, metrics_logger, **kwargs) -> None:
        if _KEY not in episode.custom_data:  # an episode that ended at its reset
            return
        for key, value in episode.custom_data[_KEY].pop(0, constraint_names(env)).items():
            metrics_logger.log_value(key, value, reduce="mean")
