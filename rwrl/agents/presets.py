"""Named agent configs: the papers' configurations and faster ones for solved tasks.

A preset is a set of config-field overrides, applied before the user's own
(``make_config(name, preset=..., field=value)``; in a run,
``agent_config = {"preset": "fast", ...}``; ``rwrl run --preset fast``).
Every agent has ``paper``: its defaults, the configuration its paper and
acme state (the suite's investigation and the robust and constrained
benchmarks use it; ``rwrl.agents.d4pg`` and ``rwrl.agents.dmpo`` cite
their sources field by field). ``fast`` is for a user who wants a task
solved in the least wall-clock on a small CPU machine; each is documented
with its measured curve in ``benchmarks/results/versus_sbx.md``.

D4PG ``fast`` differs from ``paper`` in four fields, each for wall-clock:

* ``policy_hidden_sizes`` and ``critic_hidden_sizes`` (256, 256), not
  (256, 256, 256): half the floating-point work of an update (408 against
  746 MFLOP at batch 256 on cartpole's sizes; ``benchmarks/learner.py``),
  the sizes of SAC's and TD3's papers;
* ``policy_learning_rate`` and ``critic_learning_rate`` 3e-4, not 1e-4:
  SAC's and TD3's rate; fewer updates to the same return.

It keeps the replay ratio (``samples_per_insert`` 64 at batch 256: 0.25
updates per env step), the n-step return (5), the exploration noise and
the C51 critic. Chosen on seed 100 of cartpole-swingup among three
candidates (results/versus_sbx.md lists them), then measured on other seeds.

This module imports nothing heavy.
"""

from __future__ import annotations

from typing import Any

#: the preset every agent has: its config's defaults.
PAPER = "paper"

_D4PG_FAST = {"policy_hidden_sizes": (256, 256), "critic_hidden_sizes": (256, 256),
              "policy_learning_rate": 3e-4, "critic_learning_rate": 3e-4}

#: agent name -> preset name -> config overrides, for presets other than ``paper``.
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "d4pg": {"fast": _D4PG_FAST},
}


def preset_names(agent: str) -> list[str]:
    """Return the presets of ``agent``: ``paper`` first, then its own."""
    return [PAPER, *sorted(PRESETS.get(agent, {}))]


def preset_overrides(agent: str, preset: str) -> dict[str, Any]:
    """Return the config overrides of ``agent``'s ``preset`` (none for ``paper``).

    Raises:
        ValueError: for a preset the agent does not have, naming the allowed ones.
    """
    if preset == PAPER:
        return {}
    if preset not in PRESETS.get(agent, {}):
        raise ValueError(f"preset={preset!r}: agent {agent} has the presets {preset_names(agent)}")
    return dict(PRESETS[agent][preset])


__all__ = ["PAPER", "PRESETS", "preset_names", "preset_overrides"]
