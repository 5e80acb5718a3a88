"""What an agent declares it can do, read by the run loop and the registry instead of probing it.

An agent class states its ``capabilities`` (``rwrl.agents.types.Agent``) and
its registry line in ``rwrl.agents.AGENTS`` states the same, so that light
callers (the run config's checks, the command line) read them without
importing the agent, and JAX with it; ``tests/agents/test_registry.py`` checks
that the two agree. This module imports nothing heavy.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Capabilities:
    """What the run loop must do differently for an agent; all off for a plain online agent."""

    #: learns only from a dataset (``rwrl run --dataset``); the other agents learn online
    #: or, being off-policy, from a dataset too.
    offline: bool = False
    #: steps a model set of the run's task from each transition's physics state (R-MPO):
    #: the loop switches the env's physics states on and the replay stores ``state_tm1``;
    #: the config's ``env`` is set to the run's task; it learns on rwrl tasks only.
    model_set: bool = False
    #: learns under a cost constraint (RC-D4PG, MetaL): the config's ``cost_constraint``
    #: chooses the cost c_t the replay stores, and the agent's
    #: ``observe_episodes(state, costs)`` is handed each finished training episode's average cost.
    cost_constrained: bool = False
    #: learns across regimes (D4PG-EWC, -KFAC, -HCL): after training envs reset, the loop calls
    #: ``observe_regime(state, replay, regime, key) -> (state, event or None)`` with the replay and
    #: the training envs' regime (``info['regime']``, None without a ``regime_spec``); at a switch
    #: (an event) it empties the replay when the config's ``reset_replay_at_switch`` says so.
    continual: bool = False
    #: consolidates at the switches the env reports (D4PG-EWC, -KFAC): a run needs a ``regime_spec``
    #: (D4PG-HCL finds the switches itself and runs on any env).
    reported_regimes: bool = False
    #: learns from images (D4PG-pixels): the run makes its envs with ``observation_mode='pixels'``
    #: (``RunConfig.env_make_kwargs``, ``frame_stack`` 3 unless given), the loop keeps the uint8
    #: frames (flattened) and the replay stores them as uint8, and the agent is built with the
    #: image shape (H, W, C) as its ``obs_size``. Only such agents take the pixel env options.
    pixels: bool = False


__all__ = ["Capabilities"]
