"""The offline loop of ``rwrl run --dataset ID``: learner updates on a fixed dataset, online evaluation.

Each iteration draws ``updates_per_call`` batches from the dataset at once
(``rwrl.agents.offline_replay``: uniform n-step transitions, n and the
discount from the agent's config) and runs that many learner updates in one
compiled call (``update_many``); an iteration ends early where an evaluation,
a checkpoint or the end of the run is due, so those fall on the updates they
name, and every iteration starts where the uninterrupted run's did (its length
depends on the update count and the fixed schedule alone), which resuming
needs. Between iterations, when due, it evaluates the
deterministic policy on the dataset's evaluation env (the env spec Minari
stored with the dataset: its ``eval_env_spec``, else the env it was collected
on, built as a Gymnasium vector env of ``eval_episodes`` copies) and writes a
checkpoint. There are no training episodes and no environment steps.

Counting: ``steps``, ``eval_every`` and ``checkpoint_every`` of the run config
count learner updates. ``metrics.jsonl`` holds only evaluation rows, with the
online rows' columns (return, cost, constraint violations, ...), where
``env_steps`` is the number of learner updates too (so the report's curves
plot against it) and ``learner/<m>`` the last update's metrics. The summary
adds the dataset's normalized score of the last evaluation,
``100 (return - ref_min_score) / (ref_max_score - ref_min_score)``, when the
dataset has both reference scores.

Resume: a checkpoint holds the agent's training state, the JAX key stream,
the numpy RNG of batch sampling, the counters, the learner's last metrics,
the evaluation env's state (when it has ``env_state``) and the wall-clock;
the dataset is read again. Every update and evaluation is a function of
those, so a run killed at any moment and resumed writes the same rows as an
uninterrupted one, "the same" as ``rwrl.experiments.loop`` defines it
(wall-clock aside). Checkpoints are due every ``checkpoint_every`` updates or
``checkpoint_minutes`` of wall-clock, whichever comes first, and at update 0
and at the end; no episode boundary is waited for (nothing is open).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable

import numpy as np

from rwrl.agents.offline_replay import OfflineReplay
from rwrl.experiments.config import ConfigError, RunConfig
from rwrl.experiments.loop_base import Loop


@dataclasses.dataclass
class OfflineCounters:
    """The offline loop's position; all of it goes into every checkpoint."""

    updates: int = 0  #: learner updates so far
    compiles: int = 0  #: updates in calls that compiled (the first of each length per session), timed apart
    evaluations: int = 0  #: evaluations run
    eval_episodes: int = 0  #: finished evaluation episodes (rows)
    rows: int = 0  #: rows in metrics.jsonl
    next_eval: int = 0  #: updates at which the next evaluation is due
    last_eval: int = -1  #: updates at the last evaluation
    next_checkpoint: int = 0  #: updates at which the next checkpoint is due
    last_checkpoint: int = -1  #: updates at the last checkpoint
    last_eval_return: float = float("nan")  #: mean return of the last evaluation
    session: int = 0  #: 0 for the first process, +1 per resume


def dataset_eval_env_spec(dataset: Any) -> Any:
    """Return the ``gymnasium.EnvSpec`` of the dataset's evaluation env (else its collection env).

    Raises:
      ConfigError: the dataset records neither.
    """
    from gymnasium.envs.registration import EnvSpec
    text = dataset.storage.metadata.get("eval_env_spec")
    if text is not None:
        return EnvSpec.from_json(text)
    if dataset.env_spec is None:
        raise ConfigError(f"RunConfig.dataset: {dataset.spec.dataset_id!r} records no env to evaluate on")
    return dataset.env_spec


def make_dataset_eval_env(dataset: Any, num_envs: int) -> Any:
    """Build a vector env of ``num_envs`` copies of the dataset's evaluation env."""
    import gymnasium
    import rwrl  # noqa: F401  (registers the rwrl/ ids)
    spec = dataset_eval_env_spec(dataset)
    try:
        return gymnasium.make_vec(spec.id, num_envs=num_envs, **spec.kwargs)
    except gymnasium.error.Error as err:
        raise ConfigError(f"RunConfig.dataset: cannot build its eval env {spec.id}: {err}") from err


class OfflineTrainer(Loop):
    """Trains one agent on one dataset; see the module docstring for the semantics.

    The interface ``rwrl.experiments.run`` drives: ``init_fresh``, ``restore``,
    ``run``, ``counters.rows`` and ``config``, as the online ``Trainer``.

    Args:
      config: the run's config (``config.dataset`` set).
      agent: an ``rwrl.agents`` agent.
      replay: the dataset's transitions.
      eval_env: a Gymnasium vector env of ``config.eval_episodes`` copies.
      run_dir: where ``metrics.jsonl`` and ``checkpoints/`` live.
      hook: called after every update with the trainer (tests kill runs from it).
      progress: report progress.
    """

    CLOCK = "updates"

    def __init__(self, config: RunConfig, agent: Any, replay: OfflineReplay, eval_env: Any,
                 run_dir: Path, hook: Callable[["OfflineTrainer"], None] | None = None,
                 progress: bool = True):
        super().__init__(config, agent, eval_env, run_dir, OfflineCounters(), hook, progress)
        self.replay = replay

    def _advance(self) -> None:
        c, per_call = self.counters, self.agent.config.updates_per_call
        due = [at - c.updates for at in (c.next_eval, c.next_checkpoint, self.config.steps) if at > c.updates]
        count = min([per_call - c.updates % per_call, *due])
        with self.stopwatch.time("replay"):
            batches = self.replay.sample_many(self.np_rng, count, self.agent.config.batch_size)
        self._update_many(batches, count)

    def _extra_summary(self) -> dict[str, Any]:
        """The dataset, and the last evaluation's normalized score."""
        return {"dataset": self.config.dataset, "dataset_transitions": len(self.replay),
                "final_normalized_score": normalized_score(self.replay.dataset,
                                                           self.counters.last_eval_return)}


def normalized_score(dataset: Any, value: float) -> float | None:
    """Return 100 (value - ref_min_score) / (ref_max_score - ref_min_score), or None without both."""
    metadata = dataset.storage.metadata
    low, high = metadata.get("ref_min_score"), metadata.get("ref_max_score")
    if low is None or high is None or high == low:
        return None
    return 100.0 * (value - float(low)) / (float(high) - float(low))


def build_offline_trainer(config: RunConfig, run_dir: Path, agent_factory: Callable[[RunConfig, int, int], Any],
                          hook: Callable | None = None, progress: bool = True) -> OfflineTrainer:
    """Open the dataset, build the agent for its spaces, the replay and the eval env."""
    from rwrl.agents.offline_replay import open_dataset
    try:
        dataset = open_dataset(config.dataset)
    except FileNotFoundError as err:
        raise ConfigError(f"RunConfig.dataset: {err}") from err
    obs_size = int(np.prod(dataset.observation_space.shape))
    action_size = int(np.prod(dataset.action_space.shape))
    agent = agent_factory(config, obs_size, action_size)
    try:
        replay = OfflineReplay(dataset, agent.config.n_step, agent.config.discount)
    except ValueError as err:
        raise ConfigError(f"RunConfig.dataset: {err}") from err
    eval_env = make_dataset_eval_env(dataset, config.eval_episodes)
    return OfflineTrainer(config, agent, replay, eval_env, run_dir, hook=hook, progress=progress)


__all__ = ["OfflineCounters", "OfflineTrainer", "build_offline_trainer",
           "dataset_eval_env_spec", "make_dataset_eval_env", "normalized_score"]
