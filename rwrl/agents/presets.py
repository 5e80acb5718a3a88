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

D4PG ``fast`` differs from ``paper`` in five fields, each for wall-clock:

* ``policy_hidden_sizes`` and ``critic_hidden_sizes`` (128, 128), not
  (256, 256, 256): a fifth of the floating-point work of an update;
* ``batch_size`` 128, not 256, with ``samples_per_insert`` kept at 64: so
  the replay ratio doubles to 0.5 updates per env step, each update half
  the work again (1.5 ms against 5.7 ms on cartpole's sizes here,
  ``benchmarks/results/learner.md``);
* ``policy_learning_rate`` and ``critic_learning_rate`` 3e-4, not 1e-4:
  SAC's and TD3's rate; fewer updates to the same return.

It keeps the n-step return (5), the exploration noise, the target period
and the C51 critic. Chosen among six candidates on seeds 100 and 101 of
cartpole-swingup (env steps and wall-clock to an evaluation return of 750,
one run each, this 2-core machine, 2026-12-06), then checked on walker-walk
seed 100 (600 at 80,000 env steps in 77 s; ``paper`` reached 600 at
160,000 in learning.md), and measured on other seeds
(``benchmarks/results/versus_sbx.md``):

| candidate | seed 100 | seed 101 |
|---|---|---|
| (256, 256), lr 3e-4, batch 256, ratio 0.25 | 70k steps, 98 s | 135k, 170 s |
| (256, 256), lr 3e-4, batch 256, ratio 0.5 | stopped at 40k (461, 124 s) | not run |
| (128, 128), lr 3e-4, batch 256, ratio 0.25 | 95k, 87 s | not run |
| (256, 256), lr 3e-4, batch 128, ratio 0.5 | 75k, 113 s | not run |
| **(128, 128), lr 3e-4, batch 128, ratio 0.5** | **45k, 43 s** | **60k, 55 s** |
| (128, 128), lr 3e-4, batch 128, ratio 1.0 | stopped at 15k | 65k, 100 s |

This module imports nothing heavy.
"""

from __future__ import annotations

from typing import Any

#: the preset every agent has: its config's defaults.
PAPER = "paper"

_D4PG_FAST = {"policy_hidden_sizes": (128, 128), "critic_hidden_sizes": (128, 128), "batch_size": 128,
              "policy_learning_rate": 3e-4, "critic_learning_rate": 3e-4}

#: agent name -> preset name -> config overrides, for presets other than ``paper``.
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "d4pg": {"fast": _D4PG_FAST},
    # the continual agents are D4PG with consolidation: D4PG's fast networks and learner
    "d4pg-ewc": {"fast": _D4PG_FAST},
    "d4pg-kfac": {"fast": _D4PG_FAST},
    "d4pg-hcl": {"fast": _D4PG_FAST},
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
