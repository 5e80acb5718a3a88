"""The shell every agent shares: its pure functions jitted once, and the one optimiser factory.

An agent is pure functions over one state pytree, as in purejaxrl and Brax:
``init(key) -> state``, ``update(state, batch, key) -> (state, metrics)`` and
``act(policy_params, obs, key, explore) -> actions``. An agent file builds
them from its config, networks and losses in ``make_functions``;
``JittedAgent`` calls that hook once, jits what it returns once and exposes
the ``rwrl.agents.types.Agent`` protocol around it, with ``update_many``:
K learner steps in one compiled call (``scan_updates``), the state's buffers
donated. An agent built on another
(RC-D4PG on D4PG, MetaL on RC-D4PG, R-MPO on DMPO) calls the parent's
``make_functions`` and replaces the functions it changes, so nothing is
jitted twice.

Example (the whole tie of an agent file to this shell)::

    class D4PG(JittedAgent):
        config_class = D4PGConfig

        def make_functions(self, obs_size, action_size, config):
            self.networks = make_networks(obs_size, action_size, config)
            ...
            return AgentFunctions(init=..., update=..., act=...)
"""

from __future__ import annotations

from typing import Any, Callable, ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from rwrl.agents.capabilities import Capabilities
from rwrl.agents.types import Transition


def make_optimiser(learning_rate: float, max_gradient_norm: float | None = None,
                   eps: float = 1e-8) -> optax.GradientTransformation:
    """Return Adam, after clipping the gradients to ``max_gradient_norm`` global norm when given.

    Every agent's optimisers come from here: clipping then Adam for the
    networks of D4PG, DMPO, CRR and BC (acme's choice, norm 40), plain Adam
    without a norm (IQL's networks, MPO's dual variables), and Adam with a tiny
    ``eps`` for MetaL's meta-parameter. Without a norm the result is
    ``optax.adam`` itself, whose state has no clipping entry.

    Args:
        learning_rate: Adam's step size.
        max_gradient_norm: the global norm gradients are clipped to; None: no clipping.
        eps: Adam's epsilon (optax's default 1e-8).
    """
    adam = optax.adam(learning_rate, eps=eps)
    if max_gradient_norm is None:
        return adam
    return optax.chain(optax.clip_by_global_norm(max_gradient_norm), adam)


def actor_critic_optimisers(config: Any) -> tuple[optax.GradientTransformation, optax.GradientTransformation]:
    """Return the (policy, critic) optimisers of a ``config.LearnerConfig``: clipping, then Adam."""
    return (make_optimiser(config.policy_learning_rate, config.max_gradient_norm),
            make_optimiser(config.critic_learning_rate, config.max_gradient_norm))


def scan_updates(update: Callable[..., tuple[Any, dict[str, jax.Array]]]) -> Callable[..., tuple[Any, dict]]:
    """Return ``many(state, *stacked) -> (state, metrics)``: ``update`` applied K times in a ``lax.scan``.

    Each array of ``stacked`` (pytrees of them too: a ``Transition``) has a
    leading axis K; step k calls ``update(state, *stacked[k])``, so K fused
    steps apply the same function to the same batches and keys as K calls in
    a Python loop (``tests/agents/test_fused_updates.py`` checks they agree).
    The metrics are the last step's, as after K separate calls. One compiled
    call saves K - 1 dispatches and lets XLA keep the state in place
    between steps; on this project's 2-core machine an update was 3 %
    slower to 24 % faster at K = 2 (D4PG's paper loop) than one per call,
    and 5 to 35 % faster at K = 16 (benchmarks/results/learner.md).
    """

    def many(state: Any, *stacked: Any) -> tuple[Any, dict[str, jax.Array]]:
        state, metrics = jax.lax.scan(lambda carry, xs: update(carry, *xs), state, stacked)
        return state, jax.tree.map(lambda m: m[-1], metrics)

    return many


class AgentFunctions(NamedTuple):
    """An agent's pure functions, which ``JittedAgent`` jits once."""

    #: (key) -> the initial training state.
    init: Callable[[jax.Array], Any]
    #: (state, batch, key) -> (new state, scalar metrics): one learner step (R-MPO's also takes
    #: the model set's outcomes, which its ``update`` method computes outside JAX).
    update: Callable[..., tuple[Any, dict[str, jax.Array]]]
    #: (policy_params, obs (B, obs_size), key, explore) -> (B, action_size) actions in [-1, 1];
    #: ``explore`` is static (one compiled function per value).
    act: Callable[..., jax.Array]
    #: (state, costs (E,)) -> state; only for agents with ``cost_constrained`` capabilities.
    observe_episodes: Callable[[Any, jax.Array], Any] | None = None


class JittedAgent:
    """The ``init``, ``act`` and ``update`` of an agent, around its pure functions jitted once.

    A subclass sets ``config_class`` (its config's default), ``capabilities``
    when it has any, and implements ``make_functions``.

    Args:
        obs_size: length of the flat observation; an agent with the ``pixels``
            capability: the image shape (H, W, C).
        action_size: length of the action; actions are in [-1, 1].
        config: hyperparameters; None: ``config_class()``.
    """

    #: what the run loop must do for this agent (none for a plain online agent).
    capabilities: ClassVar[Capabilities] = Capabilities()
    #: the config dataclass whose defaults an agent built without a config gets.
    config_class: ClassVar[type]

    def __init__(self, obs_size: int, action_size: int, config: Any = None):
        self.config = self.config_class() if config is None else config
        self.obs_size, self.action_size = obs_size, action_size
        functions = self.make_functions(obs_size, action_size, self.config)
        self._init = jax.jit(functions.init)
        self._update = jax.jit(functions.update)
        # The old state is dead after a step: its buffers hold the new one.
        self._update_many = jax.jit(scan_updates(functions.update), donate_argnums=0)
        self._act = jax.jit(functions.act, static_argnames="explore")
        self._observe = None if functions.observe_episodes is None else jax.jit(functions.observe_episodes)

    def make_functions(self, obs_size: int, action_size: int, config: Any) -> AgentFunctions:
        """Return the agent's pure functions (and keep its networks, optimisers, losses on ``self``)."""
        raise NotImplementedError(f"{type(self).__name__} must implement make_functions")

    def init(self, key: jax.Array) -> Any:
        """Return the initial training state for ``key``."""
        return self._init(key)

    def act(self, state: Any, obs: np.ndarray, key: jax.Array, explore: bool) -> np.ndarray:
        """Return (B, action_size) float32 actions in [-1, 1] for (B, obs_size) observations."""
        obs = jnp.asarray(obs, jnp.float32)
        return np.asarray(self._act(state.policy_params, obs, key, explore=bool(explore)))

    def update(self, state: Any, batch: Transition, key: jax.Array) -> tuple[Any, dict[str, jax.Array]]:
        """Return (new state, metrics) after one learner step on ``batch``."""
        return self._update(state, batch, key)

    def update_many(self, state: Any, batches: Transition, keys: jax.Array) -> tuple[Any, dict[str, jax.Array]]:
        """Return (new state, the last step's metrics) after K learner steps in one compiled call.

        ``batches`` holds K batches (every array with a leading axis K), ``keys``
        is (K, 2): step k is ``update(state, batches[k], keys[k])``. The
        buffers of ``state`` are donated: it must not be used afterwards.
        A new K compiles once more.
        """
        return self._update_many(state, batches, jnp.asarray(keys))


__all__ = ["AgentFunctions", "JittedAgent", "actor_critic_optimisers", "make_optimiser", "scan_updates"]
