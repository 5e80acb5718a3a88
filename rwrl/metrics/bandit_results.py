"""A bandit run directory and a bandit sweep's results: file names, the Parquet schema, readers.

Written by ``rwrl bandits run`` and by a bandit sweep's workers
(``rwrl.experiments.bandit_run``), read by the report layer, which imports only
this module and ``sweep_results`` (no bandit code, no experiments)::

    RUN/config.json      the run's config: {"kind": "bandit", env, policy, horizon,
                         seeds, seed, env_params, policy_params, grid}
    RUN/regret.parquet   one row per instance (seed) and recorded round t (``COLUMNS``)
    RUN/summary.json     the final regret's mean and 95 % interval over seeds, wall-clock;
                         written last: a run is done when it exists and reads
    RUN/.lock            while a process runs it

``regret.parquet`` columns (``COLUMNS``), rows ordered by seed, then t:

* ``env``, ``policy`` (str): the names given to ``rwrl bandits run``;
* ``seed`` (int64): the instance's index i in the batch, 0 .. N-1;
* ``instance_seed`` (uint64): its seed, ``spawn_seeds(S, N)[i]`` with S the run's base seed;
* ``horizon`` (int64): T; ``t`` (int64): the round, 1-based, on the run's grid;
* ``regret`` (float64): cumulative regret R(t) = oracle_value - policy_value;
* ``reward`` (float64): the *expected* reward of the policy's pull in round t (the
  pulled arm's mean, no noise; the follower bandit: the chosen candidates' expected
  follower change summed over the accounts), not the realised, noisy reward;
* ``policy_value``, ``oracle_value`` (float64): cumulative expected rewards of the policy
  and of the oracle up to round t (sums of ``reward`` and of the oracle's).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from rwrl.metrics import sweep_results as results

if TYPE_CHECKING:
    import pandas as pd

#: the ``kind`` of a bandit run's config and of a bandit sweep's plan.
BANDIT_KIND = "bandit"
REGRET_FILE = "regret.parquet"
#: regret.parquet's columns, in order (module docstring).
COLUMNS = ("env", "policy", "seed", "instance_seed", "horizon", "t", "regret", "reward",
           "policy_value", "oracle_value")


def is_bandit_config(config: Any) -> bool:
    """Return whether a run config (a dict) is a bandit run's."""
    return isinstance(config, Mapping) and config.get("kind") == BANDIT_KIND


def is_bandit_plan(plan: Mapping[str, Any]) -> bool:
    """Return whether a recorded sweep plan (``sweep.json``) is a bandit sweep's."""
    return plan.get("kind") == BANDIT_KIND


def read_regret(run_dir: Path) -> "pd.DataFrame":
    """Return a run directory's ``regret.parquet``.

    Raises:
      ValueError: it is missing or does not read (the message names the file).
    """
    import pandas as pd
    path = Path(run_dir) / REGRET_FILE
    try:
        frame = pd.read_parquet(path)
    except (OSError, ValueError) as err:
        raise ValueError(f"{path}: unreadable ({err})") from err
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: not a regret table (no column {missing[0]!r})")
    return frame


def params_label(config: Mapping[str, Any]) -> str:
    """Return a run's env and policy parameters as short text ('' when it has none)."""
    parts = [f"{k}={json.dumps(v, separators=(',', ':'))}"
             for prefix in ("env", "policy")
             for k, v in sorted(config.get(f"{prefix}_params", {}).items())]
    return " ".join(parts)


def read_bandit_sweep(sweep_dir: Path) -> tuple[dict[str, Any], "pd.DataFrame", "pd.DataFrame"]:
    """Return (plan, runs, regret) of a bandit sweep directory, finished or not.

    Returns:
      plan: ``sweep.json``.
      runs: one row per planned run: run_id, env, policy, horizon, seeds, params, status.
      regret: the rows of every finished run's ``regret.parquet`` with run_id and params.
    """
    import pandas as pd
    plan = results.read_plan(sweep_dir)
    runs, frames = [], []
    for run in plan["runs"]:
        config = run["config"]
        path = results.run_dir(sweep_dir, run["run_id"])
        status = results.run_status(path)
        row = {"run_id": run["run_id"], "env": config["env"], "policy": config["policy"],
               "horizon": config["horizon"], "seeds": config["seeds"],
               "params": params_label(config), "status": status,
               "error": results.first_error_line(path) if status == "failed" else None}
        if status == "done":
            try:
                frame = read_regret(path)
            except ValueError as err:
                row.update(status="broken", error=str(err))
            else:
                frames.append(frame.assign(run_id=run["run_id"], params=row["params"]))
        runs.append(row)
    regret = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=[*COLUMNS, "run_id", "params"])
    return plan, pd.DataFrame(runs), regret


__all__ = ["BANDIT_KIND", "COLUMNS", "REGRET_FILE", "is_bandit_config", "is_bandit_plan",
           "params_label", "read_bandit_sweep", "read_regret"]
