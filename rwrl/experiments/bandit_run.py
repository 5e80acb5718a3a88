"""A bandit run: N seeded instances of a bandit env played by one policy, as a run directory.

What ``rwrl bandits run`` and every run of a bandit sweep execute. One run is one
batch: the package (``rwrl.bandits``) steps the N instances together (vectorised),
records the regret on the run's grid of rounds, and this module writes the run
directory of ``rwrl.metrics.bandit_results``: ``config.json`` first, then
``regret.parquet``, then ``summary.json`` (the mark of a finished run), each atomically,
under the run's lock.

Envs: the rotting bandits of ``rwrl.bandits.ENVS`` (policies ``POLICIES``) and
``follower``, the follower-acquisition contextual simulator (``FollowerBandit``),
whose policies are the LinUCB learners of ``LEARNERS``. A follower run's "round" is
one step of every account; its regret and rewards are summed over the accounts.

Seed convention: a run with base seed S (``--seed``, default 0) and N seeds
(``--seeds N``) is one batch whose instance i (the ``seed`` column, 0 .. N-1) is
seeded with ``spawn_seeds(S, N)[i]`` (``rwrl.core.seeding``; the ``instance_seed``
column), the env and the policy each on their own named stream of it. numpy's
``SeedSequence.spawn`` makes child i independent of N, so seeds 0 .. N-1 of a run
with more seeds are the same instances, and instance i equals a run of one instance
seeded ``[spawn_seeds(S, N)[i]]``.

Parameters: ``env_params`` are keyword arguments of the env's factory (``sigma``,
``switch``, ``num_arms``, ...; the follower: ``num_accounts``, ``drift``, ...),
``policy_params`` of the policy's (``window``, ``alpha``, ...; the learners: the
``LinUCBConfig`` fields). Numbers must be finite; the package checks each range.
"""

from __future__ import annotations

import dataclasses
import inspect
import io
import math
import time
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from rwrl.core.checks import count as _count
from rwrl.metrics import bandit_results
from rwrl.metrics.mean_interval import mean_interval
from rwrl.metrics.sweep_results import RUN_CONFIG, RUN_SUMMARY, read_summary
from rwrl.storage.atomic_files import WriteError, atomic_write_bytes
from rwrl.storage.progress_reporter import ProgressReporter
from rwrl.storage.run_lock import RunLock
from rwrl.storage.run_settings import check_same_settings, json_bytes

#: the contextual env's name (the rotting ones are ``rwrl.bandits.ENVS``'s keys).
FOLLOWER = "follower"
GRIDS = ("log", "all")
#: points of the "log" grid (``rwrl.bandits.log_grid``): both ends kept.
LOG_GRID_POINTS = 50
#: seeds are those ``rwrl run`` allows.
SEED_MAX = 2**32 - 1
CONFIDENCE = 0.95
INTERVAL_NOTE = ("95 % Student-t interval of the mean over seeds: mean ± t(0.975, N-1) s / "
                 "sqrt(N), s the sample standard deviation; null with one seed")


# ---------------------------------------------------------------- names and parameters
def env_names() -> list[str]:
    """Return every env name: the rotting ones, then the follower simulator."""
    from rwrl.bandits import ENVS
    return sorted(ENVS) + [FOLLOWER]


def policy_names(env: str | None = None) -> list[str]:
    """Return the policies of ``env`` (None: of the rotting envs, then the learners)."""
    from rwrl.bandits import LEARNERS, POLICIES
    if env == FOLLOWER:
        return sorted(LEARNERS)
    return sorted(POLICIES) + ([] if env is not None else sorted(LEARNERS))


def _signature_defaults(factory: Callable, skip: tuple[str, ...]) -> dict[str, Any]:
    bound = getattr(factory, "keywords", {}) or {}
    return {p.name: (None if p.default is p.empty else p.default)
            for p in inspect.signature(factory).parameters.values()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
            and p.name not in bound and p.name not in skip}


def env_parameters(env: str) -> dict[str, Any]:
    """Return the parameters ``env`` takes, name -> default."""
    from rwrl.bandits import ENVS, FollowerBandit
    check_env(env)
    if env == FOLLOWER:
        return _signature_defaults(FollowerBandit, ("self", "num_envs"))
    return _signature_defaults(ENVS[env], ("num_instances",))


