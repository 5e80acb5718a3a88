"""Types shared by the agents and the training loop.

Shape convention (all of ``rwrl.agents``): a leading batch axis B on every
array a learner sees; N is the number of parallel environments feeding the
replay; S is the number of actions sampled per state (MPO); K is the number of
atoms of a categorical value distribution.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple, Protocol

import jax
import numpy as np

Array = np.ndarray | jax.Array


class Transition(NamedTuple):
    """A batch of n-step transitions, leading axis B.

    Attributes:
        obs_tm1: (B, obs_size) float32, the observation the action was taken in.
        action_tm1: (B, action_size) float32 in [-1, 1], the action taken.
        reward_t: (B,) float32, the n-step discounted reward sum
            ``sum_{j<k} gamma**j r_{t+j}`` over the k steps to the bootstrap state.
        discount_t: (B,) float32, ``gamma**k``; 0 when the episode terminated
            within those k steps (not when it was truncated).
        obs_t: (B, obs_size) float32, the bootstrap observation.
        cost_t: (B,) float32, the n-step discounted cost sum, summed like
            ``reward_t`` (the constrained agents shape their reward with it);
            None where a source records no cost (the offline datasets).
        state_tm1: None, or (B, state_size) float64: the physics state of
            ``obs_tm1`` (qpos, qvel, qacc_warmstart; ``info['physics_state']``),
            stored only for agents that ask for it (``uses_physics_state``).
    """

    obs_tm1: Array
    action_tm1: Array
    reward_t: Array
    discount_t: Array
    obs_t: Array
    cost_t: Array | None = None
    state_tm1: Array | None = None


class Agent(Protocol):
    """What the training loop needs of an agent (D4PG, DMPO).

    An agent may also set ``uses_physics_state = True`` (absent: False): the
    loop then switches on the env's ``physics_state_info`` and the replay
    stores each transition's ``state_tm1`` (R-MPO steps models from it).
    """

    #: the agent's frozen config dataclass (hyperparameters, documented fields).
    config: Any

    def init(self, key: jax.Array) -> Any:
        """Return the initial training state pytree (params, targets, optimiser states, steps)."""

    def act(self, state: Any, obs: np.ndarray, key: jax.Array, explore: bool) -> np.ndarray:
        """Return (B, action_size) actions in [-1, 1] for (B, obs_size) observations."""

    def update(self, state: Any, batch: Transition, key: jax.Array) -> tuple[Any, dict[str, jax.Array]]:
        """Apply one learner step to a batch; return the new state and scalar metrics."""


def validate_common_config(config: Any) -> None:
    """Check the fields every agent config shares; raise ValueError naming the bad field.

    Hidden sizes given as lists (from JSON or the command line) become tuples,
    so that frozen configs stay hashable.

    Args:
        config: a dataclass instance with the shared fields (batch_size, n_step,
            discount, replay_capacity, min_replay_size, samples_per_insert,
            num_atoms, v_min, v_max, target_update_period).
    """
    positive_ints = ("batch_size", "n_step", "replay_capacity", "num_atoms", "target_update_period")
    for name in positive_ints:
        value = getattr(config, name)
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}={value!r}: must be an integer >= 1")
    if config.num_atoms < 2:
        raise ValueError(f"num_atoms={config.num_atoms!r}: must be >= 2")
    if not 0.0 < config.discount <= 1.0:
        raise ValueError(f"discount={config.discount!r}: must be in (0, 1]")
    if not config.v_min < config.v_max:
        raise ValueError(f"v_min={config.v_min!r}, v_max={config.v_max!r}: need v_min < v_max")
    if config.samples_per_insert <= 0:
        raise ValueError(f"samples_per_insert={config.samples_per_insert!r}: must be > 0")
    if not 0 <= config.min_replay_size <= config.replay_capacity:
        raise ValueError(
            f"min_replay_size={config.min_replay_size!r}: must be in [0, replay_capacity="
            f"{config.replay_capacity}]"
        )
    for field in dataclasses.fields(config):
        if field.name.endswith("hidden_sizes"):
            sizes = tuple(getattr(config, field.name))
            object.__setattr__(config, field.name, sizes)
            if not sizes or any(int(s) < 1 for s in sizes):
                raise ValueError(f"{field.name}={sizes!r}: must be a non-empty sequence of sizes >= 1")


def updates_per_vector_step(config: Any, num_envs: int) -> float:
    """Return how many learner updates to run per vector-env step.

    The replay ratio is set as acme does, by ``samples_per_insert``: each
    vector step inserts ``num_envs`` transitions, and each update samples
    ``batch_size`` of them, so ``num_envs * samples_per_insert / batch_size``
    updates keep the ratio. The loop accumulates the fraction across steps.
    """
    return num_envs * config.samples_per_insert / config.batch_size


def validate_offline_config(config: Any) -> None:
    """Check the fields every offline agent config shares; raise ValueError naming the bad field.

    Shared: ``batch_size`` and ``n_step`` (integers >= 1), ``discount`` in
    (0, 1], every ``*learning_rate`` > 0, every ``*hidden_sizes`` a non-empty
    sequence of sizes >= 1 (lists become tuples, so frozen configs stay hashable).
    """
    for name in ("batch_size", "n_step"):
        value = getattr(config, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name}={value!r}: must be an integer >= 1")
    if not 0.0 < config.discount <= 1.0:
        raise ValueError(f"discount={config.discount!r}: must be in (0, 1]")
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if field.name.endswith("learning_rate") and not value > 0:
            raise ValueError(f"{field.name}={value!r}: must be > 0")
        if field.name.endswith("hidden_sizes"):
            sizes = tuple(value)
            object.__setattr__(config, field.name, sizes)
            if not sizes or any(int(s) < 1 for s in sizes):
                raise ValueError(f"{field.name}={sizes!r}: must be a non-empty sequence of sizes >= 1")
