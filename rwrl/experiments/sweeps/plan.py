"""Sweep specs: a TOML grid of ordinary runs, expanded and validated before anything starts.

A sweep file (stdlib ``tomllib``)::

    [sweep]
    name = "delay-actions"                 # required: names the sweep
    agents = ["d4pg", "dmpo"]              # required: rwrl.agents.AGENTS names
    envs = ["cartpole-swingup"]            # required: <domain>-<task>
    seeds = 3                              # N (seeds 0 .. N-1) or a list [0, 4, 7]
    steps = 100_000                        # optional: RunConfig.steps (else [fixed] or 200k)

    [fixed]                                # settings shared by every run (paths below)
    eval_every = 5_000
    "agent_config.batch_size" = 128
    "env_kwargs.time_limit" = 500

    [axes]                                 # each a list of values; every axis is crossed
    "delay_spec.actions" = [0, 3, 6, 9]

    [[levels]]                             # named points: several paths that move together
    name = "none"
    [[levels]]
    name = "easy"
    "noise_spec.dropped.observations_prob" = 0.01
    "noise_spec.dropped.observations_steps" = 1

    [[levels]]                             # a level may name the agents it runs with
    name = "rc-beta0.1"
    agents = ["rcd4pg"]
    "agent_config.cost_threshold" = 0.1

Runs = agents x envs x points x seeds, where the points are levels x the
product of the axes (one point "base" when there are neither); a level with
``agents = [...]`` pairs only with those (their own hyperparameters, which
another agent's config would refuse, or a baseline's own setting such as
DMPO with domain randomization). A setting of a
level or an axis overrides the same path in [fixed]; one path in both a level
and an axis is an error.

Paths (quoted dotted keys, or TOML's nested tables: both are flattened to
leaf paths):

* a ``RunConfig`` field (``steps``, ``num_envs``, ``eval_every``,
  ``combined_challenge``, ``safety_coeff``, ...); not ``agent``, ``env``,
  ``seed`` (set in [sweep]);
* ``agent_config.<field>``: an agent hyperparameter (validated with
  ``rwrl.agents.make_config`` for each agent of the sweep);
* ``<challenge>_spec.<key>[.<key>]``: a field of a challenge spec dictionary
  (``delay_spec.actions``, ``noise_spec.gaussian.observations``,
  ``perturb_spec.max``; every spec of ``rwrl.challenges.registry.CHALLENGES``),
  validated with ``rwrl.challenges.specs.parse_specs``
  against each env's task facts; ``env_kwargs.time_limit``: episode length;
  ``env_kwargs.pixels_width`` (and the other ``PIXEL_OPTIONS``): the images of
  an agent that learns from pixels; for an ``ENV_FAMILIES`` env (``ratecontrol``)
  ``env_kwargs.<name>``: its factory's arguments (``corpus``, ``split``,
  ``reward_scale``, ...; no challenge spec applies to it).
* ``eval_env_kwargs.<spec>.<key>`` and ``eval_env_kwargs.time_limit``: the
  same for the evaluation env only (``RunConfig.eval_env_kwargs``: these
  replace the training env's, e.g. held-out perturbation values).

A value that differs per domain is a table ``{per_domain = {cartpole = 1.1,
walker = 0.25}}``; it resolves to the run's domain (a missing domain is an error).

Each run's directory is ``DIR/runs/<run id>``, the id readable and stable:
``<agent>__<env>__<point>__s<seed>``, the point being the level name and each
axis as ``path=value`` (``d4pg__cartpole-swingup__delay_spec.actions=3__s0``).

Sweep defaults that differ from ``rwrl run``'s: ``report = false`` (the sweep
has its own report; set ``report = true`` in [fixed] for one per run).

``kind = "rl"`` in [sweep] is this format (the default); ``kind = "bandit"`` is a grid
of bandit runs, ``rwrl.experiments.sweeps.bandit_plan``.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import itertools
import json
import math
import re
import tomllib
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from rwrl.challenges.registry import CHALLENGES
from rwrl.domains.names import domain_of
from rwrl.experiments.config import (ENV_FAMILIES, ENV_OPTIONS, SEED_MAX, ConfigError, RunConfig,
                                     check_env_kwargs, check_env_name, family_run_kwargs,
                                     task_facts)

# The challenge specs addressed as ``<spec>.<key>`` are the registry's (``CHALLENGES``);
# ``combined_challenge`` is a RunConfig field. The env keyword arguments beside them
# (``ENV_OPTIONS``) are addressed as ``env_kwargs.<name>``.
#: RunConfig fields set by [sweep] itself, not by a path.
_SWEEP_FIELDS = ("agent", "env", "seed")
_TABLES = ("sweep", "fixed", "axes", "levels")
_SWEEP_KEYS = ("name", "description", "agents", "envs", "seeds", "steps")
_NAME = re.compile(r"^[A-Za-z0-9_.+-]+$")
PER_DOMAIN = "per_domain"
#: RunConfig fields whose step counts ``--scale`` multiplies.
SCALED_FIELDS = ("steps", "eval_every", "checkpoint_every")
#: sweep defaults that differ from RunConfig's.
SWEEP_DEFAULTS = {"report": False}


class SweepSpecError(ValueError):
    """A sweep file is invalid; the message names the file, the key and what is allowed."""


@dataclasses.dataclass(frozen=True)
class PlannedRun:
    """One run of the sweep: its id, what varies, and its resolved config."""

    run_id: str
    #: name of the point's level, or None (no [[levels]]).
    level: str | None
    #: position of the level in the file (the order of magnitude), or None.
    level_index: int | None
    #: the level's and the axes' settings of this run, path -> value.
    settings: dict[str, Any]
    config: RunConfig

    def to_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "level": self.level, "level_index": self.level_index,
                "settings": self.settings, "config": self.config.to_dict()}


@dataclasses.dataclass(frozen=True)
class SweepPlan:
    """The expanded sweep, as recorded in ``DIR/sweep.json``."""

    name: str
    source: str
    #: the paths of the [axes], in file order.
    axes: tuple[str, ...]
    #: the names of the [[levels]], in file order.
    levels: tuple[str, ...]
    runs: tuple[PlannedRun, ...]
    description: str = ""
    #: "rl" (this module's runs) or "bandit" (``bandit_plan``: ``rwrl bandits run`` runs).
    kind: str = "rl"

    def to_dict(self) -> dict[str, Any]:
        kind = {} if self.kind == "rl" else {"kind": self.kind}  # RL plans read as before
        return {"format": 1, "name": self.name, "description": self.description, **kind,
                "source": self.source, "axes": list(self.axes), "levels": list(self.levels),
                "runs": [r.to_dict() for r in self.runs]}


@dataclasses.dataclass(frozen=True)
class Overrides:
    """Command-line changes applied to a sweep file (``rwrl sweep --scale ...``).

    Attributes:
      scale: multiplies ``steps``, ``eval_every`` and ``checkpoint_every`` (rounded, >= 1).
      seeds: N seeds (0 .. N-1) instead of the file's.
      steps: total env steps per run (after ``scale``: it wins).
      envs, agents: these instead of the file's.
    """

    scale: float = 1.0
    seeds: int | None = None
    steps: int | None = None
    envs: tuple[str, ...] | None = None
    agents: tuple[str, ...] | None = None


# ---------------------------------------------------------------- reading
def config_differences(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    """Return the fields of two recorded run configs (dicts) whose values differ, sorted."""
    return [k for k in sorted(set(a) | set(b))
            if json.dumps(a.get(k), sort_keys=True) != json.dumps(b.get(k), sort_keys=True)]


def load_plan(path: Path, overrides: Overrides | None = None) -> SweepPlan:
    """Read, expand and validate a sweep file; every run is checked before any starts.

    Raises:
      SweepSpecError: naming the file, the key and the allowed values.
    """
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as err:
        raise SweepSpecError(f"{path}: cannot read the sweep file ({err})") from err
    except tomllib.TOMLDecodeError as err:
        raise SweepSpecError(f"{path}: not valid TOML ({err})") from err
    try:
        return expand(data, str(path), overrides or Overrides())
    except SweepSpecError as err:
        raise SweepSpecError(f"{path}: {err}") from None


def expand(data: Mapping[str, Any], source: str, overrides: Overrides) -> SweepPlan:
    """Expand a parsed sweep file into its validated runs (see the module docstring).

    A file whose [sweep] says ``kind = "bandit"`` is a bandit sweep (``bandit_plan``).
    """
    sweep = data.get("sweep")
    if isinstance(sweep, Mapping) and "kind" in sweep:
        if sweep["kind"] == "bandit":
            from rwrl.experiments.sweeps import bandit_plan
            return bandit_plan.expand(data, source, overrides)
        if sweep["kind"] != "rl":
            raise SweepSpecError(f"[sweep] kind = {sweep['kind']!r}: allowed 'rl' (the default) "
                                 "or 'bandit'")
        sweep = {k: v for k, v in sweep.items() if k != "kind"}
        data = {**data, "sweep": sweep}
    _check_keys("the top level", data, _TABLES)
    if not isinstance(sweep, Mapping):
        raise SweepSpecError("[sweep] table is required (name, agents, envs, seeds)")
    _check_keys("[sweep]", sweep, _SWEEP_KEYS)
    name = _name("[sweep] name", sweep.get("name"))
    agents = _agents(overrides.agents or _str_list("[sweep] agents", sweep.get("agents")))
    envs = [_env(e) for e in (overrides.envs or _str_list("[sweep] envs", sweep.get("envs")))]
    seeds = _seeds(sweep.get("seeds") if overrides.seeds is None else overrides.seeds)
    fixed = _flatten("[fixed]", data.get("fixed", {}))
    if "steps" in sweep:
        if "steps" in fixed:
            raise SweepSpecError("steps is set in both [sweep] and [fixed]; keep one")
        fixed["steps"] = sweep["steps"]
    axes = _axes(data.get("axes", {}))
    level_agents = _level_agents(data.get("levels", []))
    levels = _levels(data.get("levels", []))
    _check_disjoint(axes, levels)
    points = _points(levels, axes)
    runs = []
    for agent, env, (label, level, index, settings), seed in itertools.product(
            agents, envs, points, seeds):
        if agent not in level_agents.get(level, (agent,)):
            continue
        where = f"{'level ' + repr(level) if level is not None else 'point ' + label} on {env}"
        config = _resolve(agent, env, seed, fixed, settings, overrides, where)
        runs.append(PlannedRun(f"{agent}__{env}__{label}__s{seed}", level, index,
                               settings, config))
    return SweepPlan(name, source, tuple(axes), tuple(lv[0] for lv in levels),
                     tuple(_unique_ids(runs)), str(sweep.get("description", "")))


# ---------------------------------------------------------------- [sweep]
def _check_keys(where: str, table: Any, allowed: Sequence[str]) -> None:
    if not isinstance(table, Mapping):
        raise SweepSpecError(f"{where} must be a table, got {table!r}")
    unknown = sorted(set(table) - set(allowed))
    if unknown:
        raise SweepSpecError(f"{where}: unknown key {unknown[0]!r}; allowed: {list(allowed)}")


def _name(where: str, value: Any) -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        raise SweepSpecError(f"{where} = {value!r}: give letters, digits and . _ + - only")
    return value


def _str_list(where: str, value: Any) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise SweepSpecError(f"{where} = {value!r}: give a non-empty list of names")
    if len(set(value)) != len(value):
        raise SweepSpecError(f"{where} = {value!r} lists a name twice")
    return list(value)


def _agents(names: Sequence[str], where: str = "[sweep] agents") -> list[str]:
    from rwrl.agents import AGENTS
    for name in names:
        if name not in AGENTS:
            raise SweepSpecError(f"{where}: unknown agent {name!r}; allowed: {sorted(AGENTS)}")
    return list(names)


def _env(name: str) -> str:
    try:
        check_env_name(name, "[sweep] envs")
    except ConfigError as err:
        raise SweepSpecError(str(err)) from None
    return name


def _seeds(value: Any) -> list[int]:
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= SEED_MAX + 1:
        return list(range(value))
    if (isinstance(value, list) and value and len(set(value)) == len(value)
            and all(isinstance(s, int) and not isinstance(s, bool) and 0 <= s <= SEED_MAX
                    for s in value)):
        return list(value)
    raise SweepSpecError(f"[sweep] seeds = {value!r}: give a count N >= 1 (seeds 0 .. N-1) "
                         f"or a list of distinct integers in [0, {SEED_MAX}]")


# ---------------------------------------------------------------- paths
def _flatten(where: str, table: Any, prefix: str = "") -> dict[str, Any]:
    """Return ``table``'s leaves as dotted path -> value (a per-domain table is a leaf)."""
    if not isinstance(table, Mapping):
        raise SweepSpecError(f"{where} must be a table, got {table!r}")
    out: dict[str, Any] = {}
    for key, value in table.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and set(value) != {PER_DOMAIN}:
            out.update(_flatten(where, value, path + "."))
        else:
            _check_path(where, path)
            out[path] = value
    return out