def policy_parameters(env: str, policy: str) -> dict[str, Any]:
    """Return the parameters ``policy`` takes on ``env``, name -> default."""
    from rwrl.bandits import LEARNERS
    from rwrl.bandits.policies import POLICIES
    check_policy(env, policy)
    if env == FOLLOWER:
        return dataclasses.asdict(LEARNERS[policy])
    return _signature_defaults(POLICIES[policy].factory, ("self", "horizon"))


def check_env(env: Any) -> str:
    """Return ``env``, or raise a ValueError listing the allowed names."""
    names = env_names()
    if env not in names:
        raise ValueError(f"unknown env {env!r}: allowed {', '.join(names)} "
                         "(`rwrl bandits envs` lists them)")
    return env


def check_policy(env: str, policy: Any) -> str:
    """Return ``policy`` if ``env`` takes it, or raise a ValueError listing those it takes."""
    allowed = policy_names(env)
    if policy in allowed:
        return policy
    other = policy_names(None)
    if policy in other:
        kind = "a follower learner" if env != FOLLOWER else "a rotting-bandit policy"
        raise ValueError(f"policy {policy!r} is {kind}, not one of env {env!r}: allowed "
                         f"{', '.join(allowed)}")
    raise ValueError(f"unknown policy {policy!r} for env {env!r}: allowed {', '.join(allowed)} "
                     "(`rwrl bandits policies` lists them)")


