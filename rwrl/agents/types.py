"""Types shared by the agents and the training loop.

Shape convention (all of ``rwrl.agents``): a leading batch axis B on every
array a learner sees; N is the number of parallel environments feeding the
replay; S is the number of actions sampled per state (MPO); K is the number of
atoms of a categorical value distribution.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol

import jax
import numpy as np

from rwrl.agents.capabilities import Capabilities

Array = np.ndarray | jax.Array


class Transition(NamedTuple):
    """A batch of n-step transitions, leading axis B.

    Attributes:
        obs_tm1: (B, obs_size) float32, the observation the action was taken in (an image
            agent's: uint8, flattened (H * W * C) from the replay).
        action_tm1: (B, action_size) float32 in [-1, 1], the action taken.
        reward_t: (B,) float32, the n-step discounted reward sum
            ``sum_{j<k} gamma**j r_{t+j}`` over the k steps to the bootstrap state.
        discount_t: (B,) float32, ``gamma**k``; 0 when the episode terminated
            within those k steps (not when it was truncated).
        obs_t: (B, obs_size) float32 (an image agent's: uint8), the bootstrap observation.
        cost_t: (B,) float32, the n-step discounted cost sum, summed like
            ``reward_t`` (the constrained agents shape their reward with it);
            None where a source records no cost (the offline datasets).
        state_tm1: None, or (B, state_size) float64: the physics state of
            ``obs_tm1`` (qpos, qvel, qacc_warmstart; ``info['physics_state']``),
            stored only for agents with the ``model_set`` capability.
    """

    obs_tm1: Array
    action_tm1: Array
    reward_t: Array
    discount_t: Array
    obs_t: Array
    cost_t: Array | None = None
    state_tm1: Array | None = None

    def at(self, k: int) -> "Transition":
        """Return batch ``k`` of stacked batches (every array with a leading axis K)."""
        return Transition(*(None if x is None else x[k] for x in self))


class Agent(Protocol):
    """What the training loop needs of an agent (``rwrl.agents.base.JittedAgent`` provides it).

    ``capabilities`` says what the loop must do besides (``Capabilities``): an
    agent with ``model_set`` gets transitions with ``state_tm1``; one with
    ``cost_constrained`` has a ``cost_constraint`` config field and the method
    ``observe_episodes(state, costs) -> state``, handed each finished training
    episode's average cost per step, (E,).
    """

    #: the agent's frozen config dataclass (hyperparameters, documented fields).
    config: Any
    #: what the agent declares it can do; the same as its registry line's.
    capabilities: Capabilities

    def init(self, key: jax.Array) -> Any:
        """Return the initial training state pytree (params, targets, optimiser states, steps)."""

    def act(self, state: Any, obs: np.ndarray, key: jax.Array, explore: bool) -> np.ndarray:
        """Return (B, action_size) actions in [-1, 1] for (B, obs_size) observations."""

    def update(self, state: Any, batch: Transition, key: jax.Array) -> tuple[Any, dict[str, jax.Array]]:
        """Apply one learner step to a batch; return the new state and scalar metrics."""

    # Optional: ``update_many(state, batches, keys) -> (state, metrics)``, K steps at once on
    # batches with a leading axis K (``JittedAgent`` has it); the loop calls ``update`` K times
    # on an agent without it.


def updates_per_vector_step(config: Any, num_envs: int) -> float:
    """Return how many learner updates to run per vector-env step.

    The replay ratio is set as acme does, by ``samples_per_insert``: each
    vector step inserts ``num_envs`` transitions, and each update samples
    ``batch_size`` of them, so ``num_envs * samples_per_insert / batch_size``
    updates keep the ratio. The loop accumulates the fraction across steps.
    """
    return num_envs * config.samples_per_insert / config.batch_size