def _check_path(where: str, path: str) -> None:
    """Raise unless ``path`` addresses a setting (see the module docstring)."""
    head, _, rest = path.partition(".")
    if head in ("env_kwargs", "eval_env_kwargs"):
        inner_head = rest.partition(".")[0]
        if inner_head in CHALLENGES:
            return _check_path(where, rest)
        if rest in ENV_OPTIONS:
            return None
        families = {env: family_run_kwargs(env) for env in ENV_FAMILIES}
        if any(rest in names for names in families.values()):
            return None  # a family's argument; each run's env checks that it takes it
        also = "; ".join(f"for {env}: {list(names)}" for env, names in families.items())
        raise SweepSpecError(f"{where}: unknown key {path!r}; {head} allows "
                             f"{list(ENV_OPTIONS)} and the challenge specs {list(CHALLENGES)} "
                             f"({also})")
    if head in CHALLENGES:
        if not rest:
            raise SweepSpecError(f"{where}: {path!r} needs a field, e.g. '{head}.enable'")
        return None
    if head == "agent_config":
        if not rest or "." in rest:
            raise SweepSpecError(f"{where}: {path!r}: give one agent field, "
                                 "'agent_config.<field>'")
        return None
    if head in _SWEEP_FIELDS:
        raise SweepSpecError(f"{where}: {path!r} is set in [sweep] (agents, envs, seeds)")
    fields = [f.name for f in dataclasses.fields(RunConfig)
              if f.name not in (*_SWEEP_FIELDS, "env_kwargs", "eval_env_kwargs", "agent_config")]
    if head not in fields or rest:
        raise SweepSpecError(
            f"{where}: unknown key {path!r}; allowed: the RunConfig fields {fields}, "
            f"'agent_config.<field>', '<spec>.<field>' for the specs {list(CHALLENGES)}, "
            f"'env_kwargs.time_limit'")
    return None


