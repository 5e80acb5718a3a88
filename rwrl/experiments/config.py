"""The typed configuration of one training run (``rwrl run``).

A run's ``config.json`` holds the resolved ``RunConfig`` (every field, defaults
filled in) beside the agent's resolved config, so that a run directory alone
says how it was produced and ``rwrl run --resume`` needs nothing else.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import importlib
import json
import math
import typing
from pathlib import Path
from typing import Any, Mapping

from rwrl.agents import AGENTS
from rwrl.challenges.combined import LEVELS
from rwrl.domains.names import env_id_of
from rwrl.storage.atomic_files import atomic_write_bytes

AGENT_NAMES = tuple(AGENTS)
COMBINED_CHALLENGES = tuple(LEVELS)
#: the largest run seed. The seed keys ``jax.random.PRNGKey``, which keeps its low 32
#: bits only (without ``jax_enable_x64``): seed 2**32 would repeat seed 0's run, and
#: a seed of 2**63 or more overflows.
SEED_MAX = 2**32 - 1
#: the pixel observation options (``rwrl.envs.pixels``), for an agent with the ``pixels``
#: capability only.
PIXEL_OPTIONS = ("pixels_width", "pixels_height", "pixels_camera", "frame_stack")
#: env keyword arguments beside the challenge keywords (``RunConfig.env_kwargs``).
ENV_OPTIONS = ("time_limit", *PIXEL_OPTIONS)
#: what a ``pixels`` agent's run adds to its env keywords (``RunConfig.env_make_kwargs``): the
#: image alone, DrQ's three stacked frames unless ``env_kwargs`` gives ``frame_stack``.
#: ``observation_mode`` is the agent's to choose, never an ``env_kwargs`` key.
PIXEL_ENV = {"observation_mode": "pixels", "frame_stack": 3}
#: env families a run may train on beside the MuJoCo tasks: env name (its id
#: ``rwrl/<name>-v0``) -> "module:function" checking its ``env_kwargs``, fn(kwargs)
#: raising a ValueError that names the key and the allowed ones (imported when
#: used). No challenge applies to them (their ``facts`` is None): their
#: ``env_kwargs`` are their factory's, and the challenge keywords, ``combined_challenge``,
#: ``safety_coeff`` and the agents of a model set (physics) are refused.
ENV_FAMILIES = {"ratecontrol": "rwrl.envs.ratecontrol:check_run_kwargs"}


def family_run_kwargs(env: str) -> tuple[str, ...]:
    """Return the ``env_kwargs`` names an ``ENV_FAMILIES`` env takes (its module's ``RUN_KWARGS``)."""
    module = ENV_FAMILIES[env].partition(":")[0]
    return tuple(importlib.import_module(module).RUN_KWARGS)


class ConfigError(ValueError):
    """A run configuration value is invalid; the message names the field."""


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Everything that defines a training run, except where it is written.

    Step counts are environment steps: stored transitions summed over the
    vector env's N copies (the reset step of the NEXT_STEP autoreset is not
    an env step, it stores nothing).
    """

    #: agent name, one of ``AGENT_NAMES``.
    agent: str = "d4pg"
    #: task as ``<domain>-<task>``, or an ``ENV_FAMILIES`` name; the env id is ``rwrl/<env>-v0``.
    env: str = "cartpole-swingup"
    #: ``combined_challenge`` level of the suite ("easy", "medium", "hard") or None.
    combined_challenge: str | None = None
    #: enable the safety constraints with this ``safety_coeff`` in [0, 1]; None: off.
    safety_coeff: float | None = None
    #: further challenge keyword arguments for ``gymnasium.make_vec`` (spec dicts) and
    #: ``ENV_OPTIONS`` (``time_limit``; the ``PIXEL_OPTIONS`` for an agent that learns from
    #: pixels); an ``ENV_FAMILIES`` env: its factory's (``ratecontrol``: corpus, split, target_qps, ...).
    env_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    #: total training env steps; the run stops at the first vector step reaching it.
    steps: int = 200_000
    #: seed of everything random in the run (envs, agent keys, replay sampling).
    seed: int = 0
    #: parallel training envs (the vector env's N, D4PG's actors).
    num_envs: int = 8
    #: env steps between evaluations (one also runs at step 0 and at the end).
    eval_every: int = 10_000
    #: evaluation episodes per evaluation, run in parallel in their own vector env.
    eval_episodes: int = 5
    #: env steps between checkpoints, taken mid-episode too (see
    #: rwrl.experiments.loop); one is also written at step 0 and at the end.
    checkpoint_every: int = 20_000
    #: minutes of wall-clock between checkpoints, beside ``checkpoint_every``
    #: (whichever comes first): a kill loses at most about this much training,
    #: however slow the steps and however short the run.
    checkpoint_minutes: float = 5.0
    #: checkpoints kept on disk; older ones are deleted after a new one is written.
    keep_checkpoints: int = 2
    #: include the replay buffer in checkpoints (each adds only the transitions stored since
    #: the previous one); off, a resumed run refills it and so learns differently.
    save_replay: bool = True
    #: overrides of the agent's config fields (see ``rwrl.agents.AGENTS``).
    agent_config: dict[str, Any] = dataclasses.field(default_factory=dict)
    #: k > 0: either agent sees its last k observations and actions
    #: (``rwrl.agents.history.ObservationHistory``, the remedy for delays); 0: off.
    observation_history: int = 0
    #: write ``report.html`` when the run completes.
    report: bool = True
    #: None: the evaluation env is built like the training env. Else keyword
    #: arguments that replace the training env's for the evaluation env (a
    #: challenge spec, ``time_limit``): e.g. a ``perturb_spec`` of held-out
    #: parameter values, to evaluate a policy trained on others (online runs);
    #: for ``ratecontrol``, ``{"split": "test"}`` evaluates on the held-out clips.
    eval_env_kwargs: dict[str, Any] | None = None
    #: None: learn online. Else a Minari dataset (a local id under
    #: ``MINARI_DATASETS_PATH`` or a dataset directory) to learn from offline
    #: (``rwrl.experiments.offline_loop``): ``steps``, ``eval_every`` and
    #: ``checkpoint_every`` then count learner updates, the evaluation env is
    #: the dataset's eval env, and ``env``, ``combined_challenge``,
    #: ``safety_coeff``, ``env_kwargs`` and ``num_envs`` are not used.
    dataset: str | None = None

    def __post_init__(self) -> None:
        _check_types(self)
        _check_values(self)

    @property
    def env_id(self) -> str:
        """The Gymnasium id of the training task."""
        return env_id_of(self.env)

    def env_make_kwargs(self) -> dict[str, Any]:
        """Return the keyword arguments for ``gymnasium.make_vec``: challenges and env options.

        A ``pixels`` agent's env renders: ``PIXEL_ENV`` under its ``env_kwargs``.
        """
        kwargs = dict(self.env_kwargs)
        if AGENTS[self.agent].capabilities.pixels:
            kwargs = {**PIXEL_ENV, **kwargs}
        if self.combined_challenge is not None:
            kwargs["combined_challenge"] = self.combined_challenge
        if self.safety_coeff is not None:
            kwargs["safety_spec"] = {"enable": True, "safety_coeff": self.safety_coeff}
        return kwargs

    def eval_config(self) -> "RunConfig":
        """Return the config whose ``env_make_kwargs`` build the evaluation env."""
        if self.eval_env_kwargs is None:
            return self
        return self.replace(env_kwargs={**self.env_kwargs, **self.eval_env_kwargs},
                            eval_env_kwargs=None)

    def replace(self, **changes: Any) -> "RunConfig":
        """Return a copy with ``changes`` applied and validated."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunConfig":
        """Build from a dict, naming any unknown field."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"unknown RunConfig field(s): {', '.join(unknown)}")
        return cls(**data)


def _field_types() -> dict[str, Any]:
    return typing.get_type_hints(RunConfig)


def _accepts(value: Any, hint: Any) -> bool:
    """Return whether ``value`` fits the (simple) type ``hint``."""
    args = typing.get_args(hint)
    if args and type(None) in args:  # "X | None"
        return value is None or any(_accepts(value, a) for a in args if a is not type(None))
    origin = typing.get_origin(hint) or hint
    if origin is float:  # an int is a fine float, a bool is not
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if origin is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, origin)


def _check_types(config: RunConfig) -> None:
    for name, hint in _field_types().items():
        value = getattr(config, name)
        if not _accepts(value, hint):
            raise ConfigError(
                f"RunConfig.{name} must be of type {hint}, got {value!r}")


def _require(ok: bool, field: str, value: Any, allowed: str) -> None:
    if not ok:
        raise ConfigError(f"RunConfig.{field} must be {allowed}, got {value!r}")


def _check_values(c: RunConfig) -> None:
    _require(c.agent in AGENT_NAMES, "agent", c.agent, f"one of {AGENT_NAMES}")
    family = c.env in ENV_FAMILIES
    _require(family or (c.env.count("-") >= 1 and " " not in c.env), "env", c.env,
             f"'<domain>-<task>', e.g. 'cartpole-swingup', or one of {tuple(ENV_FAMILIES)} "
             f"(`rwrl envs` lists them)")
    for name in ("combined_challenge", "safety_coeff"):
        _require(not family or getattr(c, name) is None, name, getattr(c, name),
                 f"None for env {c.env!r} (the challenges are defined on the MuJoCo tasks)")
    _require(not family or not AGENTS[c.agent].capabilities.model_set, "agent", c.agent,
             f"an agent without a model set for env {c.env!r} (it has no physics to model)")
    _check_pixels(c, family)
    _require(c.combined_challenge in (None, *COMBINED_CHALLENGES), "combined_challenge",
             c.combined_challenge, f"None or one of {COMBINED_CHALLENGES}")
    _require(c.safety_coeff is None or 0.0 <= c.safety_coeff <= 1.0, "safety_coeff",
             c.safety_coeff, "None or in [0, 1]")
    for name in ("steps", "num_envs", "eval_every", "eval_episodes",
                 "checkpoint_every", "keep_checkpoints"):
        _require(getattr(c, name) >= 1, name, getattr(c, name), "a positive integer")
    _require(0 <= c.seed <= SEED_MAX, "seed", c.seed, f"an integer in [0, {SEED_MAX}] (2**32 - 1)")
    _require(0 <= c.observation_history <= 100, "observation_history", c.observation_history,
             "an integer in [0, 100] (0: off)")
    _require(c.dataset is not None or not AGENTS[c.agent].capabilities.offline, "dataset", c.dataset,
             f"a dataset for the offline agent {c.agent!r}")
    _require(not AGENTS[c.agent].capabilities.reported_regimes or "regime_spec" in c.env_kwargs, "env_kwargs",
             c.env_kwargs, f"a regime_spec for {c.agent!r}, which consolidates at the regime switches the env "
             f"reports (docs/continual.md)")
    _require(c.dataset is None or (c.dataset != "" and c.observation_history == 0), "dataset",
             c.dataset, "None, or a non-empty dataset id or path with observation_history 0")
    _require(math.isfinite(c.checkpoint_minutes) and c.checkpoint_minutes > 0,
             "checkpoint_minutes", c.checkpoint_minutes, "a finite number of minutes > 0")


def _check_pixels(c: RunConfig, family: bool) -> None:
    """Refuse the pixel options for an agent that learns from the state, and pixels where none render."""
    pixels = AGENTS[c.agent].capabilities.pixels
    pixel_agents = [name for name, entry in AGENTS.items() if entry.capabilities.pixels]
    _require(not pixels or not family, "agent", c.agent,
             f"an agent that learns from the state for env {c.env!r} (it renders no images)")
    _require(not pixels or c.observation_history == 0, "observation_history", c.observation_history,
             f"0 for {c.agent!r}, which learns from stacked frames (frame_stack)")
    if family:
        return  # the family's factory checks its own keys
    for field in ("env_kwargs", "eval_env_kwargs"):
        given = getattr(c, field) or {}
        _require("observation_mode" not in given, field, given,
                 f"without observation_mode: the agent sets it ('pixels' for the agents that "
                 f"learn from pixels, {pixel_agents}; the state otherwise)")
        options = sorted(set(given) & set(PIXEL_OPTIONS))
        _require(pixels or not options, field, given,
                 f"without the pixel options {options}: agent {c.agent!r} learns from the state "
                 f"(the agents that learn from pixels: {pixel_agents})")


def check_buildable(config: RunConfig) -> None:
    """Raise a ConfigError unless the run's agent config, env and challenges would build.

    Cheap (config dataclasses and the task's facts; no model compiled, no env
    made), so ``rwrl run`` checks before it creates anything on disk. An
    offline run (``dataset``) makes no env of its own: only its agent is checked.
    """
    from rwrl.agents import make_config
    try:
        make_config(config.agent, **config.agent_config)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"RunConfig.agent_config: {err}") from None
    if config.dataset is not None:
        return
    check_env_name(config.env)
    envs = [("env_kwargs", config)]
    if config.eval_env_kwargs is not None:
        envs.append(("eval_env_kwargs", config.eval_config()))
    for field, run in envs:
        try:
            check_env_kwargs(config.env, run.env_make_kwargs())
        except ConfigError as err:
            raise ConfigError(f"RunConfig.{field}: {err}") from None


def check_env_name(name: str, field: str = "RunConfig.env") -> None:
    """Raise a ConfigError naming the close matches and ``rwrl envs`` unless ``name`` is an env."""
    from rwrl.domains import env_names
    names = [*env_names(), *ENV_FAMILIES]
    if name in names:
        return
    close = difflib.get_close_matches(name, names, n=3)
    hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
    raise ConfigError(f"{field}: unknown env {name!r}{hint} (`rwrl envs` lists the {len(names)} envs)")


@functools.lru_cache(maxsize=16)
def task_facts(env: str):
    """Return the ``TaskFacts`` of a MuJoCo task's env name (``cartpole-swingup``), without compiling its model."""
    from rwrl.domains import env_names, make_domain
    from rwrl.tasks.facts import domain_facts
    return domain_facts(make_domain(*env_names()[env]))


