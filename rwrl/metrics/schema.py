"""Column names of the per-episode rows, written down once.

One row per finished episode, flat and scalar so that pandas and pyarrow read
it without flattening (``pd.read_json(path, lines=True)``)::

    episode                      int, 0, 1, ... in order of finishing
    env_index                    int, index in the vector env (0 for a single env)
    return                       float, sum of rewards over the episode
    length                       int, number of agent steps (the reset is not a step)
    cost                         float, sum of info["cost"] (violated constraints)
    violations/<constraint>      int, steps on which <constraint> was violated
    violation_rate/<constraint>  float in [0, 1], violations / length
    safety/<var>/<stat>          float, <stat> in mean|std|min|max over the steps
    safety/<var>/<j>/<stat>      same, component j (C order) of a vector-valued var
    multiobj/reward              float, sum over steps of info["multiobj"][0]
    multiobj/safety              float, sum over steps of info["multiobj"][1]
    perturb/<param>              float, value of the perturbed parameter this episode
    regime                       int, index of the episode's physical regime (info["regime"],
                                 regime_spec)
    deadline_misses              int, steps whose action missed its deadline (missed > 0)
    missed_periods               int, sum of info["realtime"]["missed"] (control periods run on the fallback)
    latency/mean, latency/max    float seconds, of info["realtime"]["latency"]
    diverged                     int 0/1, 1 when the simulation diverged (info["diverged"]),
                                 which ended the episode (truncated) on that step
    <extra>                      user fields given to the recorder (e.g. phase)

Optional groups appear only when the env reports them.
"""

from __future__ import annotations

EPISODE = "episode"
ENV_INDEX = "env_index"
RETURN = "return"
LENGTH = "length"
COST = "cost"
DEADLINE_MISSES = "deadline_misses"
MISSED_PERIODS = "missed_periods"
DIVERGED = "diverged"
REGIME = "regime"

VIOLATIONS = "violations/"
VIOLATION_RATE = "violation_rate/"
SAFETY = "safety/"
MULTIOBJ = "multiobj/"
PERTURB = "perturb/"
LATENCY = "latency/"

MULTIOBJ_REWARD = MULTIOBJ + "reward"
MULTIOBJ_SAFETY = MULTIOBJ + "safety"
SAFETY_STATS = ("mean", "std", "min", "max")

#: names a user's extra field may not take: they would overwrite recorded data.
RESERVED_NAMES = (EPISODE, ENV_INDEX, RETURN, LENGTH, COST, DEADLINE_MISSES, MISSED_PERIODS,
                  DIVERGED, REGIME)
RESERVED_PREFIXES = (VIOLATIONS, VIOLATION_RATE, SAFETY, MULTIOBJ, PERTURB, LATENCY)


def is_reserved(name: str) -> bool:
    """Return True when ``name`` is (or would shadow) a recorded column."""
    return name in RESERVED_NAMES or name.startswith(RESERVED_PREFIXES)