def _axes(table: Any) -> dict[str, list[Any]]:
    axes = _flatten("[axes]", table)
    for path, values in axes.items():
        if not isinstance(values, list) or not values:
            raise SweepSpecError(f"[axes] {path} = {values!r}: give a non-empty list of values")
        keys = [json.dumps(v, sort_keys=True) for v in values]
        if len(set(keys)) != len(keys):
            raise SweepSpecError(f"[axes] {path} = {values!r} lists a value twice")
    return axes


def _levels(value: Any) -> list[tuple[str, dict[str, Any]]]:
    if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
        raise SweepSpecError("[[levels]] must be an array of tables, each with a name")
    levels: list[tuple[str, dict[str, Any]]] = []
    for i, table in enumerate(value):
        name = _name(f"[[levels]] #{i + 1} name", table.get("name"))
        if name in (lv[0] for lv in levels):
            raise SweepSpecError(f"[[levels]]: the name {name!r} is used twice")
        levels.append((name, _flatten(f"[[levels]] {name!r}",
                                      {k: v for k, v in table.items() if k not in ("name", "agents")})))
    return levels


def _level_agents(value: Any) -> dict[str, tuple[str, ...]]:
    """Return level name -> the agents it is restricted to, for the levels that give ``agents``."""
    restricted = {}
    for table in value if isinstance(value, list) else []:
        if isinstance(table, Mapping) and "agents" in table:
            where = f"[[levels]] {table.get('name')!r} agents"
            restricted[table.get("name")] = tuple(_agents(_str_list(where, table["agents"]), where))
    return restricted


