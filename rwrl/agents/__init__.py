"""Reference JAX agents: D4PG and distributional MPO, and the pieces they share.

Example::

    from rwrl.agents import make_agent
    agent = make_agent("d4pg", obs_size=5, action_size=1, sigma=0.2)
    state = agent.init(jax.random.PRNGKey(0))
    actions = agent.act(state, obs, key, explore=True)  # (B, 1) in [-1, 1]
    state, metrics = agent.update(state, replay.sample(rng, agent.config.batch_size), key)

Shared pieces: ``networks`` (flax modules), ``distributional`` (the C51
support, projection and TD loss), ``replay`` (n-step replay fed by a vector
env), ``types`` (``Transition``, the ``Agent`` protocol).
"""

from __future__ import annotations

import dataclasses

from rwrl.agents.d4pg import D4PG, D4PGConfig
from rwrl.agents.dmpo import DMPO, DMPOConfig
from rwrl.agents.replay import NStepReplay
from rwrl.agents.types import Agent, Transition, updates_per_vector_step

#: agent name -> its config dataclass.
AGENT_CONFIGS: dict[str, type] = {"d4pg": D4PGConfig, "dmpo": DMPOConfig}
#: agent name -> its class, constructed as cls(obs_size, action_size, config).
AGENT_CLASSES: dict[str, type] = {"d4pg": D4PG, "dmpo": DMPO}


def make_config(name: str, **config_overrides):
    """Return the config of agent ``name`` with the given fields overridden.

    Raises:
        ValueError: for an unknown agent name or config field, naming the allowed ones.
    """
    if name not in AGENT_CONFIGS:
        raise ValueError(f"unknown agent {name!r}; allowed: {sorted(AGENT_CONFIGS)}")
    config_cls = AGENT_CONFIGS[name]
    fields = [f.name for f in dataclasses.fields(config_cls)]
    unknown = sorted(set(config_overrides) - set(fields))
    if unknown:
        raise ValueError(f"unknown {name} config field(s) {unknown}; allowed: {fields}")
    return config_cls(**config_overrides)


def make_agent(name: str, obs_size: int, action_size: int, **config_overrides) -> Agent:
    """Return agent ``name`` ("d4pg" or "dmpo") for flat observations and actions in [-1, 1].

    Args:
        name: the agent's name, a key of ``AGENT_CONFIGS``.
        obs_size: length of the flat observation vector.
        action_size: length of the action vector.
        **config_overrides: fields of the agent's config to change from the defaults.

    Raises:
        ValueError: for an unknown agent name or config field, naming the allowed ones.
    """
    config = make_config(name, **config_overrides)
    return AGENT_CLASSES[name](obs_size, action_size, config)


__all__ = [
    "AGENT_CLASSES", "AGENT_CONFIGS", "Agent", "D4PG", "D4PGConfig", "DMPO", "DMPOConfig",
    "NStepReplay", "Transition", "make_agent", "make_config", "updates_per_vector_step",
]
