"""Dataset ids, sizes and the published episode counts.

Ids follow Minari's ``namespace/name-vVERSION``:
``rwrl/<task>-<challenge>-<size>pct-v0``, e.g. ``rwrl/cartpole-swingup-none-5pct-v0``.
A size is a percentage of the published 100 % episode count (RL Unplugged's
rwrl sets); each episode is 1000 steps (1001 observations).

  >>> dataset_id("walker-walk", "easy", 20), episode_count("walker-walk", 20)
  ('rwrl/walker-walk-easy-20pct-v0', 1000)
"""

from __future__ import annotations

from typing import Any

from rwrl.domains.names import env_id_of

NAMESPACE = "rwrl"
VERSION = 0
#: episodes of the published 100 % datasets.
FULL_EPISODES = {"cartpole-swingup": 500, "walker-walk": 5_000, "quadruped-walk": 500,
                 "humanoid-walk": 20_000}
#: percentages of FULL_EPISODES, as published.
SIZES = (1, 5, 20, 40, 100)
#: combined challenge levels of the published sets.
CHALLENGES = ("none", "easy")


def check_choice(field: str, value: Any, allowed: tuple) -> None:
    """Raise ValueError naming ``field``, ``value`` and the ``allowed`` ones when not allowed."""
    if value not in allowed:
        raise ValueError(f"{field} = {value!r} is not allowed: choose one of {list(allowed)}")


def episode_count(task: str, size: int) -> int:
    """Return the episodes of ``task``'s dataset at ``size`` percent (cartpole 1 %: 5)."""
    check_choice("task", task, tuple(FULL_EPISODES))
    check_choice("size", size, SIZES)
    return FULL_EPISODES[task] * size // 100


def dataset_id(task: str, challenge: str, size: int) -> str:
    """Return the Minari id of a dataset (see the module docstring)."""
    check_choice("task", task, tuple(FULL_EPISODES))
    check_choice("challenge", challenge, CHALLENGES)
    check_choice("size", size, SIZES)
    return f"{NAMESPACE}/{task}-{challenge}-{size}pct-v{VERSION}"


def challenge_kwargs(challenge: str) -> dict[str, Any]:
    """Return the env keyword arguments of a challenge level ({} for none)."""
    check_choice("challenge", challenge, CHALLENGES)
    return {} if challenge == "none" else {"combined_challenge": challenge}


def env_id(task: str) -> str:
    """Return the Gymnasium id of a task's env name (``rwrl.domains.names.env_id_of``)."""
    return env_id_of(task)