def _check_finite(where: str, value: Any) -> Any:
    """Return ``value`` (a JSON-like parameter), or raise naming a non-finite number in it."""
    if isinstance(value, (list, tuple)):
        return [_check_finite(where, v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{where} = {value!r} is not allowed: a finite number")
    if isinstance(value, str) and value.strip().lower().lstrip("+-") in ("nan", "inf", "infinity"):
        raise ValueError(f"{where} = {value!r} is not allowed: a finite number")
    if isinstance(value, Mapping):
        raise ValueError(f"{where} = {value!r} is not allowed: a number, a string or a list")
    return value


def split_params(env: str, policy: str, pairs: Mapping[str, Any]
                 ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Route ``key=value`` settings to the env or the policy.

    ``env.KEY`` and ``policy.KEY`` go where they say; a bare ``KEY`` goes to the one of
    them that takes it (``sigma`` is both the rotting envs' noise and SWA's assumed
    noise: write ``env.sigma`` or ``policy.sigma``).

    Raises:
      ValueError: naming the key and what is allowed.
    """
    env_allowed, policy_allowed = env_parameters(env), policy_parameters(env, policy)
    env_params: dict[str, Any] = {}
    policy_params: dict[str, Any] = {}
    for key, value in pairs.items():
        head, dot, rest = key.partition(".")
        if dot and head in ("env", "policy"):
            target, name = head, rest
        elif key in env_allowed and key in policy_allowed:
            raise ValueError(f"{key} is a parameter of env {env!r} and of policy {policy!r}: "
                             f"write env.{key}=... or policy.{key}=...")
        elif key in env_allowed or key in policy_allowed:
            target, name = ("env" if key in env_allowed else "policy"), key
        else:
            raise ValueError(f"{key!r} is not a parameter of env {env!r} (allowed "
                             f"{', '.join(env_allowed) or 'none'}) nor of policy {policy!r} "
                             f"(allowed {', '.join(policy_allowed) or 'none'})")
        allowed = env_allowed if target == "env" else policy_allowed
        if name not in allowed:
            owner = f"env {env!r}" if target == "env" else f"policy {policy!r}"
            raise ValueError(f"{owner} takes no parameter {name!r}: allowed "
                             f"{', '.join(allowed) or 'none'}")
        (env_params if target == "env" else policy_params)[name] = _check_finite(key, value)
    return env_params, policy_params


# ---------------------------------------------------------------- the config
@dataclasses.dataclass(frozen=True)
class BanditRunConfig:
    """What a bandit run is (module docstring); validated on construction.

    Attributes:
      env: a name of ``env_names()``.
      policy: a policy of that env (``policy_names(env)``).
      horizon: T rounds, >= the number of arms of a rotting env.
      seeds: N instances in the batch (seeds 0 .. N-1).
      seed: the base seed S: instance i is seeded ``spawn_seeds(S, N)[i]``.
      env_params, policy_params: keyword arguments of the env's and the policy's factory.
      grid: "log" (``LOG_GRID_POINTS`` log-spaced rounds, 1 and T kept) or "all" rounds.
    """

    env: str
    policy: str
    horizon: int
    seeds: int = 1
    seed: int = 0
    env_params: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    policy_params: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    grid: str = "log"

    def __post_init__(self):
        check_env(self.env)
        check_policy(self.env, self.policy)
        object.__setattr__(self, "horizon", _count("horizon", self.horizon))
        object.__setattr__(self, "seeds", _count("seeds", self.seeds))
        object.__setattr__(self, "seed", _count("seed", self.seed, 0, SEED_MAX))
        if self.grid not in GRIDS:
            raise ValueError(f"grid = {self.grid!r} is not allowed: one of {', '.join(GRIDS)}")
        for name in ("env_params", "policy_params"):
            params = getattr(self, name)
            if not isinstance(params, Mapping):
                raise ValueError(f"{name} = {params!r} is not allowed: a table of parameters")
            object.__setattr__(self, name, {str(k): _check_finite(f"{name[:-7]}.{k}", v)
                                            for k, v in params.items()})

    @property
    def steps(self) -> int:
        """Rounds of each instance (T): what a sweep's progress counts."""
        return self.horizon

    def to_dict(self) -> dict[str, Any]:
        return {"kind": bandit_results.BANDIT_KIND, "env": self.env, "policy": self.policy,
                "horizon": self.horizon, "seeds": self.seeds, "seed": self.seed,
                "env_params": dict(self.env_params), "policy_params": dict(self.policy_params),
                "grid": self.grid}

    @classmethod
    def from_dict(cls, data: Any) -> "BanditRunConfig":
        """Read a config dict back (``to_dict``'s); a ValueError names what does not fit."""
        if not bandit_results.is_bandit_config(data):
            raise ValueError("not a bandit run config (no \"kind\": \"bandit\")")
        fields = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(data) - set(fields) - {"kind"})
        if unknown:
            raise ValueError(f"unknown key {unknown[0]!r}: allowed {', '.join(fields)}")
        return cls(**{k: v for k, v in data.items() if k != "kind"})


def build(config: BanditRunConfig) -> tuple[Any, Any]:
    """Return the (not yet reset) env and policy of ``config``; a ValueError names a bad value."""
    from rwrl.bandits import FollowerBandit, make_env, make_learner, make_policy
    if config.env == FOLLOWER:
        env = FollowerBandit(num_envs=config.seeds, **config.env_params)
        policy = make_learner(config.policy, config.seeds, env.num_accounts, env.num_features,
                              delay=env.delay, **config.policy_params)
        return env, policy
    env = make_env(config.env, num_instances=config.seeds, **config.env_params)
    if config.horizon < env.num_arms:
        raise ValueError(f"horizon = {config.horizon} is shorter than the number of arms "
                         f"K = {env.num_arms} of env {config.env!r}: allowed horizon >= K")
    return env, make_policy(config.policy, horizon=config.horizon, **config.policy_params)


def grid_of(config: BanditRunConfig) -> np.ndarray:
    """Return the rounds (1-based) at which the run records its rows."""
    from rwrl.bandits import log_grid
    if config.grid == "all":
        return np.arange(1, config.horizon + 1)
    return log_grid(config.horizon, LOG_GRID_POINTS)


# ---------------------------------------------------------------- running
def _curves(config: BanditRunConfig, env: Any, policy: Any, steps: np.ndarray,
            progress: Callable[[int], None]) -> dict[str, np.ndarray]:
    """Play the batch; return (N, G) regret, reward, policy_value, oracle_value at ``steps``."""
    from rwrl.bandits import run, run_learner
    if config.env == FOLLOWER:
        result = run_learner(env, policy, config.horizon, seed=config.seed, progress=progress)
        rows = steps - 1
        return {"regret": result.cumulative_regret[rows].T,
                "reward": result.rewards[rows].T,
                "policy_value": np.cumsum(result.rewards, axis=0)[rows].T,
                "oracle_value": np.cumsum(result.oracle_rewards, axis=0)[rows].T}
    curves = run(env, policy, config.horizon, seed=config.seed, steps=steps,
                 record_values=True, progress=progress)
    return {"regret": curves.regret, "reward": curves.rewards,
            "policy_value": curves.policy_values, "oracle_value": curves.oracle_values}


def regret_table(config: BanditRunConfig, steps: np.ndarray, curves: Mapping[str, np.ndarray]):
    """Return the rows of ``regret.parquet`` (``bandit_results.COLUMNS``), seed-major."""
    import pandas as pd
    from rwrl.core.seeding import spawn_seeds
    n, g = config.seeds, steps.size
    columns = {"env": [config.env] * (n * g), "policy": [config.policy] * (n * g),
               "seed": np.repeat(np.arange(n, dtype=np.int64), g),
               "instance_seed": np.repeat(np.array(spawn_seeds(config.seed, n), np.uint64), g),
               "horizon": np.full(n * g, config.horizon, np.int64),
               "t": np.tile(steps.astype(np.int64), n)}
    for name in ("regret", "reward", "policy_value", "oracle_value"):
        columns[name] = np.asarray(curves[name], np.float64).reshape(-1)
    return pd.DataFrame(columns, columns=list(bandit_results.COLUMNS))


def _summary(config: BanditRunConfig, policy: Any, curves: Mapping[str, np.ndarray],
             wall: float) -> dict[str, Any]:
    details = {}
    if type(policy).__name__ == "SWA":  # not wSWA, whose window changes every epoch
        details["window"] = int(policy.window)  # M: the formula's, or the one given
    return {"kind": bandit_results.BANDIT_KIND, "env": config.env, "policy": config.policy,
            "horizon": config.horizon, "seeds": config.seeds, "seed": config.seed,
            "counters": {"rounds": config.horizon, "instances": config.seeds},
            "final_regret": mean_interval(curves["regret"][:, -1], CONFIDENCE), "interval": INTERVAL_NOTE,
            "final_policy_value": float(np.mean(curves["policy_value"][:, -1])),
            "final_oracle_value": float(np.mean(curves["oracle_value"][:, -1])),
            "policy_details": details,
            "wall_clock_s": wall, "timing": {"total": wall},
            "instance_rounds_per_s": config.horizon * config.seeds / wall if wall > 0 else None}


def finished_summary(run_dir: Path) -> dict[str, Any] | None:
    """Return the run's summary when it finished (``summary.json`` reads), else None."""
    if not (Path(run_dir) / RUN_SUMMARY).exists():
        return None
    try:
        return read_summary(run_dir)
    except ValueError:
        return None


def check_same_run(run_dir: Path, config: BanditRunConfig) -> None:
    """Raise a ValueError when ``run_dir`` holds another run (naming the differing fields)."""
    check_same_settings(run_dir, RUN_CONFIG, config.to_dict())


def run_bandit(config: BanditRunConfig, run_dir: Path, progress: bool = True,
               file: Any = None, terminal: bool | None = None) -> dict[str, Any]:
    """Play ``config``'s batch and write its run directory; return its summary.

    A directory that already holds this run finished is left as it is (its summary is
    returned); one that holds it unfinished (killed) runs it again from round 1.

    Args:
      progress: report the rounds played (a bar on a terminal, else a line every 5 %).
      file: where to report progress (default stderr).

    Raises:
      ValueError: a bad parameter (the package's message), or ``run_dir`` holds another run.
      RunLockedError: another process is running it.
      WriteError: a file cannot be written.
    """
    run_dir = Path(run_dir)
    env, policy = build(config)  # every check before anything is written
    check_same_run(run_dir, config)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise WriteError(run_dir, err) from err
    with RunLock(run_dir):
        done = finished_summary(run_dir)
        if done is not None:
            return done
        atomic_write_bytes(run_dir / RUN_CONFIG, json_bytes(config.to_dict()))
        reporter = ProgressReporter(config.horizon, desc=f"{config.policy} on {config.env}",
                                    unit="round", file=file, enabled=progress, terminal=terminal)
        reporter.set_postfix({"instances": config.seeds})
        steps = grid_of(config)
        started = time.perf_counter()
        try:
            curves = _curves(config, env, policy, steps, reporter.update)
        finally:
            reporter.close()
        wall = time.perf_counter() - started
        frame = regret_table(config, steps, curves)
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        atomic_write_bytes(run_dir / bandit_results.REGRET_FILE, buffer.getvalue())
        summary = _summary(config, policy, curves, wall)
        atomic_write_bytes(run_dir / RUN_SUMMARY, json_bytes(summary))  # last: the run is done
    return summary


__all__ = ["FOLLOWER", "GRIDS", "BanditRunConfig", "build", "check_env", "check_policy",
           "check_same_run", "env_names", "env_parameters", "finished_summary", "grid_of",
           "policy_names", "policy_parameters", "regret_table", "run_bandit",
           "split_params"]
