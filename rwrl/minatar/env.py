"""One MinAtar game as a ``gymnasium.Env``: 10x10xC boolean frames, discrete actions.

MinAtar (Young and Tian 2019, "MinAtar: An Atari-Inspired Testbed for Thorough
and Reproducible Reinforcement Learning Experiments", arXiv 1903.03176) plays
miniature Atari games on a 10x10 grid; each of the C channels of a frame marks
one kind of object (Breakout: paddle, ball, trail, brick). This adapter wraps
the ``minatar`` package's ``Environment`` (its public methods only: ``seed``,
``reset``, ``act``, ``state``, ``state_shape``, ``num_actions``,
``minimal_action_set``) and keeps its defaults, those of the paper's runs:

* sticky actions: with probability ``sticky_action_prob`` = 0.1 the game
  repeats the previous action instead of the one given (Machado et al. 2018);
* difficulty ramping on (the games speed up as they go);
* all 6 actions (``minimal_action_set=True``: the game's own subset), as the
  authors' DQN (``examples/dqn.py``: ``env.num_actions()``).

Intended deviation, one: ``reset`` clears the sticky-action memory (the
previous action becomes 0, "no-op"), where MinAtar carries the last action of
the previous episode into the first step of the next. So an episode depends
on its reset seed alone (``reset(seed=s)`` makes it reproducible), which is
what lets a run resume from a checkpoint taken between episodes.

Episodes end by termination only (a game over; Freeway after 2,500 frames):
MinAtar has no time limit, so ``truncated`` is always False. Rewards are the
game's (+1 per brick, alien, treasure, ...; Seaquest's surfacing bonus more).

Example:
  >>> env = MinAtarEnv("breakout")
  >>> obs, info = env.reset(seed=0)
  >>> obs.shape, obs.dtype, int(env.action_space.n)
  ((10, 10, 4), dtype('bool'), 6)
  >>> obs, reward, terminated, truncated, info = env.step(0)
  >>> truncated
  False
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np

from rwrl.minatar import check_game

#: MinAtar's default probability of repeating the previous action (the paper's setting).
STICKY_ACTION_PROB = 0.1
#: the action whose index is 0 in every game: no-op (the sticky memory after a reset).
NOOP = 0


class MinAtarEnv(gymnasium.Env):
    """A MinAtar game; observations (10, 10, C) bool, actions ``Discrete(6)`` (or the minimal set).

    Args:
      game: one of ``rwrl.minatar.GAMES``.
      sticky_action_prob: probability in [0, 1] that the previous action is repeated.
      difficulty_ramping: let the game speed up as it goes (MinAtar's default).
      minimal_action_set: expose only the game's meaningful actions (Breakout: 3).
    """

    metadata = {"render_modes": []}

    def __init__(self, game: str, sticky_action_prob: float = STICKY_ACTION_PROB,
                 difficulty_ramping: bool = True, minimal_action_set: bool = False):
        try:  # the game engine is imported only when an env is made
            from minatar import Environment
        except ImportError:
            raise ImportError("the MinAtar games are not installed: pip install 'rwrl[minatar]' (MinAtar is "
                              "GPL-3.0 licensed, so rwrl, Apache-2.0, does not install it by default)") from None
        check_game(game)
        if not 0.0 <= sticky_action_prob <= 1.0:
            raise ValueError(f"sticky_action_prob={sticky_action_prob!r}: must be in [0, 1]")
        self.game = game
        self._game = Environment(game, sticky_action_prob=sticky_action_prob,
                                 difficulty_ramping=difficulty_ramping)
        self._actions = (list(self._game.minimal_action_set()) if minimal_action_set
                         else list(range(self._game.num_actions())))
        self.action_space = gymnasium.spaces.Discrete(len(self._actions))
        self.observation_space = gymnasium.spaces.Box(0, 1, tuple(self._game.state_shape()), bool)

    def reset(self, *, seed: int | None = None, options: dict | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start an episode; ``seed`` reseeds the game's generator (spawns, sticky draws)."""
        super().reset(seed=seed)
        if seed is not None:
            self._game.seed(seed)
        self._game.reset()
        self._game.last_action = NOOP  # the deviation of the module docstring
        return self._game.state(), {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Play ``action`` (an index of ``action_space``) for one frame."""
        reward, terminated = self._game.act(self._actions[int(action)])
        return self._game.state(), float(reward), bool(terminated), False, {}


__all__ = ["MinAtarEnv", "NOOP", "STICKY_ACTION_PROB"]
