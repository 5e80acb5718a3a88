"""The offline loop of ``rwrl run --dataset ID``: learner updates on a fixed dataset, online evaluation.

Each iteration samples one batch from the dataset (``rwrl.agents.offline_replay``:
uniform n-step transitions, n and the discount from the agent's config) and
runs one learner update. Between iterations, when due, it evaluates the
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
the numpy RNG of batch sampling, the counters and the wall-clock; the dataset
is read again. Every update and evaluation is a function of those, so a run
killed at any moment and resumed writes the same rows as an uninterrupted one
(wall-clock aside). Checkpoints are due every ``checkpoint_every`` updates or
``checkpoint_minutes`` of wall-clock, whichever comes first, and at update 0
and at the end; no episode boundary is waited for (nothing is open).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any, Callable

import jax
import numpy as np

from rwrl.agents.offline_replay import OfflineReplay
from rwrl.experiments.checkpoint import (Checkpoint, CheckpointError, flatten_pytree,
                                         save_checkpoint, unflatten_like)
from rwrl.experiments.config import ConfigError, RunConfig
from rwrl.experiments.loop import KeyStream, derived_seed, run_eval_episodes
from rwrl.experiments.progress import Progress, Stopwatch
from rwrl.metrics.episode_file import EpisodeFile


@dataclasses.dataclass
class OfflineCounters:
    """The offline loop's position; all of it goes into every checkpoint."""

    updates: int = 0  #: learner updates so far
    compiles: int = 0  #: updates that compiled the update (one per session), timed apart
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


def action_mapper(space: Any) -> Callable[[np.ndarray], np.ndarray]:
    """Return the map of the agent's [-1, 1] actions onto the Box ``space``'s bounds."""
    low, high = np.asarray(space.low), np.asarray(space.high)
    if np.all(low == -1) and np.all(high == 1):
        return lambda actions: actions
    return lambda actions: low + (actions + 1.0) * 0.5 * (high - low)


