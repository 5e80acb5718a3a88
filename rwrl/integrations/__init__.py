"""Glue for the frameworks people train with, one module per framework, each imported only when used.

- ``rwrl.integrations.rllib``: ``register_rllib_envs()`` for Ray's env runners and
  ``RwrlMetricsCallback`` (episode cost and per-constraint violations in RLlib's metrics).
- ``rwrl.integrations.torchrl``: ``cost_info_reader(env)``, the info-reader spec for
  ``cost`` and ``constraints``.
- ``rwrl.integrations.sb3``: ``CostLoggerCallback``, episode cost and violations in the
  Stable-Baselines3 (and sbx) logger.

Nothing else in rwrl imports this room; docs/integrations.md has a tested recipe per framework.
"""
