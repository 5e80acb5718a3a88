"""Stable-Baselines3 and sbx: episode cost and per-constraint violations in the SB3 logger.

sbx's algorithms are SB3's ``BaseAlgorithm`` subclasses and call the same callbacks, so one
callback serves both. SB3 itself needs nothing else: ``SAC("MlpPolicy", "rwrl/...")`` works
after ``import rwrl``.

Example::

    import rwrl
    from stable_baselines3 import SAC
    from rwrl.integrations.sb3 import CostLoggerCallback

    model = SAC("MlpPolicy", "rwrl/cartpole-balance-v0", learning_starts=100)
    model.learn(1_000, callback=CostLoggerCallback())
    # the logger's rwrl/episode_cost and rwrl/violations/<name>: means over the episodes
    # finished since its last dump
"""

from __future__ import annotations

from stable_baselines3.common.callbacks import BaseCallback

from rwrl.integrations.episode import EpisodeCost, constraint_names


class CostLoggerCallback(BaseCallback):
    """Record each finished episode's cost and violations with ``logger.record_mean``.

    Keys: ``rwrl/episode_cost`` and ``rwrl/violations/<constraint name>``.
    """

    def _on_training_start(self) -> None:
        self._episodes = EpisodeCost(self.training_env.num_envs)
        self._names = tuple(self.training_env.env_method("get_wrapper_attr", "constraint_names")[0])

    def _on_step(self) -> bool:
        for i, (info, done) in enumerate(zip(self.locals["infos"], self.locals["dones"])):
            self._episodes.add(i, info)
            if done:
                for key, value in self._episodes.pop(i, self._names).items():
                    self.logger.record_mean(f"rwrl/{key}", value)
        return True
