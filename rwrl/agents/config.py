"""Config pieces the agents' configs are made of: each field documented and checked once, here.

An agent's config is one frozen, flat dataclass (``D4PGConfig``, ...) that
inherits the pieces it uses and adds its own fields; flat, so that
``make_config(name, field=value)``, sweep files and the ``config.json`` of a
run name every field directly. A piece's default is the common one; an agent
whose default differs declares the field again with its own default and a
comment saying why (dataclass inheritance keeps the field, its position and
the piece's check). Each piece checks its fields in ``__post_init__`` and
calls ``super().__post_init__()`` first, so a config runs every piece's checks
once, whatever pieces it combines; errors name the field, its value and what
is allowed.

* ``BatchConfig``: batch_size, n_step, discount (every agent);
* ``ReplayConfig``: those, and replay_capacity, min_replay_size,
  samples_per_insert (the online agents: d4pg, dmpo, rmpo, rcd4pg, metal);
* ``PolicyNetConfig``: policy_hidden_sizes (every agent);
* ``ActorCriticConfig``: that, and critic_hidden_sizes, policy_learning_rate,
  critic_learning_rate (all but bc);
* ``GradientClipConfig``: max_gradient_norm (all but iql);
* ``LearnerConfig``: ActorCriticConfig's and GradientClipConfig's fields, and
  target_update_period (d4pg, dmpo, crr and the agents built on them);
* ``CriticSupportConfig``: num_atoms, v_min, v_max (the same agents: a C51 critic);
* ``ExplorationNoiseConfig``: sigma (the deterministic-policy agents that explore
  with Gaussian noise: d4pg and the agents built on it, td3);
* ``PolyakConfig``: target_polyak (the agents whose targets track by Polyak
  averaging: iql, td3).

This module imports nothing heavy.
"""

from __future__ import annotations

import dataclasses
from typing import Any


def require_int(config: Any, name: str, minimum: int = 1) -> None:
    """Raise ValueError unless field ``name`` is an integer (not a bool) >= ``minimum``."""
    value = getattr(config, name)
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name}={value!r}: must be an integer >= {minimum}")


def require_positive(config: Any, *names: str) -> None:
    """Raise ValueError unless each field of ``names`` is > 0."""
    for name in names:
        value = getattr(config, name)
        if not value > 0:
            raise ValueError(f"{name}={value!r}: must be > 0")


def require_sizes(config: Any, name: str) -> None:
    """Make field ``name`` a tuple (frozen configs stay hashable; JSON gives lists) of sizes >= 1."""
    sizes = tuple(getattr(config, name))
    object.__setattr__(config, name, sizes)
    if not sizes or any(int(s) < 1 for s in sizes):
        raise ValueError(f"{name}={sizes!r}: must be a non-empty sequence of sizes >= 1")


@dataclasses.dataclass(frozen=True)
class AgentConfig:
    """The root of every agent config: the end of the pieces' chain of checks."""

    def __post_init__(self):
        """Check nothing: each piece adds its checks and calls this first."""


@dataclasses.dataclass(frozen=True)
class BatchConfig(AgentConfig):
    """The learner's batches of n-step transitions (online replay or offline dataset)."""

    #: transitions per learner step.
    batch_size: int = 256
    #: n of the n-step return.
    n_step: int = 1
    #: per-step discount gamma.
    discount: float = 0.99

    def __post_init__(self):
        super().__post_init__()
        require_int(self, "batch_size")
        require_int(self, "n_step")
        if not 0.0 < self.discount <= 1.0:
            raise ValueError(f"discount={self.discount!r}: must be in (0, 1]")


@dataclasses.dataclass(frozen=True)
class OfflineBatchConfig(BatchConfig):
    """An offline agent's batches, drawn from a fixed dataset by the offline loop."""

    #: learner updates per compiled call: one draw of that many batches, scanned
    #: (``JittedAgent.update_many``); the offline loop ends a call early at an
    #: evaluation, a checkpoint and the end, so those fall on the same updates.
    #: 50: BC 30 %, CRR 23 %, IQL 17 % less time per update than one per call on
    #: this project's 2-core machine (2026-12-07, beside two other jobs).
    #: Results depend on it (the batches come from one draw per call), so a run
    #: records it and resumes with it.
    updates_per_call: int = 50

    def __post_init__(self):
        super().__post_init__()
        require_int(self, "updates_per_call")