class OfflineTrainer:
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

    def __init__(self, config: RunConfig, agent: Any, replay: OfflineReplay, eval_env: Any,
                 run_dir: Path, hook: Callable[["OfflineTrainer"], None] | None = None,
                 progress: bool = True):
        self.config, self.agent, self.replay, self.eval_env = config, agent, replay, eval_env
        self.run_dir, self.hook, self._show_progress = Path(run_dir), hook, progress
        self.constraint_names = tuple(getattr(eval_env.unwrapped, "constraint_names", ()))
        self._env_actions = action_mapper(eval_env.single_action_space)
        # Checkpointed (init_fresh or restore set them together):
        self.counters = OfflineCounters()
        self.stopwatch = Stopwatch()
        self.state: Any = None
        self.keys: KeyStream | None = None
        self.np_rng: np.random.Generator | None = None
        self.last_metrics: dict[str, Any] = {}
        # Per session:
        self.log: EpisodeFile | None = None
        self.progress: Progress | None = None
        self._session_start = self._prior_total = self._last_checkpoint_time = 0.0
        self._compiled = False

    def init_fresh(self) -> None:
        """Initialise the agent and every random stream from the run seed."""
        init_key, loop_key = jax.random.split(jax.random.PRNGKey(self.config.seed))
        self.state = self.agent.init(init_key)
        self.keys = KeyStream(np.asarray(loop_key))
        self.np_rng = np.random.default_rng(derived_seed(self.config.seed, "replay", 0))

    def restore(self, checkpoint: Checkpoint) -> None:
        """Continue from ``checkpoint``; nothing changes unless every piece restores.

        Raises:
          CheckpointError: the checkpoint lacks a piece or a piece does not fit.
        """
        try:
            state = unflatten_like(self.agent.init(jax.random.PRNGKey(0)), checkpoint.groups["state"])
            loop = checkpoint.groups["loop"]
            keys = KeyStream(loop["key_parent"], int(loop["key_position"]))
            np_rng = np.random.default_rng()
            np_rng.bit_generator.state = checkpoint.meta["numpy_rng"]
            counters = OfflineCounters(**checkpoint.meta["counters"])
            stopwatch = Stopwatch(checkpoint.meta["timing"])
        except (KeyError, TypeError, ValueError) as err:
            where = checkpoint.path or f"step {checkpoint.step}"
            raise CheckpointError(f"{where}: cannot restore ({type(err).__name__}: {err})") from err
        counters.session += 1
        self.state, self.keys, self.np_rng = state, keys, np_rng
        self.counters, self.stopwatch = counters, stopwatch

    def run(self) -> dict[str, Any]:
        """Update until ``config.steps`` learner updates; return the summary of the run."""
        c = self.counters
        self._session_start = self._last_checkpoint_time = time.perf_counter()
        self._prior_total = self.stopwatch.totals["total"]
        self._compiled = False
        self.log = EpisodeFile(self.run_dir / "metrics.jsonl", sync=False)
        if self.log.rows != c.rows:
            self.log.close()
            raise RuntimeError(f"{self.log.path} holds {self.log.rows} rows, the counters "
                               f"{c.rows}: truncate it to the checkpoint's count first")
        self.progress = Progress(self.config.steps, c.updates, self._show_progress)
        self.progress.set_eval_return(c.last_eval_return)
        try:
            while True:
                self._at_boundary(final=c.updates >= self.config.steps)
                if c.updates >= self.config.steps:
                    break
                self._update()
                self.progress.update(c.updates, c.updates)
                if self.hook is not None:
                    self.hook(self)
        finally:
            self.stopwatch.totals["total"] = self._wall_time()
            self.progress.close()
            self.log.close()
        return self.summary()

    def _wall_time(self) -> float:
        return self._prior_total + time.perf_counter() - self._session_start

    def _update(self) -> None:
        sw = self.stopwatch
        with sw.time("replay"):
            batch = self.replay.sample(self.np_rng, self.agent.config.batch_size)
        with sw.time("learner" if self._compiled else "compile"):
            self.state, self.last_metrics = self.agent.update(self.state, batch, self.keys.next())
            jax.block_until_ready(self.state)
        self.counters.compiles += not self._compiled
        self._compiled = True
        self.counters.updates += 1

    def _at_boundary(self, final: bool) -> None:
        """Evaluate, then checkpoint, when due (and once more at the very end)."""
        c, cfg = self.counters, self.config
        if c.updates >= c.next_eval or (final and c.last_eval != c.updates):
            with self.stopwatch.time("eval"):
                self.evaluate()
            while c.next_eval <= c.updates:
                c.next_eval += cfg.eval_every
        waited = (time.perf_counter() - self._last_checkpoint_time) / (60.0 * cfg.checkpoint_minutes)
        due = c.updates >= c.next_checkpoint or waited >= 1.0
        if c.last_checkpoint != c.updates and (due or final):
            with self.stopwatch.time("checkpoint"):
                self.checkpoint()

    def evaluate(self) -> list[dict[str, Any]]:
        """Run one episode per eval env with the deterministic policy; write their rows."""
        c = self.counters
        episodes = run_eval_episodes(self.agent, self.state, self.eval_env,
                                     derived_seed(self.config.seed, "eval", c.evaluations),
                                     self.keys, self.constraint_names, self._env_actions)
        learner = {f"learner/{k}": float(v) for k, v in self.last_metrics.items()}
        context = {"phase": "eval", "env_steps": c.updates, "updates": c.updates,
                   "wall_time": self._wall_time(), "evaluation": c.evaluations}
        rows = [{**context, "episode": c.eval_episodes + i, "env_index": i, **row, **learner}
                for i, row in enumerate(episodes)]
        c.evaluations += 1
        c.eval_episodes += len(rows)
        c.last_eval = c.updates
        self.log.write(rows)
        c.rows = self.log.rows
        c.last_eval_return = float(np.mean([r["return"] for r in rows]))
        self.progress.set_eval_return(c.last_eval_return)
        return rows

    def checkpoint(self) -> Path:
        """Write a checkpoint of the agent, the random streams and the counters (rows first durable)."""
        c = self.counters
        while c.next_checkpoint <= c.updates:
            c.next_checkpoint += self.config.checkpoint_every
        c.last_checkpoint = c.updates
        self._last_checkpoint_time = time.perf_counter()
        self.log.sync()
        groups = {"state": flatten_pytree(self.state), "loop": self.keys.state()}
        meta = {"counters": dataclasses.asdict(c), "timing": {**self.stopwatch.totals, "total": self._wall_time()},
                "numpy_rng": self.np_rng.bit_generator.state}
        return save_checkpoint(self.run_dir / "checkpoints", Checkpoint(c.updates, groups, meta),
                               keep=self.config.keep_checkpoints)

    def summary(self) -> dict[str, Any]:
        """Counters, wall-clock per category, and the last evaluation's return and normalized score."""
        totals, c = dict(self.stopwatch.totals), self.counters
        return {"counters": dataclasses.asdict(c), "timing": totals,
                "outside_learner_share": self.stopwatch.outside_learner_share(),
                "update_ms": 1e3 * totals["learner"] / max(c.updates - c.compiles, 1),
                "dataset": self.config.dataset, "dataset_transitions": len(self.replay),
                "final_eval_return": c.last_eval_return,
                "final_normalized_score": normalized_score(self.replay.dataset, c.last_eval_return)}


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


__all__ = ["OfflineCounters", "OfflineTrainer", "action_mapper", "build_offline_trainer",
           "dataset_eval_env_spec", "make_dataset_eval_env", "normalized_score"]
