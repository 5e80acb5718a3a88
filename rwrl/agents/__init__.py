"""Reference JAX agents (D4PG, distributional MPO, TD3, robust MPO, constrained D4PG, continual
D4PG (EWC, KFAC, HCL: switches found by a flow detector), D4PG from pixels (DrQ's encoder and
random shifts), offline BC, CRR, IQL), the registry that names them, and the pieces they share.

Example::

    from rwrl.agents import make_agent
    agent = make_agent("d4pg", obs_size=5, action_size=1, sigma=0.2)
    state = agent.init(jax.random.PRNGKey(0))
    actions = agent.act(state, obs, key, explore=True)  # (B, 1) in [-1, 1]
    state, metrics = agent.update(state, replay.sample(rng, agent.config.batch_size), key)

Shared pieces: ``base`` (the shell that jits an agent's pure init / update /
act functions once, and the one optimiser factory), ``config`` (the config
pieces: batch, replay, networks, learner, critic support, each field
documented and checked once), ``capabilities`` (what an agent declares the
run loop must do for it), ``networks`` (flax modules), ``distributional``
(the C51 support, projection and TD loss), ``replay`` (n-step replay fed by a
vector env), ``offline_replay`` (n-step batches from a Minari dataset),
``types`` (``Transition``, the ``Agent`` protocol).

Adding an agent is one file plus its line in ``AGENTS``. The file holds, top
to bottom like its paper's algorithm box: its config (a frozen dataclass of
the pieces it uses and its own fields), its networks, its losses, its pure
init / update / act, and a class on ``base.JittedAgent`` that ties them
together in ``make_functions`` and declares its ``capabilities``; the
registry line names the module, the classes and the same capabilities
(``tests/agents/test_registry.py`` checks that they agree, and runs the
registry-wide tests on the new agent). ``rwrl run --help`` lists the
registry. Agent modules import JAX, so they load only when an agent is made;
this package and its registry do not.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any

from rwrl.agents.capabilities import Capabilities
from rwrl.agents.presets import PAPER, preset_names, preset_overrides


@dataclasses.dataclass(frozen=True)
class AgentEntry:
    """One registered agent: where its classes live and what it declares it can do."""

    #: the module that defines the agent, e.g. "rwrl.agents.d4pg".
    module: str
    #: the agent class, built as cls(obs_size, action_size, config).
    agent_class: str
    #: the config dataclass (one agent class may serve several: R-MPO and SR-MPO).
    config_class: str
    #: the same as the agent class's ``capabilities`` (a test checks it), readable without JAX.
    capabilities: Capabilities = Capabilities()


_OFFLINE = Capabilities(offline=True)
_MODEL_SET = Capabilities(model_set=True)
_CONSTRAINED = Capabilities(cost_constrained=True)
_CONTINUAL = Capabilities(continual=True)
_REGIMES = Capabilities(continual=True, reported_regimes=True)
_PIXELS = Capabilities(pixels=True)

#: agent name -> its entry.
AGENTS = {
    "d4pg": AgentEntry("rwrl.agents.d4pg", "D4PG", "D4PGConfig"),
    "dmpo": AgentEntry("rwrl.agents.dmpo", "DMPO", "DMPOConfig"),
    "td3": AgentEntry("rwrl.agents.td3", "TD3", "TD3Config"),
    "rmpo": AgentEntry("rwrl.agents.rmpo", "RMPO", "RMPOConfig", _MODEL_SET),
    "srmpo": AgentEntry("rwrl.agents.rmpo", "RMPO", "SRMPOConfig", _MODEL_SET),
    "rcd4pg": AgentEntry("rwrl.agents.rcd4pg", "RCD4PG", "RCD4PGConfig", _CONSTRAINED),
    "metal": AgentEntry("rwrl.agents.metal", "MetaL", "MetaLConfig", _CONSTRAINED),
    "d4pg-ewc": AgentEntry("rwrl.agents.d4pg_ewc", "D4PGEWC", "D4PGEWCConfig", _REGIMES),
    "d4pg-kfac": AgentEntry("rwrl.agents.d4pg_kfac", "D4PGKFAC", "D4PGKFACConfig", _REGIMES),
    "d4pg-hcl": AgentEntry("rwrl.agents.d4pg_hcl", "D4PGHCL", "D4PGHCLConfig", _CONTINUAL),
    "d4pg-pixels": AgentEntry("rwrl.agents.d4pg_pixels", "D4PGPixels", "D4PGPixelsConfig", _PIXELS),
    "bc": AgentEntry("rwrl.agents.bc", "BC", "BCConfig", _OFFLINE),
    "crr": AgentEntry("rwrl.agents.crr", "CRR", "CRRConfig", _OFFLINE),
    "iql": AgentEntry("rwrl.agents.iql", "IQL", "IQLConfig", _OFFLINE),
}


def agent_entry(name: str) -> AgentEntry:
    """Return the registry entry of agent ``name`` (no import of the agent).

    Raises:
        ValueError: for an unknown agent name, naming the allowed ones.
    """
    if name not in AGENTS:
        raise ValueError(f"unknown agent {name!r}; allowed: {sorted(AGENTS)}")
    return AGENTS[name]


def agent_classes(name: str) -> tuple[type, type]:
    """Return (agent class, config class) of agent ``name``, importing its module."""
    entry = agent_entry(name)
    module = importlib.import_module(entry.module)
    return getattr(module, entry.agent_class), getattr(module, entry.config_class)


def make_config(name: str, preset: str = PAPER, replay_ratio: float | None = None, **config_overrides):
    """Return the config of agent ``name``: its ``preset``, then the given fields overridden.

    Lists are taken as tuples: the configs' sequence fields (hidden sizes, value
    sets) are tuples, and overrides read from JSON or TOML carry lists.

    Args:
        name: the agent's name, a key of ``AGENTS``.
        preset: one of ``presets.preset_names(name)``; "paper" is the config's defaults.
        replay_ratio: learner updates per env step, for the online agents: sets
            ``samples_per_insert`` to ``replay_ratio * batch_size`` (the two are one setting;
            the config stores the latter, acme's, and reads the former as ``replay_ratio``).
        **config_overrides: fields of the config to change from the preset's.

    Raises:
        ValueError: for an unknown agent name, preset or config field, naming the allowed ones.
    """
    _, config_cls = agent_classes(name)
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(config_overrides) - set(fields))
    if unknown:
        raise ValueError(f"unknown {name} config field(s) {unknown}; allowed: {list(fields)}, "
                         f"preset, replay_ratio")
    overrides = {**preset_overrides(name, preset), **config_overrides}
    if replay_ratio is not None:
        overrides["samples_per_insert"] = _samples_per_insert(name, fields, replay_ratio, overrides,
                                                              config_overrides)
    return config_cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()})


def _samples_per_insert(name: str, fields: dict, replay_ratio: Any, overrides: dict, given: dict) -> float:
    """Return the ``samples_per_insert`` of ``replay_ratio`` updates per env step at the config's batch size."""
    if "samples_per_insert" not in fields:
        raise ValueError(f"replay_ratio: agent {name} learns offline and has no replay ratio")
    if "samples_per_insert" in given:
        raise ValueError("replay_ratio and samples_per_insert both given: they set the same ratio, give one")
    if isinstance(replay_ratio, bool) or not isinstance(replay_ratio, (int, float)) or not replay_ratio > 0:
        raise ValueError(f"replay_ratio={replay_ratio!r}: must be a number > 0 (updates per env step)")
    return float(replay_ratio) * overrides.get("batch_size", fields["batch_size"].default)


def make_agent(name: str, obs_size: int | tuple[int, int, int], action_size: int, **config_overrides):
    """Return agent ``name`` (a key of ``AGENTS``) for its observations and actions in [-1, 1].

    Args:
        name: the agent's name, a key of ``AGENTS``.
        obs_size: length of the flat observation vector; for an agent with the
            ``pixels`` capability, the image shape (H, W, C).
        action_size: length of the action vector.
        **config_overrides: fields of the agent's config to change from the defaults.

    Raises:
        ValueError: for an unknown agent name or config field, naming the allowed ones.
    """
    config = make_config(name, **config_overrides)
    return agent_classes(name)[0](obs_size, action_size, config)


__all__ = ["AGENTS", "AgentEntry", "Capabilities", "agent_classes", "agent_entry", "make_agent", "make_config",
           "preset_names"]
