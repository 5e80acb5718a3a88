"""MinAtar and discrete control: the games behind a Gymnasium env, DQN and LS-DQN, their runs.

The room of the discrete-action family (its place on DESIGN.md's map: beside
``agents/`` and ``bandits/``, the agents' floor; it imports ``agents`` (the
config pieces, the optimiser factory, ``agents.shallow``), ``metrics`` (the
episode rows) and ``storage``, and nothing imports it but ``cli``)::

    env.py      MinAtarEnv: one MinAtar game (Young and Tian 2019) as a gymnasium.Env
    replay.py   the one-step replay of 10x10xC boolean frames, saved incrementally
    dqn.py      DQN (MinAtar's baseline) and LS-DQN (Levine et al. 2017): one agent,
                ``ls_every`` switches the shallow least-squares refits of the last layer on
    run.py      a training run as a run directory: per-episode rows, checkpoints, resume

``rwrl minatar run`` (``rwrl.cli.minatar``) and ``benchmarks/lsdqn_minatar.py``
drive them; docs/minatar.md is the guide. This package imports nothing heavy:
the names below are plain data, so the CLI lists them without JAX or MinAtar.
"""

from __future__ import annotations

#: the five MinAtar games (the ``minatar`` package's module names).
GAMES = ("asterix", "breakout", "freeway", "seaquest", "space_invaders")

#: the named agents: name -> DQNConfig overrides (``rwrl.minatar.dqn.make_config``).
#: ``dqn``: MinAtar's DQN baseline; ``ls-dqn``: the same with a ridge refit of the last
#: layer every 50 target syncs (the authors' code: between_SRL = 50); the ablation, the same
#: refit schedule, batch and objective, the head fitted by Adam steps instead: on the whole
#: batch (``ls-dqn-adam``) or on mini-batches of 32 drawn from it (``ls-dqn-adam-32``).
AGENTS = {
    "dqn": {},
    "ls-dqn": {"ls_every": 50_000, "ls_solver": "ridge"},
    "ls-dqn-adam": {"ls_every": 50_000, "ls_solver": "adam"},
    "ls-dqn-adam-32": {"ls_every": 50_000, "ls_solver": "adam", "ls_adam_batch": 32},
}


def check_game(game: object) -> str:
    """Return ``game``, or raise a one-line ValueError listing the games."""
    if game not in GAMES:
        raise ValueError(f"unknown game {game!r}: allowed {', '.join(GAMES)}")
    return game  # type: ignore[return-value]


def check_agent(agent: object) -> str:
    """Return ``agent``, or raise a one-line ValueError listing the named agents."""
    if agent not in AGENTS:
        raise ValueError(f"unknown agent {agent!r}: allowed {', '.join(AGENTS)}")
    return agent  # type: ignore[return-value]


__all__ = ["AGENTS", "GAMES", "check_agent", "check_game"]