def _check_disjoint(axes: Mapping[str, Any], levels: Sequence[tuple[str, dict]]) -> None:
    for name, settings in levels:
        both = sorted(set(settings) & set(axes))
        if both:
            raise SweepSpecError(f"{both[0]!r} is set by level {name!r} and by [axes]; "
                                 "give each path in one of them")


def _format_value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", text)


def _points(levels: Sequence[tuple[str, dict]], axes: Mapping[str, list]
            ) -> list[tuple[str, str | None, int | None, dict[str, Any]]]:
    """Return (label, level, level index, settings) per grid point, levels outermost."""
    level_rows = [(name, i, s) for i, (name, s) in enumerate(levels)] or [(None, None, {})]
    combos = list(itertools.product(*axes.values())) if axes else [()]
    points = []
    for (name, index, settings), combo in itertools.product(level_rows, combos):
        axis_settings = dict(zip(axes, combo))
        parts = ([name] if name is not None else []) + [
            f"{path}={_format_value(v)}" for path, v in axis_settings.items()]
        points.append(("__".join(parts) or "base", name, index, {**settings, **axis_settings}))
    return points


def _unique_ids(runs: list[PlannedRun]) -> Iterable[PlannedRun]:
    """Keep readable ids; two settings that read alike (a/b and a_b) get a hash suffix."""
    counts: dict[str, int] = {}
    for run in runs:
        counts[run.run_id] = counts.get(run.run_id, 0) + 1
    for run in runs:
        if counts[run.run_id] > 1:
            digest = hashlib.sha1(json.dumps(run.settings, sort_keys=True).encode()).hexdigest()[:6]
            run = dataclasses.replace(run, run_id=f"{run.run_id}__{digest}")
        yield run


