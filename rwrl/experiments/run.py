"""Start or resume a run directory: the entry points behind ``rwrl run``.

A run directory holds::

    config.json      the resolved run config and agent config
    metrics.jsonl    one row per training episode and per evaluation episode
    checkpoints/     the newest ``keep_checkpoints`` checkpoints
    summary.json     counters and wall-clock, written when the run completes
    report.html      the HTML report, written when the run completes

Rows of ``metrics.jsonl``: the per-episode columns of :mod:`rwrl.metrics.schema`
(return, length, cost, ``violations/<c>``, ``violation_rate/<c>``, safety
variable statistics, ...) plus::

    phase        "train" (an exploring episode) or "eval" (a deterministic one)
    episode      0, 1, ... per phase, in order of finishing
    env_index    which env of its vector env ran it
    env_steps    training env steps when it ended (eval: when the evaluation ran)
    updates      learner updates by then
    wall_time    seconds of loop wall-clock by then (summed over sessions)
    evaluation   eval only: 0, 1, ...; its ``eval_episodes`` rows share it (with a
                 ``regime_spec``: ``eval_episodes`` per regime, ``rwrl.experiments.regime_eval``)
    train_regime eval only, with a ``regime_spec``: the regime the run was training on
                 (``regime``: the regime evaluated; on train rows, the episode's regime)
    learner/<m>  the agent's last update metrics (losses; a constrained agent's lambda, J_C, ...)
                 as of the row, on train and eval rows

``summary.json`` marks a finished run; a run without it is in progress (or
was killed) and ``resume_run`` continues it.

Resume takes the newest checkpoint that verifies, restores and is consistent
with ``metrics.jsonl`` (it counted no more rows than the file holds); each
one passed over is named in a ``CheckpointWarning``. With none, the run
starts over (with a warning). The file is cut back to the rows the
checkpoint counted, and the resumed run writes the rest again: the very
rows of the uninterrupted run (``rwrl.experiments.loop`` says what
"identical" means), or, where the checkpoint cannot reproduce the run (a
training env without ``env_state``, ``save_replay`` off, a checkpoint of the
previous format), one ``ResumeWarning`` line each says what differs.
Failed writes (disk full, read-only) raise
``rwrl.storage.atomic_files.WriteError`` naming the file; the run resumes once the
cause is gone.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import shutil
import warnings
from pathlib import Path
from typing import Any, Callable

from rwrl.agents import AGENTS
from rwrl.agents.history import ObservationHistory
from rwrl.storage.atomic_files import WriteError, atomic_write_bytes
from rwrl.storage.checkpoint import Checkpoint, CheckpointError, load_latest
from rwrl.experiments.config import ENV_FAMILIES, ConfigError, RunConfig, read_config, write_config
from rwrl.storage.run_lock import RunLock, RunLockedError
from rwrl.experiments.loop import Trainer
from rwrl.experiments.regime_eval import make_eval_env
from rwrl.metrics.episode_file import count_rows, truncate_rows

AgentFactory = Callable[[RunConfig, int, int], Any]
EnvFactory = Callable[[RunConfig, int], Any]

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
SUMMARY_FILE = "summary.json"
REPORT_FILE = "report.html"


class ResumeWarning(UserWarning):
    """A resumed run will not repeat the uninterrupted run exactly; the message says what differs."""


def make_agent_for(config: RunConfig, obs_size: int, action_size: int) -> Any:
    """Build the run's agent from ``rwrl.agents`` with the config's overrides.

    Agents hold no training state (it is passed explicitly), only their
    compiled functions, so runs of one process with the same agent config share
    one agent and skip recompiling (a resume, a sweep, the tests). An agent
    with the ``model_set`` capability (R-MPO) models the run's env unless
    ``agent_config`` names one (its config's ``env``). A ``cost_constrained``
    agent (RC-D4PG, MetaL) that names no ``cost_constraint`` learns under its
    domain's default (``rcd4pg.DEFAULT_COST_CONSTRAINTS``, ``ratecontrol``'s
    'bitrate' included; none for other domains: then the cost counts the
    violated constraints).
    """
    overrides = dict(config.agent_config)
    capabilities = AGENTS[config.agent].capabilities
    if capabilities.model_set and "env" not in overrides:
        overrides["env"] = config.env  # an agent of a model set (R-MPO) models the run's task
    if capabilities.cost_constrained and "cost_constraint" not in overrides:
        from rwrl.agents.rcd4pg import DEFAULT_COST_CONSTRAINTS
        from rwrl.domains.names import domain_of
        overrides["cost_constraint"] = DEFAULT_COST_CONSTRAINTS.get(domain_of(config.env))
    key = json.dumps([config.agent, obs_size, action_size, overrides], sort_keys=True, default=list)
    return _cached_agent(key)


@functools.lru_cache(maxsize=8)
def _cached_agent(key: str) -> Any:
    from rwrl.agents import make_agent
    name, obs_size, action_size, overrides = json.loads(key)
    try:
        return make_agent(name, obs_size, action_size, **overrides)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"RunConfig.agent_config: {err}") from err


def make_env_for(config: RunConfig, num_envs: int, num_threads: int | None = None) -> Any:
    """Build a Gymnasium vector env of the run's task and challenges.

    An agent with the ``model_set`` capability (R-MPO) gets envs made with
    ``physics_state_info=True``: each reset and step reports the physics state
    its replay stores. ``num_threads``: the engine's threads (None: its default;
    not recorded in the config; not passed to an ``ENV_FAMILIES`` env, which has no engine). An agent with the ``pixels`` capability gets
    envs that render (``RunConfig.env_make_kwargs``). An ``ENV_FAMILIES`` env's
    factory checks the values of its ``env_kwargs``, and a pixel env its image
    size and camera (a ValueError): they become a ConfigError.
    """
    import gymnasium
    import rwrl  # noqa: F401  (registers the rwrl/ ids)
    # the engine's threads: MuJoCo's; a family without physics has no engine to thread
    use_threads = num_threads is not None and config.env not in ENV_FAMILIES
    options = {"num_threads": num_threads} if use_threads else {}
    if AGENTS[config.agent].capabilities.model_set:
        options["physics_state_info"] = True
    try:
        return gymnasium.make_vec(config.env_id, num_envs=num_envs, **options,
                                  **config.env_make_kwargs())
    except gymnasium.error.Error as err:
        raise ConfigError(f"RunConfig.env: {err}") from err
    except ValueError as err:
        if config.env not in ENV_FAMILIES and not AGENTS[config.agent].capabilities.pixels:
            raise
        raise ConfigError(f"RunConfig.env_kwargs of {config.env!r}: {err}") from err


@dataclasses.dataclass
class RunHooks:
    """What tests and benchmarks may swap in; the defaults are the real pieces."""

    agent_factory: AgentFactory = make_agent_for
    env_factory: EnvFactory = make_env_for
    #: called after every vector step with the Trainer (offline: after every update).
    on_step: Callable[[Trainer], None] | None = None
    progress: bool = True


def _build_trainer(config: RunConfig, run_dir: Path, hooks: RunHooks) -> Trainer:
    if config.dataset is not None:  # offline: the same run directory, another loop
        from rwrl.experiments.offline_loop import build_offline_trainer
        return build_offline_trainer(config, run_dir, hooks.agent_factory, hook=hooks.on_step,
                                     progress=hooks.progress)
    train_env = hooks.env_factory(config, config.num_envs)
    eval_env = make_eval_env(config, hooks.env_factory)
    if config.observation_history:
        train_env = ObservationHistory(train_env, config.observation_history)
        eval_env = ObservationHistory(eval_env, config.observation_history)
    obs_size = observation_size(config, train_env.single_observation_space)
    action_size = int(train_env.single_action_space.shape[0])
    agent = hooks.agent_factory(config, obs_size, action_size)
    return Trainer(config, agent, train_env, eval_env, run_dir, hook=hooks.on_step,
                   progress=hooks.progress)


def observation_size(config: RunConfig, space: Any) -> int | tuple[int, int, int]:
    """Return the ``obs_size`` to build the run's agent with: (H, W, C) for a ``pixels`` agent, else a length.

    Raises:
      ConfigError: the env's observations are not what the agent learns from (a state agent
        given images by an env factory of one's own, or a pixel agent given vectors).
    """
    shape = tuple(int(n) for n in space.shape)
    if AGENTS[config.agent].capabilities.pixels:
        if len(shape) != 3 or space.dtype != "uint8":
            raise ConfigError(f"RunConfig.agent: {config.agent!r} learns from uint8 images (H, W, C); "
                              f"the env's observations are {space.dtype} of shape {shape}")
        return shape
    if len(shape) != 1:
        raise ConfigError(f"RunConfig.agent: {config.agent!r} learns from flat state vectors; the env's "
                          f"observations have shape {shape} (the agents that learn from pixels: "
                          f"{[n for n, e in AGENTS.items() if e.capabilities.pixels]})")
    return shape[0]


def start_run(config: RunConfig, run_dir: Path, hooks: RunHooks | None = None) -> dict[str, Any]:
    """Create ``run_dir`` and train from scratch; return the run's summary.

    A failure before training starts (the env or agent does not build) removes
    what this call created, so no directory is left that ``--resume`` cannot open.

    Raises:
      FileExistsError: ``run_dir`` already holds a run (resume it instead).
    """
    hooks = hooks or RunHooks()
    run_dir = Path(run_dir)
    if (run_dir / CONFIG_FILE).exists():
        raise FileExistsError(f"{run_dir} already holds a run; continue it with "
                              f"`rwrl run --resume {run_dir}` or pick another --out")
    created = _first_missing(run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise WriteError(run_dir, err) from err
    with RunLock(run_dir):
        try:
            trainer = _build_trainer(config, run_dir, hooks)
            write_config(run_dir / CONFIG_FILE, config, _agent_config_dict(trainer.agent))
            truncate_rows(run_dir / METRICS_FILE, 0)
            trainer.init_fresh()
        except BaseException:
            _remove_unstarted(run_dir, created)
            raise
        return _train_and_finish(trainer, run_dir)


def _first_missing(path: Path) -> Path | None:
    """Return the outermost folder of ``path`` that does not exist yet (None: it exists)."""
    missing = None
    for folder in (path, *path.parents):
        if folder.exists():
            break
        missing = folder
    return missing


def _remove_unstarted(run_dir: Path, created: Path | None) -> None:
    """Remove what a run that failed before training wrote: the folders it made, else its files."""
    if created is not None:
        shutil.rmtree(created, ignore_errors=True)
        return
    for name in (CONFIG_FILE, METRICS_FILE):
        (run_dir / name).unlink(missing_ok=True)


def resume_run(run_dir: Path, steps: int | None = None,
               hooks: RunHooks | None = None) -> dict[str, Any]:
    """Continue ``run_dir`` from its newest good checkpoint; return the summary.

    Args:
      run_dir: a directory written by ``start_run``.
      steps: a new total of env steps (to extend a finished run); None keeps it.
    """
    hooks = hooks or RunHooks()
    run_dir = Path(run_dir)
    if not (run_dir / CONFIG_FILE).exists():
        raise FileNotFoundError(f"{run_dir} holds no run ({CONFIG_FILE} is missing)")
    with RunLock(run_dir):
        config, agent_config = read_config(run_dir / CONFIG_FILE)
        if steps is not None and steps != config.steps:
            config = config.replace(steps=steps)
            write_config(run_dir / CONFIG_FILE, config, agent_config)
        # The agent is rebuilt from its recorded config, not from today's defaults.
        recorded = config.replace(agent_config=agent_config or config.agent_config)
        trainer = _build_trainer(recorded, run_dir, hooks)
        return _resume_trainer(trainer, run_dir)


def _resume_trainer(trainer: Trainer, run_dir: Path) -> dict[str, Any]:
    metrics = run_dir / METRICS_FILE
    rows_present = count_rows(metrics)

    def accept(checkpoint: Checkpoint) -> None:
        counted = _counted_rows(checkpoint)
        if counted > rows_present:
            raise CheckpointError(
                f"it counted {counted} rows of {METRICS_FILE} but the file holds "
                f"{rows_present} (damaged or truncated)")
        trainer.restore(checkpoint)

    checkpoint = load_latest(run_dir / "checkpoints", accept=accept)
    if checkpoint is None:
        warnings.warn(f"{run_dir}: no usable checkpoint, the run starts over", stacklevel=2)
        truncate_rows(metrics, 0)
        trainer.init_fresh()
    else:
        truncate_rows(metrics, trainer.counters.rows)
        for note in trainer.resume_notes:
            warnings.warn(f"{run_dir}: {note}", ResumeWarning, stacklevel=3)
    (run_dir / SUMMARY_FILE).unlink(missing_ok=True)  # in progress again
    return _train_and_finish(trainer, run_dir)


def _counted_rows(checkpoint: Checkpoint) -> int:
    try:
        rows = checkpoint.meta["counters"]["rows"]
    except (KeyError, TypeError) as err:
        raise CheckpointError(f"its counters lack the metrics row count ({err})") from err
    if not isinstance(rows, int) or rows < 0:
        raise CheckpointError(f"its metrics row count {rows!r} is not a count")
    return rows


def _train_and_finish(trainer: Trainer, run_dir: Path) -> dict[str, Any]:
    summary = trainer.run()
    summary["steps"] = trainer.config.steps
    text = json.dumps(summary, indent=2, sort_keys=True, default=float, allow_nan=True)
    atomic_write_bytes(run_dir / SUMMARY_FILE, (text + "\n").encode())
    if trainer.config.report:
        from rwrl.report.html import write_report  # matplotlib: only when a report is due
        write_report([run_dir], run_dir / REPORT_FILE)
    return summary


def _agent_config_dict(agent: Any) -> dict[str, Any]:
    config = getattr(agent, "config", None)
    if dataclasses.is_dataclass(config):
        return dataclasses.asdict(config)
    return {}


def is_finished(run_dir: Path) -> bool:
    """Return whether ``run_dir`` completed (it has a summary)."""
    return (Path(run_dir) / SUMMARY_FILE).exists()


__all__ = ["CONFIG_FILE", "METRICS_FILE", "REPORT_FILE", "SUMMARY_FILE", "ResumeWarning", "RunHooks",
           "RunLock", "RunLockedError", "is_finished", "make_agent_for", "make_env_for", "observation_size",
           "resume_run", "start_run"]
