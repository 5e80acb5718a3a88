"""Per-env episode sums of ``info['cost']`` and of violated constraints, shared by the callbacks.

``info['constraints']`` is True where a constraint held (the published suite's convention), so
a violation is a False flag; the sums are what ``rwrl.metrics`` writes per episode.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np


class EpisodeCost:
    """Sum cost and violations per env until each episode ends.

    Args:
      num_envs: N, the envs stepped together.
    """

    def __init__(self, num_envs: int):
        self.cost = np.zeros(num_envs)
        self.violations: np.ndarray | None = None  # (N, K) once the first info arrives

    def add(self, env_index: int, info: Mapping[str, Any]) -> None:
        """Add one step's info of env ``env_index`` (a dict with ``cost`` and ``constraints``)."""
        violated = ~np.asarray(info["constraints"], dtype=bool)
        if self.violations is None:
            self.violations = np.zeros((self.cost.size, violated.size), dtype=np.int64)
        self.cost[env_index] += float(info["cost"])
        self.violations[env_index] += violated

    def pop(self, env_index: int, constraint_names: Sequence[str]) -> dict[str, float]:
        """Return env ``env_index``'s finished episode as flat metrics and start its next one.

        Keys: ``episode_cost`` and ``violations/<constraint name>``.
        """
        counts = self.violations[env_index] if self.violations is not None else np.zeros(0)
        if len(constraint_names) != counts.size:
            raise ValueError(f"{len(constraint_names)} constraint names {tuple(constraint_names)} "
                             f"for {counts.size} flags in info['constraints']")
        metrics = {"episode_cost": float(self.cost[env_index])}
        metrics.update({f"violations/{name}": int(n) for name, n in zip(constraint_names, counts)})
        self.cost[env_index] = 0.0
        if self.violations is not None:
            self.violations[env_index] = 0
        return metrics


def constraint_names(env: Any) -> tuple[str, ...]:
    """Return the K names of ``info['constraints']`` of an rwrl env, vector env or a wrapper of one.

    rwrl's own envs and vector env carry ``constraint_names``; Gymnasium's ``SyncVectorEnv``
    over rwrl envs hands out its sub-envs' through ``get_attr``.
    """
    base = env.unwrapped
    if hasattr(base, "constraint_names"):  # foreign wrappers (RLlib's, SB3's) hide the type
        return tuple(base.constraint_names)
    return tuple(base.get_attr("constraint_names")[0])