# ---------------------------------------------------------------- resolving
def _per_domain(path: str, value: Any, domain: str) -> Any:
    if isinstance(value, Mapping) and set(value) == {PER_DOMAIN}:
        table = value[PER_DOMAIN]
        if not isinstance(table, Mapping) or domain not in table:
            given = sorted(table) if isinstance(table, Mapping) else table
            raise SweepSpecError(f"{path}: no value for domain {domain!r} in per_domain {given}")
        return table[domain]
    return value


def _set(target: dict, keys: Sequence[str], value: Any) -> None:
    for key in keys[:-1]:
        target = target.setdefault(key, {})
        if not isinstance(target, dict):
            raise SweepSpecError(f"{'.'.join(keys)}: {key!r} holds a value, not a table")
    target[keys[-1]] = value


def _resolve(agent: str, env: str, seed: int, fixed: Mapping[str, Any],
             settings: Mapping[str, Any], overrides: Overrides, where: str) -> RunConfig:
    """Return the validated RunConfig of one run."""
    domain = domain_of(env)  # a family's name is its own domain (per_domain tables)
    fields: dict[str, Any] = dict(SWEEP_DEFAULTS)
    env_kwargs: dict[str, Any] = {}
    eval_env_kwargs: dict[str, Any] = {}
    agent_config: dict[str, Any] = {}
    for path, raw in {**fixed, **settings}.items():
        value = _per_domain(path, raw, domain)
        keys = path.split(".")
        if keys[0] == "eval_env_kwargs":
            _set(eval_env_kwargs, keys[1:], value)
            continue
        if keys[0] == "env_kwargs":
            _set(env_kwargs, keys[1:], value)
        elif keys[0] in CHALLENGES:
            _set(env_kwargs, keys, value)
        elif keys[0] == "agent_config":
            agent_config[keys[1]] = value
        else:
            fields[keys[0]] = value
    _scale(fields, overrides, where)
    try:
        config = RunConfig(agent=agent, env=env, seed=seed, env_kwargs=env_kwargs,
                           eval_env_kwargs=eval_env_kwargs or None,
                           agent_config=agent_config, **fields)
    except (ConfigError, TypeError) as err:
        raise SweepSpecError(f"{where}: {err}") from None
    _validate_agent(agent, json.dumps(agent_config, sort_keys=True), where)
    _validate_env(env, json.dumps(config.env_make_kwargs(), sort_keys=True), where)
    if eval_env_kwargs:
        _validate_env(env, json.dumps(config.eval_config().env_make_kwargs(), sort_keys=True),
                      f"{where} (eval_env_kwargs)")
    return config


def _scale(fields: dict[str, Any], overrides: Overrides, where: str) -> None:
    if not (math.isfinite(overrides.scale) and overrides.scale > 0):
        raise SweepSpecError(f"--scale = {overrides.scale!r}: give a number > 0")
    if overrides.scale != 1.0:
        defaults = RunConfig()
        for name in SCALED_FIELDS:
            value = fields.get(name, getattr(defaults, name))
            if isinstance(value, int) and not isinstance(value, bool):
                fields[name] = max(1, round(value * overrides.scale))
    if overrides.steps is not None:
        fields["steps"] = overrides.steps


@functools.lru_cache(maxsize=256)
def _validate_agent(agent: str, overrides_json: str, where: str) -> None:
    from rwrl.agents import make_config
    try:
        make_config(agent, **json.loads(overrides_json))
    except (TypeError, ValueError) as err:
        raise SweepSpecError(f"{where}: agent_config for {agent}: {err}") from None


@functools.lru_cache(maxsize=256)
def _validate_env(env: str, kwargs_json: str, where: str) -> None:
    try:
        check_env_kwargs(env, json.loads(kwargs_json))
    except ConfigError as err:
        raise SweepSpecError(f"{where}: {err}") from None


__all__ = ["Overrides", "PlannedRun", "SweepPlan", "SweepSpecError",
           "expand", "load_plan", "task_facts"]