def check_env_kwargs(env: str, kwargs: Mapping[str, Any]) -> None:
    """Raise a ConfigError naming the key and what is allowed unless ``kwargs`` suit ``env``.

    Args:
      env: a known env name.
      kwargs: ``gymnasium.make_vec`` arguments: the challenge keywords
        (``rwrl.challenges.registry.keywords()``), ``ENV_OPTIONS`` and ``observation_mode``; for an
        ``ENV_FAMILIES`` env, its own (checked by name: their values when it is made).
    """
    from rwrl.challenges.registry import keywords
    from rwrl.challenges.specs import parse_specs
    kwargs = dict(kwargs)
    if env in ENV_FAMILIES:
        challenges = sorted(set(kwargs) & set(keywords()))
        if challenges:
            raise ConfigError(f"challenge keyword(s) {challenges} do not apply to env {env!r}: "
                              f"the challenges are defined on the MuJoCo tasks")
        module, _, function = ENV_FAMILIES[env].partition(":")
        try:
            getattr(importlib.import_module(module), function)(kwargs)
        except ValueError as err:
            raise ConfigError(str(err)) from None
        return
    # observation_mode: a pixels agent's env_make_kwargs (RunConfig refuses it in env_kwargs)
    unknown = sorted(set(kwargs) - set(keywords()) - set(ENV_OPTIONS) - {"observation_mode"})
    if unknown:
        raise ConfigError(f"unknown key(s) {unknown}: allowed {list(ENV_OPTIONS)} and the "
                          f"challenge keywords {sorted(keywords())}")
    limit = kwargs.pop("time_limit", None)
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        raise ConfigError(f"time_limit = {limit!r}: give an integer >= 1 (control steps)")
    pixels = {name: kwargs.pop(name, None) for name in ("observation_mode", *PIXEL_OPTIONS)}
    try:
        parse_specs(task_facts(env), **kwargs)
        _check_pixel_kwargs(env, pixels, kwargs)
    except ValueError as err:
        raise ConfigError(str(err)) from None


def _check_pixel_kwargs(env: str, pixels: dict[str, Any], challenges: dict[str, Any]) -> None:
    """Raise a ValueError unless the pixel options suit the observation mode and the challenges.

    The image size is checked against the model when the env is made.
    """
    from rwrl.envs.pixels import check_pixel_challenges, pixel_options
    mode = pixels.pop("observation_mode") or "flat"
    options = pixel_options(mode, *(pixels[name] for name in PIXEL_OPTIONS))
    if options is not None:
        check_pixel_challenges(options, challenges, task_facts(env))


def write_config(path: Path, run: RunConfig, agent_config: dict[str, Any]) -> None:
    """Write ``config.json``: the resolved run and agent configs."""
    text = json.dumps({"run": run.to_dict(), "agent": agent_config}, indent=2, sort_keys=True)
    atomic_write_bytes(path, (text + "\n").encode())


def read_config(path: Path) -> tuple[RunConfig, dict[str, Any]]:
    """Read ``config.json`` back into the run config and the agent config dict."""
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ConfigError(f"cannot read run config {path}: {err}") from err
    return RunConfig.from_dict(data["run"]), data.get("agent", {})
