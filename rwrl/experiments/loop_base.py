"""What the online and the offline training loops share, written once.

``Loop`` keeps a run's training state (the agent's state, the JAX key stream,
the numpy RNG of replay sampling, counters, wall-clock) and drives it: a run
is a sequence of ``_advance`` calls, between which, when due, the
deterministic policy is evaluated and a checkpoint written. A subclass says
what one ``_advance`` is (a vector step and its learner updates online; one
learner update offline), which counter measures the run (``CLOCK``:
``env_steps`` or ``updates``), when a checkpoint may be taken, and what else
a checkpoint and the summary hold. Everything a checkpoint holds is restored
together or not at all.

A checkpoint holds, for every loop: the agent's state, the JAX key stream,
the numpy RNG, the counters, the learner's last metrics (they are columns of
the next rows), the wall-clock, and the evaluation env's state when the env
can hand it out (``RestorableEnv``: an evaluation resets with its own seed,
but a challenge may carry state from one episode to the next).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any, Callable, Protocol, runtime_checkable

import gymnasium
import jax
import numpy as np

from rwrl.core.seeding import stream_id
from rwrl.storage.checkpoint import (Checkpoint, CheckpointError, flatten_pytree,
                                         save_checkpoint, unflatten_like)
from rwrl.experiments.config import RunConfig
from rwrl.experiments.run_progress import Progress, Stopwatch
from rwrl.metrics.accumulator import EpisodeAccumulator
from rwrl.metrics.episode_file import EpisodeFile
from rwrl.metrics.tensorboard import TensorBoardMirror
from rwrl.tasks.action_scaling import unit_mapper


@runtime_checkable
class RestorableEnv(Protocol):
    """A (vector) env whose whole state can be saved and put back (rwrl's envs and wrappers).

    ``restore_env_state(env_state())`` on an env of the same construction
    continues exactly where the first left off. A user's own Gymnasium env
    usually has neither method; a loop then resets it at resume instead.
    """

    def env_state(self) -> dict[str, np.ndarray]: ...

    def restore_env_state(self, state: dict[str, np.ndarray]) -> None: ...


def is_restorable(env: Any) -> bool:
    """Whether ``env`` and every vector env it wraps are ``RestorableEnv``s.

    A wrapper's ``env_state`` includes the wrapped env's, so one env without it
    anywhere under the wrappers makes the whole stack unrestorable.
    """
    while isinstance(env, gymnasium.vector.VectorWrapper):
        if not isinstance(env, RestorableEnv):
            return False
        env = env.env
    return isinstance(env, RestorableEnv)


def derived_seed(seed: int, purpose: str, index: int) -> int:
    """Return a seed for one use of randomness, independent of the others."""
    return int(np.random.SeedSequence([seed, stream_id(purpose), index]).generate_state(1)[0])


#: the prefix of the learner's last metrics in the checkpoint's "loop" group.
_LEARNER = "learner/"
#: the run's TensorBoard event files (``rwrl.metrics.tensorboard``), beside metrics.jsonl.
TENSORBOARD_DIR = "tensorboard"


class KeyStream:
    """JAX keys for act and update, split in blocks so a key costs no dispatch.

    Checkpointable: the state is the block's parent key and the position in it.
    """

    _BLOCK = 1024

    def __init__(self, key: np.ndarray, position: int = 0):
        self._parent = np.asarray(key, np.uint32)
        self._refill()
        self._position = position

    def _refill(self) -> None:
        keys = np.asarray(jax.random.split(jax.numpy.asarray(self._parent), self._BLOCK + 1))
        self._next_parent, self._block = keys[0], keys[1:]
        self._position = 0

    def next(self) -> np.ndarray:
        if self._position == self._BLOCK:
            self._parent = self._next_parent
            self._refill()
        key = self._block[self._position]
        self._position += 1
        return key

    def state(self) -> dict[str, np.ndarray]:
        return {"key_parent": self._parent.copy(), "key_position": np.array(self._position)}


def flat_obs(obs: Any) -> np.ndarray:
    """Return a batch of observations as (N, obs_size): float32, or uint8 for images (pixel mode).

    Images stay uint8 (a quarter of float32's bytes in the replay and on the
    way to the device); the agent that takes them scales them itself.
    """
    obs = np.asarray(obs)
    return obs.reshape(len(obs), -1) if obs.dtype == np.uint8 else obs.astype(np.float32).reshape(len(obs), -1)


def action_mapper(space: Any) -> Callable[[np.ndarray], np.ndarray]:
    """Return the map of the agent's [-1, 1] actions onto the Box ``space``'s bounds."""
    return unit_mapper(space.low, space.high)


def run_eval_episodes(agent: Any, state: Any, env: Any, seed: int, keys: KeyStream,
                      constraint_names: tuple[str, ...],
                      env_actions: Callable[[np.ndarray], np.ndarray]) -> list[dict[str, Any]]:
    """Run one episode per env of the vector ``env`` with the deterministic policy.

    The env is reset with ``seed``; steps after an env's episode ended are not
    counted (whatever its autoreset).

    Returns:
      One episode row per env (the ``EpisodeAccumulator`` columns), in env order.
    """
    n = env.num_envs
    obs, info = env.reset(seed=seed)
    accumulator = EpisodeAccumulator(n, constraint_names)
    accumulator.observe_reset(np.arange(n), info)
    done = np.zeros(n, bool)
    while not done.all():
        actions = agent.act(state, flat_obs(obs), keys.next(), explore=False)
        obs, reward, terminated, truncated, info = env.step(env_actions(actions))
        active = ~done
        accumulator.add_step(active, reward, info)
        done |= active & (np.asarray(terminated) | np.asarray(truncated))
    return [accumulator.row(i) for i in range(n)]


class Loop:
    """The shared part of ``Trainer`` and ``OfflineTrainer``.

    Args:
      config: the run's config.
      agent: an ``rwrl.agents`` agent.
      eval_env: a Gymnasium vector env of ``config.eval_episodes`` copies.
      run_dir: where ``metrics.jsonl`` and ``checkpoints/`` live.
      counters: the subclass's fresh counters (a dataclass with ``CLOCK``,
        updates, compiles, evaluations, eval_episodes, rows, next_eval,
        last_eval, next_checkpoint, last_checkpoint, last_eval_return, session).
      hook: called after every ``_advance`` with the loop (tests kill runs from it).
      progress: report progress (a bar on a terminal, plain lines otherwise).
    """

    #: the counter that ``config.steps``, ``eval_every`` and ``checkpoint_every`` count.
    CLOCK = "env_steps"

    def __init__(self, config: RunConfig, agent: Any, eval_env: Any, run_dir: Path, counters: Any,
                 hook: Callable[[Any], None] | None, progress: bool):
        self.config, self.agent, self.eval_env = config, agent, eval_env
        self.run_dir, self.hook, self._show_progress = Path(run_dir), hook, progress
        self.constraint_names = tuple(getattr(eval_env.unwrapped, "constraint_names", ()))
        self._env_actions = action_mapper(eval_env.single_action_space)
        # Checkpointed (init_fresh or restore set them together):
        self.counters = counters
        self.stopwatch = Stopwatch()
        self.state: Any = None  #: the agent's training state (a pytree)
        self.keys: KeyStream | None = None  #: JAX keys of act and update
        self.np_rng: np.random.Generator | None = None  #: replay sampling
        self.last_metrics: dict[str, Any] = {}  #: the learner's last update metrics
        #: what the last restore will not reproduce, one line each (``resume_run`` reports them)
        self.resume_notes: list[str] = []
        # Per session (set again by each ``run``):
        self.log: EpisodeFile | None = None  #: metrics.jsonl, open while running
        self.tensorboard: TensorBoardMirror | None = None  #: its TensorBoard mirror, open while running
        self.progress: Progress | None = None
        self._session_start = 0.0  #: perf_counter at this session's start
        self._prior_total = 0.0  #: loop wall-clock of the earlier sessions, seconds
        #: the update_many lengths compiled in this process (``_update_many``' ``count``)
        self._compiled: set[int] = set()
        self._last_checkpoint_time = 0.0  #: perf_counter of this session's last checkpoint

    # ------------------------------------------------------------ subclass hooks

    def _start_session(self) -> None:
        """Prepare what a session needs beyond the state (online: reset the training envs)."""

    def _advance(self) -> None:
        """Move the run on by one iteration."""
        raise NotImplementedError

    def _restore_extra(self, checkpoint: Checkpoint) -> None:
        """Restore what the subclass checkpoints beyond the shared state (last, may raise)."""

    def _restore_failed(self) -> None:
        """Undo whatever ``_restore_extra`` changed before it raised."""

    def _extra_groups(self) -> dict[str, Any]:
        """Checkpoint groups beyond the agent's state and the key stream."""
        return {}

    def _chunks(self) -> list[dict[str, Any]]:
        """Write what is new since the last checkpoint as chunks; return every chunk the next one needs."""
        return []

    def _extra_summary(self) -> dict[str, Any]:
        """Summary entries beyond the shared ones."""
        return {}

    def _eval_columns(self) -> dict[str, Any]:
        """Columns of every evaluation row beyond the shared ones (online: the training regime)."""
        return {}

    def _checkpoint_due(self, final: bool) -> bool:
        """Due every ``checkpoint_every`` of the clock or ``checkpoint_minutes``, and at the end."""
        c, cfg = self.counters, self.config
        waited = (time.perf_counter() - self._last_checkpoint_time) / (60.0 * cfg.checkpoint_minutes)
        due = self._clock() >= c.next_checkpoint or waited >= 1.0
        return c.last_checkpoint != self._clock() and (due or final)

    # ------------------------------------------------------------ state

    def _clock(self) -> int:
        return getattr(self.counters, self.CLOCK)

    def init_fresh(self) -> None:
        """Initialise the agent and every random stream from the run seed."""
        init_key, loop_key = jax.random.split(jax.random.PRNGKey(self.config.seed))
        self.state = self.agent.init(init_key)
        self.keys = KeyStream(np.asarray(loop_key))
        self.np_rng = np.random.default_rng(derived_seed(self.config.seed, "replay", 0))

    def restore(self, checkpoint: Checkpoint) -> None:
        """Continue from ``checkpoint`` (a new session); nothing changes unless every piece restores.

        Raises:
          CheckpointError: the checkpoint lacks a piece or a piece does not fit (a
            ``CheckpointError`` of its own, e.g. a damaged chunk, passes through).
        """
        try:
            state = unflatten_like(self.agent.init(jax.random.PRNGKey(0)), checkpoint.groups["state"])
            loop = checkpoint.groups["loop"]
            keys = KeyStream(loop["key_parent"], int(loop["key_position"]))
            metrics = {k[len(_LEARNER):]: v for k, v in loop.items() if k.startswith(_LEARNER)}
            np_rng = np.random.default_rng()
            np_rng.bit_generator.state = checkpoint.meta["numpy_rng"]
            counters = type(self.counters)(**checkpoint.meta["counters"])
            stopwatch = Stopwatch(checkpoint.meta["timing"])
            self._restore_extra(checkpoint)  # it and the env alone change self before success
            if "eval_env" in checkpoint.groups and is_restorable(self.eval_env):
                self.eval_env.restore_env_state(checkpoint.groups["eval_env"])
        except (KeyError, TypeError, ValueError, CheckpointError) as err:
            self._restore_failed()
            if isinstance(err, CheckpointError):
                raise
            where = checkpoint.path or f"step {checkpoint.step}"
            raise CheckpointError(f"{where}: cannot restore ({type(err).__name__}: {err})") from err
        counters.session += 1
        self.state, self.keys, self.np_rng, self.last_metrics = state, keys, np_rng, metrics
        self.counters, self.stopwatch = counters, stopwatch

    # ------------------------------------------------------------ loop

    def run(self) -> dict[str, Any]:
        """Advance until the clock reaches ``config.steps``; return the summary of the run."""
        c = self.counters
        self._session_start = self._last_checkpoint_time = time.perf_counter()
        self._prior_total = self.stopwatch.totals["total"]
        self._compiled = set()
        self.log = EpisodeFile(self.run_dir / "metrics.jsonl", sync=False)
        if self.log.rows != c.rows:
            self.log.close()
            raise RuntimeError(f"{self.log.path} holds {self.log.rows} rows, the counters "
                               f"{c.rows}: truncate it to the checkpoint's count first")
        self.progress = Progress(self.config.steps, self._clock(), self._show_progress)
        self.progress.set_eval_return(c.last_eval_return)
        self.tensorboard = TensorBoardMirror(self.run_dir / TENSORBOARD_DIR)
        try:
            self._start_session()
            while True:
                self._at_boundary(final=self._clock() >= self.config.steps)
                if self._clock() >= self.config.steps:
                    break
                self._advance()
                self.progress.update(self._clock(), self.counters.updates)
                if self.hook is not None:
                    self.hook(self)
        finally:
            self.stopwatch.totals["total"] = self._wall_time()
            self.progress.close()
            self.log.close()
            self.tensorboard.close()
        return self.summary()

    def _wall_time(self) -> float:
        """Seconds of loop wall-clock over every session of the run."""
        return self._prior_total + time.perf_counter() - self._session_start

    def _update_many(self, batches: Any, count: int) -> None:
        """``count`` learner updates in one compiled call (``update_many``), one key each.

        The first call with a given ``count`` in this process compiles, so it is
        timed apart and its updates count in ``compiles``.
        """
        c = self.counters
        keys = np.stack([self.keys.next() for _ in range(count)])
        compiling = count not in self._compiled
        with self.stopwatch.time("compile" if compiling else "learner"):
            self.state, self.last_metrics = self._apply_updates(batches, keys)
            jax.block_until_ready(self.state)
        self._compiled.add(count)
        c.compiles += count * compiling
        c.updates += count

    def _apply_updates(self, batches: Any, keys: np.ndarray) -> tuple[Any, dict[str, Any]]:
        """The agent's ``update_many``; for an agent without one, its ``update`` on each batch in turn."""
        if hasattr(self.agent, "update_many"):
            return self.agent.update_many(self.state, batches, keys)
        state, metrics = self.state, self.last_metrics
        for k, key in enumerate(keys):
            state, metrics = self.agent.update(state, batches.at(k), key)
        return state, metrics

    def _row_context(self, phase: str) -> dict[str, Any]:
        c = self.counters
        return {"phase": phase, "env_steps": self._clock(), "updates": c.updates,
                "wall_time": self._wall_time()}

    def write_rows(self, rows: list[dict[str, Any]]) -> None:
        """Append rows to ``metrics.jsonl`` (counted) and mirror them to TensorBoard."""
        self.log.write(rows)
        self.counters.rows = self.log.rows
        self.tensorboard.write(rows)

    def _learner_columns(self) -> dict[str, float]:
        return {f"learner/{k}": float(v) for k, v in self.last_metrics.items()}

    # ------------------------------------------------- evaluation, checkpoints

    def _at_boundary(self, final: bool) -> None:
        """Evaluate, then checkpoint, when due (and once more at the very end)."""
        c, cfg = self.counters, self.config
        if self._clock() >= c.next_eval or (final and c.last_eval != self._clock()):
            with self.stopwatch.time("eval"):
                self.evaluate()
            while c.next_eval <= self._clock():
                c.next_eval += cfg.eval_every
        if self._checkpoint_due(final):
            with self.stopwatch.time("checkpoint"):
                self.checkpoint()

    def evaluate(self) -> list[dict[str, Any]]:
        """Run one episode per eval env with the deterministic policy; write their rows."""
        c = self.counters
        # Its own keys: an evaluation must not move the training stream, or the run's
        # training would depend on how often it is evaluated.
        keys = KeyStream(np.asarray(jax.random.PRNGKey(
            derived_seed(self.config.seed, "eval-keys", c.evaluations))))
        episodes = run_eval_episodes(self.agent, self.state, self.eval_env,
                                     derived_seed(self.config.seed, "eval", c.evaluations),
                                     keys, self.constraint_names, self._env_actions)
        # The learner's last metrics (a constrained agent's lambda, J_C, ...) as of this evaluation.
        context = {**self._row_context("eval"), "evaluation": c.evaluations, **self._eval_columns(),
                   **self._learner_columns()}
        rows = [{**context, "episode": c.eval_episodes + i, "env_index": i, **row}
                for i, row in enumerate(episodes)]
        c.evaluations += 1
        c.eval_episodes += len(rows)
        c.last_eval = self._clock()
        self.write_rows(rows)
        c.last_eval_return = float(np.mean([r["return"] for r in rows]))
        self.progress.set_eval_return(c.last_eval_return)
        return rows

    def checkpoint(self) -> Path:
        """Write a checkpoint of the training state (rows first made durable)."""
        c = self.counters
        while c.next_checkpoint <= self._clock():
            c.next_checkpoint += self.config.checkpoint_every
        c.last_checkpoint = self._clock()
        self._last_checkpoint_time = time.perf_counter()
        self.log.sync()
        if self.tensorboard is not None:
            self.tensorboard.flush()
        chunks = self._chunks()  # first: the groups say which chunks hold what
        metrics = {_LEARNER + k: np.asarray(v) for k, v in self.last_metrics.items()}
        groups = {"state": flatten_pytree(self.state), "loop": {**self.keys.state(), **metrics},
                  **self._extra_groups()}
        if is_restorable(self.eval_env):
            groups["eval_env"] = self.eval_env.env_state()
        timing = {**self.stopwatch.totals, "total": self._wall_time()}
        meta = {"counters": dataclasses.asdict(c), "timing": timing,
                "numpy_rng": self.np_rng.bit_generator.state}
        checkpoint = Checkpoint(self._clock(), groups, meta, chunks=chunks)
        return save_checkpoint(self.run_dir / "checkpoints", checkpoint, keep=self.config.keep_checkpoints)

    def summary(self) -> dict[str, Any]:
        """Counters, wall-clock per category, the loop's overhead share and the last return."""
        totals, c = dict(self.stopwatch.totals), self.counters
        return {"counters": dataclasses.asdict(c), "timing": totals,
                "outside_learner_share": self.stopwatch.outside_learner_share(),
                "update_ms": 1e3 * totals["learner"] / max(c.updates - c.compiles, 1),
                "final_eval_return": c.last_eval_return, **self._extra_summary()}


__all__ = ["KeyStream", "Loop", "RestorableEnv", "action_mapper", "derived_seed", "flat_obs",
           "is_restorable", "run_eval_episodes"]