@dataclasses.dataclass(frozen=True)
class ReplayConfig(BatchConfig):
    """The replay an online agent learns from, and its replay ratio."""

    #: most transitions kept in replay.
    replay_capacity: int = 1_000_000
    #: transitions in replay before the first learner step.
    min_replay_size: int = 1_000
    #: replay ratio: transitions sampled by the learner per transition
    #: inserted (see ``types.updates_per_vector_step``); ``replay_ratio``,
    #: updates per env step, is this over ``batch_size`` (``make_config``
    #: takes either). Twice acme's 32: it
    #: learned both tasks better for more wall-clock (the measurement:
    #: benchmarks/results/archive.md, the replay ratio of D4PG).
    samples_per_insert: float = 64.0

    @property
    def replay_ratio(self) -> float:
        """Learner updates per env step: ``samples_per_insert / batch_size`` (0.25 at the defaults)."""
        return self.samples_per_insert / self.batch_size

    def __post_init__(self):
        super().__post_init__()
        require_int(self, "replay_capacity")
        require_positive(self, "samples_per_insert")
        if not 0 <= self.min_replay_size <= self.replay_capacity:
            raise ValueError(f"min_replay_size={self.min_replay_size!r}: must be in [0, replay_capacity="
                             f"{self.replay_capacity}]")


@dataclasses.dataclass(frozen=True)
class PolicyNetConfig(AgentConfig):
    """The policy network's torso."""

    #: hidden layer sizes of the policy network.
    policy_hidden_sizes: tuple[int, ...] = (256, 256, 256)

    def __post_init__(self):
        super().__post_init__()
        require_sizes(self, "policy_hidden_sizes")


@dataclasses.dataclass(frozen=True)
class ActorCriticConfig(PolicyNetConfig):
    """A policy and a critic, each with its own Adam learning rate.

    The learning rates are not checked here: online configs have always taken
    any value (a sweep test gives one NaN to make a run fail at its first
    update); the offline agents check theirs > 0.
    """

    #: hidden layer sizes of the critic network.
    critic_hidden_sizes: tuple[int, ...] = (256, 256, 256)
    #: Adam learning rate of the policy.
    policy_learning_rate: float = 1e-4
    #: Adam learning rate of the critic.
    critic_learning_rate: float = 1e-4

    def __post_init__(self):
        super().__post_init__()
        require_sizes(self, "critic_hidden_sizes")


@dataclasses.dataclass(frozen=True)
class GradientClipConfig(AgentConfig):
    """Global-norm clipping of the networks' gradients before Adam (``base.make_optimiser``)."""

    #: gradients are clipped to this global norm (acme's default).
    max_gradient_norm: float = 40.0

    def __post_init__(self):
        super().__post_init__()
        require_positive(self, "max_gradient_norm")


@dataclasses.dataclass(frozen=True)
class LearnerConfig(ActorCriticConfig, GradientClipConfig):
    """An actor-critic learner with clipped Adam and periodically copied target networks."""

    #: learner steps between copies of the online networks into the targets.
    target_update_period: int = 100

    def __post_init__(self):
        super().__post_init__()
        require_int(self, "target_update_period")


@dataclasses.dataclass(frozen=True)
class CriticSupportConfig(AgentConfig):
    """The atoms of a categorical (C51) value distribution."""

    #: K, atoms of the categorical value distribution.
    num_atoms: int = 51
    #: lowest atom. Suite rewards lie in [0, 1], so discounted returns with
    #: discount 0.99 lie in [0, 1 / (1 - 0.99)] = [0, 100]; a small margin
    #: below 0 costs 2 of 51 atoms and keeps the lower bound off the data.
    v_min: float = -5.0
    #: highest atom, 100 plus the same margin.
    v_max: float = 105.0

    def __post_init__(self):
        super().__post_init__()
        require_int(self, "num_atoms", 2)
        if not self.v_min < self.v_max:
            raise ValueError(f"v_min={self.v_min!r}, v_max={self.v_max!r}: need v_min < v_max")


@dataclasses.dataclass(frozen=True)
class ExplorationNoiseConfig(AgentConfig):
    """Gaussian exploration noise on a deterministic policy's action."""

    #: stddev of the Gaussian exploration noise, in action units ([-1, 1]).
    sigma: float = 0.3

    def __post_init__(self):
        super().__post_init__()
        if not self.sigma >= 0:
            raise ValueError(f"sigma={self.sigma!r}: must be >= 0")


@dataclasses.dataclass(frozen=True)
class PolyakConfig(AgentConfig):
    """Target networks that track the online ones by Polyak averaging."""

    #: tau: the Polyak step of the target networks per target update.
    target_polyak: float = 0.005

    def __post_init__(self):
        super().__post_init__()
        if not 0.0 < self.target_polyak <= 1.0:
            raise ValueError(f"target_polyak={self.target_polyak!r}: must be in (0, 1]")


__all__ = ["ActorCriticConfig", "AgentConfig", "BatchConfig", "CriticSupportConfig", "ExplorationNoiseConfig",
           "GradientClipConfig", "LearnerConfig", "OfflineBatchConfig", "PolicyNetConfig", "PolyakConfig",
           "ReplayConfig", "require_int", "require_positive", "require_sizes"]
