"""The agent registry and the shared shell: every registered agent is checked here with no new test code."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import textwrap

import jax
import pytest

from rwrl.agents import AGENTS, agent_classes, make_agent, make_config
from rwrl.agents.base import JittedAgent
from rwrl.agents.capabilities import Capabilities
from rwrl.agents.config import AgentConfig

# cartpole-swingup's sizes, so that the model-set agents (whose default task it is) build too.
OBS, ACT = 5, 1
#: the smallest images the pixel agents' convolutions take: (H, W, C).
IMAGE = (15, 15, 3)


@pytest.mark.parametrize("name", sorted(AGENTS))
def test_registry_line_declares_what_the_class_declares(name):
    agent_cls, config_cls = agent_classes(name)
    assert issubclass(agent_cls, JittedAgent)
    assert isinstance(agent_cls.capabilities, Capabilities)
    assert AGENTS[name].capabilities == agent_cls.capabilities, name
    assert issubclass(config_cls, AgentConfig) and config_cls.__dataclass_params__.frozen
    # A cost-constrained agent reads the config field that picks its cost, and takes episodes' costs.
    if agent_cls.capabilities.cost_constrained:
        assert make_config(name).cost_constraint is None and callable(agent_cls.observe_episodes)


def _documented_fields(cls: type) -> list[str]:
    """Return the fields ``cls`` itself documents with a ``#:`` comment on the line above."""
    lines = textwrap.dedent(inspect.getsource(cls)).splitlines()
    names = []
    for node in ast.parse("\n".join(lines)).body[0].body:
        if isinstance(node, ast.AnnAssign) and lines[node.lineno - 2].strip().startswith("#:"):
            names.append(node.target.id)
    return names


@pytest.mark.parametrize("name", sorted(AGENTS))
def test_every_config_field_is_documented_exactly_once(name):
    config_cls = agent_classes(name)[1]
    documented = [field for cls in config_cls.__mro__ if dataclasses.is_dataclass(cls)
                  for field in _documented_fields(cls)]
    fields = [f.name for f in dataclasses.fields(config_cls)]
    assert sorted(documented) == sorted(fields), name


@pytest.mark.parametrize("name", sorted(AGENTS))
def test_the_shell_jits_each_function_once(name, monkeypatch):
    # RC-D4PG and MetaL replace D4PG's init and update, R-MPO DMPO's update: as pure
    # functions, before the shell jits them, so that nothing is compiled twice.
    jitted = []
    real_jit = jax.jit

    def counting_jit(fun, **kwargs):
        jitted.append(fun)
        return real_jit(fun, **kwargs)

    monkeypatch.setattr(jax, "jit", counting_jit)
    agent = make_agent(name, IMAGE if AGENTS[name].capabilities.pixels else OBS, ACT, batch_size=8)
    # init, update, update_many (its scan), act (and observe_episodes); jit compiles at first call
    expected = 5 if agent.capabilities.cost_constrained else 4
    assert len(jitted) == expected, (name, jitted)
