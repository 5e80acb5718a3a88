"""NEXT_STEP autoreset bookkeeping: which envs of a vector env step, which finish.

Gymnasium's NEXT_STEP autoreset mode: the step that ends an episode returns
its true last observation with ``terminated`` or ``truncated`` set; the next
call to ``step`` resets that env instead of stepping it (its action is
ignored, its reward is 0, and it returns the new episode's first
observation). That step belongs to no episode. The vector env, the episode
recorder and the training loop all need to tell those steps apart; this is
the one place that does. The vector env's DISABLED mode keeps the same marks:
there ``resetting`` flags an ended env that awaits the user's ``reset``.

Example:
  >>> marks = EpisodeMarks(2)
  >>> marks.step(np.array([False, False]), np.array([False, True]))   # env 1 ends
  (array([ True,  True]), array([False,  True]))
  >>> marks.step(np.array([False, False]), np.array([False, False]))  # env 1 resets
  (array([ True, False]), array([False, False]))
"""

from __future__ import annotations

import numpy as np


class EpisodeMarks:
    """Tracks, per env, whether its next step is an autoreset.

    Args:
      num_envs: N.
    """

    def __init__(self, num_envs: int):
        #: (N,) bool: True where the env's next ``step`` resets it instead of stepping it.
        self.resetting = np.zeros(num_envs, bool)

    def reset(self, mask=None) -> None:
        """Record an explicit ``reset`` of the envs ``mask`` selects (all if None)."""
        if mask is None:
            self.resetting[:] = False
        else:
            self.resetting[mask] = False

    def step(self, terminated, truncated) -> tuple[np.ndarray, np.ndarray]:
        """Record one vector step's flags; return (stepped, finished), each (N,) bool.

        ``stepped``: the envs that took a step of an episode (not an autoreset).
        ``finished``: the envs whose episode ended on this step.
        """
        stepped = ~self.resetting
        finished = stepped & (np.asarray(terminated, bool) | np.asarray(truncated, bool))
        self.resetting = finished
        return stepped, finished


def split_ends(ended, info: dict) -> tuple[np.ndarray, np.ndarray]:
    """Return (terminated, truncated) for a ``BatchedEnv`` step's ends (``rwrl.tasks.protocol``).

    ``info['terminated']``, where a family sets it, marks the ends that are true
    terminal states; it is taken out of ``info`` (the adapters report it as
    Gymnasium's ``terminated`` and dm_env's discount 0). Every other end is a
    truncation.

    Example:
      >>> info = {"terminated": np.array([True, False, True])}
      >>> split_ends(np.array([True, True, False]), info), info
      ((array([ True, False, False]), array([False,  True, False])), {})
    """
    ended = np.asarray(ended, bool)
    terminal = info.pop("terminated", None)
    terminated = ended & np.asarray(terminal, bool) if terminal is not None else np.zeros_like(ended)
    return terminated, ended & ~terminated

