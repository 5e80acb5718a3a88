"""Reference JAX agents: D4PG and distributional MPO, and the pieces they share.

Example::

    from rwrl.agents import make_agent
    agent = make_agent("d4pg", obs_size=5, action_size=1, sigma=0.2)
    state = agent.init(jax.random.PRNGKey(0))
    actions = agent.act(state, obs, key, explore=True)  # (B, 1) in [-1, 1]
    state, metrics = agent.update(state, replay.sample(rng, agent.config.batch_size), key)

Shared pieces: ``networks`` (flax modules), ``distributional`` (the C51
support, projection and TD loss), ``replay`` (n-step replay fed by a vector
env), ``offline_replay`` (n-step batches from a Minari dataset), ``types``
(``Transition``, the ``Agent`` protocol). Offline agents (``OFFLINE_AGENTS``):
``bc``, ``crr``, ``iql``. Robust agents over a model set (``MODEL_SET_AGENTS``): ``rmpo``,
``srmpo``.

Adding an agent is one file (its config dataclass, networks and learning)
plus its line in ``AGENTS``; ``rwrl run --help`` lists the registry. Agent
modules import JAX, so they load only when an agent is made.
"""

from __future__ import annotations

import dataclasses
import importlib

#: agent name -> "module:AgentClass:ConfigClass"; the class is built as cls(obs_size,
#: action_size, config).
AGENTS = {
    "d4pg": "rwrl.agents.d4pg:D4PG:D4PGConfig",
    "dmpo": "rwrl.agents.dmpo:DMPO:DMPOConfig",
    "rmpo": "rwrl.agents.rmpo:RMPO:RMPOConfig",
    "srmpo": "rwrl.agents.rmpo:RMPO:SRMPOConfig",
    "rcd4pg": "rwrl.agents.rcd4pg:RCD4PG:RCD4PGConfig",
    "metal": "rwrl.agents.metal:MetaL:MetaLConfig",
    "bc": "rwrl.agents.bc:BC:BCConfig",
    "crr": "rwrl.agents.crr:CRR:CRRConfig",
    "iql": "rwrl.agents.iql:IQL:IQLConfig",
}

#: agents that learn only from a dataset (``rwrl run --dataset``); the others learn online
#: or, being off-policy, from a dataset too.
OFFLINE_AGENTS = ("bc", "crr", "iql")

#: agents that step a model set of the run's task from stored physics states (R-MPO,
#: SR-MPO): they learn on rwrl tasks only, not on arbitrary (toy) envs or datasets.
MODEL_SET_AGENTS = ("rmpo", "srmpo")


def agent_classes(name: str) -> tuple[type, type]:
    """Return (agent class, config class) of agent ``name``, importing its module."""
    if name not in AGENTS:
        raise ValueError(f"unknown agent {name!r}; allowed: {sorted(AGENTS)}")
    module, cls, config_cls = AGENTS[name].split(":")
    module = importlib.import_module(module)
    return getattr(module, cls), getattr(module, config_cls)


def make_config(name: str, **config_overrides):
    """Return the config of agent ``name`` with the given fields overridden.

    Lists are taken as tuples: the configs' sequence fields (hidden sizes, value
    sets) are tuples, and overrides read from JSON or TOML carry lists.

    Raises:
        ValueError: for an unknown agent name or config field, naming the allowed ones.
    """
    _, config_cls = agent_classes(name)
    fields = [f.name for f in dataclasses.fields(config_cls)]
    unknown = sorted(set(config_overrides) - set(fields))
    if unknown:
        raise ValueError(f"unknown {name} config field(s) {unknown}; allowed: {fields}")
    return config_cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in config_overrides.items()})


def make_agent(name: str, obs_size: int, action_size: int, **config_overrides):
    """Return agent ``name`` (a key of ``AGENTS``) for flat observations and actions in [-1, 1].

    Args:
        name: the agent's name, a key of ``AGENTS``.
        obs_size: length of the flat observation vector.
        action_size: length of the action vector.
        **config_overrides: fields of the agent's config to change from the defaults.

    Raises:
        ValueError: for an unknown agent name or config field, naming the allowed ones.
    """
    config = make_config(name, **config_overrides)
    return agent_classes(name)[0](obs_size, action_size, config)


__all__ = ["AGENTS", "MODEL_SET_AGENTS", "OFFLINE_AGENTS", "agent_classes", "make_agent", "make_config"]
